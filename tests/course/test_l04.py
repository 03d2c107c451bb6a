"""Lesson 04: its experiments, figures, app and exercise checkers."""
import numpy as np
import pytest
from app_helpers import bar_heights, line_data, texts
from checker_helpers import assert_fails, assert_passes
from scipy import integrate, stats

from turboquant_lab.codebooks import coordinate_pdf, unit_coordinate_pdf
from turboquant_lab.course.l04_distribution_after_rotation import app as lesson_app
from turboquant_lab.course.l04_distribution_after_rotation import checks, experiments, figures
from turboquant_lab.data import make_kv_vectors
from turboquant_lab.rotation import random_orthogonal


@pytest.mark.parametrize("d", experiments.DIST_DIMS)
def test_coordinate_histogram_sigma_and_kurtosis(d):
    h = experiments.compute_coordinate_histogram(d, n=10_000, seed=0)
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
    h = experiments.compute_coordinate_histogram(128)
    assert round(h.sigma_theory, 4) == 0.0884
    assert abs(h.sigma_relative_error) < 0.03


def test_cheap_sampler_has_the_law_of_full_rotations():
    d, n = 16, 400
    x = make_kv_vectors(1, d, n_outliers=3, seed=2)[0].astype(np.float64)
    x /= np.linalg.norm(x)
    full = np.array([(random_orthogonal(d, seed=1000 + k) @ x)[0] for k in range(n)])
    cheap = experiments.sample_rotated_coordinate(d, 4000, x=x, seed=5)
    assert stats.ks_2samp(full, cheap).pvalue > 0.01
    # both against the exact law
    cdf = lambda t: stats.beta.cdf((t + 1) / 2, (d - 1) / 2, (d - 1) / 2)  # noqa: E731
    assert stats.kstest(cheap, cdf).pvalue > 0.01
    # the sample does not depend on the scale of x, only on its direction
    np.testing.assert_allclose(experiments.sample_rotated_coordinate(d, 50, x=3 * x, seed=1),
                               experiments.sample_rotated_coordinate(d, 50, x=x, seed=1))
    with pytest.raises(ValueError, match="shape"):
        experiments.sample_rotated_coordinate(d, 10, x=np.ones(d + 1))


def test_d3_coordinate_is_uniform():
    u = experiments.compute_coordinate_histogram(3).samples
    assert stats.kstest(u, stats.uniform(-1, 2).cdf).pvalue > 0.01
    np.testing.assert_allclose(unit_coordinate_pdf(np.linspace(-0.99, 0.99, 7), 3), 0.5)


@pytest.mark.parametrize("d", [4, 16, 128])
def test_gaussian_gap_against_quadrature(d):
    tv, gap = experiments.gaussian_gap(d)
    f = lambda t: abs(coordinate_pdf(t, d) - stats.norm.pdf(t))  # noqa: E731
    s = np.sqrt(d)
    tv_ref = 0.5 * (2 * integrate.quad(f, 0, s, limit=400)[0] + 2 * stats.norm.sf(s))
    assert tv == pytest.approx(tv_ref, rel=1e-3)
    t = np.linspace(0, s, 200_001)
    assert gap == pytest.approx(np.max(np.abs(coordinate_pdf(t, d) - stats.norm.pdf(t))), rel=1e-3)
    with pytest.raises(ValueError, match="at least 3"):
        experiments.gaussian_gap(2)


def test_gaussian_gap_shrinks_like_one_over_d():
    dims = np.array([8, 32, 128, 512])
    tv = np.array([experiments.gaussian_gap(d)[0] for d in dims])
    assert np.all(np.diff(tv) < 0)
    slope = np.polyfit(np.log(dims), np.log(tv), 1)[0]
    assert slope == pytest.approx(-1, abs=0.1)


