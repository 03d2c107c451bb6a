"""Lesson 06 (random signs): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from turboquant_lab.codebooks import unit_coordinate_pdf

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR, axes_or_new

__all__ = [
    "draw_sign_bars", "draw_sign_histogram", "draw_collision", "NORMAL_COLOR", "OUTLIER_COLOR",
    "ROTATED_COLOR",
]


def draw_sign_bars(ax, result):
    """Bars of a transformed unit vector (a ``SignDemo``), with the codebook's levels as lines."""
    ax = axes_or_new(ax, (8, 3))
    y = np.asarray(result.y)
    ax.bar(np.arange(len(y)), y, color=ROTATED_COLOR if result.transform != "H" else NORMAL_COLOR,
           width=0.8)
    for level in result.levels:
        ax.axhline(level, color=LEVEL_COLOR, lw=0.6, ls="--", zorder=0)
    lim = max(1.05 * float(np.abs(y).max()), 1.1 * float(np.abs(result.levels).max()))
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("output coordinate index")
    ax.set_ylabel("value (unit input)")
    ax.set_title(f"{result.transform} applied to '{result.input_name}' (dashed: {result.bits}-bit levels)\n"
                 f"max/mean {result.max_over_mean:.1f}, error {result.mse:.3f} "
                 f"(codebook promises {result.codebook_mse:.3f})", fontsize=9)
    return ax


def draw_sign_histogram(ax, samples, d, label=None, color=None, filled=True, beta=True):
    """Histogram (density) of unscaled output coordinates against the exact law of lesson 04.

    ``samples`` are coordinates of rotated unit vectors at dimension ``d``; the
    black curve (``beta=True``) is ``unit_coordinate_pdf(x, d)``, the Beta law
    of a truly random rotation. ``filled=False`` draws an outline, to overlay
    a second histogram. The height is capped at twice the curve's peak; a
    taller bar is cut and marked "clipped".

    The bins are centred on 0 and their width is an odd multiple of ``2/d``:
    ``H D x`` of inputs such as the constant vector only takes values on the
    lattice ``(2/d) Z``, and bins like these hold the same number of lattice
    points each, so that the histogram shows the law rather than aliasing.
    """
    ax = axes_or_new(ax, (4, 3))
    samples = np.ravel(samples)
    lim = max(5 / np.sqrt(d), float(np.abs(samples).max()) * 1.02)
    step = 2.0 / d
    m = int(np.ceil(2 * lim / 40 / step))              # about 40 bins
    m += 1 - m % 2                                   # odd: no lattice point on a bin edge
    half = int(np.ceil(lim / (m * step) - 0.5))
    edges = (np.arange(-half, half + 2) - 0.5) * m * step
    heights, _, _ = ax.hist(samples, bins=edges, density=True,
                            histtype="stepfilled" if filled else "step", alpha=0.45 if filled else 1,
                            lw=1.5, color=color or ROTATED_COLOR, label=label)
    grid = np.linspace(-lim, lim, 400)
    pdf = unit_coordinate_pdf(grid, d)
    if beta:
        ax.plot(grid, pdf, color="black", lw=1, label="Beta law (lesson 04)")
    top = 2 * float(pdf.max())
    if heights.max() > top and not any(t.get_text() == "bars clipped" for t in ax.texts):
        ax.text(0.5, 0.95, "bars clipped", transform=ax.transAxes, ha="center", va="top", fontsize=8)
    ax.set_ylim(0, top)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("coordinate value")
    ax.set_ylabel("density")
    return ax


def draw_collision(axes, result, labels=("A (Ravi)", "B (Priya)")):
    """One panel per mode of ``compute_collision``: rotated A and B side by side, codes on top.

    Above each pair of bars: ``code of A | code of B``, red where they differ.
    With per-vector signs A and B are each shown in their own rotated frame.
    """
    modes = list(result["rotated"])
    if axes is None:
        _, axes = plt.subplots(1, len(modes), figsize=(11, 2.8), sharey=True)
    d = result["d"]
    idx = np.arange(d)
    for ax, mode in zip(np.ravel(axes), modes):
        ya, yb = result["rotated"][mode]
        ca, cb = result["codes"][mode]
        ax.bar(idx - 0.2, ya, width=0.4, color=NORMAL_COLOR, label=labels[0])
        ax.bar(idx + 0.2, yb, width=0.4, color="#dd8452", label=labels[1])
        for i in idx:
            top = max(ya[i], yb[i], 0) + 0.04
            ax.text(i, top, f"{ca[i]}|{cb[i]}", ha="center", va="bottom", fontsize=8,
                    color="black" if ca[i] == cb[i] else OUTLIER_COLOR)
        same = int(np.sum(ca == cb))
        frames = " (A, B in two frames)" if mode == "per-vector signs" else ""
        ax.set_title(f"{mode}: {same}/{d} codes agree{frames}", fontsize=10)
        ax.set_xticks(idx)
        ax.set_xlabel("coordinate index")
        ax.axhline(0, color="black", lw=0.5)
    top = max(float(np.max(np.abs(np.concatenate(result["rotated"][m])))) for m in modes)
    np.ravel(axes)[0].set_ylim(-1.15 * top, 1.3 * top)
    np.ravel(axes)[0].set_ylabel("rotated value (unit vector)")
    np.ravel(axes)[0].legend(fontsize=8, loc="lower left")
    return axes
