"""Lesson 08 (the complete pipeline): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyBboxPatch

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR

__all__ = [
    "PIPELINE_BOXES", "draw_pipeline_diagram", "draw_vector_steps", "draw_pipeline_comparison",
    "NORMAL_COLOR", "OUTLIER_COLOR", "ROTATED_COLOR",
]

#: The essay's six boxes ("The Complete Pipeline"): (title, what happens), in order.
PIPELINE_BOXES = (
    ("Input", "KV vector with\noutlier channels"),
    ("Step 1\nrandom sign flip", "x * signs1\n(each +1 or -1)"),
    ("Step 2\nWalsh-Hadamard", "butterflies: log2 d\nstages of + and -\nO(d log d)"),
    ("Step 3\nrandom sign flip", "* signs2\n(each +1 or -1)"),
    ("Step 4\noptimal quantization", "Lloyd-Max slots for\nthe known law"),
    ("Output", "packed codes\n(+ the norm)"),
)

#: The way back, from the output to the input (the essay's last sentence of the Output box).
PIPELINE_WAY_BACK = ("dequantize", "inverse sign flip", "inverse WHT", "inverse sign flip")


def draw_pipeline_diagram(ax=None, notes=None):
    """Lesson 08: the essay's six-box pipeline, left to right, and the way back below it.

    Parameters
    ----------
    ax : matplotlib Axes or None
        ``None`` makes a new (11, 3) figure.
    notes : dict, optional
        ``{box index (0-5): text}``: an extra line written under a box (for
        example a figure measured on the page). The diagram draws the text it
        is given; it computes nothing.

    Returns
    -------
    ax : Axes
        Box ``k`` is the ``k``-th :class:`~matplotlib.patches.FancyBboxPatch` of
        ``ax.patches``; its title, description and note are ``ax.texts``.
    """
    ax = axes_or_new_wide(ax)
    notes = {} if notes is None else dict(notes)
    n = len(PIPELINE_BOXES)
    width, gap, top, height = 1.35, 0.35, 2.2, 1.55
    fills = ["#e8eef8", "#fbe9e7", "#e8f4ea", "#fbe9e7", "#fff4dd", "#eeeeee"]
    centers = []
    for k, (title, text) in enumerate(PIPELINE_BOXES):
        x0 = k * (width + gap)
        centers.append(x0 + width / 2)
        ax.add_patch(FancyBboxPatch((x0, top - height), width, height,
                                    boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=fills[k], edgecolor=LEVEL_COLOR, lw=1.2))
        ax.text(x0 + width / 2, top - 0.08, title, ha="center", va="top", fontsize=8,
                fontweight="bold")
        ax.text(x0 + width / 2, top - 0.78, text, ha="center", va="top", fontsize=7)
        if k in notes:
            ax.text(x0 + width / 2, top - height - 0.1, str(notes[k]), ha="center", va="top",
                    fontsize=7.5, color=OUTLIER_COLOR)
        if k:
            ax.annotate("", xy=(x0 - 0.02, top - height / 2),
                        xytext=(x0 - gap + 0.02, top - height / 2),
                        arrowprops=dict(arrowstyle="-|>", color="black", lw=1.2))
    # the way back: from the output, under the boxes, to the input
    y_back = -0.2
    ax.annotate("", xy=(centers[0], top - height - 0.45), xytext=(centers[0], y_back),
                arrowprops=dict(arrowstyle="-|>", color=ROTATED_COLOR, lw=1.2))
    ax.plot([centers[-1], centers[-1], centers[0]], [top - height - 0.45, y_back, y_back],
            color=ROTATED_COLOR, lw=1.2)
    ax.text((centers[0] + centers[-1]) / 2, y_back - 0.08,
            "to reconstruct: " + " -> ".join(PIPELINE_WAY_BACK) + "   (times the norm)",
            ha="center", va="top", fontsize=8, color=ROTATED_COLOR)
    ax.set_xlim(-0.1, n * width + (n - 1) * gap + 0.1)
    ax.set_ylim(y_back - 0.45, top + 0.1)
    ax.set_axis_off()
    ax.set_title("The complete pipeline (the essay's six boxes)", fontsize=10)
    return ax


def axes_or_new_wide(ax):
    """``ax``, or the axes of a new (11, 3) figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 3))
    return ax


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
