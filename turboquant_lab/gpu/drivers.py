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

Checks (``check_finite``): the kernels OR status bits (NaN/Inf seen, a norm
too large for float16) into a one-word device array. ``True`` gives each call
a fresh word and reads it at once (one 4-byte copy to the host, so the host
waits for the kernel) and raises as the NumPy path does; ``"lazy"`` ORs into
the device's sticky word, read only on request
(:func:`turboquant_lab.gpu.check_status`), so the call never makes the host
wait (and CUDA graph capture works); ``False`` checks nothing.
"""
from __future__ import annotations

import math

import numpy as np

from ..packing import pack_codes, unpack_codes
from ..turboquant import Encoded
from ..validation import as_float_array, check_last_axis, check_power_of_two, ensure_finite
from .configs import MAX_KERNEL_D, STATUS_NONFINITE, STATUS_NORM16, fwht_config

__all__ = ["CHECK_MODES", "decode", "encode", "fwht", "raise_for_status"]

CHECK_MODES = (True, False, "lazy")
"""Values of ``check_finite``: check now (the host waits), on request (no wait), never."""

_FLOAT16_MAX = float(np.finfo(np.float16).max)


# --------------------------------------------------------------------------- the FWHT


def _status_word(kernels, check_finite):
    """The word a call ORs its status bits into: fresh (checked now), sticky (lazy) or discarded."""
    if check_finite is True:
        return kernels.new_status()
    if check_finite is False:
        return kernels.status_word("discard")
    if check_finite == "lazy":
        return kernels.status_word("sticky")
    raise ValueError(f"check_finite must be True (check now), 'lazy' (flag on the device, read by "
                     f"gpu.check_status()) or False, got {check_finite!r}")


def _or_status(xp, status, bad, bit):
    """``status |= bit`` where ``bad`` (a 0-d device bool) holds, without a host wait."""
    xp.bitwise_or(status, (bad.astype(np.uint32) * np.uint32(bit)).reshape(1), out=status)


def raise_for_status(bits: int, x=None, dtype=None, norms=None) -> None:
    """Raise the NumPy path's error for status ``bits`` (nothing when 0).

    ``x`` (the input) names the NaN/Inf it holds; without one NaN/Inf cannot be
    told from an overflow. ``norms``: the encoder's float32 norms, for the message.
    """
    if bits & STATUS_NONFINITE:
        if x is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                ensure_finite(x, "x")  # names the NaN/Inf count
        if norms is not None:
            raise ValueError("x has a vector whose norm overflows float32; the norms are stored "
                             "as float16 (max 65504): rescale x first (e.g. x / x.std())")
        what = f" {dtype}" if dtype is not None else ""
        raise ValueError(f"the transform of x overflowed{what}, or x held NaN or Inf: pass "
                         f"x.astype(float32) (or float64) or rescale x")
    if bits & STATUS_NORM16:
        top = f" of norm {float(norms.max()):.6g}" if norms is not None else ""
        raise ValueError(f"x has a vector{top}, above the float16 maximum {_FLOAT16_MAX:g} in "
                         f"which norms are stored: rescale x first (e.g. x / x.std()) and "
                         f"multiply the decoded vectors back")


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

    ``check_finite``: one of :data:`CHECK_MODES` (see the module notes).

    Raises
    ------
    TypeError
        Non-float ``x``.
    ValueError
        ``d`` not a power of two or above 8192, empty or 0-d ``x``, NaN or Inf
        or a transform that overflows its dtype (``check_finite=True``).
    """
    xp = kernels.xp
    status = _status_word(kernels, check_finite)
    x = as_float_array(x, "x", check_finite=False)
    d = check_power_of_two(x.shape[-1], "d (the last axis of x)")
    if d > MAX_KERNEL_D:
        raise ValueError(f"the GPU transform supports d up to {MAX_KERNEL_D}, got d = {d}: "
                         f"transform on the CPU (cupy.asnumpy(x)) or split d")
    x2 = xp.ascontiguousarray(x.reshape(-1, d))  # a device copy only when x is not contiguous
    kernel = d > 1 and x2.dtype != np.float64
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
        y2 = kernels.fwht(x2, scale, signs1, signs2, status=status)
    if not kernel and check_finite is not False:  # array ops: the same test on element 0 of each row
        with np.errstate(invalid="ignore"):
            _or_status(xp, status, xp.any(~xp.isfinite(y2[:, 0])), STATUS_NONFINITE)
    if check_finite is True:
        raise_for_status(kernels.read_status(status), x, y2.dtype)
    return y2.reshape(x.shape)


