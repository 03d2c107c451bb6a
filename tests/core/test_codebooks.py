"""Lloyd-Max codebooks: published values, closed forms, quad and Monte-Carlo oracles."""
import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from turboquant_lab.codebooks import (
    GAUSSIAN_MSE,
    Codebook,
    coordinate_cdf,
    coordinate_pdf,
    expected_mse,
    expected_mse_reference,
    lloyd_max_codebook,
    lloyd_max_history,
    lloyd_max_step,
    mse_lower_bound,
    mse_upper_bound,
    uniform_codebook,
    unit_coordinate_pdf,
)

ALL_BITS = range(1, 9)
LAWS = [None, 2, 3, 4, 64, 128]


def beta_pdf_scaled(t, d):
    """Independent oracle: density of sqrt(d) u_1 from scipy.stats.beta."""
    a = (d - 1) / 2
    return stats.beta.pdf((1 + t / math.sqrt(d)) / 2, a, a) / (2 * math.sqrt(d))


def e_abs_t(d):
    """E|sqrt(d) u_1| = sqrt(d) Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)), to the last digit.

    The Gamma ratio r(d) obeys r(d + 2) = r(d) d / (d + 1) with r(2) = 2/sqrt(pi) and
    r(3) = sqrt(pi)/2; the rational product is exact (lgamma differences lose ~1e-12 at d=4096).
    """
    prod = Fraction(1)
    for k in range(2 if d % 2 == 0 else 3, d, 2):
        prod *= Fraction(k, k + 1)
    ratio = 2 / math.sqrt(math.pi) * float(prod) if d % 2 == 0 else math.sqrt(math.pi) / 2 * float(prod)
    return math.sqrt(d) * ratio / math.sqrt(math.pi)


def test_e_abs_t_oracle_agrees_with_scipy_gamma():
    for d in (2, 3, 4, 5, 16, 128):
        direct = math.sqrt(d) * special.gamma(d / 2) / (math.sqrt(math.pi) * special.gamma((d + 1) / 2))
        assert e_abs_t(d) == pytest.approx(direct, rel=1e-13)


# ----------------------------------------------------------------------------- the law


