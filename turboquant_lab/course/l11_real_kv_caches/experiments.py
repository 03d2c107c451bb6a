"""Lesson 11 (real KV caches): the numbers behind its figures and widgets, NumPy only.

The data is the KV cache of a causal LLM, SmolLM2-135M-Instruct
(``tql.load_kv_sample("smollm2")``): 6 of its 30 layers, 3 KV heads of size 64,
256 tokens, keys before and after RoPE, values and the queries of all 9 query
heads. Each ``compute_*`` function returns what one figure, table or app
shows; the tests call them directly, setting the "slider" by argument.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from turboquant_lab.kv_codecs import UniformCodec, stored_nbytes
from turboquant_lab.metrics import channel_rms, max_over_mean
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.softmax_attention import attention_fidelity, softmax
from turboquant_lab.turboquant import TurboQuantMSE

__all__ = ["METHODS", "METHOD_NAMES", "ChannelProfile", "RopePairs", "HeadView", "make_codecs",
           "compute_channel_profile", "compute_rope_pairs", "compute_method_table",
           "at_equal_storage", "compute_head"]

#: the three ways of storing the cache that the lesson compares, in the order of its tables
METHODS = ("uniform", "kivi", "turboquant")

#: how the lesson names them
METHOD_NAMES = {"uniform": "per-token uniform", "kivi": "per-channel (KIVI)",
                "turboquant": "TurboQuant"}

#: KIVI's tokens per group of a channel's float16 lo and scale: 0.5 bit per coordinate,
#: the same side information as the per-token quantizer's at head size 64
KIVI_GROUP = 64


def make_codecs(method: str, bits: int, d: int = 64, seed: int = 0):
    """``(key_codec, value_codec)`` of one method (see :mod:`turboquant_lab.kv_codecs`).

    ``"uniform"``: min-max levels per token vector for keys and values (the
    essay's naive quantizer, ``lo`` and ``scale`` in float16). ``"kivi"``: keys
    per channel over groups of :data:`KIVI_GROUP` tokens, values per token, as
    KIVI does (Liu et al. 2024). ``"turboquant"``: ``TurboQuantMSE(d, bits,
    seed)`` for both (a float16 norm per vector).

    Examples
    --------
    >>> make_codecs("kivi", 3)
    (UniformCodec(3, axis='channel', group_size=64), UniformCodec(3, axis='token'))
    """
    if method == "uniform":
        return UniformCodec(bits), UniformCodec(bits)
    if method == "kivi":
        return UniformCodec(bits, axis="channel", group_size=KIVI_GROUP), UniformCodec(bits)
    if method == "turboquant":
        tq = TurboQuantMSE(d, bits, seed=seed)
        return tq, tq
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


# --------------------------------------------------------------------------- the channel profile


@dataclass
class ChannelProfile:
    """Channel RMS of the sample's keys before and after RoPE and of its values.

    Attributes
    ----------
    layer_ids : tuple of int
        The model's indices of the sample's layers.
    rms : dict of str -> (layers, heads, d) ndarray
        ``"keys before RoPE"``, ``"keys"`` (after RoPE, as cached), ``"values"``:
        ``sqrt(mean_t x[t, c]^2)`` per channel ``c``.
    peak : dict of str -> (layers, heads) ndarray
        Largest channel RMS of each head over its median channel RMS.
    top_channel : (layers, heads) int ndarray
        The loudest channel of each head's keys before RoPE.
    offset_share : (layers, heads) ndarray
        Share of that channel's energy that is its mean over the tokens,
        ``mean_t(k_tc)^2 / mean_t(k_tc^2)`` (1: the same value in every token).
    """

    layer_ids: tuple
    rms: dict
    peak: dict
    top_channel: np.ndarray
    offset_share: np.ndarray


def compute_channel_profile(sample) -> ChannelProfile:
    """Channel RMS, peak ratio and the loudest channel of every head of a SmolLM2 sample.

    Parameters
    ----------
    sample : KVSample
        ``tql.load_kv_sample("smollm2")`` (it needs ``keys_pre_rope``).
    """
    if sample.keys_pre_rope is None:
        raise ValueError('sample must hold the keys before RoPE: load it with '
                         'tql.load_kv_sample("smollm2")')
    arrays = {"keys before RoPE": sample.keys_pre_rope, "keys": sample.keys, "values": sample.values}
    rms = {name: channel_rms(a) for name, a in arrays.items()}
    peak = {name: r.max(axis=-1) / np.median(r, axis=-1) for name, r in rms.items()}
    pre = sample.keys_pre_rope.astype(np.float64)
    top = rms["keys before RoPE"].argmax(axis=-1)
    column = np.take_along_axis(pre, top[:, :, None, None], axis=-1)[..., 0]     # (layers, heads, n)
    share = column.mean(axis=-1) ** 2 / np.mean(column ** 2, axis=-1)
    return ChannelProfile(layer_ids=sample.layer_ids, rms=rms, peak=peak, top_channel=top,
                          offset_share=share)


@dataclass
class RopePairs:
    """What RoPE does to each channel pair ``(2i, 2i + 1)`` of the sample's keys.

    Attributes
    ----------
    channels : (d / 2,) int ndarray
        The first channel ``2i`` of each pair.
    turn : (d / 2,) ndarray
        Radians pair ``i`` turns between the first and the last token:
        ``(n - 1) * base**(-2i / d)``.
    pair_rms_before, pair_rms_after : (layers, heads, d / 2) ndarray
        ``sqrt((rms_2i^2 + rms_2i+1^2) / 2)``, before and after RoPE.
    larger_share_before, larger_share_after : (d / 2,) ndarray
        Share of a pair's energy in its louder channel, mean over layers and heads
        (1: all in one channel, 0.5: evenly split).
    mean_share_before, mean_share_after : (layers,) ndarray
        Share of the keys' energy in the channel means (``sum_c mean_t(k_tc)^2 /
        sum_c mean_t(k_tc^2)``), mean over the heads of each layer.
    """

    channels: np.ndarray
    turn: np.ndarray
    pair_rms_before: np.ndarray
    pair_rms_after: np.ndarray
    larger_share_before: np.ndarray
    larger_share_after: np.ndarray
    mean_share_before: np.ndarray
    mean_share_after: np.ndarray


def compute_rope_pairs(sample) -> RopePairs:
    """Per RoPE pair: how far it turns over the sample, its RMS and how it is split, before and after.

    The sample's RoPE pairs adjacent channels ``(2i, 2i + 1)`` (the GGUF layout,
    ``sample.meta["rope_layout"]``) and turns pair ``i`` by ``p * base**(-2i / d)``
    at position ``p``.
    """
    d, n = sample.head_dim, sample.n_tokens
    base = float(sample.meta.get("rope_base", 100000.0))
    out = {}
    for when, keys in (("before", sample.keys_pre_rope), ("after", sample.keys)):
        k = keys.astype(np.float64)
        e = channel_rms(k) ** 2                                     # (layers, heads, d)
        a, b = e[..., 0::2], e[..., 1::2]
        out[f"pair_rms_{when}"] = np.sqrt((a + b) / 2)
        out[f"larger_share_{when}"] = (np.maximum(a, b) / (a + b)).mean(axis=(0, 1))
        out[f"mean_share_{when}"] = (np.sum(k.mean(axis=2) ** 2, axis=-1) / e.sum(axis=-1)).mean(axis=1)
    i = np.arange(d // 2)
    return RopePairs(channels=2 * i, turn=(n - 1) * base ** (-2.0 * i / d), **out)


# --------------------------------------------------------------------------- the three quantizers


def _rel(x, x_hat) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.sum((x - x_hat) ** 2) / np.sum(x ** 2))


def compute_method_table(sample, bits=(2, 3, 4), methods=METHODS, seed: int = 0, k: int = 8):
    """Each method at each bit width on the whole sample: storage, errors and causal attention.

    The keys (after RoPE) and values of every layer and KV head are stored with
    :func:`make_codecs`; every query head (``sample.queries_all``, head ``j``
    reads KV head ``j // group``) attends over the decoded cache with the
    causal mask (token ``i`` sees tokens ``0 .. i``), and
    :func:`~turboquant_lab.softmax_attention.attention_fidelity` compares it with
    exact attention.

    Returns
    -------
    list of dict
        One row per (bits, method): ``bits``, ``method``, ``bits_per_coordinate``
        (bytes of the stored keys and values, side information included, x 8 /
        coordinates), ``key_rel_mse``, ``value_rel_mse`` (``sum ||x - x_hat||^2
        / sum ||x||^2``), and the means over the query heads of ``kl``,
        ``topk_agreement`` (top-``k``) and ``output_rel_error``. KL and top-k
        depend on the keys only, the output error on keys and values.
    """
    K = sample.keys.astype(np.float32)
    V = sample.values.astype(np.float32)
    Q = sample.queries_all.astype(np.float32)
    n, d = K.shape[-2:]
    group = Q.shape[1] // K.shape[1]
    rows = []
    for b in bits:
        for method in methods:
            kc, vc = make_codecs(method, b, d, seed)
            sk, sv = kc.encode(K), vc.encode(V)
            K_hat, V_hat = kc.decode(sk), vc.decode(sv)
            nbytes = stored_nbytes(kc, sk, n, d) + stored_nbytes(vc, sv, n, d)
            fids = [attention_fidelity(Q[layer, j], K[layer, j // group], V[layer, j // group],
                                       K_hat=K_hat[layer, j // group], V_hat=V_hat[layer, j // group],
                                       k=k, causal=True)
                    for layer in range(Q.shape[0]) for j in range(Q.shape[1])]
            rows.append({
                "bits": int(b), "method": method, "bits_per_coordinate": 8 * nbytes / (K.size + V.size),
                "key_rel_mse": _rel(K, K_hat), "value_rel_mse": _rel(V, V_hat),
                "kl": float(np.mean([f.kl for f in fids])),
                "topk_agreement": float(np.mean([f.topk_agreement for f in fids])),
                "output_rel_error": float(np.mean([f.output_rel_error for f in fids])),
            })
    return rows


def at_equal_storage(rows, method: str, metric: str, bits_per_coordinate: float) -> float:
    """``metric`` of ``method`` at a storage it was not run at, interpolated log-linearly.

    Errors fall by a roughly constant factor per bit, so ``log(metric)`` is
    interpolated linearly in the bits per coordinate between the method's two
    nearest rows (extrapolated from the two end rows outside their range).

    Examples
    --------
    >>> rows = [{"method": "m", "bits_per_coordinate": 2.0, "kl": 0.4},
    ...         {"method": "m", "bits_per_coordinate": 3.0, "kl": 0.1}]
    >>> round(at_equal_storage(rows, "m", "kl", 2.5), 6)
    0.2
    """
    pts = sorted((r["bits_per_coordinate"], r[metric]) for r in rows if r["method"] == method)
    if len(pts) < 2:
        raise ValueError(f"need at least two rows of method {method!r} to interpolate, got {len(pts)}")
    j = int(np.clip(np.searchsorted([p[0] for p in pts], bits_per_coordinate), 1, len(pts) - 1))
    (x0, y0), (x1, y1) = pts[j - 1], pts[j]
    w = (bits_per_coordinate - x0) / (x1 - x0)
    return float(math.exp((1 - w) * math.log(y0) + w * math.log(y1)))


# --------------------------------------------------------------------------- one head, for the app


@dataclass
class HeadView:
    """What lesson 11's explorer shows for one layer, KV head, bit width and token.

    Attributes
    ----------
    layer, layer_id, head, query_head, bits, token : int
        ``layer`` indexes the sample, ``layer_id`` is the model's layer; the
        query is ``sample.queries[layer, head]``, the model's query head ``query_head``.
    tokens : tuple of str
    rms_pre, rms_post, rms_values : (d,) ndarray
        Channel RMS of this head's keys before and after RoPE, and of its values.
    key, key_rotated : (d,) ndarray
        The key of ``token`` (after RoPE) and its randomized-Hadamard rotation.
    max_over_mean : tuple of float
        ``max|x| / mean|x|`` of ``key`` and ``key_rotated``.
    weights : dict of str -> (token + 1,) ndarray
        Attention weights of the query of ``token`` over the keys it sees
        (``0 .. token``): ``"exact"`` and one entry per method.
    fidelity : dict of str -> dict
        Per method, over all queries of this head with the causal mask:
        ``key_rel_mse``, ``kl``, ``topk_agreement``, ``bits_per_coordinate`` (keys).
    """

    layer: int
    layer_id: int
    head: int
    query_head: int
    bits: int
    token: int
    tokens: tuple
    rms_pre: np.ndarray
    rms_post: np.ndarray
    rms_values: np.ndarray
    key: np.ndarray
    key_rotated: np.ndarray
    max_over_mean: tuple
    weights: dict
    fidelity: dict


def compute_head(sample, layer: int = 2, head: int = 0, bits: int = 3, token: int = 40,
                 seed: int = 0) -> HeadView:
    """One head of the SmolLM2 sample: its channel profile, one key, one query's causal attention.

    Parameters
    ----------
    sample : KVSample
        ``tql.load_kv_sample("smollm2")``.
    layer : int
        Index into the sample's layers (``sample.layer_ids[layer]`` is the model's).
    head : int
        KV head.
    bits : int
        Bits per coordinate of the three key quantizers.
    token : int
        Position whose key is shown and whose query attends over keys ``0 .. token``.
    seed : int
        Seed of the rotation and of TurboQuant.
    """
    for name, value, top in (("layer", layer, sample.layers), ("head", head, sample.heads),
                             ("token", token, sample.n_tokens)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < top:
            raise ValueError(f"{name} must be an integer in [0, {top}), got {value!r}")
    if sample.keys_pre_rope is None:
        raise ValueError('sample must be the SmolLM2 sample: tql.load_kv_sample("smollm2")')
    K = sample.keys[layer, head].astype(np.float32)
    V = sample.values[layer, head].astype(np.float32)
    Q = sample.queries[layer, head].astype(np.float32)
    n, d = K.shape
    tau = 1.0 / math.sqrt(d)
    q = Q[token].astype(np.float64)
    weights = {"exact": softmax(tau * (K[: token + 1].astype(np.float64) @ q))}
    fidelity = {}
    for method in METHODS:
        kc, _ = make_codecs(method, bits, d, seed)
        stored = kc.encode(K)
        K_hat = np.asarray(kc.decode(stored), dtype=np.float64)
        weights[method] = softmax(tau * (K_hat[: token + 1] @ q))
        f = attention_fidelity(Q, K, V, K_hat=K_hat, causal=True)
        fidelity[method] = {"key_rel_mse": _rel(K, K_hat), "kl": f.kl, "topk_agreement": f.topk_agreement,
                            "bits_per_coordinate": 8 * stored_nbytes(kc, stored, n, d) / K.size}
    key = K[token].astype(np.float64)
    rotated = RandomizedHadamard(d, seed=seed).forward(key)
    group = sample.queries_all.shape[1] // sample.heads
    return HeadView(
        layer=layer, layer_id=sample.layer_ids[layer], head=head, query_head=group * head, bits=bits,
        token=token,
        tokens=sample.tokens,
        rms_pre=channel_rms(sample.keys_pre_rope[layer, head]), rms_post=channel_rms(K),
        rms_values=channel_rms(V), key=key, key_rotated=rotated,
        max_over_mean=(max_over_mean(key), max_over_mean(rotated)),
        weights=weights, fidelity=fidelity,
    )
