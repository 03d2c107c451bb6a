"""Lesson 11 (real KV caches): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`).

The exercises run on the SmolLM2 sample (``tql.load_kv_sample("smollm2")``).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from turboquant_lab import data, kv_codecs, llm, metrics, softmax_attention, turboquant

from .._checking import Failure, as_array, as_number, call_learner, checker, expect, seeded_rng

__all__ = ["check_outlier_channels", "check_rope", "check_causal_kl", "check_centred_turboquant",
           "check_kivi_before_rope"]


@functools.lru_cache(maxsize=1)
def _sample():
    return data.load_kv_sample("smollm2")


def _head(name: str, layer: int, head: int) -> np.ndarray:
    """One head of the sample as a fresh float64 array: name in keys, keys_pre_rope, values, queries."""
    return np.array(getattr(_sample(), name)[layer, head], dtype=np.float64)


# --------------------------------------------------------------------------- 11.1


def _outliers(x, factor):
    rms = metrics.channel_rms(x)
    channels = np.flatnonzero(rms > factor * np.median(rms))
    col = x[:, channels]
    return channels, col.mean(axis=0) ** 2 / np.mean(col ** 2, axis=0)


@checker("outlier_channels")
def check_outlier_channels(outlier_channels):
    """Check ``outlier_channels(keys, factor)``: loud channels and the share of their energy in their mean."""
    rng = seeded_rng(7)
    offset = rng.standard_normal((300, 16))
    offset[:, 3] += 10.0                                   # a constant channel: share close to 1
    cases = [
        ("keys = tql.make_kv_vectors(500, 64, seed=3).astype(np.float64), factor = 4.0  "
         "(5 outlier channels, zero mean)", data.make_kv_vectors(500, 64, seed=3).astype(np.float64), 4.0),
        ("keys = sample.keys[2, 1].astype(np.float64), factor = 4.0", _head("keys", 2, 1), 4.0),
        ("keys = sample.keys_pre_rope[3, 2].astype(np.float64), factor = 3.0",
         _head("keys_pre_rope", 3, 2), 3.0),
        ("keys = np.random.default_rng(7).standard_normal((300, 16)); keys[:, 3] += 10.0; factor = 4.0",
         offset, 4.0),
        ("keys = np.random.default_rng(8).standard_normal((200, 32)), factor = 4.0  (no outlier channel)",
         seeded_rng(8).standard_normal((200, 32)), 4.0),
    ]
    for case, x, factor in cases:
        channels, share = _outliers(x, factor)
        out = call_learner(outlier_channels, x, factor, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure("return two arrays: (channels, offset_share)", case=case, got=out,
                          hint="end with `return channels, offset_share`.")
        got_c, got_s = out
        g = np.asarray(got_c) if got_c is not None else None
        if g is not None and g.dtype == bool:
            raise Failure("channels is a boolean mask", case=case, expected=channels,
                          hint="return the indices of the channels (np.flatnonzero turns a mask into "
                               "indices).")
        g = as_array(got_c, case, "channels")
        rms, std = metrics.channel_rms(x), x.std(axis=0)
        if not (g.shape == channels.shape and np.array_equal(g, channels)):
            hint = "a channel is an outlier when its RMS over the tokens exceeds factor x the median RMS."
            if np.array_equal(np.sort(g), channels):
                hint = "the right channels, but return them in ascending order."
            elif np.array_equal(g, np.flatnonzero(rms > factor * rms.mean())):
                hint = ("compare with the median channel RMS, not the mean: the loud channels pull the "
                        "mean up and hide themselves.")
            elif np.array_equal(g, np.flatnonzero(std > factor * np.median(std))):
                hint = ("use the RMS over the tokens, sqrt(mean(k**2)), not the standard deviation: "
                        "a channel that is large in every token has a small standard deviation.")
            elif g.size and g.max() >= x.shape[1]:
                hint = "average over the tokens (axis 0): one RMS per channel, not per token."
            raise Failure(f"{channels.size} outlier channel(s) expected, got {g.size}"
                          if g.size != channels.size else "the channels differ",
                          case=case, expected=channels, got=g, what="channels", hint=hint)
        col = x[:, channels]
        got_s = as_array(got_s, case, "offset_share", shape=share.shape)
        expect(got_s, share, case, what="offset_share", rtol=1e-6, atol=1e-9, detectors=[
            (np.abs(col.mean(axis=0)) / np.sqrt(np.mean(col ** 2, axis=0)),
             "a share of the energy: square the mean before dividing by the mean square."),
            (col.mean(axis=0) ** 2 / col.var(axis=0),
             "divide by the channel's whole energy, mean(k**2) = mean**2 + variance, not by the variance."),
            (1 - col.mean(axis=0) ** 2 / np.mean(col ** 2, axis=0),
             "that is the share of the spread; the exercise asks for the mean's share."),
        ], hint="for each outlier channel: (its mean over the tokens) squared, over its mean square.")
    return ("Finds the outlier channels (none where there are none) and how much of their energy is "
            "a constant, on synthetic keys and on real keys before and after RoPE.")


# --------------------------------------------------------------------------- 11.2


@checker("rope")
def check_rope(rope):
    """Check ``rope(x, positions, base)``: RoPE on adjacent channel pairs (2i, 2i + 1)."""
    cases = [
        ("x = np.array([[1.0, 0.0, 1.0, 0.0]]), positions = np.array([1]), base = 10000.0",
         np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([1]), 10000.0),
        ("x = np.random.default_rng(1).standard_normal((6, 8)), positions = np.arange(6), base = 100.0",
         seeded_rng(1).standard_normal((6, 8)), np.arange(6), 100.0),
        ("x = np.random.default_rng(2).standard_normal((2, 5, 4)), positions = np.array([3, 7, 0, 1, 20]), "
         "base = 10.0  (two heads)", seeded_rng(2).standard_normal((2, 5, 4)), np.array([3, 7, 0, 1, 20]),
         10.0),
        ("x = sample.keys_pre_rope[2, 1].astype(np.float64), positions = np.arange(256), base = 100000.0",
         _head("keys_pre_rope", 2, 1), np.arange(256), 100000.0),
    ]
    for case, x, positions, base in cases:
        expected = llm.apply_rope(x, positions, base).astype(np.float64)
        got = as_array(call_learner(rope, x, positions, base, case=case), case, "the rotated x",
                       shape=x.shape)
        d = x.shape[-1]
        detectors = [
            (llm.apply_rope(x, positions, base, layout="half"),
             "this file's RoPE pairs adjacent channels (2i, 2i + 1); you paired channel i with i + d/2."),
            (llm.apply_rope(x, -np.asarray(positions), base),
             "you turn the pairs backwards: the first channel of a pair becomes a cos - b sin."),
            (llm.apply_rope(x, positions, base ** 0.5),
             "the angle of pair i is p * base**(-2i / d): the exponent counts the channel 2i, "
             "not the pair i."),
            (llm.apply_rope(x, np.ones_like(positions), base) if len(positions) > 1 else np.nan,
             "turn each token by its own position p (the angle grows with p)."),
            (x, "the channels are unchanged: rotate each pair."),
        ]
        expect(got, expected, case, what="rotated x", rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(x).max())),
               detectors=detectors,
               hint=f"pair i = (x[..., 2i], x[..., 2i + 1]) of the token at position p turns by the angle "
                    f"p * base**(-2i / d) (d = {d} here), like a 2-D point turned counterclockwise.")
    return "Matches tql.llm.apply_rope (the GGUF layout) on small cases, two heads and a real head."


# --------------------------------------------------------------------------- 11.3


def _kl(Q, K, K_hat):
    return softmax_attention.attention_fidelity(Q, K, K, K_hat=K_hat, causal=True).kl


def _kl_variants(Q, K, K_hat):
    """Typical slips: (value, hint)."""
    n, d = K.shape
    tau = 1 / math.sqrt(d)

    def logsm(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    def kl(z, z_hat, mask=None, reverse=False, mean=True):
        if mask is not None:
            z, z_hat = np.where(mask, z, -np.inf), np.where(mask, z_hat, -np.inf)
        a, b = logsm(z), logsm(z_hat)
        if reverse:
            a, b = b, a
        terms = np.exp(a) * np.subtract(a, b, out=np.zeros_like(a), where=np.isfinite(a))
        per = terms.sum(axis=-1)
        return per.mean() if mean else per.sum()

    s, s_hat = Q @ K.T, Q @ K_hat.T
    causal = np.tril(np.ones((Q.shape[0], n), dtype=bool), k=n - Q.shape[0])
    return [
        (kl(tau * s, tau * s_hat), "apply the causal mask: query i may only see keys 0 .. i "
                                   "(set the other scores to -inf before the softmax)."),
        (kl(tau * s, tau * s_hat, causal, reverse=True), "KL(p || p_hat) weighs by the exact weights p: "
                                                         "you computed KL(p_hat || p)."),
        (kl(s, s_hat, causal), "scale the scores by 1/sqrt(d) before the softmax."),
        (kl(tau * s, tau * s_hat, causal, mean=False), "average over the queries, do not sum."),
    ]


@checker("causal_kl")
def check_causal_kl(causal_kl):
    """Check ``causal_kl(Q, K, K_hat)``: mean over queries of KL(p || p_hat) with the causal mask."""
    K0 = _head("keys", 2, 1)
    tq = turboquant.TurboQuantMSE(64, 2, seed=0)
    real_hat = np.asarray(tq.decode(tq.encode(K0.astype(np.float32))), dtype=np.float64)
    K1 = seeded_rng(3).standard_normal((20, 8))
    cases = [
        ("Q = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]), K = np.array([[1.0, 0.0], [0.0, 1.0], "
         "[1.0, 1.0]]), K_hat = K + 0.5", np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]),
         np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
         np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]) + 0.5),
        ("Q = np.random.default_rng(4).standard_normal((20, 8)), K = np.random.default_rng(3)"
         ".standard_normal((20, 8)), K_hat = K + 0.3 * np.random.default_rng(5).standard_normal((20, 8))",
         seeded_rng(4).standard_normal((20, 8)), K1, K1 + 0.3 * seeded_rng(5).standard_normal((20, 8))),
        ("Q = sample.queries[2, 1], K = sample.keys[2, 1] (float64), K_hat = TurboQuant 2-bit keys",
         _head("queries", 2, 1), K0, real_hat),
    ]
    for case, Q, K, K_hat in cases:
        expected = _kl(Q, K, K_hat)
        got = as_number(call_learner(causal_kl, Q, K, K_hat, case=case), case, "the KL")
        expect(got, expected, case, what="KL", rtol=1e-6, atol=1e-12,
               detectors=[(v, h) for v, h in _kl_variants(Q, K, K_hat)],
               problem="" if np.isfinite(got) else "your KL is NaN or Inf",
               hint="for each query i: p = softmax of its scores over keys 0 .. i divided by sqrt(d), "
                    "the same for p_hat from K_hat; KL = sum_j p_j (log p_j - log p_hat_j); then the mean "
                    "over the queries. Work with log-softmax so that masked keys never give 0 * log 0.")
    return ("Matches tql.attention_fidelity(..., causal=True).kl on a hand-made case, random keys and a "
            "real head.")


# --------------------------------------------------------------------------- 11.4


def _centred_ref(K, bits, seed):
    K = np.asarray(K, dtype=np.float32)
    c = K.mean(axis=-2, keepdims=True).astype(np.float16).astype(np.float32)
    tq = turboquant.TurboQuantMSE(K.shape[-1], bits, seed=seed)
    enc = tq.encode(K - c)
    n = K.shape[-2]
    return (np.asarray(c + tq.decode(enc), dtype=np.float64), enc.bits_per_coordinate + 16 / n,
            tq, c)


@checker("centred_turboquant")
def check_centred_turboquant(centred_turboquant):
    """Check ``centred_turboquant(K, bits, seed)``: TurboQuant on K minus its float16 channel means."""
    cases = [
        ("K = sample.keys[2, 1].astype(np.float32), bits = 3, seed = 0",
         np.array(_sample().keys[2, 1], dtype=np.float32), 3, 0),
        ("K = sample.keys[0, 0].astype(np.float32), bits = 2, seed = 5",
         np.array(_sample().keys[0, 0], dtype=np.float32), 2, 5),
        ("K = tql.make_kv_vectors(128, 32, seed=1) + 3.0, bits = 4, seed = 1",
         data.make_kv_vectors(128, 32, seed=1) + np.float32(3.0), 4, 1),
    ]
    for case, K, bits, seed in cases:
        ref, bpc, tq, c = _centred_ref(K, bits, seed)
        out = call_learner(centred_turboquant, K, bits, seed, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure("return two things: (K_hat, bits_per_coordinate)", case=case,
                          got=type(out).__name__,
                          hint="end with `return K_hat, bits_per_coordinate`.")
        K_hat = as_array(out[0], case, "K_hat", shape=K.shape).astype(np.float64)
        energy = float(np.sum(K.astype(np.float64) ** 2))
        off = float(np.sum((K_hat - ref) ** 2)) / energy
        if off > 1e-4:
            plain = np.asarray(tq.decode(tq.encode(K)), dtype=np.float64)
            no_back = np.asarray(tq.decode(tq.encode(K - c)), dtype=np.float64)
            hint = ("subtract the channel means (over the tokens, axis -2) before encoding, and add them "
                    "back after decoding.")
            if np.sum((K_hat - no_back) ** 2) / energy < 1e-4:
                hint = ("add the offset back after decoding: attention would not mind, but K_hat must be "
                        "the keys.")
            elif np.sum((K_hat - plain) ** 2) / energy < 1e-4:
                hint = "centre the keys first: encode K minus its mean over the tokens (axis -2)."
            else:
                per_token = K.mean(axis=-1, keepdims=True)
                wrong = per_token + np.asarray(tq.decode(tq.encode(K - per_token)), dtype=np.float64)
                if np.sum((K_hat - wrong) ** 2) / energy < 1e-4:
                    hint = ("the offset is one number per channel, the mean over the tokens (axis -2), "
                            "not per token.")
            raise Failure(f"K_hat is off by {off:.2g} of the keys' energy", case=case, hint=hint)
        got = as_number(out[1], case, "bits_per_coordinate")
        n, d = K.shape[-2:]
        expect(got, bpc, case, what="bits_per_coordinate", rtol=1e-9, atol=1e-9, detectors=[
            (bpc - 16 / n, "count the offset too: d float16 numbers for the whole head, 16 bits over "
                           "n tokens per coordinate."),
            (bpc + 16 / n, "the offset is stored as float16: 16 bits per channel, not 32."),
            (bpc - 16 / n + 16 / d, "the offset is d numbers for all n tokens together, not one per token."),
        ], hint="the codes and norms (the Encoded's bits_per_coordinate) plus the float16 offset spread "
                "over all n x d coordinates.")
    return ("Centres, encodes, decodes and adds the offset back; counts the offset's storage "
            "(real heads and synthetic keys).")


# --------------------------------------------------------------------------- 11.5


def _kivi_pre_ref(keys_pre_rope, bits, base, group_size):
    x = np.asarray(keys_pre_rope, dtype=np.float32)
    q = kv_codecs.uniform_quantize_channels(x, bits, group_size)
    return llm.apply_rope(kv_codecs.uniform_dequantize_channels(q), np.arange(x.shape[-2]), base)


@checker("kivi_before_rope")
def check_kivi_before_rope(kivi_before_rope):
    """Check ``kivi_before_rope(keys_pre_rope, bits, base, group_size)``: KIVI before RoPE, RoPE after."""
    s = _sample()
    cases = [
        ("keys_pre_rope = sample.keys_pre_rope[2, 1].astype(np.float32), bits = 2, base = 100000.0, "
         "group_size = 64", np.array(s.keys_pre_rope[2, 1], dtype=np.float32), 2, 100000.0, 64),
        ("keys_pre_rope = sample.keys_pre_rope[0].astype(np.float32), bits = 3, base = 100000.0, "
         "group_size = 32  (three heads)", np.array(s.keys_pre_rope[0], dtype=np.float32), 3, 100000.0, 32),
        ("keys_pre_rope = np.random.default_rng(0).standard_normal((40, 8)), bits = 4, base = 10.0, "
         "group_size = 16", seeded_rng(0).standard_normal((40, 8)), 4, 10.0, 16),
    ]
    for case, x, bits, base, g in cases:
        expected = _kivi_pre_ref(x, bits, base, g).astype(np.float64)
        got = as_array(call_learner(kivi_before_rope, x, bits, base, g, case=case), case, "the keys",
                       shape=x.shape).astype(np.float64)
        energy = float(np.sum(expected ** 2))
        off = float(np.sum((got - expected) ** 2)) / energy
        if off <= 1e-5:      # a code may round the other way in another precision, nothing more
            continue
        positions = np.arange(x.shape[-2])
        codec = kv_codecs.UniformCodec(bits, axis="channel", group_size=g)
        per_token = kv_codecs.UniformCodec(bits)
        slips = [
            (codec.decode(codec.encode(llm.apply_rope(x, positions, base))),
             "that quantizes after RoPE: quantize the keys before RoPE, then turn the decoded keys."),
            (codec.decode(codec.encode(x)), "turn the decoded keys with RoPE: attention needs the keys "
                                            "after RoPE."),
            (llm.apply_rope(codec.decode(codec.encode(x)), positions, base, layout="half"),
             "RoPE pairs adjacent channels (2i, 2i + 1) here (exercise 11.2)."),
            (llm.apply_rope(per_token.decode(per_token.encode(x)), positions, base),
             "quantize per channel, over groups of group_size tokens, not per token."),
        ]
        hint = next((h for v, h in slips if np.sum((got - v) ** 2) / energy <= 1e-5),
                    "quantize each channel of the keys before RoPE over groups of group_size tokens, "
                    "decode, then turn the decoded keys with RoPE at positions 0 .. n - 1.")
        raise Failure(f"your keys are off by {off:.2g} of their energy", case=case, hint=hint)
    return ("Per-channel codes before RoPE, RoPE on the decoded keys: matches on one head, three heads "
            "and random keys.")
