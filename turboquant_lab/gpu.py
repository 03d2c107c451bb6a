"""The GPU path: CUDA kernels (CuPy ``RawModule``) for the FWHT and for TurboQuantMSE.

The library's functions send a CuPy array here (``hadamard.fwht``,
``TurboQuantMSE.encode`` / ``decode``, the randomized Hadamard), so a user
never calls this module directly: CuPy in, CuPy out, nothing copied to the
host. CuPy is imported lazily, inside the functions.

The kernels live in ``turboquant_lab/kernels/`` (package data):

``fwht.cu``
    ``fwht_kernel<T, LOG_D>``: the Walsh-Hadamard transform of every row, with
    optional sign flips before and after (the randomized Hadamard
    ``D2 H D1`` in the same pass). float32 or float16 in memory, float32 in
    registers; ``d`` a power of two from 2 to 8192.
``turboquant.cu``
    ``tq_encode_kernel<LOG_D>`` and ``tq_decode_kernel<LOG_D>``: TurboQuantMSE
    with the Hadamard rotation, fused (norm, rotation, bucketize against the
    codebook, bit packing; and back), ``bits`` 1 to 8, ``d_pad`` up to 8192.
``fwht_common.cuh``
    the building blocks and the one dispatch table (``fwht_config<LOG_D>``),
    mirrored by :data:`turboquant_lab.gpu_emulation.FWHT_CONFIGS`.

How the transform maps onto the GPU (the model is Dao-AILab's
fast-hadamard-transform): each row is read once with 16-byte loads into the
registers of ``THREADS_PER_ROW`` threads; the stages whose pairs sit in one
thread run in registers, those whose pairs sit in two threads of one warp
use ``__shfl_xor_sync``, those across warps go through shared memory, and
the row is written once. See :mod:`turboquant_lab.gpu_emulation` for a NumPy
emulation of every kernel, loop for loop, and lesson 09.

Every kernel is compiled on first use by NVRTC, one module per (kernel,
dtype, log2 d) and device, and cached. The drivers below
(:func:`_fwht_driver`, :func:`_encode_driver`, :func:`_decode_driver`) take
the object that launches the kernels as an argument: :class:`CudaKernels`
here, :class:`~turboquant_lab.gpu_emulation.EmulatedKernels` in the CPU
tests, which run the same driver code on NumPy arrays.
"""
from __future__ import annotations

import math
import re
import threading
from importlib import resources

import numpy as np

from ._validate import as_float_array, check_last_axis, check_power_of_two, ensure_finite
from .gpu_emulation import MAX_KERNEL_D, fwht_config

__all__ = [
    "event_times",
    "fwht_gpu",
    "randomized_hadamard_gpu",
    "encode_mse_gpu",
    "decode_mse_gpu",
    "CudaKernels",
    "kernel_source",
    "KERNEL_FILES",
    "NVRTC_OPTIONS",
]

KERNEL_FILES = ("fwht.cu", "turboquant.cu")
"""The CUDA translation units in ``turboquant_lab/kernels`` (each includes ``fwht_common.cuh``)."""

NVRTC_OPTIONS = ("-std=c++17", "--fmad=false", "-ftz=true")
"""Compiler options: C++17 (``if constexpr``), no FMA contraction (bit-exact emulation), and
flush-to-zero of float32 subnormals, which CuPy appends to every NVRTC compilation anyway
(``-ftz=true``, the last option wins): stated here so that nvcc (tests/test_kernels.py)
compiles the same arithmetic, and mirrored by the emulation (``gpu_emulation._ftz``)."""

_FLOAT16_MAX = float(np.finfo(np.float16).max)
_FLAG_SIGNS1, _FLAG_SIGNS2 = 1, 2  # TQ_FLAG_SIGNS1 / TQ_FLAG_SIGNS2 in fwht.cu
_INCLUDE = re.compile(r'^#include "([\w.]+)"\s*$', re.MULTILINE)
_PRAGMA_ONCE = re.compile(r"^#pragma once\s*$", re.MULTILINE)


# --------------------------------------------------------------------------- sources


def kernel_source(name: str) -> str:
    """The CUDA source ``kernels/<name>``, with its local ``#include "x.cuh"`` inlined.

    Read with :mod:`importlib.resources` (the files are package data), so the
    module string that NVRTC compiles needs no include path.

    Raises
    ------
    FileNotFoundError
        No such kernel file in the package.
    """
    folder = resources.files(__package__).joinpath("kernels")
    seen: set[str] = set()

    def expand(fname: str) -> str:
        text = folder.joinpath(fname).read_text(encoding="utf-8")

        def include(match):
            inc = match.group(1)
            if inc in seen:  # #pragma once
                return ""
            seen.add(inc)
            return _PRAGMA_ONCE.sub("", expand(inc))

        return _INCLUDE.sub(include, text)

    return expand(name)


