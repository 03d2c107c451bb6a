"""Lesson 11 (real KV caches): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import functools

import numpy as np

from turboquant_lab import data, metrics, rotation, turboquant, uniform

from .._checking import Failure, as_array, as_number, call_learner, checker, expect, seeded_rng

__all__ = [
    "check_channel_rms", "check_outlier_channels", "check_max_over_mean_rotated",
    "check_storage_and_error",
]

from turboquant_lab import walsh_hadamard


@functools.lru_cache(maxsize=1)
def _real_keys():
    """The real keys of the shipped sample as read-only float64, (layers, heads, tokens, d)."""
    keys = data.load_kv_sample().keys.astype(np.float64)
    keys.flags.writeable = False
    return keys


@checker("channel_rms")
def check_channel_rms(channel_rms):
    """Check ``channel_rms(keys)``: the RMS over the tokens of each channel, ``(..., n, d)``."""
    keys = _real_keys()
    cases = [
        ("keys = np.array([[1.0, -2.0, 0.0], [3.0, 2.0, 0.0]])  (2 tokens, 3 channels)",
         np.array([[1.0, -2.0, 0.0], [3.0, 2.0, 0.0]])),
        ("keys = sample.keys[2, 3].astype(np.float64)  (one head: 256 tokens x 32 channels)",
         np.array(keys[2, 3])),
        ("keys = sample.keys.astype(np.float64)  (every layer and head: (6, 12, 256, 32))",
         np.array(keys)),
        ("keys = tql.make_kv_vectors(300, 64, seed=2)",
         data.make_kv_vectors(300, 64, seed=2).astype(np.float64)),
    ]
    for case, x in cases:
        expected = metrics.channel_rms(x)
        got = call_learner(channel_rms, x, case=case)
        if np.shape(got) == x.shape[:-1] and x.shape[-2] != x.shape[-1]:
            raise Failure(f"got one number per token (shape {np.shape(got)}), expected one per "
                           f"channel {expected.shape}", case=case,
                           hint="average over the tokens, the second-to-last axis: "
                                "np.mean(x ** 2, axis=-2).")
        got = as_array(got, case, "the channel RMS", shape=expected.shape)
        expect(got, expected, case, rtol=1e-6, atol=1e-12, what="RMS", detectors=[
            (np.std(x, axis=-2), "the RMS keeps the channel's mean: sqrt(mean(x**2)), not the "
                                 "standard deviation, which subtracts it (and real keys have "
                                 "large channel means)."),
            (np.mean(x ** 2, axis=-2), "take the square root of the mean square."),
            (np.mean(np.abs(x), axis=-2), "root mean square: sqrt(mean(x**2)), not mean(|x|)."),
            (np.sqrt(np.sum(x ** 2, axis=-2)), "the mean of the squares, not their sum: divide "
                                               "by the number of tokens."),
        ], hint="np.sqrt(np.mean(keys ** 2, axis=-2)).")
    return ("Matches sqrt(mean(keys**2, axis=-2)) for one head, every head at once and "
            "synthetic keys.")


def _outliers(x, factor):
    rms = metrics.channel_rms(x)
    return np.flatnonzero(rms > factor * np.median(rms))


def _outlier_variants(x, factor):
    """Typical slips: (hint, channels) for the mean instead of the median, std instead of RMS."""
    rms, std = metrics.channel_rms(x), np.std(x, axis=-2)
    return [
        ("compare with the median channel RMS, not the mean: a few big channels pull the mean "
         "up (and hide themselves).", np.flatnonzero(rms > factor * rms.mean())),
        ("use the RMS of each channel (exercise 11.1), not its standard deviation: the "
         "channel means are part of what makes a channel large.",
         np.flatnonzero(std > factor * np.median(std))),
        ("use the RMS of each channel (exercise 11.1) and the median: "
         "rms > factor * np.median(rms).", np.flatnonzero(std > factor * std.mean())),
    ]


@checker("outlier_channels")
def check_outlier_channels(outlier_channels):
    """Check ``outlier_channels(keys, factor)``: channels with RMS above factor x the median."""
    keys = _real_keys()
    syn = data.make_kv_vectors(500, 64, seed=3).astype(np.float64)
    cases = [
        ("keys = tql.make_kv_vectors(500, 64, seed=3), factor = 3.0  (5 outlier channels)",
         syn, 3.0),
        ("keys = sample.keys[5, 4].astype(np.float64), factor = 2.0", np.array(keys[5, 4]), 2.0),
        ("keys = sample.keys[2, 3].astype(np.float64), factor = 2.0", np.array(keys[2, 3]), 2.0),
        ("keys = sample.keys[0, 0].astype(np.float64), factor = 2.0  (no outlier channel)",
         np.array(keys[0, 0]), 2.0),
        ("keys = sample.keys[2, 3].astype(np.float64), factor = 1.5", np.array(keys[2, 3]), 1.5),
    ]
    answers = []
    for case, x, factor in cases:
        expected = _outliers(x, factor)
        got = call_learner(outlier_channels, x, factor, case=case)
        g = np.asarray(got) if got is not None else None
        if g is not None and g.dtype == bool:
            raise Failure("your function returned a boolean mask", case=case, expected=expected,
                           hint="return the channel indices: np.flatnonzero(mask) (or "
                                "np.nonzero(mask)[0]).")
        g = as_array(got, case, "the channel indices")
        if g.ndim != 1:
            raise Failure(f"return a 1-D array of channel indices, got shape {g.shape}",
                           case=case, expected=expected, got=g,
                           hint="np.flatnonzero(rms > factor * np.median(rms)).")
        if g.size and np.any(np.diff(g) < 0) and np.array_equal(np.sort(g), expected):
            raise Failure("the right channels, but not in ascending order", case=case,
                           expected=expected, got=g, hint="return them sorted (np.sort).")
        answers.append(g)
    wrong = [i for i, (g, (_, x, f)) in enumerate(zip(answers, cases))
             if not (g.shape == _outliers(x, f).shape and np.array_equal(g, _outliers(x, f)))]
    if not wrong:
        return ("Finds the five outlier channels of the synthetic keys and the mild ones of "
                "real heads (none where there are none).")
    # the slip that explains every answer, if there is one
    hint = "rms = np.sqrt(np.mean(keys ** 2, axis=0)); return np.flatnonzero(rms > factor * " \
           "np.median(rms))."
    for k in range(len(_outlier_variants(syn, 3.0))):
        if all(np.array_equal(g, _outlier_variants(x, f)[k][1])
               for g, (_, x, f) in zip(answers, cases)):
            hint = _outlier_variants(syn, 3.0)[k][0]
            break
    case, x, factor = cases[wrong[0]]
    expected, g = _outliers(x, factor), answers[wrong[0]]
    raise Failure(f"{expected.size} outlier channel(s) expected, got {g.size}"
                   if g.size != expected.size else "the channels differ", case=case,
                   expected=expected, got=g, what="channels", hint=hint)


@checker("max_over_mean_rotated")
def check_max_over_mean_rotated(max_over_mean_rotated):
    """Check ``max_over_mean_rotated(x, seed)``: per-vector max|x|/mean|x|, before and after."""
    keys = _real_keys()
    cases = [
        ("x = tql.make_kv_vectors(200, 64, seed=0), seed = 0",
         data.make_kv_vectors(200, 64, seed=0).astype(np.float64), 0),
        ("x = sample.keys[3].reshape(-1, 32).astype(np.float64)  (layer 3, all heads), seed = 1",
         np.array(keys[3]).reshape(-1, 32), 1),
        ("x = np.random.default_rng(4).standard_normal((100, 128)), seed = 2",
         seeded_rng(4).standard_normal((100, 128)), 2),
    ]
    for case, x, seed in cases:
        n, d = x.shape
        rot = rotation.RandomizedHadamard(d, seed=seed)
        before, after = metrics.max_over_mean(x), metrics.max_over_mean(rot.forward(x))
        out = call_learner(max_over_mean_rotated, x, seed, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure("return two arrays: (before, after)", case=case, got=out,
                           hint="end with `return before, after`.")
        b, a = out
        for name, value, expected in (("before", b, before), ("after", a, after)):
            if np.size(value) == 1 and n > 1:
                raise Failure(f"{name} should hold one ratio per vector ({n}), got one number",
                               case=case, expected=expected, got=value,
                               hint="compute the ratio along the last axis (axis=-1) and "
                                    "don't average over the vectors.")
            value = as_array(value, case, name, shape=(n,))
            expect(value, expected, case, rtol=1e-5, atol=1e-9, what=name, detectors=[
                (metrics.max_over_mean(walsh_hadamard.fwht(x)), "rotate with the randomized Hadamard, signs included: "
                                         "tql.RandomizedHadamard(d, seed=seed).forward(x), not "
                                         "the plain tql.fwht."),
                (np.max(x, -1) / np.mean(x, -1) if name == "before" else np.nan,
                 "use magnitudes: np.abs(x).max(axis=-1) / np.abs(x).mean(axis=-1)."),
                (metrics.max_over_mean(rotation.RandomizedHadamard(d, seed=0).forward(x)) if seed else np.nan,
                 "use the seed you are given: tql.RandomizedHadamard(d, seed=seed)."),
                (metrics.max_over_mean(x @ rotation.RandomizedHadamard(d, seed=seed).matrix())
                 if name == "after" else np.nan,
                 "rotate each row with .forward(x); x @ matrix() applies the transpose."),
            ], hint="r = lambda v: np.abs(v).max(-1) / np.abs(v).mean(-1); return r(x), "
                    "r(tql.RandomizedHadamard(x.shape[-1], seed=seed).forward(x)).")
    return ("Before and after the randomized Hadamard, per vector, for synthetic outlier "
            "vectors, real keys and Gaussian vectors.")


def _storage_error_ref(x, bits, method, seed):
    d = x.shape[-1]
    if method == "uniform":
        x_hat = uniform.uniform_dequantize(uniform.uniform_quantize(x, bits))
        bpc = bits + 32 / d
    else:
        tq = turboquant.TurboQuantMSE(d, bits, seed=seed)
        enc = tq.encode(x)
        x_hat = np.asarray(tq.decode(enc), dtype=np.float64)
        bpc = enc.bits_per_coordinate
    err = np.sum((x - x_hat) ** 2, axis=-1)
    energy = np.sum(x ** 2, axis=-1)
    return bpc, float(err.sum() / energy.sum()), x_hat


@checker("storage_and_error")
def check_storage_and_error(storage_and_error):
    """Check ``storage_and_error(x, bits, method, seed)``: (bits per coordinate, relative MSE)."""
    keys = _real_keys()
    real = np.array(keys).reshape(-1, keys.shape[-1])
    syn = data.make_kv_vectors(500, 64, seed=6).astype(np.float64)
    cases = [("x = sample.keys.reshape(-1, 32).astype(np.float64)", real, 3, "uniform"),
             ("x = sample.keys.reshape(-1, 32).astype(np.float64)", real, 3, "turboquant"),
             ("x = tql.make_kv_vectors(500, 64, seed=6)", syn, 2, "uniform"),
             ("x = tql.make_kv_vectors(500, 64, seed=6)", syn, 4, "turboquant"),
             ("x = sample.keys.reshape(-1, 32).astype(np.float64)", real, 1, "turboquant")]
    for text, x, bits, method in cases:
        case = f"{text}, bits = {bits}, method = {method!r}, seed = 0"
        bpc, rel, x_hat = _storage_error_ref(x, bits, method, 0)
        out = call_learner(storage_and_error, x, bits, method, 0, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure("return two numbers: (bits_per_coordinate, rel_mse)", case=case,
                           got=out, hint="end with `return bits_per_coordinate, rel_mse`.")
        got_bpc = as_number(out[0], case, "bits_per_coordinate")
        got_rel = as_number(out[1], case, "rel_mse")
        d = x.shape[-1]
        side = ("the uniform quantizer stores lo and scale per vector, two float16 numbers: "
                "bits + 2 * 16 / d." if method == "uniform" else
                "TurboQuant stores each vector's norm as float16: use the Encoded's "
                ".bits_per_coordinate (bits + 16 / d here).")
        expect(got_bpc, bpc, case, what="bits_per_coordinate", rtol=1e-9, atol=1e-9, detectors=[
            (float(bits), "count the side information too: " + side),
            (bits + 64 / d, "store lo and scale as float16 (16 bits each, like TurboQuant's "
                            "norm), not float32."),
            (bits + 16 / d if method == "uniform" else np.nan,
             "there are two side numbers per vector, lo and scale: 2 * 16 / d."),
        ], hint=side)
        err = np.sum((x - x_hat) ** 2, axis=-1)
        energy = np.sum(x ** 2, axis=-1)
        expect(got_rel, rel, case, what="rel_mse", rtol=1e-3, atol=1e-9, detectors=[
            (float(np.mean(err / energy)), "pool before dividing: sum of ||x - x_hat||^2 over "
                                           "all vectors / sum of ||x||^2, not the mean of "
                                           "per-vector ratios."),
            (float(np.mean((x - x_hat) ** 2)), "relative: divide by the energy of x, "
                                               "np.sum(x ** 2)."),
            (float(np.sum(np.abs(x - x_hat)) / np.sum(np.abs(x))), "squared errors: "
                                                                  "np.sum((x - x_hat) ** 2)."),
        ], hint="rel_mse = np.sum((x - x_hat) ** 2) / np.sum(x ** 2); x_hat from "
                "tql.uniform_dequantize(tql.uniform_quantize(x, bits)) or "
                "tq.decode(tq.encode(x)) with tq = tql.TurboQuantMSE(d, bits, seed=seed).")
    return ("Storage (side information included) and relative MSE match for the uniform and "
            "the TurboQuant quantizer on real and synthetic keys, 1 to 4 bits.")
