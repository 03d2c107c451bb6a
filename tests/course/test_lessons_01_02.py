"""Lessons 01-02: the ruler, the error table and the essay's outlier interactive."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from turboquant_lab import plots  # noqa: E402
from turboquant_lab.data import kv_outlier_channels, make_kv_vectors  # noqa: E402
from turboquant_lab.uniform import quant_stats  # noqa: E402
from turboquant_lab.widgets import (  # noqa: E402
    OUTLIER_DEMO_SEED,
    compute_outlier_demo,
    compute_ruler,
    compute_uniform_error_vs_bits,
    format_outlier_figures,
    outlier_app,
    ruler_app,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---- lesson 01: the ruler ---------------------------------------------------

def _by_hand(x, bits):
    lo, hi = x.min(), x.max()
    scale = (hi - lo) / (2 ** bits - 1)
    codes = np.round((x - lo) / scale)
    return scale, codes, lo + codes * scale


@pytest.mark.parametrize("bits", range(1, 9))
def test_ruler_agrees_with_the_hand_computation(bits):
    x = np.array([0.13, -0.13, 0.64, 0.1, -0.54, 0.36, 1.3, 0.95])
    r = compute_ruler(x, bits)
    scale, codes, x_hat = _by_hand(x, bits)
    assert r.scale == pytest.approx(scale)
    np.testing.assert_array_equal(r.codes, codes)
    np.testing.assert_allclose(r.x_hat, x_hat, atol=1e-12)
    assert len(r.levels) == 2 ** bits
    np.testing.assert_allclose(r.levels[[0, -1]], [x.min(), x.max()])
    assert r.mse == pytest.approx(np.mean((x - x_hat) ** 2))


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(2, 30), elements=st.floats(-100, 100, width=64)),
       st.integers(1, 8))
def test_ruler_lands_every_value_on_a_level_within_half_a_slot(x, bits):
    r = compute_ruler(x, bits)
    assert r.max_abs_error <= 0.5 * r.scale * (1 + 1e-9) + 1e-12
    # each reconstruction is one of the drawn levels (the one its code names)
    np.testing.assert_allclose(r.x_hat, r.levels[r.codes], atol=1e-9 * (1 + abs(x).max()))


def test_ruler_rejects_a_batch_and_bad_bits():
    with pytest.raises(ValueError, match="one vector"):
        compute_ruler(np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="bits"):
        compute_ruler([0.0, 1.0], 9)
    with pytest.raises(TypeError, match="bits"):
        compute_ruler([0.0, 1.0], 2.5)


def test_ruler_app_slider_redraws_the_summary():
    app = ruler_app()
    slider, summary = app.children[0], app.children[1]
    assert (slider.min, slider.max, slider.value) == (1, 8, 2)
    for bits in (1, 5, 8):
        slider.value = bits
        r = compute_ruler(np.round(np.random.default_rng(0).standard_normal(8), 2), bits)
        assert f"{2 ** bits} levels" in summary.value
        assert f"MSE {r.mse:.4g}" in summary.value


def test_error_table_matches_the_scale_squared_over_12_model():
    x = np.random.default_rng(1).standard_normal((2000, 64))
    t = compute_uniform_error_vs_bits(x)
    np.testing.assert_array_equal(t.bits, np.arange(1, 9))
    # exact arithmetic: the worst error is half a slot, and it is nearly reached
    assert np.all(t.worst_ratio <= 0.5 + 1e-12) and np.all(t.worst_ratio > 0.49)
    assert np.all(np.diff(t.mse) < 0)
    # model steps ((2^b - 1) / (2^(b-1) - 1))^2: 9, 49/9, ... towards 4
    np.testing.assert_allclose(t.model_step[1:], ((2.0 ** t.bits[1:] - 1) / (2.0 ** t.bits[:-1] - 1)) ** 2)
    # from 3 bits on, the measured step is the model's, and the MSE is the model's
    # times (d - 2) / d: the min and the max of each vector are stored exactly
    np.testing.assert_allclose(t.step[3:], t.model_step[3:], rtol=0.03)
    np.testing.assert_allclose(t.mse_ratio[2:], 62 / 64, rtol=0.03)
    # at 1 bit the rounding error is far from uniform: the model is off by > 30 %
    assert t.mse_ratio[0] > 1.3


def test_error_table_checks_its_bits():
    with pytest.raises(ValueError, match="increasing"):
        compute_uniform_error_vs_bits(np.ones((2, 4)) * np.arange(4), [3, 2])
    with pytest.raises(ValueError, match="bits"):
        compute_uniform_error_vs_bits(np.ones((2, 4)) * np.arange(4), [0, 1])


# ---- lesson 02: the outlier problem ---------------------------------------

def test_outlier_demo_is_the_seeded_essay_vector():
    r = compute_outlier_demo(2)
    np.testing.assert_array_equal(r.x, make_kv_vectors(1, 64, seed=OUTLIER_DEMO_SEED)[0])
    np.testing.assert_array_equal(r.outliers, kv_outlier_channels(64, 5, OUTLIER_DEMO_SEED))
    assert len(r.outliers) == 5 and len(r.normal) == 59
    assert np.intersect1d(r.outliers, r.normal).size == 0


@pytest.mark.parametrize("bits", range(1, 9))
def test_outlier_demo_shows_the_figures_of_quant_stats(bits):
    r = compute_outlier_demo(bits)
    s = quant_stats(r.x, bits)
    assert (r.mse, r.range, r.slot_width, r.wasted_slots) == (s.mse, s.range, s.slot_width,
                                                              s.wasted_slots)
    assert r.slot_counts_normal.sum() == 59 and r.slot_counts_outlier.sum() == 5
    used = np.count_nonzero(r.slot_counts_normal + r.slot_counts_outlier)
    assert r.wasted_slots == 2 ** bits - used
    # the outliers stretch the ruler: the normal coordinates pay for them
    assert r.mse_normal > r.mse_normal_alone


def test_at_two_bits_normal_coordinates_collapse_and_slots_are_wasted():
    r = compute_outlier_demo(2)
    assert r.wasted_slots >= 1
    assert r.normal_slots_used <= 2
    assert r.slot_width == pytest.approx((r.x.max() - r.x.min()) / 3)


def test_mse_falls_as_bits_increase():
    mse = [compute_outlier_demo(b).mse for b in range(1, 9)]
    assert np.all(np.diff(mse) < 0)


def test_outlier_app_slider_updates_the_four_figures():
    app = outlier_app()
    slider, figures = app.children[0], app.children[1]
    assert (slider.min, slider.max, slider.value) == (1, 8, 2)
    assert figures.value == format_outlier_figures(compute_outlier_demo(2))
    for bits in (1, 4, 8):
        slider.value = bits
        r = compute_outlier_demo(bits)
        assert figures.value == format_outlier_figures(r)
        assert f"Wasted slots {r.wasted_slots} of {2 ** bits}" in figures.value


def test_draw_functions_draw_labelled_axes():
    ax = plots.draw_ruler(None, compute_ruler([0.0, 0.2, 0.9, 3.0], 2))
    assert ax.get_xlabel() and ax.get_ylabel() == "value" and len(ax.lines) >= 2 + 4
    t = compute_uniform_error_vs_bits(np.random.default_rng(0).standard_normal((50, 16)), [1, 2, 3])
    ax = plots.draw_uniform_error_vs_bits(None, t)
    assert ax.get_yscale() == "log" and len(ax.lines) == 3
    r = compute_outlier_demo(3)
    ax0, ax1 = plots.draw_outlier_bars(None, r)
    assert len(ax1.patches) == 64 and ax0.get_ylabel() == "value"
    reds = [p for p in ax1.patches if matplotlib.colors.to_hex(p.get_facecolor()) == plots.OUTLIER_COLOR]
    assert len(reds) == 5
    ax = plots.draw_slot_counts(None, r)
    assert len(ax.patches) == 2 * 2 ** 3 and ax.get_ylabel() == "number of coordinates"
