"""Lesson 09 (the GPU kernel): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.patheffects as pe
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from .._ui import LEVEL_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR, axes_or_new

__all__ = [
    "KERNEL_STAGE_COLORS", "draw_kernel_stage", "draw_kernel_budget", "draw_gpu_timings",
    "NORMAL_COLOR", "OUTLIER_COLOR", "ROTATED_COLOR",
]

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
    (``experiments.compute_kernel_stage``).
    """
    ax = axes_or_new(ax, (8, 3.8))
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


def draw_kernel_budget(axes, rows, compiled_rows=None):
    """Lesson 09: instruction time over memory time per element, one panel per GPU.

    Parameters
    ----------
    axes : sequence of Axes (one per GPU) or None
        ``None`` makes one row of panels.
    rows : list of dict
        From ``experiments.compute_kernel_budget`` (the algorithm's counts): one bar per
        (d, storage format), its height ``ratio`` = busiest resource / memory.
    compiled_rows : list of dict, optional
        The same with the compiled (SASS) counts, drawn as black dots on the bars.

    Below the line at 1 the kernel waits for memory; above it, for its instructions.

    Returns
    -------
    axes : list of Axes
    """
    gpus = list(dict.fromkeys(r["gpu"] for r in rows))
    if axes is None:
        _, axes = plt.subplots(1, len(gpus), figsize=(3.7 * len(gpus), 3.2), sharey=True)
    axes = list(np.atleast_1d(axes))
    dims = sorted({r["d"] for r in rows})
    sizes = sorted({r["itemsize"] for r in rows}, reverse=True)
    width = 0.8 / len(sizes)
    colors = {4: NORMAL_COLOR, 2: ROTATED_COLOR}
    top = max([r["ratio"] for r in rows] + [r["ratio"] for r in (compiled_rows or [])] + [1.0])
    for ax, name in zip(axes, gpus):
        for k, itemsize in enumerate(sizes):
            x = np.arange(len(dims)) + (k - (len(sizes) - 1) / 2) * width
            mine = {r["d"]: r for r in rows if r["gpu"] == name and r["itemsize"] == itemsize}
            ax.bar(x, [mine[d]["ratio"] for d in dims], width, color=colors.get(itemsize, LEVEL_COLOR),
                   label="float32" if itemsize == 4 else "float16")
            if compiled_rows:
                comp = {r["d"]: r for r in compiled_rows if r["gpu"] == name and r["itemsize"] == itemsize}
                ax.plot(x, [comp[d]["ratio"] for d in dims], "o", color="black", ms=4,
                        label="compiled (SASS)" if k == 0 else None)
        ax.axhline(1.0, color=OUTLIER_COLOR, lw=1.2, ls="--")
        ax.set_xticks(np.arange(len(dims)), [f"d = {d}" for d in dims])
        ax.set_ylim(0, 1.15 * top)
        ax.set_title(name, fontsize=10)
    axes[0].set_ylabel("instruction time / memory time")
    axes[0].legend(fontsize=7, loc="upper left")
    axes[-1].text(len(dims) - 0.5, 1.02, "instruction bound above", ha="right", va="bottom",
                  fontsize=7, color=OUTLIER_COLOR)
    return axes


def draw_gpu_timings(ax, result):
    """Lesson 09: bandwidth (GB/s, one read + one write) of the kernel, a copy, a matrix
    product on the GPU and NumPy's fwht on the CPU, per d (``experiments.time_gpu_fwht``)."""
    ax = axes_or_new(ax, (8, 3.2))
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
