"""The CUDA side: compile the kernels with NVRTC (CuPy ``RawModule``), cache them, launch them.

The only module of the library that imports CuPy, and only inside its
functions: importing it (or :mod:`turboquant_lab.gpu`) needs no CuPy and no GPU.

The kernels live in ``turboquant_lab/gpu/kernels/`` (package data):

``fwht.cu``
    ``fwht_kernel<T, LOG_D, FLAGS, NORMALIZE>``: the Walsh-Hadamard transform of
    every row, with optional sign flips before and after (the randomized
    Hadamard ``D2 H D1`` in the same pass). float32 or float16 in memory
    (16-byte loads), float32 in registers; ``d`` a power of two from 2 to 8192.
``turboquant.cu``
    ``tq_encode_kernel<LOG_D, BITS, MODE>`` and ``tq_decode_kernel<LOG_D, BITS, MODE>``:
    TurboQuantMSE with the Hadamard rotation, fused (norm, rotation, codebook
    search on a uniform grid, bit packing; and back), ``bits`` 1 to 8,
    ``d_pad`` up to 8192, rows of ``d <= d_pad`` read and written with masked
    loads and stores (``MODE``).
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

Every kernel is compiled on first use by NVRTC, one module per
instantiation (kernel, dtype, log2 d, flags or bits, mode) and device, and
cached. :class:`CudaKernels` has the three launches that the drivers
(:mod:`turboquant_lab.gpu.drivers`) call;
:class:`~turboquant_lab.gpu.emulation.EmulatedKernels` has the same methods
on NumPy arrays.

No launch makes the host wait. The kernels report NaN/Inf (and, for the
encoder, norms too large for float16) by setting ``STATUS_*`` flags in a
one-word device array that the caller passes (one byte per flag: a plain
byte store by the thread that saw the value, no atomic); reading it is the
caller's choice (:mod:`~turboquant_lab.gpu.drivers`).
"""
from __future__ import annotations

import re
import threading
from importlib import resources
from typing import ClassVar

import numpy as np

from .configs import STATUS_NONFINITE, STATUS_NORM16, fwht_config, search_grid

__all__ = [
    "FLAG_SIGNS1",
    "FLAG_SIGNS2",
    "KERNEL_FILES",
    "NVRTC_OPTIONS",
    "STATUS_NONFINITE",
    "STATUS_NORM16",
    "CudaKernels",
    "event_times",
    "kernel_source",
    "name_expression",
    "row_mode",
]

KERNEL_FILES = ("fwht.cu", "turboquant.cu")
"""The CUDA translation units in ``turboquant_lab/gpu/kernels`` (each includes ``fwht_common.cuh``)."""

NVRTC_OPTIONS = ("-std=c++17", "--fmad=false", "-ftz=true")
"""Compiler options: C++17 (``if constexpr``), no FMA contraction (bit-exact emulation), and
flush-to-zero of float32 subnormals, which CuPy appends to every NVRTC compilation anyway
(``-ftz=true``, the last option wins): stated here so that nvcc (tests/gpu/test_kernels.py)
compiles the same arithmetic, and mirrored by the emulation (``emulation._ftz``)."""

FLAG_SIGNS1, FLAG_SIGNS2 = 1, 2
"""``TQ_FLAG_SIGNS1`` / ``TQ_FLAG_SIGNS2`` of ``fwht.cu``: the ``FLAGS`` template argument of
``fwht_kernel`` (which sign flips it applies)."""


_CTYPES = {"float32": "float", "float16": "half_bits"}


def row_mode(d: int, d_pad: int, vec: int = 4) -> int:
    """The ``MODE`` of the codec kernels for rows of ``d`` of ``d_pad`` elements in memory:
    0 all of them, 1 ``d`` a multiple of ``vec`` (whole vector loads or none), 2 any other
    (and at ``d_pad = 8192``, where mode 1 of the encoder spills registers on sm_80)."""
    if d == d_pad:
        return 0
    return 1 if d % vec == 0 and d_pad < 8192 else 2


