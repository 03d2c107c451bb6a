"""Lesson 02 (the outlier problem): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import numpy as np

from turboquant_lab import data, uniform

from .._checking import Failure, as_number, call_learner, checker, expect, seeded_rng

__all__ = ["check_wasted_slots", "check_worst_case_ratio", "check_normal_mse",
           "check_break_even_scale"]


@checker("wasted_slots")
def check_wasted_slots(wasted_slots):
    """Check ``wasted_slots(x, bits)``: levels of the min-max quantizer that no coordinate uses."""
    kv = data.make_kv_vectors(3, 64, seed=0).astype(np.float64)
    cases = [
        ("x = np.array([0.0, 0.1, 0.2, 10.0]), bits = 2", np.array([0.0, 0.1, 0.2, 10.0]), 2),
        ("x = tql.make_kv_vectors(3, 64, seed=0)[0], bits = 2", kv[0], 2),
        ("x = tql.make_kv_vectors(3, 64, seed=0)[1], bits = 3", kv[1], 3),
        ("x = tql.make_kv_vectors(3, 64, seed=0)[2], bits = 4", kv[2], 4),
        ("x = np.random.default_rng(2).standard_normal(64), bits = 2",
         seeded_rng(2).standard_normal(64), 2),
        ("x = np.full(8, -0.5)  (a constant vector), bits = 3", np.full(8, -0.5), 3),
    ]
    for case, x, bits in cases:
        expected = int(uniform.quant_stats(x, bits).wasted_slots)
        got = as_number(call_learner(wasted_slots, x, bits, case=case), case)
        n = 2 ** bits
        expect(got, expected, case, detectors=[
            (n - expected, "you counted the levels that are used; wasted = 2**bits - used."),
            (expected - 1, f"there are 2**bits = {n} levels, not 2**bits - 1."),
            (expected + 1, f"there are 2**bits = {n} levels (codes 0 .. {n - 1}), "
                           f"not 2**bits + 1."),
        ], hint="a level is used when at least one coordinate's code names it: count the "
                "levels in use and compare with the 2**bits levels of the ruler.")
    return "Checked 2, 3 and 4 bits, outlier vectors, a Gaussian vector and a constant vector."


@checker("worst_case_ratio")
def check_worst_case_ratio(worst_case_ratio):
    """Check ``worst_case_ratio(x, bits)``: max over a batch of ``|x - x_hat| / scale`` (<= 0.5)."""
    cases = [
        ("x = tql.make_kv_vectors(200, 64, seed=1), bits = 2",
         data.make_kv_vectors(200, 64, seed=1).astype(np.float64), 2),
        ("x = tql.make_kv_vectors(200, 64, seed=2), bits = 3",
         data.make_kv_vectors(200, 64, seed=2).astype(np.float64), 3),
        ("x = np.random.default_rng(3).standard_normal((100, 32)), bits = 4",
         seeded_rng(3).standard_normal((100, 32)), 4),
    ]
    for case, x, bits in cases:
        q = uniform.uniform_quantize(x, bits)
        err = np.abs(x - uniform.uniform_dequantize(q))
        expected = float(np.max(err / q.scale[:, None]))
        got = as_number(call_learner(worst_case_ratio, x, bits, case=case), case)
        expect(got, expected, case, rtol=1e-6, detectors=[
            (float(np.max(err) / np.max(q.scale)), "divide each vector's errors by its own "
                                                   "scale: err / scale[:, None]."),
            (float(np.mean(err / q.scale[:, None])), "the worst case is the max, not the mean."),
            (lambda g: g > 0.5 + 1e-9, "rounding to the nearest level is never more than half a "
                                       "slot off: check your reconstruction (round, not floor)."),
        ], hint="reconstruct the whole batch, measure each error in units of its own "
                "vector's slot width, and report the largest.")
    return ("Matches the library on three batches (2, 3, 4 bits); the worst case stays below "
            "0.5 x scale.")


@checker("normal_mse")
def check_normal_mse(normal_mse):
    """Check ``normal_mse(x, bits, outlier_channels)``: MSE over the normal channels only."""
    cases = []
    for n_out, seed, bits in [(5, 0, 2), (5, 0, 4), (3, 4, 3), (0, 1, 3)]:
        x = data.make_kv_vectors(100, 64, n_outliers=n_out, seed=seed).astype(np.float64)
        ch = data.kv_outlier_channels(64, n_outliers=n_out, seed=seed)
        case = (f"x = tql.make_kv_vectors(100, 64, n_outliers={n_out}, seed={seed}), "
                f"bits = {bits}, outlier_channels = "
                f"tql.kv_outlier_channels(64, n_outliers={n_out}, seed={seed})")
        cases.append((case, x, bits, ch))
    for case, x, bits, ch in cases:
        sq = (x - uniform.uniform_dequantize(uniform.uniform_quantize(x, bits))) ** 2
        mask = np.ones(x.shape[-1], dtype=bool)
        mask[ch] = False
        expected = float(sq[:, mask].mean())
        got = as_number(call_learner(normal_mse, x, bits, ch.copy(), case=case), case)
        expect(got, expected, case, rtol=1e-6, detectors=[
            (float(sq.mean()), "average only over the normal channels: leave the columns "
                               "listed in outlier_channels out of the mean."),
            (float(sq[:, ~mask].mean()) if (~mask).any() else np.nan,
             "that is the MSE of the outlier channels; keep the others."),
            (float(np.sqrt(sq[:, mask].mean())), "MSE is the mean of the squared errors, without "
                                                 "a square root."),
            (float(np.abs(np.sqrt(sq[:, mask])).mean()), "square the errors before averaging."),
        ], hint="quantize whole vectors (outliers included), then average the squared "
                "errors of the normal channels only.")
    return "Checked 2 to 4 bits, 0, 3 and 5 outlier channels."



def _normal_mse_and_mean_square(scale: float, bits: int):
    """For make_kv_vectors(1000, 64, outlier_scale=scale, seed=0): the normal channels' MSE at
    ``bits`` (whole vectors quantized) and their mean square (the MSE of storing 0)."""
    x = data.make_kv_vectors(1000, 64, outlier_scale=scale, seed=0).astype(np.float64)
    normal = np.setdiff1d(np.arange(64), data.kv_outlier_channels(64, 5, seed=0))
    sq = (x - uniform.uniform_dequantize(uniform.uniform_quantize(x, bits))) ** 2
    return float(sq[:, normal].mean()), float(np.mean(x[:, normal] ** 2))


def _normal_gap(scale: float, bits: int) -> float:
    mse, mean_square = _normal_mse_and_mean_square(scale, bits)
    return mse - mean_square


def _break_even(bits: int) -> float:
    """The outlier scale where the normal channels' MSE reaches their mean square (bisection)."""
    lo, hi = 1.0, 2.0
    while _normal_gap(hi, bits) < 0:
        lo, hi = hi, 2 * hi
    for _ in range(14):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _normal_gap(mid, bits) < 0 else (lo, mid)
    return (lo + hi) / 2


