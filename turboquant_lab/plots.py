"""Matplotlib figures the lessons reuse.

Each ``draw_*`` function draws on the ``matplotlib.axes.Axes`` it is given
(or creates a figure when none is) and returns what it drew on; it computes
nothing that a lesson or a test would want to check: the numbers come from
the library or from a ``compute_*`` function in :mod:`turboquant_lab.widgets`.
Every axis is labelled, with units where the quantity has one.

The file is organised in one section per lesson; keep each lesson's figures
inside its section.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

# Colours shared by all lessons: outlier channels are red, as in the essay.
NORMAL_COLOR = "#4c72b0"
OUTLIER_COLOR = "#d62728"
ROTATED_COLOR = "#55a868"
LEVEL_COLOR = "#7f7f7f"


def _axes(ax, figsize=(7, 3)):
    """Return ``ax`` or a new axes of a new figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


# ---- lessons 01-02 ----------------------------------------------------------
RECON_COLOR = "#dd8452"  # reconstructed values (lessons 01-02)


def _draw_ruler_levels(ax, levels, label_codes: bool):
    """Horizontal grey lines at the quantizer's levels; code numbers at the right edge."""
    levels = np.asarray(levels)
    alpha = 0.8 if len(levels) <= 16 else 0.35
    for k, level in enumerate(levels):
        ax.axhline(level, color=LEVEL_COLOR, lw=0.8, alpha=alpha, zorder=0,
                   label="levels" if k == 0 else None)
        if label_codes:
            ax.annotate(f"code {k}", xy=(1.0, level), xycoords=("axes fraction", "data"),
                        xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=7, color=LEVEL_COLOR, annotation_clip=False)


def draw_ruler(ax, result):
    """The ruler of lesson 01: values, the ``2**bits`` levels, and where each value lands.

    Parameters
    ----------
    ax : matplotlib Axes or None
        Where to draw (a new figure when None).
    result : RulerResult
        From :func:`turboquant_lab.widgets.compute_ruler`.

    Returns
    -------
    ax : matplotlib Axes
        Coordinate index on x, value on y; levels as grey horizontal lines,
        values as blue dots, reconstructions as orange diamonds, an arrow from
        each value to its level.
    """
    ax = _axes(ax, figsize=(8, 3))
    n = len(result.x)
    idx = np.arange(n)
    _draw_ruler_levels(ax, result.levels, label_codes=result.bits <= 3)
    for i in idx:
        if abs(result.x_hat[i] - result.x[i]) > 1e-3 * max(result.scale, 1e-12):
            ax.annotate("", xy=(i, result.x_hat[i]), xytext=(i, result.x[i]),
                        arrowprops=dict(arrowstyle="->", color=RECON_COLOR, lw=1.0))
    ax.plot(idx, result.x, "o", color=NORMAL_COLOR, ms=6, label="value x", zorder=3)
    ax.plot(idx, result.x_hat, "D", color=RECON_COLOR, ms=5, mfc="none", mew=1.5,
            label="reconstruction x_hat", zorder=4)
    ax.set_xticks(idx)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set(xlabel="coordinate index i", ylabel="value",
           title=f"{result.bits} bits = {len(result.levels)} levels, slot width {result.scale:.3g}")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    return ax


def draw_uniform_error_vs_bits(ax, table, label="measured"):
    """Measured MSE against bits on a log axis, with the scale^2/12 model and a 4^-b line.

    Parameters
    ----------
    ax : matplotlib Axes or None
    table : UniformErrorTable
        From :func:`turboquant_lab.widgets.compute_uniform_error_vs_bits`.
    label : str
        Legend text of the measured curve.

    Returns
    -------
    ax : matplotlib Axes
    """
    ax = _axes(ax, figsize=(6, 3))
    bits = np.asarray(table.bits)
    ax.semilogy(bits, table.mse, "o-", color=NORMAL_COLOR, label=label, zorder=3)
    ax.semilogy(bits, table.model_mse, "x--", color=RECON_COLOR, label="model: mean of scale²/12")
    anchor = table.mse[-1] * 4.0 ** bits[-1]
    ax.semilogy(bits, anchor * 4.0 ** -bits, ":", color=LEVEL_COLOR,
                label="slope 4^-b (through the last point)")
    ax.set(xlabel="bits per value b", ylabel="MSE (value²)", xticks=bits,
           title="each extra bit divides the MSE by about 4")
    ax.legend(fontsize=7)
    return ax


