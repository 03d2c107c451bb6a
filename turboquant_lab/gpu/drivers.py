"""The drivers of the GPU path, on any array module: checks, padding, the Encoded they build.

Each driver takes the object that launches the kernels as its last argument:
:class:`~turboquant_lab.gpu.cuda.CudaKernels` (CuPy arrays, the real GPU) or
:class:`~turboquant_lab.gpu.emulation.EmulatedKernels` (NumPy arrays, the
kernels emulated), so the CPU tests run the very code that runs on a GPU.
Its ``xp`` is the array module; its ``fwht``, ``encode`` and ``decode``
launch one kernel each on C-contiguous 2-d arrays; its ``constant`` turns a
small host array into one of its own.

A driver reads a :class:`~turboquant_lab.turboquant.TurboQuantMSE` only
through its public attributes and :meth:`~turboquant_lab.turboquant.TurboQuantMSE.kernel_constants`,
and raises the NumPy path's errors with the NumPy path's messages.
"""
from __future__ import annotations

import math

import numpy as np

from ..packing import pack_codes, unpack_codes
from ..turboquant import Encoded
from ..validation import as_float_array, check_last_axis, check_power_of_two, ensure_finite
from .configs import MAX_KERNEL_D, fwht_config

__all__ = ["fwht", "encode", "decode"]

_FLOAT16_MAX = float(np.finfo(np.float16).max)


# --------------------------------------------------------------------------- the FWHT


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


def fwht(x, normalize, signs1, signs2, kernels, check_finite=True):
    """``signs2 * H(signs1 * x) / sqrt(d)`` (``/ 1`` without ``normalize``) on ``(..., d)``.

    ``fwht_kernel`` for float32 and float16; float64 (no kernel) and ``d = 1``
    with array operations. ``signs1`` / ``signs2``: ``(d,)`` arrays or ``None``.

    Raises
    ------
    TypeError
        Non-float ``x``.
    ValueError
        ``d`` not a power of two or above 8192, empty or 0-d ``x``, NaN or Inf
        (when ``check_finite``), a transform that overflows its dtype.
    """
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


# --------------------------------------------------------------------------- TurboQuantMSE


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


def _encode_dense(k, x2, xp):
    """The dense rotation with array ops (a matrix product): packed codes and norms."""
    norms = xp.sqrt(xp.sum(x2 * x2, axis=1))
    safe = xp.where(norms > 0, norms, np.float32(1.0))
    scale = xp.where(norms > 0, np.float32(k.sqrt_d_pad) / safe, np.float32(0.0)).astype(np.float32)
    t = (x2 @ xp.asarray(k.matrix).T) * scale[:, None]
    codes = xp.searchsorted(xp.asarray(k.thresholds), t, side="right").astype(np.uint8)
    return pack_codes(codes, k.bits), norms


def encode(q, x, kernels):
    """``q.encode(x)`` on ``kernels``' arrays: the same :class:`Encoded` as the NumPy path.

    The Hadamard rotation with ``tq_encode_kernel`` (``x`` zero-padded to
    ``d_pad``), the dense one with array operations.
    """
    xp = kernels.xp
    k = q.kernel_constants()
    x = as_float_array(x, "x", check_finite=False)  # finiteness: checked on the norms
    check_last_axis(x, k.d, "x")
    batch = tuple(x.shape[:-1])
    x2 = x.reshape(-1, k.d).astype(np.float32, copy=False)
    if k.rotation == "dense":
        codes, norms = _encode_dense(k, x2, xp)
    else:
        n = k.d_pad
        fwht_config(n)  # raises above the table
        if n != k.d:  # zero padding to the power of two
            pad = xp.zeros((x2.shape[0], n), dtype=np.float32)
            pad[:, : k.d] = x2
            x2 = pad
        else:
            x2 = xp.ascontiguousarray(x2)
        codes, norms = kernels.encode(x2, kernels.constant(k.signs1), kernels.constant(k.signs2),
                                      kernels.constant(k.thresholds), k.bits)
    norms16 = _check_norms(xp, norms, x)
    return Encoded(codes.reshape(batch + (k.n_bytes,)), norms16.reshape(batch), k.bits, k.d,
                   k.d_pad, batch, k.rotation, q.fingerprint)


def decode(q, enc, kernels):
    """``q.decode(enc)`` on ``kernels``' arrays (``enc`` already checked by the caller).

    The Hadamard rotation with ``tq_decode_kernel`` (then truncated to ``d``),
    the dense one with array operations.
    """
    xp = kernels.xp
    k = q.kernel_constants()
    batch = tuple(enc.shape)
    codes = xp.ascontiguousarray(xp.asarray(enc.codes).reshape(-1, k.n_bytes), dtype=np.uint8)
    norms = xp.ascontiguousarray(xp.asarray(enc.norms).reshape(-1), dtype=np.float16)
    if k.rotation == "dense":
        c = unpack_codes(codes, k.bits, k.d_pad)
        levels = xp.asarray(k.levels)  # centroids / sqrt(d), float32
        out = (levels[c.astype(np.intp)] @ xp.asarray(k.matrix)) * norms.astype(np.float32)[:, None]
    else:
        out = kernels.decode(codes, norms, kernels.constant(k.signs1), kernels.constant(k.signs2),
                             kernels.constant(k.centroids), k.bits, k.d_pad)
        if k.d != k.d_pad:
            out = xp.ascontiguousarray(out[:, : k.d])
    return out.reshape(batch + (k.d,))
