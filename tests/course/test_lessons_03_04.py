"""Lessons 03 (rotate first) and 04 (the distribution after rotation): computations and apps."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy import integrate, stats  # noqa: E402

from turboquant_lab import plots, widgets  # noqa: E402
from turboquant_lab.codebooks import coordinate_pdf, unit_coordinate_pdf  # noqa: E402
from turboquant_lab.data import kv_outlier_channels, make_kv_vectors  # noqa: E402
from turboquant_lab.rotation import random_orthogonal  # noqa: E402
from turboquant_lab.uniform import quant_stats  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- lesson 03


def test_essay_vector_is_lesson_02s_vector():
    x, outliers = widgets.essay_vector()
    seed = getattr(widgets, "OUTLIER_DEMO_SEED", widgets.ESSAY_SEED)
    assert widgets.ESSAY_SEED == seed
    np.testing.assert_array_equal(x, make_kv_vectors(1, 64, seed=seed)[0].astype(np.float64))
    np.testing.assert_array_equal(outliers, kv_outlier_channels(64, 5, seed=seed))
    # essay-like: the outliers dominate, as in the essay's 22.1x
    assert 15 < widgets.max_mean_ratio(x) < 30
    assert np.all(np.abs(x[outliers]) > 3 * np.abs(np.delete(x, outliers)).max() / 2)


def test_max_mean_ratio():
    assert widgets.max_mean_ratio(np.array([1.0, -1.0, 1.0, -1.0])) == 1.0
    assert widgets.max_mean_ratio(np.array([0.0, 0.0, 0.0, -4.0])) == 4.0
    x = np.random.default_rng(0).standard_normal((5, 16))
    expected = np.abs(x).max(axis=1) / np.abs(x).mean(axis=1)
    np.testing.assert_allclose(widgets.max_mean_ratio(x), expected)
    with pytest.raises(ValueError, match="all-zero"):
        widgets.max_mean_ratio(np.zeros(4))
    with pytest.raises(TypeError):
        widgets.max_mean_ratio(np.arange(4))


@given(x=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=32))
@settings(max_examples=30, deadline=None)
def test_max_mean_ratio_bounds(x):
    x = np.array(x)
    if not np.any(x != 0):
        return
    r = widgets.max_mean_ratio(x)
    assert 1 - 1e-12 <= r <= len(x) * (1 + 1e-12)


def test_rotation_demo_matches_dense_oracle():
    x, outliers = widgets.essay_vector()
    r = widgets.compute_rotation_demo(x, seed=7, outliers=outliers)
    q = random_orthogonal(64, seed=7)
    np.testing.assert_allclose(r.after, q @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.restored, x, atol=1e-10)
    assert r.reconstruction_error < 1e-10
    assert r.norm_after == pytest.approx(np.linalg.norm(x), rel=1e-12)
    np.testing.assert_array_equal(r.outliers, outliers)
    with pytest.raises(ValueError, match="one vector"):
        widgets.compute_rotation_demo(np.ones((2, 4)))


def test_rotate_button_presses_spread_the_outliers():
    demo = widgets.RotateDemo()
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
    x = make_kv_vectors(300, 64, seed=widgets.ESSAY_SEED)
    r = widgets.compute_rotation_mse(x, bits=range(1, 9), seed=0)
    np.testing.assert_array_equal(r.bits, np.arange(1, 9))
    # oracle for "before": the library's own statistics
    for i, b in enumerate(r.bits):
        assert r.mse_before[i] == pytest.approx(quant_stats(x.astype(np.float64), int(b)).mse.mean())
    assert np.all(r.mse_after < r.mse_before)
    assert np.all(np.diff(r.mse_before) < 0) and np.all(np.diff(r.mse_after) < 0)
    assert r.range_after < 0.7 * r.range_before
    # once the slots are fine, the MSE ratio is the ratio of squared ranges
    np.testing.assert_allclose(r.ratio[4:], r.predicted_ratio, rtol=0.1)


def test_rotation_mse_oracle_after():
    from turboquant_lab.uniform import uniform_dequantize, uniform_quantize

    x = make_kv_vectors(20, 16, seed=3).astype(np.float64)
    r = widgets.compute_rotation_mse(x, bits=[2, 5], seed=4)
    q = random_orthogonal(16, seed=4)
    for i, b in enumerate([2, 5]):
        x_hat = np.stack([q.T @ uniform_dequantize(uniform_quantize(q @ v, b)) for v in x])
        assert r.mse_after[i] == pytest.approx(np.mean((x - x_hat) ** 2), rel=1e-10)
    with pytest.raises(ValueError):
        widgets.compute_rotation_mse(x, bits=[9])


def test_time_dense_rotation_shapes():
    t = widgets.time_dense_rotation(dims=(16, 32), batch_size=4, repeats=2)
    np.testing.assert_array_equal(t.dims, [16, 32])
    assert t.single.shape == t.batch.shape == (2,)
    assert np.all(t.single > 0) and np.all(t.batch > 0) and t.batch_size == 4
    t = widgets.time_dense_rotation(dims=(8,), batch_size=2, repeats=1, threads=None)
    assert t.single.shape == (1,)


def test_rotate_app_builds_and_clicks():
    app = widgets.rotate_app()
    rotate, reset = app.children[0].children
    label = app.children[1]
    assert "press Rotate" in label.value
    rotate.click()
    rotate.click()
    assert app.demo.presses == 2 and app.demo.result.seed == 1
    assert "Max/Mean after: " in label.value and "press" not in label.value
    reset.click()
    assert app.demo.presses == 0 and app.demo.result is None


def test_draw_functions_lesson_03():
    demo = widgets.RotateDemo()
    axes = plots.draw_rotation(None, None, x=demo.x, outliers=demo.outliers)
    assert len(axes[0].patches) == 64
    reds = [p for p in axes[0].patches if matplotlib.colors.to_hex(p.get_facecolor()) == plots.OUTLIER_COLOR]
    assert len(reds) == 5
    axes = plots.draw_rotation(None, demo.press())
    assert len(axes[1].patches) == 64
    r = widgets.compute_rotation_mse(make_kv_vectors(50, 16), bits=[1, 2, 3])
    assert len(plots.draw_rotation_mse(None, r).lines) == 2
    t = widgets.time_dense_rotation(dims=(16, 32), batch_size=2, repeats=1)
    assert len(plots.draw_rotation_timing(None, t).lines) == 3


# ---------------------------------------------------------------- lesson 04


@pytest.mark.parametrize("d", widgets.DIST_DIMS)
def test_coordinate_histogram_sigma_and_kurtosis(d):
    h = widgets.compute_coordinate_histogram(d, n=10_000, seed=0)
    assert h.samples.shape == (10_000,)
    assert np.all(np.abs(h.samples) <= 1 + 1e-12)
    assert h.sigma_theory == pytest.approx(1 / np.sqrt(d))
    assert abs(h.sigma_empirical / h.sigma_theory - 1) < 0.03
    assert h.sigma_relative_error == pytest.approx(h.sigma_empirical / h.sigma_theory - 1)
    assert h.kurtosis_exact == pytest.approx(3 * d / (d + 2), rel=1e-12)
    # standard error of a sample kurtosis is about sqrt(24 / n) = 0.05
    assert abs(h.kurtosis_empirical - h.kurtosis_exact) < 0.2
    np.testing.assert_allclose(h.exact_pdf, unit_coordinate_pdf(h.grid, d))
    np.testing.assert_allclose(h.gaussian_pdf, stats.norm.pdf(h.grid, scale=1 / np.sqrt(d)))


def test_sigma_at_d_128_is_the_essays():
    h = widgets.compute_coordinate_histogram(128)
    assert round(h.sigma_theory, 4) == 0.0884
    assert abs(h.sigma_relative_error) < 0.03


def test_cheap_sampler_has_the_law_of_full_rotations():
    d, n = 16, 400
    x = make_kv_vectors(1, d, n_outliers=3, seed=2)[0].astype(np.float64)
    x /= np.linalg.norm(x)
    full = np.array([(random_orthogonal(d, seed=1000 + k) @ x)[0] for k in range(n)])
    cheap = widgets.sample_rotated_coordinate(d, 4000, x=x, seed=5)
    assert stats.ks_2samp(full, cheap).pvalue > 0.01
    # both against the exact law
    cdf = lambda t: stats.beta.cdf((t + 1) / 2, (d - 1) / 2, (d - 1) / 2)  # noqa: E731
    assert stats.kstest(cheap, cdf).pvalue > 0.01
    # the sample does not depend on the scale of x, only on its direction
    np.testing.assert_allclose(widgets.sample_rotated_coordinate(d, 50, x=3 * x, seed=1),
                               widgets.sample_rotated_coordinate(d, 50, x=x, seed=1))
    with pytest.raises(ValueError, match="shape"):
        widgets.sample_rotated_coordinate(d, 10, x=np.ones(d + 1))


def test_d3_coordinate_is_uniform():
    u = widgets.compute_coordinate_histogram(3).samples
    assert stats.kstest(u, stats.uniform(-1, 2).cdf).pvalue > 0.01
    np.testing.assert_allclose(unit_coordinate_pdf(np.linspace(-0.99, 0.99, 7), 3), 0.5)


def test_correlation_of_squares_is_minus_one_over_d_minus_1():
    rng = np.random.default_rng(0)
    for d in (3, 4, 8):
        g = rng.standard_normal((100_000, d))
        u2 = (g / np.linalg.norm(g, axis=1, keepdims=True)) ** 2
        assert np.corrcoef(u2[:, 0], u2[:, 1])[0, 1] == pytest.approx(-1 / (d - 1), abs=0.015)


@pytest.mark.parametrize("d", [4, 16, 128])
def test_gaussian_gap_against_quadrature(d):
    tv, gap = widgets.gaussian_gap(d)
    f = lambda t: abs(coordinate_pdf(t, d) - stats.norm.pdf(t))  # noqa: E731
    s = np.sqrt(d)
    tv_ref = 0.5 * (2 * integrate.quad(f, 0, s, limit=400)[0] + 2 * stats.norm.sf(s))
    assert tv == pytest.approx(tv_ref, rel=1e-3)
    t = np.linspace(0, s, 200_001)
    assert gap == pytest.approx(np.max(np.abs(coordinate_pdf(t, d) - stats.norm.pdf(t))), rel=1e-3)
    with pytest.raises(ValueError, match="at least 3"):
        widgets.gaussian_gap(2)


def test_gaussian_gap_shrinks_like_one_over_d():
    dims = np.array([8, 32, 128, 512])
    tv = np.array([widgets.gaussian_gap(d)[0] for d in dims])
    assert np.all(np.diff(tv) < 0)
    slope = np.polyfit(np.log(dims), np.log(tv), 1)[0]
    assert slope == pytest.approx(-1, abs=0.1)


def test_distribution_app_builds_and_slides():
    app = widgets.distribution_app(n=2000, d=128)
    assert app.slider.value == 128 and tuple(app.slider.options) == widgets.DIST_DIMS
    app.slider.value = 8  # re-runs the drawing function
    assert app.slider.value == 8


def test_draw_functions_lesson_04():
    h = widgets.compute_coordinate_histogram(128, n=1000)
    ax = plots.draw_coordinate_histogram(None, h)
    assert len(ax.lines) == 2 and len(ax.patches) == 60
    # small d: the support [-1, 1] is in view and marked
    ax = plots.draw_coordinate_histogram(None, widgets.compute_coordinate_histogram(16, n=1000))
    assert len(ax.lines) == 4
    dims = [4, 8, 16]
    ax = plots.draw_gaussian_gap(None, dims, [widgets.gaussian_gap(d)[0] for d in dims], current=(8, 0.05))
    assert len(ax.lines) == 2
