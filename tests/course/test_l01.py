"""Lesson 01: its experiments, figures, app and exercise checkers."""

import numpy as np
import pytest
from app_helpers import line_data, texts
from checker_helpers import assert_fails, assert_passes, stub
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import turboquant_lab as tql
from turboquant_lab.course._checking import FAILED, NOT_ATTEMPTED
from turboquant_lab.course.l01_naive_quantization import app as lesson_app
from turboquant_lab.course.l01_naive_quantization import checks, experiments, figures


def _by_hand(x, bits):
    lo, hi = x.min(), x.max()
    scale = (hi - lo) / (2 ** bits - 1)
    codes = np.round((x - lo) / scale)
    return scale, codes, lo + codes * scale


@pytest.mark.parametrize("bits", range(1, 9))
def test_ruler_agrees_with_the_hand_computation(bits):
    x = np.array([0.13, -0.13, 0.64, 0.1, -0.54, 0.36, 1.3, 0.95])
    r = experiments.compute_ruler(x, bits)
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
    r = experiments.compute_ruler(x, bits)
    assert r.max_abs_error <= 0.5 * r.scale * (1 + 1e-9) + 1e-12
    # each reconstruction is one of the drawn levels (the one its code names)
    np.testing.assert_allclose(r.x_hat, r.levels[r.codes], atol=1e-9 * (1 + abs(x).max()))


def test_ruler_rejects_a_batch_and_bad_bits():
    with pytest.raises(ValueError, match="one vector"):
        experiments.compute_ruler(np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="bits"):
        experiments.compute_ruler([0.0, 1.0], 9)
    with pytest.raises(TypeError, match="bits"):
        experiments.compute_ruler([0.0, 1.0], 2.5)


def test_ruler_app_slider_redraws_the_summary_and_the_ruler(shown_figures):
    x = np.round(np.random.default_rng(0).standard_normal(8), 2)
    app = lesson_app.ruler_app()
    slider, summary = app.children[0], app.children[1]
    assert (slider.min, slider.max, slider.value) == (1, 8, 2)
    for bits in (1, 5, 8):
        shown_figures.clear()
        slider.value = bits
        r = experiments.compute_ruler(x, bits)
        assert f"{2 ** bits} levels" in summary.value
        assert f"MSE {r.mse:.4g}" in summary.value
        ax = shown_figures.last.axes[0]
        lines = line_data(ax)
        # the 2**bits levels (horizontal lines), then the values and their reconstructions
        levels = [y[0] for _, y in lines[:-2]]
        np.testing.assert_allclose(levels, r.levels)
        np.testing.assert_allclose(lines[-2][1], x)
        np.testing.assert_allclose(lines[-1][1], r.x_hat)
        assert f"{bits} bits = {2 ** bits} levels" in texts(shown_figures.last)


def test_error_table_matches_the_scale_squared_over_12_model():
    x = np.random.default_rng(1).standard_normal((2000, 64))
    t = tql.uniform_error_table(x)
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
        tql.uniform_error_table(np.ones((2, 4)) * np.arange(4), [3, 2])
    with pytest.raises(ValueError, match="bits"):
        tql.uniform_error_table(np.ones((2, 4)) * np.arange(4), [0, 1])


