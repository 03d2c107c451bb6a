"""Lesson 07 (optimal slots (Lloyd-Max)): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats

from turboquant_lab import codebooks

from .._checking import (Failure, allclose, as_array, as_number, call_learner, checker, expect, first_hint,
                         seeded_rng)

__all__ = [
    "check_assign_cells", "check_lloyd_step", "check_fit_codebook",
    "check_uniform_codebook_mse", "check_compander_levels",
]


def _nearest(samples, centroids):
    return np.argmin(np.abs(samples[:, None] - centroids[None, :]), axis=1)


@checker("assign_cells")
def check_assign_cells(assign_cells):
    """Check ``assign_cells(samples, centroids)``: the index of each sample's nearest centroid."""
    cb = codebooks.lloyd_max_codebook(2)
    cases = [
        ("samples = np.array([-2.0, -0.1, 0.1, 0.7, 3.0]), centroids = np.array([-1.0, 0.0, 1.0])",
         np.array([-2.0, -0.1, 0.1, 0.7, 3.0]), np.array([-1.0, 0.0, 1.0])),
        ("samples = np.random.default_rng(0).standard_normal(1000), "
         "centroids = tql.lloyd_max_codebook(2).centroids",
         seeded_rng(0).standard_normal(1000), np.array(cb.centroids)),
        ("samples = np.random.default_rng(1).uniform(-5, 5, 200), "
         "centroids = np.array([-3.0, -2.5, 0.0, 4.0])",
         seeded_rng(1).uniform(-5, 5, 200), np.array([-3.0, -2.5, 0.0, 4.0])),
        ("samples = np.array([-1.0, 2.0]), centroids = np.array([0.5])  (one cell)",
         np.array([-1.0, 2.0]), np.array([0.5])),
    ]
    for case, s, c in cases:
        expected = _nearest(s, c)
        got = as_array(call_learner(assign_cells, s, c, case=case), case, "the cells", shape=s.shape)
        if got.dtype.kind == "f" and not np.all(got == np.round(got)):
            if allclose(got, c[expected]):
                raise Failure("your function returned the centroids' values", case=case,
                               expected=expected, got=got,
                               hint="return the index of the nearest centroid (an integer), "
                                    "not its value.")
        if not np.array_equal(np.asarray(got, dtype=np.float64), expected):
            hint = first_hint(got, [
                (np.searchsorted(c, s), "the cells are cut at the midpoints between centroids "
                                        "(nearest centroid), not at the centroids themselves."),
                (c[expected], "return the index of the nearest centroid, not its value."),
            ], "each sample belongs to its nearest centroid: the cells are cut halfway "
               "between neighbouring centroids, so find where each sample falls among those "
               "cut points (np.searchsorted), or compare the distances directly (np.argmin).")
            raise Failure(f"{int(np.sum(got != expected))} of {s.size} samples are in the "
                           f"wrong cell", case=case, expected=expected, got=got, hint=hint)
    return "Nearest-centroid cells for 1, 3 and 4 centroids and 1,000 Gaussian samples."


def _lloyd_step_ref(s, c):
    cells = _nearest(s, c)
    new = np.array(c, dtype=np.float64)
    for k in range(c.size):
        inside = s[cells == k]
        if inside.size:
            new[k] = inside.mean()
    return new