def test_distribution_app_redraws_for_the_chosen_d_and_for_a_new_draw(shown_figures, capsys):
    app = lesson_app.distribution_app(n=2000, d=128)
    fig = shown_figures.last
    gaussian, exact = line_data(fig.axes[0])[:2]
    np.testing.assert_allclose(exact[1], unit_coordinate_pdf(exact[0], 128))
    np.testing.assert_allclose(gaussian[1], stats.norm.pdf(gaussian[0], scale=1 / np.sqrt(128)))
    assert "d = 128" in texts(fig)
    app.slider.value = 8                                       # the slider redraws at the new d
    fig8 = shown_figures.last
    assert fig8 is not fig and "d = 8" in texts(fig8)
    exact8 = line_data(fig8.axes[0])[1]
    np.testing.assert_allclose(exact8[1], unit_coordinate_pdf(exact8[0], 8))
    marker = line_data(fig8.axes[1])[1]                        # the TV panel marks the current d
    assert marker[0].tolist() == [8]
    assert marker[1][0] == pytest.approx(experiments.gaussian_gap(8)[0])
    first = bar_heights(fig8.axes[0])
    app.resample.click()                                       # "new draw": same d, fresh rotations
    assert app.draw.value == 1
    fig_new = shown_figures.last
    assert fig_new is not fig8 and "d = 8" in texts(fig_new)
    again = bar_heights(fig_new.axes[0])
    assert again.shape == first.shape and not np.array_equal(again, first)
    width = np.diff(fig_new.axes[0].patches[0].get_bbox().get_points()[:, 0])[0]
    assert np.sum(again) * width == pytest.approx(1.0, abs=0.02)  # a density histogram
    assert "draw 1:" in capsys.readouterr().out


def test_draw_functions_lesson_04_show_the_data_they_are_given():
    h = experiments.compute_coordinate_histogram(128, n=1000)
    ax = figures.draw_coordinate_histogram(None, h)
    assert len(ax.patches) == 60
    (gx, gy), (_, ey) = line_data(ax)
    np.testing.assert_array_equal(gx, h.grid)
    np.testing.assert_array_equal(gy, h.gaussian_pdf)
    np.testing.assert_array_equal(ey, h.exact_pdf)
    # small d: the support [-1, 1] is in view and marked with two vertical lines at -1 and 1
    ax = figures.draw_coordinate_histogram(None, experiments.compute_coordinate_histogram(16, n=1000))
    assert [line[0].tolist() for line in line_data(ax)[2:]] == [[-1, -1], [1, 1]]
    dims = [4, 8, 16]
    tv = [experiments.gaussian_gap(d)[0] for d in dims]
    ax = figures.draw_gaussian_gap(None, dims, tv, current=(8, 0.05))
    (x, y), (cx, cy) = line_data(ax)
    np.testing.assert_array_equal(x, dims)
    np.testing.assert_array_equal(y, tv)
    assert (cx.tolist(), cy.tolist()) == ([8], [0.05])


def test_samples_given_to_the_histogram_are_used_as_they_are():
    samples = experiments.sample_rotated_coordinate(64, 500, seed=4)
    h = experiments.compute_coordinate_histogram(64, samples=samples)
    assert h.n == 500
    np.testing.assert_array_equal(h.samples, samples)
    assert h.sigma_empirical == pytest.approx(samples.std())


def test_one_rotation_for_a_cache_with_outlier_channels_spreads_coordinates_unevenly():
    d = 128
    u = make_kv_vectors(2000, d, seed=0).astype(np.float64)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    t = np.sqrt(d) * u @ random_orthogonal(d, seed=0).T
    spread = experiments.cache_coordinate_spread(t)
    np.testing.assert_allclose(spread.per_coordinate, t.std(axis=0))
    assert spread.per_coordinate[spread.narrow] == spread.per_coordinate.min() < 0.5
    assert spread.per_coordinate[spread.wide] == spread.per_coordinate.max() > 1.7
    assert t.std() == pytest.approx(1.0, abs=0.01)            # pooled: the law's variance again
    # the same tokens with no outlier channels: every coordinate close to 1 (sampling noise ~ 1/sqrt(2n))
    g = np.random.default_rng(1).standard_normal((2000, d))
    flat = np.sqrt(d) * (g / np.linalg.norm(g, axis=1, keepdims=True)) @ random_orthogonal(d, seed=0).T
    assert np.all(np.abs(experiments.cache_coordinate_spread(flat).per_coordinate - 1) < 0.1)
    with pytest.raises(ValueError, match="shape"):
        experiments.cache_coordinate_spread(t[0])


def test_draw_cache_spread_shows_the_spread_and_the_two_extreme_coordinates():
    t = np.random.default_rng(2).standard_normal((300, 16)) * np.linspace(0.5, 1.5, 16)
    spread = experiments.cache_coordinate_spread(t)
    left, right = figures.draw_cache_spread(None, spread)
    np.testing.assert_allclose(bar_heights(left), spread.per_coordinate)
    assert f"coordinate {spread.narrow} alone" in [t.get_text() for t in right.get_legend().get_texts()]
    grid, pdf = line_data(right)[0]
    np.testing.assert_allclose(pdf, coordinate_pdf(grid, 16))


