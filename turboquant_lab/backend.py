"""Array-module dispatch (NumPy on the CPU, CuPy on a GPU) and the registry of GPU functions.

Every public function of the library takes its array module from its input
(``numpy`` in, ``numpy`` out; ``cupy`` in, ``cupy`` out). CuPy is never
imported here at module level: :func:`get_xp` only looks at ``sys.modules``,
so a NumPy user never pays for (or needs) CuPy, and :func:`gpu_available`
imports it only when asked.

The registry is how core reaches the GPU without importing it. The package
:mod:`turboquant_lab.gpu` sits above core and calls :func:`register_gpu` for
each of its entry points when it is imported; a core function that receives
a CuPy array asks :func:`gpu_function` for one by name (``"fwht"``,
``"randomized_hadamard"``, ``"encode_mse"``, ``"decode_mse"``), and the first
such call imports the package by name. So imports only go downward
(``gpu`` -> core), and a NumPy user never loads the GPU package.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable

import numpy as np

__all__ = ["get_xp", "is_cupy_array", "gpu_available", "to_device", "to_host",
           "register_gpu", "gpu_function", "GPU_PACKAGE"]

GPU_PACKAGE = __name__.rpartition(".")[0] + ".gpu"
"""The package that registers the GPU functions when imported (``turboquant_lab.gpu``)."""

_GPU_FUNCTIONS: dict[str, Callable] = {}


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


def register_gpu(name: str, fn: Callable) -> Callable:
    """Make ``fn`` the GPU implementation that :func:`gpu_function` returns for ``name``.

    Called by :mod:`turboquant_lab.gpu` on import; a later registration under
    the same name replaces the earlier one. Returns ``fn``.
    """
    if not isinstance(name, str) or not callable(fn):
        raise TypeError(f"register_gpu needs a name (str) and a function, got {name!r}, {fn!r}")
    _GPU_FUNCTIONS[name] = fn
    return fn


def gpu_function(name: str) -> Callable:
    """The GPU implementation registered as ``name``, importing :data:`GPU_PACKAGE` on first use.

    Raises
    ------
    LookupError
        No function of that name is registered, even after the import.

    Examples
    --------
    >>> gpu_function("fwht").__name__
    'fwht_gpu'
    """
    fn = _GPU_FUNCTIONS.get(name)
    if fn is None:
        importlib.import_module(GPU_PACKAGE)  # registers its functions (imports no CuPy)
        fn = _GPU_FUNCTIONS.get(name)
    if fn is None:
        raise LookupError(f"no GPU function {name!r} is registered (known: "
                          f"{', '.join(sorted(_GPU_FUNCTIONS)) or 'none'}); {GPU_PACKAGE} "
                          f"registers its functions with register_gpu when imported")
    return fn
