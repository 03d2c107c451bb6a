"""NumPy emulation of the CUDA kernels in ``kernels/``, loop for loop (no GPU needed).

keep in step with turboquant_lab/gpu/kernels/fwht_common.cuh, fwht.cu and
turboquant.cu; the launch configurations and constants come from
:mod:`turboquant_lab.gpu.configs` (``fwht_config<LOG_D>``, ``TQ_WARP_SIZE``,
``TQ_MAX_BITS``), which the kernels' launcher reads as well, and
``tests/gpu/test_kernels.py`` parses the CUDA files and compares.

Every device function below has a CUDA twin of its name without the leading
underscore (``_row_sum`` is ``row_sum``; :func:`butterfly_lanes`, which
lesson 09 prints beside its twin, is public, with :func:`shfl_xor` and
:func:`exchange_addresses`) and does what the twin does in the same order:

* the block/row mapping: block ``b`` holds rows ``b * ROWS_PER_BLOCK + r``,
  thread ``threadIdx.x = r * THREADS_PER_ROW + t``; rows past the end are
  loaded as zeros and never stored;
* the register layout: thread ``t`` holds, in ``x[c][i]``, element
  ``(c * THREADS_PER_ROW + t) * VEC + i`` of its row (one vector load per
  chunk ``c``);
* the stages, stride 1 first: registers (bits of ``i``), warp shuffles
  (:func:`shfl_xor`, ``__shfl_xor_sync`` with masks 1, 2, ... on the lane
  index, then ``fmaf(+-1, own, partner)``), shared memory (bits of the warp
  index, the layout of :func:`exchange_addresses`), registers again (bits of
  ``c``); float16 rows use the 16-byte layout of :meth:`FwhtConfig.for_itemsize`;
* the encoder's codebook search on the grid of
  :func:`~turboquant_lab.gpu.configs.search_grid`, its packing (whole bytes
  per thread, or a pair of threads joined by one shuffle) and the decoder's
  byte loads; rows shorter than ``d_pad`` read as zero-padded (the kernels'
  masked loads) and are written back cut to ``d`` (masked stores);
* the status bits (``STATUS_*`` of :mod:`~turboquant_lab.gpu.cuda`): NaN/Inf
  in element 0 of each stored FWHT row, NaN/Inf or float16-overflowing norms;
* the arithmetic, operation for operation in float32: the butterflies are
  adds and subtracts, products with +-1 signs are exact, the norm is a sum of
  ``x * x`` per thread in the order (c, i), an xor tree over the lanes, then
  the warps in order; ``sqrt``, ``1/r`` and the float16 conversions round to
  nearest, like ``__fsqrt_rn``, ``__frcp_rn`` and ``cvt.rn``; float32
  subnormals are flushed to zero after every operation, as on the GPU, where
  CuPy compiles every kernel with ``-ftz=true`` (see :func:`_ftz`).

So the emulation is meant to give the kernels' results *bit for bit*, and
``tests/gpu/test_gpu.py`` checks exactly that on a GPU. Arrays of simulated
registers have the shape ``(blocks, rows_per_block, threads_per_row, chunks,
vec)``: loops run over the stages and the register indices as in CUDA,
vectorised over the blocks, rows and threads (every thread runs the same
instruction, which is what a warp does).

:class:`EmulatedKernels` launches these in place of
:class:`~turboquant_lab.gpu.cuda.CudaKernels`, so :func:`emulate_encode_mse`
and :func:`emulate_decode_mse` run the GPU path's own drivers
(:mod:`turboquant_lab.gpu.drivers`) on the CPU. This module never imports
:mod:`~turboquant_lab.gpu.cuda`. A teaching :class:`FwhtConfig` (small
warps, see :mod:`~turboquant_lab.gpu.configs`) runs here only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..validation import as_float_array, check_bits
from . import drivers
from .configs import (
    FWHT_CONFIGS,
    MAX_BITS,
    STAGE_KINDS,
    STATUS_NONFINITE,
    STATUS_NORM16,
    WARP_SIZE,
    FwhtConfig,
    SearchGrid,
    _powers,
    fwht_config,
    search_grid,
)

__all__ = [
    "StageRecord",
    "emulate_fwht",
    "emulate_fwht_trace",
    "emulate_encode",
    "emulate_decode",
    "emulate_encode_mse",
    "emulate_decode_mse",
    "EmulatedKernels",
    "butterfly_lanes",
    "exchange_addresses",
    "shfl_xor",
    "shfl_down",
    "grid_bucket",
    "STATUS_NONFINITE",
    "STATUS_NORM16",
    # the table it follows, from configs
    "FwhtConfig",
    "FWHT_CONFIGS",
    "fwht_config",
    "STAGE_KINDS",
    "WARP_SIZE",
    "MAX_BITS",
]


# --------------------------------------------------------------------------- device functions
# regs: float32 (blocks, rows_per_block, threads_per_row, chunks, vec), all in place.

_FLT_MIN = np.float32(np.finfo(np.float32).tiny)  # 2**-126, the smallest normal float32


def _ftz(a: np.ndarray) -> np.ndarray:
    """Flush float32 subnormals to zeros of the same sign, in place; returns ``a``.

    CuPy appends ``-ftz=true`` to every NVRTC compilation (``gpu.NVRTC_OPTIONS``
    states it too), so each float32 add, subtract, multiply, square root and
    reciprocal in the kernels reads a subnormal operand as zero and writes a
    subnormal result as zero (``add.rn.ftz.f32``, ...). Called after each such
    operation here, so that inputs below ``2**-126`` give the kernels' zeros.
    The float16 conversions (inline ``cvt``) are not affected.
    """
    if a.dtype == np.float32:  # the kernels' register type (other dtypes: left alone)
        np.copysign(np.float32(0.0), a, out=a, where=np.abs(a) < _FLT_MIN)  # the sign is kept
    return a


def _blocks(x2: np.ndarray, cfg: FwhtConfig) -> np.ndarray:
    """``(n, d)`` -> ``(blocks, rows_per_block, d)`` with zero rows past the end."""
    n = x2.shape[0]
    n_blocks = -(-n // cfg.rows_per_block)
    out = np.zeros((n_blocks * cfg.rows_per_block, x2.shape[1]), dtype=x2.dtype)
    out[:n] = x2
    return out.reshape(n_blocks, cfg.rows_per_block, x2.shape[1])


def _load_row(xb: np.ndarray, cfg: FwhtConfig) -> np.ndarray:
    """``load_row``: one vector load per chunk, converted to float32."""
    # a subnormal is read as zero by the first (ftz) operation on it: flush at once
    return _ftz(np.ascontiguousarray(xb[:, :, cfg.element_index()], dtype=np.float32))


def _store_row(regs: np.ndarray, cfg: FwhtConfig, dtype=np.float32) -> np.ndarray:
    """``store_row``: registers back to ``(blocks, rows_per_block, d)``, converted to ``dtype``."""
    out = np.empty(regs.shape[:2] + (cfg.d,), dtype=dtype)
    with np.errstate(over="ignore"):  # float16: round to nearest even, inf past 65504 (cvt.rn)
        out[:, :, cfg.element_index()] = regs.astype(dtype)
    return out


def _multiply_signs(regs: np.ndarray, s: np.ndarray, cfg: FwhtConfig) -> None:
    """``multiply_signs``: ``x[c][i] *= s[element]``."""
    regs *= np.asarray(s, dtype=np.float32)[cfg.element_index()]
    _ftz(regs)


def _butterfly_elements(regs: np.ndarray, cfg: FwhtConfig, record=None) -> None:
    """``butterfly_elements``: register stages on the bits of ``i``."""
    for h in _powers(cfg.vec):
        for i in range(cfg.vec):
            if i & h == 0:
                a, b = regs[..., i].copy(), regs[..., i + h].copy()
                regs[..., i] = a + b
                regs[..., i + h] = a - b
        _ftz(regs)
        if record is not None:
            record(STAGE_KINDS[0], h, lambda: _store_row(regs, cfg))


def shfl_xor(vals: np.ndarray, mask: int, cfg: FwhtConfig) -> np.ndarray:
    """``__shfl_xor_sync(FULL, v, mask)`` over axis 1 = ``threadIdx.x`` of each block.

    Lane ``l`` of warp ``w`` receives the value of lane ``l ^ mask`` of the same warp.
    ``vals``: ``(blocks, threads, ...)``; returns the values each thread receives.

    Examples
    --------
    >>> shfl_xor(np.arange(8)[None, :], 1, fwht_config(256))[0]
    array([1, 0, 3, 2, 5, 4, 7, 6])
    """
    tid = np.arange(vals.shape[1])
    lane = tid % cfg.warp_size
    src = tid - lane + (lane ^ mask)
    return vals[:, src]


def _as_block_threads(regs: np.ndarray) -> np.ndarray:
    """View ``(blocks, rows, threads_per_row, ...)`` as ``(blocks, threadIdx.x, ...)``."""
    flat = regs.view()
    flat.shape = (regs.shape[0], regs.shape[1] * regs.shape[2]) + regs.shape[3:]  # never a copy
    return flat


def butterfly_lanes(regs: np.ndarray, cfg: FwhtConfig, record=None) -> None:
    """``butterfly_lanes``: shuffle stages, xor masks 1, 2, .., row_lanes / 2."""
    flat = _as_block_threads(regs)  # a view: writes go to regs
    lane = (np.arange(flat.shape[1]) % cfg.warp_size)[None, :, None, None]
    for m in _powers(cfg.row_lanes):
        other = shfl_xor(flat, m, cfg)
        sign = np.where(lane & m, np.float32(-1.0), np.float32(1.0))  # upper lane: other - own
        flat[...] = sign * flat + other  # fmaf(sign, own, other): +-own is exact, one rounding
        if record is not None:
            record(STAGE_KINDS[1], m, lambda: _store_row(regs, cfg))


def exchange_addresses(cfg: FwhtConfig) -> np.ndarray:
    """``(threads_per_row, groups, warps_per_row)``: the shared-memory index (in the row)
    of each value ``z[k][w]`` of thread ``t`` in ``butterfly_warps``.

    Examples
    --------
    >>> exchange_addresses(fwht_config(1024)).shape  # 64 threads, 8 groups, 2 warps per row
    (64, 8, 2)
    """
    t = np.arange(cfg.threads_per_row)[:, None, None]
    k = np.arange(cfg.exchange_groups)[None, :, None]
    w = np.arange(cfg.warps_per_row)[None, None, :]
    o = t + cfg.threads_per_row * k
    log_vec = cfg.vec.bit_length() - 1
    log_lanes = cfg.row_lanes.bit_length() - 1
    i = o & (cfg.vec - 1)
    lane = (o >> log_vec) & (cfg.warp_size - 1)
    c = o >> (log_vec + log_lanes)
    return (c * cfg.threads_per_row + w * cfg.warp_size + lane) * cfg.vec + i


def _butterfly_warps(regs: np.ndarray, cfg: FwhtConfig, record=None) -> None:
    """``butterfly_warps``: the shared-memory stages on the bits of the warp index."""
    if cfg.warps_per_row == 1:
        return
    n_blocks, rows = regs.shape[:2]
    smem = np.zeros((n_blocks, rows * cfg.d), dtype=np.float32)  # exchange[r_local * d + ...]
    row_base = (np.arange(rows) * cfg.d)[None, :, None, None, None]
    natural = (row_base + cfg.element_index()[None, None]).reshape(-1)
    addr = (row_base + exchange_addresses(cfg)[None, None]).reshape(-1)
    # one vector store per chunk, in the row's natural order; __syncthreads()
    smem[:, natural] = regs.reshape(n_blocks, -1)
    # each thread reads its groups z[k][w]
    z = smem[:, addr].reshape((n_blocks, rows) + exchange_addresses(cfg).shape)

    def natural_values():  # for a trace: where z would land in shared memory
        tmp = smem.copy()
        tmp[:, addr] = z.reshape(n_blocks, -1)
        return tmp.reshape(n_blocks, rows, cfg.d)

    for h in _powers(cfg.warps_per_row):
        for w in range(cfg.warps_per_row):
            if w & h == 0:
                a, b = z[..., w].copy(), z[..., w + h].copy()
                z[..., w] = a + b
                z[..., w + h] = a - b
        _ftz(z)
        if record is not None:
            record(STAGE_KINDS[2], h, natural_values)
    # write back; __syncthreads(); each thread reloads its own elements
    smem[:, addr] = z.reshape(n_blocks, -1)
    regs[...] = smem[:, natural].reshape(regs.shape)


def _butterfly_chunks(regs: np.ndarray, cfg: FwhtConfig, record=None) -> None:
    """``butterfly_chunks``: register stages on the bits of ``c``."""
    for h in _powers(cfg.chunks):
        for c in range(cfg.chunks):
            if c & h == 0:
                a, b = regs[..., c, :].copy(), regs[..., c + h, :].copy()
                regs[..., c, :] = a + b
                regs[..., c + h, :] = a - b
        _ftz(regs)
        if record is not None:
            record(STAGE_KINDS[3], h, lambda: _store_row(regs, cfg))


def _fwht_row(regs: np.ndarray, cfg: FwhtConfig, record=None) -> None:
    """``fwht_row``: all four kinds of stage, unnormalized. ``record(kind, detail,
    values_fn)`` (optional) is called after every stage."""

    def after_shuffle_stage(kind, detail, values_fn):
        _ftz(regs)  # -ftz=true (see _ftz), kept out of butterfly_lanes, which lesson 09 prints
        if record is not None:
            record(kind, detail, values_fn)

    _butterfly_elements(regs, cfg, record)
    butterfly_lanes(regs, cfg, after_shuffle_stage)
    _butterfly_warps(regs, cfg, record)
    _butterfly_chunks(regs, cfg, record)


def _row_sum(s: np.ndarray, cfg: FwhtConfig) -> np.ndarray:
    """``row_sum``: ``s`` (blocks, rows, threads_per_row) float32 -> the row's sum in every thread."""
    flat = s.reshape(s.shape[0], -1)
    m = cfg.row_lanes // 2
    while m >= 1:
        flat = _ftz(flat + shfl_xor(flat, m, cfg))
        m //= 2
    s = flat.reshape(s.shape)
    if cfg.warps_per_row > 1:
        red = s[:, :, :: cfg.warp_size]  # lane 0 of each warp of the row -> red[r][w]
        total = red[:, :, 0].copy()
        for w in range(1, cfg.warps_per_row):
            total = _ftz(total + red[:, :, w])
        s = np.broadcast_to(total[:, :, None], s.shape)
    return s


