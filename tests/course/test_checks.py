"""The exercise checkers: a correct answer passes, typical mistakes fail with their hint.

Every checker of ``turboquant_lab.checks`` gets a correct implementation (it
must pass), at least one typical wrong one (it must fail, and the hint must
name the mistake), the exercise stub (``raise NotImplementedError``: "not
attempted") and, for some, code that crashes (a failure that reports the
exception instead of raising it).
"""
import math

import numpy as np
import pytest

from turboquant_lab import checks
from turboquant_lab.checks import FAILED, NOT_ATTEMPTED
from turboquant_lab.codebooks import lloyd_max_codebook
from turboquant_lab.hadamard import fwht
from turboquant_lab.packing import pack_bits, unpack_bits
from turboquant_lab.rotation import RandomizedHadamard, random_orthogonal
from turboquant_lab.uniform import uniform_dequantize, uniform_quantize


from checker_helpers import assert_fails, assert_passes, stub  # noqa: E402


# -------------------------------------------------------------------------- the machinery


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


def test_every_checker_says_not_attempted_for_the_stub():
    for name in checks.__all__:
        if name.startswith("check_"):
            checker = getattr(checks, name)
            n_args = 2 if name == "check_roundtrip" else 1
            v = checker(*([stub] * n_args))
            assert v.status == NOT_ATTEMPTED, (name, v.message)


def test_messages_are_deterministic():
    def floor_quantize(x, bits):
        lo, hi = x.min(), x.max()
        scale = (hi - lo) / (2 ** bits - 1)
        return np.floor((x - lo) / (scale if scale else 1)).astype(np.uint8), lo, scale

    a = checks.check_uniform_quantize(floor_quantize).message
    b = checks.check_uniform_quantize(floor_quantize).message
    assert a == b


# -------------------------------------------------------------------------- lesson 01


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


# -------------------------------------------------------------------------- lesson 02


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


# -------------------------------------------------------------------------- lesson 03


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


def fraction_ok(n_samples, d, seed, sign_fix):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_samples):
        q, r = np.linalg.qr(rng.standard_normal((d, d)))
        if sign_fix:
            q = q * np.sign(np.diag(r))
        hits += q[0, 0] > 0
    return hits / n_samples


def test_fraction_positive():
    assert_passes(checks.check_fraction_positive, fraction_ok)
    assert_fails(checks.check_fraction_positive, lambda n, d, s, fix: fraction_ok(n, d, s, False),
                 hint="sign(R[j, j])")
    assert_fails(checks.check_fraction_positive,
                 lambda n, d, s, fix: n * fraction_ok(n, d, s, fix), hint="count / n_samples")


# -------------------------------------------------------------------------- lesson 04


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


# -------------------------------------------------------------------------- lesson 05


def stage_ok(x, h):
    y = x.copy()
    for j in range(0, x.size, 2 * h):
        for i in range(j, j + h):
            y[i], y[i + h] = x[i] + x[i + h], x[i] - x[i + h]
    return y


def fwht_ok(x):
    y = x.astype(float)
    h = 1
    while h < y.size:
        y = stage_ok(y, h)
        h *= 2
    return y / math.sqrt(y.size)


def test_butterfly_stage():
    assert_passes(checks.check_butterfly_stage, stage_ok)

    def swapped(x, h):
        y = stage_ok(x, h)
        for j in range(0, x.size, 2 * h):
            y[j + h:j + 2 * h] *= -1
        return y

    def adjacent(x, h):
        return stage_ok(x, 1)

    def in_place(x, h):
        x[:] = stage_ok(x, h)

    assert_fails(checks.check_butterfly_stage, swapped, hint="not b - a")
    assert_fails(checks.check_butterfly_stage, adjacent, hint="i + h")
    assert_fails(checks.check_butterfly_stage, in_place, hint="out of place")


def test_fwht():
    assert_passes(checks.check_fwht, fwht_ok)
    assert_fails(checks.check_fwht, lambda x: fwht_ok(x) * math.sqrt(x.size), hint="sqrt(d)")

    def mutates(x):
        y = fwht_ok(x)
        x[:] = 0
        return y

    assert_fails(checks.check_fwht, mutates, hint="copy")


def fwht_inplace_ok(x):
    d = x.size
    h = 1
    while h < d:
        for j in range(0, d, 2 * h):
            for i in range(j, j + h):
                a, b = x[i], x[i + h]
                x[i], x[i + h] = a + b, a - b
        h *= 2
    x /= math.sqrt(d)


def test_fwht_inplace():
    assert_passes(checks.check_fwht_inplace, fwht_inplace_ok)

    def overwrite(x):
        d = x.size
        h = 1
        while h < d:
            for j in range(0, d, 2 * h):
                for i in range(j, j + h):
                    x[i] = x[i] + x[i + h]
                    x[i + h] = x[i] - x[i + h]
            h *= 2
        x /= math.sqrt(d)

    def rebinds(x):
        x = fwht_ok(x)
        return x

    assert_fails(checks.check_fwht_inplace, overwrite, hint="overwritten")
    assert_fails(checks.check_fwht_inplace, rebinds, hint="only gives")


