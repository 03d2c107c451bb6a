"""Lesson 03: its experiments, figures, app and exercise checkers."""

import matplotlib
import numpy as np
import pytest
from app_helpers import bar_heights, line_data, texts
from checker_helpers import assert_fails, assert_passes
from hypothesis import given, settings
from hypothesis import strategies as st

import turboquant_lab as tql
from turboquant_lab.course import _ui
from turboquant_lab.course._checking import FAILED
from turboquant_lab.course.l03_rotate_first import app as lesson_app
from turboquant_lab.course.l03_rotate_first import checks, experiments, figures
from turboquant_lab.data import kv_outlier_channels, make_kv_vectors
from turboquant_lab.rotation import random_orthogonal
from turboquant_lab.uniform import quant_stats


def test_essay_vector_is_lesson_02s_vector():
    x, outliers = tql.essay_vector()
    seed = tql.ESSAY_SEED  # lesson 02 quantizes make_kv_vectors(1, 64, seed=ESSAY_SEED) too
    np.testing.assert_array_equal(x, make_kv_vectors(1, 64, seed=seed)[0].astype(np.float64))
    np.testing.assert_array_equal(outliers, kv_outlier_channels(64, 5, seed=seed))
    # essay-like: the outliers dominate, as in the essay's 22.1x
    assert 15 < tql.max_over_mean(x) < 30
    assert np.all(np.abs(x[outliers]) > 3 * np.abs(np.delete(x, outliers)).max() / 2)


def test_rotation_demo_matches_dense_oracle():
    x, outliers = tql.essay_vector()
    r = experiments.compute_rotation_demo(x, seed=7, outliers=outliers)
    q = random_orthogonal(64, seed=7)
    np.testing.assert_allclose(r.after, q @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.restored, x, atol=1e-10)
    assert r.reconstruction_error < 1e-10
    assert r.norm_after == pytest.approx(np.linalg.norm(x), rel=1e-12)
    np.testing.assert_array_equal(r.outliers, outliers)
    with pytest.raises(ValueError, match="one vector"):
        experiments.compute_rotation_demo(np.ones((2, 4)))


def test_rotate_button_presses_spread_the_outliers():
    demo = experiments.RotateDemo()
    x = demo.x
    before = np.abs(x).max() / np.abs(x).mean()
    seen = []
    for k in range(8):
        r = demo.press()
        assert r.seed == k and demo.presses == k + 1
        assert r.max_mean_before == pytest.approx(before)
        assert r.max_mean_after < 5, f"press {k}: max/mean {r.max_mean_after}"
        assert r.norm_after == pytest.approx(r.norm_before, rel=1e-12)
        seen.append(r.after)
    # each press draws a new rotation
    assert len({tuple(np.round(a, 6)) for a in seen}) == len(seen)
    demo.reset()
    assert demo.result is None and demo.presses == 0
    assert "press Rotate" in demo.summary()
    np.testing.assert_array_equal(demo.press().after, seen[0])