def draw_outlier_bars(axes, result):
    """The essay's two bar charts: the original vector and its naive quantization.

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
        (original, quantized); a new 1x2 figure when None.
    result : OutlierDemo
        From :func:`turboquant_lab.widgets.compute_outlier_demo`.

    Returns
    -------
    axes : pair of matplotlib Axes
        Channel on x, value on y (same y scale for both); outlier channels
        red; the quantizer's levels as grey lines on the right-hand chart.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
    ax0, ax1 = axes
    d = len(result.x)
    colors = np.full(d, NORMAL_COLOR, dtype=object)
    colors[result.outliers] = OUTLIER_COLOR
    idx = np.arange(d)
    ax0.bar(idx, result.x, color=colors, width=0.8)
    ax1.bar(idx, result.x_hat, color=colors, width=0.8)
    _draw_ruler_levels(ax1, result.levels, label_codes=False)
    lo = min(result.x.min(), result.x_hat.min())
    hi = max(result.x.max(), result.x_hat.max())
    pad = 0.05 * (hi - lo)
    for ax, title in [(ax0, "original vector (before quantization)"),
                      (ax1, f"quantized vector ({result.bits} bits = {2 ** result.bits} levels)")]:
        ax.axhline(0, color="black", lw=0.5)
        ax.set(xlabel="channel", title=title, xlim=(-1, d), ylim=(lo - pad, hi + pad))
        ax.title.set_fontsize(9)
    ax0.set_ylabel("value")
    from matplotlib.patches import Patch

    ax0.legend(handles=[Patch(color=OUTLIER_COLOR, label="outlier channel"),
                        Patch(color=NORMAL_COLOR, label="normal channel")],
               fontsize=7, loc="best")
    return axes


def draw_slot_counts(ax, result):
    """How many normal and outlier coordinates each level (slot) of the quantizer holds.

    Parameters
    ----------
    ax : matplotlib Axes or None
    result : OutlierDemo
        From :func:`turboquant_lab.widgets.compute_outlier_demo`.

    Returns
    -------
    ax : matplotlib Axes
        Slot (code) on x, number of coordinates on y, stacked: normal channels
        blue, outlier channels red, each column labelled "normal + outlier"
        (up to 16 slots); an empty column is a wasted slot.
    """
    ax = _axes(ax, figsize=(6, 3))
    codes = np.arange(len(result.slot_counts_normal))
    ax.bar(codes, result.slot_counts_normal, color=NORMAL_COLOR, label="normal channels")
    ax.bar(codes, result.slot_counts_outlier, bottom=result.slot_counts_normal,
           color=OUTLIER_COLOR, label="outlier channels")
    if len(codes) <= 16:
        ax.set_xticks(codes)
        for k, (n, o) in enumerate(zip(result.slot_counts_normal, result.slot_counts_outlier)):
            ax.annotate(f"{n} + {o}" if n + o else "empty", xy=(k, n + o), xytext=(0, 2),
                        textcoords="offset points", ha="center", fontsize=7)
        ax.margins(y=0.15)
    ax.set(xlabel="slot (code)", ylabel="number of coordinates",
           title=f"{result.bits} bits: coordinates per slot (normal + outlier)")
    ax.legend(fontsize=7)
    return ax
# ---- end lessons 01-02 ------------------------------------------------------

# ---- lessons 03-04 ----------------------------------------------------------
def draw_rotation(axes, result, x=None, outliers=None):
    """Coordinate bar charts before and after a rotation (the essay's Rotate figure).

    Parameters
    ----------
    axes : pair of Axes, or None
        Left: ``x`` (outlier channels red); right: ``R x``. Share the y axis to
        see the energy spread out. ``None`` makes a new figure.
    result : RotationResult or None
        From :func:`turboquant_lab.widgets.compute_rotation_demo`; ``None`` draws
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
    ax = _axes(ax)
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
    ax = _axes(ax)
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


def draw_coordinate_histogram(ax, h, bins: int = 60):
    """Histogram of a rotated coordinate with the N(0, 1/d) and exact (scaled Beta) densities."""
    ax = _axes(ax)
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
    ax = _axes(ax, figsize=(5, 3))
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
# ---- end lessons 03-04 ------------------------------------------------------

# ---- lessons 05-06 ----------------------------------------------------------
PLUS_COLOR = "#4c72b0"    # +1 entries of a Hadamard matrix, a + b lines of a butterfly
MINUS_COLOR = "#d62728"   # -1 entries, a - b lines


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
    ax = _axes(ax, (8, 3.6))
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
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    ax = _axes(ax, (3, 3))
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


def draw_scaling(ax, timings):
    """Dense product vs FWHT, time per vector on log-log axes, with d^2 and d log d slopes.

    ``timings`` is the dict of :func:`turboquant_lab.widgets.time_dense_vs_fwht`.
    The reference lines go through the last measured point of each curve.
    """
    ax = _axes(ax, (7, 3.5))
    d = np.asarray(timings["dims"], dtype=float)
    dense = np.asarray(timings["dense"]) * 1e6
    fast = np.asarray(timings["fwht"]) * 1e6
    ax.loglog(d, dense, "o-", color=OUTLIER_COLOR, label="dense H @ x")
    ax.loglog(d, fast, "s-", color=ROTATED_COLOR, label="fwht (library)")
    ax.loglog(d, dense[-1] * (d / d[-1]) ** 2, ":", color=OUTLIER_COLOR, label=r"slope $d^2$")
    ax.loglog(d, fast[-1] * (d * np.log2(d)) / (d[-1] * np.log2(d[-1])), ":", color=ROTATED_COLOR,
              label=r"slope $d \log_2 d$")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("dimension d")
    ax.set_ylabel("time per vector (µs)")
    ax.set_title("dense product vs fast WHT (timed on this machine)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def draw_sign_bars(ax, result):
    """Bars of a transformed unit vector (a ``SignDemo``), with the codebook's levels as lines."""
    ax = _axes(ax, (8, 3))
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
    from .codebooks import unit_coordinate_pdf

    ax = _axes(ax, (4, 3))
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
        ax.set_title(f"{mode}: {same}/{d} codes agree", fontsize=10)
        ax.set_xticks(idx)
        ax.set_xlabel("coordinate index")
        ax.axhline(0, color="black", lw=0.5)
    top = max(float(np.max(np.abs(np.concatenate(result["rotated"][m])))) for m in modes)
    np.ravel(axes)[0].set_ylim(-1.15 * top, 1.3 * top)
    np.ravel(axes)[0].set_ylabel("rotated value (unit vector)")
    np.ravel(axes)[0].legend(fontsize=8, loc="lower left")
    return axes
# ---- end lessons 05-06 ------------------------------------------------------

# ---- lessons 07-08 ----------------------------------------------------------
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
        From :func:`turboquant_lab.widgets.compute_lloyd_max_state`.

    Returns
    -------
    axes : (Axes, Axes)
    """
    from .codebooks import coordinate_pdf

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
    ax = _axes(ax, figsize=(7, 3.5))
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
        From :func:`turboquant_lab.widgets.compute_pipeline_comparison`.

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


def draw_codebook_laws(ax, bits: int, d: int):
    """Lesson 07: the exact law at ``d`` and N(0, 1), with the Lloyd-Max centroids of each.

    Both densities are of the scaled coordinate ``t = sqrt(d) u_1``; the
    centroids of ``lloyd_max_codebook(bits, d)`` and ``lloyd_max_codebook(bits)``
    are drawn as ticks below the curves. ``ax=None`` makes a new (8, 3) figure.
    """
    from .codebooks import coordinate_pdf, lloyd_max_codebook

    ax = _axes(ax, (8, 3))
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


# ---- end lessons 07-08 ------------------------------------------------------

# ---- lessons 09-11 ----------------------------------------------------------
# -- lesson 09: the GPU kernel --------------------------------------------------
#: Colours of the four kinds of butterfly stage in the GPU kernel (lesson 09).
KERNEL_STAGE_COLORS = {
    "registers": "#4c72b0",
    "warp shuffle": "#dd8452",
    "shared memory": "#c44e52",
    "registers (chunks)": "#8c564b",
}


def draw_kernel_stage(ax, state):
    """Lesson 09: the register file of one row after a stage of the GPU kernel.

    One column per thread of the row (grouped by warp), one row per register
    (``x[c][i]``, chunk ``c`` and element ``i`` of a vector load); each cell
    is the element the thread holds there (its index), coloured by its value
    after the stage (green positive, purple negative, white zero). The lines join
    the pairs of this stage, coloured by where they meet: registers, a warp
    shuffle or shared memory. ``state``: a ``KernelStageState``
    (``widgets.compute_kernel_stage``).
    """
    from matplotlib.collections import LineCollection

    ax = _axes(ax, (8, 3.8))
    cfg = state.config
    T, S = cfg.threads_per_row, cfg.elems
    grid = np.zeros((S, T))
    grid[state.slot, state.owner] = state.values
    labels = T <= 16  # element numbers in the cells (too small beyond 16 threads)
    # with labels, a colour range twice the largest value keeps the cells light enough to read
    vmax = state.vmax * (2 if labels else 1)
    ax.imshow(grid, cmap="PRGn", vmin=-vmax, vmax=vmax, aspect="auto",
              interpolation="nearest", extent=(-0.5, T - 0.5, S - 0.5, -0.5))
    if labels:
        size = 8 if T <= 8 else 6
        for e in range(cfg.d):
            ax.text(state.owner[e], state.slot[e], str(e), ha="center", va="center",
                    fontsize=size, color="black")
    if len(state.pairs):
        a, b = state.pairs[:, 0], state.pairs[:, 1]
        xa, ya = state.owner[a].astype(float), state.slot[a].astype(float)
        xb, yb = state.owner[b].astype(float), state.slot[b].astype(float)
        same_col = xa == xb  # pairs inside one thread: a line beside the labels
        gap = 0.25 if labels else 0.0  # keep the labels readable
        side = 0.22 + 0.06 * (state.slot[a] % 4)  # side by side when they overlap
        xa, xb = np.where(same_col, xa + side, xa + gap), np.where(same_col, xb + side, xb - gap)
        lift = np.where(same_col, 0.0, ((state.owner[a] % 4) - 1.5) * 0.09)  # overlapping spans
        ya = np.where(same_col, ya + gap / 2, ya + lift)
        yb = np.where(same_col, yb - gap / 2, yb + lift)
        segs = np.stack([np.stack([xa, ya], 1), np.stack([xb, yb], 1)], axis=1)
        import matplotlib.patheffects as pe

        thin = len(segs) > 64
        lines = LineCollection(segs, colors=KERNEL_STAGE_COLORS[state.kind],
                               linewidths=0.6 if thin else 2.0)
        if not thin:  # a white edge keeps the lines visible on any cell colour
            lines.set_path_effects([pe.withStroke(linewidth=4, foreground="white")])
        ax.add_collection(lines)
    for w in range(1, cfg.warps_per_row):
        ax.axvline(w * cfg.row_lanes - 0.5, color="black", lw=2.5)
    for c in range(1, cfg.chunks):
        ax.axhline(c * cfg.vec - 0.5, color="#777777", lw=1, ls=":")
    step = max(1, T // 16)
    ax.set_xticks(range(0, T, step))
    ax.set_xlabel(f"thread of the row (warps of {cfg.warp_size} lanes, separated by thick lines)")
    ax.set_yticks(range(S), [f"c{s // cfg.vec} i{s % cfg.vec}" for s in range(S)],
                  fontsize=7 if S > 8 else 9)
    ax.set_ylabel("register x[c][i]")
    title = "input" if state.stage == 0 else \
        f"stage {state.stage}/{state.n_stages}: stride {state.stride}, {state.kind}"
    ax.set_title(f"d = {cfg.d}, {title}", fontsize=10,
                 color=KERNEL_STAGE_COLORS.get(state.kind, "black"))
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(S - 0.5, -0.5)
    return ax


def draw_kernel_arithmetic(ax, result):
    """Lesson 09: additions per byte of the FWHT against each GPU's balance point.

    ``result`` from ``widgets.compute_kernel_arithmetic``. Below a GPU's
    horizontal line the transform is memory bound on that GPU.
    """
    ax = _axes(ax, (7, 3.2))
    dims = result["dims"]
    ax.plot(dims, result["adds_per_byte"], "o-", color=NORMAL_COLOR,
            label="FWHT, float32: log2(d) / 8 additions per byte")
    styles = ["--", "-.", ":"]
    for k, (name, bal) in enumerate(result["balance"].items()):
        ax.axhline(bal, color=LEVEL_COLOR, ls=styles[k % 3], lw=1.5)
        ax.text(dims[0], bal * 1.08, f"{name}: {bal:.1f} additions per byte", fontsize=8,
                color="#444444")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, max(result["balance"].values()) * 1.35)
    ax.set_xlabel("d (vector length)")
    ax.set_ylabel("additions per byte moved")
    ax.set_title("the transform does far fewer additions per byte than a GPU can", fontsize=10)
    ax.legend(loc="center right", fontsize=8)
    return ax


def draw_gpu_timings(ax, result):
    """Lesson 09: bandwidth (GB/s, one read + one write) of the kernel, a copy, a matrix
    product on the GPU and NumPy's fwht on the CPU, per d (``widgets.time_gpu_fwht``)."""
    ax = _axes(ax, (8, 3.2))
    dims = result["dims"]
    names = [("copy", "cupy.copyto", LEVEL_COLOR), ("kernel", "FWHT kernel", NORMAL_COLOR),
             ("matmul", "CuPy x @ H", OUTLIER_COLOR), ("numpy", "NumPy fwht (CPU)", ROTATED_COLOR)]
    width = 0.2
    pos = np.arange(len(dims))
    for k, (key, label, color) in enumerate(names):
        ax.bar(pos + (k - 1.5) * width, result["nbytes"] / result[key] / 1e9, width,
               label=label, color=color)
    ax.set_xticks(pos, [f"d = {d}" for d in dims])
    ax.set_yscale("log")
    ax.set_ylabel("GB/s (read + write)")
    ax.set_title("higher is faster; the kernel should reach the copy", fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    return ax


# -- end lesson 09 --------------------------------------------------------------
# -- lessons 10-11: inner products and QJL, real KV caches --------------------
EXACT_COLOR = "#333333"    # exact scores / weights (lessons 10-11)
MSE_COLOR = NORMAL_COLOR   # TurboQuantMSE
PROD_COLOR = "#8172b2"     # TurboQuantProd (MSE + QJL)
UNIFORM_COLOR = "#dd8452"  # naive uniform


def draw_inner_product_stats(axes, stats):
    """Lesson 10: bias (left) and mean squared error (right) of inner-product estimates against bits.

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
    stats : InnerProductStats
        From :func:`turboquant_lab.widgets.compute_inner_product_stats`.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    ax, ax2 = axes
    b = stats.bits
    ax.axhline(1.0, color=LEVEL_COLOR, lw=0.8, ls=":")
    ax.plot(b, stats.one_minus_D, "--", color=MSE_COLOR, alpha=0.6, label="1 - D(b) (predicted)")
    ax.plot(b, stats.mse_ratio, "o", color=MSE_COLOR, label="MSE quantizer (measured)")
    ax.plot(b, stats.prod_ratio, "s", color=PROD_COLOR, label="prod quantizer (measured)")
    ax.set(xlabel="total bits per coordinate", ylabel="mean estimate / mean <x, y>",
           title="bias: is the estimate shrunk?", xticks=b)
    ax.legend(fontsize=8, loc="lower right")
    ax2.semilogy(b, stats.mse_sq_error, "o-", color=MSE_COLOR, label="MSE quantizer")
    ax2.semilogy(b, stats.prod_sq_error, "s-", color=PROD_COLOR, label="prod quantizer")
    ax2.semilogy(b, stats.prod_variance_bound, "--", color=PROD_COLOR, alpha=0.6,
                 label="bound pi/(2d) D(b-1)")
    ax2.semilogy(b, stats.paper_bound, ":", color=EXACT_COLOR, label="paper: sqrt(3) pi^2 / (d 4^b)")
    ax2.set(xlabel="total bits per coordinate", ylabel="E (estimate - <x, y>)^2",
            title=f"spread (unit vectors, d = {stats.d})", xticks=b)
    ax2.legend(fontsize=8)
    return axes


def draw_attention_demo(axes, demo):
    """Lesson 10: estimated vs exact scores (left) and the heaviest attention weights (right).

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
    demo : AttentionDemo
        From :func:`turboquant_lab.widgets.compute_attention_demo`.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    ax, ax2 = axes
    s = demo.scores
    lim = [s.min(), s.max()]
    ax.scatter(s, demo.scores_prod, s=4, color=PROD_COLOR, alpha=0.35,
               label=f"prod estimate (slope {demo.slope_prod:.2f})")
    ax.scatter(s, demo.scores_mse, s=4, color=MSE_COLOR, alpha=0.5,
               label=f"MSE keys (slope {demo.slope_mse:.2f})")
    ax.plot(lim, lim, color=EXACT_COLOR, lw=1, label="exact (slope 1)")
    for slope, color in ((demo.slope_mse, MSE_COLOR), (demo.slope_prod, PROD_COLOR)):
        ax.plot(lim, [slope * v for v in lim], color=color, lw=1.2, ls="--")
    ax.set(xlabel="exact score <q, k>", ylabel="estimated score",
           title=f"{len(s)} keys, {demo.bits} code bits per coordinate")
    ax.legend(fontsize=8, markerscale=3)
    top = demo.top
    x = np.arange(len(top))
    w = 0.27
    ax2.bar(x - w, demo.weights[top], w, color=EXACT_COLOR, label="exact")
    ax2.bar(x, demo.weights_mse[top], w, color=MSE_COLOR, label="MSE keys")
    ax2.bar(x + w, demo.weights_prod[top], w, color=PROD_COLOR, label="prod scores")
    ax2.set_xticks(x, [str(i) for i in top], fontsize=7, rotation=90)
    ax2.set(xlabel="key index (heaviest exact weights first)", ylabel="attention weight",
            title="softmax weights")
    ax2.legend(fontsize=8)
    return axes


def draw_channel_profile(ax, rms, title="channel RMS of the keys"):
    """Lesson 11: an image of the RMS of each channel, one row per (layer, head).

    Parameters
    ----------
    ax : matplotlib Axes or None
    rms : (layers, heads, d) ndarray
        From :func:`turboquant_lab.widgets.channel_rms`.
    """
    ax = _axes(ax, figsize=(8, 4))
    layers, heads, d = rms.shape
    im = ax.imshow(rms.reshape(layers * heads, d), aspect="auto", cmap="magma",
                   interpolation="nearest")
    for layer in range(1, layers):
        ax.axhline(layer * heads - 0.5, color="white", lw=0.8)
    ax.set_yticks([layer * heads + heads / 2 - 0.5 for layer in range(layers)],
                  [f"layer {layer}" for layer in range(layers)])
    ax.set(xlabel="channel (coordinate of the head)", title=title)
    ax.figure.colorbar(im, ax=ax, label="RMS over tokens")
    return ax


def draw_real_head(axes, r):
    """Lesson 11's app: channel RMS before/after rotation (left), one query's attention (right).

    Parameters
    ----------
    axes : pair of matplotlib Axes or None
    r : RealHead
        From :func:`turboquant_lab.widgets.compute_real_head`.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    ax, ax2 = axes
    c = np.arange(len(r.rms))
    ax.bar(c - 0.2, r.rms, 0.4, color=OUTLIER_COLOR, label="keys")
    ax.bar(c + 0.2, r.rms_rotated, 0.4, color=ROTATED_COLOR, label="after rotation")
    ax.plot(c, np.abs(r.mean), "k.", ms=4, label="|channel mean|")
    ax.set(xlabel="channel", ylabel="RMS over tokens",
           title=f"layer {r.layer}, head {r.head}")
    ax.legend(fontsize=8)
    top = np.argsort(-r.weights, kind="stable")[:15]
    x = np.arange(len(top))
    w = 0.27
    ax2.bar(x - w, r.weights[top], w, color=EXACT_COLOR, label="exact")
    ax2.bar(x, r.weights_tq[top], w, color=MSE_COLOR, label=f"TurboQuant {r.bits}-bit")
    ax2.bar(x + w, r.weights_uniform[top], w, color=UNIFORM_COLOR, label=f"uniform {r.bits}-bit")
    ax2.set_xticks(x, [f"{r.tokens[i]} ({i})" for i in top], fontsize=7, rotation=60, ha="right")
    ax2.set(xlabel="key token (position)", ylabel="attention weight",
            title=f"query token {r.query} ({r.tokens[r.query]!r}): 15 heaviest keys")
    ax2.legend(fontsize=8)
    return axes


def draw_error_vs_storage(ax, rows, metric="output_rel_error", ylabel="attention output error"):
    """Lesson 11: an error figure against bits per coordinate (side information included), per method.

    Parameters
    ----------
    ax : matplotlib Axes or None
    rows : list of dict
        From :func:`turboquant_lab.widgets.compare_kv_quantizers`.
    """
    ax = _axes(ax, figsize=(6, 3.2))
    colors = {"turboquant": MSE_COLOR, "prod": PROD_COLOR, "uniform": UNIFORM_COLOR}
    names = {"turboquant": "TurboQuant (MSE)", "prod": "TurboQuant prod", "uniform": "naive uniform"}
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["bits_per_coordinate"])
        x = [r["bits_per_coordinate"] for r in rs]
        y = [r[metric] for r in rs]
        ax.semilogy(x, y, "o-", color=colors.get(method), label=names.get(method, method))
        for r, xi, yi in zip(rs, x, y):
            ax.annotate(f"{r['bits']}b", (xi, yi), xytext=(3, 3), textcoords="offset points",
                        fontsize=7)
    ax.set(xlabel="bits per coordinate (codes + side information)", ylabel=ylabel)
    ax.margins(x=0.08, y=0.12)
    ax.legend(fontsize=8)
    return ax


# ---- end lessons 09-11 ------------------------------------------------------