# --------------------------------------------------------------------------- TurboQuantMSE


def _norm_status_xp(xp, status, norms):
    """The encoder kernel's status bits, from float32 norms with array ops (no host wait)."""
    with np.errstate(invalid="ignore"):
        finite = xp.isfinite(norms)
        _or_status(xp, status, xp.any(~finite), STATUS_NONFINITE)
        _or_status(xp, status, xp.any(finite & (norms >= np.float32(65520.0))), STATUS_NORM16)


def _encode_dense(k, x2, xp):
    """The dense rotation with array ops (a matrix product): packed codes and norms."""
    norms = xp.sqrt(xp.sum(x2 * x2, axis=1))
    safe = xp.where(norms > 0, norms, np.float32(1.0))
    scale = xp.where(norms > 0, np.float32(k.sqrt_d_pad) / safe, np.float32(0.0)).astype(np.float32)
    t = (x2 @ xp.asarray(k.matrix).T) * scale[:, None]
    codes = xp.searchsorted(xp.asarray(k.thresholds), t, side="right").astype(np.uint8)
    return pack_codes(codes, k.bits), norms


def encode(q, x, kernels, check_finite=True):
    """``q.encode(x)`` on ``kernels``' arrays: the same :class:`Encoded` as the NumPy path.

    The Hadamard rotation with ``tq_encode_kernel`` (rows of ``d`` read as
    zero-padded to ``d_pad`` by its masked loads: no padded copy), the dense
    one with array operations. ``check_finite``: one of :data:`CHECK_MODES`;
    with ``True``, NaN/Inf and norms above the float16 maximum raise as on the CPU.
    """
    xp = kernels.xp
    status = _status_word(kernels, check_finite)
    k = q.kernel_constants()
    x = as_float_array(x, "x", check_finite=False)  # finiteness: checked on the norms
    check_last_axis(x, k.d, "x")
    batch = tuple(x.shape[:-1])
    x2 = x.reshape(-1, k.d).astype(np.float32, copy=False)
    if k.rotation == "dense":
        codes, norms = _encode_dense(k, x2, xp)
        if check_finite is not False:
            _norm_status_xp(xp, status, norms)
    else:
        fwht_config(k.d_pad)  # raises above the table
        codes, norms = kernels.encode(xp.ascontiguousarray(x2), kernels.constant(k.signs1),
                                      kernels.constant(k.signs2), kernels.constant(k.thresholds),
                                      k.bits, status=status)
    if check_finite is True:
        raise_for_status(kernels.read_status(status), x, norms=norms)
    with np.errstate(over="ignore"):  # a norm above 65504 becomes inf (flagged: STATUS_NORM16)
        norms16 = norms.astype(np.float16)
    return Encoded(codes.reshape(batch + (k.n_bytes,)), norms16.reshape(batch), k.bits, k.d,
                   k.d_pad, batch, k.rotation, q.fingerprint)


def decode(q, enc, kernels):
    """``q.decode(enc)`` on ``kernels``' arrays (``enc`` already checked by the caller).

    The Hadamard rotation with ``tq_decode_kernel`` (its masked stores write
    the first ``d`` of the ``d_pad`` coordinates), the dense one with array operations.
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
                             kernels.constant(k.centroids), k.bits, k.d_pad, d_out=k.d)
    return out.reshape(batch + (k.d,))
