"""Lesson 04: its experiments, figures, app and exercise checkers."""
import numpy as np
import pytest
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


def test_distribution_app_builds_and_slides():
    app = lesson_app.distribution_app(n=2000, d=128)
    assert app.slider.value == 128 and tuple(app.slider.options) == experiments.DIST_DIMS
    app.slider.value = 8  # re-runs the drawing function
    assert app.slider.value == 8


def test_draw_functions_lesson_04():
    h = experiments.compute_coordinate_histogram(128, n=1000)
    ax = figures.draw_coordinate_histogram(None, h)
    assert len(ax.lines) == 2 and len(ax.patches) == 60
    # small d: the support [-1, 1] is in view and marked
    ax = figures.draw_coordinate_histogram(None, experiments.compute_coordinate_histogram(16, n=1000))
    assert len(ax.lines) == 4
    dims = [4, 8, 16]
    ax = figures.draw_gaussian_gap(None, dims, [experiments.gaussian_gap(d)[0] for d in dims], current=(8, 0.05))
    assert len(ax.lines) == 2


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


def pdf_ok(x, d):
    from scipy.special import beta

    return (1 - x ** 2) ** ((d - 3) / 2) / beta(0.5, (d - 1) / 2)


def test_coordinate_pdf():
    assert_passes(checks.check_coordinate_pdf, pdf_ok)
    assert_fails(checks.check_coordinate_pdf, lambda x, d: (1 - x ** 2) ** ((d - 3) / 2),
                 hint="normalising constant")
    assert_fails(checks.check_coordinate_pdf,
                 lambda x, d: np.sqrt(d / (2 * np.pi)) * np.exp(-d * x ** 2 / 2), hint="Gaussian")


def kurtosis_ok(d, n, seed):
    u = unit_ok(n, d, seed)
    return np.mean(u ** 4) / np.mean(u ** 2) ** 2


def test_coordinate_kurtosis():
    assert_passes(checks.check_coordinate_kurtosis, kurtosis_ok)
    assert_fails(checks.check_coordinate_kurtosis, lambda d, n, s: kurtosis_ok(d, n, s) - 3,
                 hint="excess kurtosis")

    def gaussian(d, n, seed):
        g = np.random.default_rng(seed).standard_normal((n, d))
        return np.mean(g ** 4) / np.mean(g ** 2) ** 2

    assert_fails(checks.check_coordinate_kurtosis, gaussian, hint="normalise")
