"""Lesson 08 (the complete pipeline): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR

__all__ = [
    "draw_vector_steps", "draw_pipeline_comparison", "NORMAL_COLOR", "OUTLIER_COLOR", "ROTATED_COLOR",
]


def draw_vector_steps(axes, steps, outlier_channels=()):
    """Lesson 08: one vector at each step of the pipeline, as bars, with its max/mean.

    Parameters
    ----------
    axes : sequence of Axes (one per step) or None
        ``None`` makes one row of panels, 2.2 inches wide each.
    steps : dict
        ``{title: (d,) array}`` in pipeline order.
    outlier_channels : sequence of int
        Channels drawn in red in the *first* panel (the input).

    Returns
    -------
    axes : list of Axes
    """
    if axes is None:
        _, axes = plt.subplots(1, len(steps), figsize=(2.2 * len(steps), 2.6), sharey=False)
    axes = list(np.atleast_1d(axes))
    for k, (ax, (title, v)) in enumerate(zip(axes, steps.items())):
        v = np.asarray(v, dtype=np.float64)
        colors = np.full(v.shape[0], NORMAL_COLOR, dtype=object)
        if k == 0 and len(outlier_channels):
            colors[np.asarray(outlier_channels)] = OUTLIER_COLOR
        elif k > 0:
            colors[:] = ROTATED_COLOR
        ax.bar(np.arange(v.shape[0]), v, width=1.0, color=list(colors))
        ratio = np.abs(v).max() / np.abs(v).mean()
        ax.set_title(f"{title}\nmax/mean {ratio:.1f}", fontsize=8)
        ax.set_xlabel("coordinate", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("value")
    axes[0].figure.tight_layout()
    return axes


def draw_pipeline_comparison(axes, result):
    """Lesson 08: one method's round trip: an example vector and the error of every vector.

    Parameters
    ----------
    axes : pair of Axes or None
        Left: the first vector and its reconstruction (outlier channels in
        red); right: histogram of the relative error ``||x - x_hat||^2 / ||x||^2``
        of every vector on a log axis, with the measured mean and the
        prediction. ``None`` makes a new (10, 3.2) figure.
    result : PipelineComparison
        From :func:`turboquant_lab.course.compute_pipeline_comparison`.

    Returns
    -------
    axes : (Axes, Axes)
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
    ax, ax_h = axes
    i = np.arange(result.d)
    ax.plot(i, result.example, color=LEVEL_COLOR, lw=1, label="original x")
    ax.plot(i, result.example_hat, ".", color=NORMAL_COLOR, ms=4, label="reconstruction")
    if len(result.outlier_channels):
        ch = result.outlier_channels
        ax.plot(ch, result.example[ch], "o", mfc="none", color=OUTLIER_COLOR, ms=7,
                label="outlier channels")
    ax.set(xlabel="coordinate", ylabel="value",
           title=f"{result.label}, {result.bits} bits, "
                 f"{result.bits_per_coordinate:.3f} bits/coord with side info")
    ax.legend(fontsize=7, frameon=False, loc="lower right")

    # log10 on a linear axis: a log axis spanning less than a decade has no readable ticks
    log_err = np.log10(np.clip(result.per_vector, 1e-12, None))
    marks = [log_err.min(), log_err.max(), np.log10(result.relative_mse)]
    if result.predicted is not None:
        marks.append(np.log10(result.predicted))
    ax_h.hist(log_err, bins=np.linspace(min(marks) - 0.1, max(marks) + 0.1, 61),
              color=NORMAL_COLOR, alpha=0.7)
    ax_h.axvline(np.log10(result.relative_mse), color="black", lw=1.5,
                 label=f"measured mean {result.relative_mse:.4g}")
    if result.predicted is not None:
        ax_h.axvline(np.log10(result.predicted), color=OUTLIER_COLOR, ls="--", lw=1.5,
                     label=f"predicted {result.predicted:.4g}")
    us = result.seconds_per_vector * 1e6
    ax_h.set(xlabel="log10 of relative error ||x - x_hat||^2 / ||x||^2", ylabel="vectors",
             title=f"{result.n} vectors, d = {result.d}: {us:.2f} µs/vector (timed)")
    ax_h.legend(fontsize=7, frameon=False, loc="upper left")
    ax_h.figure.tight_layout()
    return ax, ax_h