@checker("lloyd_step")
def check_lloyd_step(lloyd_step):
    """Check ``lloyd_step(samples, centroids)``: centroids moved to the mean of their cells."""
    gauss = seeded_rng(0).standard_normal(20000)
    cases = [
        ("samples = np.array([0.0, 1.0, 2.0, 10.0]), centroids = np.array([0.0, 5.0])",
         np.array([0.0, 1.0, 2.0, 10.0]), np.array([0.0, 5.0])),
        ("samples = np.random.default_rng(0).standard_normal(20000), "
         "centroids = np.array([-1.5, -0.5, 0.5, 1.5])", gauss, np.array([-1.5, -0.5, 0.5, 1.5])),
        ("samples = np.random.default_rng(0).standard_normal(20000), "
         "centroids = np.array([-1.0, 0.0, 100.0])  (the last cell is empty)",
         gauss, np.array([-1.0, 0.0, 100.0])),
    ]
    for case, s, c in cases:
        expected = _lloyd_step_ref(s, c)
        got = as_array(call_learner(lloyd_step, s, c, case=case), case, "the new centroids", shape=c.shape)
        cells = _nearest(s, c)
        medians = np.array([np.median(s[cells == k]) if np.any(cells == k) else c[k]
                            for k in range(c.size)])
        expect(got, expected, case, rtol=1e-9, atol=1e-12, detectors=[
            (lambda g: not np.all(np.isfinite(g)),
             "a cell with no samples has no mean (NaN): keep its old centroid."),
            (c, "the centroids did not move: set each to the mean of the samples in its cell."),
            (medians, "the centroid is the mean of its cell, not the median."),
        ], hint="cut the cells at the midpoints of the centroids, then centroid k = mean of "
                "the samples in cell k (unchanged if the cell is empty).")
    start = np.array([-1.5, -0.5, 0.5, 1.5])
    exact = codebooks.lloyd_max_step(start).centroids
    got = as_array(call_learner(lloyd_step, gauss, start, case=cases[1][0]), cases[1][0], "the centroids")
    if np.max(np.abs(got - exact)) > 0.05:  # the empirical step tracks the exact one
        raise Failure("far from the exact step tql.lloyd_max_step(centroids)", case=cases[1][0],
                       expected=exact, got=got, hint="use the midpoint cells and the cell means.")
    return ("Matches the reference step (empty cell included) and, on 20,000 Gaussian samples, "
            "the exact tql.lloyd_max_step to within sampling noise.")


@checker("fit_codebook")
def check_fit_codebook(fit_codebook):
    """Check ``fit_codebook(samples, bits, n_iter)`` against ``tql.lloyd_max_codebook(bits)``."""
    samples = seeded_rng(0).standard_normal(20000)
    for bits in (1, 2, 3):
        case = (f"samples = np.random.default_rng(0).standard_normal(20000), bits = {bits}, "
                f"n_iter = 100")
        expected = np.array(codebooks.lloyd_max_codebook(bits).centroids)
        got = as_array(call_learner(fit_codebook, samples, bits, 100, case=case), case, "the centroids")
        if got.shape != expected.shape:
            raise Failure(f"got {got.size} centroids, expected 2**bits = {expected.size}",
                           case=case, hint="start from 2**bits levels.")
        if np.any(np.diff(got) < 0):
            raise Failure("the centroids are not sorted", case=case, got=got,
                           hint="return them in ascending order (np.sort).")
        if np.max(np.abs(got - expected)) > 0.06:  # sampling noise ~0.02 at 3 bits
            mse_got = float(np.mean((samples - got[_nearest(samples, got)]) ** 2))
            hint = ("not converged yet: run all n_iter steps (or more)."
                    if mse_got > 1.02 * codebooks.lloyd_max_codebook(bits).mse else
                    "start from levels spread over the samples, e.g. evenly spaced between "
                    "samples.min() and samples.max(), and apply lloyd_step n_iter times.")
            raise Failure("far from the Lloyd-Max codebook (more than sampling noise)", case=case,
                           expected=expected, got=got, what="centroids", hint=hint)
    return "Converges to tql.lloyd_max_codebook(bits) for 1, 2 and 3 bits, within sampling noise."


def _no_tails_mse(step, bits):
    n = 2 ** bits
    c = (np.arange(n) - (n - 1) / 2) * step
    b = np.concatenate(([c[0]], (c[:-1] + c[1:]) / 2, [c[-1]]))
    total = 0.0
    for i in range(n):
        total += integrate.quad(lambda t: (t - c[i]) ** 2 * stats.norm.pdf(t), b[i], b[i + 1])[0]
    return total


