"""Lesson 13 (a quantized cache in a real model): the numbers behind its figures and widget, NumPy only.

The protocol. The model reads the first ``n_prompt`` tokens of a text exactly
(the *prefill*), and its keys (after RoPE) and values go into the KV cache,
stored by a codec. It then reads the remaining ``n_eval`` tokens one after the
other, each attending to the stored cache (teacher forcing: the true next
token is fed, as perplexity needs), and its own key and value join the cache,
stored the same way. This is how a quantized cache is used: written once,
read by every later token. Each measured position's next-token distribution
is compared with the exact model's:

* **perplexity**: ``exp(mean NLL)`` of the true next tokens (:func:`turboquant_lab.llm.token_nll`);
* **top-1 agreement**: the fraction of positions whose most likely next token is unchanged;
* **KL divergence** ``KL(p_exact || p_quantized)`` in nats, per position;
* **cache bytes**: every layer's and KV head's keys and values, codes and side
  information (float16 norms, ranges, scales, channel masks), for all tokens.

One exact pass over the whole text gives the exact cache of the prompt and the
reference distributions (:func:`reference_pass`); each codec then costs one
pass over the ``n_eval`` tokens only (:func:`evaluate_cache`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from turboquant_lab.data import PRIDE_AND_PREJUDICE
from turboquant_lab.kv_codecs import UniformCodec, check_codec, stored_nbytes
from turboquant_lab.llm import KVCache, KVQuantization, load_smollm2, token_nll
from turboquant_lab.polar import PolarQuant
from turboquant_lab.qjl import TurboQuantProd
from turboquant_lab.turboquant import Encoded, TurboQuantMSE

__all__ = ["METHODS", "LABELS", "SETTINGS", "POLAR_LEVEL_BITS", "N_PROMPT", "N_EVAL", "GENERATION_PROMPT", "OutlierSplitCodec",
           "SplitEncoded", "QuantizedPrefix", "PrefixStored", "make_kv", "Reference", "reference_pass", "CacheResult", "evaluate_cache",
           "next_token_kl", "CacheTable", "compute_table", "course_reference", "course_table",
           "continuation", "course_continuation", "ScoreNoise", "score_noise", "SplitAnalysis",
           "split_analysis", "format_table"]

#: the methods, in the order of the figures (see :func:`make_kv`)
METHODS = ("uniform", "kivi", "mse", "prod", "polar", "split")

#: the name of each method on the page
LABELS = {"uniform": "uniform per token", "kivi": "KIVI (keys per channel)", "mse": "TurboQuantMSE",
          "prod": "TurboQuantProd", "polar": "PolarQuant", "split": "TurboQuantMSE + outlier split"}

#: PolarQuant's angle bits per level at head size 64 (6 levels, one float16 radius per vector): for
#: b = 2, 3, 4 the allocation of least predicted error (``polar_expected_mse``) that stores no more
#: than TurboQuantMSE at b bits (b + 0.25 bits per coordinate), found by lesson 12's search
POLAR_LEVEL_BITS = {(64, 2): (2, 2, 1, 2, 4, 6), (64, 3): (4, 2, 1, 2, 4, 6), (64, 4): (5, 3, 3, 2, 4, 6)}

#: (method, bits) measured by the lesson: every method at 2, 3 and 4 bits, the split at 2.5 and 3.5
SETTINGS = tuple((m, b) for m in METHODS if m != "split" for b in (2, 3, 4)) + (("split", 2.5), ("split", 3.5))

#: the course's text (464 SmolLM2 tokens): the first 336 are the prompt, the last 128 are measured
N_PROMPT = 336
N_EVAL = 128

#: the prompt of the greedy continuations: the text up to "Mr. Bennet replied" (110 tokens)
GENERATION_PROMPT = PRIDE_AND_PREJUDICE[:PRIDE_AND_PREJUDICE.index("Mr. Bennet replied")]


# --------------------------------------------------------------------------- the outlier split


@dataclass
class SplitEncoded:
    """What :class:`OutlierSplitCodec` stores: the outlier mask and two TurboQuantMSE encodings."""

    mask: np.ndarray        # (d,) bool: the outlier channels
    outliers: Encoded       # the outlier channels, at bits + 1
    rest: Encoded           # the other channels, at bits

    @property
    def nbytes(self) -> int:
        """Both encodings (packed codes and float16 norms) plus the mask, one bit per channel."""
        return int(self.outliers.nbytes + self.rest.nbytes + math.ceil(self.mask.size / 8))


class OutlierSplitCodec:
    """TurboQuant's outlier split: the loudest channels at one more bit, each group rotated on its own.

    Parameters
    ----------
    d : int
        Head size.
    bits : int
        Bits of the ordinary channels; the ``n_outliers`` outlier channels get ``bits + 1``.
    n_outliers : int, optional
        Default ``d // 2``: ``bits + 0.5`` bits per coordinate of codes (2.5 and
        3.5 bits, the paper's settings; Zandieh et al. 2025, section 4.3).
    seed : int

    Notes
    -----
    For a block ``x`` ``(n, d)`` (one layer's and one KV head's keys or values),
    the outlier channels are the ``n_outliers`` of largest root mean square
    ``sqrt(mean_t x[t, j]**2)``, stored as a ``d``-bit mask. Each token's
    outlier part ``(n_outliers,)`` and ordinary part ``(d - n_outliers,)`` are
    two vectors, each encoded by its own :class:`~turboquant_lab.turboquant.TurboQuantMSE`
    (its own norm, float16). Storage per token:
    ``n_outliers (bits + 1) + (d - n_outliers) bits`` code bits plus 32 norm bits.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((100, 64)).astype(np.float32)
    >>> x[:, 5] *= 20
    >>> codec = OutlierSplitCodec(64, 2)
    >>> stored = codec.encode(x)
    >>> bool(stored.mask[5]), int(stored.mask.sum()), stored.nbytes * 8 / x.size   # 2.5 + norms + mask
    (True, 32, 3.01)
    """

    def __init__(self, d: int, bits: int, n_outliers: int | None = None, seed=0):
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 4:
            raise ValueError(f"d must be an integer >= 4 (the head size), got {d!r}")
        n_outliers = d // 2 if n_outliers is None else n_outliers
        if isinstance(n_outliers, bool) or not isinstance(n_outliers, (int, np.integer)) \
                or not 2 <= n_outliers <= d - 2:
            raise ValueError(f"n_outliers must be an integer in 2..{d - 2}, got {n_outliers!r}")
        self.d, self.bits, self.n_outliers = int(d), int(bits), int(n_outliers)
        self.high = TurboQuantMSE(self.n_outliers, self.bits + 1, seed=seed)
        self.low = TurboQuantMSE(self.d - self.n_outliers, self.bits, seed=seed)

    def __repr__(self) -> str:
        return f"OutlierSplitCodec({self.d}, {self.bits}, n_outliers={self.n_outliers})"

    @property
    def nominal_bits(self) -> float:
        """Code bits per coordinate: ``bits + n_outliers / d``."""
        return self.bits + self.n_outliers / self.d

    def encode(self, x) -> SplitEncoded:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"x must be one block of shape (n_tokens, {self.d}), got {x.shape}")
        rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=0))
        mask = np.zeros(self.d, dtype=bool)
        mask[np.argsort(-rms, kind="stable")[: self.n_outliers]] = True
        return SplitEncoded(mask, self.high.encode(np.ascontiguousarray(x[:, mask])),
                            self.low.encode(np.ascontiguousarray(x[:, ~mask])))

    def decode(self, stored: SplitEncoded):
        if not isinstance(stored, SplitEncoded):
            raise TypeError(f"stored must be what OutlierSplitCodec.encode returned, got {type(stored).__name__}")
        out = np.empty(stored.outliers.shape + (self.d,), dtype=np.float32)
        out[:, stored.mask] = self.high.decode(stored.outliers)
        out[:, ~stored.mask] = self.low.decode(stored.rest)
        return out


@dataclass
class PrefixStored:
    """What :class:`QuantizedPrefix` stores: the codec's form of the first tokens, the others exact."""

    prefix: object          # the codec's stored form of tokens 0 .. n_prefix - 1
    prefix_nbytes: int
    window: np.ndarray      # (n_tokens - n_prefix, d) float32: the recent tokens, exact

    @property
    def nbytes(self) -> int:
        """The prefix's bytes plus the window in float16 (2 bytes per coordinate)."""
        return int(self.prefix_nbytes + 2 * self.window.size)