@checker("break_even_scale")
def check_break_even_scale(break_even_scale):
    """Check ``break_even_scale(bits)``: the outlier scale from which min-max quantization of the
    normal channels costs as much as storing 0 for them (within 0.15; the verdict never prints it)."""
    for bits in (2, 3, 4):
        case = f"bits = {bits}"
        got = as_number(call_learner(break_even_scale, bits, case=case), case, "the scale")
        best = _break_even(bits)
        if np.isfinite(got) and abs(got - best) <= 0.15:
            continue
        if not np.isfinite(got) or got < 1:
            raise Failure("the scale should be a finite number of at least 1 (outliers as large "
                          "as the other channels, or larger)", case=case, got=got,
                          hint="scan outlier_scale upwards from 1 and stop at the first scale "
                               "where the normal channels do no better than storing 0.")
        mse, mean_square = _normal_mse_and_mean_square(got, bits)
        if mse < mean_square:
            problem = ("at your scale the normal channels still do better than storing 0 "
                       f"(MSE {mse:.3f} against their mean square {mean_square:.3f}): the "
                       f"break-even lies above it")
            hint = ("scan further up, and compare the normal-channel MSE with the mean square of "
                    "the normal channels of the same batch.")
        else:
            problem = ("at your scale the normal channels already do worse than storing 0, but "
                       "so they do at a somewhat smaller scale: the break-even lies below it")
            hint = ("refine the scan: a step of 0.1 (or a bisection between the last scale "
                    "below and the first above) finds it to within 0.1.")
        raise Failure(problem, case=case, got=got, what="outlier_scale =", hint=hint)
    return ("Found the break-even outlier scale at 2, 3 and 4 bits (within 0.15); compare each "
            "with your prediction.")
