"""Lesson 11 (real KV caches): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from turboquant_lab.comparison import compare_kv_quantizers
from turboquant_lab.metrics import channel_rms
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.softmax_attention import softmax
from turboquant_lab.turboquant import TurboQuantMSE
from turboquant_lab.uniform import uniform_dequantize, uniform_quantize

__all__ = ["RealHead", "compute_real_head"]


@dataclass
class RealHead:
    """What lesson 11's app shows for one layer and head of the real sample.

    Attributes
    ----------
    layer, head, bits, query : int
    tokens : tuple of str
    rms, rms_rotated : (d,) ndarray
        Channel RMS of the keys before and after the randomized Hadamard.
    mean : (d,) ndarray
        Channel mean of the keys.
    weights, weights_tq, weights_uniform : (n,) ndarray
        Attention weights of query token ``query``: exact, TurboQuant keys, uniform keys.
    rows : list of dict
        :func:`compare_kv_quantizers` for this head (all queries), turboquant and uniform.
    """
    layer: int
    head: int
    bits: int
    query: int
    tokens: tuple
    rms: np.ndarray
    rms_rotated: np.ndarray
    mean: np.ndarray
    weights: np.ndarray
    weights_tq: np.ndarray
    weights_uniform: np.ndarray
    rows: list


def compute_real_head(sample, layer=0, head=0, bits=3, query=10, seed=0) -> RealHead:
    """One head of the real sample: channel profile, one query's attention, exact vs quantized.

    Parameters
    ----------
    sample : KVSample
        From :func:`~turboquant_lab.data.load_kv_sample`.
    layer, head : int
        Which head.
    bits : int
        Bits per coordinate of both quantizers (TurboQuantMSE and uniform).
    query : int
        Token whose query's attention weights are shown.
    seed : int
        Rotation seed.
    """
    if not (0 <= layer < sample.layers and 0 <= head < sample.heads and 0 <= query < sample.n_tokens):
        raise ValueError(f"layer must be in [0, {sample.layers}), head in [0, {sample.heads}), "
                         f"query in [0, {sample.n_tokens}); got {layer}, {head}, {query}")
    Q = sample.queries[layer, head].astype(np.float32)
    K = sample.keys[layer, head].astype(np.float32)
    V = sample.values[layer, head].astype(np.float32)
    d = K.shape[-1]
    tq = TurboQuantMSE(d, bits, seed=seed)
    K_tq = tq.decode(tq.encode(K))
    K_u = uniform_dequantize(uniform_quantize(K, bits))
    tau = 1.0 / np.sqrt(d)
    q = Q[query].astype(np.float64)
    return RealHead(
        layer=layer, head=head, bits=bits, query=query, tokens=sample.tokens,
        rms=channel_rms(K),
        rms_rotated=channel_rms(RandomizedHadamard(d, seed=seed).forward(K.astype(np.float64))), mean=K.mean(axis=0),
        weights=softmax(tau * (K @ q)), weights_tq=softmax(tau * (K_tq @ q)),
        weights_uniform=softmax(tau * (K_u @ q)),
        rows=compare_kv_quantizers(Q, K, V, bits=(bits,), methods=("turboquant", "uniform"),
                                   seed=seed),
    )
