"""Lesson 11 (real KV caches): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .._ui import EXACT_COLOR, MSE_COLOR, OUTLIER_COLOR, PROD_COLOR, ROTATED_COLOR, UNIFORM_COLOR, axes_or_new

__all__ = [
    "draw_channel_profile", "draw_real_head", "draw_error_vs_storage", "OUTLIER_COLOR", "ROTATED_COLOR",
]


def draw_channel_profile(ax, rms, title="channel RMS of the keys"):
    """Lesson 11: an image of the RMS of each channel, one row per (layer, head).

    Parameters
    ----------
    ax : matplotlib Axes or None
    rms : (layers, heads, d) ndarray
        From :func:`turboquant_lab.course.channel_rms`.
    """
    ax = axes_or_new(ax, figsize=(8, 4))
    layers, heads, d = rms.shape
    im = ax.imshow(rms.reshape(layers * heads, d), aspect="auto", cmap="magma",
                   interpolation="nearest")
    for layer in range(1, layers):
        ax.axhline(layer * heads - 0.5, color="white", lw=0.8)
    ax.set_yticks([layer * heads + heads / 2 - 0.5 for layer in range(layers)],
                  [f"layer {layer}" for layer in range(layers)])
    ax.set(xlabel="channel (coordinate of the head)", title=title)
    ax.figure.colorbar(im, ax=ax, label="RMS over tokens")
    return ax


def draw_real_head(axes, r):
    """Lesson 11's app: channel RMS before/after rotation (left), one query's attention (right).

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
    r : RealHead
        From :func:`turboquant_lab.course.compute_real_head`.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    ax, ax2 = axes
    c = np.arange(len(r.rms))
    ax.bar(c - 0.2, r.rms, 0.4, color=OUTLIER_COLOR, label="keys")
    ax.bar(c + 0.2, r.rms_rotated, 0.4, color=ROTATED_COLOR, label="after rotation")
    ax.plot(c, np.abs(r.mean), "k.", ms=4, label="|channel mean|")
    ax.set(xlabel="channel", ylabel="RMS over tokens",
           title=f"layer {r.layer}, head {r.head}")
    ax.legend(fontsize=8)
    top = np.argsort(-r.weights, kind="stable")[:15]
    x = np.arange(len(top))
    w = 0.27
    ax2.bar(x - w, r.weights[top], w, color=EXACT_COLOR, label="exact")
    ax2.bar(x, r.weights_tq[top], w, color=MSE_COLOR, label=f"TurboQuant {r.bits}-bit")
    ax2.bar(x + w, r.weights_uniform[top], w, color=UNIFORM_COLOR, label=f"uniform {r.bits}-bit")
    ax2.set_xticks(x, [f"{r.tokens[i]} ({i})" for i in top], fontsize=7, rotation=60, ha="right")
    ax2.set(xlabel="key token (position)", ylabel="attention weight",
            title=f"query token {r.query} ({r.tokens[r.query]!r}): 15 heaviest keys")
    ax2.legend(fontsize=8)
    return axes


def draw_error_vs_storage(ax, rows, metric="output_rel_error", ylabel="attention output error"):
    """Lesson 11: an error figure against bits per coordinate (side information included), per method.

    Parameters
    ----------
    ax : matplotlib Axes or None
    rows : list of dict
        From :func:`turboquant_lab.course.compare_kv_quantizers`.
    """
    ax = axes_or_new(ax, figsize=(6, 3.2))
    colors = {"turboquant": MSE_COLOR, "prod": PROD_COLOR, "uniform": UNIFORM_COLOR}
    names = {"turboquant": "TurboQuant (MSE)", "prod": "TurboQuant prod", "uniform": "naive uniform"}
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["bits_per_coordinate"])
        x = [r["bits_per_coordinate"] for r in rs]
        y = [r[metric] for r in rs]
        ax.semilogy(x, y, "o-", color=colors.get(method), label=names.get(method, method))
        for r, xi, yi in zip(rs, x, y):
            ax.annotate(f"{r['bits']}b", (xi, yi), xytext=(3, 3), textcoords="offset points",
                        fontsize=7)
    ax.set(xlabel="bits per coordinate (codes + side information)", ylabel=ylabel)
    ax.margins(x=0.08, y=0.12)
    ax.legend(fontsize=8)
    return ax
