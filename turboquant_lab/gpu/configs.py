"""The kernels' dispatch table and constants, and the GPUs the lessons compare.

One line of :data:`FWHT_CONFIGS` per size, ``log2 d`` -> :class:`FwhtConfig`,
is ``fwht_config<LOG_D>`` in ``kernels/fwht_common.cuh``: the launcher
(:mod:`~turboquant_lab.gpu.cuda`) launches from it and the emulation
(:mod:`~turboquant_lab.gpu.emulation`) follows it, so neither depends on the
other. keep in step with turboquant_lab/gpu/kernels/fwht_common.cuh and
turboquant.cu: ``VEC``, ``THREADS_PER_ROW``, ``CHUNKS``, ``ROWS_PER_BLOCK``
per size, :data:`WARP_SIZE` (``TQ_WARP_SIZE``), :data:`MAX_BITS`
(``TQ_MAX_BITS``), the float16 layout (:meth:`FwhtConfig.for_itemsize`,
``fwht_traits<LOG_D, 2>``) and the search grid of the encoder
(:func:`search_grid`, :func:`grid_max_cells`); ``tests/gpu/test_kernels.py``
parses the CUDA files and compares. Nothing here needs CuPy or a GPU.

A :class:`FwhtConfig` with a smaller ``warp_size`` (for instance 4 lanes)
is a *teaching* configuration: ``d = 64`` then shows all four kinds of stage
(lesson 09). The CUDA kernels only exist for the table's configurations.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..validation import check_power_of_two, is_power_of_two

__all__ = [
    "FWHT_CONFIGS",
    "GPU_SPECS",
    "MAX_BITS",
    "MAX_KERNEL_D",
    "STAGE_KINDS",
    "STATUS_NONFINITE",
    "STATUS_NORM16",
    "WARP_SIZE",
    "FwhtConfig",
    "SearchGrid",
    "fwht_config",
    "grid_max_cells",
    "search_grid",
]

WARP_SIZE = 32
"""Threads per warp (``TQ_WARP_SIZE``)."""

MAX_BITS = 8
"""Largest code width of the encode/decode kernels (``TQ_MAX_BITS``)."""

STATUS_NONFINITE = 1
"""Status bit ``TQ_STATUS_NONFINITE``: a kernel saw a NaN or Inf output (FWHT) or norm (encode)."""

STATUS_NORM16 = 0x100
"""Status bit ``TQ_STATUS_NORM16``: the encoder saw a norm at or above 65520 (inf in float16)."""

STAGE_KINDS = ("registers", "warp shuffle", "shared memory", "registers (chunks)")
"""The four kinds of butterfly stage, in the order they run."""


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class FwhtConfig:
    """One line of the kernel's dispatch table, with every derived constant.

    Parameters
    ----------
    log_d : int
        ``d = 2**log_d``.
    vec : int
        Elements per vector load (4: a float4; 2 at ``d = 2``; 8: eight
        float16, the layout :meth:`for_itemsize` gives the float16 kernel).
    threads_per_row : int
        Threads that share one row.
    chunks : int
        Vector loads per thread.
    rows_per_block : int
        Rows per thread block.
    warp_size : int
        Lanes per warp: 32 on every NVIDIA GPU; smaller only to teach.

    Raises
    ------
    ValueError
        When the constants do not fit together (the ``static_assert`` s of
        ``fwht_traits`` in ``fwht_common.cuh``).
    """

    log_d: int
    vec: int
    threads_per_row: int
    chunks: int
    rows_per_block: int
    warp_size: int = WARP_SIZE

    def __post_init__(self):
        _check_config(self)

    @property
    def d(self) -> int:
        return 1 << self.log_d

    @property
    def block_threads(self) -> int:
        return self.rows_per_block * self.threads_per_row

    @property
    def elems(self) -> int:
        """Floats in registers per thread: ``vec * chunks``."""
        return self.vec * self.chunks

    @property
    def row_lanes(self) -> int:
        """Lanes of one warp that hold the same row."""
        return min(self.threads_per_row, self.warp_size)

    @property
    def warps_per_row(self) -> int:
        return self.threads_per_row // self.row_lanes

    @property
    def exchange_groups(self) -> int:
        """Groups of ``warps_per_row`` elements per thread in the shared-memory stage."""
        return self.elems // self.warps_per_row

    @property
    def exchange_floats(self) -> int:
        """Shared memory of the exchange, in floats (0 when a row fits in one warp)."""
        return self.rows_per_block * self.d if self.warps_per_row > 1 else 0

    def stage_plan(self) -> list[tuple[str, int, int]]:
        """``(kind, stride, detail)`` for each of the ``log2 d`` stages, in order.

        ``detail`` is the register index step for register stages, the xor
        mask for shuffles and the warp-index step for shared memory.
        """
        plan = []
        for h in _powers(self.vec):
            plan.append((STAGE_KINDS[0], h, h))
        for m in _powers(self.row_lanes):
            plan.append((STAGE_KINDS[1], self.vec * m, m))
        for h in _powers(self.warps_per_row):
            plan.append((STAGE_KINDS[2], self.vec * self.row_lanes * h, h))
        for h in _powers(self.chunks):
            plan.append((STAGE_KINDS[3], self.vec * self.threads_per_row * h, h))
        return plan

    def for_itemsize(self, itemsize: int) -> FwhtConfig:
        """The layout of the kernel that reads ``itemsize``-byte elements.

        float16 (2 bytes): 16-byte loads of 8 halves, ``vec * 2`` and ``chunks / 2``
        where ``chunks >= 2`` and ``vec = 4`` (``fwht_traits<LOG_D, 2>``); the same
        threads, rows and warps. The transform's result does not depend on the
        layout: the same butterflies run in the same order.

        Examples
        --------
        >>> fwht_config(128).for_itemsize(2)
        FwhtConfig(log_d=7, vec=8, threads_per_row=16, chunks=1, rows_per_block=16, warp_size=32)
        """
        if itemsize == 2 and self.chunks >= 2 and self.vec == 4:
            return FwhtConfig(self.log_d, 8, self.threads_per_row, self.chunks // 2,
                              self.rows_per_block, self.warp_size)
        return self

    def element_index(self) -> np.ndarray:
        """``(threads_per_row, chunks, vec)`` int array: the element each register holds."""
        t = np.arange(self.threads_per_row)[:, None, None]
        c = np.arange(self.chunks)[None, :, None]
        i = np.arange(self.vec)[None, None, :]
        return (c * self.threads_per_row + t) * self.vec + i

    def owner(self) -> np.ndarray:
        """``(d,)`` int array: the thread (of its row) that holds each element."""
        own = np.empty(self.d, dtype=np.int64)
        own[self.element_index()] = np.arange(self.threads_per_row)[:, None, None]
        return own


def _powers(n: int) -> list[int]:
    """``[1, 2, 4, ..., n / 2]``: the steps of a loop ``for (h = 1; h < n; h *= 2)``."""
    return [1 << k for k in range(max(n, 1).bit_length() - 1)]


def _check_config(cfg: FwhtConfig) -> None:
    """The static_asserts of ``fwht_traits`` (and of ``tq_codec_traits`` for packing)."""
    d = 1 << cfg.log_d
    problems = []
    if not 1 <= cfg.log_d <= 16:
        problems.append("log_d must be between 1 and 16")
    if cfg.vec not in (2, 4, 8):
        problems.append("vec must be 2, 4 or 8 (one float2, float4 or 8-half load)")
    for name in ("threads_per_row", "chunks", "rows_per_block", "warp_size"):
        if not is_power_of_two(getattr(cfg, name)):
            problems.append(f"{name} must be a power of two")
    if not problems:
        if cfg.vec * cfg.threads_per_row * cfg.chunks != d:
            problems.append("vec * threads_per_row * chunks must equal d")
        tpr, ws = cfg.threads_per_row, cfg.warp_size
        if not (ws % tpr == 0 if tpr < ws else tpr % ws == 0):
            problems.append("a row's threads must fill part of one warp, or whole warps")
        if cfg.block_threads % ws or cfg.block_threads > 1024:
            problems.append("a block must be whole warps, at most 1024 threads")
        if cfg.elems % cfg.warps_per_row:
            problems.append("the shared-memory stage needs elems divisible by warps_per_row")
        if cfg.exchange_floats * 4 > 32 * 1024:
            problems.append("the exchange may use at most 32 KiB of shared memory")
        if cfg.rows_per_block % 4 and d % 32:
            problems.append("rows_per_block % 4 == 0 or d % 32 == 0 (4-byte aligned packed blocks)")
    if problems:
        raise ValueError(f"invalid kernel configuration {cfg!r}: " + "; ".join(problems))


#: The kernels' dispatch table (``fwht_config<LOG_D>`` in ``kernels/fwht_common.cuh``):
#: log2 d -> configuration, d = 2 .. 8192. The launcher and the emulation both read it.
FWHT_CONFIGS: dict[int, FwhtConfig] = {
    cfg.log_d: cfg
    for cfg in (
        #          log_d vec threads chunks rows/block
        FwhtConfig(1, 2, 1, 1, 256),
        FwhtConfig(2, 4, 1, 1, 256),
        FwhtConfig(3, 4, 1, 2, 256),
        FwhtConfig(4, 4, 2, 2, 128),
        FwhtConfig(5, 4, 4, 2, 64),
        FwhtConfig(6, 4, 8, 2, 32),
        FwhtConfig(7, 4, 16, 2, 16),
        FwhtConfig(8, 4, 32, 2, 8),
        FwhtConfig(9, 4, 32, 4, 4),
        FwhtConfig(10, 4, 64, 4, 2),
        FwhtConfig(11, 4, 128, 4, 1),
        FwhtConfig(12, 4, 256, 4, 1),
        FwhtConfig(13, 4, 256, 8, 1),
    )
}

MAX_KERNEL_D = 1 << max(FWHT_CONFIGS)
"""The largest d of the table (8192): above it the GPU path raises."""


def fwht_config(d: int) -> FwhtConfig:
    """The kernel configuration for dimension ``d`` (a power of two from 2 to 8192).

    Raises
    ------
    ValueError
        ``d`` is not a power of two, or outside the table.

    Examples
    --------
    >>> fwht_config(128)
    FwhtConfig(log_d=7, vec=4, threads_per_row=16, chunks=2, rows_per_block=16, warp_size=32)
    """
    d = check_power_of_two(d, "d (the last axis)")
    cfg = FWHT_CONFIGS.get(d.bit_length() - 1)
    if cfg is None:
        raise ValueError(f"the GPU kernels support d = 2 .. {MAX_KERNEL_D} (powers of two), got "
                         f"d = {d}: use the NumPy path (a NumPy array) for other sizes")
    return cfg


# --------------------------------------------------------------------------- the search grid


def grid_max_cells(bits: int) -> int:
    """Cells the encoder's search grid may have at ``bits`` (``tq_grid_max_cells``): its
    shared-memory table has this many entries. 256 up to 6 bits, where the kernel finds
    the cell with one conversion to a saturated 8-bit integer."""
    return 256 if bits <= 6 else 1024


@dataclass(frozen=True)
class SearchGrid:
    """The encoder's codebook search: a uniform grid with at most one threshold per cell.

    Cell ``j`` is ``[(m_lo + j) 2**-k, (m_lo + j + 1) 2**-k)``. For a float32 ``t`` the
    kernel finds ``j = clamp(floor(t 2**k) - m_lo)`` with one fma rounded down
    (``fma_rd(t, scale, magic)``) and then either a conversion to an 8-bit integer,
    which saturates to 0 .. 255 and turns NaN into 0 (``u8``: the table has 256
    entries), or a clamp of the float to ``[2**23, top]`` whose low bits are ``j``;
    then ``code = base[j] + (t >= threshold[j])``: the number of thresholds ``<= t``,
    what a binary search gives, ties, NaN (0) and Inf included.

    Attributes
    ----------
    k : int
        Cells are ``2**-k`` wide.
    m_lo : int
        ``floor(thresholds[0] * 2**k)``, the first cell.
    cells : int
        Cells from the first threshold's to the last one's.
    u8 : bool
        The table has 256 entries and the cell is an 8-bit conversion (bits <= 6).
    threshold : (size,) float32 ndarray
        The threshold inside each cell, NaN where there is none (and past ``cells``).
    base : (size,) int32 ndarray
        Thresholds in the cells before (all of them past ``cells``).
    """

    k: int
    m_lo: int
    cells: int
    u8: bool
    threshold: np.ndarray = field(repr=False)
    base: np.ndarray = field(repr=False)

    @property
    def size(self) -> int:
        """Entries of the kernel's table (``grid_cells``): 256 with ``u8``, else ``cells``."""
        return int(self.threshold.shape[0])

    @property
    def scale(self) -> np.float32:
        """``2**k``, the kernel's ``grid_scale``."""
        return np.float32(2.0**self.k)

    @property
    def magic(self) -> np.float32:
        """The kernel's ``grid_magic``: ``-m_lo`` with ``u8``, else ``2**23 - m_lo``."""
        return np.float32(-self.m_lo if self.u8 else 2**23 - self.m_lo)

    @property
    def top(self) -> np.float32:
        """``2**23 + size - 1``, the kernel's ``grid_top`` (unused with ``u8``)."""
        return np.float32(2**23 + self.size - 1)

    def table(self) -> np.ndarray:
        """``(size, 2)`` float32: the kernel's ``float2`` entries (threshold, base as int bits)."""
        out = np.empty((self.size, 2), dtype=np.float32)
        out[:, 0] = self.threshold
        out[:, 1] = self.base.astype(np.int32).view(np.float32)
        return out


