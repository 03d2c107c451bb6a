"""The CUDA side: compile the kernels with NVRTC (CuPy ``RawModule``), cache them, launch them.

The only module of the library that imports CuPy, and only inside its
functions: importing it (or :mod:`turboquant_lab.gpu`) needs no CuPy and no GPU.

The kernels live in ``turboquant_lab/gpu/kernels/`` (package data):

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
    mirrored by :data:`turboquant_lab.gpu.configs.FWHT_CONFIGS`.

How the transform maps onto the GPU (the model is Dao-AILab's
fast-hadamard-transform): each row is read once with 16-byte loads into the
registers of ``THREADS_PER_ROW`` threads; the stages whose pairs sit in one
thread run in registers, those whose pairs sit in two threads of one warp
use ``__shfl_xor_sync``, those across warps go through shared memory, and
the row is written once. :mod:`turboquant_lab.gpu.emulation` runs every
kernel in NumPy, loop for loop (lesson 09).

Every kernel is compiled on first use by NVRTC, one module per (kernel,
dtype, log2 d) and device, and cached. :class:`CudaKernels` has the three
launches that the drivers (:mod:`turboquant_lab.gpu.drivers`) call;
:class:`~turboquant_lab.gpu.emulation.EmulatedKernels` has the same methods
on NumPy arrays.
"""
from __future__ import annotations

import re
import threading
from importlib import resources

import numpy as np

from .configs import fwht_config

__all__ = [
    "KERNEL_FILES",
    "NVRTC_OPTIONS",
    "FLAG_SIGNS1",
    "FLAG_SIGNS2",
    "kernel_source",
    "event_times",
    "CudaKernels",
]

KERNEL_FILES = ("fwht.cu", "turboquant.cu")
"""The CUDA translation units in ``turboquant_lab/gpu/kernels`` (each includes ``fwht_common.cuh``)."""

NVRTC_OPTIONS = ("-std=c++17", "--fmad=false", "-ftz=true")
"""Compiler options: C++17 (``if constexpr``), no FMA contraction (bit-exact emulation), and
flush-to-zero of float32 subnormals, which CuPy appends to every NVRTC compilation anyway
(``-ftz=true``, the last option wins): stated here so that nvcc (tests/gpu/test_kernels.py)
compiles the same arithmetic, and mirrored by the emulation (``emulation._ftz``)."""

FLAG_SIGNS1, FLAG_SIGNS2 = 1, 2
"""``TQFLAG_SIGNS1`` / ``TQFLAG_SIGNS2`` of ``fwht.cu``: which sign flips ``fwht_kernel`` applies."""

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

    Examples
    --------
    >>> src = kernel_source("fwht.cu")
    >>> "fwht_kernel<" in src and "#include" not in src
    True
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
    the drivers prepare them. :class:`~turboquant_lab.gpu.emulation.EmulatedKernels`
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
        flags = (FLAG_SIGNS1 if signs1 is not None else 0) | (FLAG_SIGNS2 if signs2 is not None else 0)
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