# --------------------------------------------------------------------------- the FWHT kernel


@dataclass
class StageRecord:
    """The row(s) after one butterfly stage of the emulated kernel.

    Attributes
    ----------
    index : int
        Stage number, 1 .. log2 d (0 for the loaded input).
    kind : str
        One of :data:`STAGE_KINDS` (``"input"`` for stage 0).
    stride : int
        Distance between the two elements of each pair (0 for the input).
    detail : int
        Register step, xor mask or warp step of the stage (see :meth:`FwhtConfig.stage_plan`).
    values : (..., d) float32 ndarray
        Every row in natural order, unnormalized.
    """

    index: int
    kind: str
    stride: int
    detail: int
    values: np.ndarray = field(repr=False)


def _check_signs(s, d, name):
    if s is None:
        return None
    s = np.asarray(s, dtype=np.float32)
    if s.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},), got {s.shape}")
    return s


def _kernel_input(x, config):
    x = as_float_array(x, "x")
    if not isinstance(x, np.ndarray):
        raise TypeError("x must be a NumPy array (the emulation runs on the CPU)")
    if x.dtype not in (np.float32, np.float16):
        raise TypeError(f"x has dtype {x.dtype}: the kernel reads float32 or float16 "
                        f"(convert with x.astype(np.float32))")
    d = x.shape[-1]
    cfg = fwht_config(d).for_itemsize(x.itemsize) if config is None else config
    if cfg.d != d:
        raise ValueError(f"config is for d = {cfg.d}, but x has d = {d}")
    return x, cfg


