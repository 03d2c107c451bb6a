"""Lesson 05 (the Walsh-Hadamard transform): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np

from .._checking import Failure, allclose, as_array, call_learner, checker, expect, seeded_rng

__all__ = ["check_butterfly_stage", "check_fwht", "check_fwht_inplace", "check_sylvester"]

from turboquant_lab import walsh_hadamard


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
            ], hint="for each block start j = 0, 2h, 4h, ... and i in j .. j + h - 1: "
                    "a, b = x[i], x[i + h]; y[i], y[i + h] = a + b, a - b.")
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
        hint = "apply the stages h = 1, 2, 4, ... while h < d, then divide by sqrt(d)."
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
                           what="x", hint="write the results back into x (x[i], x[i + h] = "
                                          "a + b, a - b, or x[:] = ...); `x = ...` only gives "
                                          "a new array the old name.")
        detectors = [(_fwht_overwrite_bug(x), "x[i] was overwritten before x[i] - x[i + h] was "
                                              "computed: read both first (a, b = x[i], x[i + h]), "
                                              "then write both.")]
        expect(arr, expected, case, what="x", detectors=detectors + _fwht_detectors(x, expected),
                hint="apply the stages h = 1, 2, 4, ... to x itself, then x /= sqrt(d).")
    return "x is transformed in place and matches tql.fwht for d = 1 to 256."


@checker("sylvester")
def check_sylvester(sylvester):
    """Check ``sylvester(n)``: the +1/-1 Sylvester Hadamard matrix, built recursively."""
    for n in (1, 2, 4, 8, 64):
        case = f"n = {n}"
        expected = walsh_hadamard.hadamard(n)
        got = as_array(call_learner(sylvester, n, case=case), case, "H", shape=(n, n))
        h = walsh_hadamard.hadamard(n // 2) if n > 1 else None
        detectors = [(expected / math.sqrt(n), "entries are +1 and -1: no 1/sqrt(n) here.")]
        if h is not None:
            detectors += [
                (np.block([[h, -h], [h, h]]), "the minus sign goes in the bottom-right block: "
                                              "[[H, H], [H, -H]]."),
                (np.block([[-h, h], [h, h]]), "the minus sign goes in the bottom-right block: "
                                              "[[H, H], [H, -H]]."),
                (np.block([[h, h], [-h, h]]), "the minus sign goes in the bottom-right block: "
                                              "[[H, H], [H, -H]]."),
            ]
        expect(got, expected, case, what="H", detectors=detectors,
                hint="H_1 = [[1]], H_2m = [[H_m, H_m], [H_m, -H_m]] (np.block).")
    return "Equal to tql.hadamard(n) for n = 1, 2, 4, 8 and 64."
