"""PolarQuant: the polar transform, the angle laws and codebooks, the quantizer, its errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from turboquant_lab._parallel import forced_workers
from turboquant_lab.codebooks import (
    CoordinateLaw,
    ScalarLaw,
    expected_mse,
    lloyd_max_codebook,
    lloyd_max_step,
)
from turboquant_lab.data import essay_vector, make_kv_vectors
from turboquant_lab.packing import unpack_bits
from turboquant_lab.polar import (
    PolarAngleLaw,
    PolarEncoded,
    PolarQuant,
    angle_codebook,
    polar_angle_law,
    polar_bits_per_coordinate,
    polar_expected_mse,
    polar_inverse,
    polar_transform,
)
from turboquant_lab.rotation import random_orthogonal
from turboquant_lab.turboquant import TurboQuantMSE

ROTATIONS = ["hadamard", "dense"]
#: the issue's settings at d = 128: level bits -> bits per coordinate (codes + d/16 float16 radii)
SETTINGS = {(4, 2, 2, 2): 3.875, (3, 2, 2, 2): 3.375, (2, 2, 2, 2): 2.875, (4, 3, 3, 3): 4.3125}


def unit_vectors(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def relative_mse(q, x):
    x_hat = q.decode(q.encode(x)).astype(np.float64)
    x64 = np.asarray(x, np.float64)
    return float(np.mean(np.sum((x64 - x_hat) ** 2, axis=-1) / np.sum(x64 ** 2, axis=-1)))


# --------------------------------------------------------------------------- the transform


@pytest.mark.parametrize("levels", [1, 2, 3, 5, 7])
def test_round_trip_to_float64_precision(levels):
    x = np.random.default_rng(levels).standard_normal((50, 3, 128)) * 10.0 ** np.arange(-3, 4, 3)[:, None]
    radii, angles = polar_transform(x, levels)
    assert radii.shape == (50, 3, 128 >> levels) and len(angles) == levels
    for level, a in enumerate(angles, start=1):
        assert a.shape == (50, 3, 128 >> level) and a.dtype == np.float64
        lo, hi = polar_angle_law(level).support
        assert np.all((a >= lo) & (a < hi)) if level == 1 else np.all((a >= lo) & (a <= hi))
    back = polar_inverse(radii, angles)
    scale = np.linalg.norm(x, axis=-1, keepdims=True)
    assert np.max(np.abs(back - x) / scale) < 8 * np.finfo(np.float64).eps * levels
    # the radii are the norms of blocks of 2**levels coordinates
    blocks = x.reshape(50, 3, -1, 1 << levels)
    np.testing.assert_allclose(radii, np.linalg.norm(blocks, axis=-1), rtol=1e-14)


def test_transform_by_hand_and_dtypes():
    radii, (a1, a2) = polar_transform(np.array([3.0, 4.0, 0.0, -2.0]), 2)
    np.testing.assert_allclose(a1, [math.atan2(4, 3), 1.5 * math.pi])
    np.testing.assert_allclose(a2, [math.atan2(2, 5)])
    np.testing.assert_allclose(radii, [math.sqrt(29)])
    r32, a32 = polar_transform(np.ones((2, 8), np.float32), 3)
    assert r32.dtype == np.float32 and all(a.dtype == np.float32 for a in a32)
    np.testing.assert_allclose(r32, math.sqrt(8), rtol=1e-6)
    np.testing.assert_allclose(a32[1], math.pi / 4, rtol=1e-6)
    assert polar_transform(np.ones((2, 8), np.float16), 1).radii.dtype == np.float32
    # a negative zero or a tiny negative angle never reaches 2 pi
    _, (a,) = polar_transform(np.array([1.0, -1e-300]), 1)
    assert 0.0 <= a[0] < 2 * math.pi


@settings(max_examples=40, deadline=None)
@given(levels=st.integers(1, 6), extra=st.integers(0, 2), rows=st.integers(1, 5),
       seed=st.integers(0, 2 ** 31))
def test_round_trip_property(levels, extra, rows, seed):
    d = 1 << (levels + extra)
    x = np.random.default_rng(seed).standard_normal((rows, d))
    back = polar_inverse(*polar_transform(x, levels))
    np.testing.assert_allclose(back, x, rtol=0, atol=1e-13 * np.abs(x).max())
    # scaling the vector scales the radii and leaves every angle alone
    r, a = polar_transform(x, levels)
    r2, a2 = polar_transform(4.0 * x, levels)
    np.testing.assert_array_equal(r2, 4.0 * r)
    for u, v in zip(a, a2):
        np.testing.assert_array_equal(u, v)


def test_angles_of_a_unit_vector_are_those_of_its_gaussian():
    g = np.random.default_rng(3).standard_normal((1000, 64))
    u = g / np.linalg.norm(g, axis=1, keepdims=True)
    for a, b in zip(polar_transform(g, 6).angles, polar_transform(u, 6).angles):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    # what changes is the radii: for 4 levels, 4 radii whose squares are Dirichlet(8, 8, 8, 8)
    r = polar_transform(u, 4).radii
    np.testing.assert_allclose(np.sum(r ** 2, axis=1), 1.0)
    assert stats.kstest(r[:, 0] ** 2, stats.beta(8, 24).cdf).pvalue > 0.01


# --------------------------------------------------------------------------- the laws


@pytest.mark.parametrize("level", [1, 2, 3, 4, 6, 9])
def test_pdf_and_cdf(level):
    law = polar_angle_law(level)
    lo, hi = law.support
    assert integrate.quad(law.pdf, lo, hi, limit=200)[0] == pytest.approx(1.0, abs=1e-10)
    for t in np.linspace(lo, hi, 11):
        assert law.cdf(t) == pytest.approx(integrate.quad(law.pdf, lo, t, limit=200)[0], abs=1e-10)
    assert law.pdf(hi + 0.1) == 0.0 and law.pdf(-0.1) == 0.0
    if level > 1:
        k = 2 ** (level - 1)
        psi = np.linspace(0.05, 1.5, 7)
        f = np.sin(2 * psi) ** (k - 1)
        np.testing.assert_allclose(law.pdf(psi) / f, law.pdf(psi[0]) / f[0], rtol=1e-10)  # sin^(k-1)(2 psi)
        # sin^2 psi ~ Beta(k/2, k/2)
        s = np.linspace(0.01, 0.99, 9)
        np.testing.assert_allclose(law.cdf(np.arcsin(np.sqrt(s))), stats.beta(k / 2, k / 2).cdf(s),
                                   rtol=1e-10)
        np.testing.assert_allclose(law.pdf(psi), law.pdf(np.pi / 2 - psi), rtol=1e-10)  # symmetric about pi/4
    else:
        assert law.circular and law.pdf(1.0) == pytest.approx(1 / (2 * np.pi))


@pytest.mark.parametrize("level", [1, 2, 3, 5])
def test_samples_follow_the_law(level):
    law = polar_angle_law(level)
    x = law.sample(20_000, seed=level)
    assert stats.kstest(x, law.cdf).pvalue > 0.01
    np.testing.assert_array_equal(x, law.sample(20_000, seed=np.random.default_rng(level)))


def _rotated_angles(x, n_rotations, levels, seed0=100):
    """Angles of ``x`` under ``n_rotations`` independent Haar rotations, per level, pooled over positions."""
    d = x.shape[-1]
    ys = np.stack([random_orthogonal(d, seed=seed0 + s) @ x for s in range(n_rotations)])
    return polar_transform(ys, levels).angles


def test_each_level_follows_its_law_ks():
    # a fixed, outlier-heavy vector under random rotations: its direction becomes uniform on the
    # sphere, and each level's angles follow their law exactly (KS at the 1% level)
    x, _ = essay_vector()
    angles = _rotated_angles(x, 400, 6)
    for level, a in enumerate(angles, start=1):
        p = stats.kstest(a.ravel(), polar_angle_law(level).cdf).pvalue
        assert p > 0.01, (level, p)
    # the randomized Hadamard of Gaussian vectors is Gaussian: the same laws
    pq = PolarQuant(64, (2,) * 6, seed=1)
    g = np.random.default_rng(9).standard_normal((3000, 64))
    for level, a in enumerate(polar_transform(pq._hadamard.forward(g), 6).angles, start=1):
        assert stats.kstest(a.ravel(), polar_angle_law(level).cdf).pvalue > 0.01


def test_concentration_around_pi_over_4():
    # Var(sin^2 psi) = 1 / (4 (k + 1)): the spread shrinks like 2**(-l/2)
    for level in range(2, 8):
        k = 2 ** (level - 1)
        s = np.sin(polar_angle_law(level).sample(50_000, seed=level)) ** 2
        assert s.var() == pytest.approx(1 / (4 * (k + 1)), rel=0.03)


def test_angles_are_uncorrelated_across_levels():
    x, _ = essay_vector()
    a1, a2, a3, a4 = _rotated_angles(x, 3000, 4)
    n = a1.shape[0]
    bound = 4 / math.sqrt(n)

    def corr(u, v):
        return np.corrcoef(u, v)[0, 1]

    # each angle against its parent and grandparent (the angle of the pair it belongs to), and siblings
    pairs = [(np.cos(a1[:, 0]), a2[:, 0]), (np.sin(a1[:, 0]), a2[:, 0]), (a1[:, 1], a2[:, 0]),
             (a2[:, 0], a3[:, 0]), (a2[:, 1], a3[:, 0]), (a3[:, 0], a4[:, 0]), (a2[:, 0], a4[:, 0]),
             (a2[:, 0], a2[:, 1]), (np.cos(a1[:, 0]), np.cos(a1[:, 1]))]
    for u, v in pairs:
        assert abs(corr(u, v)) < bound
    # and not trivially: the same check sees the dependence of a level-2 angle on its own radii
    r1 = polar_transform(np.stack([random_orthogonal(64, seed=100 + s) @ x for s in range(3000)]), 1).radii
    assert abs(corr(r1[:, 1] / (r1[:, 0] + r1[:, 1]), a2[:, 0])) > 0.5


# --------------------------------------------------------------------------- the codebooks


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6])
def test_codebooks_are_stationary(level, bits):
    law = polar_angle_law(level)
    cb = angle_codebook(level, bits)
    assert cb is angle_codebook(level, bits) and cb.law is law and cb.d is None
    lo, hi = law.support
    c = cb.centroids
    assert np.all(np.diff(c) > 0) and c[0] > lo and c[-1] < hi
    # half-step 1, cells for these centroids: nearest centroid = midpoints, the stored boundaries
    np.testing.assert_array_equal(cb.boundaries, 0.5 * (c[:-1] + c[1:]))
    # half-step 2, centroids for these cells: the direction of each cell's mean point e^{i psi}
    edges = np.concatenate(([cb.wrap - 2 * np.pi if law.circular else lo], cb.boundaries,
                            [cb.wrap if law.circular else hi]))
    p, m1 = law.cell_moments(edges[:-1], edges[1:])
    np.testing.assert_allclose(np.mod(np.angle(m1), 2 * np.pi), c, rtol=0, atol=1e-11)
    # both half-steps together: one Lloyd step moves nothing
    np.testing.assert_allclose(lloyd_max_step(c, law=law).centroids, c, rtol=0, atol=1e-11)
    assert lloyd_max_step(c, law=law).mse == pytest.approx(cb.mse, rel=1e-10)


@pytest.mark.parametrize("level", [2, 3, 4])
def test_centroids_and_mse_by_quad(level):
    law = polar_angle_law(level)
    for bits in (1, 2, 3):
        cb = angle_codebook(level, bits)
        edges = np.concatenate(([0.0], cb.boundaries, [np.pi / 2]))
        total = 0.0
        for a, b, c in zip(edges[:-1], edges[1:], cb.centroids):
            ec = integrate.quad(lambda t: math.cos(t) * law.pdf(t), a, b, epsabs=1e-14)[0]
            es = integrate.quad(lambda t: math.sin(t) * law.pdf(t), a, b, epsabs=1e-14)[0]
            assert math.atan2(es, ec) == pytest.approx(c, abs=1e-10)
            total += integrate.quad(lambda t: (2 - 2 * math.cos(t - c)) * law.pdf(t), a, b, epsabs=1e-15)[0]
        assert cb.mse == pytest.approx(total, rel=1e-8)
        # symmetric about pi/4
        np.testing.assert_allclose(cb.centroids, np.pi / 2 - cb.centroids[::-1], atol=1e-13)


def test_level_one_is_the_uniform_codebook():
    # uniform law on a circle: equal cells of width w = 2 pi / n are optimal (the cell error
    # 2 w - 4 sin(w / 2) is convex in w), in any rotation; the codebook puts a boundary at 0
    for bits in range(1, 9):
        n = 2 ** bits
        w = 2 * np.pi / n
        cb = angle_codebook(1, bits)
        np.testing.assert_allclose(cb.centroids, (np.arange(n) + 0.5) * w, atol=1e-13)
        np.testing.assert_allclose(cb.boundaries, np.arange(1, n) * w, atol=1e-13)
        assert cb.wrap == pytest.approx(0.0, abs=1e-12)
        assert cb.mse == pytest.approx(2 - 2 * math.sin(w / 2) / (w / 2), rel=1e-10)
        psi = np.linspace(0, 2 * np.pi, 1001)[:-1]
        np.testing.assert_array_equal(cb.quantize(psi), np.minimum(np.floor(psi / w), n - 1).astype(np.uint8))
    # any rotation of it is as good
    law = polar_angle_law(1)
    c = angle_codebook(1, 3).centroids
    assert expected_mse(np.sort(np.mod(c + 0.3, 2 * np.pi)), law=law) == pytest.approx(
        angle_codebook(1, 3).mse, rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 2 * np.pi, exclude_max=True), min_size=4, max_size=4, unique=True),
       st.lists(st.floats(-10, 10), min_size=1, max_size=20))
def test_circular_codebook_quantizes_to_the_nearest_point_on_the_circle(levels, values):
    law = polar_angle_law(1)
    c = np.sort(np.array(levels))
    if np.min(np.diff(np.concatenate([c, [c[0] + 2 * np.pi]]))) < 1e-6:
        return
    cb = lloyd_max_step(c, law=law)  # a circular codebook whose wrap boundary is anywhere
    t = np.array(values)
    gap = np.abs(np.angle(np.exp(1j * (t[:, None] - cb.centroids[None, :]))))  # circular distance
    chosen = gap[np.arange(t.size), cb.quantize(t)]
    np.testing.assert_allclose(chosen, gap.min(axis=1), atol=1e-9)


def test_codebooks_are_locally_optimal_and_beat_monte_carlo():
    rng = np.random.default_rng(0)
    for level in (2, 3, 4):
        law = polar_angle_law(level)
        for bits in (2, 3):
            cb = angle_codebook(level, bits)
            for _ in range(4):
                assert expected_mse(cb.centroids + 2e-3 * rng.standard_normal(cb.levels), law=law) > cb.mse
            psi = law.sample(200_000, seed=bits)
            chord = 2 - 2 * np.cos(psi - cb.dequantize(cb.quantize(psi)))
            assert abs(chord.mean() - cb.mse) < 4 * chord.std() / math.sqrt(psi.size)


def test_the_generalised_machinery():
    # the coordinate law through law= is the very same codebook; d and law are exclusive
    assert lloyd_max_codebook(3, law=CoordinateLaw(64)) is lloyd_max_codebook(3, 64)
    assert isinstance(polar_angle_law(2), ScalarLaw) and polar_angle_law(2) == PolarAngleLaw(2)
    assert "PolarAngleLaw(level=3)" in repr(angle_codebook(3, 2))
    with pytest.raises(ValueError, match="not both"):
        lloyd_max_codebook(2, 64, law=polar_angle_law(2))
    with pytest.raises(TypeError, match="ScalarLaw"):
        lloyd_max_codebook(2, law="beta")
    with pytest.raises(TypeError, match="ScalarLaw"):
        expected_mse([0.1, 0.2], law=3)
    for bad in (0, -1, 25):
        with pytest.raises(ValueError, match="level"):
            polar_angle_law(bad)
    with pytest.raises(TypeError, match="level"):
        polar_angle_law(1.5)


# --------------------------------------------------------------------------- storage


def test_bits_per_coordinate_of_the_paper_setting_is_exactly_3875():
    x = np.random.default_rng(0).standard_normal((1000, 128)).astype(np.float32)
    pq = PolarQuant(128, (4, 2, 2, 2))
    enc = pq.encode(x)
    assert [c.shape for c in enc.codes] == [(1000, 32), (1000, 8), (1000, 4), (1000, 2)]
    assert all(c.dtype == np.uint8 for c in enc.codes)
    assert enc.radii.shape == (1000, 8) and enc.radii.dtype == np.float16
    assert enc.nbytes == 1000 * (32 + 8 + 4 + 2 + 16) == 62_000
    assert enc.bits_per_coordinate == 3.875 == pq.bits_per_coordinate
    assert polar_bits_per_coordinate((4, 2, 2, 2)) == 3.875
    for level_bits, bpc in SETTINGS.items():
        assert PolarQuant(128, level_bits).encode(x).bits_per_coordinate == bpc
        assert polar_bits_per_coordinate(level_bits) == bpc == polar_bits_per_coordinate(level_bits, 128)
    # bytes are paid whole per level: at d = 32 the 2 level-4 angles of 2 bits take a byte
    enc32 = PolarQuant(32, (4, 2, 2, 2)).encode(x[:, :32])
    assert enc32.bits_per_coordinate == (8 + 2 + 1 + 1 + 4) * 8 / 32 == 4.0
    assert polar_bits_per_coordinate((4, 2, 2, 2), 32) == 4.0
    # padding is paid for, as in TurboQuantMSE
    assert PolarQuant(96, (4, 2, 2, 2)).encode(x[:, :96]).bits_per_coordinate == 62 * 8 / 96


# --------------------------------------------------------------------------- distortion


@pytest.fixture(scope="module")
def unit_10k():
    return unit_vectors(10_000, 128, seed=2024).astype(np.float32)


@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("level_bits", list(SETTINGS) + [(2,) * 7, (1, 1, 1, 1)])
def test_mse_of_unit_vectors_matches_the_prediction(unit_10k, level_bits, rotation):
    # 2 (1 - prod_l (1 - D_l / 2)): exact for uniformly random directions; the float16 radii add ~1e-7
    pq = PolarQuant(128, level_bits, seed=7, rotation=rotation)
    mse = relative_mse(pq, unit_10k)
    assert abs(mse / pq.expected_mse - 1) < 0.015, (mse, pq.expected_mse)


def test_prediction_formula_from_the_codebooks():
    for level_bits in SETTINGS:
        prod = np.prod([1 - angle_codebook(level, b).mse / 2 for level, b in enumerate(level_bits, 1)])
        assert polar_expected_mse(level_bits) == pytest.approx(2 * (1 - prod), rel=1e-14)
    assert polar_expected_mse((4, 2, 2, 2)) == pytest.approx(0.03208, abs=5e-5)
    # at equal bits per coordinate TurboQuantMSE's prediction is lower (lesson 12)
    assert TurboQuantMSE(128, 3).expected_mse < polar_expected_mse((4, 2, 2, 2)) * 1.1
    assert TurboQuantMSE(128, 4).expected_mse < polar_expected_mse((4, 3, 3, 3))


def test_outlier_vectors_and_the_hadamard():
    # structured inputs: the dense rotation is on the prediction on average over rotations,
    # the randomized Hadamard stays close to it
    x = make_kv_vectors(3000, 128, seed=1)
    dense = np.mean([relative_mse(PolarQuant(128, seed=s, rotation="dense"), x) for s in range(6)])
    assert abs(dense / polar_expected_mse((4, 2, 2, 2)) - 1) < 0.05
    had = relative_mse(PolarQuant(128, seed=3), x) / polar_expected_mse((4, 2, 2, 2))
    assert 0.8 < had < 1.2


def test_inner_products_are_shrunk_by_one_minus_half_d():
    rng = np.random.default_rng(11)
    x = unit_vectors(4000, 64, seed=12)
    y = x + rng.standard_normal(x.shape) / 8
    ratios = []
    for s in range(8):
        pq = PolarQuant(64, (2, 2, 2, 2), seed=s, rotation="dense")
        est = np.sum(pq.decode(pq.encode(x)) * y, axis=1)
        ratios.append(est.sum() / np.sum(x * y))
    assert np.mean(ratios) == pytest.approx(1 - pq.expected_mse / 2, abs=0.01)
    # the decoded vectors keep the norm (up to the float16 radii)
    x_hat = pq.decode(pq.encode(x))
    np.testing.assert_allclose(np.linalg.norm(x_hat, axis=1), 1.0, rtol=2e-3)


# --------------------------------------------------------------------------- the fast path


@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("d, level_bits", [(128, (4, 2, 2, 2)), (96, (3, 2, 2, 2)), (64, (5, 3, 1, 2, 2, 6)),
                                           (128, (8, 8))])
def test_fast_path_matches_reference(d, level_bits, rotation):
    if rotation == "dense" and d % (1 << len(level_bits)):
        pytest.skip("d not a multiple of 2**levels")
    x = np.random.default_rng(d).standard_normal((3000, d)).astype(np.float32)
    pq = PolarQuant(d, level_bits, seed=5, rotation=rotation)
    fast, ref = pq.encode(x), pq.encode_reference(x)
    np.testing.assert_allclose(fast.radii, ref.radii, rtol=2.0 ** -10, atol=0)
    for cb, a, b, n in zip(pq.codebooks, fast.codes, ref.codes, pq.n_angles):
        ca, cr = unpack_bits(a, cb.bits, n), unpack_bits(b, cb.bits, n)
        differ = ca != cr
        assert differ.mean() < 1e-4  # float32 against float64: only at a boundary
        if differ.any():
            assert np.all(np.abs(ca[differ].astype(int) - cr[differ].astype(int)) % (cb.levels - 1) <= 1)
    x_fast, x_ref = pq.decode(fast), pq.decode_reference(fast)
    assert x_fast.dtype == np.float32 and x_fast.shape == x.shape
    scale = np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(x_fast / scale, x_ref / scale, atol=2e-6)
    # the array-module path (what a CuPy array takes) agrees with the NumPy one
    codes, radii = pq._encode_xp(x)
    np.testing.assert_allclose(radii, fast.radii.astype(np.float32), rtol=2.0 ** -10)
    np.testing.assert_allclose(pq._decode_xp(list(fast.codes), fast.radii), x_fast, atol=2e-6 * scale.max())


def test_blocks_and_threads_do_not_change_the_codes():
    pq = PolarQuant(64, (3, 2, 2), seed=1)
    rows = 5 * pq._block_rows + 17
    x = np.random.default_rng(2).standard_normal((rows, 64)).astype(np.float32)
    with forced_workers(2):
        enc = pq.encode(x)
        x_hat = pq.decode(enc)
    for i in (0, pq._block_rows, rows - 1):
        one = pq.encode(x[i])
        for a, b in zip(enc.codes, one.codes):
            np.testing.assert_array_equal(a[i], b)
        np.testing.assert_allclose(x_hat[i], pq.decode(one), rtol=0, atol=1e-6 * np.abs(x_hat[i]).max())


# --------------------------------------------------------------------------- properties


@settings(max_examples=15, deadline=None)
@given(log_d=st.integers(3, 8), seed=st.integers(0, 2 ** 32 - 1), rotation=st.sampled_from(ROTATIONS),
       bits=st.lists(st.integers(1, 5), min_size=1, max_size=3))
def test_codec_properties(log_d, seed, rotation, bits):
    d = 1 << log_d
    level_bits = tuple(bits)
    x = np.random.default_rng(6).standard_normal((20, d)).astype(np.float32)
    pq = PolarQuant(d, level_bits, seed=seed, rotation=rotation)
    enc = pq.encode(x)
    # the same seed gives the same codes, another seed other codes
    again = PolarQuant(d, level_bits, seed=seed, rotation=rotation).encode(x)
    for a, b in zip(enc.codes, again.codes):
        np.testing.assert_array_equal(a, b)
    other = PolarQuant(d, level_bits, seed=seed + 1, rotation=rotation).encode(x)
    assert not all(np.array_equal(a, b) for a, b in zip(enc.codes, other.codes))
    # scaling by a power of two scales the radii and keeps every code
    big = pq.encode(x * np.float32(8.0))
    for a, b in zip(enc.codes, big.codes):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(big.radii, (enc.radii.astype(np.float32) * 8).astype(np.float16))
    # decoded shape, dtype, norm kept; storage counts every byte
    x_hat = pq.decode(enc)
    assert x_hat.shape == x.shape and x_hat.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x_hat, axis=1), np.linalg.norm(x, axis=1), rtol=2e-3)
    assert enc.nbytes == 20 * (sum(pq.n_bytes) + 2 * pq.n_radii)
    assert enc.bits_per_coordinate == pq.bits_per_coordinate


@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("shape", [(128,), (4, 128), (2, 3, 128)])
def test_round_trip_shapes_and_inner_product(shape, rotation):
    pq = PolarQuant(128, (3, 2, 2, 2), rotation=rotation)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    enc = pq.encode(x)
    assert enc.shape == shape[:-1] and isinstance(enc, PolarEncoded) and enc.levels == 4
    x_hat = pq.decode(enc)
    assert x_hat.shape == shape
    np.testing.assert_array_equal(x_hat.reshape(-1, 128), pq.decode(pq.encode(x.reshape(-1, 128))))
    y = np.random.default_rng(2).standard_normal((5, 128))
    est = pq.inner_product(enc, y)
    assert est.shape == (5,) + shape[:-1]
    np.testing.assert_allclose(est, np.tensordot(y, x_hat, axes=([1], [-1])), rtol=1e-4, atol=1e-4)
    assert pq.inner_product(enc, y[0]).shape == shape[:-1]


def test_zero_vector_decodes_to_zero():
    pq = PolarQuant(128, seed=0)
    x = np.random.default_rng(5).standard_normal((4, 128)).astype(np.float32)
    x[2] = 0.0
    with np.errstate(all="raise"):
        x_hat = pq.decode(pq.encode(x))
    assert np.all(x_hat[2] == 0.0) and np.all(np.isfinite(x_hat))
    assert np.all(pq.decode(pq.encode(np.zeros(128))) == 0.0)


def test_repr_and_attributes():
    pq = PolarQuant(100, (4, 2, 2, 2))
    assert pq.d_pad == 128 and pq.n_radii == 8 and pq.n_angles == (64, 32, 16, 8)
    assert "d_pad=128" in repr(pq) and "level_bits=(4, 2, 2, 2)" in repr(pq)
    assert [cb.bits for cb in pq.codebooks] == [4, 2, 2, 2]
    assert pq.codebooks[1] is angle_codebook(2, 2)


# --------------------------------------------------------------------------- errors


def test_bad_construction():
    with pytest.raises(ValueError, match="at least 2"):
        PolarQuant(1)
    with pytest.raises(ValueError, match="rotation"):
        PolarQuant(64, rotation="fft")
    with pytest.raises(ValueError, match="level_bits\\[1\\]"):
        PolarQuant(64, (4, 9))
    with pytest.raises(ValueError, match="level_bits\\[0\\]"):
        PolarQuant(64, (0, 2))
    with pytest.raises(TypeError, match="level_bits"):
        PolarQuant(64, 4)
    with pytest.raises(TypeError, match="level_bits"):
        PolarQuant(64, (4, 2.5))
    with pytest.raises(ValueError, match="at least one level"):
        PolarQuant(64, ())
    with pytest.raises(ValueError, match="at most 5 level"):
        PolarQuant(32, (2,) * 6)
    with pytest.raises(ValueError, match="multiple of 2\\*\\*4"):
        PolarQuant(24, (4, 2, 2, 2), rotation="dense")


def test_bad_input():
    pq = PolarQuant(64, (3, 2))
    with pytest.raises(ValueError, match="last axis 63"):
        pq.encode(np.zeros((3, 63), np.float32))
    x = np.ones((3, 64), np.float32)
    x[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pq.encode(x)
    with pytest.raises(TypeError, match="floating-point"):
        pq.encode(np.ones((3, 64), np.int64))
    with pytest.raises(ValueError, match="empty"):
        pq.encode(np.zeros((0, 64), np.float32))
    with pytest.raises(ValueError, match="float16"):
        pq.encode(np.full((2, 64), 4e4, np.float32))  # norm 3.2e5: blocks of 4 rotated coordinates ~8e4
    # norm 5.6e4: every radius fits
    assert np.isfinite(pq.encode(np.full((2, 64), 7e3, np.float32)).radii).all()
    with pytest.raises(ValueError, match="last axis"):
        pq.inner_product(pq.encode(np.ones((2, 64))), np.ones(32))


def test_decode_with_another_quantizer():
    x = np.random.default_rng(9).standard_normal((5, 64)).astype(np.float32)
    enc = PolarQuant(64, (3, 2), seed=0).encode(x)
    with pytest.raises(ValueError, match="level_bits"):
        PolarQuant(64, (3, 3), seed=0).decode(enc)
    with pytest.raises(ValueError, match="another rotation"):
        PolarQuant(64, (3, 2), seed=1).decode(enc)
    with pytest.raises(ValueError, match="another rotation"):
        PolarQuant(64, (3, 2), seed=0, rotation="dense").decode(enc)
    with pytest.raises(TypeError, match="PolarEncoded"):
        PolarQuant(64, (3, 2)).decode(enc.codes)
    with pytest.raises(TypeError, match="PolarEncoded"):
        PolarQuant(64, (3, 2)).inner_product(TurboQuantMSE(64, 2).encode(x), x[0])


def test_bad_transform_input():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*3"):
        polar_transform(np.ones(12), 3)
    with pytest.raises(TypeError, match="levels"):
        polar_transform(np.ones(8), 2.0)
    with pytest.raises(ValueError, match="levels"):
        polar_transform(np.ones(8), 0)
    with pytest.raises(TypeError, match="floating-point"):
        polar_transform(np.ones(8, np.int32), 1)
    r, a = polar_transform(np.ones((2, 8)), 2)
    with pytest.raises(ValueError, match="angles\\[0\\] has shape"):
        polar_inverse(r, (a[1], a[1]))
    with pytest.raises(ValueError, match="non-empty"):
        polar_inverse(r, ())


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_cupy_input_stays_on_the_gpu():
    cp = pytest.importorskip("cupy")
    pq = PolarQuant(128, (4, 2, 2, 2), seed=0)
    x = np.random.default_rng(10).standard_normal((256, 128)).astype(np.float32)
    enc = pq.encode(cp.asarray(x))
    assert all(isinstance(c, cp.ndarray) for c in enc.codes) and isinstance(enc.radii, cp.ndarray)
    x_hat = pq.decode(enc)
    assert isinstance(x_hat, cp.ndarray)
    host = pq.encode(x)
    assert np.mean([np.mean(cp.asnumpy(a) == b) for a, b in zip(enc.codes, host.codes)]) > 0.999
    np.testing.assert_allclose(cp.asnumpy(x_hat), pq.decode(host), atol=1e-3 * np.abs(x).max())
    r, angles = polar_transform(cp.asarray(x), 4)
    assert isinstance(r, cp.ndarray) and all(isinstance(a, cp.ndarray) for a in angles)
    assert isinstance(pq.inner_product(enc, cp.asarray(x[:2])), cp.ndarray)
