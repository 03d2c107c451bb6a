"""Lesson 05 (the Walsh-Hadamard transform): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np

from turboquant_lab import walsh_hadamard

from .._checking import Failure, allclose, as_array, call_learner, checker, expect, seeded_rng

__all__ = ["check_butterfly_stage", "check_fwht", "check_fwht_inplace", "check_kron_fwht"]


def _stage_variants(x, h):
    """Typical wrong butterflies: (b - a) below; pairs (2i, 2i+1) whatever h is."""
    d = x.size
    p = x.reshape(d // (2 * h), 2, h)
    swapped = np.stack([p[:, 0] + p[:, 1], p[:, 1] - p[:, 0]], axis=1).reshape(d)
    q = x.reshape(d // 2, 2)
    adjacent = np.stack([q[:, 0] + q[:, 1], q[:, 0] - q[:, 1]], axis=1).reshape(d)
    return swapped, adjacent


@checker("butterfly_stage")
def check_butterfly_stage(butterfly_stage):
    """Check ``butterfly_stage(x, h)`` against ``tql.fwht_stages``: ``(a, b) -> (a + b, a - b)``."""
    x8 = np.arange(1.0, 9.0)
    r16 = np.round(seeded_rng(0).standard_normal(16), 2)
    for name, x in [("np.arange(1.0, 9.0)", x8), ("np.round(np.random.default_rng(0)"
                                                   ".standard_normal(16), 2)", r16),
                    ("np.array([3.0, -1.0])", np.array([3.0, -1.0]))]:
        stages = walsh_hadamard.fwht_stages(x)
        for s in range(len(stages) - 1):
            h = 2 ** s
            inp = stages[s]
            case = f"x = tql.fwht_stages({name})[{s}], h = {h}"
            before = inp.copy()
            got = call_learner(butterfly_stage, inp, h, case=case, copy=False)
            if got is None and not np.array_equal(inp, before):
                raise Failure("your function changed x and returned None", case=case,
                               hint="work out of place: build a new array (y = x.copy(), or "
                                    "np.empty_like(x)) and return it; leave x as it was.")
            got = as_array(got, case, "the stage", shape=inp.shape)
            swapped, adjacent = _stage_variants(before, h)
            expect(got, stages[s + 1], case, detectors=[
                (swapped, "the second output of a butterfly is a - b (the first element minus "
                          "the second), not b - a."),
                (adjacent, "pair element i with i + h (inside each block of 2h), not with its "
                           "neighbour i + 1." if h > 1 else ""),
                (before, "the stage must change x: (a, b) becomes (a + b, a - b)."),
            ], hint="compare element by element with the expected stage: which pairs (i, j) did "
                    "you combine? At stride h, element i of each block of 2h goes with i + h.")
            if not np.array_equal(inp, before):
                raise Failure("the result is right, but your function also changed its input x",
                               case=case, hint="work out of place: write into a new array "
                                               "(y = x.copy()) and leave x as it was.")
    return "Every stage of d = 2, 8 and 16 matches tql.fwht_stages."


def _fwht_cases():
    e0 = np.zeros(8)
    e0[0] = 1.0
    return [("x = np.array([5.0])  (d = 1)", np.array([5.0])),
            ("x = np.array([1.0, 2.0])", np.array([1.0, 2.0])),
            ("x = np.eye(8)[0]", e0),
            ("x = np.arange(8.0)", np.arange(8.0)),
            ("x = np.random.default_rng(1).standard_normal(64)", seeded_rng(1).standard_normal(64)),
            ("x = np.random.default_rng(2).standard_normal(256)", seeded_rng(2).standard_normal(256))]


def _fwht_detectors(x, expected):
    d = x.size
    return [
        (expected * math.sqrt(d), "divide by sqrt(d) at the end: the orthonormal transform is "
                                  "H x / sqrt(d)."),
        (expected / math.sqrt(d), "divide by sqrt(d) once, not by d."),
    ]


@checker("fwht")
def check_fwht(fwht):
    """Check ``fwht(x)`` (out of place, orthonormal) against ``tql.fwht``."""
    for case, x in _fwht_cases():
        expected = walsh_hadamard.fwht(x)
        before = x.copy()
        arg = x.copy()
        got = as_array(call_learner(fwht, arg, case=case, copy=False), case, "the transform",
                     shape=x.shape)
        d = x.size
        hint = ("compare your intermediate results with tql.fwht_stages(x), stage by stage, to "
                "find the first one that differs.")
        if d >= 64 and allclose(got[:8], walsh_hadamard.fwht(x[:8])):
            hint = "loop over all the stages: h = 1, 2, 4, ... while h < d (not a fixed 3)."
        expect(got, expected, case, detectors=_fwht_detectors(x, expected), hint=hint)
        if not np.array_equal(arg, before):
            raise Failure("your function changed its input x", case=case,
                           hint="out of place: work on a copy (y = x.astype(float) makes one) "
                                "and return it.")
    return "Matches tql.fwht for d = 1, 2, 8, 64, 256 and leaves x untouched."


def _fwht_overwrite_bug(x):
    """The in-place slip: x[i] = a + b; x[j] = x[i] - x[j] (= a)."""
    y = x.astype(np.float64).copy()
    d = y.size
    h = 1
    while h < d:
        for j in range(0, d, 2 * h):
            for i in range(j, j + h):
                y[i] = y[i] + y[i + h]
                y[i + h] = y[i] - y[i + h]
        h *= 2
    return y / math.sqrt(d)


@checker("fwht_inplace")
def check_fwht_inplace(fwht_inplace):
    """Check ``fwht_inplace(x)``: transforms ``x`` itself (orthonormal), like ``tql.fwht``."""
    for case, x in _fwht_cases():
        expected = walsh_hadamard.fwht(x)
        arr = x.copy()
        call_learner(fwht_inplace, arr, case=case, copy=False)
        if x.size > 1 and np.array_equal(arr, x):
            raise Failure("x is unchanged after the call", case=case, expected=expected, got=arr,
                           what="x", hint="write the results into x's own elements (item or "
                                          "slice assignment); `x = ...` only gives a new array "
                                          "the old name.")
        detectors = [(_fwht_overwrite_bug(x), "x[i] was overwritten before x[i] - x[i + h] was "
                                              "computed: read both first (a, b = x[i], x[i + h]), "
                                              "then write both.")]
        expect(arr, expected, case, what="x", detectors=detectors + _fwht_detectors(x, expected),
                hint="compare x after each stage with tql.fwht_stages of the input to find the "
                     "first stage that differs.")
    return "x is transformed in place and matches tql.fwht for d = 1 to 256."


def _kron_cases():
    rng = seeded_rng(5)
    return [("x = np.arange(8.0), d1 = 2", np.arange(8.0), 2),
            ("x = np.arange(8.0), d1 = 4", np.arange(8.0), 4),
            ("x = np.random.default_rng(5).standard_normal((3, 64)), d1 = 4",
             rng.standard_normal((3, 64)), 4),
            ("x = np.random.default_rng(5).standard_normal((3, 64)), d1 = 16",
             seeded_rng(5).standard_normal((3, 64)), 16),
            ("x = np.random.default_rng(6).standard_normal((2, 5, 256)), d1 = 8",
             seeded_rng(6).standard_normal((2, 5, 256)), 8),
            ("x = np.eye(32)[3], d1 = 1", np.eye(32)[3], 1),
            ("x = np.eye(32)[3], d1 = 32", np.eye(32)[3], 32)]


@checker("kron_fwht")
def check_kron_fwht(kron_fwht):
    """Check ``kron_fwht(x, d1)``: ``H_d x`` (unnormalized) from ``H_d1`` and ``H_d2``, on the last axis."""
    for case, x, d1 in _kron_cases():
        d = x.shape[-1]
        d2 = d // d1
        expected = walsh_hadamard.fwht(x, normalize=False)
        got = as_array(call_learner(kron_fwht, x, d1, case=case), case, "H_d x", shape=x.shape)
        h1, h2 = walsh_hadamard.hadamard(d1), walsh_hadamard.hadamard(d2)
        table = x.reshape(*x.shape[:-1], d1, d2)
        transposed = (h2 @ np.swapaxes(table, -1, -2) @ h1.T).reshape(x.shape)
        detectors = [
            (expected / math.sqrt(d), "no 1/sqrt(d) here: return the plain +1/-1 sums, like "
                                      "tql.fwht(x, normalize=False)."),
            ((h1 @ table).reshape(x.shape), "you applied H_d1 only: the other factor must act too."),
            ((table @ h2.T).reshape(x.shape), "you applied H_d2 only: the other factor must act too."),
        ]
        if d1 != d2 and d1 > 1 and d2 > 1:
            detectors.append((transposed, "the right numbers in the wrong order: the output table "
                                          "must keep the input's layout (d1 rows of d2) before you "
                                          "flatten it."))
        expect(got, expected, case, what="H_d x", detectors=detectors,
               hint="write H_d1 (x) H_d2 entry by entry: H_d[i, j] with i = i1 d2 + i2 and "
                    "j = j1 d2 + j2 is H_d1[i1, j1] H_d2[i2, j2]. Which index of x does each "
                    "small matrix sum over?")
    return ("Matches tql.fwht(x, normalize=False) for d = 8 to 256, every split d1 x d2 tried, "
            "one vector and batches.")
