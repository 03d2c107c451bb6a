"""Lesson 06 (random signs): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from turboquant_lab import data, walsh_hadamard

from .._checking import Failure, as_array, as_number, call_learner, checker, expect, first_hint, seeded_rng

__all__ = ["check_spike_preimage", "check_hd_coordinate_law", "check_hd_kurtosis"]


@checker("spike_preimage")
def check_spike_preimage(spike_preimage):
    """Check ``spike_preimage(d)``: a unit vector that the fixed orthonormal H maps to a spike."""
    for d in (4, 8, 64):
        case = f"d = {d}"
        x = as_array(call_learner(spike_preimage, d, case=case), case, "x", shape=(d,)).astype(np.float64)
        norm = float(np.linalg.norm(x))
        if abs(norm - 1) > 1e-6:
            raise Failure("x should be a unit vector", case=case, expected=1.0, got=norm,
                           what="||x||", hint="divide by its length: x / np.linalg.norm(x).")
        y = walsh_hadamard.fwht(x)
        peak = float(np.max(np.abs(y)))
        if peak < 1 - 1e-6:
            hint = ("that is a spike already, and H spreads a spike flat. Go backwards: the "
                    "orthonormal H is its own inverse. Which input lands on a spike?"
                    if np.max(np.abs(x)) > 1 - 1e-6 else
                    "go backwards from the output you want: the orthonormal H is its own inverse.")
            raise Failure("tql.fwht(x) is not a spike: its largest |coordinate| should be 1",
                           case=case,
                           expected=1.0, got=peak, what="max |fwht(x)|", hint=hint)
    return "tql.fwht maps your flat unit vector to a single spike for d = 4, 8 and 64."


def _law_by_enumeration(k):
    """Values and probabilities of t = sum_j s_j / sqrt(k) over all 2**k sign patterns."""
    patterns = 1 - 2 * ((np.arange(2 ** k)[:, None] >> np.arange(k)) & 1)
    values, counts = np.unique(np.round(patterns.sum(axis=1) / math.sqrt(k), 12), return_counts=True)
    return values, counts / 2 ** k


def _law(k):
    m = np.arange(k + 1)
    return (2 * m - k) / math.sqrt(k), stats.binom.pmf(m, k, 0.5)


@checker("hd_coordinate_law")
def check_hd_coordinate_law(hd_coordinate_law):
    """Check ``hd_coordinate_law(k) -> (values, probabilities)`` for a k-sparse flat unit input."""
    for k in (1, 2, 3, 6, 10, 64):
        case = f"k = {k}"
        values, probs = _law_by_enumeration(k) if k <= 10 else _law(k)
        out = call_learner(hd_coordinate_law, k, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure("return two arrays: (values, probabilities)", case=case, got=out,
                          hint="end with `return values, probabilities`.")
        got_v = as_array(out[0], case, "the values").ravel()
        got_p = as_array(out[1], case, "the probabilities").ravel()
        if got_v.shape != got_p.shape:
            raise Failure(f"{got_v.size} values but {got_p.size} probabilities", case=case,
                          hint="one probability per distinct value.")
        if not np.all(np.diff(got_v) > 0):
            raise Failure("the values should be distinct and in increasing order", case=case,
                          got=got_v, hint="merge equal values (adding their probabilities) and sort.")
        if abs(float(np.sum(got_p)) - 1) > 1e-9:
            raise Failure("the probabilities do not sum to 1", case=case, expected=1.0,
                          got=float(np.sum(got_p)), what="sum of the probabilities",
                          hint="every one of the 2**k sign patterns gives one value: count them.")
        if k > 1 and got_v.shape == values.shape and np.allclose(got_v, values * math.sqrt(k), rtol=1e-9):
            raise Failure("the values are sqrt(k) times too large", case=case, expected=values,
                          got=got_v, what="values",
                          hint="the input has unit length: its nonzero entries are +-1/sqrt(k).")
        expect(got_v, values, case, what="values", rtol=1e-9, atol=1e-12,
               hint="t is a sum of k terms, each +-1/sqrt(k) with its own random sign: which sums "
                    "can occur?")
        expect(got_p, probs, case, what="probabilities", rtol=1e-9, atol=1e-15, detectors=[
            (np.full(probs.shape, 1 / probs.size), "the values are not equally likely: count how "
                                                   "many of the 2**k sign patterns give each one."),
        ], hint="count how many of the 2**k equally likely sign patterns give each value.")
    return ("The exact law for k = 1, 2, 3, 6, 10 and 64 nonzero entries: k + 1 values on a "
            "lattice, binomial weights.")


def _kurtosis_by_enumeration(x):
    """E[t^4] / E[t^2]^2 of t = (H D x)_0 over all 2**d sign patterns (d <= 10)."""
    d = x.size
    patterns = 1 - 2 * ((np.arange(2 ** d)[:, None] >> np.arange(d)) & 1)
    t = walsh_hadamard.fwht(patterns * x)[:, 0]
    return float(np.mean(t ** 4) / np.mean(t ** 2) ** 2)


def _kurtosis_cases():
    kv = data.make_kv_vectors(1, 64, seed=0)[0].astype(np.float64)
    h = walsh_hadamard.hadamard(64)
    return [("x = np.arange(1.0, 9.0)", np.arange(1.0, 9.0), True),
            ("x = np.array([3.0, 0, 0, 0, 0, 0, 0, 4.0])", np.array([3.0, 0, 0, 0, 0, 0, 0, 4.0]), True),
            ("x = np.random.default_rng(3).standard_normal(8)", seeded_rng(3).standard_normal(8), True),
            ("x = np.eye(64)[1]", np.eye(64)[1], False),
            ("x = np.ones(64)", np.ones(64), False),
            ("x = tql.hadamard(64)[5]", h[5], False),
            ("x = tql.make_kv_vectors(1, 64, seed=0)[0]", kv, False)]


@checker("hd_kurtosis")
def check_hd_kurtosis(hd_kurtosis):
    """Check ``hd_kurtosis(x)``: the exact kurtosis of a coordinate of ``H D x`` over the random signs."""
    for case, x, small in _kurtosis_cases():
        u = x / np.linalg.norm(x)
        expected = _kurtosis_by_enumeration(x) if small else 3 - 2 * float(np.sum(u ** 4))
        got = as_number(call_learner(hd_kurtosis, x.copy(), case=case), case, "the kurtosis")
        if abs(got - expected) <= 1e-9 * max(1.0, abs(expected)):
            continue
        d = x.size
        hint = first_hint(got, [
            (lambda g: abs(g - 3) < 1e-9, "3 is the Gaussian's kurtosis; the sum here has a few "
                                          "terms or unequal ones, and that shows."),
            (lambda g: abs(g - 3 * d / (d + 2)) < 1e-9, "3d/(d+2) is a random rotation's value; under "
                                                       "H D the kurtosis depends on x."),
            (lambda g: abs(g - (3 - 2 * float(np.sum(x ** 4)))) < 1e-9 and abs(np.sum(x ** 2) - 1) > 1e-9,
             "the kurtosis does not change with the length of x: work with the unit vector "
             "x / ||x||."),
            (lambda g: abs(g - expected) < 0.05 * expected,
             "close, but not exact: is it an estimate from sampled signs? Compute the expectation "
             "itself."),
        ], "write t = sum_j a_j s_j and expand E[t**4]: which products of four signs have a "
           "nonzero expectation?")
        raise Failure("not the exact kurtosis over the random signs", case=case, expected=expected,
                      got=got, hint=hint)
    return ("Exact for d = 8 (checked against all 256 sign patterns) and for a spike, the constant "
            "vector, a row of H and a KV vector at d = 64.")
