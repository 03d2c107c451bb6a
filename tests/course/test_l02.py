"""Lesson 02: its experiments, figures, app and exercise checkers."""

import matplotlib
import numpy as np
import pytest
from app_helpers import bar_heights, line_data, texts
from checker_helpers import assert_fails, assert_passes

import turboquant_lab as tql
from turboquant_lab.course import _ui
from turboquant_lab.course._checking import FAILED
from turboquant_lab.course.l02_the_outlier_problem import app as lesson_app
from turboquant_lab.course.l02_the_outlier_problem import checks, experiments, figures
from turboquant_lab.data import kv_outlier_channels, make_kv_vectors
from turboquant_lab.uniform import quant_stats, uniform_dequantize, uniform_quantize


def test_outlier_demo_is_the_seeded_essay_vector():
    r = experiments.compute_outlier_demo(2)
    np.testing.assert_array_equal(r.x, make_kv_vectors(1, 64, seed=tql.ESSAY_SEED)[0])
    np.testing.assert_array_equal(r.outliers, kv_outlier_channels(64, 5, tql.ESSAY_SEED))
    assert len(r.outliers) == 5 and len(r.normal) == 59
    assert np.intersect1d(r.outliers, r.normal).size == 0


@pytest.mark.parametrize("bits", range(1, 9))
def test_outlier_demo_shows_the_figures_of_quant_stats(bits):
    r = experiments.compute_outlier_demo(bits)
    s = quant_stats(r.x, bits)
    assert (r.mse, r.range, r.slot_width, r.wasted_slots) == (s.mse, s.range, s.slot_width,
                                                              s.wasted_slots)
    assert r.slot_counts_normal.sum() == 59 and r.slot_counts_outlier.sum() == 5
    used = np.count_nonzero(r.slot_counts_normal + r.slot_counts_outlier)
    assert r.wasted_slots == 2 ** bits - used
    # the outliers stretch the ruler: the normal coordinates pay for them
    assert r.mse_normal > r.mse_normal_alone


def test_at_two_bits_normal_coordinates_collapse_and_slots_are_wasted():
    r = experiments.compute_outlier_demo(2)
    assert r.wasted_slots >= 1
    assert r.normal_slots_used <= 2
    assert r.slot_width == pytest.approx((r.x.max() - r.x.min()) / 3)


def test_mse_falls_as_bits_increase():
    mse = [experiments.compute_outlier_demo(b).mse for b in range(1, 9)]
    assert np.all(np.diff(mse) < 0)


def test_outlier_app_slider_updates_the_four_figures_and_the_bars(shown_figures):
    app = lesson_app.outlier_app()
    slider, panel = app.children[0], app.children[1]
    assert (slider.min, slider.max, slider.value) == (1, 8, 2)
    assert panel.value == experiments.format_outlier_figures(experiments.compute_outlier_demo(2))
    for bits in (1, 4, 8):
        shown_figures.clear()
        slider.value = bits
        r = experiments.compute_outlier_demo(bits)
        assert panel.value == experiments.format_outlier_figures(r)
        assert f"Wasted slots {r.wasted_slots} of {2 ** bits}" in panel.value
        original, quantized = shown_figures.last.axes
        np.testing.assert_allclose(bar_heights(original), r.x)
        np.testing.assert_allclose(bar_heights(quantized), r.x_hat)
        levels = [y[0] for _, y in line_data(quantized) if len(set(y)) == 1 and y[0] != 0]
        assert len(levels) == 2 ** bits
        assert f"{bits} bits = {2 ** bits} levels" in texts(shown_figures.last)


def test_outlier_bars_draw_the_vector_its_reconstruction_and_red_outliers():
    r = experiments.compute_outlier_demo(3)
    ax0, ax1 = figures.draw_outlier_bars(None, r)
    np.testing.assert_allclose(bar_heights(ax0), r.x)
    np.testing.assert_allclose(bar_heights(ax1), r.x_hat)
    reds = [i for i, p in enumerate(ax1.patches)
            if matplotlib.colors.to_hex(p.get_facecolor()) == _ui.OUTLIER_COLOR]
    np.testing.assert_array_equal(reds, r.outliers)


def test_slot_counts_stack_normal_and_outlier_coordinates_per_level():
    r = experiments.compute_outlier_demo(3)
    ax = figures.draw_slot_counts(None, r)
    heights = bar_heights(ax)
    np.testing.assert_array_equal(heights[:8], r.slot_counts_normal)
    np.testing.assert_array_equal(heights[8:], r.slot_counts_outlier)
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("empty") == r.wasted_slots


