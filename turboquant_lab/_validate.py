"""Input checks shared by the library: clear errors that name the argument and the fix."""
from __future__ import annotations

import numbers

import numpy as np

from .backend import get_xp

MIN_BITS, MAX_BITS = 1, 8


def as_float_array(x, name: str = "x", *, min_ndim: int = 1, check_finite: bool = True):
    """Return ``x`` as a floating array of its own array module, or raise.

    Python lists and scalars become float64 NumPy arrays. An explicit array must
    already be floating point (float16/32/64): integer, bool and complex arrays
    raise ``TypeError`` with the fix, because silently casting them hides bugs.
    Empty arrays, arrays with fewer than ``min_ndim`` axes, NaN and Inf raise
    ``ValueError``.
    """
    if not hasattr(x, "dtype"):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            if np.iscomplexobj(np.asarray(x)):
                raise TypeError(f"{name} is complex; pass the real part (np.real({name})) "
                                f"or a real-valued array") from None
            raise TypeError(f"{name} must be an array of real numbers, "
                            f"got {type(x).__name__}") from None
    dtype = x.dtype
    if dtype.kind == "c":
        raise TypeError(f"{name} has complex dtype {dtype}; this library works on real vectors: "
                        f"pass {name}.real or a real-valued array")
    if dtype.kind != "f":
        raise TypeError(f"{name} has dtype {dtype}, but a floating-point array is needed: "
                        f"convert it first, e.g. {name}.astype(np.float32)")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} axis (shape (..., d)); "
                         f"got a {x.ndim}-d array: wrap a scalar as np.array([value])")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); pass at least one vector")
    if check_finite:
        ensure_finite(x, name)
    return x


def ensure_finite(x, name: str = "x") -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or Inf.

    A plain sum is finite exactly when every element is finite unless the sum
    overflows, so the (cheap, read-only) sum is checked first and the elementwise
    test only runs to tell an overflow from a real NaN/Inf.
    """
    xp = get_xp(x)
    if bool(xp.isfinite(x.sum())):
        return
    bad = ~xp.isfinite(x)
    if bool(bad.any()):
        n = int(bad.sum())
        raise ValueError(f"{name} contains {n} NaN or Inf value(s); quantization needs finite "
                         f"numbers: clean them first (e.g. np.nan_to_num({name}))")


def check_bits(bits, name: str = "bits", lo: int = MIN_BITS, hi: int = MAX_BITS) -> int:
    """Return ``bits`` as an int in ``[lo, hi]`` or raise."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"{name} must be an integer between {lo} and {hi}, got {bits!r}")
    bits = int(bits)
    if not lo <= bits <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {bits}")
    return bits


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def next_power_of_two(n: int) -> int:
    """The smallest power of two ``>= n`` (``n >= 1``): the padded size of a Hadamard rotation."""
    return 1 << (int(n) - 1).bit_length()


def check_power_of_two(n, name: str = "d", max_value: int | None = None) -> int:
    """Return ``n`` as an int if it is a power of two (1, 2, 4, ...), else raise ``ValueError``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer power of two, got {n!r}")
    n = int(n)
    if not is_power_of_two(n):
        lower = 1 << max(n.bit_length() - 1, 0)
        upper = 1 << max(n.bit_length(), 0)
        raise ValueError(f"{name} must be a power of two (1, 2, 4, 8, ...), got {n}: "
                         f"pad the last axis with zeros to {upper}"
                         + (f" or use {lower}" if n > 1 else ""))
    if max_value is not None and n > max_value:
        raise ValueError(f"{name} = {n} is above the supported maximum {max_value}")
    return n


def check_dim(n, name: str = "d") -> int:
    """Return ``n`` as a positive int or raise."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {n!r}")
    if int(n) < 1:
        raise ValueError(f"{name} must be a positive integer, got {n}")
    return int(n)


def check_last_axis(x, d: int, name: str = "x") -> None:
    """Raise ``ValueError`` if the last axis of ``x`` is not ``d``."""
    if x.shape[-1] != d:
        raise ValueError(f"{name} has last axis {x.shape[-1]} but this quantizer was built for "
                         f"d = {d}: pass vectors of shape (..., {d}) or build one with d={x.shape[-1]}")


def make_rng(seed):
    """A ``numpy.random.Generator`` from a seed, a SeedSequence or a Generator (never global state)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