class QuantizedPrefix:
    """A codec for the prompt only: the first ``n_prefix`` tokens of a block stored by ``codec``, later ones exact.

    The prompt's keys and values are written to the cache once, quantized; the
    tokens that come after it stay in a full-precision window (KIVI keeps its
    most recent tokens in full precision the same way; Liu et al. 2024, section 4.3).
    The window is exact float32 here and counted as float16.

    Parameters
    ----------
    codec : KVCodec
        Any codec (``encode``/``decode``; ``inner_product`` is passed on).
    n_prefix : int

    Notes
    -----
    Keeping the new tokens exact also keeps the measurement repeatable: a
    quantized token feeds the next layers, whose keys are quantized again, so
    two CPUs whose float32 sums differ in the last bit flip a few codes, and
    the flips grow from layer to layer and token to token. With the prompt
    alone quantized, from the exact pass's keys, a flipped code stays one
    code.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((10, 64)).astype(np.float32)
    >>> codec = QuantizedPrefix(TurboQuantMSE(64, 3), n_prefix=6)
    >>> x_hat = codec.decode(codec.encode(x))
    >>> bool(np.array_equal(x_hat[6:], x[6:])), bool(np.array_equal(x_hat[:6], x[:6]))
    (True, False)
    """

    def __init__(self, codec, n_prefix: int):
        if isinstance(n_prefix, bool) or not isinstance(n_prefix, (int, np.integer)) or n_prefix < 1:
            raise ValueError(f"n_prefix must be a positive number of tokens, got {n_prefix!r}")
        self.codec = check_codec(codec, "codec")
        self.n_prefix = int(n_prefix)
        if callable(getattr(codec, "inner_product", None)):
            self.inner_product = self._inner_product

    def __repr__(self) -> str:
        return f"QuantizedPrefix({self.codec!r}, n_prefix={self.n_prefix})"

    def encode(self, x) -> PrefixStored:
        x = np.asarray(x, dtype=np.float32)
        head = np.ascontiguousarray(x[: self.n_prefix])
        stored = self.codec.encode(head)
        return PrefixStored(stored, stored_nbytes(self.codec, stored, *head.shape), x[self.n_prefix:].copy())

    def decode(self, stored: PrefixStored):
        head = np.asarray(self.codec.decode(stored.prefix), dtype=np.float32)
        return np.concatenate([head, stored.window], axis=0)

    def _inner_product(self, stored: PrefixStored, q):
        q = np.asarray(q, dtype=np.float32)
        head = np.asarray(self.codec.inner_product(stored.prefix, q), dtype=np.float32)
        return np.concatenate([head, q @ stored.window.T], axis=-1)