def _cupy():
    try:
        import cupy  # noqa: PLC0415 (lazy: only the GPU path needs it)
    except ImportError as err:  # pragma: no cover - reached only with a CuPy array, so CuPy exists
        raise ImportError("the GPU path needs CuPy: pip install 'turboquant-lab[gpu]' "
                          "(cupy-cuda12x) on a machine with an NVIDIA GPU") from err
    return cupy


def event_times(f, repeat: int, warmup: int = 3) -> list[float]:
    """Seconds per call of ``f()`` on the current CUDA stream, timed by CUDA events after a warm-up.

    Each call sits between two ``cupy.cuda.Event`` records; the elapsed time is
    read after the second event has completed, so it counts GPU time, not the
    launch overhead seen by the host.
    """
    cp = _cupy()
    for _ in range(warmup):
        f()
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        f()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return times


# --------------------------------------------------------------------------- the launcher


class CudaKernels:
    """Launches the CUDA kernels on CuPy arrays (compiled on first use, cached).

    The three methods take C-contiguous device arrays of the kernel's dtypes;
    the drivers prepare them. :class:`~turboquant_lab.gpu_emulation.EmulatedKernels`
    has the same methods on NumPy arrays.
    """

    _lock = threading.Lock()
    _functions: dict = {}
    _constants: dict = {}

    @property
    def xp(self):
        return _cupy()

    # ---- compilation

    @classmethod
    def function(cls, file: str, expr: str):
        """The compiled kernel ``expr`` (e.g. ``"fwht_kernel<float, 7>"``) of ``kernels/file``."""
        cp = _cupy()
        key = (file, expr, cp.cuda.Device().id)
        with cls._lock:
            fn = cls._functions.get(key)
            if fn is None:
                module = cp.RawModule(code=kernel_source(file), options=NVRTC_OPTIONS,
                                      name_expressions=[expr])
                fn = cls._functions[key] = module.get_function(expr)
        return fn

    @classmethod
    def constant(cls, array, dtype=np.float32):
        """A device copy of a small host array (signs, thresholds, levels), cached by value."""
        cp = _cupy()
        if isinstance(array, cp.ndarray):
            return cls._device(array, dtype)  # float4 loads: 16-byte aligned
        host = np.ascontiguousarray(array, dtype=dtype)
        key = (host.tobytes(), host.dtype.str, host.shape, cp.cuda.Device().id)
        with cls._lock:
            dev = cls._constants.get(key)
            if dev is None:
                if len(cls._constants) > 256:
                    cls._constants.clear()
                dev = cls._constants[key] = cp.asarray(host)
        return dev

    @staticmethod
    def _launch(fn, cfg, n_rows, args):
        """One block per ``rows_per_block`` rows, all in ``grid.x`` (limit 2**31 - 1)."""
        grid = -(-n_rows // cfg.rows_per_block)
        if grid:  # a grid of 0 blocks is a launch error
            fn((grid,), (cfg.block_threads,), args)

    @staticmethod
    def _device(a, dtype, align=16):
        """``a`` as a C-contiguous device array of exactly ``dtype``, ``align``-byte aligned.

        CuPy passes an array to a kernel as a bare pointer, without checking its
        dtype or strides against the C signature; this makes them right. A copy
        only for host input, another dtype, strides, or an offset view whose
        start breaks the kernel's vector loads (a fresh allocation is aligned).
        """
        cp = _cupy()
        a = cp.ascontiguousarray(cp.asarray(a), dtype=dtype)
        return a.copy() if a.data.ptr % align else a

    # ---- kernels

    def fwht(self, x2, scale, signs1=None, signs2=None):
        """``(n, d)`` float32/float16 -> ``signs2 * H(signs1 * x2) * scale`` (``fwht_kernel``)."""
        cp = _cupy()
        n, d = x2.shape
        cfg = fwht_config(d)
        ctype = {"float32": "float", "float16": "half_bits"}.get(np.dtype(x2.dtype).name)
        if ctype is None:
            raise TypeError(f"fwht_kernel reads float32 or float16, got {x2.dtype}")
        x2 = self._device(x2, x2.dtype, align=x2.itemsize * cfg.vec)  # the vector loads
        y = cp.empty(x2.shape, dtype=x2.dtype)
        flags = (_FLAG_SIGNS1 if signs1 is not None else 0) | (_FLAG_SIGNS2 if signs2 is not None else 0)
        s1 = self.constant(signs1) if signs1 is not None else y  # never read without its flag
        s2 = self.constant(signs2) if signs2 is not None else y
        fn = self.function("fwht.cu", f"fwht_kernel<{ctype}, {cfg.log_d}>")
        self._launch(fn, cfg, n, (x2, y, np.int64(n), s1, s2, np.int32(flags), np.float32(scale)))
        return y

    def encode(self, x2, signs1, signs2, thresholds, bits):
        """``(n, d)`` float32 -> packed codes ``(n, ceil(d * bits / 8))`` uint8, norms ``(n,)`` float32."""
        cp = _cupy()
        n, d = x2.shape
        cfg = fwht_config(d)
        x2 = self._device(x2, np.float32)
        codes = cp.empty((n, (d * bits + 7) // 8), dtype=np.uint8)
        norms = cp.empty(n, dtype=np.float32)
        fn = self.function("turboquant.cu", f"tq_encode_kernel<{cfg.log_d}>")
        self._launch(fn, cfg, n, (x2, codes, norms, np.int64(n), self.constant(signs1),
                                  self.constant(signs2), self.constant(thresholds), np.int32(bits)))
        return codes, norms

    def decode(self, codes, norms, signs1, signs2, levels, bits, d):
        """Packed codes ``(n, n_bytes)`` uint8 + float16 norms ``(n,)`` -> ``(n, d)`` float32."""
        cp = _cupy()
        n = codes.shape[0]
        cfg = fwht_config(d)
        codes = self._device(codes, np.uint8, align=4)  # 4-byte word loads
        norms = self._device(norms, np.float16, align=2)  # read as half_bits
        out = cp.empty((n, d), dtype=np.float32)
        fn = self.function("turboquant.cu", f"tq_decode_kernel<{cfg.log_d}>")
        self._launch(fn, cfg, n, (codes, norms, out, np.int64(n), self.constant(signs1),
                                  self.constant(signs2), self.constant(levels), np.int32(bits)))
        return out


_CUDA = CudaKernels()


# --------------------------------------------------------------------------- drivers (any xp)


def _finite_or_raise(xp, y2, x, what="transform"):
    """``y2[:, 0]`` is a signed, scaled sum of each row: non-finite iff the row held NaN/Inf
    (or the sum overflowed). One small reduction instead of a pass over ``x``."""
    if bool(xp.isfinite(y2[:, 0]).all()):
        return
    with np.errstate(over="ignore", invalid="ignore"):
        ensure_finite(x, "x")  # names the NaN/Inf count
    raise ValueError(f"the {what} of x overflowed {y2.dtype}: pass x.astype(float32) "
                     f"(or float64) or rescale x")


def _butterfly_xp(x2, xp):
    """Plain radix-2 butterfly with array ops (float64 on the GPU: ``log2 d`` passes)."""
    n, d = x2.shape
    y = x2.copy()
    h = 1
    while h < d:
        pairs = y.reshape(n, d // (2 * h), 2, h)
        a = pairs[:, :, 0, :].copy()
        b = pairs[:, :, 1, :]
        pairs[:, :, 0, :] += b
        pairs[:, :, 1, :] = a - b
        h *= 2
    return y


def _fwht_driver(x, normalize, signs1, signs2, kernels, check_finite=True):
    """``signs2 * H(signs1 * x) / sqrt(d)`` (``/ 1`` without ``normalize``) on ``(..., d)``."""
    xp = kernels.xp
    x = as_float_array(x, "x", check_finite=False)
    d = check_power_of_two(x.shape[-1], "d (the last axis of x)")
    if d > MAX_KERNEL_D:
        raise ValueError(f"the GPU transform supports d up to {MAX_KERNEL_D}, got d = {d}: "
                         f"transform on the CPU (cupy.asnumpy(x)) or split d")
    x2 = xp.ascontiguousarray(x.reshape(-1, d))  # a device copy only when x is not contiguous
    if d == 1:  # H_1 = [1]
        y2 = x2.copy()
        for s in (signs1, signs2):
            if s is not None:
                y2 *= xp.asarray(s, dtype=x2.dtype)
    elif x2.dtype == np.float64:  # no float64 kernel: array-op butterfly, in float64
        y2 = x2 * xp.asarray(signs1, dtype=np.float64) if signs1 is not None else x2
        y2 = _butterfly_xp(y2, xp)
        if normalize:
            y2 *= 1.0 / math.sqrt(d)
        if signs2 is not None:
            y2 *= xp.asarray(signs2, dtype=np.float64)
    else:
        scale = np.float32(1.0 / math.sqrt(d)) if normalize else np.float32(1.0)
        y2 = kernels.fwht(x2, scale, signs1, signs2)
    if check_finite:
        _finite_or_raise(xp, y2, x)
    return y2.reshape(x.shape)


def _quantizer_constants(q, kernels):
    """Signs (full ``d_pad``), float32 thresholds and float32 levels of a TurboQuantMSE."""
    from .turboquant import _float32_thresholds  # noqa: PLC0415

    had = q._hadamard
    return (kernels.constant(had.signs1), kernels.constant(had.signs2),
            kernels.constant(_float32_thresholds(q.codebook.boundaries)),
            kernels.constant(q.codebook.centroids))


def _check_norms(xp, norms, x):
    """The CPU path's checks on the float32 norms, then float16 (same messages)."""
    if not bool(xp.isfinite(norms).all()):
        with np.errstate(over="ignore", invalid="ignore"):
            ensure_finite(x, "x")
        raise ValueError("x has a vector whose norm overflows float32; the norms are stored "
                         "as float16 (max 65504): rescale x first (e.g. x / x.std())")
    with np.errstate(over="ignore"):  # a norm above 65504 becomes inf: reported next
        norms16 = norms.astype(np.float16)
    if not bool(xp.isfinite(norms16).all()):
        raise ValueError(f"x has a vector of norm {float(norms.max()):.6g}, above the float16 "
                         f"maximum {_FLOAT16_MAX:g} in which norms are stored: rescale x "
                         f"first (e.g. x / x.std()) and multiply the decoded vectors back")
    return norms16


def _encode_dense(q, x2, xp):
    """The dense rotation with array ops (a matrix product): norms and packed codes."""
    from .packing import _pack_unchecked  # noqa: PLC0415
    from .turboquant import _float32_thresholds  # noqa: PLC0415

    norms = xp.sqrt(xp.sum(x2 * x2, axis=1))
    safe = xp.where(norms > 0, norms, np.float32(1.0))
    scale = xp.where(norms > 0, np.float32(q._sqrt_n) / safe, np.float32(0.0)).astype(np.float32)
    t = (x2 @ xp.asarray(q._matrix).T) * scale[:, None]
    thr = xp.asarray(_float32_thresholds(q.codebook.boundaries))
    codes = xp.searchsorted(thr, t, side="right").astype(np.uint8)
    return _pack_unchecked(codes, q.bits, bytewise=True), norms


def _encode_driver(q, x, kernels):
    """TurboQuantMSE.encode on ``kernels``' arrays: the same Encoded as the NumPy path."""
    from .turboquant import Encoded  # noqa: PLC0415

    xp = kernels.xp
    x = as_float_array(x, "x", check_finite=False)  # finiteness: checked on the norms
    check_last_axis(x, q.d, "x")
    batch = tuple(x.shape[:-1])
    x2 = x.reshape(-1, q.d).astype(np.float32, copy=False)
    if q.rotation == "dense":
        codes, norms = _encode_dense(q, x2, xp)
    else:
        n = q.d_pad
        fwht_config(n)  # raises above the table
        if n != q.d:  # zero padding to the power of two
            pad = xp.zeros((x2.shape[0], n), dtype=np.float32)
            pad[:, : q.d] = x2
            x2 = pad
        else:
            x2 = xp.ascontiguousarray(x2)
        s1, s2, thr, _ = _quantizer_constants(q, kernels)
        codes, norms = kernels.encode(x2, s1, s2, thr, q.bits)
    norms16 = _check_norms(xp, norms, x)
    return Encoded(codes.reshape(batch + (q.n_bytes,)), norms16.reshape(batch), q.bits, q.d,
                   q.d_pad, batch, q.rotation, q.fingerprint)


def _decode_driver(q, enc, kernels):
    """TurboQuantMSE.decode on ``kernels``' arrays (``enc`` already checked by the quantizer)."""
    from .packing import _unpack_unchecked  # noqa: PLC0415

    xp = kernels.xp
    batch = tuple(enc.shape)
    codes = xp.ascontiguousarray(xp.asarray(enc.codes).reshape(-1, q.n_bytes), dtype=np.uint8)
    norms = xp.ascontiguousarray(xp.asarray(enc.norms).reshape(-1), dtype=np.float16)
    if q.rotation == "dense":
        c = _unpack_unchecked(codes, q.bits, q.d_pad, bytewise=True)
        levels = xp.asarray(q._levels)  # centroids / sqrt(d), float32
        out = (levels[c.astype(np.intp)] @ xp.asarray(q._matrix)) * norms.astype(np.float32)[:, None]
    else:
        s1, s2, _, levels = _quantizer_constants(q, kernels)
        out = kernels.decode(codes, norms, s1, s2, levels, q.bits, q.d_pad)
        if q.d != q.d_pad:
            out = xp.ascontiguousarray(out[:, : q.d])
    return out.reshape(batch + (q.d,))


# --------------------------------------------------------------------------- public entry points


def fwht_gpu(x, normalize: bool = True, check_finite: bool = True):
    """Walsh-Hadamard transform of a CuPy array on its last axis (``fwht_kernel``).

    Parameters
    ----------
    x : (..., d) cupy.ndarray, float32 or float16 (float64: see Notes)
        ``d`` a power of two from 1 to 8192. Any strides: a non-contiguous
        ``x`` is copied on the device first.
    normalize : bool
        Divide by ``sqrt(d)`` (the orthonormal transform, default).
    check_finite : bool
        Raise on NaN/Inf as the NumPy path does (costs a small reduction and
        one device synchronisation per call).

    Returns
    -------
    y : (..., d) cupy.ndarray, ``x``'s dtype and shape

    Raises
    ------
    TypeError
        Non-float ``x``.
    ValueError
        ``d`` not a power of two or above 8192, empty or 0-d ``x``, NaN or Inf.

    Notes
    -----
    ``y = x @ hadamard(d).T / sqrt(d)``, equal to :func:`~turboquant_lab.hadamard.fwht`
    on the CPU up to float32 rounding (the kernel adds in butterfly order and
    scales once at the end). One read and one write of ``x``: the kernel is
    memory bound (``d log2 d`` additions per ``8 d`` bytes in float32).
    float16 is loaded as float16, computed in float32, stored as float16.
    float32 subnormals (below ``2**-126``, about ``1.2e-38``) count as zero,
    as in every CuPy-compiled kernel (``-ftz=true``); the emulation does the same.
    float64 has no kernel: it runs a plain butterfly of CuPy array operations
    (``log2 d`` passes over memory), exact in float64.

    Examples
    --------
    >>> import cupy as cp  # doctest: +SKIP
    >>> fwht_gpu(cp.array([1.0, 0.0, 0.0, 0.0], dtype=cp.float32))  # doctest: +SKIP
    array([0.5, 0.5, 0.5, 0.5], dtype=float32)
    """
    return _fwht_driver(x, normalize, None, None, _CUDA, check_finite)


def randomized_hadamard_gpu(x, signs1, signs2, normalize: bool = True, check_finite: bool = True):
    """``signs2 * fwht(signs1 * x)`` in one pass over memory (the fused kernel).

    Parameters
    ----------
    x : (..., d) cupy.ndarray, float32 or float16 (float64: array operations)
    signs1, signs2 : (d,) arrays of +-1 (NumPy or CuPy)
        ``RandomizedHadamard.signs1`` / ``signs2``; pass them swapped for the
        inverse, ``signs1 * fwht(signs2 * y)``.
    normalize, check_finite : bool
        As in :func:`fwht_gpu`.

    Returns
    -------
    y : (..., d) cupy.ndarray

    Notes
    -----
    The kernel multiplies by ``signs1`` after its loads and by ``signs2``
    before its stores, so the rotation ``D2 H D1`` costs the same memory
    traffic as the bare transform.
    """
    d = x.shape[-1] if hasattr(x, "shape") and len(x.shape) else None
    for name, s in (("signs1", signs1), ("signs2", signs2)):
        if tuple(getattr(s, "shape", ())) != (d,):
            raise ValueError(f"{name} must have shape ({d},) to match x's last axis, "
                             f"got {tuple(getattr(s, 'shape', ()))}")
    return _fwht_driver(x, normalize, signs1, signs2, _CUDA, check_finite)


def encode_mse_gpu(q, x):
    """``TurboQuantMSE.encode`` for a CuPy ``x``: the fused kernel (Hadamard) or array ops (dense).

    Same :class:`~turboquant_lab.turboquant.Encoded` as the NumPy path, with
    CuPy ``codes`` and ``norms``; the codes equal the NumPy path's except for
    values within float32 rounding of a codebook boundary. ``d_pad`` up to
    8192, ``bits`` 1 to 8.
    """
    return _encode_driver(q, x, _CUDA)


def decode_mse_gpu(q, enc):
    """``TurboQuantMSE.decode`` for CuPy codes: the fused kernel (Hadamard) or array ops (dense)."""
    return _decode_driver(q, enc, _CUDA)