def unit_ok(n, d, seed):
    g = np.random.default_rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=-1, keepdims=True)


def test_random_unit_vectors():
    assert_passes(checks.check_random_unit_vectors, unit_ok)

    def cube(n, d, seed):
        g = np.random.default_rng(seed).uniform(-1, 1, (n, d))
        return g / np.linalg.norm(g, axis=-1, keepdims=True)

    assert_fails(checks.check_random_unit_vectors, cube, hint="cube")
    assert_fails(checks.check_random_unit_vectors,
                 lambda n, d, s: np.random.default_rng(s).standard_normal((n, d)),
                 hint="keepdims")
    shared = np.random.default_rng(1234)  # one stream for every call, like np.random.* state
    assert_fails(checks.check_random_unit_vectors,
                 lambda n, d, s: unit_ok(n, d, shared.integers(1 << 30)), hint="default_rng")


def sigma_ok(x, n_rotations, seed):
    rng = np.random.default_rng(seed)
    u = x / np.linalg.norm(x)
    return np.std([(random_orthogonal(u.size, rng) @ u)[0] for _ in range(n_rotations)])


def test_empirical_sigma():
    assert_passes(checks.check_empirical_sigma, sigma_ok)

    def not_normalised(x, n, seed):
        return sigma_ok(x, n, seed) * np.linalg.norm(x)

    assert_fails(checks.check_empirical_sigma, not_normalised, hint="unit vector")
    assert_fails(checks.check_empirical_sigma, lambda x, n, s: sigma_ok(x, n, s) ** 2,
                 hint="variance")

    def same_rotation(x, n, seed):
        u = x / np.linalg.norm(x)
        return np.std([(random_orthogonal(u.size, seed) @ u)[0] for _ in range(n)])

    assert_fails(checks.check_empirical_sigma, same_rotation, hint="new rotation")


def boundaries_ok(bits, d):
    alpha = (d - 1) / 2
    return np.sqrt(d) * (2 * stats.beta.ppf(np.arange(1, 2 ** bits) / 2 ** bits, alpha, alpha) - 1)


def test_equal_probability_boundaries():
    assert_passes(checks.check_equal_probability_boundaries, boundaries_ok)
    assert_fails(checks.check_equal_probability_boundaries,
                 lambda bits, d: stats.norm.ppf(np.arange(1, 2 ** bits) / 2 ** bits), hint="N(0, 1)")
    assert_fails(checks.check_equal_probability_boundaries,
                 lambda bits, d: boundaries_ok(bits, d) / np.sqrt(d), hint="scaled units")
    assert_fails(checks.check_equal_probability_boundaries,
                 lambda bits, d: stats.beta.ppf(np.arange(1, 2 ** bits) / 2 ** bits, (d - 1) / 2, (d - 1) / 2),
                 hint="[0, 1]")


def max_ok(d):
    return integrate.quad(lambda s: 1 - (2 * stats.norm.cdf(s) - 1) ** d, 0, np.inf)[0] / np.sqrt(d)


def test_expected_max_coordinate():
    assert_passes(checks.check_expected_max_coordinate, max_ok)
    assert_fails(checks.check_expected_max_coordinate, lambda d: np.sqrt(2 * np.log(d) / d),
                 hint="leading term")
    assert_fails(checks.check_expected_max_coordinate, lambda d: max_ok(d) * np.sqrt(d),
                 hint="sigma 1/sqrt(d)")
    one_sided = lambda d: integrate.quad(lambda s: 1 - stats.norm.cdf(s) ** d, 0, np.inf)[0] / np.sqrt(d)  # noqa: E731
    assert_fails(checks.check_expected_max_coordinate, one_sided, hint="absolute")
    verdict = checks.check_expected_max_coordinate(lambda d: 1.2 * max_ok(d))
    assert not verdict and "too large" in verdict.hint
    for v in (verdict, checks.check_expected_max_coordinate(lambda d: 0.5 / np.sqrt(d))):
        assert "Phi" not in v.message and "cdf" not in v.message    # hints guide; none gives the formula
