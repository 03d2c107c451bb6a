"""Lesson 10 (inner products and QJL): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from turboquant_lab.data import make_kv_vectors
from turboquant_lab.metrics import unit_rows
from turboquant_lab.qjl import TurboQuantProd
from turboquant_lab.softmax_attention import attention_fidelity, softmax
from turboquant_lab.turboquant import TurboQuantMSE

__all__ = [
    "correlated_pairs", "InnerProductStats", "inner_product_errors", "summarize_inner_products",
    "compute_inner_product_stats", "AttentionDemo",
    "attention_demo_data", "compute_attention_demo", "verdict_mse_vs_prod",
]


def correlated_pairs(n, d, rng, correlation_noise=1.0):
    """``n`` pairs of unit vectors ``(x, y)`` with ``y = unit(x + noise / sqrt(d))``: ``<x, y>`` ~ 0.7.

    A shrinkage of the estimate (``E est = a <x, y>``) shows as a mean error
    only when ``<x, y>`` is not centred at 0, hence correlated pairs.
    """
    x = unit_rows(rng.standard_normal((n, d)))
    y = unit_rows(x + correlation_noise * rng.standard_normal((n, d)) / np.sqrt(d))
    return x.astype(np.float32), y


@dataclass
class InnerProductStats:
    """Bias and spread of inner-product estimates from the MSE and the prod quantizer (lesson 10).

    Every array has one entry per value of ``bits`` (total bits per coordinate).

    Attributes
    ----------
    bits : (k,) int ndarray
    d : int
    n_pairs : int
        Pairs per bit width (``n_quantizers * pairs_per_quantizer``).
    mse_ratio, prod_ratio : (k,) ndarray
        ``mean(estimate) / mean(<x, y>)``: 1 for an unbiased estimator.
    one_minus_D : (k,) ndarray
        ``1 - D(b)`` of the ``b``-bit codebook: the predicted ``mse_ratio``.
    mse_bias, prod_bias : (k,) ndarray
        Mean error ``estimate - <x, y>``.
    mse_bias_se, prod_bias_se : (k,) ndarray
        Standard errors of those means (from the per-quantizer means).
    mse_sq_error, prod_sq_error : (k,) ndarray
        Mean squared error ``E (estimate - <x, y>)^2``.
    prod_variance_bound : (k,) ndarray
        ``pi / (2 d) D(b - 1)`` (:attr:`TurboQuantProd.variance_bound`).
    paper_bound : (k,) ndarray
        ``sqrt(3) pi^2 / (d 4^b)`` (the paper's Theorem 2).
    """
    bits: np.ndarray
    d: int
    n_pairs: int
    mse_ratio: np.ndarray
    prod_ratio: np.ndarray
    one_minus_D: np.ndarray
    mse_bias: np.ndarray
    prod_bias: np.ndarray
    mse_bias_se: np.ndarray
    prod_bias_se: np.ndarray
    mse_sq_error: np.ndarray
    prod_sq_error: np.ndarray
    prod_variance_bound: np.ndarray
    paper_bound: np.ndarray


def inner_product_errors(bits, d=128, n_quantizers=40, pairs_per_quantizer=250, rng=None):
    """``<x, y>`` and the errors of both estimates, one row per quantizer (lesson 10, section 3).

    Quantizer ``s`` (``s = 0 .. n_quantizers - 1``) is ``TurboQuantMSE(d, bits, seed=s)``
    and ``TurboQuantProd(d, bits, seed=s)``; it estimates ``pairs_per_quantizer``
    fresh pairs from :func:`correlated_pairs` (drawn from ``rng``). The MSE estimate is
    ``<x_hat, y>``, the prod estimate ``TurboQuantProd.inner_product`` of key ``x_i``
    and query ``y_i``.

    Returns
    -------
    exact, err_mse, err_prod : (n_quantizers, pairs_per_quantizer) ndarrays
        ``<x, y>``, and ``estimate - <x, y>`` for each estimator.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    exact, err_mse, err_prod = [], [], []
    for s in range(n_quantizers):
        x, y = correlated_pairs(pairs_per_quantizer, d, rng)
        mse, prod = TurboQuantMSE(d, int(bits), seed=s), TurboQuantProd(d, int(bits), seed=s)
        ip = np.sum(x * y, axis=1)
        err_mse.append(np.sum(mse.decode(mse.encode(x)) * y, axis=1) - ip)
        err_prod.append(np.einsum("ii->i", prod.inner_product(prod.encode(x), y)) - ip)
        exact.append(ip)
    return np.array(exact), np.array(err_mse), np.array(err_prod)


def summarize_inner_products(d, errors) -> InnerProductStats:
    """Bias, standard errors and squared errors from :func:`inner_product_errors` results.

    Parameters
    ----------
    d : int
    errors : dict
        ``{bits: (exact, err_mse, err_prod)}``, each array of shape
        ``(n_quantizers, pairs)`` as :func:`inner_product_errors` returns them.

    Returns
    -------
    InnerProductStats
        ``*_ratio = mean(exact + err) / mean(exact)``; ``*_bias = mean(err)``;
        ``*_bias_se`` = standard deviation of the per-quantizer mean errors over
        ``sqrt(n_quantizers)``; ``*_sq_error = mean(err**2)``; the bounds from
        :class:`~turboquant_lab.qjl.TurboQuantProd`.
    """
    bits = np.array(sorted(errors), dtype=int)
    cols = {k: [] for k in ("mse_ratio", "prod_ratio", "one_minus_D", "mse_bias", "prod_bias",
                            "mse_bias_se", "prod_bias_se", "mse_sq_error", "prod_sq_error",
                            "prod_variance_bound", "paper_bound")}
    n_pairs = 0
    for b in bits:
        exact, e_mse, e_prod = (np.asarray(a, dtype=np.float64) for a in errors[b])
        n_pairs, prod = exact.size, TurboQuantProd(d, int(b))
        for name, e in (("mse", e_mse), ("prod", e_prod)):
            cols[f"{name}_ratio"].append(np.mean(exact + e) / np.mean(exact))
            cols[f"{name}_bias"].append(np.mean(e))
            cols[f"{name}_bias_se"].append(np.std(e.mean(axis=1), ddof=1) / np.sqrt(len(e)))
            cols[f"{name}_sq_error"].append(np.mean(e ** 2))
        cols["one_minus_D"].append(1.0 - TurboQuantMSE(d, int(b)).expected_mse)
        cols["prod_variance_bound"].append(prod.variance_bound)
        cols["paper_bound"].append(prod.paper_bound)
    return InnerProductStats(bits=bits, d=d, n_pairs=n_pairs,
                             **{k: np.array(v, dtype=float) for k, v in cols.items()})


def compute_inner_product_stats(bits=(1, 2, 3, 4), d=128, n_quantizers=40, pairs_per_quantizer=250,
                                seed=0) -> InnerProductStats:
    """Estimate ``<x, y>`` for unit pairs with ``TurboQuantMSE(d, b)`` and ``TurboQuantProd(d, b)``.

    :func:`inner_product_errors` for each bit width (one generator seeded with
    ``seed`` draws the pairs of all of them, in order), then
    :func:`summarize_inner_products`.

    Returns
    -------
    InnerProductStats

    Examples
    --------
    >>> s = compute_inner_product_stats(bits=(2,), d=32, n_quantizers=4, pairs_per_quantizer=50)
    >>> s.n_pairs, bool(s.mse_ratio[0] < 1)
    (200, True)
    """
    rng = np.random.default_rng(seed)
    errors = {int(b): inner_product_errors(b, d, n_quantizers, pairs_per_quantizer, rng)
              for b in bits}
    return summarize_inner_products(d, errors)


@dataclass
class AttentionDemo:
    """One query against a cache of keys: exact scores and the two quantizers' (lesson 10).

    Attributes
    ----------
    bits : int
        Total bits per coordinate of both quantizers.
    scores, scores_mse, scores_prod : (n,) ndarray
        Raw inner products ``<q, k_j>``: exact, from ``TurboQuantMSE`` decoded
        keys, from ``TurboQuantProd.inner_product``.
    weights, weights_mse, weights_prod : (n,) ndarray
        ``softmax(scores / sqrt(d))`` of each.
    top : (n_top,) int ndarray
        The keys with the largest exact weights, largest first.
    fidelity_mse, fidelity_prod : AttentionFidelity
        :func:`~turboquant_lab.softmax_attention.attention_fidelity` for this query (values exact).
    slope_mse, slope_prod : float
        Least-squares slope (through 0) of estimated against exact scores:
        below 1 for the MSE keys (``1 - D(bits)`` on average for isotropic keys
        or a Haar rotation; less shrunk for these outlier keys under the
        randomized Hadamard), around 1 for the prod estimate (whose errors,
        for one fixed ``S`` and one query, are correlated across keys).
    """
    bits: int
    scores: np.ndarray
    scores_mse: np.ndarray
    scores_prod: np.ndarray
    weights: np.ndarray
    weights_mse: np.ndarray
    weights_prod: np.ndarray
    top: np.ndarray
    fidelity_mse: object
    fidelity_prod: object
    slope_mse: float = 1.0
    slope_prod: float = 1.0


def attention_demo_data(n_keys=1024, d=128, seed=0):
    """Lesson 10's cache: synthetic keys and values with 5 outlier channels, and one N(0, I) query."""
    K = make_kv_vectors(n_keys, d, seed=seed)
    V = make_kv_vectors(n_keys, d, seed=seed + 1)
    q = np.random.default_rng([seed, 10]).standard_normal(d)
    return q, K, V


def compute_attention_demo(bits, n_keys=1024, d=128, seed=0, n_top=12) -> AttentionDemo:
    """Scores and softmax weights of one query from exact, MSE-quantized and prod-quantized keys.

    Parameters
    ----------
    bits : int
        Total bits per coordinate (1-8) for both quantizers: ``TurboQuantMSE(d, bits)``
        and ``TurboQuantProd(d, bits)`` (``bits - 1`` MSE bits + 1 QJL bit).
    n_keys, d, seed : int
        The cache (:func:`attention_demo_data`); the quantizers use ``seed`` too.
    n_top : int
        How many of the heaviest keys :attr:`AttentionDemo.top` lists.
    """
    q, K, V = attention_demo_data(n_keys, d, seed)
    mse, prod = TurboQuantMSE(d, bits, seed=seed), TurboQuantProd(d, bits, seed=seed)
    K_mse = mse.decode(mse.encode(K))
    s = K.astype(np.float64) @ q
    s_mse = K_mse.astype(np.float64) @ q
    s_prod = prod.inner_product(prod.encode(K), q).astype(np.float64)
    tau = 1.0 / np.sqrt(d)
    w = softmax(tau * s)
    return AttentionDemo(
        bits=int(bits), scores=s, scores_mse=s_mse, scores_prod=s_prod,
        weights=w, weights_mse=softmax(tau * s_mse), weights_prod=softmax(tau * s_prod),
        top=np.argsort(-w, kind="stable")[:n_top],
        fidelity_mse=attention_fidelity(q, K, V, K_hat=K_mse),
        fidelity_prod=attention_fidelity(q, K, V, scores_hat=s_prod),
        slope_mse=float(s @ s_mse / (s @ s)), slope_prod=float(s @ s_prod / (s @ s)),
    )


def verdict_mse_vs_prod(rows, metric="output_rel_error") -> list:
    """One sentence per bit width saying which of turboquant (MSE) and prod has the better ``metric``.

    Lower is better for errors and KL; higher for ``topk_agreement``.
    """
    higher_better = metric == "topk_agreement"
    lines = []
    for b in sorted({r["bits"] for r in rows}):
        by = {r["method"]: r[metric] for r in rows if r["bits"] == b}
        if "turboquant" not in by or "prod" not in by:
            continue
        m, p = by["turboquant"], by["prod"]
        mse_wins = m > p if higher_better else m < p
        winner, loser = ("MSE (biased)", "prod (unbiased)") if mse_wins else ("prod (unbiased)",
                                                                              "MSE (biased)")
        lines.append(f"{b} bits: {winner} wins on {metric} ({m:.3g} MSE vs {p:.3g} prod)")
    return lines
