"""Lesson 10 (inner products and QJL): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np

from turboquant_lab import codebooks, data, metrics, qjl, softmax_attention, turboquant

from .._checking import Failure, allclose, as_array, as_number, call_learner, checker, expect, seeded_rng

__all__ = [
    "check_attention_weights", "check_kl_divergence",
    "check_inner_product_ratio", "check_qjl_estimate", "check_rmse_ratio",
]


def _softmax_rows(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@checker("attention_weights")
def check_attention_weights(attention_weights):
    """Check ``attention_weights(q, K)``: ``softmax(q @ K.T / sqrt(d))`` over the keys, stable."""
    kv = data.make_kv_vectors(64, 32, seed=4).astype(np.float64)
    cases = [
        ("q = np.array([1.0, 0.0]), K = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])",
         np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])),
        ("q = np.random.default_rng(0).standard_normal(16), "
         "K = np.random.default_rng(1).standard_normal((10, 16))",
         seeded_rng(0).standard_normal(16), seeded_rng(1).standard_normal((10, 16))),
        ("q = np.random.default_rng(2).standard_normal((4, 32)), "
         "K = tql.make_kv_vectors(64, 32, seed=4)  (4 queries at once)",
         seeded_rng(2).standard_normal((4, 32)), kv),
        ("q = 100 * np.ones(8), K = 100 * np.eye(8)  (scores of 10,000: exp overflows)",
         100 * np.ones(8), 100 * np.eye(8)),
    ]
    for case, q, K in cases:
        d = K.shape[1]
        s = q @ K.T
        expected = softmax_attention.softmax(s / math.sqrt(d))
        got = as_array(call_learner(attention_weights, q, K, case=case), case, "the weights",
                     shape=expected.shape)
        detectors = [
            (lambda g: not np.all(np.isfinite(g)),
             "exp overflowed (inf / inf = NaN): subtract each row's largest score before "
             "np.exp; the factor exp(-max) cancels in the ratio."),
            (_softmax_rows(s), "scale the scores by the temperature 1/sqrt(d) before the "
                               "softmax."),
            (_softmax_rows(s / d), "the temperature is 1/sqrt(d), not 1/d."),
        ]
        if s.ndim == 2:
            e = np.exp(s / math.sqrt(d) - (s / math.sqrt(d)).max(axis=0, keepdims=True))
            detectors.append((e / e.sum(axis=0, keepdims=True),
                              "normalise over the keys (the last axis, axis=-1), so that each "
                              "query's weights sum to 1."))
            e = np.exp(s / math.sqrt(d) - (s / math.sqrt(d)).max())
            detectors.append((e / e.sum(),
                              "each query gets its own softmax: sum over the last axis with "
                              "keepdims=True, not over the whole array."))
        expect(got, expected, case, rtol=1e-6, atol=1e-12, what="weights", detectors=detectors,
                hint="the scores q @ K.T, divided by sqrt(d), shifted by each query's largest "
                     "score, exponentiated, and normalised over the keys (the last axis).")
    return ("Matches tql.softmax(q @ K.T / sqrt(d)) for one query and a batch of queries, and "
            "stays finite when the scores are in the thousands.")


def _kl_ref(p, p_hat):
    p = np.asarray(p, dtype=np.float64)
    p_hat = np.asarray(p_hat, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / p_hat), 0.0)
    return terms.sum(axis=-1)


@checker("kl_divergence")
def check_kl_divergence(kl_divergence):
    """Check ``kl_divergence(p, p_hat)``: ``sum p log(p / p_hat)`` on the last axis, in nats."""
    a = _softmax_rows(seeded_rng(0).standard_normal((3, 20)) * 2)
    b = _softmax_rows(seeded_rng(1).standard_normal((3, 20)) * 2)
    cases = [
        ("p = np.array([0.5, 0.5]), p_hat = np.array([0.9, 0.1])",
         np.array([0.5, 0.5]), np.array([0.9, 0.1])),
        ("p = np.array([0.7, 0.2, 0.1]), p_hat = np.array([0.7, 0.2, 0.1])  (equal)",
         np.array([0.7, 0.2, 0.1]), np.array([0.7, 0.2, 0.1])),
        ("p = np.array([0.0, 0.25, 0.75]), p_hat = np.array([0.1, 0.3, 0.6])  (a weight of 0)",
         np.array([0.0, 0.25, 0.75]), np.array([0.1, 0.3, 0.6])),
        ("p, p_hat = two (3, 20) arrays of softmax weights (3 queries; one KL per row)", a, b),
    ]
    for case, p, q in cases:
        expected = _kl_ref(p, q)
        got = call_learner(kl_divergence, p, q, case=case)
        if p.ndim == 2 and np.size(got) == 1:
            raise Failure("one KL per row (per query) is expected, got a single number",
                           case=case, expected=expected, got=got,
                           hint="sum over the last axis only: np.sum(..., axis=-1).")
        got = as_array(got, case, "the KL divergence", shape=expected.shape)
        with np.errstate(all="ignore"):
            detectors = [
                (lambda g: not np.all(np.isfinite(g)),
                 "a weight p_j = 0 contributes 0 (the limit of p log p): 0 * log(0) is NaN in "
                 "NumPy, so skip those terms (np.where(p > 0, ...), or scipy.special.xlogy)."),
                (_kl_ref(q, p), "KL is not symmetric: KL(p || p_hat) weighs the log-ratio "
                                "log(p / p_hat) by the exact weights p."),
                (_kl_ref(p, q) / math.log(2), "use the natural log (nats), np.log, not "
                                              "np.log2."),
                (lambda g: allclose(g, _kl_ref(p, q) / p.shape[-1], 1e-6, 1e-12) and
                 not allclose(expected, 0.0), "sum the terms over the keys, don't average them."),
            ]
        expect(got, expected, case, rtol=1e-6, atol=1e-12, what="KL", detectors=detectors,
                hint="sum the terms p_j log(p_j / p_hat_j) over the last axis only, with the "
                     "natural log, and count the terms where p_j = 0 as 0.")
    return ("Matches sum p log(p / p_hat) over the last axis for single and batched weights, "
            "is 0 for equal weights and handles weights of 0.")


def _pairs(n, d, seed):
    rng = seeded_rng(seed)
    x = metrics.unit_rows(rng.standard_normal((n, d)))
    y = metrics.unit_rows(x + rng.standard_normal((n, d)) / math.sqrt(d))
    return x, y


@checker("inner_product_ratio")
def check_inner_product_ratio(inner_product_ratio):
    """Check ``inner_product_ratio(x, y, bits, seed)``: ``sum <y, x_hat> / sum <y, x>``."""
    for n, d, bits, seed in [(400, 64, 1, 0), (400, 128, 2, 1), (300, 128, 3, 2), (200, 32, 4, 3)]:
        x, y = _pairs(n, d, seed)
        case = (f"x, y = {n} pairs of unit vectors in d = {d} (x, y = pairs({n}, {d}, "
                f"seed={seed}) in the cell above), bits = {bits}, seed = {seed}")
        tq = turboquant.TurboQuantMSE(d, bits, seed=seed)
        x_hat = np.asarray(tq.decode(tq.encode(x)), dtype=np.float64)
        ip, ip_hat = np.sum(x * y, axis=1), np.sum(x_hat * y, axis=1)
        expected = float(ip_hat.sum() / ip.sum())
        got = as_number(call_learner(inner_product_ratio, x, y, bits, seed, case=case), case)
        expect(got, expected, case, rtol=2e-4, atol=1e-6, detectors=[
            (float(np.mean(ip_hat / ip)), "return the ratio of the sums, sum <y, x_hat> / "
                                          "sum <y, x> (it estimates E<y, x_hat> / <y, x>), not "
                                          "the mean of the per-pair ratios, a different and "
                                          "noisier estimator (it explodes where <y, x> is "
                                          "near 0)."),
            (1.0 / expected, "it is estimate over truth: sum <y, x_hat> / sum <y, x>."),
            (float(np.mean(np.linalg.norm(x_hat, axis=1))),
             "that is the length of x_hat; the question is how the inner products with y "
             "shrink."),
            (float(np.sum(x_hat * x) / np.sum(x * x)), "use the queries y: <y, x_hat> against "
                                                       "<y, x>."),
        ], hint="decode what tql.TurboQuantMSE(d, bits, seed=seed) encodes from x, then divide "
                "the sum of the estimated inner products <y_i, x_hat_i> by the sum of the true "
                "ones.")
    return ("Matches sum <y, x_hat> / sum <y, x> with tql.TurboQuantMSE for 1 to 4 bits and "
            "d = 32 to 128.")


def _qjl_ref(r, y, S):
    r = np.asarray(r, dtype=np.float64)
    S = np.asarray(S, dtype=np.float64)
    m = S.shape[0]
    z = np.where(r @ S.T >= 0, 1.0, -1.0)
    return math.sqrt(math.pi / 2) / m * np.linalg.norm(r, axis=-1) * (z @ (S @ y))


@checker("qjl_estimate")
def check_qjl_estimate(qjl_estimate):
    """Check ``qjl_estimate(r, y, S)``: ``sqrt(pi/2) / m * ||r|| * <sign(S r), S y>`` per row."""
    cases = []
    rng = seeded_rng(11)
    r, y, S = rng.standard_normal((6, 16)), rng.standard_normal(16), rng.standard_normal((16, 16))
    cases.append(("r, y, S = (6, 16), (16,), (16, 16) Gaussian arrays from "
                  "np.random.default_rng(11)", r, y, S))
    rng = seeded_rng(12)
    r, y = 3 * rng.standard_normal((4, 32)), rng.standard_normal(32)
    S = rng.standard_normal((64, 32))
    cases.append(("r = 3 * (4, 32), y = (32,), S = (64, 32) Gaussian from "
                  "np.random.default_rng(12)  (m = 64 sketch rows, not d)", r, y, S))
    for case, r, y, S in cases:
        expected = _qjl_ref(r, y, S)
        got = as_array(call_learner(qjl_estimate, r, y, S, case=case), case, "the estimates",
                     shape=expected.shape)
        m, d = S.shape
        norm = np.linalg.norm(r, axis=-1)
        dots = np.where(r @ S.T >= 0, 1.0, -1.0) @ (S @ y)
        expect(got, expected, case, rtol=1e-6, atol=1e-9, what="estimates", detectors=[
            (expected * math.sqrt(2 / math.pi), "the scale is sqrt(pi/2) / m, not 1 / m: the "
                                                "sign keeps only sqrt(2/pi) of each projection "
                                                "on average, so multiply by its inverse."),
            (expected * 2 / math.pi, "multiply by sqrt(pi/2) (the inverse of E|g| = "
                                     "sqrt(2/pi)), not by sqrt(2/pi)."),
            (expected / norm, "multiply by ||r||: the signs forget the length of r, so it is "
                              "stored beside them."),
            (expected * m, "divide by m, the number of sketch rows (S.shape[0])."),
            (expected * m / d if m != d else np.nan,
             "divide by the number of sketch rows m = S.shape[0], which need not be d."),
            (math.sqrt(math.pi / 2) / m * norm * (np.where(r @ S.T >= 0, 1.0, -1.0)
                                                  @ np.sign(S @ y)),
             "only the stored vector is reduced to signs: keep the query side S y exact."),
            (math.sqrt(math.pi / 2) / m * norm * dots / np.linalg.norm(y),
             "use y as it is, not y / ||y||."),
        ], hint="check each factor of the formula: one sign per sketch row for every vector "
                "r_j (the signs of S r_j), the exact projection S y of the query, their inner "
                "product, the norm ||r_j||, and the scale sqrt(pi/2) / m with m = S.shape[0].")
    # the library's plain QJL sketch (bits = 1: no MSE stage, r = x; norms stored as float16)
    d = 64
    prod = qjl.TurboQuantProd(d, 1, seed=5)
    x = data.make_kv_vectors(50, d, seed=5).astype(np.float64)
    y = seeded_rng(13).standard_normal(d)
    case = ("r = tql.make_kv_vectors(50, 64, seed=5), y = np.random.default_rng(13)"
            ".standard_normal(64), S = tql.TurboQuantProd(64, bits=1, seed=5).S")
    lib = np.asarray(prod.inner_product(prod.encode(x), y), dtype=np.float64)
    got = as_array(call_learner(qjl_estimate, x, y, prod.S.astype(np.float64), case=case), case,
                 "the estimates", shape=lib.shape)
    if not allclose(got, lib, 2e-3, 1e-3 * float(np.abs(lib).max())):
        raise Failure("different from the library's 1-bit sketch", case=case, expected=lib,
                       got=got, what="estimates",
                       hint="tql.TurboQuantProd(d, bits=1).inner_product is this estimator "
                            "(with ||r|| rounded to float16): see its Notes.")
    return ("Matches sqrt(pi/2) / m * ||r|| * <sign(S r), S y> for square and tall sketch "
            "matrices, and tql.TurboQuantProd(d, bits=1).inner_product up to its float16 norms.")


def _rmse_ratio_ref(bits, d, orthogonal_term=False):
    """sqrt(pi/2 * D(b-1) / D(b)), D(0) = 1 (no MSE stage at 1 bit); optionally pi/2 - 1/d."""
    dist = lambda b: 1.0 if b == 0 else codebooks.lloyd_max_codebook(b, d).mse  # noqa: E731
    factor = math.pi / 2 - (1.0 / d if orthogonal_term else 0.0)
    return math.sqrt(factor * dist(bits - 1) / dist(bits))


@checker("predicted_rmse_ratio")
def check_rmse_ratio(predicted_rmse_ratio):
    """Check ``predicted_rmse_ratio(bits, d)``: prod over MSE score RMSE for a query orthogonal to the key.

    Accepts ``sqrt(pi/2 D(b-1) / D(b))`` and the slightly finer ``sqrt((pi/2 - 1/d) D(b-1) / D(b))``
    (``D(0) = 1``; ``D(b)`` the exact-law or the Gaussian codebook's MSE): within 2%.
    """
    for bits, d in [(2, 128), (3, 128), (4, 128), (1, 128), (2, 32), (4, 32), (3, 64)]:
        case = f"bits = {bits}, d = {d}"
        expected = _rmse_ratio_ref(bits, d)
        try:
            got = as_number(call_learner(predicted_rmse_ratio, bits, d, case=case), case)
        except Failure as failure:
            if bits == 1 and "raised" in failure.problem:
                failure.hint = ("at 1 bit the prod quantizer has no MSE stage: its residual is x "
                                "itself, so use a distortion of 1 for the missing 0-bit stage "
                                "(there is no 0-bit codebook).")
            raise
        D = lambda b: 1.0 if b == 0 else codebooks.lloyd_max_codebook(b, d).mse  # noqa: E731
        expect(got, expected, case, rtol=0.02, atol=0, what="ratio", detectors=[
            (expected ** 2, "that is the ratio of the mean squared errors; the question is about "
                            "the RMSE: take the square root."),
            (math.sqrt(D(bits - 1) / D(bits)), "the sign sketch's variance carries a factor "
                                               "pi/2 (section 2's variance formula): a sign keeps "
                                               "less than the projection it replaces."),
            (math.sqrt(math.pi / 2), "both estimators are not at the same distortion: the prod "
                                     "quantizer's MSE stage has one bit fewer, so its residual's "
                                     "energy is that of the (b-1)-bit codebook."),
            (1 / expected, "it is prod over MSE: the prod quantizer is the noisier one."),
            (math.sqrt(math.pi / 2 * D(bits) / D(bits + 1)) if bits < 8 else -1,
             "off by one bit: at b total bits the MSE quantizer uses b bits, the prod "
             "quantizer's MSE stage b - 1."),
        ], hint="for a unit query y orthogonal to a unit key x: the MSE estimate's error "
                "<y, x_hat - x> has variance about the error energy D(b) spread evenly over d "
                "directions; the prod estimate's error is the QJL noise of section 2 with "
                "||r||^2 = the (b-1)-bit distortion (1 when there is no MSE stage). Compare the "
                "two, then take the square root.")
    return ("Matches sqrt(pi/2 D(b-1) / D(b)) (with D(0) = 1) within 2% for 1 to 4 bits and "
            "d = 32 to 128.")
