"""TurboQuantProd: the (bits-1)-bit MSE stage plus a 1-bit QJL sketch of the residual."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turboquant_lab.packing import unpack_bits
from turboquant_lab.qjl import ProdEncoded, TurboQuantProd
from turboquant_lab.turboquant import TurboQuantMSE

D = 128


def _unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _pairs(rng, n, d=D):
    """Unit x and unit y correlated with x (<x, y> ~ 0.7), so that a shrinkage shows as a bias."""
    x = _unit(rng.standard_normal((n, d)))
    y = _unit(x + rng.standard_normal((n, d)) / math.sqrt(d))
    return x.astype(np.float32), y


def _errors(make, bits, n_seeds=200, per_seed=100, seed=0):
    """Estimate errors over n_seeds quantizers x per_seed pairs: (per-seed mean errors, all errors, exact)."""
    rng = np.random.default_rng(seed)
    means, errs, exact = [], [], []
    for s in range(n_seeds):
        x, y = _pairs(rng, per_seed)
        est = make(bits, s)(x, y)
        ex = np.sum(x * y, axis=1)
        errs.append(est - ex)
        exact.append(ex)
        means.append(np.mean(est - ex))
    return np.array(means), np.concatenate(errs), np.concatenate(exact)


def _prod(bits, s):
    q = TurboQuantProd(D, bits, seed=s)

    def est(x, y):
        return np.einsum("ii->i", q.inner_product(q.encode(x), y))
    return est


def _mse(bits, s):
    q = TurboQuantMSE(D, bits, seed=s)

    def est(x, y):
        return np.sum(q.decode(q.encode(x)) * y, axis=1)
    return est


# ------------------------------------------------------------------ unbiased vs biased


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_prod_inner_product_is_unbiased(bits):
    # 20,000 pairs from 200 independent quantizers (S is the randomness the theorem averages
    # over); the standard error comes from the 200 per-quantizer means, so that pairs sharing
    # one S are not counted as independent
    means, errs, _ = _errors(_prod, bits)
    assert errs.size == 20_000
    se = means.std(ddof=1) / math.sqrt(means.size)
    assert abs(means.mean()) < 3 * se, (means.mean(), se)


@pytest.mark.parametrize("bits", [1, 2])
def test_mse_inner_product_is_shrunk_by_one_minus_D(bits):
    means, errs, exact = _errors(_mse, bits)
    se = means.std(ddof=1) / math.sqrt(means.size)
    assert means.mean() < -10 * se  # measurably biased towards 0
    D_b = TurboQuantMSE(D, bits).expected_mse
    ratio = np.sum(errs + exact) / np.sum(exact)
    assert ratio == pytest.approx(1 - D_b, abs=0.01)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_prod_variance_within_bounds(bits):
    rng = np.random.default_rng(bits)
    var, exact_formula = [], []
    for s in range(40):
        q = TurboQuantProd(D, bits, seed=100 + s)
        x, y = _pairs(rng, 100)
        est = np.einsum("ii->i", q.inner_product(q.encode(x), y))
        var.append(np.mean((est - np.sum(x * y, axis=1)) ** 2))
        r = x - q.mse.decode(q.mse.encode(x))
        # Var = (pi/2 ||r||^2 ||y||^2 - <r, y>^2) / d  (Notes of TurboQuantProd)
        exact_formula.append(np.mean((math.pi / 2 * np.sum(r * r, 1) - np.sum(r * y, 1) ** 2) / D))
    var = float(np.mean(var))
    assert var == pytest.approx(float(np.mean(exact_formula)), rel=0.08)
    assert var <= q.variance_bound * 1.05   # pi/(2d) D(b-1), sampling slack
    assert q.variance_bound <= q.paper_bound  # the paper's Theorem 2 bound is looser


def test_gaussian_rows_not_orthonormal():
    # the sqrt(pi/2)/d scale assumes i.i.d. N(0, 1) entries: rows of norm ~ sqrt(d)
    S = TurboQuantProd(D, 3, seed=0).S
    assert S.shape == (D, D) and S.dtype == np.float32
    assert np.mean(S) == pytest.approx(0.0, abs=4 / D)
    assert np.var(S) == pytest.approx(1.0, abs=0.03)
    assert abs(np.mean(S @ S.T - np.diag(np.diag(S @ S.T)))) < 1.0  # not an orthogonal matrix


def test_orthonormal_rows_would_shrink_the_correction():
    # what goes wrong with QR rows: the same estimator is then sqrt(d)-ish times too small
    rng = np.random.default_rng(0)
    r = _unit(rng.standard_normal(D))
    G = rng.standard_normal((D, D))
    Qr, _ = np.linalg.qr(G)
    c = math.sqrt(math.pi / 2) / D
    gaussian = c * np.sign(G @ r) @ (G @ r)    # estimates <r, r> = 1
    orthonormal = c * np.sign(Qr @ r) @ (Qr @ r)
    assert gaussian == pytest.approx(1.0, abs=0.15)
    assert 1.0 / orthonormal == pytest.approx(math.sqrt(D), rel=0.2)


# ------------------------------------------------------------------ against the oracle


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("rotation", ["hadamard", "dense"])
def test_inner_product_matches_reference_and_decode(bits, rotation):
    rng = np.random.default_rng(1)
    q = TurboQuantProd(48, bits, seed=3, rotation=rotation)  # 48: padded to 64 by the Hadamard
    x = rng.standard_normal((7, 48)).astype(np.float32)
    y = rng.standard_normal((3, 48))
    enc = q.encode(x)
    est = q.inner_product(enc, y)
    ref = q.inner_product_reference(enc, y)
    assert est.shape == ref.shape == (3, 7)
    np.testing.assert_allclose(est, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    np.testing.assert_allclose(q.decode(enc) @ y.T, est.T, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_shapes_and_batches():
    rng = np.random.default_rng(2)
    q = TurboQuantProd(32, 3, seed=0)
    x = rng.standard_normal((2, 5, 32)).astype(np.float32)
    enc = q.encode(x)
    assert enc.shape == (2, 5) and enc.signs.shape == (2, 5, 4) and enc.residual_norms.shape == (2, 5)
    assert enc.mse.codes.shape[:2] == (2, 5)
    assert q.inner_product(enc, rng.standard_normal(32)).shape == (2, 5)
    assert q.inner_product(enc, rng.standard_normal((4, 32))).shape == (4, 2, 5)
    assert q.inner_product(enc, rng.standard_normal((3, 4, 32))).shape == (3, 4, 2, 5)
    assert q.decode(enc).shape == (2, 5, 32)
    flat = q.encode(x.reshape(10, 32))
    np.testing.assert_array_equal(flat.signs, enc.signs.reshape(10, 4))


def test_storage_counts_signs_and_both_norms():
    x = np.random.default_rng(3).standard_normal((10, D)).astype(np.float32)
    for bits in (1, 2, 3, 4):
        enc = TurboQuantProd(D, bits, seed=0).encode(x)
        mse_bits = (bits - 1) * D + 16 if bits > 1 else 0
        assert enc.nbytes * 8 == 10 * (mse_bits + D + 16)
        assert enc.bits_per_coordinate == pytest.approx(bits + (32 if bits > 1 else 16) / D)


def test_bits_one_is_a_pure_sketch_of_x():
    rng = np.random.default_rng(4)
    q = TurboQuantProd(D, 1, seed=5)
    x = rng.standard_normal((6, D)).astype(np.float32)
    enc = q.encode(x)
    assert q.mse is None and enc.mse is None and q.residual_mse == 1.0
    np.testing.assert_allclose(enc.residual_norms.astype(np.float32), np.linalg.norm(x, axis=1),
                               rtol=1e-3)
    signs = unpack_bits(enc.signs, 1, D).astype(bool)
    np.testing.assert_array_equal(signs, (x @ q.S.T) >= 0)


def test_mse_stage_is_turboquant_mse_with_one_bit_less():
    x = np.random.default_rng(5).standard_normal((20, 64)).astype(np.float32)
    enc = TurboQuantProd(64, 4, seed=9).encode(x)
    ref = TurboQuantMSE(64, 3, seed=9).encode(x)
    np.testing.assert_array_equal(enc.mse.codes, ref.codes)
    np.testing.assert_array_equal(enc.mse.norms, ref.norms)


def test_seeds_are_deterministic_and_independent_streams():
    x = np.random.default_rng(6).standard_normal((4, 32)).astype(np.float32)
    a, b, c = (TurboQuantProd(32, 2, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.S, b.S)
    np.testing.assert_array_equal(a.encode(x).signs, b.encode(x).signs)
    assert not np.array_equal(a.S, c.S)
    g1, g2 = (TurboQuantProd(32, 2, seed=np.random.default_rng(7)) for _ in range(2))
    np.testing.assert_array_equal(g1.S, g2.S)
    ss = TurboQuantProd(32, 2, seed=np.random.SeedSequence(1))
    assert not np.array_equal(ss.S, a.S)


def test_zero_vector_estimates_zero():
    q = TurboQuantProd(32, 3, seed=0)
    enc = q.encode(np.zeros((2, 32), np.float32))
    np.testing.assert_array_equal(q.inner_product(enc, np.ones(32)), 0.0)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 5), st.floats(-3, 3))
def test_estimate_is_linear_in_the_query(seed, bits, a):
    rng = np.random.default_rng(seed)
    q = TurboQuantProd(16, bits, seed=seed)
    enc = q.encode(rng.standard_normal((5, 16)).astype(np.float32))
    y1, y2 = rng.standard_normal((2, 16))
    lhs = q.inner_product(enc, a * y1 + y2)
    rhs = a * q.inner_product(enc, y1) + q.inner_product(enc, y2)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------ errors


def test_bad_input_raises_clear_errors():
    q = TurboQuantProd(32, 2, seed=0)
    x = np.ones((3, 32), np.float32)
    enc = q.encode(x)
    with pytest.raises(ValueError, match="bits"):
        TurboQuantProd(32, 0)
    with pytest.raises(ValueError, match="bits"):
        TurboQuantProd(32, 9)
    with pytest.raises(ValueError, match="at least 2"):
        TurboQuantProd(1, 2)
    with pytest.raises(TypeError, match="seed"):
        TurboQuantProd(32, 2, seed="abc")
    with pytest.raises(ValueError, match="rotation"):
        TurboQuantProd(32, 2, rotation="qr")
    with pytest.raises(TypeError, match="astype"):
        q.encode(np.ones((3, 32), dtype=np.int64))
    with pytest.raises(ValueError, match="NaN"):
        q.encode(np.full((1, 32), np.nan))
    with pytest.raises(ValueError, match="d = 32"):
        q.encode(np.ones((3, 16)))
    with pytest.raises(ValueError, match="d = 32"):
        q.inner_product(enc, np.ones(16))
    with pytest.raises(ValueError, match="another quantizer"):
        TurboQuantProd(32, 2, seed=1).inner_product(enc, np.ones(32))
    with pytest.raises(TypeError, match="ProdEncoded"):
        q.decode(TurboQuantMSE(32, 1).encode(x))
    with pytest.raises(ValueError, match="float16"):
        TurboQuantProd(32, 1).encode(np.full((1, 32), 3e4))
    assert isinstance(enc, ProdEncoded)