@pytest.mark.parametrize("d", [2, 3, 4, 7, 64, 1000])
def test_pdf_and_cdf_match_the_beta_law(d):
    t = np.linspace(-math.sqrt(d), math.sqrt(d), 201)[1:-1]
    np.testing.assert_allclose(coordinate_pdf(t, d), beta_pdf_scaled(t, d), rtol=1e-10)
    a = (d - 1) / 2
    np.testing.assert_allclose(coordinate_cdf(t, d), stats.beta.cdf((1 + t / math.sqrt(d)) / 2, a, a),
                               rtol=1e-10, atol=1e-15)
    x = t / math.sqrt(d)
    np.testing.assert_allclose(unit_coordinate_pdf(x, d), stats.beta.pdf((1 + x) / 2, a, a) / 2,
                               rtol=1e-10, atol=1e-300)
    out = np.array([-math.sqrt(d) - 0.1, math.sqrt(d) + 0.1, 1e6])
    np.testing.assert_array_equal(coordinate_pdf(out, d), 0.0)
    np.testing.assert_array_equal(coordinate_cdf(out, d), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(unit_coordinate_pdf(np.array([-1.5, 1.5]), d), 0.0)


@pytest.mark.parametrize("d", [3, 4, 10, 64])
def test_moments_of_the_scaled_law(d):
    s = math.sqrt(d)

    def moment(p):
        return integrate.quad(lambda t: t ** p * coordinate_pdf(t, d), -s, s, epsabs=1e-13)[0]

    assert moment(0) == pytest.approx(1.0, abs=1e-9)
    assert moment(2) == pytest.approx(1.0, abs=1e-9)                # variance 1/d before scaling
    assert moment(4) == pytest.approx(3 * d / (d + 2), abs=1e-9)    # kurtosis 3d/(d+2)


def test_gaussian_limit_and_scalar_in_scalar_out():
    t = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(coordinate_pdf(t), stats.norm.pdf(t), rtol=1e-13)
    np.testing.assert_allclose(coordinate_cdf(t), stats.norm.cdf(t), rtol=1e-13)
    np.testing.assert_allclose(coordinate_pdf(t, 10 ** 6), stats.norm.pdf(t), rtol=1e-3)  # O(t^4 / d)
    assert isinstance(coordinate_pdf(0.5, 16), float)
    # far tails keep their relative precision (no 1 - F near 1)
    assert coordinate_cdf(-30.0) == pytest.approx(stats.norm.sf(30.0), rel=1e-12, abs=0)
    tail = stats.beta.cdf((1 - 10 / math.sqrt(128)) / 2, 63.5, 63.5)
    assert coordinate_cdf(-10.0, 128) == pytest.approx(tail, rel=1e-12, abs=0)


# ----------------------------------------------------------------------------- Lloyd-Max values


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_gaussian_mse_matches_published_table(bits):
    assert lloyd_max_codebook(bits).mse == pytest.approx(GAUSSIAN_MSE[bits], rel=1e-3)


def test_one_bit_gaussian_is_plus_minus_sqrt_2_over_pi():
    cb = lloyd_max_codebook(1)
    c = math.sqrt(2 / math.pi)
    np.testing.assert_allclose(cb.centroids, [-c, c], rtol=1e-13)
    assert cb.mse == pytest.approx(1 - 2 / math.pi, rel=1e-13)
    np.testing.assert_array_equal(cb.boundaries, [0.0])


@pytest.mark.parametrize("d", [2, 3, 4, 5, 16, 128, 4096])
def test_one_bit_exact_law_is_e_abs_t(d):
    cb = lloyd_max_codebook(1, d)
    m = e_abs_t(d)
    np.testing.assert_allclose(cb.centroids, [-m, m], rtol=1e-14)
    assert cb.mse == pytest.approx(1 - m * m, rel=1e-13)   # E t^2 = 1


def test_uniform_law_d3_gives_the_uniform_quantizer():
    # d = 3: t is uniform on [-sqrt 3, sqrt 3]; Lloyd-Max is the uniform quantizer, MSE = 4**-bits
    for bits in ALL_BITS:
        cb = lloyd_max_codebook(bits, 3)
        n = 2 ** bits
        step = 2 * math.sqrt(3) / n
        np.testing.assert_allclose(cb.centroids, (np.arange(n) - (n - 1) / 2) * step, atol=1e-12)
        assert cb.mse == pytest.approx(4.0 ** -bits, rel=1e-9)


def test_exact_law_tends_to_gaussian():
    for bits in ALL_BITS:
        g = lloyd_max_codebook(bits)
        gaps = [np.abs(lloyd_max_codebook(bits, d).centroids - g.centroids).max()
                for d in (1024, 4096)]
        assert gaps[1] < gaps[0]
        assert gaps[0] / gaps[1] == pytest.approx(4.0, rel=0.05)   # the gap shrinks like 1/d
        assert lloyd_max_codebook(bits, 4096).mse == pytest.approx(g.mse, rel=1e-3)
        if bits <= 3:
            assert gaps[1] < 1e-3
        assert np.abs(lloyd_max_codebook(bits, 4).centroids - g.centroids).max() > 0.05


@pytest.mark.parametrize("d", LAWS)
def test_mse_agrees_with_quad(d):
    for bits in ALL_BITS:
        cb = lloyd_max_codebook(bits, d)
        assert cb.mse == pytest.approx(expected_mse_reference(cb.centroids, d), rel=1e-8)


@pytest.mark.parametrize("d", [None, 3, 4, 128])
@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_centroids_are_conditional_means_by_quad(bits, d):
    cb = lloyd_max_codebook(bits, d)
    s = math.inf if d is None else math.sqrt(d)
    pdf = stats.norm.pdf if d is None else (lambda t: beta_pdf_scaled(t, d))
    edges = np.concatenate(([-s], cb.boundaries, [s]))
    for lo, hi, c in zip(edges[:-1], edges[1:], cb.centroids):
        mass = integrate.quad(pdf, lo, hi, epsabs=1e-14, epsrel=1e-12)[0]
        first = integrate.quad(lambda t: t * pdf(t), lo, hi, epsabs=1e-14, epsrel=1e-12)[0]
        assert first / mass == pytest.approx(c, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_mse_agrees_with_monte_carlo_on_random_unit_vectors(bits):
    d, n = 64, 4000
    rng = np.random.default_rng(20250)
    g = rng.standard_normal((n, d))
    u = g / np.linalg.norm(g, axis=-1, keepdims=True)
    t = math.sqrt(d) * u
    for cb in (lloyd_max_codebook(bits, d), lloyd_max_codebook(bits)):
        per_vector = np.mean((t - cb.dequantize(cb.quantize(t))) ** 2, axis=-1)  # = ||u - u_hat||^2
        se = per_vector.std(ddof=1) / math.sqrt(n)
        assert abs(per_vector.mean() - expected_mse(cb.centroids, d)) < 4 * se


def test_lloyd_max_is_locally_optimal():
    rng = np.random.default_rng(3)
    for d in (None, 4, 64):
        cb = lloyd_max_codebook(3, d)
        for _ in range(5):
            jitter = 1e-3 * rng.standard_normal(cb.levels)
            assert expected_mse(cb.centroids + jitter, d) > cb.mse


@pytest.mark.parametrize("d", LAWS + [4096])
def test_symmetry_and_midpoint_boundaries(d):
    for bits in ALL_BITS:
        cb = lloyd_max_codebook(bits, d)
        assert cb.centroids.dtype == np.float64 and cb.centroids.shape == (2 ** bits,)
        assert cb.boundaries.shape == (2 ** bits - 1,)
        np.testing.assert_array_equal(cb.centroids, -cb.centroids[::-1])
        np.testing.assert_allclose(cb.boundaries, (cb.centroids[:-1] + cb.centroids[1:]) / 2, rtol=0, atol=0)
        assert np.all(np.diff(cb.centroids) > 0)
        if d is not None:
            assert np.all(np.abs(cb.centroids) < math.sqrt(d))
        # a Lloyd step from the codebook stays put: it is a fixed point
        np.testing.assert_allclose(lloyd_max_step(cb.centroids, d).centroids, cb.centroids, atol=1e-11)


@pytest.mark.parametrize("d", [None, 4, 5, 64, 128, 4096])
def test_mse_between_the_bounds(d):
    for bits in ALL_BITS:
        mse = lloyd_max_codebook(bits, d).mse
        assert mse_lower_bound(bits) < mse < mse_upper_bound(bits)


def test_arcsine_law_beats_the_gaussian_lower_bound():
    # 4**-bits is the bound for the Gaussian (and the sphere in high dimension); the d=2 arcsine law
    # has lower entropy, and its Lloyd-Max MSE drops below it: 1 bit gives 1 - 8/pi^2 < 1/4.
    assert lloyd_max_codebook(1, 2).mse == pytest.approx(1 - 8 / math.pi ** 2, rel=1e-12)
    for bits in ALL_BITS:
        assert lloyd_max_codebook(bits, 2).mse < mse_lower_bound(bits)


def test_bounds():
    assert mse_lower_bound(3) == 4.0 ** -3
    assert mse_upper_bound(1) == pytest.approx(math.sqrt(3) * math.pi / 8)
    np.testing.assert_allclose(mse_upper_bound(np.arange(1, 4)) / mse_lower_bound(np.arange(1, 4)),
                               math.sqrt(3) * math.pi / 2)
    # the Gaussian Lloyd-Max MSE approaches the upper bound (Panter-Dite) from below
    ratios = [lloyd_max_codebook(b).mse / mse_upper_bound(b) for b in ALL_BITS]
    assert all(np.diff(ratios) > 0) and ratios[-1] > 0.99


def test_cached_and_immutable():
    cb = lloyd_max_codebook(4, 128)
    assert lloyd_max_codebook(4, np.int64(128)) is cb
    with pytest.raises(ValueError):
        cb.centroids[0] = 0.0
    with pytest.raises(ValueError):
        cb.boundaries[0] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cb.mse = 0.0
    assert {cb: 1}[cb] == 1 and cb != lloyd_max_codebook(4, 64)
    assert "bits=4" in repr(cb) and "d=128" in repr(cb)


def test_codebook_validates_its_fields():
    with pytest.raises(ValueError, match="2\\*\\*bits"):
        Codebook(2, None, np.zeros(3), np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="boundaries"):
        Codebook(1, None, np.array([-1.0, 1.0]), np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="ascending"):
        Codebook(1, None, np.array([1.0, -1.0]), np.zeros(1), 0.0)


# ----------------------------------------------------------------------------- Lloyd iterations


@pytest.mark.parametrize("d", [None, 2, 64])
@pytest.mark.parametrize("init", ["span", "uniform"])
def test_history_mse_never_increases(d, init):
    for bits in (2, 3, 5):
        h = lloyd_max_history(bits, d, n_iter=25, init=init)
        assert len(h) == 26 and [s.iterations for s in h] == list(range(26))
        mses = np.array([s.mse for s in h])
        assert np.all(np.diff(mses) <= 1e-15)
        assert mses[-1] >= lloyd_max_codebook(bits, d).mse * (1 - 1e-12)
        for s in h:
            np.testing.assert_allclose(s.boundaries, (s.centroids[:-1] + s.centroids[1:]) / 2)


def test_history_converges_to_lloyd_max_and_starts_where_told():
    h = lloyd_max_history(2, None, n_iter=300, init="span")
    np.testing.assert_allclose(h[0].centroids, [-2.25, -0.75, 0.75, 2.25])
    assert h[0].mse > h[1].mse > h[-1].mse
    np.testing.assert_allclose(h[-1].centroids, lloyd_max_codebook(2).centroids, atol=1e-9)
    assert lloyd_max_history(3, 64, n_iter=0)[0].mse == uniform_codebook(3, 64).mse
    h = lloyd_max_history(1, 4, n_iter=1, init=[-0.1, 0.3])
    np.testing.assert_allclose(h[1].centroids, lloyd_max_step([0.3, -0.1], 4).centroids)


def test_lloyd_step_moves_to_conditional_means():
    c = np.array([-2.0, -0.1, 0.5, 1.0])            # not symmetric, on purpose
    nxt = lloyd_max_step(c)
    edges = np.concatenate(([-np.inf], (c[:-1] + c[1:]) / 2, [np.inf]))
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        mass = stats.norm.cdf(hi) - stats.norm.cdf(lo)
        assert nxt.centroids[i] == pytest.approx((stats.norm.pdf(lo) - stats.norm.pdf(hi)) / mass, rel=1e-12)
    assert nxt.iterations == 1 and nxt.mse <= expected_mse(c)


# ----------------------------------------------------------------------------- uniform and expected_mse


@pytest.mark.parametrize("d", [None, 2, 4, 64, 128])
def test_uniform_codebook_is_worse_than_lloyd_max(d):
    for bits in range(2, 9):
        u, lm = uniform_codebook(bits, d), lloyd_max_codebook(bits, d)
        assert u.mse > lm.mse * (1 + 1e-6)
        n = 2 ** bits
        step = u.centroids[1] - u.centroids[0]
        np.testing.assert_allclose(u.centroids, (np.arange(n) - (n - 1) / 2) * step, rtol=1e-12)
        assert u.iterations == 0
        # the step is the best one: a 1e-3 change either way costs MSE
        for f in (0.999, 1.001):
            assert expected_mse(u.centroids * f, d) > u.mse
    # at one bit the best uniform codebook is Lloyd-Max; for the uniform law (d=3) at any bits
    assert uniform_codebook(1, 64).mse == pytest.approx(lloyd_max_codebook(1, 64).mse, rel=1e-10)
    assert uniform_codebook(5, 3).mse == pytest.approx(lloyd_max_codebook(5, 3).mse, rel=1e-9)


@pytest.mark.parametrize("d", [None, 2, 3, 4, 64])
def test_expected_mse_of_arbitrary_codebooks_matches_quad(d):
    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 16):
        c = 2 * rng.standard_normal(n)
        c[0] = 9.0                                      # a level outside the support
        assert expected_mse(c, d) == pytest.approx(expected_mse_reference(c, d), rel=1e-10)
    b = np.sort(rng.standard_normal(3))
    c = rng.standard_normal(4)                           # cells mapped to unsorted levels
    assert expected_mse(c, d, b) == pytest.approx(expected_mse_reference(c, d, b), rel=1e-10)
    assert expected_mse(c, d) == pytest.approx(expected_mse(np.sort(c), d), rel=1e-15)


def test_expected_mse_known_values():
    assert expected_mse([0.0, 0.0]) == pytest.approx(1.0)               # E t^2
    assert expected_mse([-1.0, 1.0], 3) == pytest.approx(2 - math.sqrt(3), rel=1e-13)
    assert expected_mse([-5.0, 5.0], 4) == pytest.approx(1 - 2 * 5 * e_abs_t(4) + 25, rel=1e-13)


# ----------------------------------------------------------------------------- quantize / dequantize


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_dequantize_shapes_and_dtypes(dtype):
    cb = lloyd_max_codebook(3, 64)
    t = np.random.default_rng(0).standard_normal((2, 3, 16)).astype(dtype)
    codes = cb.quantize(t)
    assert codes.shape == t.shape and codes.dtype == np.uint8
    assert codes.max() < 8
    t_hat = cb.dequantize(codes)
    assert t_hat.shape == t.shape and t_hat.dtype == np.float64
    assert cb.dequantize(codes, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(t_hat, cb.centroids[codes])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.sampled_from([None, 2, 16]),
       st.lists(st.floats(-8, 8, allow_nan=False), min_size=1, max_size=30))
def test_quantize_picks_the_nearest_centroid(bits, d, values):
    cb = lloyd_max_codebook(bits, d)
    t = np.array(values)
    dist = np.abs(t[:, None] - cb.centroids[None, :])
    chosen = dist[np.arange(t.size), cb.quantize(t)]
    np.testing.assert_allclose(chosen, dist.min(axis=1), rtol=0, atol=1e-12)


def test_ties_go_to_the_upper_cell():
    cb = lloyd_max_codebook(2)
    np.testing.assert_array_equal(cb.quantize(cb.boundaries.copy()), [1, 2, 3])
    np.testing.assert_array_equal(cb.quantize(np.array([-1e9, 1e9])), [0, 3])


def test_bad_quantize_dequantize_input():
    cb = lloyd_max_codebook(2)
    with pytest.raises(TypeError):
        cb.quantize(np.arange(4))                       # integers
    with pytest.raises(ValueError):
        cb.quantize(np.array([0.0, np.nan]))
    with pytest.raises(TypeError):
        cb.dequantize(np.zeros(3))                      # float codes
    with pytest.raises(ValueError, match="\\[0, 4\\)"):
        cb.dequantize(np.array([0, 4]))
    with pytest.raises(ValueError):
        cb.dequantize(np.array([-1, 0]))


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bits, exc", [(0, ValueError), (9, ValueError), (2.5, TypeError),
                                       (True, TypeError), ("2", TypeError)])
