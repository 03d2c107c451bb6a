"""Lesson 04 (the distribution after rotation): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from turboquant_lab.coordinate_law import coordinate_pdf

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR, axes_or_new

__all__ = ["draw_coordinate_histogram", "draw_gaussian_gap", "draw_cache_spread", "NORMAL_COLOR",
           "OUTLIER_COLOR"]


def draw_coordinate_histogram(ax, h, bins: int = 60):
    """Histogram of a rotated coordinate with the N(0, 1/d) and exact (scaled Beta) densities."""
    ax = axes_or_new(ax)
    half = h.grid[-1]
    ax.hist(h.samples, bins=np.linspace(-half, half, bins + 1), density=True,
            color=NORMAL_COLOR, alpha=0.45, label=f"{h.n:,} rotations")
    ax.plot(h.grid, h.gaussian_pdf, "--", color=OUTLIER_COLOR, lw=1.5, label="N(0, 1/d)")
    ax.plot(h.grid, h.exact_pdf, "-", color="black", lw=1.2, label="exact (scaled Beta)")
    if half >= 1.0:
        for edge in (-1, 1):
            ax.axvline(edge, color=LEVEL_COLOR, lw=0.8, ls=":")
    ax.set(xlabel="coordinate value (R x)_1 (x a unit vector)", ylabel="density",
           title=f"d = {h.d}: theory σ = {h.sigma_theory:.4f}, simulated σ = {h.sigma_empirical:.4f}")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def draw_gaussian_gap(ax, dims, tv, current=None):
    """Total variation distance between the exact law and N(0, 1/d) vs d (log-log)."""
    ax = axes_or_new(ax, figsize=(5, 3))
    dims = np.asarray(dims)
    ax.loglog(dims, tv, "o-", color=NORMAL_COLOR, label="TV(exact, Gaussian)")
    if current is not None:
        ax.loglog([current[0]], [current[1]], "o", color=OUTLIER_COLOR, ms=9, label=f"d = {current[0]}")
    ax.set(xlabel="dimension d", ylabel="total variation distance",
           title="how good is N(0, 1/d)?")
    ax.set_xticks(dims, [str(k) for k in dims])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def draw_cache_spread(axes, spread, bins: int = 50):
    """Two panels for a ``CacheSpread``: the spread of each coordinate across tokens, and histograms.

    Left: ``t[:, i].std()`` for every coordinate ``i`` (bars), with the line at 1
    that N(0, 1) would give. Right: the histograms of the narrowest and the
    widest coordinate across tokens, and of all coordinates pooled, against the
    exact law of ``t`` (lesson 04, section 3).
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [3, 2]})
    left, right = axes
    d = spread.per_coordinate.size
    colors = np.full(d, NORMAL_COLOR, dtype=object)
    colors[spread.narrow], colors[spread.wide] = ROTATED_COLOR, OUTLIER_COLOR
    left.bar(np.arange(d), spread.per_coordinate, color=list(colors), width=0.9)
    left.axhline(1.0, color="black", lw=1, ls="--", label="1: what N(0, 1) would give")
    left.set(xlabel="rotated coordinate i", ylabel="std of t_i across tokens",
             title=f"one rotation, {spread.t.shape[0]:,} tokens: std per coordinate from "
                   f"{spread.per_coordinate.min():.2f} to {spread.per_coordinate.max():.2f}")
    left.legend(fontsize=8, loc="upper right")
    edges = np.linspace(-5, 5, bins + 1)
    right.hist(spread.t.ravel(), bins=edges, density=True, color=LEVEL_COLOR, alpha=0.35,
               label="all coordinates pooled")
    for i, color in ((spread.narrow, ROTATED_COLOR), (spread.wide, OUTLIER_COLOR)):
        right.hist(spread.t[:, i], bins=edges, density=True, histtype="step", lw=1.6, color=color,
                   label=f"coordinate {i} alone")
    grid = np.linspace(-5, 5, 401)
    right.plot(grid, coordinate_pdf(grid, d), color="black", lw=1, label="exact law of t")
    right.set(xlabel="t = sqrt(d) (R u)_i", ylabel="density", title="across tokens")
    right.legend(fontsize=7, loc="upper right")
    return axes
