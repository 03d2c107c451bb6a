"""Softmax attention, and how far quantized keys and values move it.

A transformer's attention reads a KV cache: a query ``q`` is compared with
every cached key by an inner product, the scores go through a softmax, and
the weights average the cached values:

.. math::

    s_j = \\langle q, k_j \\rangle, \\qquad
    p_j = \\frac{e^{\\tau s_j}}{\\sum_i e^{\\tau s_i}}, \\qquad
    o = \\sum_j p_j v_j, \\qquad \\tau = 1/\\sqrt{d}.

Quantizing the cache changes the scores (through the keys) and the values.
:func:`attention_fidelity` measures what that does to everything downstream:
the scores, the attention weights (KL divergence), the output, and which
keys get the most weight (top-k agreement). Scores may come either from
decoded keys (``K_hat``) or directly from an estimator of the inner products
(``scores_hat``, e.g. :meth:`~turboquant_lab.qjl.TurboQuantProd.inner_product`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._parallel import blas_one_thread
from ._validate import as_float_array
from .backend import get_xp, to_host

__all__ = ["softmax", "attention", "attention_reference", "AttentionFidelity",
           "attention_fidelity"]


def softmax(s, axis: int = -1):
    """Numerically stable softmax along ``axis``: ``exp(s - max s) / sum exp(s - max s)``.

    Parameters
    ----------
    s : (..., n) float array (NumPy or CuPy)
        Scores (logits).
    axis : int
        Axis to normalise over.

    Returns
    -------
    p : array of the same shape
        Non-negative, sums to 1 along ``axis``.

    Notes
    -----
    Subtracting the maximum changes nothing mathematically (the factor
    ``e^{-max}`` cancels) but keeps ``exp`` from overflowing: the largest
    term is ``e^0 = 1``, so the sum is at least 1 and at most ``n``.

    Examples
    --------
    >>> softmax(np.array([1000.0, 1000.0]))
    array([0.5, 0.5])
    """
    s = as_float_array(s, "s")
    xp = get_xp(s)
    e = xp.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _check_qkv(q, K, V):
    q = as_float_array(q, "q")
    K = as_float_array(K, "K", min_ndim=2)
    if K.ndim != 2:
        raise ValueError(f"K must be a (n, d) matrix of n cached keys, got shape {tuple(K.shape)}")
    if q.shape[-1] != K.shape[1]:
        raise ValueError(f"q has last axis {q.shape[-1]} but the keys have d = {K.shape[1]}: "
                         f"queries and keys must have the same dimension")
    if V is not None:
        V = as_float_array(V, "V", min_ndim=2)
        if V.ndim != 2 or V.shape[0] != K.shape[0]:
            raise ValueError(f"V must be a (n, dv) matrix with one row per key (n = {K.shape[0]}), "
                             f"got shape {tuple(V.shape)}")
    return q, K, V


def _scale(scale, d):
    if scale is None:
        return 1.0 / math.sqrt(d)
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number (default 1/sqrt(d)), got {scale}")
    return scale


def attention(q, K, V, scale=None, scores=None):
    """Softmax attention of queries over a cache of keys and values.

    Parameters
    ----------
    q : (..., d) float array
        One query ``(d,)`` or a batch ``(m, d)`` (any leading axes).
    K : (n, d) float array
        Cached keys.
    V : (n, dv) float array
        Cached values.
    scale : float, optional
        Temperature ``tau`` of the softmax; default ``1 / sqrt(d)``.
    scores : (..., n) float array, optional
        Use these raw inner products ``<q, k_j>`` instead of ``q @ K.T``
        (e.g. estimates from a quantizer); ``K`` then only gives ``d``.

    Returns
    -------
    out : (..., dv) array
        ``p @ V``.
    weights : (..., n) array
        ``p = softmax(scale * scores)``; each row sums to 1.

    Raises
    ------
    TypeError
        Non-float input.
    ValueError
        Mismatched shapes (``q`` and ``K`` must share ``d``, ``V`` has one row
        per key), NaN or Inf, a non-positive ``scale``.

    Notes
    -----
    .. math:: o = \\mathrm{softmax}(\\tau\\, q K^T)\\, V, \\qquad \\tau = 1/\\sqrt{d}.

    Cost: ``O(m n (d + dv))`` for ``m`` queries. The plain loop in
    :func:`attention_reference` is the oracle.

    Examples
    --------
    >>> K = np.eye(2); V = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> out, p = attention(np.array([0.0, 0.0]), K, V)
    >>> p, out
    (array([0.5, 0.5]), array([0.5, 0.5]))
    """
    q, K, V = _check_qkv(q, K, V)
    tau = _scale(scale, K.shape[1])
    if scores is None:
        scores = q @ K.T
    else:
        scores = as_float_array(scores, "scores")
        want = tuple(q.shape[:-1]) + (K.shape[0],)
        if tuple(scores.shape) != want:
            raise ValueError(f"scores must have shape {want} (one per query and key), "
                             f"got {tuple(scores.shape)}")
    p = softmax(tau * scores)
    return p @ V, p


def attention_reference(q, K, V, scale=None):
    """Plain float64 oracle for :func:`attention`: one query at a time, explicit sums."""
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    K = np.asarray(K, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    tau = 1.0 / math.sqrt(K.shape[1]) if scale is None else float(scale)
    outs, ps = [], []
    for qi in q.reshape(-1, q.shape[-1]):
        s = np.array([tau * sum(qi[c] * k[c] for c in range(len(k))) for k in K])
        w = np.exp(s - s.max())
        w /= w.sum()
        outs.append(sum(w[j] * V[j] for j in range(len(K))))
        ps.append(w)
    return np.array(outs), np.array(ps)


@dataclass
class AttentionFidelity:
    """How close attention with quantized keys/values is to exact attention.

    Each figure is averaged over the queries. Computed on the host in float64
    (CuPy inputs are copied to the host).

    Attributes
    ----------
    score_rmse : float
        Root mean square error of the raw scores ``<q, k_j>`` over all (query, key) pairs.
    score_bias : float
        Mean error of the raw scores (negative: the scores are shrunk).
    score_rel_rmse : float
        ``score_rmse`` divided by the root mean square of the exact scores.
    kl : float
        Mean over queries of ``KL(p || p_hat) = sum_j p_j log(p_j / p_hat_j)`` in nats.
    output_rel_error : float
        Mean over queries of ``||o - o_hat|| / ||o||``.
    topk_agreement : float
        Mean over queries of the fraction of the exact top-``k`` keys
        (largest weights) that are also among the ``k`` largest quantized weights.
    k : int
        The ``k`` used for ``topk_agreement``.
    n_queries : int
    """

    score_rmse: float
    score_bias: float
    score_rel_rmse: float
    kl: float
    output_rel_error: float
    topk_agreement: float
    k: int
    n_queries: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _host64(a):
    # the figures are summary statistics: computed on the host in float64
    return np.asarray(to_host(a), dtype=np.float64)


def _topk_agreement(p, p_hat, k):
    """Per row: the fraction of the ``k`` largest entries of ``p`` that are among those of ``p_hat``."""
    n = p.shape[-1]
    if k >= n:
        return np.ones(p.shape[0])
    top = np.argpartition(-p, k - 1, axis=-1)[:, :k]
    top_hat = np.argpartition(-p_hat, k - 1, axis=-1)[:, :k]
    mask_hat = np.zeros(p_hat.shape, dtype=bool)
    rows = np.arange(p.shape[0])[:, None]
    mask_hat[rows, top_hat] = True
    return mask_hat[rows, top].sum(axis=1) / k


def _topk_agreement_visible(logp, logp_hat, k, n_visible):
    """Per row: the share of the ``min(k, n_visible)`` largest entries of ``logp`` among those of
    ``logp_hat``; hidden entries are ``-inf`` in both and rank last."""
    m, n = logp.shape
    kk = np.minimum(k, n_visible)
    rows = np.arange(m)[:, None]
    top = np.argsort(-logp, axis=-1, kind="stable")[:, :k]
    rank_hat = np.empty((m, n), dtype=np.intp)
    rank_hat[rows, np.argsort(-logp_hat, axis=-1, kind="stable")] = np.arange(n)
    counted = np.arange(top.shape[1])[None, :] < kk[:, None]
    hits = (rank_hat[rows, top] < kk[:, None]) & counted
    return hits.sum(axis=1) / kk


def attention_fidelity(q, K, V, *, K_hat=None, V_hat=None, scores_hat=None, scale=None,
                       k: int = 8, causal: bool = False) -> AttentionFidelity:
    """Compare exact attention with attention computed from quantized keys and values.

    Parameters
    ----------
    q : (d,) or (m, d) float array
        Queries (exact, not quantized: only the cache is compressed).
    K : (n, d) float array
        Exact keys.
    V : (n, dv) float array
        Exact values.
    K_hat : (n, d) float array, optional
        Decoded keys: the quantized scores are ``q @ K_hat.T``.
    V_hat : (n, dv) float array, optional
        Decoded values (default: ``V``, i.e. only the keys are quantized).
    scores_hat : (..., n) float array, optional
        Quantized raw scores given directly, e.g. from
        ``TurboQuantProd.inner_product(enc, q)``; exclusive with ``K_hat``.
        (That estimator is unbiased for each score ``<q, k>``; a decoded
        vector is not what it is built for.)
    scale : float, optional
        Softmax temperature, default ``1 / sqrt(d)``.
    k : int
        Top-k size for the agreement (clipped to ``n``; with ``causal``, to the
        number of keys each query sees).
    causal : bool
        A decoder's causal mask: the ``m`` queries are the last ``m`` of the
        ``n`` tokens, and query ``i`` sees keys ``0 .. n - m + i`` only (with
        ``m = n``: token ``i`` attends to tokens ``0 .. i``). Every figure is
        then taken over the visible (query, key) pairs.

    Returns
    -------
    AttentionFidelity

    Raises
    ------
    ValueError
        Neither or both of ``K_hat`` and ``scores_hat``; shapes that do not
        match ``K``/``V``; ``k < 1``; ``causal`` with more queries than keys.

    Notes
    -----
    With ``p = softmax(tau q K^T)`` and ``p_hat = softmax(tau s_hat)``:
    ``KL(p || p_hat) = sum_j p_j (log p_j - log p_hat_j)``, computed from the
    log-softmax (no ``log 0``); ``o = p V`` and ``o_hat = p_hat V_hat``. With
    ``causal``, the scores of hidden keys are ``-inf`` before the softmax in
    both, as in the decoder (:func:`turboquant_lab.llm.causal_attention`).
    The products run with BLAS held at one thread: on a busy machine a
    threaded BLAS on such small matrices waits for its threads.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> q, K, V = rng.standard_normal((4, 16)), rng.standard_normal((32, 16)), rng.standard_normal((32, 8))
    >>> f = attention_fidelity(q, K, V, K_hat=K)
    >>> f.kl, f.output_rel_error, f.topk_agreement
    (0.0, 0.0, 1.0)

    With a causal mask and one query per token, only the newest token sees
    the newest key, so a change of that key moves one query's weights in 32:

    >>> q = rng.standard_normal((32, 16))
    >>> K_hat = K.copy(); K_hat[-1] += 1.0
    >>> every = attention_fidelity(q, K, V, K_hat=K_hat, causal=True)
    >>> newest = attention_fidelity(q[-1:], K, V, K_hat=K_hat, causal=True)
    >>> bool(np.isclose(32 * every.kl, newest.kl))
    True
    """
    q, K, V = _check_qkv(q, K, V)
    if (K_hat is None) == (scores_hat is None):
        raise ValueError("pass exactly one of K_hat (decoded keys) or scores_hat "
                         "(estimated inner products <q, k_j>)")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (top-k size), got {k!r}")
    q2 = _host64(q).reshape(-1, K.shape[1])
    K = _host64(K)
    V = _host64(V)
    m, n = q2.shape[0], K.shape[0]
    if causal and m > n:
        raise ValueError(f"causal=True needs at most as many queries as keys (the queries are the "
                         f"last of the n = {n} tokens), got {m} queries")
    if K_hat is not None:
        K_hat = as_float_array(K_hat, "K_hat", min_ndim=2)
        if tuple(K_hat.shape) != tuple(K.shape):
            raise ValueError(f"K_hat must have the shape of K {tuple(K.shape)}, got {tuple(K_hat.shape)}")
        K_hat = _host64(K_hat)
    else:
        scores_hat = as_float_array(scores_hat, "scores_hat")
        want = tuple(q.shape[:-1]) + (K.shape[0],)
        if tuple(scores_hat.shape) != want:
            raise ValueError(f"scores_hat must have shape {want} (queries x keys, like q @ K.T), "
                             f"got {tuple(scores_hat.shape)}")
        s_hat = _host64(scores_hat).reshape(q2.shape[0], K.shape[0])
    if V_hat is None:
        V_hat = V
    else:
        V_hat = as_float_array(V_hat, "V_hat", min_ndim=2)
        if tuple(V_hat.shape) != tuple(V.shape):
            raise ValueError(f"V_hat must have the shape of V {tuple(V.shape)}, got {tuple(V_hat.shape)}")
        V_hat = _host64(V_hat)
    tau = _scale(scale, K.shape[1])
    # query i sees keys 0 .. n - m + i (all of them without the causal mask)
    visible = np.arange(n)[None, :] <= (n - m + np.arange(m))[:, None] if causal else None
    with blas_one_thread():
        s = q2 @ K.T
        if K_hat is not None:
            s_hat = q2 @ K_hat.T
        z, z_hat = tau * s, tau * s_hat
        if causal:
            z, z_hat = np.where(visible, z, -np.inf), np.where(visible, z_hat, -np.inf)
        logp = z - z.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        logp_hat = z_hat - z_hat.max(axis=1, keepdims=True)
        logp_hat -= np.log(np.exp(logp_hat).sum(axis=1, keepdims=True))
        p, p_hat = np.exp(logp), np.exp(logp_hat)
        o, o_hat = p @ V, p_hat @ V_hat
    err = s_hat - s
    if causal:
        err, s = err[visible], s[visible]
        kl = np.sum(p * np.subtract(logp, logp_hat, out=np.zeros_like(logp), where=visible), axis=1)
    else:
        kl = np.sum(p * (logp - logp_hat), axis=1)
    rms = float(np.sqrt(np.mean(s ** 2)))
    o_norm = np.linalg.norm(o, axis=1)
    rel = np.linalg.norm(o - o_hat, axis=1) / np.where(o_norm > 0, o_norm, 1.0)
    kk = min(int(k), K.shape[0])
    if causal:
        agree = _topk_agreement_visible(logp, logp_hat, kk, visible.sum(axis=1))
    else:
        agree = _topk_agreement(p, p_hat, kk)
    return AttentionFidelity(
        score_rmse=float(np.sqrt(np.mean(err ** 2))),
        score_bias=float(np.mean(err)),
        score_rel_rmse=float(np.sqrt(np.mean(err ** 2)) / rms) if rms > 0 else 0.0,
        kl=float(max(np.mean(kl), 0.0)),
        output_rel_error=float(np.mean(rel)),
        topk_agreement=float(np.mean(agree)),
        k=kk,
        n_queries=int(q2.shape[0]),
    )
