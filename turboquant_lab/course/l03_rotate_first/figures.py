"""Lesson 03 (rotate first): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR, axes_or_new

__all__ = [
    "draw_rotation", "draw_rotation_mse", "draw_rotation_timing", "NORMAL_COLOR", "OUTLIER_COLOR",
    "ROTATED_COLOR",
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


def draw_rotation_mse(ax, result):
    """MSE of naive uniform quantization vs bits, without and with a rotation first (log scale)."""
    ax = axes_or_new(ax)
    ax.semilogy(result.bits, result.mse_before, "o-", color=OUTLIER_COLOR,
                label=f"quantize x (mean range {result.range_before:.3g})")
    ax.semilogy(result.bits, result.mse_after, "o-", color=ROTATED_COLOR,
                label=f"rotate, quantize, rotate back (mean range {result.range_after:.3g})")
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