def make_kv(method: str, bits, head_dim: int = 64, seed=0, n_prefix: int | None = None) -> KVQuantization:
    """The cache codecs of ``method`` at ``bits``: what :meth:`~turboquant_lab.llm.Llama.forward` takes as ``kv``.

    ``"uniform"``: min-max per token vector for keys and values (float16 ``lo``
    and ``scale``, 32 bits per vector). ``"kivi"``: keys per channel over groups
    of 64 tokens, values per token, as KIVI stores them (Liu et al. 2024).
    ``"mse"``: :class:`~turboquant_lab.turboquant.TurboQuantMSE` for both.
    ``"polar"``: :class:`~turboquant_lab.polar.PolarQuant` for both, at the
    level bits of :data:`POLAR_LEVEL_BITS` (TurboQuantMSE's storage at ``bits``).
    ``"prod"``: :class:`~turboquant_lab.qjl.TurboQuantProd` for the keys (the
    scores are its unbiased estimates), TurboQuantMSE for the values (they are
    averaged, never multiplied by a query). ``"split"``: :class:`OutlierSplitCodec`
    for both, ``bits`` = 2.5 or 3.5 (``int(bits)`` bits, half the channels one more).
    With ``n_prefix``, each codec is wrapped in :class:`QuantizedPrefix`: only
    the first ``n_prefix`` tokens (the prompt) are quantized.

    Examples
    --------
    >>> make_kv("kivi", 3).keys
    UniformCodec(3, axis='channel', group_size=64)
    >>> kv = make_kv("mse", 2, n_prefix=100)
    >>> type(kv.values).__name__, kv.values.n_prefix, kv.values.codec.bits
    ('QuantizedPrefix', 100, 2)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "split":
        if bits != int(bits) + 0.5 or not 1.5 <= bits <= 7.5:
            raise ValueError(f"the split takes bits = b + 0.5 (2.5, 3.5, ...), got {bits!r}")
        keys = values = OutlierSplitCodec(head_dim, int(bits), seed=seed)
    elif bits != int(bits) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 1 to 8 for {method!r}, got {bits!r}")
    elif method == "uniform":
        keys = values = UniformCodec(int(bits))
    elif method == "kivi":
        keys, values = UniformCodec(int(bits), axis="channel", group_size=64), UniformCodec(int(bits))
    elif method == "polar":
        if (head_dim, int(bits)) not in POLAR_LEVEL_BITS:
            raise ValueError(f"PolarQuant's level bits are set for {sorted(POLAR_LEVEL_BITS)} (head_dim, bits), "
                             f"got ({head_dim}, {bits}): add the allocation to POLAR_LEVEL_BITS")
        keys = values = PolarQuant(head_dim, POLAR_LEVEL_BITS[head_dim, int(bits)], seed=seed)
    else:
        values = TurboQuantMSE(head_dim, int(bits), seed=seed)
        keys = values if method == "mse" else TurboQuantProd(head_dim, int(bits), seed=seed)
    if n_prefix is not None:
        keys, values = QuantizedPrefix(keys, n_prefix), QuantizedPrefix(values, n_prefix)
    return KVQuantization(keys=keys, values=values, key_scores="inner_product" if method == "prod" else "decode")


# --------------------------------------------------------------------------- the measurement


@dataclass
class Reference:
    """The exact pass over a text: what every quantized cache is compared with.

    Attributes
    ----------
    ids : (N,) int64 ndarray
    n_prompt : int
    logits : (N - n_prompt, vocab) float32 ndarray
        The exact next-token scores at the measured positions.
    keys, values : list of (n_kv_heads, N, head_dim) float32 ndarrays
        The exact cache of every layer (keys after RoPE).
    queries : (n_layers, n_heads, N - n_prompt, head_dim) float32 ndarray
        The measured tokens' queries (after RoPE), for :func:`score_noise`.
    tokens : tuple of str or None
        The measured tokens' text (``None`` for a model without a tokenizer).
    perplexity : float
        Of the measured tokens, exact model: ``exp`` of the mean of
        ``-log p(token i + 1)`` over the measured positions but the last.
    log_probs, probs : (N - n_prompt, vocab) float64 ndarrays
        ``log softmax`` of ``logits`` and its ``exp`` (kept for every comparison).
    """

    ids: np.ndarray
    n_prompt: int
    logits: np.ndarray
    keys: list
    values: list
    queries: np.ndarray
    tokens: tuple | None
    perplexity: float
    log_probs: np.ndarray = field(repr=False, default=None)
    probs: np.ndarray = field(repr=False, default=None)

    @property
    def eval_ids(self) -> np.ndarray:
        return self.ids[self.n_prompt:]

    def prompt_cache(self) -> KVCache:
        """A fresh cache holding the prompt's exact keys and values (the measured pass appends to it)."""
        return KVCache([k[:, : self.n_prompt] for k in self.keys], [v[:, : self.n_prompt] for v in self.values])