@given(seed=st.integers(0, 2**31), d=st.integers(2, 40))
@settings(max_examples=20, deadline=None)
def test_rotation_keeps_lengths_and_dot_products(seed, d):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((2, d))
    q = random_orthogonal(d, seed=seed)
    assert np.linalg.norm(q @ x) == pytest.approx(np.linalg.norm(x), rel=1e-10)
    assert (q @ x) @ (q @ y) == pytest.approx(x @ y, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(q.T @ (q @ x), x, atol=1e-10)


def test_rotation_mse_collapse_and_its_explanation():
    x = make_kv_vectors(300, 64, seed=tql.ESSAY_SEED)
    r = experiments.compute_rotation_mse(x, bits=range(1, 9), seed=0)
    np.testing.assert_array_equal(r.bits, np.arange(1, 9))
    # oracle for "before": the library's own statistics
    for i, b in enumerate(r.bits):
        assert r.mse_before[i] == pytest.approx(quant_stats(x.astype(np.float64), int(b)).mse.mean())
    assert np.all(r.mse_after < r.mse_before)
    assert np.all(np.diff(r.mse_before) < 0) and np.all(np.diff(r.mse_after) < 0)
    assert r.range_after < 0.7 * r.range_before
    # once the slots are fine, the MSE ratio is the ratio of the mean squared ranges
    y = x.astype(np.float64) @ random_orthogonal(64, seed=0).T
    predicted = np.mean(np.ptp(x, axis=1) ** 2) / np.mean(np.ptp(y, axis=1) ** 2)
    np.testing.assert_allclose(r.ratio[4:], predicted, rtol=0.1)


def test_rotation_mse_oracle_after():
    from turboquant_lab.uniform import uniform_dequantize, uniform_quantize

    x = make_kv_vectors(20, 16, seed=3).astype(np.float64)
    r = experiments.compute_rotation_mse(x, bits=[2, 5], seed=4)
    q = random_orthogonal(16, seed=4)
    for i, b in enumerate([2, 5]):
        x_hat = np.stack([q.T @ uniform_dequantize(uniform_quantize(q @ v, b)) for v in x])
        assert r.mse_after[i] == pytest.approx(np.mean((x - x_hat) ** 2), rel=1e-10)
    with pytest.raises(ValueError):
        experiments.compute_rotation_mse(x, bits=[9])


def test_time_dense_rotation_keeps_the_best_of_the_repeats_per_vector():
    # a fake clock: each call advances by the next step, so every timed run lasts a known time
    steps = iter([1.0, 3.0, 1.0, 2.0,      # d = 16, one vector: runs of 3 and 2 -> best 2
                  1.0, 8.0, 1.0, 12.0])    # d = 16, batch of 4: runs of 8 and 12 -> best 8 / 4
    now = [0.0]

    def clock():
        now[0] += next(steps)
        return now[0]

    t = experiments._time_dense_rotation([16], batch_size=4, repeats=2,
                                         rng=np.random.default_rng(0), clock=clock)
    np.testing.assert_array_equal(t.dims, [16])
    np.testing.assert_allclose(t.single, [2.0])
    np.testing.assert_allclose(t.batch, [8.0 / 4])
    assert t.batch_size == 4
    t = experiments.time_dense_rotation(dims=(8, 16), batch_size=2, repeats=1, threads=None)
    assert t.single.shape == t.batch.shape == (2,)


def test_rotate_app_shows_the_rotated_vector_and_resets(shown_figures):
    app = lesson_app.rotate_app()
    rotate, reset = app.children[0].children
    label = app.children[1]
    x, _ = tql.essay_vector()
    assert "press Rotate" in label.value and "press Rotate" in texts(shown_figures.last)
    for seed in (0, 1):
        shown_figures.clear()
        rotate.click()
        before, after = shown_figures.last.axes
        np.testing.assert_allclose(bar_heights(before), x)
        np.testing.assert_allclose(bar_heights(after), random_orthogonal(64, seed=seed) @ x,
                                   atol=1e-12)
        assert f"seed {seed}" in texts(shown_figures.last)
    assert "Max/Mean after: " in label.value and "press" not in label.value
    shown_figures.clear()
    reset.click()
    before, after = shown_figures.last.axes
    assert len(bar_heights(after)) == 0 and "press Rotate" in texts(shown_figures.last)
    assert app.demo.presses == 0 and app.demo.result is None


def test_draw_rotation_draws_x_with_red_outliers_and_r_x():
    demo = experiments.RotateDemo()
    axes = figures.draw_rotation(None, None, x=demo.x, outliers=demo.outliers)
    np.testing.assert_allclose(bar_heights(axes[0]), demo.x)
    reds = [i for i, p in enumerate(axes[0].patches)
            if matplotlib.colors.to_hex(p.get_facecolor()) == _ui.OUTLIER_COLOR]
    np.testing.assert_array_equal(reds, demo.outliers)
    r = demo.press()
    axes = figures.draw_rotation(None, r)
    np.testing.assert_allclose(bar_heights(axes[1]), r.after)


def test_draw_slot_use_draws_the_counts_and_marks_empty_levels():
    axes = figures.draw_slot_use(None, [0, 3, 0, 5], [1, 2, 3, 2])
    np.testing.assert_array_equal(bar_heights(axes[0]), [0, 3, 0, 5])
    np.testing.assert_array_equal(bar_heights(axes[1]), [1, 2, 3, 2])
    assert [t.get_text() for t in axes[0].texts] == ["empty", "empty"] and not axes[1].texts
    assert "2 of 4 levels used" in axes[0].get_title() and "4 of 4" in axes[1].get_title()


def test_draw_rotation_mse_and_timing_draw_their_data():
    ax = figures.draw_rotation_mse(None, [1, 2, 3], [9.0, 3.0, 1.0], [3.0, 1.0, 0.3])
    (b, before), (_, after) = line_data(ax)
    np.testing.assert_array_equal(b, [1, 2, 3])
    np.testing.assert_allclose(before, [9.0, 3.0, 1.0])
    np.testing.assert_allclose(after, [3.0, 1.0, 0.3])
    t = experiments.RotationTiming(dims=np.array([16, 32, 64]), single=np.array([1e-6, 3e-6, 9e-6]),
                                   batch=np.array([1e-7, 4e-7, 1.6e-6]), batch_size=8)
    (d, single), (_, batch), (_, ref) = line_data(figures.draw_rotation_timing(None, t))
    np.testing.assert_array_equal(d, [16, 32, 64])
    np.testing.assert_allclose(single, [1.0, 3.0, 9.0])       # microseconds
    np.testing.assert_allclose(batch, [0.1, 0.4, 1.6])
    np.testing.assert_allclose(ref[1:] / ref[:-1], 4.0)     # the d^2 reference line


def test_correlation_of_squares_is_minus_one_over_d_minus_1():
    rng = np.random.default_rng(0)
    for d in (3, 4, 8):
        g = rng.standard_normal((100_000, d))
        u2 = (g / np.linalg.norm(g, axis=1, keepdims=True)) ** 2
        assert np.corrcoef(u2[:, 0], u2[:, 1])[0, 1] == pytest.approx(-1 / (d - 1), abs=0.015)


def test_max_over_mean():
    assert_passes(checks.check_max_over_mean, lambda x: np.abs(x).max() / np.abs(x).mean())
    assert_fails(checks.check_max_over_mean, lambda x: x.max() / x.mean(), hint="magnitudes")


def haar_ok(d, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def test_haar_rotation():
    assert_passes(checks.check_haar_rotation, haar_ok)
    assert_fails(checks.check_haar_rotation,
                 lambda d, s: np.linalg.qr(np.random.default_rng(s).standard_normal((d, d)))[0],
                 hint="without the sign fix")
    assert_fails(checks.check_haar_rotation,
                 lambda d, s: np.random.default_rng(s).standard_normal((d, d)),
                 hint="Q factor")

    def rows_fixed(d, seed):
        q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
        return np.sign(np.diag(r))[:, None] * q

    assert_fails(checks.check_haar_rotation, rows_fixed, hint="not its rows")


def errors_ok(Q, x, y):
    rx, ry = x @ Q.T, y @ Q.T
    return (np.max(np.abs(np.linalg.norm(rx, axis=-1) - np.linalg.norm(x, axis=-1))),
            np.max(np.abs(np.sum(rx * ry, axis=-1) - np.sum(x * y, axis=-1))),
            np.max(np.abs(rx @ Q - x)))


def test_rotation_errors():
    assert_passes(checks.check_rotation_errors, errors_ok)

    def wrong_side(Q, x, y):
        return errors_ok(Q.T, x, y)

    assert_fails(checks.check_rotation_errors, wrong_side, hint="x @ Q.T")

    def inverse_with_q(Q, x, y):
        n, dot, _ = errors_ok(Q, x, y)
        return n, dot, np.max(np.abs((x @ Q.T) @ Q.T - x))

    assert_fails(checks.check_rotation_errors, inverse_with_q, hint="transpose")
    assert_fails(checks.check_rotation_errors, lambda Q, x, y: errors_ok(Q, x, y)[:2],
                 hint="norm_err, dot_err, inverse_err")


def prediction_ok(x, R):
    return np.mean(np.ptp(x, axis=1) ** 2) / np.mean(np.ptp(x @ R.T, axis=1) ** 2)


def test_predicted_mse_ratio():
    assert_passes(checks.check_predicted_mse_ratio, prediction_ok)
    assert_fails(checks.check_predicted_mse_ratio, lambda x, R: 1 / prediction_ok(x, R),
                 hint="after over before")
    assert_fails(checks.check_predicted_mse_ratio, lambda x, R: np.sqrt(prediction_ok(x, R)),
                 hint="a power of it")
    assert_fails(checks.check_predicted_mse_ratio,
                 lambda x, R: (np.ptp(x, axis=1).mean() / np.ptp(x @ R.T, axis=1).mean()) ** 2,
                 hint="weigh more")
    assert_fails(checks.check_predicted_mse_ratio, lambda x, R: 3.3, hint="lesson 01's model")


def test_predicted_ratio_checker_measures_the_ratio_it_compares_with():
    x = make_kv_vectors(300, 64, seed=3).astype(np.float64)
    q = random_orthogonal(64, seed=1)
    r = experiments.compute_rotation_mse(x, bits=[6], seed=1)
    assert checks._measured_ratio(x, q, 6) == pytest.approx(r.ratio[0], rel=1e-9)
    v = checks.check_predicted_mse_ratio(lambda x, R: 1.0)
    assert v.status == FAILED and "measured at 6 bits" in v.message