def test_draw_ruler_draws_the_values_and_their_levels():
    r = experiments.compute_ruler([0.0, 0.2, 0.9, 3.0], 2)
    ax = figures.draw_ruler(None, r)
    lines = line_data(ax)
    np.testing.assert_allclose([y[0] for _, y in lines[:4]], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(lines[4][1], [0.0, 0.2, 0.9, 3.0])
    np.testing.assert_allclose(lines[5][1], [0.0, 0.0, 1.0, 3.0])
    assert ax.get_ylabel() == "value"


def test_error_vs_bits_figure_draws_measured_model_and_a_4_to_the_minus_b_slope():
    bits = np.arange(1, 5)
    mse = np.array([3.0, 0.3, 0.05, 0.012])
    model = np.array([2.0, 0.3, 0.051, 0.0121])
    ax = figures.draw_uniform_error_vs_bits(None, bits, mse, model)
    (bx, measured), (_, drawn_model), (_, slope) = line_data(ax)
    np.testing.assert_array_equal(bx, bits)
    np.testing.assert_allclose(measured, mse)
    np.testing.assert_allclose(drawn_model, model)
    np.testing.assert_allclose(slope[:-1] / slope[1:], 4.0)  # a factor 4 per bit
    assert slope[-1] == pytest.approx(mse[-1])                # through the last point
    assert ax.get_yscale() == "log"


def test_verdict_printed_and_not_displayed(capsys):
    v = checks.check_levels(stub)
    out = capsys.readouterr().out
    assert out.strip() == v.message
    assert v.status == NOT_ATTEMPTED and "not attempted yet" in out
    assert v._ipython_display_() is None  # Jupyter shows nothing more than the print


def test_crash_is_reported_not_raised(capsys):
    def crashes(lo, hi, bits):
        return [1, 2][5]

    v = checks.check_levels(crashes)
    assert v.status == FAILED
    assert "IndexError" in v.message and "list index out of range" in v.message


def test_not_a_function():
    v = checks.check_levels(np.zeros(3))
    assert v.status == FAILED and "without calling it" in v.hint


def test_returning_none():
    v = checks.check_levels(lambda lo, hi, bits: None)
    assert v.status == FAILED and "return" in v.hint


def test_messages_are_deterministic():
    def floor_quantize(x, bits):
        lo, hi = x.min(), x.max()
        scale = (hi - lo) / (2 ** bits - 1)
        return np.floor((x - lo) / (scale if scale else 1)).astype(np.uint8), lo, scale

    a = checks.check_uniform_quantize(floor_quantize).message
    b = checks.check_uniform_quantize(floor_quantize).message
    assert a == b


def levels_ok(lo, hi, bits):
    return lo + np.arange(2 ** bits) * (hi - lo) / (2 ** bits - 1)


def test_levels():
    assert_passes(checks.check_levels, levels_ok)
    assert_fails(checks.check_levels,
                 lambda lo, hi, bits: lo + np.arange(2 ** bits) * (hi - lo) / 2 ** bits,
                 hint="2**bits - 1")
    assert_fails(checks.check_levels, lambda lo, hi, bits: np.linspace(lo, hi, 2 ** bits - 1),
                 hint="gaps")


def quantize_ok(x, bits):
    lo = x.min()
    scale = (x.max() - lo) / (2 ** bits - 1)
    safe = scale if scale > 0 else 1.0
    return np.rint((x - lo) / safe).astype(np.uint8), lo, scale


def test_uniform_quantize():
    assert_passes(checks.check_uniform_quantize, quantize_ok)

    def floor(x, bits):
        codes, lo, scale = quantize_ok(x, bits)
        return np.floor((x - lo) / (scale if scale else 1)).astype(np.uint8), lo, scale

    def two_pow(x, bits):
        lo = x.min()
        scale = (x.max() - lo) / 2 ** bits
        return np.rint((x - lo) / scale).astype(np.int64), lo, scale

    def no_guard(x, bits):
        lo = x.min()
        scale = (x.max() - lo) / (2 ** bits - 1)
        return np.rint((x - lo) / scale).astype(np.int64), lo, scale

    assert_fails(checks.check_uniform_quantize, floor, hint="np.rint")
    assert_fails(checks.check_uniform_quantize, two_pow, hint="2**bits - 1")
    assert_fails(checks.check_uniform_quantize, no_guard, hint="constant vector")
    assert_fails(checks.check_uniform_quantize, lambda x, b: quantize_ok(x, b)[0],
                 hint="return codes, lo, scale")


def test_uniform_dequantize():
    assert_passes(checks.check_uniform_dequantize, lambda c, lo, s: lo + c * s)
    assert_fails(checks.check_uniform_dequantize, lambda c, lo, s: c * s, hint="add lo back")


def test_bits_per_value():
    assert_passes(checks.check_bits_per_value,
                  lambda d, bits, side_bits=32: bits + 2 * side_bits / d)
    assert_fails(checks.check_bits_per_value, lambda d, bits, side_bits=32: bits + side_bits / d,
                 hint="lo and scale")
    assert_fails(checks.check_bits_per_value, lambda d, bits, side_bits=32: bits + 2 * side_bits,
                 hint="divide 2 * side_bits by d")


def clip_ok(x, bits):
    n = 2 ** bits

    def mse(c):
        scale = 2 * c / (n - 1)
        return np.mean((x - (np.clip(np.rint((x + c) / scale), 0, n - 1) * scale - c)) ** 2)

    grid = np.linspace(0.01, np.abs(x).max(), 400)
    return grid[np.argmin([mse(c) for c in grid])]


def test_best_clip_oracle_is_max_1960_optimal_uniform_quantizer():
    # Max (1960), Table II: the best 4-level uniform quantizer of N(0, 1) has step 0.9957
    # (outer levels at +-1.4936) and MSE 0.1188; 2 levels: +-0.7979, MSE 0.3634
    g = np.random.default_rng(7).standard_normal(400_000)
    c, mse = checks._best_clip(g, 2)
    assert c == pytest.approx(1.4936, abs=0.02) and mse == pytest.approx(0.1188, rel=0.01)
    c, mse = checks._best_clip(g, 1)
    assert c == pytest.approx(0.7979, abs=0.01) and mse == pytest.approx(0.3634, rel=0.01)


def test_best_clip():
    assert_passes(checks.check_best_clip, clip_ok)
    assert_fails(checks.check_best_clip, lambda x, bits: np.abs(x).max(), hint="cut it shorter")

    def no_clamp(x, bits):
        n = 2 ** bits

        def mse(c):
            scale = 2 * c / (n - 1)
            return np.mean((x - (np.rint((x + c) / scale) * scale - c)) ** 2)

        grid = np.linspace(0.01, np.abs(x).max(), 100)
        return grid[np.argmin([mse(c) for c in grid])]

    assert_fails(checks.check_best_clip, no_clamp, hint="clamp the codes")
    assert_fails(checks.check_best_clip, lambda x, bits: 1.3 * x.std(), hint="too coarse")
    # a value right for 2 bits on unit data fails at 3 bits, and the verdict never gives c away
    v = checks.check_best_clip(lambda x, bits: 1.49)
    assert v.status == FAILED and "bits = 3" in v.message
    best_c, _ = checks._best_clip(np.random.default_rng(0).standard_normal((2000, 64)), 3)
    assert f"{best_c:.2f}" not in v.message and f"{best_c:.3g}" not in v.message
    assert_fails(checks.check_best_clip, lambda x, bits: -1.0, hint="positive float")
