"""Compare KV-cache quantizers on attention, at the same bits per coordinate.

Used by lessons 10 and 11: the quantized keys (and values) of each method go
through softmax attention, and :func:`~turboquant_lab.softmax_attention.attention_fidelity`
measures what changed; the storage counts codes and side information alike.
"""
from __future__ import annotations

import numpy as np

from .qjl import TurboQuantProd
from .softmax_attention import attention_fidelity
from .turboquant import TurboQuantMSE
from .uniform import uniform_dequantize, uniform_quantize

__all__ = ["compare_kv_quantizers", "format_comparison"]


def compare_kv_quantizers(Q, K, V, bits=(2, 3, 4), methods=("turboquant", "prod", "uniform"),
                          quantize_values=True, k=8, seed=0):
    """Attention fidelity and storage of KV quantizers at the same bits, averaged over heads.

    Parameters
    ----------
    Q : (..., m, d) float array
        Queries (kept exact), one block per head (leading axes = heads).
    K, V : (..., n, d) float arrays
        Keys and values, same leading axes.
    bits : sequence of int
        Bits per coordinate (codes only; the side information is counted in
        ``bits_per_coordinate``).
    methods : sequence of {"turboquant", "prod", "uniform"}
        ``"turboquant"``: :class:`TurboQuantMSE` keys (decoded) and values.
        ``"prod"``: :class:`TurboQuantProd` keys (scores from ``inner_product``),
        values as ``"turboquant"`` (the prod quantizer is for scores only).
        ``"uniform"``: per-vector min-max uniform keys and values, with ``lo``
        and ``scale`` stored as float16, rounded as stored (32 bits per vector:
        ``uniform_quantize(..., side_dtype=np.float16)``).
    quantize_values : bool
        False keeps ``V`` exact (isolates what the keys do).
    k : int
        Top-k size of the agreement.
    seed : int
        Seed of the quantizers (one quantizer per method and bits, shared by every head).

    Returns
    -------
    list of dict
        One row per (bits, method): ``bits``, ``method``, ``bits_per_coordinate``
        (codes and side information, keys), ``key_rel_mse`` and
        ``value_rel_mse`` (``sum ||x - x_hat||^2 / sum ||x||^2``; for prod the
        decoded keys), ``predicted_rel_mse`` (the codebook's, turboquant only,
        else NaN), ``score_rmse``, ``score_bias``, ``kl``, ``output_rel_error``,
        ``topk_agreement`` (means over heads of :func:`attention_fidelity`).
    """
    Q, K, V = (np.asarray(a, dtype=np.float32) for a in (Q, K, V))
    d = K.shape[-1]
    lead = K.shape[:-2]
    Qh, Kh, Vh = (a.reshape((-1,) + a.shape[-2:]) for a in (Q, K, V))
    rows = []

    def rel(x, x_hat):
        return float(np.sum((x - x_hat) ** 2) / np.sum(x.astype(np.float64) ** 2))

    for b in bits:
        for method in methods:
            if method == "uniform":
                qk = uniform_quantize(Kh, b, side_dtype=np.float16)
                K_hat = uniform_dequantize(qk)
                V_hat = (uniform_dequantize(uniform_quantize(Vh, b, side_dtype=np.float16))
                         if quantize_values else Vh)
                bpc, predicted, scores = qk.bits_per_coordinate(), float("nan"), None
            elif method in ("turboquant", "prod"):
                mse = TurboQuantMSE(d, b, seed=seed)
                V_hat = mse.decode(mse.encode(Vh)) if quantize_values else Vh
                predicted = mse.expected_mse if method == "turboquant" else float("nan")
                if method == "turboquant":
                    enc = mse.encode(Kh)
                    K_hat, scores = mse.decode(enc), None
                else:
                    prod = TurboQuantProd(d, b, seed=seed)
                    encs = [prod.encode(kh) for kh in Kh]
                    K_hat = np.stack([prod.decode(e) for e in encs])
                    scores = [prod.inner_product(e, qh) for e, qh in zip(encs, Qh)]
                    enc = encs[0]
                bpc = enc.bits_per_coordinate
            else:
                raise ValueError(f'method must be "turboquant", "prod" or "uniform", got {method!r}')
            fids = []
            for h in range(Kh.shape[0]):
                kw = dict(V_hat=V_hat[h] if quantize_values else None, k=k)
                if scores is None:
                    kw["K_hat"] = K_hat[h]
                else:
                    kw["scores_hat"] = scores[h]
                fids.append(attention_fidelity(Qh[h], Kh[h], Vh[h], **kw))
            row = {"bits": int(b), "method": method, "bits_per_coordinate": float(bpc),
                   "key_rel_mse": rel(Kh, K_hat), "value_rel_mse": rel(Vh, V_hat),
                   "predicted_rel_mse": float(predicted), "heads": int(np.prod(lead, dtype=int))}
            for name in ("score_rmse", "score_bias", "kl", "output_rel_error", "topk_agreement"):
                row[name] = float(np.mean([getattr(f, name) for f in fids]))
            rows.append(row)
    return rows


def format_comparison(rows, columns=("bits", "method", "bits_per_coordinate", "output_rel_error",
                                     "kl", "topk_agreement")) -> str:
    """A plain-text table of :func:`compare_kv_quantizers` rows (3-4 significant digits)."""
    def fmt(v):
        if isinstance(v, str):
            return v
        if isinstance(v, (int, np.integer)):
            return str(v)
        return "nan" if not np.isfinite(v) else f"{v:.4g}"

    cells = [[c for c in columns]] + [[fmt(r[c]) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells)
