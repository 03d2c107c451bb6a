"""Lesson 02 (the outlier problem): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import numpy as np

from turboquant_lab import data, uniform

from .._checking import as_number, call_learner, checker, expect, seeded_rng

__all__ = ["check_wasted_slots", "check_worst_case_ratio", "check_normal_mse"]




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
        ], hint="quantize x, count the distinct codes (np.unique), subtract from 2**bits.")
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
        ], hint="ratio = max over vectors and coordinates of |x - x_hat| / scale of that vector.")
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
            (float(sq.mean()), "average only over the normal channels: drop the outlier "
                               "channels with a boolean mask (mask[outlier_channels] = False)."),
            (float(sq[:, ~mask].mean()) if (~mask).any() else np.nan,
             "that is the MSE of the outlier channels; keep the others."),
            (float(np.sqrt(sq[:, mask].mean())), "MSE is the mean of the squared errors, without "
                                                 "a square root."),
            (float(np.abs(np.sqrt(sq[:, mask])).mean()), "square the errors before averaging."),
        ], hint="quantize whole vectors, then average (x - x_hat)**2 over the normal channels.")
    return "Checked 2 to 4 bits, 0, 3 and 5 outlier channels."
