"""Lesson 01 (naive quantization): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import numpy as np

from turboquant_lab import data, uniform

from .._checking import (Failure, allclose, as_array, as_number, call_learner, checker, expect, first_hint,
                         seeded_rng)

__all__ = [
    "check_levels", "check_uniform_quantize", "check_uniform_dequantize",
    "check_bits_per_value", "check_best_clip",
]


@checker("levels")
def check_levels(levels):
    """Check ``levels(lo, hi, bits)``: the ``2**bits`` evenly spaced levels from lo to hi."""
    cases = [(-1.0, 1.0, 2), (0.0, 10.0, 3), (-3.0, 5.0, 1), (-0.5, 2.5, 4), (0.0, 1.0, 8),
             (2.0, 2.0, 2)]
    for lo, hi, bits in cases:
        case = f"lo = {lo}, hi = {hi}, bits = {bits}"
        expected = uniform.uniform_levels(lo, hi, bits)
        got = as_array(call_learner(levels, lo, hi, bits, case=case), case, "the levels")
        n = 2 ** bits
        if got.shape != expected.shape:
            hint = {n - 1: f"{bits} bits give 2**{bits} = {n} levels (k = 0 .. {n - 1}), "
                           f"not 2**bits - 1: there are 2**bits - 1 gaps between them.",
                    n + 1: f"{bits} bits give 2**{bits} = {n} levels (k = 0 .. {n - 1}): "
                           f"range(2**bits) stops before 2**bits."}.get(
                got.size, f"return one level per code: 2**bits = {n} values.")
            raise Failure(f"got {got.size} levels, expected {n}", case=case,
                           expected=expected, got=got, hint=hint)
        k = np.arange(n)
        expect(got, expected, case, detectors=[
            (lo + k * (hi - lo) / n, "the top level must be hi: divide (hi - lo) by the "
                                     "number of gaps, 2**bits - 1, not by 2**bits."),
            (np.linspace(lo, hi, n)[::-1], "list the levels from lo up to hi (ascending)."),
        ], hint="compare your first and last levels with lo and hi, and the gap between two "
                "neighbours with (hi - lo) split into 2**bits - 1 equal gaps.")
    return "Checked 1 to 8 bits, negative ranges, and lo == hi."


def _quantize_cases():
    kv = data.make_kv_vectors(2, 64, seed=0)
    return [
        ("x = np.array([0.0, 0.2, 0.9, 3.0]), bits = 2", np.array([0.0, 0.2, 0.9, 3.0]), 2),
        ("x = np.array([-1.0, -0.4, 0.35, 1.0, 0.05]), bits = 1",
         np.array([-1.0, -0.4, 0.35, 1.0, 0.05]), 1),
        ("x = np.random.default_rng(0).standard_normal(16), bits = 3",
         seeded_rng(0).standard_normal(16), 3),
        ("x = tql.make_kv_vectors(2, 64, seed=0)[0], bits = 2", kv[0].astype(np.float64), 2),
        ("x = tql.make_kv_vectors(2, 64, seed=0)[1], bits = 8", kv[1].astype(np.float64), 8),
        ("x = np.full(5, 1.5)  (a constant vector), bits = 3", np.full(5, 1.5), 3),
    ]


@checker("uniform_quantize")
def check_uniform_quantize(uniform_quantize):
    """Check ``uniform_quantize(x, bits) -> (codes, lo, scale)`` against the library."""
    for case, x, bits in _quantize_cases():
        q = uniform.uniform_quantize(x, bits)
        out = call_learner(uniform_quantize, x, bits, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise Failure("your function should return three things: codes, lo, scale",
                           case=case, got=out, hint="end with `return codes, lo, scale`.")
        codes, lo, scale = out
        constant = "constant" in case
        lo_v = as_number(lo, case, "lo")
        scale_v = as_number(scale, case, "scale")
        if not allclose(lo_v, q.lo):
            raise Failure("lo is wrong", case=case, expected=float(q.lo), got=lo_v,
                           hint="lo is the smallest coordinate, x.min().")
        n = 2 ** bits
        if not allclose(scale_v, q.scale):
            hint = first_hint(scale_v, [
                ((x.max() - x.min()) / n, f"the slot width divides the range by the number of "
                                          f"gaps, 2**bits - 1 = {n - 1}, not by 2**bits = {n}."),
                (x.max() - x.min(), "scale is the slot width: (max - min) / (2**bits - 1)."),
            ], "scale is the slot width: the range of x split into the gaps between "
               "2**bits levels.")
            if constant and not np.isfinite(scale_v):
                hint = "a constant vector has max == min, so scale must be 0 (not NaN)."
            raise Failure("scale is wrong", case=case, expected=float(q.scale), got=scale_v,
                           hint=hint)
        if constant:
            g = np.asarray(codes)
            if g.shape != x.shape or g.dtype.kind not in "iu" or np.any(g != 0):
                raise Failure("a constant vector should get codes that are all 0", case=case,
                               expected=q.codes, got=codes,
                               hint="a constant vector has max == min, so scale is 0 and "
                                    "(x - lo) / scale is 0 / 0: guard that division so that "
                                    "every code comes out 0.")
        g = as_array(codes, case, "codes", shape=x.shape, kind="i")
        if not np.array_equal(g.astype(np.int64), q.codes.astype(np.int64)):
            exact = (x - x.min()) / q.scale
            differ = int(np.sum(g != q.codes))
            hint = first_hint(g, [
                (np.floor(exact), "round to the nearest level with np.rint (or np.round), "
                                  "don't truncate with np.floor or .astype(int) alone."),
                (np.rint((x - x.min()) / ((x.max() - x.min()) / n)),
                 f"codes come from the slot width (max - min) / (2**bits - 1); with 2**bits "
                 f"the top value lands on code {n}, which does not exist."),
                (lambda a: a.max() > n - 1, f"codes must lie in 0 .. 2**bits - 1 = {n - 1}."),
            ], "a code counts how many slot widths x_i sits above lo, rounded to the "
               "nearest whole number.")
            raise Failure(f"codes differ at {differ} of {x.size} positions", case=case,
                           expected=q.codes, got=g, hint=hint)
    return ("Codes, lo and scale match the library for 1, 2, 3 and 8 bits, an outlier "
            "vector and a constant vector.")


@checker("uniform_dequantize")
def check_uniform_dequantize(uniform_dequantize):
    """Check ``uniform_dequantize(codes, lo, scale) -> x_hat`` against the library."""
    for case, x, bits in _quantize_cases():
        q = uniform.uniform_quantize(x, bits)
        expected = uniform.uniform_dequantize(q)
        case = f"codes, lo, scale from uniform_quantize({case.replace(', bits = ', ', bits=')})"
        got = as_array(call_learner(uniform_dequantize, q.codes.copy(), float(q.lo), float(q.scale),
                           case=case), case, "x_hat", shape=x.shape)
        expect(got, expected, case, what="x_hat", detectors=[
            (q.codes * q.scale, "add lo back: the levels start at lo, x_hat = lo + codes * scale."),
            (q.lo + q.codes / q.scale if q.scale else np.nan,
             "multiply the codes by scale (the slot width), don't divide."),
            (q.lo + (q.codes.astype(np.int64) + 0.5) * q.scale,
             "codes mark the levels themselves, not the middle of a slot: "
             "x_hat = lo + codes * scale."),
        ], hint="walk back up the ruler: start at its lowest level and climb one slot width "
                "per code (uint8 codes overflow in arithmetic: convert them to float first).")
        if np.max(np.abs(got - x)) > q.scale / 2 + 1e-9:
            raise Failure("an error is larger than half a slot", case=case,
                           hint="each x_hat_i should lie within scale / 2 of x_i.")
    return "x_hat matches the library on 6 vectors, and every error is at most scale / 2."


@checker("bits_per_value")
def check_bits_per_value(bits_per_value):
    """Check ``bits_per_value(d, bits, side_bits=32)``: bits per value, lo and scale included."""
    cases = [(64, 2, 32), (64, 4, 32), (128, 3, 32), (4096, 2, 32), (16, 8, 32), (64, 2, 16),
             (1, 1, 32)]
    for d, bits, side in cases:
        case = f"d = {d}, bits = {bits}, side_bits = {side}"
        q = uniform.uniform_quantize(seeded_rng(d).standard_normal(d) if d > 1 else np.array([1.0]), bits)
        expected = q.bits_per_coordinate(side_bits=side)
        got = as_number(call_learner(bits_per_value, d, bits, side_bits=side, case=case), case)
        expect(got, expected, case, detectors=[
            (bits + side / d, "each vector stores two extra numbers, lo and scale: 2 * side_bits."),
            (bits + 2 * side, "the side numbers are shared by the d coordinates of a vector: "
                              "divide 2 * side_bits by d."),
            (float(bits), "count the per-vector numbers lo and scale too."),
            ((bits * d + 2 * side), "that is the total per vector: divide by d for the "
                                    "figure per coordinate."),
        ], hint="count everything a vector stores (its d codes and its two side numbers), "
                "then share it among the d coordinates.")
    return "Checked d from 1 to 4096, 1 to 8 bits, float32 and float16 side numbers."


def _clipped_mse(x, bits: int, c: float) -> float:
    """MSE of the fixed ruler [-c, c] with 2**bits levels, codes clamped to the ends."""
    n = 2 ** bits
    scale = 2 * c / (n - 1)
    codes = np.clip(np.rint((x + c) / scale), 0, n - 1)
    return float(np.mean((x - (codes * scale - c)) ** 2))


def _best_clip(x, bits: int):
    """The c in (0, max|x|] of the smallest clipped MSE: a grid, then a bounded refinement."""
    from scipy.optimize import minimize_scalar

    top = float(np.abs(x).max())
    grid = np.linspace(top / 200, top, 200)
    k = int(np.argmin([_clipped_mse(x, bits, c) for c in grid]))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = minimize_scalar(lambda c: _clipped_mse(x, bits, c), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-4 * top})
    return float(res.x), float(res.fun)


@checker("best_clip")
def check_best_clip(best_clip):
    """Check ``best_clip(x, bits) -> c``: the end of the fixed ruler [-c, c] of the smallest MSE.

    The verdict compares the MSE at the learner's ``c`` with the smallest MSE the
    checker finds (within 1 %); it never prints the best ``c`` itself.
    """
    g = seeded_rng(0).standard_normal((2000, 64))
    cases = [
        ("x = np.random.default_rng(0).standard_normal((2000, 64)), bits = 2", g, 2),
        ("x = np.random.default_rng(0).standard_normal((2000, 64)), bits = 3", g, 3),
        ("x = np.random.default_rng(0).standard_normal((2000, 64)), bits = 1", g, 1),
        ("x = 3 * np.random.default_rng(1).standard_normal((2000, 64)), bits = 2",
         3 * seeded_rng(1).standard_normal((2000, 64)), 2),
    ]
    for case, x, bits in cases:
        got = as_number(call_learner(best_clip, x, bits, case=case), case, "c")
        top = float(np.abs(x).max())
        if not np.isfinite(got) or got <= 0:
            raise Failure("c must be a positive number: the ruler runs from -c to c", case=case,
                           got=got, hint="return the end of the ruler you found, a single "
                                         "positive float.")
        best_c, best = _best_clip(x, bits)
        mse = _clipped_mse(x, bits, got)
        if mse <= 1.01 * best:
            continue
        std = float(x.std())
        hint = first_hint(got, [
            (lambda c: c > 0.97 * top, "that ruler reaches (almost) the largest |x|: the point is "
                                       "to cut it shorter and let the few values beyond the ends "
                                       "be clamped; try smaller c."),
            (lambda c: c < 0.25 * std, "with so short a ruler almost every value is clamped: did "
                                       "you clamp the codes to 0 .. 2**bits - 1? Without the "
                                       "clamp the ruler has more than 2**bits levels and a tiny "
                                       "c always looks best."),
            (lambda c: abs(c - best_c) < 0.2 * best_c, "close: your search is too coarse near "
                                                       "the minimum; refine the grid of c there."),
        ], "write the MSE of the clipped ruler as a function of c (codes clamped to "
           "0 .. 2**bits - 1, measured over the whole batch), evaluate it on a fine grid of c "
           "between 0 and max|x|, and return the c where it is smallest.")
        raise Failure(f"the MSE at your c ({mse:.4g}) is {mse / best - 1:.0%} above the "
                       f"smallest MSE a ruler [-c, c] reaches on this batch ({best:.4g})",
                       case=case, got=got, what="c =", hint=hint)
    return ("Your c reaches the smallest MSE (within 1 %) at 1, 2 and 3 bits, and scales with "
            "the data (x three times larger).")