def _run_fwht(x2, cfg, scale, signs1, signs2, record=None, status=None):
    """``fwht_kernel`` on ``(n, d)`` rows: load, signs1, stages, ``* scale``, signs2, store;
    ``STATUS_NONFINITE`` OR-ed into ``status[0]`` when element 0 of a stored row is NaN/Inf."""
    n, d = x2.shape
    regs = _load_row(_blocks(x2, cfg), cfg)
    if signs1 is not None:
        _multiply_signs(regs, _check_signs(signs1, d, "signs1"), cfg)
    _fwht_row(regs, cfg, record)
    regs *= np.float32(scale)
    _ftz(regs)
    if signs2 is not None:
        _multiply_signs(regs, _check_signs(signs2, d, "signs2"), cfg)
    y = _store_row(regs, cfg, dtype=x2.dtype).reshape(-1, d)[:n]
    if status is not None and not np.isfinite(y[:, 0]).all():  # the flag on element 0 of each row
        status[0] |= np.uint32(STATUS_NONFINITE)
    return y


def emulate_fwht(x, normalize: bool = True, signs1=None, signs2=None, *, config=None):
    """The GPU kernel ``fwht_kernel``, run in NumPy: ``signs2 * H(signs1 * x) * scale``.

    Parameters
    ----------
    x : (..., d) float32 or float16 ndarray
        ``d`` a power of two from 2 to 8192 (any ``d`` that ``config`` fits).
    normalize : bool
        ``scale = 1/sqrt(d)`` (rounded to float32) when true, else 1.
    signs1, signs2 : (d,) array_like of +-1, optional
        The randomized Hadamard's sign flips.
    config : FwhtConfig, optional
        Another launch configuration (e.g. a teaching one with small warps);
        default: :func:`fwht_config`.

    Returns
    -------
    y : (..., d) ndarray, ``x``'s dtype (computed in float32)

    Raises
    ------
    TypeError, ValueError
        Non-float or non-NumPy input, a size outside the table, signs of the
        wrong shape.

    Notes
    -----
    ``y = fwht(x)`` up to float32 rounding: the kernel adds in butterfly
    order and scales once at the end. Cost: O(d log d) per row, as the
    kernel, but slow (it is for checking and teaching).

    Examples
    --------
    >>> emulate_fwht(np.array([1.0, 0.0, 0.0, 0.0], np.float32))
    array([0.5, 0.5, 0.5, 0.5], dtype=float32)
    """
    x, cfg = _kernel_input(x, config)
    d = x.shape[-1]
    scale = np.float32(1.0 / np.sqrt(d)) if normalize else np.float32(1.0)
    return _run_fwht(x.reshape(-1, d), cfg, scale, signs1, signs2).reshape(x.shape)