def reference_pass(model, ids, n_prompt: int) -> Reference:
    """Run the exact model once over ``ids``: the reference logits, the exact cache and the queries.

    Parameters
    ----------
    model : turboquant_lab.llm.Llama
    ids : (N,) int array
    n_prompt : int
        Tokens of the prompt, ``1 <= n_prompt <= N - 2``.

    Examples
    --------
    >>> from turboquant_lab.llm import Llama, LlamaConfig
    >>> tiny = Llama.random(LlamaConfig(n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, head_dim=16,
    ...                                 d_ff=64, vocab_size=50), seed=0)
    >>> ref = reference_pass(tiny, np.arange(20) % 50, n_prompt=12)
    >>> ref.logits.shape, ref.keys[0].shape, ref.queries.shape
    ((8, 50), (2, 20, 16), (2, 4, 8, 16))
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if isinstance(n_prompt, bool) or not isinstance(n_prompt, (int, np.integer)) \
            or not 1 <= n_prompt <= ids.size - 2:
        raise ValueError(f"n_prompt must be an integer in 1..{ids.size - 2} (ids holds {ids.size} tokens), "
                         f"got {n_prompt!r}")
    cache = KVCache()
    out = model.forward(ids, cache=cache, capture=True)
    logits = np.ascontiguousarray(out.logits[n_prompt:])
    tok = model.tokenizer
    tokens = None if tok is None else tuple(tok.decode([int(i)]) for i in ids[n_prompt:])
    log_probs = _log_softmax(logits)
    return Reference(ids=ids, n_prompt=int(n_prompt), logits=logits, keys=cache.keys, values=cache.values,
                     queries=np.ascontiguousarray(out.captured.queries[:, :, n_prompt:]), tokens=tokens,
                     perplexity=float(np.exp(token_nll(logits, ids[n_prompt:]).mean())),
                     log_probs=log_probs, probs=np.exp(log_probs))


def _log_softmax(z):
    """Row-wise ``log softmax`` in float64: ``z - max - log(sum(exp(z - max)))``."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def next_token_kl(reference, logits) -> np.ndarray:
    """``KL(p_ref || p)`` in nats at each position, ``p = softmax(logits)``: ``(n, vocab)`` -> ``(n,)``.

    Computed as ``sum_v p_ref(v) (log p_ref(v) - log p(v))`` with log-softmax in
    float64 (the mean is :func:`turboquant_lab.llm.compare_logits`'s ``kl_mean``).

    Examples
    --------
    >>> np.round(next_token_kl(np.log([[0.5, 0.5]]), np.log([[0.9, 0.1]])), 4)
    array([0.5108])
    """
    la, lb = _log_softmax(reference), _log_softmax(logits)
    return np.sum(np.exp(la) * (la - lb), axis=-1)


