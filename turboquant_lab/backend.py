"""Array-module dispatch: NumPy on the CPU, CuPy on a GPU.

Every public function of the library takes its array module from its input
(``numpy`` in, ``numpy`` out; ``cupy`` in, ``cupy`` out). CuPy is never
imported here at module level: :func:`get_xp` only looks at ``sys.modules``,
so a NumPy user never pays for (or needs) CuPy, and :func:`gpu_available`
imports it only when asked.
"""
from __future__ import annotations

import sys

import numpy as np

__all__ = ["get_xp", "is_cupy_array", "gpu_available", "to_device", "to_host"]


def is_cupy_array(x) -> bool:
    """True when ``x`` is a ``cupy.ndarray`` (without importing CuPy)."""
    cp = sys.modules.get("cupy")
    return cp is not None and isinstance(x, cp.ndarray)


def get_xp(x):
    """Return the array module of ``x``: ``cupy`` for a CuPy array, else ``numpy``.

    Examples
    --------
    >>> get_xp(np.zeros(3)) is np
    True
    """
    if is_cupy_array(x):
        return sys.modules["cupy"]
    return np


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device that can run a kernel."""
    try:
        import cupy as cp  # noqa: PLC0415 (lazy by design)

        if cp.cuda.runtime.getDeviceCount() < 1:
            return False
        cp.arange(1).sum().item()  # a real launch: catches a driver/runtime mismatch
        return True
    except Exception:  # ImportError, CUDARuntimeError, CompileException, ...
        return False


def to_device(x):
    """Copy a host array to the current GPU (requires CuPy); a CuPy array is returned as is."""
    if is_cupy_array(x):
        return x
    import cupy as cp  # noqa: PLC0415

    return cp.asarray(x)


def to_host(x):
    """Return ``x`` as a NumPy array, copying it from the GPU if it lives there."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)
