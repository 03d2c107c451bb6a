"""Lesson 03 (rotate first): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR, axes_or_new

__all__ = [
    "draw_rotation", "draw_slot_use", "draw_rotation_mse", "draw_rotation_timing", "NORMAL_COLOR",
    "OUTLIER_COLOR", "ROTATED_COLOR",
]


def draw_rotation(axes, result, x=None, outliers=None):
    """Coordinate bar charts before and after a rotation (the essay's Rotate figure).

    Parameters
    ----------
    axes : pair of Axes, or None
        Left: ``x`` (outlier channels red); right: ``R x``. Share the y axis to
        see the energy spread out. ``None`` makes a new figure.
    result : RotationResult or None
        From :func:`turboquant_lab.course.compute_rotation_demo`; ``None`` draws
        the vector before any rotation (``x`` and ``outliers`` must then be given).
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
    ax0, ax1 = axes
    if result is not None:
        x, outliers = result.before, result.outliers
    x = np.asarray(x)
    idx = np.arange(x.shape[0])
    colors = np.full(x.shape[0], NORMAL_COLOR, dtype=object)
    if outliers is not None and len(outliers):
        colors[np.asarray(outliers, dtype=int)] = OUTLIER_COLOR
    ax0.bar(idx, x, color=list(colors), width=0.8)
    ax0.set(xlabel="coordinate i", ylabel="value x_i",
            title=f"before: max/mean = {np.abs(x).max() / np.abs(x).mean():.1f}x")
    if result is None:
        ax1.text(0.5, 0.5, "press Rotate", ha="center", va="center", transform=ax1.transAxes,
                 color=LEVEL_COLOR)
        ax1.set(xlabel="coordinate i", title="after: -")
    else:
        ax1.bar(idx, result.after, color=ROTATED_COLOR, width=0.8)
        ax1.set(xlabel="coordinate i", ylabel="value (R x)_i",
                title=f"after rotation (seed {result.seed}): max/mean = "
                      f"{result.max_mean_after:.1f}x")
    for ax in axes:
        ax.axhline(0, color="black", lw=0.5)
    return axes


def draw_slot_use(axes, counts_before, counts_after):
    """Coordinates per level of the min-max ruler, before and after the rotation (lesson 02's figure).

    Parameters
    ----------
    axes : pair of Axes, or None
        Left: the vector as it is; right: the rotated vector. ``None`` makes a new figure.
    counts_before, counts_after : (2**bits,) int arrays
        How many coordinates each code holds (``np.bincount(codes, minlength=2**bits)``).

    Returns
    -------
    axes : pair of Axes
        One bar per code; an empty level is labelled "empty".
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
    for ax, counts, color, title in [(axes[0], counts_before, OUTLIER_COLOR, "x as it is"),
                                     (axes[1], counts_after, ROTATED_COLOR, "R x")]:
        counts = np.asarray(counts)
        codes = np.arange(len(counts))
        ax.bar(codes, counts, color=color)
        for k, n in enumerate(counts):
            if n == 0:
                ax.annotate("empty", xy=(k, 0), xytext=(0, 2), textcoords="offset points",
                            ha="center", fontsize=7)
        ax.set_xticks(codes)
        ax.set(xlabel="slot (code)", title=f"{title}: {int(np.count_nonzero(counts))} of "
                                           f"{len(counts)} levels used")
    axes[0].set_ylabel("number of coordinates")
    return axes


def draw_rotation_mse(ax, bits, mse_before, mse_after):
    """MSE of naive uniform quantization vs bits, without and with a rotation first (log scale).

    Parameters
    ----------
    ax : Axes or None
    bits : (B,) int array
    mse_before, mse_after : (B,) float arrays
        MSE of quantizing ``x`` directly, and of ``R^T Q_b(R x)``.

    Returns
    -------
    ax : Axes
        Two lines, in that order.
    """
    ax = axes_or_new(ax)
    ax.semilogy(bits, mse_before, "o-", color=OUTLIER_COLOR, label="quantize x")
    ax.semilogy(bits, mse_after, "o-", color=ROTATED_COLOR, label="rotate, quantize, rotate back")
    ax.set(xlabel="bits per coordinate", ylabel="MSE per coordinate",
           title="naive uniform quantizer, same bits")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def draw_rotation_timing(ax, timing):
    """Seconds per vector of a dense rotation ``x @ Q.T`` vs d (log-log), with a d^2 line."""
    ax = axes_or_new(ax)
    d = timing.dims
    ax.loglog(d, timing.single * 1e6, "o-", color=OUTLIER_COLOR, label="one vector")
    ax.loglog(d, timing.batch * 1e6, "s-", color=NORMAL_COLOR,
              label=f"batch of {timing.batch_size}, per vector")
    ref = np.median(timing.batch / d.astype(float) ** 2) * 1e6 * d.astype(float) ** 2
    ax.loglog(d, ref, "--", color=LEVEL_COLOR, label="∝ d² (reference)")
    ax.set(xlabel="dimension d", ylabel="time per vector (µs)",
           title="dense rotation x @ Q.T (timed on this machine)")
    ax.set_xticks(d, [str(k) for k in d])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return ax
