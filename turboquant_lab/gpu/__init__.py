"""The GPU path: CUDA kernels (CuPy ``RawModule``) for the FWHT and for TurboQuantMSE.

The library's functions send a CuPy array here through the registry of
:mod:`turboquant_lab.backend` (``hadamard.fwht``, the randomized Hadamard,
``TurboQuantMSE.encode`` / ``decode``): this package registers its entry
points when it is imported, and core never imports it. CuPy in, CuPy out,
nothing copied to the host. Importing the package needs neither CuPy nor a
GPU (CuPy is imported inside :mod:`~turboquant_lab.gpu.cuda`'s functions).

The package, one layer above core (it imports core's public names only):

``configs``
    the kernels' dispatch table (:data:`FWHT_CONFIGS`, :func:`fwht_config`,
    :class:`FwhtConfig`), their constants, and :data:`GPU_SPECS`.
``cuda``
    the only CuPy importer: compile (NVRTC), cache, launch
    (:class:`~turboquant_lab.gpu.cuda.CudaKernels`), and :func:`event_times`.
``drivers``
    checks, padding and the :class:`~turboquant_lab.turboquant.Encoded` they
    build, on any array module and any kernel launcher.
``emulation``
    the kernels in NumPy, loop for loop and bit for bit (lesson 09, the CPU tests).
``kernels/``
    the CUDA sources (package data).

No call here makes the host wait for the GPU by default: the kernels flag
NaN/Inf input (and norms too large for float16) in a device word, which
:func:`check_status` reads on request; pass ``check_finite=True`` for the
NumPy path's immediate errors (one 4-byte copy to the host, so one wait).
"""
from __future__ import annotations

from ..backend import register_gpu
from . import configs, cuda, drivers, emulation
from .configs import (
    FWHT_CONFIGS,
    GPU_SPECS,
    MAX_BITS,
    MAX_KERNEL_D,
    STAGE_KINDS,
    WARP_SIZE,
    FwhtConfig,
    fwht_config,
)
from .cuda import KERNEL_FILES, NVRTC_OPTIONS, CudaKernels, event_times, kernel_source

__all__ = [
    "FWHT_CONFIGS",
    "GPU_SPECS",
    "KERNEL_FILES",
    "MAX_BITS",
    "MAX_KERNEL_D",
    "NVRTC_OPTIONS",
    "STAGE_KINDS",
    "WARP_SIZE",
    "CudaKernels",
    "FwhtConfig",
    "check_status",
    "configs",
    "cuda",
    "decode_mse_gpu",
    "drivers",
    "emulation",
    "encode_mse_gpu",
    "event_times",
    "fwht_config",
    "fwht_gpu",
    "kernel_source",
    "randomized_hadamard_gpu",
]

_CUDA = CudaKernels()


# --------------------------------------------------------------------------- public entry points


def check_status(raise_error: bool = True) -> int:
    """Read and clear the current device's status word: what the GPU calls made with
    ``check_finite="lazy"`` (the default) flagged since the last read.

    Parameters
    ----------
    raise_error : bool
        Raise when a flag is set (default); otherwise return the bits.

    Returns
    -------
    int
        ``STATUS_NONFINITE`` (1: a NaN or Inf input, or a transform or norm that
        overflowed) | ``STATUS_NORM16`` (256: a norm above the float16 maximum), or 0.

    Raises
    ------
    ValueError
        A flag was set and ``raise_error``. The call that set it is not known: rerun
        the suspect call with ``check_finite=True`` for its own message.

    Notes
    -----
    One 4-byte copy to the host: the host waits for the work queued before it.
    """
    word = _CUDA.status_word("sticky")
    bits = _CUDA.read_status(word)
    if bits:
        word.fill(0)
        if raise_error:
            drivers.raise_for_status(bits)
    return bits


def fwht_gpu(x, normalize: bool = True, check_finite="lazy"):
    """Walsh-Hadamard transform of a CuPy array on its last axis (``fwht_kernel``).

    Parameters
    ----------
    x : (..., d) cupy.ndarray, float32 or float16 (float64: see Notes)
        ``d`` a power of two from 1 to 8192. Any strides: a non-contiguous
        ``x`` is copied on the device first.
    normalize : bool
        Divide by ``sqrt(d)`` (the orthonormal transform, default).
    check_finite : {"lazy", True, False}
        ``"lazy"`` (default): the kernel flags NaN/Inf in a device word that
        :func:`check_status` reads; the call never waits for the GPU. ``True``:
        raise now as the NumPy path does (the host waits for the kernel).

    Returns
    -------
    y : (..., d) cupy.ndarray, ``x``'s dtype and shape

    Raises
    ------
    TypeError
        Non-float ``x``.
    ValueError
        ``d`` not a power of two or above 8192, empty or 0-d ``x``; NaN or Inf
        with ``check_finite=True``.

    Notes
    -----
    ``y = x @ hadamard(d).T / sqrt(d)``, equal to :func:`~turboquant_lab.walsh_hadamard.fwht`
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
    return drivers.fwht(x, normalize, None, None, _CUDA, check_finite)


def randomized_hadamard_gpu(x, signs1, signs2, normalize: bool = True, check_finite="lazy"):
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
    return drivers.fwht(x, normalize, signs1, signs2, _CUDA, check_finite)


def encode_mse_gpu(q, x, check_finite="lazy"):
    """``TurboQuantMSE.encode`` for a CuPy ``x``: the fused kernel (Hadamard) or array ops (dense).

    Same :class:`~turboquant_lab.turboquant.Encoded` as the NumPy path, with
    CuPy ``codes`` and ``norms``; the codes equal the NumPy path's except for
    values within float32 rounding of a codebook boundary. ``d_pad`` up to
    8192, ``bits`` 1 to 8. ``check_finite`` as in :func:`fwht_gpu`: by default
    NaN/Inf input and norms above the float16 maximum are flagged for
    :func:`check_status`, not raised (the call does not wait for the GPU).
    """
    return drivers.encode(q, x, _CUDA, check_finite)


def decode_mse_gpu(q, enc):
    """``TurboQuantMSE.decode`` for CuPy codes: the fused kernel (Hadamard) or array ops (dense)."""
    return drivers.decode(q, enc, _CUDA)


# --------------------------------------------------------------------------- the backend's registry
# core (hadamard.fwht, RandomizedHadamard, TurboQuantMSE) finds these by name for CuPy input

register_gpu("fwht", fwht_gpu)
register_gpu("randomized_hadamard", randomized_hadamard_gpu)
register_gpu("encode_mse", encode_mse_gpu)
register_gpu("decode_mse", decode_mse_gpu)