@dataclass
class CacheResult:
    """One codec's cache measured against the exact model (see :func:`evaluate_cache`).

    Attributes
    ----------
    method : str
    bits : float
        The nominal bits (2, 2.5, 3, ...).
    bits_per_coordinate : float
        ``8 * cache_nbytes / (coordinates in the cache)``: codes and side information.
    cache_nbytes, float16_nbytes : int
        The prompt's cache (all layers, KV heads, keys and values of the
        ``n_prompt`` tokens), codes and side information, and the same in float16.
    perplexity_ref, perplexity : float
    top1_agreement : float
    kl : (n_eval,) ndarray
        ``KL(p_exact || p_quantized)`` at each measured position.
    same_top1 : (n_eval,) bool ndarray
        Where the most likely next token is unchanged.
    """

    method: str
    bits: float
    bits_per_coordinate: float
    cache_nbytes: int
    float16_nbytes: int
    perplexity_ref: float
    perplexity: float
    top1_agreement: float
    kl: np.ndarray = field(repr=False)
    same_top1: np.ndarray = field(repr=False)

    @property
    def label(self) -> str:
        return f"{LABELS.get(self.method, self.method)}, {self.bits:g} bits"

    @property
    def delta_perplexity(self) -> float:
        return self.perplexity - self.perplexity_ref

    @property
    def kl_mean(self) -> float:
        return float(self.kl.mean())

    @property
    def compression(self) -> float:
        """How many times smaller than the float16 cache."""
        return self.float16_nbytes / self.cache_nbytes


def evaluate_cache(model, ref: Reference, method: str, bits, seed=0) -> CacheResult:
    """Store the prompt's cache with ``make_kv(method, bits)``, read the measured tokens through it, compare.

    Parameters
    ----------
    model : turboquant_lab.llm.Llama
    ref : Reference
        From :func:`reference_pass` on the same model.
    method, bits : str, float
        As for :func:`make_kv`.
    seed : int
        The rotations' seed.

    Returns
    -------
    CacheResult

    Notes
    -----
    One call of ``model.forward(ref.eval_ids, kv=kv, cache=ref.prompt_cache())``
    with ``kv = make_kv(method, bits, n_prefix=ref.n_prompt)``: at every layer the
    prompt's exact keys and values are stored by the codecs, the measured tokens'
    own stay exact (:class:`QuantizedPrefix`), and each measured token's
    attention reads them back with the causal mask. The bytes are the prompt's
    cache: the forward pass's total minus the exact window counted as float16.
    """
    c = model.config
    kv = make_kv(method, bits, c.head_dim, seed, n_prefix=ref.n_prompt)
    out = model.forward(ref.eval_ids, kv=kv, cache=ref.prompt_cache())
    # what llm.compare_logits computes, with the reference's log-probabilities computed once for all settings
    lq = _log_softmax(out.logits)
    kl = np.sum(ref.probs * (ref.log_probs - lq), axis=-1)
    ids = ref.eval_ids
    nll = -lq[np.arange(ids.size - 1), ids[1:]]
    n_eval = ids.size
    window = 2 * 2 * c.n_layers * c.n_kv_heads * n_eval * c.head_dim          # bytes, float16
    prompt_nbytes = int(out.cache_nbytes) - window
    prompt_f16 = int(out.float16_nbytes) - window
    same = ref.logits.argmax(axis=1) == out.logits.argmax(axis=1)
    return CacheResult(method=method, bits=float(bits), bits_per_coordinate=16 * prompt_nbytes / prompt_f16,
                       cache_nbytes=prompt_nbytes, float16_nbytes=prompt_f16,
                       perplexity_ref=ref.perplexity, perplexity=float(np.exp(nll.mean())),
                       top1_agreement=float(np.mean(same)), kl=kl, same_top1=same)