def search_grid(thresholds, bits: int) -> SearchGrid:
    """The coarsest grid of cells ``2**-k`` wide that holds at most one threshold per cell.

    Parameters
    ----------
    thresholds : (2**bits - 1,) array_like of float32, ascending
    bits : int

    Returns
    -------
    SearchGrid

    Raises
    ------
    ValueError
        Thresholds not strictly ascending and finite, or no grid of at most
        :func:`grid_max_cells` cells separates them.

    Examples
    --------
    >>> g = search_grid(np.array([-1.0, 0.0, 1.0], np.float32), 2)
    >>> g.k, g.m_lo, g.cells, g.size, g.base[:4].tolist()
    (0, -1, 3, 256, [0, 1, 2, 3])
    """
    thr = np.asarray(thresholds, dtype=np.float32).reshape(-1)
    if thr.size == 0 or not np.all(np.isfinite(thr)) or np.any(np.diff(thr.astype(np.float64)) <= 0):
        raise ValueError("thresholds must be finite and strictly ascending (a codebook's boundaries)")
    t64 = thr.astype(np.float64)
    limit = grid_max_cells(bits)
    for k in range(-8, 60):
        m = np.floor(t64 * 2.0**k)
        if np.all(np.diff(m) > 0):  # one threshold per cell
            break
    cells = int(m[-1] - m[0]) + 1
    if cells > limit or abs(m[0]) >= 2**22:
        raise ValueError(f"no search grid of at most {limit} cells separates these {thr.size} "
                         f"thresholds (the finest needs {cells} cells of width 2**-{k})")
    u8 = limit == 256
    size = 256 if u8 else cells
    m_lo = int(m[0])
    j = (m - m_lo).astype(np.int64)
    threshold = np.full(size, np.nan, dtype=np.float32)
    threshold[j] = thr
    base = np.searchsorted(j, np.arange(size), side="left").astype(np.int32)
    return SearchGrid(k, m_lo, cells, u8, threshold, base)


#: Published specifications (NVIDIA product pages / data sheets): memory bandwidth in GB/s and
#: FP32 peak in TFLOP/s without tensor cores (a fused multiply-add counts as two operations).
GPU_SPECS = {
    "T4": {"bandwidth_gbs": 320.0, "fp32_tflops": 8.1,
           "source": "https://www.nvidia.com/en-us/data-center/tesla-t4/"},
    "A100 80GB SXM": {"bandwidth_gbs": 2039.0, "fp32_tflops": 19.5,
                      "source": "https://www.nvidia.com/en-us/data-center/a100/"},
    "H200 SXM": {"bandwidth_gbs": 4800.0, "fp32_tflops": 67.0,
                 "source": "https://www.nvidia.com/en-us/data-center/h200/"},
}