def test_bad_bits_raise(bits, exc):
    for f in (lloyd_max_codebook, uniform_codebook, lloyd_max_history):
        with pytest.raises(exc, match="bits"):
            f(bits)


@pytest.mark.parametrize("d, exc", [(1, ValueError), (0, ValueError), (-4, ValueError),
                                    ("x", TypeError), (64.0, TypeError)])
def test_bad_d_raises(d, exc):
    for f in (lambda: lloyd_max_codebook(2, d), lambda: uniform_codebook(2, d),
              lambda: coordinate_pdf(0.0, d), lambda: coordinate_cdf(0.0, d),
              lambda: unit_coordinate_pdf(0.0, d), lambda: expected_mse([-1.0, 1.0], d),
              lambda: lloyd_max_step([-1.0, 1.0], d)):
        with pytest.raises(exc, match="d"):
            f()


def test_other_bad_input():
    with pytest.raises(ValueError, match="2\\*\\*bits"):
        lloyd_max_step([-1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="init"):
        lloyd_max_history(2, init="random")
    with pytest.raises(ValueError, match="init"):
        lloyd_max_history(2, init=[0.0, 1.0])
    with pytest.raises(ValueError, match="n_iter"):
        lloyd_max_history(2, n_iter=-1)
    with pytest.raises(ValueError, match="boundaries"):
        expected_mse([-1.0, 0.0, 1.0], boundaries=[0.5, -0.5])
    with pytest.raises(ValueError, match="boundaries"):
        expected_mse([-1.0, 1.0], boundaries=[0.0, 1.0])
    with pytest.raises(ValueError):
        expected_mse([-1.0, np.inf])
    with pytest.raises(TypeError, match="d"):
        unit_coordinate_pdf(0.0, None)


# ----------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_quantize_dequantize_on_cupy():
    cp = pytest.importorskip("cupy")
    cb = lloyd_max_codebook(4, 128)
    t = np.random.default_rng(1).standard_normal((3, 128)).astype(np.float32)
    codes = cb.quantize(cp.asarray(t))
    assert isinstance(codes, cp.ndarray) and codes.dtype == cp.uint8 and codes.shape == t.shape
    np.testing.assert_array_equal(codes.get(), cb.quantize(t))
    t_hat = cb.dequantize(codes)
    assert isinstance(t_hat, cp.ndarray)
    np.testing.assert_array_equal(t_hat.get(), cb.dequantize(cb.quantize(t)))
    assert isinstance(coordinate_pdf(cp.asarray(t), 128), cp.ndarray)