@dataclass
class CacheTable:
    """Every setting measured on one text (see :func:`compute_table`).

    Attributes
    ----------
    results : list of CacheResult
        In the order of the settings.
    reference : Reference
    """

    results: list
    reference: Reference

    def get(self, method: str, bits) -> CacheResult:
        for r in self.results:
            if r.method == method and r.bits == bits:
                return r
        raise KeyError(f"({method!r}, {bits!r}) was not measured; measured: "
                       f"{[(r.method, r.bits) for r in self.results]}")

    def bits_of(self, method: str) -> list:
        """The bits measured for ``method``, ascending."""
        return sorted(r.bits for r in self.results if r.method == method)

    @property
    def methods(self) -> list:
        return list(dict.fromkeys(r.method for r in self.results))


def compute_table(model, ids, n_prompt: int, settings=SETTINGS, seed=0) -> CacheTable:
    """Measure every ``(method, bits)`` of ``settings`` (:func:`make_kv`) on ``ids`` after ``n_prompt`` tokens."""
    ref = reference_pass(model, ids, n_prompt)
    return CacheTable([evaluate_cache(model, ref, m, b, seed) for m, b in settings], ref)


@functools.lru_cache(maxsize=1)
def course_reference() -> Reference:
    """The exact pass of SmolLM2 over the course's text (loads the model once)."""
    model = load_smollm2()
    ids = model.tokenizer.encode(PRIDE_AND_PREJUDICE)[: N_PROMPT + N_EVAL]
    return reference_pass(model, ids, N_PROMPT)


@functools.lru_cache(maxsize=1)
def course_table() -> CacheTable:
    """Lesson 13's measurements: :data:`SETTINGS` on SmolLM2 and the course's text, computed once."""
    model, ref = load_smollm2(), course_reference()
    return CacheTable([evaluate_cache(model, ref, m, b) for m, b in SETTINGS], ref)


def _sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, without an exponent."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def _percent(x: float) -> str:
    """A signed percentage: one decimal below 10 %, none above."""
    return f"{x:+.1f}%" if abs(x) < 10 else f"{x:+.0f}%"


