"""Lesson 12 (PolarQuant): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own
(the laws' densities it plots come with its arguments).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from .._ui import EXACT_COLOR, LEVEL_COLOR, MSE_COLOR, OUTLIER_COLOR, ROTATED_COLOR, axes_or_new

__all__ = ["draw_pair", "draw_polar_tree", "draw_angle_histogram", "draw_radius_law", "draw_codebooks",
           "draw_error_vs_bits", "POLAR_COLOR", "FULL_DEPTH_COLOR", "FAMILY_STYLE"]

POLAR_COLOR = "#c44e52"        # PolarQuant, the paper's L = 4
FULL_DEPTH_COLOR = "#8c564b"   # PolarQuant with log2 d levels

#: how each family of the comparison is drawn: (colour, marker, line style)
FAMILY_STYLE = {"TurboQuantMSE": (MSE_COLOR, "o", "-"), "PolarQuant, L = 4": (POLAR_COLOR, "s", "-"),
                "PolarQuant, L = log2 d": (FULL_DEPTH_COLOR, "D", "--")}


def draw_pair(ax, a, b):
    """One pair ``(a, b)`` as a point of the plane: its radius and its angle from the first axis."""
    ax = axes_or_new(ax, (3.4, 3.4))
    r = math.hypot(a, b)
    psi = math.atan2(b, a) % (2 * math.pi)
    ax.axhline(0, color=LEVEL_COLOR, lw=0.8)
    ax.axvline(0, color=LEVEL_COLOR, lw=0.8)
    t = np.linspace(0, 2 * math.pi, 200)
    ax.plot(r * np.cos(t), r * np.sin(t), color=LEVEL_COLOR, lw=0.6, ls=":")
    ax.plot([0, a], [0, b], color=MSE_COLOR, lw=2, label=f"radius r = {r:.3g}")
    arc = np.linspace(0, psi, 60)
    ax.plot(0.3 * r * np.cos(arc), 0.3 * r * np.sin(arc), color=OUTLIER_COLOR, lw=1.5,
            label=f"angle ψ = {psi:.3f} rad ({math.degrees(psi):.1f}°)")
    ax.plot([a], [b], "o", color=MSE_COLOR)
    ax.annotate(f"({a:g}, {b:g})", (a, b), xytext=(5, 5), textcoords="offset points")
    lim = 1.25 * r
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="first coordinate a",
           ylabel="second coordinate b", title="one pair in polar coordinates")
    ax.legend(fontsize=8, loc="lower left")
    return ax


def _fmt(v) -> str:
    v = float(v)
    return str(int(round(v))) if v == round(v) and abs(v) < 1e6 else f"{v:.3g}"


def draw_polar_tree(ax, state):
    """The polar tree of one vector up to ``state.level`` (a ``PolarTreeState``).

    Bottom row: the coordinates. Each level above pairs the row below it: a
    node holds the radius of its two children and the edge label the angle
    (degrees) between them. Levels not reached yet are faint empty nodes; the
    numbers that describe the vector at this level (the top row's radii and
    every angle so far) are highlighted.
    """
    ax = axes_or_new(ax, (9, 3.8))
    d, top = state.d, state.levels
    xs = [np.arange(d, dtype=float)]
    for lv in range(1, top + 1):
        prev = xs[-1]
        xs.append(0.5 * (prev[0::2] + prev[1::2]))
    for lv in range(1, top + 1):
        reached = lv <= state.level
        for j, xj in enumerate(xs[lv]):
            for child in (2 * j, 2 * j + 1):
                ax.plot([xj, xs[lv - 1][child]], [lv, lv - 1], color=MSE_COLOR if reached else "#dddddd",
                        lw=1.2 if reached else 0.8, zorder=1)
            if reached:
                psi = state.angles[lv - 1][j]
                ax.annotate(f"{math.degrees(psi):.1f}°", (xj, lv - 0.5), ha="center", va="center",
                            fontsize=8, color=OUTLIER_COLOR, zorder=4,
                            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    for lv in range(top + 1):
        for j, xj in enumerate(xs[lv]):
            if lv <= state.level:
                current = lv == state.level
                face = "#fdd49e" if current else "white"
                ax.text(xj, lv, _fmt(state.radii[lv][j]), ha="center", va="center", fontsize=9, zorder=3,
                        bbox=dict(boxstyle="round,pad=0.3", fc=face, ec="black", lw=0.8))
            else:
                ax.plot(xj, lv, "o", ms=14, mfc="white", mec="#cccccc", zorder=2)
    ax.set_yticks(range(top + 1), ["coordinates"] + [f"level {lv}" for lv in range(1, top + 1)])
    ax.set_xticks([])
    ax.set_xlim(-0.6, d - 0.4)
    ax.set_ylim(-0.5, top + 0.5)
    ax.set_title(f"level {state.level} of {top}: radii in boxes (orange: what is kept), "
                 f"angles in red", fontsize=10)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


def draw_angle_histogram(ax, h):
    """Level-``h.level`` angles against the exact law (black): rotated Gaussian vectors (green), outlier
    KV vectors raw (red) and after the randomized Hadamard (blue); KS distances in the legend."""
    ax = axes_or_new(ax, (6, 3.2))
    ax.stairs(h.gaussian, h.edges, fill=True, color=ROTATED_COLOR, alpha=0.45,
              label=f"Gaussian, rotated (KS {h.ks_gaussian:.3f})")
    ax.stairs(h.before, h.edges, color=OUTLIER_COLOR, lw=1.2, label=f"outliers, raw (KS {h.ks_before:.3f})")
    ax.stairs(h.after, h.edges, color=MSE_COLOR, lw=1.2, label=f"outliers, rotated (KS {h.ks_after:.3f})")
    ax.plot(h.grid, h.pdf, color=EXACT_COLOR, lw=1.5, label="exact law")
    xlabel = "level-1 angle ψ (radians)" if h.level == 1 else f"level-{h.level} angle ψ (radians)"
    ax.set(xlabel=xlabel, ylabel="density", title=f"level {h.level}, d = {h.d}")
    if h.level > 1:
        ax.axvline(math.pi / 4, color=LEVEL_COLOR, lw=0.8, ls=":")
    ax.set_ylim(0, 1.15 * max(h.pdf.max(), h.gaussian.max(), min(h.after.max(), 3 * h.pdf.max())))
    ax.legend(fontsize=7)
    return ax


def draw_radius_law(ax, facts, grid, pdf):
    """The first top radius squared of unit vectors, against its Beta law (``grid``, ``pdf``)."""
    ax = axes_or_new(ax, (5, 3))
    ax.hist(facts.radius_sq, bins=60, density=True, color=ROTATED_COLOR, alpha=0.6,
            label=f"{facts.n} unit vectors")
    ax.plot(grid, pdf, color=EXACT_COLOR, lw=1.5,
            label=f"Beta({facts.beta_a:g}, {facts.beta_b:g})")
    ax.set(xlabel=f"r₁² (first of {facts.d >> facts.levels} radii, squared)", ylabel="density",
           title=f"d = {facts.d}, L = {facts.levels}: the radii split the norm")
    ax.legend(fontsize=8)
    return ax


def draw_codebooks(axes, codebooks, grids, pdfs):
    """One panel per level: the angle law, its Lloyd-Max centroids (dots) and cell boundaries (lines).

    ``codebooks[i]`` is level ``i + 1``'s :class:`~turboquant_lab.codebooks.Codebook`, drawn over
    ``grids[i]``, ``pdfs[i]``.
    """
    if axes is None:
        _, axes = plt.subplots(1, len(codebooks), figsize=(3 * len(codebooks), 2.8))
    axes = np.atleast_1d(axes)
    for level, (ax, cb, grid, pdf) in enumerate(zip(axes, codebooks, grids, pdfs), start=1):
        ax.plot(grid, pdf, color=EXACT_COLOR, lw=1.2)
        for b in cb.boundaries:
            ax.axvline(b, color=LEVEL_COLOR, lw=0.7, ls="--")
        ax.plot(cb.centroids, np.interp(cb.centroids, grid, pdf), "o", color=OUTLIER_COLOR, ms=4)
        ax.set(title=f"level {level}: {cb.bits} bits, chord² {cb.mse:.4f}", xlabel="ψ (radians)")
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("density")
    return axes


def draw_error_vs_bits(ax, rows, metric="key_rel_mse", ylabel="relative MSE of the keys", frontier=None,
                       title=None):
    """An error against stored bits per coordinate, one line per family of codecs (log scale).

    ``rows`` from :func:`~turboquant_lab.course.l12_polarquant.experiments.compare_codecs` (or
    ``unit_direction_rows``); ``frontier`` an optional ``(bpc, error)`` pair drawn as a thin line:
    PolarQuant with ``log2 d`` levels packed in one bit stream, its best allocation at each budget.
    """
    ax = axes_or_new(ax, (6, 3.4))
    for family, (color, marker, ls) in FAMILY_STYLE.items():
        rs = sorted((r for r in rows if r["family"] == family), key=lambda r: r["bits_per_coordinate"])
        if not rs:
            continue
        x = [r["bits_per_coordinate"] for r in rs]
        y = [r[metric] for r in rs]
        ax.semilogy(x, y, marker=marker, ls=ls, color=color, label=family)
        for r, xi, yi in zip(rs, x, y):
            tag = f"{r['setting']}b" if r["method"] == "turboquant" else "".join(map(str, r["setting"]))
            ax.annotate(tag, (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=6, color=color)
    if frontier is not None:
        fx, fy = frontier
        ax.semilogy(fx, fy, color=FULL_DEPTH_COLOR, lw=0.8, alpha=0.7,
                    label="PolarQuant, L = log2 d, best allocation, one bit stream (prediction)")
    ax.set(xlabel="bits per coordinate (everything stored)", ylabel=ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return ax
