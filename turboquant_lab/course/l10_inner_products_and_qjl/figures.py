"""Lesson 10 (inner products and QJL): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .._ui import EXACT_COLOR, LEVEL_COLOR, MSE_COLOR, PROD_COLOR

__all__ = ["draw_inner_product_stats", "draw_attention_demo"]


def draw_inner_product_stats(axes, stats):
    """Lesson 10: bias (left) and mean squared error (right) of inner-product estimates against bits.

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
    stats : InnerProductStats
        From :func:`turboquant_lab.course.compute_inner_product_stats`.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    ax, ax2 = axes
    b = stats.bits
    ax.axhline(1.0, color=LEVEL_COLOR, lw=0.8, ls=":")
    ax.plot(b, stats.one_minus_D, "--", color=MSE_COLOR, alpha=0.6, label="1 - D(b) (predicted)")
    ax.plot(b, stats.mse_ratio, "o", color=MSE_COLOR, label="MSE quantizer (measured)")
    ax.plot(b, stats.prod_ratio, "s", color=PROD_COLOR, label="prod quantizer (measured)")
    ax.set(xlabel="total bits per coordinate", ylabel="mean estimate / mean <x, y>",
           title="bias: is the estimate shrunk?", xticks=b)
    ax.legend(fontsize=8, loc="lower right")
    ax2.semilogy(b, stats.mse_sq_error, "o-", color=MSE_COLOR, label="MSE quantizer")
    ax2.semilogy(b, stats.prod_sq_error, "s-", color=PROD_COLOR, label="prod quantizer")
    ax2.semilogy(b, stats.prod_variance_bound, "--", color=PROD_COLOR, alpha=0.6,
                 label="bound pi/(2d) D(b-1)")
    ax2.semilogy(b, stats.paper_bound, ":", color=EXACT_COLOR, label="paper: sqrt(3) pi^2 / (d 4^b)")
    ax2.set(xlabel="total bits per coordinate", ylabel="E (estimate - <x, y>)^2",
            title=f"spread (unit vectors, d = {stats.d})", xticks=b)
    ax2.legend(fontsize=8)
    return axes


def draw_attention_demo(axes, demo):
    """Lesson 10: estimated vs exact scores (left) and the heaviest attention weights (right).

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
    demo : AttentionDemo
        From :func:`turboquant_lab.course.compute_attention_demo`.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    ax, ax2 = axes
    s = demo.scores
    lim = [s.min(), s.max()]
    ax.scatter(s, demo.scores_prod, s=4, color=PROD_COLOR, alpha=0.35,
               label=f"prod estimate (slope {demo.slope_prod:.2f})")
    ax.scatter(s, demo.scores_mse, s=4, color=MSE_COLOR, alpha=0.5,
               label=f"MSE keys (slope {demo.slope_mse:.2f})")
    ax.plot(lim, lim, color=EXACT_COLOR, lw=1, label="exact (slope 1)")
    for slope, color in ((demo.slope_mse, MSE_COLOR), (demo.slope_prod, PROD_COLOR)):
        ax.plot(lim, [slope * v for v in lim], color=color, lw=1.2, ls="--")
    ax.set(xlabel="exact score <q, k>", ylabel="estimated score",
           title=f"{len(s)} keys, {demo.bits} code bits per coordinate")
    ax.legend(fontsize=8, markerscale=3)
    top = demo.top
    x = np.arange(len(top))
    w = 0.27
    ax2.bar(x - w, demo.weights[top], w, color=EXACT_COLOR, label="exact")
    ax2.bar(x, demo.weights_mse[top], w, color=MSE_COLOR, label="MSE keys")
    ax2.bar(x + w, demo.weights_prod[top], w, color=PROD_COLOR, label="prod scores")
    ax2.set_xticks(x, [str(i) for i in top], fontsize=7, rotation=90)
    ax2.set(xlabel="key index (heaviest exact weights first)", ylabel="attention weight",
            title="softmax weights")
    ax2.legend(fontsize=8)
    return axes
