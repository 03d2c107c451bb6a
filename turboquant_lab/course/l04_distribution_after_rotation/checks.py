"""Lesson 04 (the distribution after rotation): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from turboquant_lab import data

from .._checking import (Failure, allclose, as_array, as_number, call_learner, checker, expect, first_hint,
                         seeded_rng)

__all__ = [
    "check_random_unit_vectors", "check_empirical_sigma", "check_equal_probability_boundaries",
    "check_expected_max_coordinate",
]


@checker("random_unit_vectors")
def check_random_unit_vectors(random_unit_vectors):
    """Check ``random_unit_vectors(n, d, seed)``: uniform directions (normalised Gaussians)."""
    case = "n = 5, d = 3, seed = 0"
    u = as_array(call_learner(random_unit_vectors, 5, 3, 0, case=case), case, "the vectors", shape=(5, 3))
    norms = np.linalg.norm(u, axis=-1)
    if not allclose(norms, np.ones(5), 1e-6, 1e-6):
        hint = ("divide each row by its own length (np.linalg.norm along the last axis, "
                "keepdims=True so that it broadcasts)."
                if np.ptp(norms) > 1e-6 else "divide by the norm, not by the squared norm.")
        raise Failure("the rows do not have length 1", case=case, expected=np.ones(5),
                       got=norms, what="row norms", hint=hint)
    again = as_array(call_learner(random_unit_vectors, 5, 3, 0, case=case), case, "the vectors")
    other = as_array(call_learner(random_unit_vectors, 5, 3, 1, case="n = 5, d = 3, seed = 1"),
                   "n = 5, d = 3, seed = 1", "the vectors")
    if not np.array_equal(u, again):
        raise Failure("two calls with the same seed gave different vectors", case=case,
                       hint="draw from rng = np.random.default_rng(seed), not from np.random.*.")
    if np.array_equal(u, other):
        raise Failure("seeds 0 and 1 gave the same vectors", case=case,
                       hint="pass the seed to np.random.default_rng(seed).")
    case = "n = 4000, d = 2, seed = 1"
    u = as_array(call_learner(random_unit_vectors, 4000, 2, 1, case=case), case, "the vectors",
               shape=(4000, 2))
    theta = np.arctan2(u[:, 1], u[:, 0])
    bias = float(np.mean(np.cos(4 * theta)))  # 0 for uniform angles; < 0 for a cube
    if abs(bias) > 0.06:
        raise Failure("in d = 2 the directions are not uniform on the circle", case=case,
                       what="mean of cos(4 * angle)", expected=0.0, got=bias,
                       hint="normalising uniform samples from a cube over-weights its corners "
                            "(the diagonals): normalise Gaussian samples (rng.standard_normal).")
    case = "n = 3000, d = 16, seed = 2"
    u = as_array(call_learner(random_unit_vectors, 3000, 16, 2, case=case), case, "the vectors",
               shape=(3000, 16))
    var = u.var(axis=0)
    if np.max(np.abs(var * 16 - 1)) > 0.15:
        raise Failure("the coordinates do not have variance 1/d", case=case,
                       expected=np.full(16, 1 / 16), got=var, what="variance per coordinate",
                       hint="every coordinate of a uniform unit vector has variance 1/d: draw "
                            "all n vectors independently (shape (n, d)).")
    return "Unit length, reproducible per seed, uniform angles in d = 2, variance 1/d in d = 16."


@checker("empirical_sigma")
def check_empirical_sigma(empirical_sigma):
    """Check ``empirical_sigma(x, n_rotations, seed)``: std of ``(Q u)[0]`` over Haar rotations."""
    kv = data.make_kv_vectors(1, 64, seed=0)[0].astype(np.float64)
    e0 = np.zeros(32)
    e0[0] = 1.0
    cases = [("x = np.eye(32)[0]  (a spike), n_rotations = 400, seed = 0", e0, 400, 0),
             ("x = tql.make_kv_vectors(1, 64, seed=0)[0], n_rotations = 400, seed = 1", kv, 400, 1),
             ("x = np.ones(16), n_rotations = 400, seed = 2", np.ones(16), 400, 2)]
    for case, x, n, seed in cases:
        d = x.size
        target = 1 / math.sqrt(d)
        got = as_number(call_learner(empirical_sigma, x, n, seed, case=case), case)
        if abs(got / target - 1) <= 0.15:  # 400 samples: ~3.5% noise
            continue
        norm = float(np.linalg.norm(x))
        hint = first_hint(got, [
            (lambda g: g < 1e-6, "draw a new rotation for each sample (e.g. pass one "
                                 "rng = np.random.default_rng(seed) to tql.random_orthogonal)."),
            (lambda g: abs(g / (target * norm) - 1) < 0.15 and norm != 1,
             "make x a unit vector first: u = x / np.linalg.norm(x)."),
            (lambda g: abs(g / target ** 2 - 1) < 0.15, "that is the variance; sigma is its "
                                                       "square root."),
        ], "check the three steps: a unit vector, a fresh Haar rotation per sample, and the "
           "standard deviation of one coordinate over the samples.")
        raise Failure("sigma is far from 1/sqrt(d)", case=case, expected=target, got=got,
                       hint=hint)
    return ("sigma is within sampling noise of 1/sqrt(d) for a spike, an outlier vector and a "
            "flat one.")


def _exact_boundaries(bits, d):
    """The ``2**bits - 1`` equal-probability boundaries of ``t = sqrt(d) u_1`` (exact law)."""
    a = (d - 1) / 2
    p = np.arange(1, 2 ** bits) / 2 ** bits
    return math.sqrt(d) * (2 * stats.beta.ppf(p, a, a) - 1)


@checker("equal_probability_boundaries")
def check_equal_probability_boundaries(equal_probability_boundaries):
    """Check ``equal_probability_boundaries(bits, d)``: the quantiles ``k / 2**bits`` of the exact law of ``t``."""
    for bits, d in [(1, 8), (2, 3), (2, 4), (3, 16), (2, 128), (4, 64)]:
        case = f"bits = {bits}, d = {d}"
        expected = _exact_boundaries(bits, d)
        got = as_array(call_learner(equal_probability_boundaries, bits, d, case=case), case,
                       "the boundaries", shape=expected.shape)
        p = np.arange(1, 2 ** bits) / 2 ** bits
        a = (d - 1) / 2
        expect(got, expected, case, rtol=1e-6, atol=1e-9, detectors=[
            (stats.norm.ppf(p), "those are the quantiles of N(0, 1), the Gaussian approximation: "
                                "use the exact law of lesson 04, section 3 (it differs most at small d)."),
            (expected / math.sqrt(d), "the boundaries are in scaled units, t = sqrt(d) u_1 (variance 1)."),
            (stats.beta.ppf(p, a, a), "scipy's Beta lives on [0, 1]: map its quantiles back to the "
                                      "coordinate (section 3: w = (u_1 + 1) / 2), then scale."),
            (math.sqrt(d) * stats.beta.ppf(p, a, a), "scipy's Beta lives on [0, 1]: map its quantiles "
                                                     "back to the coordinate (w = (u_1 + 1) / 2)."),
        ], hint="a boundary b_k has P(t <= b_k) = k / 2**bits under the exact law: invert its CDF "
                "(scipy.stats has the inverse of the Beta CDF), then go from w to t.")
    return ("Matches the exact quantiles for d = 3 (flat), 4, 8, 16, 64 and 128, at 1 to 4 bits: "
            "2**bits equally likely cells, placed before any data is seen.")


_MAX_CASES = (16, 64, 256, 1024, 4096)


def _simulated_max(d, n, seed):
    """``E[max_i |u_i|]`` of uniform unit vectors of R^d, by simulation (the truth to compare with)."""
    rng = seeded_rng(seed)
    total, done = 0.0, 0
    while done < n:
        m = min(n - done, max(1, 4_000_000 // d))
        g = rng.standard_normal((m, d))
        total += float(np.sum(np.abs(g).max(axis=1) / np.linalg.norm(g, axis=1)))
        done += m
    return total / n


@checker("expected_max_coordinate")
def check_expected_max_coordinate(expected_max_coordinate):
    """Check ``expected_max_coordinate(d)``: a prediction of ``E[max_i |(R x)_i|]`` within 3%."""
    for d in _MAX_CASES:
        case = f"d = {d}"
        got = as_number(call_learner(expected_max_coordinate, d, case=case), case)
        truth = _simulated_max(d, 20_000 if d <= 256 else 3_000, seed=d)
        if abs(got / truth - 1) <= 0.03:
            continue
        crude = [math.sqrt(2 * math.log(k * d) / d) for k in (1, 2)]
        hint = first_hint(got, [
            (lambda g: abs(g / math.sqrt(d) / truth - 1) <= 0.03,
             "x is a unit vector: its coordinates have sigma 1/sqrt(d), not 1."),
            (lambda g: any(abs(g / c - 1) < 1e-3 for c in crude),
             "sqrt(2 ln d / d) is only the leading term of the maximum's growth: it converges very "
             "slowly and is 10-30% too large at these d. Compute the expectation itself."),
            (lambda g: 0.8 < g / truth < 0.97,
             "too small: is it the largest *absolute* value? Both tails count."),
            (lambda g: 1.03 < g / truth < 1.3,
             "too large: check the distribution of the maximum of d values and the integral."),
        ], "M = max_i |t_i| is the largest of d nearly independent absolute values: find "
           "P(M <= s), then use E[M] = integral over s >= 0 of P(M > s).")
        raise Failure(f"more than 3% from the simulated E[max_i |(Rx)_i|] at d = {d}", case=case,
                      expected=truth, got=got, hint=hint)
    return ("Within 3% of simulated rotations for d = 16 to 4096: the largest coordinate shrinks "
            "more slowly than sigma = 1/sqrt(d).")