def name_expression(kind: str, d: int, bits: int = 4, *, flags: int | None = None,
                    normalize: bool = True, mode: int = 0) -> tuple[str, str]:
    """``(file, instantiation)`` of a kernel, e.g. ``("fwht.cu", "fwht_kernel<float, 7, 0, true>")``.

    ``kind``: ``"fwht float32"``, ``"fwht float16"``, ``"fwht signed"`` (float32, both sign
    flips), ``"encode"`` or ``"decode"``; ``d`` the (padded) power of two. The launcher
    compiles these names, and ``tools/sass_budget.py`` counts their instructions.

    Examples
    --------
    >>> name_expression("encode", 128, 3)
    ('turboquant.cu', 'tq_encode_kernel<7, 3, 0>')
    """
    log_d = fwht_config(d).log_d
    if kind.startswith("fwht"):
        ctype = "half_bits" if kind == "fwht float16" else "float"
        if flags is None:
            flags = FLAG_SIGNS1 | FLAG_SIGNS2 if kind == "fwht signed" else 0
        return "fwht.cu", f"fwht_kernel<{ctype}, {log_d}, {flags}, {'true' if normalize else 'false'}>"
    if kind not in ("encode", "decode"):
        raise ValueError(f"kind must be 'fwht float32', 'fwht float16', 'fwht signed', 'encode' "
                         f"or 'decode', got {kind!r}")
    return "turboquant.cu", f"tq_{kind}_kernel<{log_d}, {int(bits)}, {int(mode)}>"

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
        import cupy
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

    # ---- status words

    _words: ClassVar[dict] = {}

    def new_status(self):
        """A fresh zeroed status word (``(1,)`` uint32 on the device); no host wait."""
        return _cupy().zeros(1, dtype=np.uint32)

    def status_word(self, name: str = "sticky"):
        """The device's ``"sticky"`` status word (what ``check_finite="lazy"`` calls OR into,
        read and cleared by :func:`turboquant_lab.gpu.check_status`), or its ``"discard"`` one."""
        cp = _cupy()
        key = (name, cp.cuda.Device().id)
        with self._lock:
            word = self._words.get(key)
            if word is None:
                word = self._words[key] = cp.zeros(1, dtype=np.uint32)
        return word

    @staticmethod
    def read_status(status) -> int:
        """The status bits (copies one word to the host: waits for the kernels before it)."""
        return int(status[0])

    @classmethod
    def grid(cls, thresholds, bits):
        """``(table, scale, magic, top, cells)`` of :func:`~turboquant_lab.gpu.configs.search_grid`
        on the device, cached by the thresholds."""
        cp = _cupy()
        host = np.ascontiguousarray(thresholds, dtype=np.float32)
        key = ("grid", host.tobytes(), int(bits), cp.cuda.Device().id)
        with cls._lock:
            hit = cls._constants.get(key)
        if hit is None:
            g = search_grid(host, bits)
            hit = (cp.asarray(g.table()), g.scale, g.magic, g.top, np.int32(g.size))
            with cls._lock:
                cls._constants[key] = hit
        return hit

    # ---- kernels

    def fwht(self, x2, scale, signs1=None, signs2=None, status=None, out=None):
        """``(n, d)`` float32/float16 -> ``signs2 * H(signs1 * x2) * scale`` (``fwht_kernel``).

        ``scale``: 1 or ``float32(1 / sqrt(d))`` (the ``NORMALIZE`` template argument).
        ``status``: the word the kernel flags ``STATUS_NONFINITE`` in (default: a fresh one).
        ``out``: a C-contiguous array of ``x2``'s shape and dtype to write (default: a new one).
        """
        cp = _cupy()
        n, d = x2.shape
        cfg = fwht_config(d)
        ctype = _CTYPES.get(np.dtype(x2.dtype).name)
        if ctype is None:
            raise TypeError(f"fwht_kernel reads float32 or float16, got {x2.dtype}")
        normalize = _normalize_flag(scale, d)
        vec = cfg.for_itemsize(np.dtype(x2.dtype).itemsize).vec
        x2 = self._device(x2, x2.dtype, align=x2.itemsize * vec)  # the vector loads
        y = cp.empty(x2.shape, dtype=x2.dtype) if out is None else _check_out(out, x2.shape, x2.dtype)
        flags = (FLAG_SIGNS1 if signs1 is not None else 0) | (FLAG_SIGNS2 if signs2 is not None else 0)
        s1 = self.constant(signs1) if signs1 is not None else y  # never read without its flag
        s2 = self.constant(signs2) if signs2 is not None else y
        status = self.new_status() if status is None else status
        kind = "fwht float16" if ctype == "half_bits" else "fwht float32"
        fn = self.function(*name_expression(kind, d, flags=flags, normalize=normalize))
        self._launch(fn, cfg, n, (x2, y, np.int64(n), s1, s2, status))
        return y

    def encode(self, x2, signs1, signs2, thresholds, bits, status=None, out=None):
        """``(n, d)`` float32 rows, ``d <= d_pad = len(signs1)`` -> packed codes
        ``(n, ceil(d_pad * bits / 8))`` uint8 and norms ``(n,)`` float32 (``tq_encode_kernel``);
        ``out``: a ``(codes, norms)`` pair to write instead of new arrays."""
        cp = _cupy()
        n, d = x2.shape
        d_pad = int(np.shape(signs1)[0])
        cfg = fwht_config(d_pad)
        if d > d_pad:
            raise ValueError(f"x has {d} columns, more than the {d_pad} of the signs")
        mode = row_mode(d, d_pad)
        x2 = self._device(x2, np.float32, align=16 if mode < 2 else 4)
        if out is None:
            codes = cp.empty((n, (d_pad * bits + 7) // 8), dtype=np.uint8)
            norms = cp.empty(n, dtype=np.float32)
        else:
            codes = _check_out(out[0], (n, (d_pad * bits + 7) // 8), np.uint8)
            norms = _check_out(out[1], (n,), np.float32)
        table, scale, magic, top, cells = self.grid(thresholds, bits)
        status = self.new_status() if status is None else status
        fn = self.function(*name_expression("encode", d_pad, bits, mode=mode))
        self._launch(fn, cfg, n, (x2, codes, norms, np.int64(n), np.int32(d), self.constant(signs1),
                                  self.constant(signs2), table, scale, magic, top, cells, status))
        return codes, norms

    def decode(self, codes, norms, signs1, signs2, levels, bits, d, d_out=None, out=None):
        """Packed codes ``(n, n_bytes)`` uint8 + float16 norms ``(n,)`` -> ``(n, d_out)`` float32,
        the first ``d_out`` (default ``d``) of the ``d`` decoded coordinates (``tq_decode_kernel``)."""
        cp = _cupy()
        n = codes.shape[0]
        cfg = fwht_config(d)
        d_out = d if d_out is None else int(d_out)
        mode = row_mode(d_out, d)
        codes = self._device(codes, np.uint8, align=4)  # 2- and 4-byte field loads
        norms = self._device(norms, np.float16, align=2)  # read as half_bits
        out = cp.empty((n, d_out), dtype=np.float32) if out is None else _check_out(out, (n, d_out), np.float32)
        fn = self.function(*name_expression("decode", d, bits, mode=mode))
        self._launch(fn, cfg, n, (codes, norms, out, np.int64(n), np.int32(d_out),
                                  self.constant(signs1), self.constant(signs2),
                                  self.constant(levels)))
        return out


def _check_out(out, shape, dtype):
    """``out`` when it is a C-contiguous array of ``shape`` and ``dtype`` (16-byte aligned)."""
    if tuple(out.shape) != tuple(shape) or out.dtype != np.dtype(dtype) or not out.flags.c_contiguous \
            or out.data.ptr % 16:
        raise ValueError(f"out must be a C-contiguous, 16-byte aligned {np.dtype(dtype)} array of shape "
                         f"{tuple(shape)}, got {out.dtype} {tuple(out.shape)}: use cupy.empty")
    return out


def _normalize_flag(scale, d) -> bool:
    """``NORMALIZE`` from the scale a driver passes: 1 or float32(1 / sqrt(d)), nothing else."""
    scale = np.float32(scale)
    if scale == np.float32(1.0):
        return False
    if scale == np.float32(1.0 / np.sqrt(d)):
        return True
    raise ValueError(f"the kernel scales by 1 or 1/sqrt(d) = {np.float32(1.0 / np.sqrt(d))}, "
                     f"got {scale}: multiply the result instead")
