"""Random rotations: a Haar-random dense orthogonal matrix and the randomized Hadamard.

Both keep lengths and dot products (they are orthogonal) and are exactly
invertible, the three properties lesson 03 demonstrates.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ._parallel import blas_one_thread
from ._validate import as_float_array, check_dim, check_last_axis, check_power_of_two, make_rng
from .backend import get_xp, gpu_function, is_cupy_array
from .walsh_hadamard import fwht

__all__ = ["random_orthogonal", "random_signs", "RandomizedHadamard"]


def random_orthogonal(d: int, seed=0, dtype=np.float64) -> np.ndarray:
    """Haar-random (uniformly distributed) orthogonal matrix of shape ``(d, d)``.

    Parameters
    ----------
    d : int
        Dimension.
    seed : int, SeedSequence or numpy.random.Generator
        Source of randomness (never the global state).
    dtype : numpy dtype
        Output dtype (computed in float64).

    Returns
    -------
    Q : (d, d) ndarray
        ``Q @ Q.T == I``. Rotate a batch of row vectors with ``x @ Q.T``.

    Notes
    -----
    Draw ``G`` with i.i.d. N(0, 1) entries and factor ``G = Q R``. LAPACK's QR
    returns an ``R`` whose diagonal signs are arbitrary, which makes ``Q``
    *not* uniformly distributed; multiplying column ``j`` of ``Q`` by
    ``sign(R[j, j])`` makes the factorisation unique and ``Q`` exactly Haar
    distributed (Mezzadri, "How to generate random matrices from the classical
    compact groups", Notices AMS 54, 2007). Cost: O(d^3) to draw, O(d^2) per
    vector to apply. Up to ``d = 512`` the QR runs with BLAS held at one thread:
    a threaded LAPACK on a small matrix mostly waits for its threads (measured
    on a busy 2-core machine: 0.1-0.2 s per call at d = 128 with 2 threads,
    under 1 ms with one).

    Examples
    --------
    >>> Q = random_orthogonal(4, seed=1)
    >>> np.allclose(Q @ Q.T, np.eye(4))
    True
    """
    d = check_dim(d, "d")
    rng = make_rng(seed)
    g = rng.standard_normal((d, d))
    with blas_one_thread() if d <= 512 else contextlib.nullcontext():
        q, r = np.linalg.qr(g)
    s = np.sign(np.diag(r))
    s[s == 0] = 1.0
    return (q * s).astype(dtype, copy=False)


def random_signs(d: int, seed=0, dtype=np.float32) -> np.ndarray:
    """A vector of ``d`` independent, equally likely +1/-1 entries (the diagonal of D)."""
    d = check_dim(d, "d")
    rng = make_rng(seed)
    return (1 - 2 * rng.integers(0, 2, size=d)).astype(dtype)


class RandomizedHadamard:
    """The randomized Hadamard rotation ``y = D2 H D1 x`` on the last axis.

    ``D1`` and ``D2`` are diagonal matrices of random signs and ``H`` the
    orthonormal Walsh-Hadamard matrix (``hadamard(d) / sqrt(d)``), applied with
    the O(d log d) :func:`~turboquant_lab.walsh_hadamard.fwht`.

    Parameters
    ----------
    d : int
        Dimension, a power of two.
    seed : int, SeedSequence or numpy.random.Generator
        Draws the two sign vectors.

    Notes
    -----
    ``forward(x) = s2 * fwht(s1 * x)`` and, because ``H`` is symmetric and
    orthogonal and each ``D`` is its own inverse,
    ``inverse(y) = s1 * fwht(s2 * y)``. The map is orthogonal, so it keeps
    norms and dot products exactly (up to rounding).

    Examples
    --------
    >>> rh = RandomizedHadamard(8, seed=0)
    >>> x = np.arange(8.0)
    >>> np.allclose(rh.inverse(rh.forward(x)), x)
    True
    """

    def __init__(self, d: int, seed=0):
        self.d = check_power_of_two(d, "d")
        rng = make_rng(seed)
        self.signs1 = random_signs(self.d, rng)
        self.signs2 = random_signs(self.d, rng)

    def _signs(self, s, x):
        xp = get_xp(x)
        return xp.asarray(s, dtype=x.dtype)

    def forward(self, x):
        """Rotate: ``(..., d)`` array in, ``(..., d)`` array out (same dtype and array module)."""
        x = as_float_array(x, "x")
        check_last_axis(x, self.d, "x")
        if is_cupy_array(x):  # one fused pass on the GPU: signs, FWHT, signs
            return gpu_function("randomized_hadamard")(x, self.signs1, self.signs2)
        return fwht(x * self._signs(self.signs1, x)) * self._signs(self.signs2, x)

    def inverse(self, y):
        """Undo :meth:`forward`: ``(..., d)`` array in, ``(..., d)`` array out."""
        y = as_float_array(y, "y")
        check_last_axis(y, self.d, "y")
        if is_cupy_array(y):
            return gpu_function("randomized_hadamard")(y, self.signs2, self.signs1)
        return fwht(y * self._signs(self.signs2, y)) * self._signs(self.signs1, y)

    def matrix(self) -> np.ndarray:
        """The ``(d, d)`` matrix ``D2 H D1`` (for teaching and tests; O(d^2) memory)."""
        from .walsh_hadamard import hadamard

        h = hadamard(self.d) / np.sqrt(self.d)
        return self.signs2[:, None].astype(np.float64) * h * self.signs1[None, :]

    def __repr__(self) -> str:
        return f"RandomizedHadamard(d={self.d})"