def format_table(table: CacheTable) -> str:
    """The table of the lesson: method x bits against bytes, perplexity change, top-1 agreement and KL.

    The perplexity and the mean KL are printed to three significant digits, the
    top-1 agreement in whole percent. The last digit can change from one CPU
    to another (a last-bit difference in the exact pass flips a few codes; with
    ``OPENBLAS_CORETYPE=Haswell`` one KL moves from 0.0265 to 0.0265 + 3e-5),
    which is why the lesson draws this table (:func:`~.figures.draw_table`)
    instead of printing it. The measurement's own noise (128 positions) is far
    larger than these digits.
    """
    r0 = table.results[0]
    lines = [f"exact cache: perplexity {r0.perplexity_ref:.1f} on the {len(r0.kl)} measured tokens; "
             f"the prompt's cache in float16: {r0.float16_nbytes:,} bytes",
             f"{'method':<30}{'bits':>5}{'bits/coord':>11}{'bytes':>11}{'x smaller':>10}"
             f"{'perplexity':>11}{'change':>8}{'top-1 same':>11}{'mean KL':>9}"]
    for r in table.results:
        lines.append(f"{LABELS.get(r.method, r.method):<30}{r.bits:>5g}{r.bits_per_coordinate:>11.2f}"
                     f"{r.cache_nbytes:>11,}{r.compression:>10.1f}{_sig(r.perplexity):>11}"
                     f"{_percent(100 * r.delta_perplexity / r.perplexity_ref):>8}"
                     f"{r.top1_agreement:>11.0%}{_sig(r.kl_mean):>9}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- greedy continuations


def continuation(model, prompt_ids, method: str | None = None, bits=2, n_new: int = 24, seed=0) -> np.ndarray:
    """Greedy continuation of ``prompt_ids``, the prompt's cache stored by ``make_kv(method, bits)``.

    ``method=None``: the exact cache. The generated tokens' keys and values stay
    exact (:class:`QuantizedPrefix`), as in :func:`evaluate_cache`. Returns the
    new token ids, ``(n_new,)``.
    """
    ids = np.asarray(prompt_ids, dtype=np.int64)
    kv = None if method is None else make_kv(method, bits, model.config.head_dim, seed, n_prefix=ids.size)
    return model.generate(ids, n_new, kv=kv)


@functools.lru_cache(maxsize=32)
def course_continuation(method: str | None = None, bits: float = 2, n_new: int = 24) -> str:
    """SmolLM2's continuation of :data:`GENERATION_PROMPT` as text: exact (``method=None``) or quantized."""
    model = load_smollm2()
    tok = model.tokenizer
    return tok.decode(continuation(model, tok.encode(GENERATION_PROMPT), method, bits, n_new))


# --------------------------------------------------------------------------- why: scores and the split


@dataclass
class ScoreNoise:
    """How TurboQuantMSE and TurboQuantProd keys move the attention scores and weights, per layer.

    Attributes
    ----------
    bits : int
    layers : (L,) int ndarray
    score_error : dict of str to (L, 2) ndarray
        ``"mse"``, ``"prod"``: per layer, mean and standard deviation of
        ``(s_hat - s) / std(s)`` over every visible (query, key) pair, ``s`` the
        exact score ``q . k / sqrt(d)``.
    weight_error : dict of str to (L,) ndarray
        Per layer, the mean total-variation distance ``0.5 sum |w_hat - w|``
        between the attention rows of quantized and exact keys (values exact).
    sample : dict of str to ndarray
        Standardized score errors of one layer (``sample_layer``), for a histogram.
    sample_layer : int
    """

    bits: int
    layers: np.ndarray
    score_error: dict
    weight_error: dict
    sample: dict
    sample_layer: int


def _causal_softmax(s, visible):
    s = np.where(visible, s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    w = np.exp(s)
    return w / w.sum(axis=-1, keepdims=True)


def score_noise(ref: Reference, bits: int = 3, seed=0, sample_layer: int | None = None) -> ScoreNoise:
    """Score errors and attention-weight errors of MSE and Prod keys on the reference's queries and keys.

    For each layer and KV head, the keys of all ``N`` tokens are encoded once;
    the measured tokens' queries read them: exact scores ``q k^T / sqrt(d)``,
    TurboQuantMSE's ``q k_hat^T / sqrt(d)`` and TurboQuantProd's
    ``inner_product(stored, q) / sqrt(d)``, each token seeing itself and the
    tokens before it.
    """
    n_layers, n_heads, n, d = ref.queries.shape
    n_kv = ref.keys[0].shape[0]
    group = n_heads // n_kv
    N = ref.keys[0].shape[1]
    visible = np.arange(N)[None, :] <= (ref.n_prompt + np.arange(n))[:, None]
    mse, prod = TurboQuantMSE(d, bits, seed=seed), TurboQuantProd(d, bits, seed=seed)
    sample_layer = n_layers // 2 if sample_layer is None else int(sample_layer)
    err = {"mse": np.zeros((n_layers, 2)), "prod": np.zeros((n_layers, 2))}
    tv = {"mse": np.zeros(n_layers), "prod": np.zeros(n_layers)}
    sample = {"mse": [], "prod": []}
    for layer in range(n_layers):
        diffs = {"mse": [], "prod": []}
        tvs = {"mse": [], "prod": []}
        for j in range(n_kv):
            k = ref.keys[layer][j]
            q = ref.queries[layer, j * group:(j + 1) * group].reshape(group * n, d)
            exact = (q @ k.T) / math.sqrt(d)
            scale = float(exact.reshape(group, n, N)[:, visible].std())
            est = {"mse": (q @ mse.decode(mse.encode(k)).T) / math.sqrt(d),
                   "prod": np.asarray(prod.inner_product(prod.encode(k), q)) / math.sqrt(d)}
            w = _causal_softmax(exact.reshape(group, n, N), visible)
            for name, s in est.items():
                s = s.reshape(group, n, N)
                diffs[name].append((s - exact.reshape(group, n, N))[:, visible] / scale)
                tvs[name].append(0.5 * np.abs(_causal_softmax(s, visible) - w).sum(axis=-1).ravel())
        for name in err:
            e = np.concatenate([x.ravel() for x in diffs[name]])
            err[name][layer] = e.mean(), e.std()
            tv[name][layer] = np.concatenate(tvs[name]).mean()
            if layer == sample_layer:
                sample[name] = e
    return ScoreNoise(bits, np.arange(n_layers), err, tv, sample, sample_layer)


@dataclass
class SplitAnalysis:
    """Why the outlier split helps or not: energy in the outlier half and the cache's errors, per layer.

    Attributes
    ----------
    bits : int
        The split's ordinary bits (its setting is ``bits + 0.5``).
    layers : (L,) int ndarray
    energy_share : dict of str to (L,) ndarray
        ``"keys"``, ``"values"``: mean over KV heads of the share of ``sum x^2``
        in the split's outlier channels (the ``d / 2`` of largest RMS).
    error : dict of str to dict of str to (L,) ndarray
        ``error["keys"]`` and ``error["values"]``: per layer, the relative error
        ``sum ||x - x_hat||^2 / sum ||x||^2`` of ``"mse b"``, ``"split b+0.5"``
        and ``"mse b+1"``.
    bits_per_coordinate : dict of str to float
        What each stores, side information included.
    """

    bits: int
    layers: np.ndarray
    energy_share: dict
    error: dict
    bits_per_coordinate: dict

    def total_error(self, what: str) -> dict:
        """``name -> sum ||x - x_hat||^2 / sum ||x||^2`` over all layers, for ``what`` = "keys" or "values"."""
        return {name: float(np.average(e, weights=self.energy[what])) for name, e in self.error[what].items()}

    @property
    def storage_weight(self) -> float:
        """``w``: where the split's storage lies between TurboQuantMSE's at ``b`` (0) and ``b + 1`` (1) bits."""
        lo, split, hi = self.bits_per_coordinate.values()
        return (split - lo) / (hi - lo)

    def same_storage_ratio(self, what: str, total: bool = False):
        """The split's error over TurboQuantMSE's at the same storage, ``E_b**(1 - w) * E_{b+1}**w``.

        Per layer ``(L,)``, or one number for all layers with ``total=True``
        (below 1: the split pays). ``what`` is "keys" or "values".
        """
        e = self.total_error(what) if total else self.error[what]
        lo, split, hi = (e[name] for name in self.bits_per_coordinate)
        w = self.storage_weight
        return split / (np.asarray(lo) ** (1 - w) * np.asarray(hi) ** w)

    energy: dict = field(default_factory=dict, repr=False)   # per layer, sum ||x||^2 (the weights above)


def split_analysis(ref: Reference, bits: int = 2, seed=0) -> SplitAnalysis:
    """Energy share of the outlier channels and the cache's errors: MSE at b, the split at b + 0.5, MSE at b + 1.

    Every layer's and KV head's block of all ``N`` tokens, keys and values, is
    encoded by each of the three codecs (:class:`OutlierSplitCodec` chooses
    its outlier channels per block).
    """
    d = ref.keys[0].shape[-1]
    n_layers = len(ref.keys)
    names = (f"mse {bits}", f"split {bits + 0.5:g}", f"mse {bits + 1}")
    codecs = dict(zip(names, (TurboQuantMSE(d, bits, seed=seed), OutlierSplitCodec(d, bits, seed=seed),
                              TurboQuantMSE(d, bits + 1, seed=seed)), strict=True))
    share = {"keys": np.zeros(n_layers), "values": np.zeros(n_layers)}
    energy = {"keys": np.zeros(n_layers), "values": np.zeros(n_layers)}
    err = {what: {name: np.zeros(n_layers) for name in names} for what in ("keys", "values")}
    nbytes = dict.fromkeys(names, 0)
    n_coords = 0
    for layer in range(n_layers):
        for what, blocks in (("keys", ref.keys[layer]), ("values", ref.values[layer])):
            e2 = (blocks.astype(np.float64) ** 2).sum(axis=1)                       # (heads, d)
            top = -np.sort(-e2, axis=1)[:, : d // 2].sum(axis=1)
            share[what][layer] = float(np.mean(top / e2.sum(axis=1)))
            energy[what][layer] = float(e2.sum())
            for x in blocks:
                for name, codec in codecs.items():
                    stored = codec.encode(x)
                    err[what][name][layer] += float(((x - codec.decode(stored)).astype(np.float64) ** 2).sum())
                    nbytes[name] += stored_nbytes(codec, stored, *x.shape)
                n_coords += x.size
            for name in names:
                err[what][name][layer] /= energy[what][layer]
    bpc = {name: 8 * nbytes[name] / n_coords for name in names}
    return SplitAnalysis(bits, np.arange(n_layers), share, err, bpc, energy)
