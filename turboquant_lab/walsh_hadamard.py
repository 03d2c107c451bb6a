"""The Walsh-Hadamard transform: the Sylvester matrix, a fast transform, a stage trace.

``hadamard(n)`` is the +1/-1 Sylvester matrix, ``fwht(x)`` applies
``hadamard(d) / sqrt(d)`` to every vector on the last axis of a ``(..., d)``
array in O(d log d) operations instead of O(d^2), and ``fwht_stages(x)``
records the classic butterfly stage by stage for lesson 05.

How ``fwht`` is fast in NumPy
-----------------------------
The textbook radix-2 butterfly is slow in NumPy: every stage is a pass of
strided adds over short runs. Instead ``fwht`` uses the Kronecker
factorisation of the Sylvester matrix,

    H_d = H_f1 (x) H_f2 (x) ... (x) H_fk,        d = f1 f2 ... fk,

so that a row reshaped to an ``f1 x f2 x ... x fk`` tensor is transformed by
multiplying each axis by a small ``H_f`` (a few BLAS calls that cost ``f``
multiply-adds per element and axis). It works in cache-sized row blocks, on
all cores (BLAS limited to one thread per block, see ``_parallel``),
with ``1/sqrt(f)`` folded into each small factor so the normalisation is free.
The factorisation and strategy for each ``d`` come from one table,
``_AUTO_STRATEGY`` and ``_KRON_FACTORS``, with the measurements that chose it.

Plans and wisdom (as FFTW does it)
----------------------------------
That table was measured on one CPU; another one may prefer other factors.
:func:`plan_fwht` returns the table's plan (``measure=False``, FFTW's
"estimate") or times the candidate factorisations and row-block sizes on
this machine and keeps the fastest (``measure=True``); ``fwht(x,
plan="measure")`` does the same on first use of a ``(d, dtype)``. Measured
plans are kept in memory as *wisdom*, keyed by the machine (CPU model,
OpenBLAS kernel, numpy version): :func:`export_wisdom` writes them to a JSON
file (by default under the user's cache directory, :func:`wisdom_path`),
:func:`import_wisdom` reads them back (plans of other machines are kept but
not used; a corrupt file is ignored with a warning), :func:`forget_wisdom`
clears them. Nothing is written unless :func:`export_wisdom` is called.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import platform
import threading
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._parallel import blas_controller, for_each_block
from ._validate import as_float_array, check_power_of_two, ensure_finite
from .backend import get_xp, gpu_function, is_cupy_array

__all__ = [
    "MAX_LOG2_D",
    "STRATEGIES",
    "FwhtPlan",
    "plan_fwht",
    "export_wisdom",
    "import_wisdom",
    "forget_wisdom",
    "wisdom_path",
    "machine_key",
    "fwht",
    "fwht_reference",
    "fwht_stages",
    "hadamard",
    "hadamard_op_counts",
]

MAX_LOG2_D = 16
"""``fwht`` and ``hadamard`` support every power of two from 1 to ``2**MAX_LOG2_D``."""
_MAX_D = 1 << MAX_LOG2_D
_MAX_DENSE_D = 1 << 13  # the dense strategy needs a d x d matrix: 256 MiB in float32 at 2**13

# Kronecker factors per d, the last one applied first. Chosen by measurement on
# the 2-core AMD EPYC (Zen 4) dev machine, numpy 2.4 + OpenBLAS 0.3.31, float32,
# 32 MiB arrays into a preallocated output, 1 MiB blocks, 2 worker threads, the
# minimum over 3-5 rounds (re-measure: benchmarks/fwht_cpu.py --factors). Figures
# are time / np.copyto of the same array, "a / b" from two runs (b under a load
# of ~2 from other processes, so higher); (d,) is the dense product:
#   d=32     (32,) 1.6 / 1.9           (2, 16) 2.2 / 2.7         (4, 8) 2.5 / 3.0
#   d=64     (4, 16) 1.3 / 2.7         (8, 8) 1.7 / 3.0          (64,) 2.2 / 3.7
#   d=128    (8, 16) 1.8 / 2.4         (4, 32) 2.2 / 3.0         (2, 4, 16) 2.8 / 3.7
#   d=256    (16, 16) 1.7 / 2.0        (8, 32) 2.0 / 2.3         (2, 8, 16) 2.2 / 2.5
#   d=512    (32, 16) 1.95 / 2.6       (16, 32) 1.97 / 2.6       (2, 16, 16) 2.2 / 2.8
#   d=1024   (4, 16, 16) 2.5 / 3.0     (8, 8, 16) 2.5 / 3.0      (32, 32) 2.8 / -
#   d=2048   (2, 4, 16, 16) 2.7 / 2.2  (2, 8, 8, 16) 2.6 / 2.2   (8, 16, 16) 2.6 / 3.05
#   d=4096   (4, 4, 16, 16) 2.4 / 3.3  (16, 16, 16) 2.4 / 3.45   (64, 64) 4.7 / -
#   d=8192   (4, 8, 16, 16) 2.4 / 3.0  (2, 16, 16, 16) 2.6 / -   (32, 16, 16) 2.9 / -
#   d=16384  (4, 16, 16, 16) 2.6 / 3.5 (4, 4, 4, 16, 16) - / 3.5 (64, 16, 16) 5.8 / -
#   d=32768  (4, 4, 8, 16, 16) - / 2.95                          (8, 16, 16, 16) - / 3.6
#   d=65536  (4, 4, 16, 16, 16) 3.4 / 3.6                        (16, 16, 16, 16) 4.5 / -
# The pattern: a last factor of 16 (one GEMM with K = 16 runs near the FMA
# peak), more factors of 16 in the middle (each a batch of small products,
# ~30 ns per call), and small factors (2-8) in front, where a (f, f) @ (f, d/f)
# product per row is cheap. Runs differ by up to 1.3x on this shared machine,
# so entries within ~10% of each other are ties.
_KRON_FACTORS: dict[int, tuple[int, ...]] = {
    1: (1,),
    2: (2,),
    4: (2, 2),
    8: (2, 4),
    16: (4, 4),
    32: (2, 16),
    64: (4, 16),
    128: (8, 16),
    256: (16, 16),
    512: (32, 16),
    1024: (4, 16, 16),
    2048: (2, 4, 16, 16),
    4096: (4, 4, 16, 16),
    8192: (4, 8, 16, 16),
    16384: (4, 16, 16, 16),
    32768: (4, 4, 8, 16, 16),
    65536: (4, 4, 16, 16, 16),
}

# The strategy ``fwht`` uses for each d (strategy=None). Up to d=32 one dense
# GEMM (K=d) beats any factorisation (d=32: dense 1.6-1.9x copy, best kron
# 2.2-2.7x); from d=64 on the Kronecker product wins (d=64: 1.3-2.7x vs dense
# 2.2-3.7x; d=1024: 2.5x vs dense 38x; d=4096: 2.4x vs dense 150-380x). The
# radix-2 NumPy butterfly is never fastest (25-60x copy) and is kept for
# teaching and as an independent cross-check.
_AUTO_STRATEGY: dict[int, str] = {d: ("dense" if d <= 32 else "kron") for d in _KRON_FACTORS}

STRATEGIES = ("kron", "dense", "butterfly")
"""Names accepted by ``fwht(..., strategy=name)``; ``None`` picks from ``_AUTO_STRATEGY``."""

_BLOCK_BYTES = 1 << 20  # rows per block: about 1 MiB of input (measured: 0.25-4 MiB within noise)


# --------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------


def hadamard(n: int, dtype=np.float64) -> np.ndarray:
    """The ``n x n`` Sylvester Hadamard matrix, with entries +1 and -1.

    Parameters
    ----------
    n : int
        Order of the matrix, a power of two from 1 to ``2**16``.
    dtype : numpy dtype
        Output dtype (``np.float64`` by default; any type that holds -1).

    Returns
    -------
    H : (n, n) ndarray
        Symmetric, ``H @ H.T == n * I``; ``H / sqrt(n)`` is orthogonal.

    Raises
    ------
    ValueError
        If ``n`` is not a power of two or is above ``2**16``.
    TypeError
        If ``n`` is not an integer.

    Notes
    -----
    Sylvester's construction doubles the order at each step:

    .. math:: H_1 = [1], \\qquad
              H_{2m} = \\begin{pmatrix} H_m & H_m \\\\ H_m & -H_m \\end{pmatrix},

    so ``H[i, j] = (-1)^popcount(i & j)``. This is ``scipy.linalg.hadamard(n)``.
    It takes ``n**2`` entries of memory: 32 GiB in float64 at ``n = 2**16``.

    Examples
    --------
    >>> hadamard(4)
    array([[ 1.,  1.,  1.,  1.],
           [ 1., -1.,  1., -1.],
           [ 1.,  1., -1., -1.],
           [ 1., -1., -1.,  1.]])
    """
    n = check_power_of_two(n, "n", max_value=_MAX_D)
    h = np.empty((n, n), dtype=dtype)
    h[0, 0] = 1
    m = 1
    while m < n:  # fill the three new quadrants in place, no temporaries
        h[:m, m:2 * m] = h[:m, :m]
        h[m:2 * m, :m] = h[:m, :m]
        np.negative(h[:m, :m], out=h[m:2 * m, m:2 * m])
        m *= 2
    return h


def hadamard_op_counts(d: int) -> tuple[int, int]:
    """Additions/multiplications per vector: dense product vs fast transform.

    Parameters
    ----------
    d : int
        Dimension, a power of two.

    Returns
    -------
    (dense_ops, fast_ops) : tuple of int
        ``d * d`` for ``H @ v`` and ``d * log2(d)`` for the butterfly (each of
        the ``log2(d)`` stages does ``d`` additions or subtractions).

    Examples
    --------
    >>> hadamard_op_counts(128)
    (16384, 896)
    """
    d = check_power_of_two(d, "d")
    return d * d, d * (d.bit_length() - 1)


@lru_cache(maxsize=64)
def _factor(f: int, dtype_char: str, normalize: bool) -> np.ndarray:
    """``hadamard(f)`` (scaled by ``1/sqrt(f)`` when ``normalize``), cached and read-only."""
    dtype = np.dtype(dtype_char)
    h = hadamard(f, dtype=dtype)
    if normalize:
        h *= dtype.type(1.0 / np.sqrt(f))  # +-1 times the rounded scale: exact
    h.flags.writeable = False
    return h


def _h_matrix(f: int, dtype, normalize: bool) -> np.ndarray:
    dtype = np.dtype(dtype)
    if f <= 1024:  # keep big dense matrices out of the cache
        return _factor(f, dtype.char, normalize)
    return _factor.__wrapped__(f, dtype.char, normalize)


# --------------------------------------------------------------------------------------
# Oracle and teaching trace
# --------------------------------------------------------------------------------------


def fwht_reference(x, normalize: bool = True) -> np.ndarray:
    """Walsh-Hadamard transform as a plain dense product (the tests' oracle).

    Parameters
    ----------
    x : (..., d) array_like of float (NumPy or CuPy)
        Vectors on the last axis; ``d`` a power of two up to 8192.
    normalize : bool
        Divide by ``sqrt(d)`` (the orthonormal transform, default).

    Returns
    -------
    y : (..., d) array, same array module as ``x``
        ``x @ hadamard(d).T / sqrt(d)``, computed in float64 and returned in
        ``x``'s dtype. O(d^2) work and memory: meant for checking, not speed.

    Examples
    --------
    >>> fwht_reference(np.array([1.0, 0.0, 0.0, 0.0]))
    array([0.5, 0.5, 0.5, 0.5])
    """
    x = as_float_array(x, "x")
    xp = get_xp(x)
    d = check_power_of_two(x.shape[-1], "d (the last axis of x)", max_value=_MAX_DENSE_D)
    y = xp.asarray(x, dtype=xp.float64) @ xp.asarray(hadamard(d)).T
    if normalize:
        y /= np.sqrt(d)
    return y.astype(x.dtype, copy=False)


def fwht_stages(x) -> list[np.ndarray]:
    """The iterative in-place butterfly, stage by stage (for teaching).

    Parameters
    ----------
    x : (d,) or (..., d) array_like of float
        ``d`` a power of two.

    Returns
    -------
    stages : list of ``log2(d) + 1`` arrays of shape ``x.shape``
        ``stages[0]`` is (a copy of) the input and ``stages[s + 1]`` the vector
        after butterfly stage ``s``, unnormalized; ``stages[-1]`` equals
        ``fwht(x, normalize=False)``. Same dtype and array module as ``x``
        (float16 is computed in float32).

    Notes
    -----
    Stage ``s`` (``s = 0, 1, ..., log2(d) - 1``) pairs element ``i`` with
    ``i + 2**s`` for every ``i`` whose bit ``s`` is 0 and replaces the pair
    ``(a, b)`` by ``(a + b, a - b)``: stride 1 first, then 2, 4, ... Each
    stage costs ``d`` additions, so the transform costs ``d log2 d``.

    Examples
    --------
    >>> [s.tolist() for s in fwht_stages(np.array([1.0, 2.0, 3.0, 4.0]))]
    [[1.0, 2.0, 3.0, 4.0], [3.0, -1.0, 7.0, -1.0], [10.0, -2.0, -4.0, 0.0]]
    """
    x = as_float_array(x, "x")
    xp = get_xp(x)
    d = check_power_of_two(x.shape[-1], "d (the last axis of x)", max_value=_MAX_D)
    work = xp.array(x, dtype=np.promote_types(x.dtype, np.float32))
    stages = [xp.array(x)]
    h = 1
    while h < d:
        pairs = work.reshape(*x.shape[:-1], d // (2 * h), 2, h)
        a = pairs[..., 0, :].copy()
        b = pairs[..., 1, :]
        pairs[..., 0, :] += b
        xp.subtract(a, b, out=pairs[..., 1, :])
        stages.append(work.astype(x.dtype))
        h *= 2
    return stages


# --------------------------------------------------------------------------------------
# Strategies. Each transforms a block of rows: src (m, d) -> dst (m, d), using
# scratch (m, d) as it needs; dst and scratch are C-contiguous, src may not be.
# --------------------------------------------------------------------------------------


def _fwht_dense(src, dst, scratch, normalize):
    """One GEMM with the ``d x d`` matrix: ``d`` multiply-adds per element."""
    d = src.shape[-1]
    np.matmul(src, _h_matrix(d, dst.dtype, normalize), out=dst)  # H is symmetric


def _fwht_kron(src, dst, scratch, normalize, factors=None):
    """Kronecker factorisation: one small ``H_f`` per axis of the ``f1 x ... x fk`` view.

    The last factor is one GEMM on ``(m * d / fk, fk)``; every other factor
    ``f`` multiplies the middle axis of a ``(P, f, Q)`` view (a batch of
    ``(f, f) @ (f, Q)`` products). Results ping-pong between ``dst`` and
    ``scratch`` so that the last lands in ``dst``.
    """
    m, d = src.shape
    if factors is None:
        factors = _KRON_FACTORS[d]
    k = len(factors)
    q = 1
    for step, f in enumerate(reversed(factors)):
        out = dst if (k - 1 - step) % 2 == 0 else scratch
        h = _h_matrix(f, dst.dtype, normalize)
        if q == 1:
            np.matmul(src.reshape(-1, f), h, out=out.reshape(-1, f))
        else:
            np.matmul(h, src.reshape(-1, f, q), out=out.reshape(-1, f, q))
        src = out
        q *= f


def _fwht_butterfly(src, dst, scratch, normalize):
    """Radix-2 butterfly with NumPy ufuncs: ``log2(d)`` passes of adds and subtracts."""
    m, d = src.shape
    stages = d.bit_length() - 1
    bufs = (dst, scratch) if stages % 2 == 1 else (scratch, dst)  # last stage lands in dst
    if stages == 0:
        np.copyto(dst, src)
    h = 1
    for s in range(stages):
        out = bufs[s % 2].reshape(m, d // (2 * h), 2, h)
        pairs = src.reshape(m, d // (2 * h), 2, h)
        np.add(pairs[:, :, 0], pairs[:, :, 1], out=out[:, :, 0])
        np.subtract(pairs[:, :, 0], pairs[:, :, 1], out=out[:, :, 1])
        src = bufs[s % 2]
        h *= 2
    if normalize and d > 1:
        dst *= dst.dtype.type(1.0 / np.sqrt(d))


_STRATEGY_FUNCS = {"kron": _fwht_kron, "dense": _fwht_dense, "butterfly": _fwht_butterfly}


# --------------------------------------------------------------------------------------
# Blocked, threaded driver
# --------------------------------------------------------------------------------------

def _check_block(src, dst, x) -> None:
    """Raise if the block's input held NaN or Inf, looking at one output column only.

    ``y[:, 0]`` is ``sum(x_row) / sqrt(d)``, accumulated with positive weights
    in any order, so it is NaN or Inf whenever the row holds a NaN or an Inf
    (NaN + a = NaN, Inf + finite = Inf, Inf - Inf = NaN). Reading it costs one
    element per row instead of a pass over the block.
    """
    if np.isfinite(dst[:, 0]).all():
        return
    if not np.isfinite(src).all():
        with np.errstate(invalid="ignore", over="ignore"):
            ensure_finite(x, "x")  # counts and raises the library's standard message
    raise ValueError(f"the transform of x overflowed {dst.dtype} (|x| up to "
                     f"{float(np.abs(src).max()):.3g}): pass x.astype(np.float64)")


_scratch = threading.local()


def _scratch_block(rows: int, d: int, dtype) -> np.ndarray:
    """A reusable ``(rows, d)`` scratch array, one per thread (no page faults per call)."""
    dtype = np.dtype(dtype)
    nbytes = rows * d * dtype.itemsize
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _scratch.buf = np.empty(max(nbytes, _BLOCK_BYTES), dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(rows, d)


def _parallel_blocks(x2, out2, func, normalize, x_orig, min_rows=1, scratch=True,
                     block_bytes=_BLOCK_BYTES) -> None:
    """Run ``func`` over row blocks of ``x2`` into ``out2``, on all cores (``_parallel``).

    Each block is about ``_BLOCK_BYTES``; ``min_rows`` keeps blocks tall where
    a large operand is re-read per block (the dense ``d x d`` matrix). A single
    block keeps BLAS's own threads (one large product uses them well).
    """
    n, d = x2.shape
    rows = max(min_rows, block_bytes // (d * out2.dtype.itemsize))

    def new_scratch():
        return _scratch_block(min(rows, n), d, out2.dtype) if scratch else None

    def body(start, stop, buf):
        src, dst = x2[start:stop], out2[start:stop]
        with np.errstate(invalid="ignore", over="ignore"):  # _check_block raises instead
            func(src, dst, None if buf is None else buf[:stop - start], normalize)
        _check_block(src, dst, x_orig)

    for_each_block(n, rows, body, new_scratch, limit_single=False)


def fwht(x, normalize: bool = True, strategy: str | None = None, *, out=None, plan=None):
    """Fast Walsh-Hadamard transform along the last axis.

    Parameters
    ----------
    x : (..., d) array of float16, float32 or float64 (NumPy or CuPy)
        Vectors on the last axis; ``d`` a power of two from 1 to ``2**16``.
        Any strides (non-contiguous views are fine).
    normalize : bool
        Divide by ``sqrt(d)`` (default), making the transform orthonormal and
        its own inverse. ``False`` gives the plain +1/-1 sums.
    strategy : {None, "kron", "dense", "butterfly"}
        ``None`` (default) picks the fastest measured for ``d``; a name forces
        one (for benchmarks and tests). "dense" is limited to ``d <= 8192``.
        Ignored for CuPy input.
    out : ndarray, optional
        Where to write the result: C-contiguous, ``x``'s shape and dtype, not
        overlapping ``x`` (no in-place transform). Reusing one saves allocating
        (and page-faulting) a fresh array per call, about one ``np.copyto`` of
        the array on a large input.
    plan : {None, "estimate", "measure"} or FwhtPlan
        How to run it (with ``strategy=None``): ``None``/``"estimate"`` the
        built-in table, ``"measure"`` the fastest plan measured on this machine
        (:func:`plan_fwht` with ``measure=True``: from the wisdom, or timed once
        per ``(d, dtype)``, which takes a second or so), or a plan from
        :func:`plan_fwht`. Every plan gives the transform within float rounding.

    Returns
    -------
    y : (..., d) array, same dtype and array module as ``x``
        ``y = x @ hadamard(d).T / sqrt(d)``, i.e. ``hadamard(d) @ v / sqrt(d)``
        for each vector ``v``. float16 is computed in float32. ``out`` when given.

    Raises
    ------
    ValueError
        If ``d`` is not a power of two (or above ``2**16``), ``x`` is empty,
        0-d or holds NaN or Inf, ``strategy`` is unknown, or ``out`` does not
        fit (then nothing is computed; after a NaN/Inf error its content is
        undefined).
    TypeError
        If ``x`` has an integer, bool or complex dtype, or ``out`` is not an
        ndarray.

    Notes
    -----
    With ``H_1 = [1]`` and ``H_2m = [[H_m, H_m], [H_m, -H_m]]`` the transform is
    ``y = H_d x / sqrt(d)``; because ``H_d H_d = d I``, the normalized
    transform undoes itself. The butterfly needs ``d log2 d`` additions
    instead of the ``d^2`` of the matrix product. For speed in NumPy the
    default path uses ``H_d = H_f1 (x) ... (x) H_fk`` (see the module notes):
    on a 32 MiB float32 array on a 2-core machine, about 3-3.5x the time of
    ``np.copyto`` at ``d = 128 ... 4096`` (2-2.5x when writing into ``out``),
    against 7x (d=128) to 190x (d=4096) for the dense product
    (``benchmarks/fwht_cpu.py``). It runs on all cores and holds the
    BLAS thread count at 1 meanwhile (``threadpoolctl``). NaN and Inf in ``x``
    are detected after the transform, block by block, from ``y[..., 0]``
    (the scaled sum of each vector, which they always make non-finite), so
    valid input pays no separate pass. A finite ``x`` whose transform
    overflows also raises.

    Examples
    --------
    >>> fwht(np.array([1.0, 0.0, 0.0, 0.0]))
    array([0.5, 0.5, 0.5, 0.5])
    >>> fwht(np.array([1.0, 2.0, 3.0, 4.0]), normalize=False)
    array([10., -2., -4.,  0.])
    """
    if is_cupy_array(x):  # the kernel of turboquant_lab.gpu, through the backend's registry
        y = gpu_function("fwht")(x, normalize=normalize)
        if out is None:
            return y
        out[...] = y
        return out
    x = as_float_array(x, "x", check_finite=False)  # finiteness: checked per block below
    d = check_power_of_two(x.shape[-1], "d (the last axis of x)", max_value=_MAX_D)
    work_dtype = np.float32 if x.dtype == np.float16 else x.dtype
    block_bytes = _BLOCK_BYTES
    func = None
    if plan is not None and plan != "estimate":
        if strategy is not None:
            raise ValueError("pass strategy or plan, not both")
        if isinstance(plan, str):
            if plan != "measure":
                raise ValueError(f'plan must be None, "estimate", "measure" or a FwhtPlan, got {plan!r}')
            plan = plan_fwht(d, work_dtype, measure=True)
        if not isinstance(plan, FwhtPlan):
            raise TypeError(f"plan must be a FwhtPlan from plan_fwht, got {type(plan).__name__}")
        if plan.d != d:
            raise ValueError(f"this plan is for d = {plan.d}, but x has d = {d}: plan_fwht({d}, ...)")
        strategy, block_bytes = plan.strategy, plan.block_bytes
        if strategy == "kron":
            func = functools.partial(_fwht_kron, factors=plan.factors)
    if strategy is None:
        strategy = _AUTO_STRATEGY[d]
    func = func or _STRATEGY_FUNCS.get(strategy)
    if func is None:
        raise ValueError(f"strategy must be None (automatic) or one of {STRATEGIES}, "
                         f"got {strategy!r}")
    if strategy == "dense" and d > _MAX_DENSE_D:
        raise ValueError(f"strategy='dense' needs a d x d matrix and is limited to "
                         f"d <= {_MAX_DENSE_D}, got d = {d}: use strategy='kron' or None")
    if out is not None:
        _check_out(out, x)
    x2 = x.reshape(-1, d)  # a view whenever the strides allow it
    if x2.dtype != work_dtype:
        x2 = x2.astype(work_dtype)
    y = out if out is not None and out.dtype == work_dtype else np.empty(x.shape, work_dtype)
    dense = strategy == "dense"  # tall blocks, so that each pass over H does more rows
    _parallel_blocks(x2, y.reshape(-1, d), func, bool(normalize), x,
                     min_rows=256 if dense else 1, scratch=not dense, block_bytes=block_bytes)
    if out is not None:
        if y is not out:  # float16: computed in float32
            np.copyto(out, y, casting="unsafe")
        return out
    return y.astype(x.dtype, copy=False)


def _check_out(out, x) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array like x, got {type(out).__name__}")
    if out.shape != x.shape or out.dtype != x.dtype:
        raise ValueError(f"out must have x's shape {x.shape} and dtype {x.dtype}, got "
                         f"{out.shape} {out.dtype}: use np.empty_like(x)")
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError("out must be a writeable C-contiguous array: use np.empty_like(x)")
    if np.may_share_memory(out, x):
        raise ValueError("out must not overlap x (fwht does not transform in place): "
                         "pass a separate array, e.g. np.empty_like(x)")


# --------------------------------------------------------------------------------------
# Plans and wisdom
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FwhtPlan:
    """How :func:`fwht` transforms vectors of one ``d`` and dtype (see :func:`plan_fwht`).

    Attributes
    ----------
    d : int
    dtype : str
        ``"float32"`` or ``"float64"`` (float16 is computed in float32).
    strategy : str
        ``"kron"`` or ``"dense"``.
    factors : tuple of int
        The Kronecker factors (product ``d``; the last is applied first); ``(d,)`` for dense.
    block_bytes : int
        Bytes of input per row block (one block per worker at a time).
    source : str
        ``"estimate"`` (the built-in table), ``"measured"`` (timed now) or ``"wisdom"``.
    ratio : float or None
        Measured time over ``np.copyto`` of the same array (None for an estimate).
    """

    d: int
    dtype: str
    strategy: str
    factors: tuple
    block_bytes: int = _BLOCK_BYTES
    source: str = "estimate"
    ratio: float | None = None

    def __post_init__(self):
        if self.strategy not in ("kron", "dense") or int(np.prod(self.factors)) != self.d or \
                any(f < 1 or f & (f - 1) for f in self.factors) or self.block_bytes < 1024:
            raise ValueError(f"not a valid plan: {self!r} (factors must be powers of two whose "
                             f"product is d, strategy 'kron' or 'dense')")


_wisdom: dict = {}  # machine key -> {"float32:128": plan fields}
_wisdom_lock = threading.Lock()
_wisdom_loaded: set = set()  # default files already read (once per process)


def machine_key() -> str:
    """What a measured plan depends on: CPU model, OpenBLAS kernel, numpy version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ctl = blas_controller()
    kernel = "-"
    if ctl is not None:
        for lib in ctl.lib_controllers:
            info = lib.info()
            if info.get("internal_api") == "openblas":
                kernel = f"openblas {info.get('version')} {info.get('architecture')}"
                break
    return f"{cpu} | {kernel} | numpy {np.__version__} | {os.cpu_count()} cpus"


def wisdom_path() -> Path:
    """The default wisdom file: ``$XDG_CACHE_HOME`` (or ``~/.cache``)/turboquant-lab/fwht-wisdom.json."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "turboquant-lab" / "fwht-wisdom.json"


def _plan_key(d: int, dtype) -> str:
    return f"{np.dtype(dtype).name}:{int(d)}"


def export_wisdom(path=None) -> Path:
    """Write the measured plans (every machine's) as JSON to ``path`` (default :func:`wisdom_path`).

    Returns
    -------
    Path
        The file written (its folder is created).
    """
    path = Path(path) if path is not None else wisdom_path()
    with _wisdom_lock:
        data = {"format": "turboquant-lab fwht wisdom", "version": 1,
                "machines": {m: dict(plans) for m, plans in _wisdom.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def import_wisdom(path=None) -> int:
    """Read plans written by :func:`export_wisdom` into memory; returns how many are for this machine.

    A missing file imports nothing; an unreadable or malformed one is ignored
    with a ``UserWarning`` (then nothing of it is used).
    """
    path = Path(path) if path is not None else wisdom_path()
    if not path.exists():
        return 0
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != "turboquant-lab fwht wisdom" or data.get("version") != 1:
            raise ValueError("not a turboquant-lab fwht wisdom file (version 1)")
        machines = {}
        for machine, plans in data["machines"].items():
            machines[str(machine)] = {}
            for key, fields in plans.items():
                plan = FwhtPlan(**{**fields, "factors": tuple(fields["factors"]), "source": "wisdom"})
                if key != _plan_key(plan.d, plan.dtype):
                    raise ValueError(f"entry {key!r} holds a plan for {plan.dtype}:{plan.d}")
                machines[str(machine)][key] = _plan_fields(plan)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        warnings.warn(f"ignoring the FWHT wisdom file {path}: {err}", UserWarning, stacklevel=2)
        return 0
    with _wisdom_lock:
        for machine, plans in machines.items():
            _wisdom.setdefault(machine, {}).update(plans)
    return len(machines.get(machine_key(), {}))


def forget_wisdom() -> None:
    """Drop every plan in memory (files are left alone; the default file is not re-read)."""
    with _wisdom_lock:
        _wisdom.clear()
        _wisdom_loaded.add(str(wisdom_path()))


def _plan_fields(plan: FwhtPlan) -> dict:
    return {"d": plan.d, "dtype": plan.dtype, "strategy": plan.strategy, "factors": list(plan.factors),
            "block_bytes": plan.block_bytes, "ratio": plan.ratio}


def _kron_candidates(d: int) -> list[tuple[int, ...]]:
    """Factorisations of d worth timing: non-decreasing powers of two from 2 to 64, at most 5
    factors, the last (applied first, one GEMM) at least 4; plus the table's own."""
    if d < 4:
        return [_KRON_FACTORS[d]]
    log_d = d.bit_length() - 1
    out = {_KRON_FACTORS[d]}
    for k in range(1, 6):
        for parts in itertools.combinations_with_replacement(range(1, 7), k):
            if sum(parts) == log_d and parts[-1] >= 2:
                out.add(tuple(1 << p for p in parts))
    return sorted(out, key=lambda t: (len(t), t))


def _time_plans(plans, x, rounds: int) -> list[float]:
    """Cost of each plan as a ratio to np.copyto: the least CPU time (all threads) over ``rounds``
    round-robin rounds. CPU time, not wall time: on a shared machine other processes stretch the
    wall clock at random, and the plans differ in work, not in how well they use the cores."""
    out = np.empty_like(x)
    best = [np.inf] * len(plans)
    best_copy = np.inf
    for _ in range(rounds):
        t0 = time.process_time()
        np.copyto(out, x)
        best_copy = min(best_copy, time.process_time() - t0)
        for i, p in enumerate(plans):
            t0 = time.process_time()
            fwht(x, plan=p, out=out)
            best[i] = min(best[i], time.process_time() - t0)
    return [b / max(best_copy, 1e-6) for b in best]


def plan_fwht(d: int, dtype=np.float32, measure: bool = False, *, mib: float = 8.0,
              rounds: int = 3) -> FwhtPlan:
    """The plan :func:`fwht` uses for ``d`` and ``dtype``: the table's, or the fastest measured.

    Parameters
    ----------
    d : int
        A power of two from 1 to ``2**16``.
    dtype : numpy dtype
        float32 or float64 (float16 is computed in float32).
    measure : bool
        False (default): the built-in table (``source="estimate"``). True: the
        plan of this machine's wisdom (:func:`import_wisdom`, tried once on the
        default file) or, without one, time every candidate factorisation, then
        row-block sizes of 0.25 to 4 MiB for the best, on ``mib`` MiB of random
        rows, the least CPU time of ``rounds`` round-robin rounds each (robust
        to other processes), and keep the fastest in memory (written to disk
        only by :func:`export_wisdom`).
    mib, rounds : float, int
        Size of the timed array and rounds (measure=True only).

    Returns
    -------
    FwhtPlan

    Examples
    --------
    >>> plan_fwht(128)
    FwhtPlan(d=128, dtype='float32', strategy='kron', factors=(8, 16), block_bytes=1048576, source='estimate', ratio=None)
    """
    d = check_power_of_two(d, "d", max_value=_MAX_D)
    dt = np.dtype(dtype)
    if dt == np.float16:
        dt = np.dtype(np.float32)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64 (float16 runs in float32), got {dt}")
    strategy = _AUTO_STRATEGY[d]
    estimate = FwhtPlan(d, dt.name, strategy, _KRON_FACTORS[d] if strategy == "kron" else (d,))
    if not measure:
        return estimate
    machine, key = machine_key(), _plan_key(d, dt)
    default = str(wisdom_path())
    if default not in _wisdom_loaded:
        _wisdom_loaded.add(default)
        import_wisdom()
    with _wisdom_lock:
        known = _wisdom.get(machine, {}).get(key)
    if known is not None:
        return FwhtPlan(**{**known, "factors": tuple(known["factors"]), "source": "wisdom"})
    rows = max(1, int(mib * 2**20) // (d * dt.itemsize))
    x = np.random.default_rng(d).standard_normal((rows, d)).astype(dt)
    plans = [FwhtPlan(d, dt.name, "kron", f) for f in _kron_candidates(d)]
    if d <= 256:
        plans.append(FwhtPlan(d, dt.name, "dense", (d,)))
    ratios = _time_plans(plans, x, rounds)
    best = plans[int(np.argmin(ratios))]
    sizes = [FwhtPlan(d, dt.name, best.strategy, best.factors, b) for b in
             (1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22)]
    ratios = _time_plans(sizes, x, rounds)
    i = int(np.argmin(ratios))
    plan = FwhtPlan(d, dt.name, best.strategy, best.factors, sizes[i].block_bytes, "measured",
                    round(float(ratios[i]), 3))
    with _wisdom_lock:
        _wisdom.setdefault(machine, {})[key] = _plan_fields(plan)
    return plan