def wasted_ok(x, bits):
    return 2 ** bits - np.unique(uniform_quantize(x, bits).codes).size


def test_wasted_slots():
    assert_passes(checks.check_wasted_slots, wasted_ok)
    assert_fails(checks.check_wasted_slots,
                 lambda x, bits: np.unique(uniform_quantize(x, bits).codes).size,
                 hint="counted the levels that are used")
    assert_fails(checks.check_wasted_slots, lambda x, bits: wasted_ok(x, bits) - 1,
                 hint="not 2**bits - 1")


def ratio_ok(x, bits):
    q = uniform_quantize(x, bits)
    return np.max(np.abs(x - uniform_dequantize(q)) / q.scale[:, None])


def test_worst_case_ratio():
    assert_passes(checks.check_worst_case_ratio, ratio_ok)

    def global_scale(x, bits):
        q = uniform_quantize(x, bits)
        return np.max(np.abs(x - uniform_dequantize(q))) / np.max(q.scale)

    assert_fails(checks.check_worst_case_ratio, global_scale, hint="its own scale")

    def floor_based(x, bits):
        q = uniform_quantize(x, bits)
        codes = np.floor((x - q.lo[:, None]) / q.scale[:, None])
        x_hat = q.lo[:, None] + codes * q.scale[:, None]
        return np.max(np.abs(x - x_hat) / q.scale[:, None]) + 0.3

    assert_fails(checks.check_worst_case_ratio, floor_based, hint="half a slot")


def normal_mse_ok(x, bits, outlier_channels):
    err = (x - uniform_dequantize(uniform_quantize(x, bits))) ** 2
    mask = np.ones(x.shape[-1], dtype=bool)
    mask[outlier_channels] = False
    return err[:, mask].mean()


def test_normal_mse():
    assert_passes(checks.check_normal_mse, normal_mse_ok)
    assert_fails(checks.check_normal_mse,
                 lambda x, b, ch: ((x - uniform_dequantize(uniform_quantize(x, b))) ** 2).mean(),
                 hint="only over the normal channels")
    assert_fails(checks.check_normal_mse, lambda x, b, ch: np.sqrt(normal_mse_ok(x, b, ch)),
                 hint="without a square root")



def test_break_even_oracle_agrees_with_a_fine_scan_and_with_the_slot_width_model():
    for bits in (2, 3):
        found = checks._break_even(bits)
        # the first scale, on a grid of 0.05, where the normal channels do no better than zero
        scan = np.arange(1.0, 30.0, 0.05)
        first = next(s for s in scan if checks._normal_gap(s, bits) >= 0)
        assert abs(found - first) <= 0.06
        # lesson 01's model: slot^2 / 12 = mean square (about 1) at s = sqrt(12) (2^b - 1) / rms range
        unit = tql.make_kv_vectors(1000, 64, outlier_scale=1.0, seed=0).astype(np.float64)
        rms_range = np.sqrt(np.mean(np.ptp(unit[:, tql.kv_outlier_channels(64, seed=0)], axis=1) ** 2))
        assert found == pytest.approx(np.sqrt(12) * (2 ** bits - 1) / rms_range, rel=0.05)


def break_even_ok(bits):
    channels = tql.kv_outlier_channels(64, seed=0)
    normal = np.setdiff1d(np.arange(64), channels)
    for s in np.arange(1.0, 100.0, 0.1):
        x = make_kv_vectors(1000, 64, outlier_scale=s, seed=0).astype(np.float64)
        if normal_mse_ok(x, bits, channels) >= np.mean(x[:, normal] ** 2):
            return float(s)


def test_break_even_scale():
    assert_passes(checks.check_break_even_scale, break_even_ok)
    assert_fails(checks.check_break_even_scale, lambda bits: 3.0, hint="scan further up")
    assert_fails(checks.check_break_even_scale, lambda bits: break_even_ok(bits) + 1.0,
                 hint="refine the scan")
    assert_fails(checks.check_break_even_scale, lambda bits: 0.0, hint="upwards from 1")
    # the verdict never prints the break-even scale itself
    v = checks.check_break_even_scale(lambda bits: 3.0)
    assert v.status == FAILED and f"{checks._break_even(2):.1f}" not in v.message
