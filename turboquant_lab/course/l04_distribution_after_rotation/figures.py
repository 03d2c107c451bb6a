"""Lesson 04 (the distribution after rotation): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import numpy as np

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, axes_or_new

__all__ = ["draw_coordinate_histogram", "draw_gaussian_gap", "NORMAL_COLOR", "OUTLIER_COLOR"]


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
