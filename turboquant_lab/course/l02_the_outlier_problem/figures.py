"""Lesson 02 (the outlier problem): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from .._ui import NORMAL_COLOR, OUTLIER_COLOR, axes_or_new, draw_ruler_levels

__all__ = ["draw_outlier_bars", "draw_slot_counts", "NORMAL_COLOR", "OUTLIER_COLOR"]


def draw_outlier_bars(axes, result):
    """The essay's two bar charts: the original vector and its naive quantization.

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
        (original, quantized); a new 1x2 figure when None.
    result : OutlierDemo
        From :func:`turboquant_lab.course.compute_outlier_demo`.

    Returns
    -------
    axes : pair of matplotlib Axes
        Channel on x, value on y (same y scale for both); outlier channels
        red; the quantizer's levels as grey lines on the right-hand chart.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
    ax0, ax1 = axes
    d = len(result.x)
    colors = np.full(d, NORMAL_COLOR, dtype=object)
    colors[result.outliers] = OUTLIER_COLOR
    idx = np.arange(d)
    ax0.bar(idx, result.x, color=colors, width=0.8)
    ax1.bar(idx, result.x_hat, color=colors, width=0.8)
    draw_ruler_levels(ax1, result.levels, label_codes=False)
    lo = min(result.x.min(), result.x_hat.min())
    hi = max(result.x.max(), result.x_hat.max())
    pad = 0.05 * (hi - lo)
    for ax, title in [(ax0, "original vector (before quantization)"),
                      (ax1, f"quantized vector ({result.bits} bits = {2 ** result.bits} levels)")]:
        ax.axhline(0, color="black", lw=0.5)
        ax.set(xlabel="channel", title=title, xlim=(-1, d), ylim=(lo - pad, hi + pad))
        ax.title.set_fontsize(9)
    ax0.set_ylabel("value")

    ax0.legend(handles=[Patch(color=OUTLIER_COLOR, label="outlier channel"),
                        Patch(color=NORMAL_COLOR, label="normal channel")],
               fontsize=7, loc="best")
    return axes


def draw_slot_counts(ax, result):
    """How many normal and outlier coordinates each level (slot) of the quantizer holds.

    Parameters
    ----------
    ax : matplotlib Axes or None
    result : OutlierDemo
        From :func:`turboquant_lab.course.compute_outlier_demo`.

    Returns
    -------
    ax : matplotlib Axes
        Slot (code) on x, number of coordinates on y, stacked: normal channels
        blue, outlier channels red, each column labelled "normal + outlier"
        (up to 16 slots); an empty column is a wasted slot.
    """
    ax = axes_or_new(ax, figsize=(6, 3))
    codes = np.arange(len(result.slot_counts_normal))
    ax.bar(codes, result.slot_counts_normal, color=NORMAL_COLOR, label="normal channels")
    ax.bar(codes, result.slot_counts_outlier, bottom=result.slot_counts_normal,
           color=OUTLIER_COLOR, label="outlier channels")
    if len(codes) <= 16:
        ax.set_xticks(codes)
        for k, (n, o) in enumerate(zip(result.slot_counts_normal, result.slot_counts_outlier)):
            ax.annotate(f"{n} + {o}" if n + o else "empty", xy=(k, n + o), xytext=(0, 2),
                        textcoords="offset points", ha="center", fontsize=7)
        ax.margins(y=0.15)
    ax.set(xlabel="slot (code)", ylabel="number of coordinates",
           title=f"{result.bits} bits: coordinates per slot (normal + outlier)")
    ax.legend(fontsize=7)
    return ax