def emulate_fwht_trace(x, *, config=None) -> list:
    """The stages of the emulated kernel on ``x`` (unnormalized, no signs), input first.

    Parameters
    ----------
    x : (..., d) float32 or float16 ndarray
    config : FwhtConfig, optional
        Default :func:`fwht_config` ``(d)``; a teaching configuration may use small warps.

    Returns
    -------
    records : list of ``log2(d) + 1`` :class:`StageRecord`
        ``records[s].values`` equals ``hadamard.fwht_stages(x)[s]`` for float32
        input: the same butterflies in the same order (stride 1 first).
    """
    x, cfg = _kernel_input(x, config)
    d = x.shape[-1]
    x2 = x.reshape(-1, d)
    n = x2.shape[0]
    plan = iter(cfg.stage_plan())
    records = [StageRecord(0, "input", 0, 0, x2.astype(np.float32).reshape(x.shape))]

    def record(kind, detail, values_fn):
        planned_kind, stride, planned_detail = next(plan)
        assert (planned_kind, planned_detail) == (kind, detail)  # the plan is the kernel's order
        values = values_fn().reshape(-1, d)[:n].reshape(x.shape)
        records.append(StageRecord(len(records), kind, stride, detail, values))

    _run_fwht(x2.astype(np.float32), cfg, 1.0, None, None, record)
    return records


