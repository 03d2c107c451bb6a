"""Lesson 05 (the Walsh-Hadamard transform): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from .._ui import (
    LEVEL_COLOR,
    MINUS_COLOR,
    NORMAL_COLOR,
    OUTLIER_COLOR,
    PLUS_COLOR,
    ROTATED_COLOR,
    axes_or_new,
)

__all__ = ["draw_butterfly", "draw_hadamard_grid", "draw_scaling", "OUTLIER_COLOR", "ROTATED_COLOR"]


def _fmt_value(v) -> str:
    """Short label for a node value: integers without a decimal point."""
    v = float(v)
    if v == 0:
        return "0"
    if v == round(v) and abs(v) < 1e6:
        return str(int(round(v)))
    return f"{v:.2g}"


def draw_butterfly(ax, state):
    """The butterfly diagram up to ``state.stage`` (a ``ButterflyState`` from ``compute_butterfly``).

    Columns are stages (input, after stage 1, ...), rows are coordinates. The
    pairs of the latest stage are drawn in colour (blue: ``a + b``, red dashed:
    ``a - b``), earlier stages in grey; each node shows its value and is
    filled when nonzero. Stages not run yet are faint empty nodes.
    """
    ax = axes_or_new(ax, (8, 3.6))
    d, n = state.d, state.n_stages
    for k in range(1, state.stage + 1):
        h = 1 << (k - 1)
        latest = k == state.stage
        for start in range(0, d, 2 * h):
            for i in range(start, start + h):
                j = i + h
                for src in (i, j):
                    ax.plot([k - 1, k], [src, i], color=PLUS_COLOR if latest else LEVEL_COLOR,
                            lw=1.6 if latest else 0.8, alpha=1 if latest else 0.5, zorder=1)
                    ax.plot([k - 1, k], [src, j], color=MINUS_COLOR if latest else LEVEL_COLOR,
                            ls="--" if latest else "-", lw=1.6 if latest else 0.8,
                            alpha=1 if latest else 0.5, zorder=1)
    for k in range(n + 1):
        for i in range(d):
            if k <= state.stage:
                v = state.history[k][i]
                face = "#fdd49e" if v != 0 else "white"
                ax.text(k, i, _fmt_value(v), ha="center", va="center", fontsize=9, zorder=3,
                        bbox=dict(boxstyle="round,pad=0.3", fc=face, ec="black", lw=0.8))
            else:
                ax.plot(k, i, "o", ms=14, mfc="white", mec="#cccccc", zorder=2)
    ax.set_xlim(-0.4, n + 0.4)
    ax.set_ylim(d - 0.4, -0.6)
    ax.set_xticks(range(n + 1), ["input"] + [f"stage {k}\n(stride {1 << (k - 1)})" for k in range(1, n + 1)])
    ax.set_yticks(range(d))
    ax.set_ylabel("coordinate index")
    ax.set_title(f"after {state.stage} of {n} stages: {state.nonzero} of {d} coordinates nonzero "
                 f"(blue: a + b, red: a - b)", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def draw_hadamard_grid(ax, H, title=None, annotate=None, legend=True):
    """A +1/-1 matrix as a two-colour grid (blue +1, red -1), with a legend.

    ``annotate`` writes + and - in the cells (default: when the matrix is at most 8 x 8).
    """
    ax = axes_or_new(ax, (3, 3))
    H = np.asarray(H)
    n = H.shape[0]
    ax.imshow(H, cmap=ListedColormap([MINUS_COLOR, PLUS_COLOR]), vmin=-1, vmax=1,
              interpolation="nearest")
    if annotate if annotate is not None else n <= 8:
        for i in range(n):
            for j in range(H.shape[1]):
                ax.text(j, i, "+" if H[i, j] > 0 else "\u2212", ha="center", va="center",
                        color="white", fontsize=10 if n <= 4 else 8)
    step = max(1, n // 8)
    ax.set_xticks(range(0, H.shape[1], step))
    ax.set_yticks(range(0, n, step))
    ax.set_xlabel("column j")
    ax.set_ylabel("row i")
    ax.set_title(title or f"H{n}", fontsize=10)
    if legend:
        ax.legend(handles=[Patch(color=PLUS_COLOR, label="+1"), Patch(color=MINUS_COLOR, label="\u22121")],
                  loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    return ax


def draw_scaling(ax, timings, butterfly=None):
    """Time per vector of each timed transform on log-log axes, with d^2 and d log d slopes.

    ``timings`` is the dict of :func:`.experiments.time_transforms`. The dotted
    ``d^2`` line goes through the dense product's last timed point, the
    ``d log2 d`` line through the last point of the curve named ``butterfly``
    (by default the first one after "dense").
    """
    ax = axes_or_new(ax, (7, 3.5))
    d = np.asarray(timings["dims"], dtype=float)
    seconds = timings["seconds"]
    names = list(seconds)
    butterfly = butterfly or names[1]
    colors = dict(zip(names, [OUTLIER_COLOR, NORMAL_COLOR, ROTATED_COLOR, LEVEL_COLOR]))
    markers = dict(zip(names, "o^sD"))
    for name in names:
        ax.loglog(d, np.asarray(seconds[name]) * 1e6, marker=markers.get(name, "o"), ls="-",
                  color=colors.get(name), label=name)
    dense = np.asarray(seconds["dense"]) * 1e6
    last = np.flatnonzero(np.isfinite(dense))[-1]
    ax.loglog(d, dense[last] * (d / d[last]) ** 2, ":", color=OUTLIER_COLOR, label=r"slope $d^2$")
    bf = np.asarray(seconds[butterfly]) * 1e6
    ax.loglog(d, bf[-1] * (d * np.log2(d)) / (d[-1] * np.log2(d[-1])), ":", color=colors.get(butterfly),
              label=r"slope $d \log_2 d$")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("dimension d")
    ax.set_ylabel("time per vector (µs)")
    ax.set_title("dense product, butterfly and Kronecker, one core (timed on this machine)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return ax