def sylvester_ok(n):
    if n == 1:
        return np.ones((1, 1))
    h = sylvester_ok(n // 2)
    return np.block([[h, h], [h, -h]])


def test_sylvester():
    assert_passes(checks.check_sylvester, sylvester_ok)

    def wrong_corner(n):
        if n == 1:
            return np.ones((1, 1))
        h = wrong_corner(n // 2)
        return np.block([[h, -h], [h, h]])

    assert_fails(checks.check_sylvester, wrong_corner, hint="bottom-right")
    assert_fails(checks.check_sylvester, lambda n: sylvester_ok(n) / math.sqrt(n), hint="+1 and -1")


# -------------------------------------------------------------------------- lesson 06


def test_spike_preimage():
    assert_passes(checks.check_spike_preimage, lambda d: np.full(d, 1 / math.sqrt(d)))
    assert_fails(checks.check_spike_preimage, lambda d: np.eye(d)[0], hint="spike already")
    assert_fails(checks.check_spike_preimage, lambda d: np.ones(d), hint="length")


def test_rht_forward():
    assert_passes(checks.check_rht_forward, lambda x, s1, s2: s2 * fwht(s1 * x))
    assert_fails(checks.check_rht_forward, lambda x, s1, s2: s1 * fwht(s2 * x), hint="before")
    assert_fails(checks.check_rht_forward, lambda x, s1, s2: fwht(s1 * x), hint="second flip")
    assert_fails(checks.check_rht_forward,
                 lambda x, s1, s2: s2 * fwht(s1 * x, normalize=False), hint="orthonormal")


def test_rht_inverse():
    assert_passes(checks.check_rht_inverse, lambda y, s1, s2: s1 * fwht(s2 * y))
    assert_fails(checks.check_rht_inverse, lambda y, s1, s2: s2 * fwht(s1 * y),
                 hint="reverse order")


def flips_ok(x, bits, seed):
    d = x.shape[-1]
    rh = RandomizedHadamard(d, seed=seed)
    cb = lloyd_max_codebook(bits, d)
    u = x / np.linalg.norm(x, axis=-1, keepdims=True)
    t1 = math.sqrt(d) * fwht(rh.signs1 * u)
    t2 = rh.signs2 * t1
    return tuple(np.mean((t - cb.dequantize(cb.quantize(t))) ** 2) for t in (t1, t2))


def test_second_flip():
    assert_passes(checks.check_second_flip, flips_ok)

    def unscaled(x, bits, seed):
        return tuple(m / x.shape[-1] for m in flips_ok(x, bits, seed))

    assert_fails(checks.check_second_flip, unscaled, hint="sqrt(d)")
    assert_fails(checks.check_second_flip, lambda x, b, s: flips_ok(x, b, s)[0],
                 hint="return mse_one, mse_two")


# -------------------------------------------------------------------------- lesson 07


def assign_ok(samples, centroids):
    return np.searchsorted((centroids[:-1] + centroids[1:]) / 2, samples)


def lloyd_step_ok(samples, centroids):
    cells = assign_ok(samples, centroids)
    new = centroids.astype(float).copy()
    for k in range(centroids.size):
        if np.any(cells == k):
            new[k] = samples[cells == k].mean()
    return new


def test_assign_cells():
    assert_passes(checks.check_assign_cells, assign_ok)
    assert_fails(checks.check_assign_cells, lambda s, c: np.searchsorted(c, s), hint="midpoints")
    assert_fails(checks.check_assign_cells, lambda s, c: c[assign_ok(s, c)],
                 hint="not its value")


def test_lloyd_step():
    assert_passes(checks.check_lloyd_step, lloyd_step_ok)

    def nan_on_empty(s, c):
        cells = assign_ok(s, c)
        return np.array([s[cells == k].mean() for k in range(c.size)])

    def medians(s, c):
        cells = assign_ok(s, c)
        return np.array([np.median(s[cells == k]) if np.any(cells == k) else c[k]
                         for k in range(c.size)])

    assert_fails(checks.check_lloyd_step, nan_on_empty, hint="keep its old centroid")
    assert_fails(checks.check_lloyd_step, medians, hint="not the median")


def fit_ok(samples, bits, n_iter=100):
    c = np.linspace(samples.min(), samples.max(), 2 ** bits)
    for _ in range(n_iter):
        c = lloyd_step_ok(samples, c)
    return np.sort(c)


def test_fit_codebook():
    assert_passes(checks.check_fit_codebook, fit_ok)
    assert_fails(checks.check_fit_codebook, lambda s, b, n: fit_ok(s, b, 1), hint="converged")
    assert_fails(checks.check_fit_codebook, lambda s, b, n: fit_ok(s, b, n)[::-1], hint="ascending")


def uniform_mse_ok(step, bits):
    from scipy import integrate, stats

    n = 2 ** bits
    c = (np.arange(n) - (n - 1) / 2) * step
    edges = np.concatenate(([-np.inf], (c[:-1] + c[1:]) / 2, [np.inf]))
    return sum(integrate.quad(lambda t: (t - c[i]) ** 2 * stats.norm.pdf(t), edges[i],
                              edges[i + 1])[0] for i in range(n))


def test_uniform_codebook_mse():
    assert_passes(checks.check_uniform_codebook_mse, uniform_mse_ok)
    assert_fails(checks.check_uniform_codebook_mse, lambda step, bits: step ** 2 / 12,
                 hint="tails")


# -------------------------------------------------------------------------- lesson 08


def pack3_ok(codes):
    out = np.zeros((3 * codes.size + 7) // 8, dtype=np.uint8)
    for i, c in enumerate(codes):
        for j in range(3):
            k = 3 * i + j
            out[k // 8] |= ((int(c) >> j) & 1) << (k % 8)
    return out


def unpack3_ok(packed, n):
    stream = np.unpackbits(packed, bitorder="little")
    return np.array([sum(int(stream[3 * i + j]) << j for j in range(3)) for i in range(n)],
                    dtype=np.uint8)


def test_pack3():
    assert_passes(checks.check_pack3, pack3_ok)

    def msb_first(codes):
        bits = [(int(c) >> (2 - j)) & 1 for c in codes for j in range(3)]
        return np.packbits(np.array(bits, dtype=np.uint8))

    assert_fails(checks.check_pack3, msb_first, hint="least significant bit first")
    assert_fails(checks.check_pack3, lambda c: c.astype(np.uint8), hint="no packing")
    assert_fails(checks.check_pack3, lambda c: pack3_ok(c).astype(np.int64), hint="uint8")


def test_unpack3():
    assert_passes(checks.check_unpack3, unpack3_ok)

    def no_mask(packed, n):
        stream = np.unpackbits(packed, bitorder="little")
        return np.array([sum(int(stream[3 * i + j]) << j for j in range(3)) + 8 * (i % 2)
                         for i in range(n)])

    assert_fails(checks.check_unpack3, no_mask, hint="& 7")


def encode_ok(x, bits, seed=0):
    d = x.shape[-1]
    norms = np.linalg.norm(x, axis=-1)
    rh = RandomizedHadamard(d, seed=seed)
    codes = lloyd_max_codebook(bits, d).quantize(math.sqrt(d) * rh.forward(x / norms[:, None]))
    return pack_bits(codes, bits), norms


def decode_ok(packed, norms, bits, d, seed=0):
    t_hat = lloyd_max_codebook(bits, d).dequantize(unpack_bits(packed, bits, d))
    return RandomizedHadamard(d, seed=seed).inverse(t_hat / math.sqrt(d)) * norms[:, None]


def test_roundtrip():
    assert_passes(checks.check_roundtrip, encode_ok, decode_ok)

    def unscaled_encode(x, bits, seed=0):
        d = x.shape[-1]
        norms = np.linalg.norm(x, axis=-1)
        rh = RandomizedHadamard(d, seed=seed)
        codes = lloyd_max_codebook(bits, d).quantize(rh.forward(x / norms[:, None]))
        return pack_bits(codes, bits), norms

    def no_norm_decode(packed, norms, bits, d, seed=0):
        return decode_ok(packed, np.ones_like(norms), bits, d, seed)

    def forward_decode(packed, norms, bits, d, seed=0):
        t_hat = lloyd_max_codebook(bits, d).dequantize(unpack_bits(packed, bits, d))
        return RandomizedHadamard(d, seed=seed).forward(t_hat / math.sqrt(d)) * norms[:, None]

    assert_fails(checks.check_roundtrip, unscaled_encode, decode_ok, hint="by sqrt(d)")
    assert_fails(checks.check_roundtrip, encode_ok, no_norm_decode, hint="multiply by the norms")
    assert_fails(checks.check_roundtrip, encode_ok, forward_decode, hint="rh.inverse")
    v = checks.check_roundtrip(encode_ok, stub)
    assert v.status == NOT_ATTEMPTED


@pytest.mark.parametrize("name", [n for n in checks.__all__ if n.startswith("check_")])
def test_checkers_have_docstrings(name):
    assert getattr(checks, name).__doc__


def test_butterfly_stage_that_also_mutates_its_input():
    def mutates_and_returns(x, h):
        x[:] = stage_ok(x, h)
        return x

    assert_fails(checks.check_butterfly_stage, mutates_and_returns, hint="out of place")