@checker("uniform_codebook_mse")
def check_uniform_codebook_mse(uniform_codebook_mse):
    """Check ``uniform_codebook_mse(step, bits)`` against ``tql.expected_mse`` (Gaussian law)."""
    for step, bits in [(1.0, 1), (0.9957, 2), (0.5, 3), (0.1, 2), (2.0, 3)]:
        case = f"step = {step}, bits = {bits}"
        n = 2 ** bits
        levels = (np.arange(n) - (n - 1) / 2) * step
        expected = codebooks.expected_mse(levels)
        got = as_number(call_learner(uniform_codebook_mse, step, bits, case=case), case)
        expect(got, expected, case, rtol=1e-3, atol=1e-7, detectors=[
            (_no_tails_mse(step, bits), "include the tails: values beyond the outer levels "
                                        "map to the outer levels, so integrate out to "
                                        "-inf and +inf."),
            (step ** 2 / 12, "step**2 / 12 is the small-step approximation without the tails; "
                             "integrate (t - Q(t))**2 * phi(t) exactly."),
            (lambda g: allclose(g, expected * math.sqrt(2 * math.pi), 1e-3),
             "weight by the normal density phi(t) = exp(-t**2 / 2) / sqrt(2 pi), "
             "normalising constant included."),
        ], hint="levels c_i = (i - (2**bits - 1) / 2) * step; cells cut at the midpoints; "
                "MSE = sum over cells of the integral of (t - c_i)**2 phi(t).")
    return "Matches tql.expected_mse for 1 to 3 bits and steps from 0.1 to 2."


def _quantile_levels(bits, scale):
    """Levels at the (i + 1/2) / n quantiles of N(0, scale**2)."""
    n = 2 ** bits
    return scale * stats.norm.ppf((np.arange(n) + 0.5) / n)


@checker("compander_levels")
def check_compander_levels(compander_levels):
    """Check ``compander_levels(bits)``: levels at the mid-slice quantiles of the normalised phi**(1/3).

    The oracle integrates ``phi(t)**(1/3)`` numerically and inverts its distribution
    function, so it does not assume the closed form the learner is asked to find.
    """
    for bits in (1, 2, 3, 4, 5):
        case = f"bits = {bits}"
        n = 2 ** bits
        expected = _compander_oracle(bits)
        got = as_array(call_learner(compander_levels, bits, case=case), case, "the levels",
                       shape=(n,))
        if np.any(np.diff(got) < 0) and allclose(np.sort(got), expected, 0, 1e-4):
            raise Failure("the levels are not sorted", case=case, got=got,
                          hint="return them in ascending order.")
        expect(got, expected, case, rtol=0, atol=1e-4, what="levels", detectors=[
            (lambda g: not np.all(np.isfinite(g)),
             "a level is infinite: the slices' edges include the 0 and 1 quantiles (at -inf "
             "and +inf); put each level in the middle of its slice, at the (i + 1/2) / n "
             "quantile."),
            (_quantile_levels(bits, 1.0), "those are the quantiles of the data's own density "
                                          "phi: the levels should follow phi**(1/3), which is "
                                          "spread wider than phi."),
            (_quantile_levels(bits, 3.0), "close: phi**(1/3) is a Gaussian shape, but check "
                                          "its spread: compare the exponent of "
                                          "exp(-t**2 / 2)**(1/3) with exp(-t**2 / (2 s**2)); "
                                          "s is a standard deviation, not a variance."),
            (_quantile_levels(bits, math.sqrt(2.0)), "that is the spread of phi**(1/2); the "
                                                     "exponent of the rule is 1/3."),
            (math.sqrt(3.0) * stats.norm.ppf(np.arange(1, n + 1) / (n + 1)),
             "the levels sit in the middle of n slices of equal mass, at the (i + 1/2) / n "
             "quantiles, not at i / (n + 1)."),
        ], hint="normalise phi(t)**(1/3) to a probability density g, then put level i at the "
                "point where g's distribution function equals (i + 1/2) / n. For the Gaussian, "
                "g is itself a known law: raise exp(-t**2 / 2) to the power 1/3 and read off "
                "its spread.")
    return ("Levels at the mid-slice quantiles of the normalised phi**(1/3) for 1 to 5 bits "
            "(checked against a numerical integration of phi**(1/3)).")


def _compander_oracle(bits):
    """The compander levels from phi**(1/3) integrated numerically (no closed form used).

    The distribution function of the normalised phi**(1/3) is tabulated on a fine grid
    (cumulative trapezoid, step 1e-3 on [-15, 15]: error far below the 1e-4 tolerance)
    and inverted by interpolation.
    """
    t = np.linspace(-15.0, 15.0, 30001)
    g = stats.norm.pdf(t) ** (1 / 3)
    cdf = integrate.cumulative_trapezoid(g, t, initial=0.0)
    cdf /= cdf[-1]
    n = 2 ** bits
    return np.interp((np.arange(n) + 0.5) / n, cdf, t)
