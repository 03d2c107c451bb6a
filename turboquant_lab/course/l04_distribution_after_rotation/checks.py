"""Lesson 04 (the distribution after rotation): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import beta

from turboquant_lab import codebooks, data

from .._checking import Failure, allclose, as_array, as_number, call_learner, checker, expect, first_hint

__all__ = [
    "check_random_unit_vectors", "check_empirical_sigma", "check_coordinate_pdf",
    "check_coordinate_kurtosis",
]




@checker("random_unit_vectors")
def check_random_unit_vectors(random_unit_vectors):
    """Check ``random_unit_vectors(n, d, seed)``: uniform directions (normalised Gaussians)."""
    case = "n = 5, d = 3, seed = 0"
    u = as_array(call_learner(random_unit_vectors, 5, 3, 0, case=case), case, "the vectors", shape=(5, 3))
    norms = np.linalg.norm(u, axis=-1)
    if not allclose(norms, np.ones(5), 1e-6, 1e-6):
        hint = ("divide each row by its own length: x / np.linalg.norm(x, axis=-1, keepdims=True)."
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
        ], "collect (Q @ u)[0] for n_rotations Haar rotations Q and return np.std of them.")
        raise Failure("sigma is far from 1/sqrt(d)", case=case, expected=target, got=got,
                       hint=hint)
    return ("sigma is within sampling noise of 1/sqrt(d) for a spike, an outlier vector and a "
            "flat one.")


@checker("coordinate_pdf")
def check_coordinate_pdf(coordinate_pdf):
    """Check ``coordinate_pdf(x, d)``: the density of a coordinate of a uniform unit vector."""
    for d in (2, 3, 4, 16, 128):
        grid = np.linspace(-0.95, 0.95, 39) if d < 32 else np.linspace(-0.4, 0.4, 41)
        case = f"x = np.linspace({grid[0]}, {grid[-1]}, {grid.size}), d = {d}"
        expected = codebooks.unit_coordinate_pdf(grid, d)
        got = as_array(call_learner(coordinate_pdf, grid.copy(), d, case=case), case, "the density",
                     shape=grid.shape)
        ratio = got / expected
        expect(got, expected, case, rtol=1e-6, atol=1e-9, detectors=[
            (lambda g: np.all(np.isfinite(ratio)) and np.ptp(ratio) < 1e-6 * np.abs(ratio).max(),
             "right shape, wrong area: divide by the normalising constant "
             "B(1/2, (d - 1)/2) (scipy.special.beta)."),
            ((1 - grid ** 2) ** ((d - 1) / 2) / _beta(d),
             "the exponent is (d - 3) / 2, not (d - 1) / 2."),
            (np.sqrt(d / (2 * np.pi)) * np.exp(-d * grid ** 2 / 2),
             "that is the Gaussian N(0, 1/d) approximation; the exact law is "
             "(1 - x**2)**((d - 3)/2) / B(1/2, (d - 1)/2)."),
        ], hint="f_d(x) = (1 - x**2)**((d - 3) / 2) / B(1/2, (d - 1) / 2) on [-1, 1].")
    return "Matches tql.unit_coordinate_pdf for d = 2 (arcsine), 3 (flat), 4, 16 and 128."


def _beta(d):

    return beta(0.5, (d - 1) / 2)


@checker("coordinate_kurtosis")
def check_coordinate_kurtosis(coordinate_kurtosis):
    """Check ``coordinate_kurtosis(d, n, seed)``: ``E[u^4] / E[u^2]^2`` of uniform unit vectors."""
    for d, n, seed in [(4, 20000, 0), (16, 10000, 1), (64, 4000, 2)]:
        case = f"d = {d}, n = {n}, seed = {seed}"
        exact = 3 * d / (d + 2)
        got = as_number(call_learner(coordinate_kurtosis, d, n, seed, case=case), case)
        if abs(got - exact) <= 0.08:
            continue
        hint = first_hint(got, [
            (lambda g: abs(g - (exact - 3)) <= 0.08,
             "that is the excess kurtosis (minus 3): return E[u**4] / E[u**2]**2 "
             "(scipy.stats.kurtosis(..., fisher=False))."),
            (lambda g: abs(g - 3) <= 0.08, "3 is the Gaussian value: normalise each vector to "
                                           "unit length before measuring."),
            (lambda g: abs(g - 3 / (d * (d + 2))) < 0.2 * 3 / (d * (d + 2)),
             "that is E[u**4] alone: divide by E[u**2]**2."),
        ], "pool all coordinates of n uniform unit vectors and return mean(u**4) / mean(u**2)**2.")
        raise Failure("far from the exact 3d/(d+2)", case=case, expected=exact, got=got,
                       hint=hint)
    return "Within sampling noise of 3d/(d+2) for d = 4, 16 and 64."