# --------------------------------------------------------------------------- encode / decode


def _bucket(t: np.ndarray, thr: np.ndarray, bits: int) -> np.ndarray:
    """A binary search, ``code += step`` where ``t >= thr[code + step - 1]``: the count of
    thresholds ``<= t`` (the kernels before the search grid; the tests' oracle of :func:`grid_bucket`)."""
    code = np.zeros(t.shape, dtype=np.int64)
    step = 1 << (bits - 1)
    while step > 0:
        code += np.where(t >= thr[code + step - 1], step, 0)
        step >>= 1
    return code


def grid_bucket(t: np.ndarray, grid: SearchGrid) -> np.ndarray:
    """The encoder's codebook search on ``grid`` for float32 ``t``: ``#{k : thresholds[k] <= t}``.

    ``grid_cell``: with ``grid.u8``, ``fma_rd(t, 2**k, -m_lo)`` converted to an 8-bit
    integer (``floor(t 2**k) - m_lo`` saturated to 0 .. 255, NaN 0); otherwise
    ``y = fma_rd(t, 2**k, 2**23 - m_lo) = 2**23 + floor(t 2**k) - m_lo`` clamped to
    ``[2**23, top]`` (``fmaxf``/``fminf``: NaN gives the first cell), ``j = y - 2**23``
    (both exact in float64 here); then ``code = base[j] + (t >= threshold[j])``.

    Examples
    --------
    >>> g = search_grid(np.array([-1.0, 0.0, 1.0], np.float32), 2)
    >>> grid_bucket(np.array([-2.0, -1.0, 0.5, 7.0, np.nan], np.float32), g).tolist()
    [0, 1, 2, 3, 0]
    """
    t = np.asarray(t, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        y = np.floor(t.astype(np.float64) * 2.0**grid.k) + float(grid.magic)
        if grid.u8:  # cvt.rzi.u8: saturated to 0 .. 255, NaN 0
            j = np.nan_to_num(np.clip(y, 0.0, 255.0), nan=0.0).astype(np.int64)
        else:
            y = np.fmin(np.fmax(y, 2.0**23), float(grid.top))  # NaN: the first cell, as fmaxf
            j = (y - 2.0**23).astype(np.int64)
    with np.errstate(invalid="ignore"):
        return grid.base[j].astype(np.int64) + (t >= grid.threshold[j])


def _field_layout(cfg: FwhtConfig, bits: int):
    """Bit offset in its row of each thread's chunk field: ``(threads_per_row, chunks)``."""
    return cfg.element_index()[:, :, 0] * bits


def _store_codes(field: np.ndarray, cfg: FwhtConfig, bits: int) -> np.ndarray:
    """``store_codes``: fields ``(blocks, rows, T, C)`` -> the rows' bytes ``(blocks, rows, n_bytes)``.

    A row in one thread: its fields side by side, its bytes. Whole-byte fields: each
    thread its ``F / 8`` bytes. Half-byte fields (odd bits): the even thread ORs in its
    odd neighbour's field (one ``__shfl_down_sync``) and stores the pair's ``bits`` bytes.
    """
    f_bits = cfg.vec * bits
    n_bytes = (cfg.d * bits + 7) // 8
    out = np.zeros(field.shape[:2] + (n_bytes,), dtype=np.uint8)
    field = field.astype(np.uint64)
    if cfg.threads_per_row == 1:
        acc = np.zeros(field.shape[:2], dtype=np.uint64)
        for c in range(cfg.chunks):
            acc |= field[:, :, 0, c] << np.uint64(c * f_bits)
        for k in range(n_bytes):
            out[:, :, k] = (acc >> np.uint64(8 * k)) & np.uint64(0xFF)
        return out
    bit = _field_layout(cfg, bits)  # (T, C)
    if f_bits % 8 == 0:
        value, first, nb = field, bit // 8, f_bits // 8
    else:  # pairs of threads: the even one stores
        flat = field.reshape(field.shape[0], -1, cfg.chunks)  # (blocks, threadIdx.x, C)
        partner = shfl_down(flat, 1, cfg).reshape(field.shape)
        value = (field | (partner << np.uint64(f_bits)))[:, :, 0::2]
        first, nb = bit[0::2] // 8, bits
    for k in range(nb):
        out[:, :, first + k] = (value >> np.uint64(8 * k)) & np.uint64(0xFF)
    return out


def _load_codes(rows: np.ndarray, cfg: FwhtConfig, bits: int) -> np.ndarray:
    """``load_codes``: the rows' bytes ``(blocks, rows, n_bytes)`` -> fields ``(blocks, rows, T, C)``."""
    f_bits = cfg.vec * bits
    mask = np.uint64((1 << f_bits) - 1)
    rows = rows.astype(np.uint64)
    if cfg.threads_per_row == 1:
        acc = np.zeros(rows.shape[:2], dtype=np.uint64)
        for k in range(rows.shape[2]):
            acc |= rows[:, :, k] << np.uint64(8 * k)
        fields = [(acc >> np.uint64(c * f_bits)) & mask for c in range(cfg.chunks)]
        return np.stack(fields, axis=-1)[:, :, None, :]
    bit = _field_layout(cfg, bits)
    nb = f_bits // 8 if f_bits % 8 == 0 else (f_bits + 4) // 8
    v = np.zeros(rows.shape[:2] + bit.shape, dtype=np.uint64)
    for k in range(nb):
        v |= rows[:, :, bit // 8 + k] << np.uint64(8 * k)
    return (v >> (bit % 8).astype(np.uint64)) & mask


def shfl_down(vals: np.ndarray, delta: int, cfg: FwhtConfig) -> np.ndarray:
    """``__shfl_down_sync(FULL, v, delta)`` over axis 1 = ``threadIdx.x``: lane ``l`` receives
    lane ``l + delta`` of its warp (its own value when that is past the warp's end)."""
    tid = np.arange(vals.shape[1])
    lane = tid % cfg.warp_size
    src = np.where(lane + delta < cfg.warp_size, tid + delta, tid)
    return vals[:, src]


def _norm_status(norm: np.ndarray) -> int:
    """The encoder's status bits for its norms (valid rows only)."""
    bits = 0
    finite = np.isfinite(norm)
    if not finite.all():
        bits |= STATUS_NONFINITE
    if (norm[finite] >= np.float32(65520.0)).any():  # float16 rounds these to inf
        bits |= STATUS_NORM16
    return bits


def emulate_encode(x, signs1, signs2, thresholds, bits: int, *, status=None):
    """The kernel ``tq_encode_kernel`` in NumPy: norms and packed codes of each row.

    Parameters
    ----------
    x : (n, d) float32 ndarray
        Rows, ``d <= d_pad``; the kernel reads them as zero-padded to ``d_pad``
        (masked loads).
    signs1, signs2 : (d_pad,) float32 arrays of +-1
        The randomized Hadamard ``D2 H D1``; ``d_pad`` a power of two in the
        kernel table.
    thresholds : (2**bits - 1,) float32 ndarray
        Ascending cell edges in scaled units, rounded up to float32
        (``TurboQuantMSE.kernel_constants().thresholds``).
    bits : int
        1 .. 8.
    status : (1,) uint32 ndarray, optional
        The kernel's status word: ``STATUS_NONFINITE`` / ``STATUS_NORM16`` are OR-ed in.

    Returns
    -------
    codes : (n, ceil(d_pad * bits / 8)) uint8 ndarray
        ``pack_bits`` layout.
    norms : (n,) float32 ndarray

    Notes
    -----
    ``t = s2 * H(s1 * x) / ||x||`` (unnormalized ``H``: ``sqrt(d_pad)`` cancels) and
    ``code = #{k : thresholds[k] <= t}`` (:func:`grid_bucket`), so the codes equal
    ``TurboQuantMSE.encode``'s except where ``t`` lies within rounding of a
    threshold.
    """
    bits = check_bits(bits, "bits", hi=MAX_BITS)
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 2:
        raise TypeError("x must be a 2-d float32 array (the kernel's input)")
    n, d = x.shape
    d_pad = int(np.shape(signs1)[0]) if signs1 is not None else d
    if d > d_pad:
        raise ValueError(f"x has d = {d} columns, more than the d_pad = {d_pad} of signs1")
    cfg = fwht_config(d_pad)
    thr = np.asarray(thresholds, dtype=np.float32)
    if thr.shape != ((1 << bits) - 1,):
        raise ValueError(f"thresholds must have 2**bits - 1 = {(1 << bits) - 1} values")
    grid = search_grid(thr, bits)
    s1, s2 = _check_signs(signs1, d_pad, "signs1"), _check_signs(signs2, d_pad, "signs2")
    if d < d_pad:  # masked loads: the elements at and past d read as zeros
        x = np.concatenate([x, np.zeros((n, d_pad - d), np.float32)], axis=1)
    xb = _blocks(x, cfg)
    regs = _load_row(xb, cfg)
    # 1. the norm
    s = np.zeros(regs.shape[:3], dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # NaN/Inf rows: the status says so
        for c in range(cfg.chunks):
            for i in range(cfg.vec):
                s = _ftz(s + _ftz(regs[..., c, i] * regs[..., c, i]))
        s = _row_sum(s, cfg)
    norm = np.sqrt(s[:, :, 0])
    inv = np.zeros_like(norm)
    np.divide(np.float32(1.0), norm, out=inv, where=norm > 0)
    _ftz(inv)  # 1 / r for r above 2**126
    if status is not None:
        status[0] |= np.uint32(_norm_status(norm.reshape(-1)[:n]))
    # 2. the rotation
    with np.errstate(over="ignore", invalid="ignore"):
        _multiply_signs(regs, s1, cfg)
        _fwht_row(regs, cfg)
        # 3. codes: the grid search, one field per chunk, then the packed bytes
        t = _ftz(_ftz(regs * s2[cfg.element_index()]) * inv[:, :, None, None, None])
    code = grid_bucket(t, grid).astype(np.uint64)
    field = np.zeros(code.shape[:-1], dtype=np.uint64)
    for i in range(cfg.vec):
        field |= code[..., i] << np.uint64(i * bits)
    codes = _store_codes(field, cfg, bits)
    return codes.reshape(-1, codes.shape[-1])[:n].copy(), norm.reshape(-1)[:n].copy()


def emulate_decode(codes, norms, signs1, signs2, levels, bits: int, d: int, *, d_out=None):
    """The kernel ``tq_decode_kernel`` in NumPy: ``s1 * H(s2 * levels[code]) * (r / d)``.

    Parameters
    ----------
    codes : (n, ceil(d * bits / 8)) uint8 ndarray
    norms : (n,) float16 ndarray
    signs1, signs2 : (d,) float32 arrays of +-1
    levels : (2**bits,) float32 ndarray
        Centroids in scaled units.
    bits, d : int
        ``d`` the padded dimension, a power of two in the kernel table.
    d_out : int, optional
        Columns written (masked stores): the first ``d_out <= d`` (default ``d``).

    Returns
    -------
    x_hat : (n, d_out) float32 ndarray
    """
    bits = check_bits(bits, "bits", hi=MAX_BITS)
    cfg = fwht_config(d)
    d_out = d if d_out is None else int(d_out)
    if not 1 <= d_out <= d:
        raise ValueError(f"d_out must be between 1 and d = {d}, got {d_out}")
    codes = np.asarray(codes, dtype=np.uint8)
    norms = np.asarray(norms, dtype=np.float16).reshape(-1)
    n_bytes = (d * bits + 7) // 8
    if codes.ndim != 2 or codes.shape[1] != n_bytes or codes.shape[0] != norms.shape[0]:
        raise ValueError(f"codes must be (n, {n_bytes}) uint8 with n = len(norms)")
    lv = np.asarray(levels, dtype=np.float32)
    s1, s2 = _check_signs(signs1, d, "signs1"), _check_signs(signs2, d, "signs2")
    n = codes.shape[0]
    # 1. unpack and look up
    field = _load_codes(_blocks(codes, cfg), cfg, bits)
    mask = np.uint64((1 << bits) - 1)
    code = np.stack([(field >> np.uint64(i * bits)) & mask for i in range(cfg.vec)], axis=-1)
    regs = _ftz(lv[code.astype(np.int64)] * s2[cfg.element_index()])
    # 2. the inverse rotation, s1 and the scale r / d
    _fwht_row(regs, cfg)
    nb = _blocks(norms.reshape(-1, 1), cfg)[:, :, 0]
    scale = _ftz(nb.astype(np.float32) * np.float32(1.0 / d))
    regs = _ftz(_ftz(regs * s1[cfg.element_index()]) * scale[:, :, None, None, None])
    return _store_row(regs, cfg).reshape(-1, d)[:n, :d_out].copy()


class EmulatedKernels:
    """The kernel launches of :class:`~turboquant_lab.gpu.cuda.CudaKernels`, emulated on NumPy
    arrays (same signatures).

    :mod:`~turboquant_lab.gpu.drivers` launch the CUDA kernels through an
    object with these methods; passing this one instead runs the very same
    driver code (padding, checks, the ``Encoded`` it builds) on the CPU, which
    is how the tests check the drivers without a GPU.
    """

    xp = np

    @staticmethod
    def constant(array, dtype=np.float32):
        """A small constant array (signs, thresholds, levels) in the kernels' dtype."""
        return np.ascontiguousarray(array, dtype=dtype)

    _words: ClassVar[dict] = {}

    @staticmethod
    def new_status():
        """A fresh zeroed status word, ``(1,)`` uint32."""
        return np.zeros(1, dtype=np.uint32)

    @classmethod
    def status_word(cls, name: str = "sticky"):
        """The ``"sticky"`` (or ``"discard"``) status word of the emulated device."""
        return cls._words.setdefault(name, np.zeros(1, dtype=np.uint32))

    @staticmethod
    def read_status(status) -> int:
        return int(status[0])

    @staticmethod
    def fwht(x2, scale, signs1=None, signs2=None, status=None):
        """``(n, d)`` float32/float16 -> ``signs2 * H(signs1 * x2) * scale`` (``fwht_kernel``)."""
        cfg = fwht_config(x2.shape[-1]).for_itemsize(x2.itemsize)
        return _run_fwht(x2, cfg, scale, signs1, signs2, status=status)

    @staticmethod
    def encode(x2, signs1, signs2, thresholds, bits, status=None):
        return emulate_encode(x2, signs1, signs2, thresholds, bits, status=status)

    @staticmethod
    def decode(codes, norms, signs1, signs2, levels, bits, d, d_out=None):
        return emulate_decode(codes, norms, signs1, signs2, levels, bits, d, d_out=d_out)


def emulate_encode_mse(q, x):
    """``q.encode(x)`` as the GPU computes it: the GPU path's driver on the emulated kernels.

    Parameters
    ----------
    q : TurboQuantMSE
    x : (..., q.d) float ndarray

    Returns
    -------
    Encoded
        Equal to ``q.encode(x)`` except for coordinates within float32 rounding
        of a codebook boundary (and, rarely, a norm one float16 step apart).
    """
    return drivers.encode(q, x, EmulatedKernels())


def emulate_decode_mse(q, enc):
    """``q.decode(enc)`` as the GPU computes it (the GPU path's driver on the emulated kernels).

    Raises
    ------
    TypeError, ValueError
        ``enc`` does not come from ``q`` (:meth:`~turboquant_lab.turboquant.TurboQuantMSE.check_encoded`).
    """
    q.check_encoded(enc)
    return drivers.decode(q, enc, EmulatedKernels())
