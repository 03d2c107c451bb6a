"""Lesson 07 (optimal slots (Lloyd-Max)): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from turboquant_lab.codebooks import coordinate_pdf, lloyd_max_codebook

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR, axes_or_new

__all__ = [
    "draw_lloyd_max", "draw_mse_vs_bits", "draw_codebook_laws", "NORMAL_COLOR", "OUTLIER_COLOR",
    "ROTATED_COLOR",
]


def _l07_law_name(d) -> str:
    return "N(0, 1) law (large d)" if d is None else f"exact law, d = {d}"


def draw_lloyd_max(axes, state):
    """Lesson 07: one state of the Lloyd-Max iteration, and the MSE so far.

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
        Left: the density of the scaled coordinate ``t = sqrt(d) u_1`` with the
        cells (dashed boundaries) and the centroids (dots) of this state, and
        the converged Lloyd-Max centroids as grey ticks; right: the MSE of
        every iteration up to this one, against the best uniform codebook and
        the converged Lloyd-Max MSE. ``None`` makes a new (9, 3) figure.
    state : LloydMaxState
        From :func:`turboquant_lab.course.compute_lloyd_max_state`.

    Returns
    -------
    axes : (Axes, Axes)
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [3, 2]})
    ax, ax_mse = axes
    span = 4.0 if state.d is None else min(4.0, float(np.sqrt(state.d)))
    t = np.linspace(-span, span, 801)
    f = coordinate_pdf(t, state.d)
    top = float(f.max())
    ax.fill_between(t, f, color=ROTATED_COLOR, alpha=0.25, lw=0)
    ax.plot(t, f, color=ROTATED_COLOR, lw=1.5, label="density of t")
    for b in state.boundaries:
        if -span <= b <= span:
            ax.axvline(b, color=LEVEL_COLOR, ls="--", lw=0.8)
    ax.plot(state.optimal_centroids, np.full(state.levels, -0.06 * top), "|", color="black",
            ms=9, mew=1.5, label="converged Lloyd-Max")
    inside = np.abs(state.centroids) <= span
    ax.plot(state.centroids[inside], coordinate_pdf(state.centroids[inside], state.d), "o",
            color=NORMAL_COLOR, ms=6, label="centroids (this iteration)")
    ax.set(xlim=(-span, span), ylim=(-0.12 * top, 1.15 * top),
           xlabel="scaled coordinate t = sqrt(d) u", ylabel="density",
           title=f"{state.bits} bits, {_l07_law_name(state.d)}: iteration {state.iteration}")
    ax.legend(loc="upper left", fontsize=7, frameon=False)

    its = np.arange(state.iteration + 1)
    ax_mse.plot(its, state.mse_history, "o-", color=NORMAL_COLOR, ms=3, label="Lloyd iterations")
    ax_mse.axhline(state.uniform_mse, color=OUTLIER_COLOR, ls=":", label="best uniform")
    ax_mse.axhline(state.optimal_mse, color="black", ls="--", lw=1, label="Lloyd-Max optimum")
    lo = min(state.optimal_mse, state.uniform_mse)
    hi = max(state.start_mse, state.uniform_mse)
    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * hi
    ax_mse.set(xlim=(-0.5, state.n_iter + 0.5), ylim=(lo - pad, hi + pad), xlabel="iteration",
               ylabel="MSE per coordinate", title=f"MSE now {state.mse:.5f}")
    ax_mse.legend(loc="upper right", fontsize=7, frameon=False)
    ax_mse.figure.tight_layout()
    return ax, ax_mse


def draw_mse_vs_bits(ax, table, normalized=False):
    """Lesson 07: MSE against bits, every quantizer and both bounds.

    Parameters
    ----------
    ax : matplotlib Axes or None
    table : dict
        ``{"bits": (k,) ints, label: MSE values, ...}``; a value list shorter
        than ``bits`` belongs to the first bits (e.g. published values for 1-4).
        Labels that start with ``"measured"`` are drawn as crosses, labels that
        start with ``"published"`` as open squares, the bounds (labels that
        contain ``"bound"``) as dashed lines, the rest as lines with dots.
    normalized : bool
        Plot ``MSE * 4**bits`` on a linear axis (the lower bound becomes the
        line at 1, the upper bound the line at sqrt(3) pi / 2) instead of the
        MSE on a log axis.

    Returns
    -------
    ax : Axes
    """
    ax = axes_or_new(ax, figsize=(7, 3.5))
    bits = np.asarray(table["bits"])
    for label, values in table.items():
        if label == "bits":
            continue
        values = np.asarray(values, dtype=np.float64)
        b = bits[: values.shape[0]]
        y = values * 4.0 ** b if normalized else values
        if label.startswith("measured"):
            ax.plot(b, y, "x", ms=8, mew=2, label=label)
        elif label.startswith("published"):
            ax.plot(b, y, "s", mfc="none", ms=9, label=label)
        elif "bound" in label:
            ax.plot(b, y, "--", lw=1.2, label=label)
        else:
            ax.plot(b, y, "o-", ms=4, label=label)
    if normalized:
        ax.set(ylabel="MSE x 4^bits", title="The same, times 4^bits")
    else:
        ax.set_yscale("log")
        ax.set(ylabel="MSE  E||u - u_hat||^2", title="Unit vectors: error against bits")
    ax.set(xticks=bits, xlabel="bits per coordinate")
    ax.legend(fontsize=7, frameon=False)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def draw_codebook_laws(ax, bits: int, d: int):
    """Lesson 07: the exact law at ``d`` and N(0, 1), with the Lloyd-Max centroids of each.

    Both densities are of the scaled coordinate ``t = sqrt(d) u_1``; the
    centroids of ``lloyd_max_codebook(bits, d)`` and ``lloyd_max_codebook(bits)``
    are drawn as ticks below the curves. ``ax=None`` makes a new (8, 3) figure.
    """
    ax = axes_or_new(ax, (8, 3))
    exact, gauss = lloyd_max_codebook(bits, d), lloyd_max_codebook(bits)
    t = np.linspace(-4, 4, 801)
    ax.plot(t, coordinate_pdf(t, d), label=f"exact law, d = {d}")
    ax.plot(t, coordinate_pdf(t), "--", label="N(0, 1)")
    n = len(exact.centroids)
    ax.plot(exact.centroids, np.full(n, -0.02), "|", ms=14, mew=2, label=f"exact-law centroids (d = {d})")
    ax.plot(gauss.centroids, np.full(n, -0.05), "|", ms=14, mew=2, label="Gaussian centroids")
    ax.set(xlabel="scaled coordinate t = sqrt(d) u", ylabel="density",
           title=f"{bits} bits: Lloyd-Max codebooks for the two laws")
    ax.legend(fontsize=7, frameon=False)
    return ax
