"""Lesson 03 (rotate first): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from turboquant_lab.data import essay_vector
from turboquant_lab.metrics import max_over_mean
from turboquant_lab.rotation import random_orthogonal
from turboquant_lab.uniform import uniform_dequantize, uniform_quantize
from turboquant_lab.validation import as_float_array, check_bits, make_rng

__all__ = [
    "RotationResult", "compute_rotation_demo", "RotateDemo", "RotationMSEResult", "compute_rotation_mse",
    "RotationTiming", "time_dense_rotation",
]


@dataclass
class RotationResult:
    """One press of the Rotate button: a vector before and after ``y = R x``.

    Attributes
    ----------
    before, after, restored : (d,) float64 ndarray
        ``x``, ``R x`` and ``R^T (R x)``.
    seed : int
        Seed of the Haar rotation ``R = random_orthogonal(d, seed)``.
    outliers : (k,) int ndarray
        Indices drawn in red before the rotation.
    max_mean_before, max_mean_after : float
        ``max|x_i| / mean|x_i|`` of ``x`` and of ``R x``.
    norm_before, norm_after : float
        ``||x||`` and ``||R x||`` (equal up to rounding).
    reconstruction_error : float
        ``max_i |x_i - (R^T R x)_i|``.
    """
    before: np.ndarray
    after: np.ndarray
    restored: np.ndarray
    seed: int
    outliers: np.ndarray
    max_mean_before: float
    max_mean_after: float
    norm_before: float
    norm_after: float
    reconstruction_error: float


def compute_rotation_demo(x, seed: int = 0, outliers=()) -> RotationResult:
    """Rotate one vector by the Haar rotation ``random_orthogonal(d, seed)``.

    Parameters
    ----------
    x : (d,) float ndarray
    seed : int
        Seed of the rotation.
    outliers : sequence of int
        Channels to mark as outliers in the figure (they do not change the numbers).

    Returns
    -------
    RotationResult

    Examples
    --------
    >>> x, out = essay_vector()
    >>> r = compute_rotation_demo(x, seed=0, outliers=out)
    >>> abs(r.norm_after - r.norm_before) < 1e-9, r.max_mean_after < r.max_mean_before
    (True, True)
    """
    x = as_float_array(x, "x").astype(np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be one vector of shape (d,), got shape {x.shape}; "
                         f"pick one row, e.g. x[0]")
    q = random_orthogonal(x.shape[0], seed=seed)
    y = q @ x
    back = q.T @ y
    return RotationResult(
        before=x, after=y, restored=back, seed=int(seed),
        outliers=np.asarray(outliers, dtype=int),
        max_mean_before=max_over_mean(x), max_mean_after=max_over_mean(y),
        norm_before=float(np.linalg.norm(x)), norm_after=float(np.linalg.norm(y)),
        reconstruction_error=float(np.max(np.abs(back - x))),
    )


class RotateDemo:
    """State of the essay's Rotate button: each :meth:`press` draws a new rotation.

    Press ``k`` (counting from 0 after a reset) uses ``random_orthogonal(d, seed + k)``.

    Parameters
    ----------
    x : (d,) float ndarray, optional
        The vector to rotate; by default the essay's outlier vector (:func:`essay_vector`).
    outliers : sequence of int, optional
        Channels drawn in red (by default those of the essay vector).
    seed : int
        Seed of the first rotation.

    Examples
    --------
    >>> demo = RotateDemo()
    >>> demo.press().seed, demo.press().seed
    (0, 1)
    >>> demo.reset(); demo.result is None
    True
    """
    def __init__(self, x=None, outliers=None, seed: int = 0):
        if x is None:
            x, default_outliers = essay_vector()
            outliers = default_outliers if outliers is None else outliers
        self.x = np.asarray(x, dtype=np.float64)
        self.outliers = np.asarray(() if outliers is None else outliers, dtype=int)
        self.seed = int(seed)
        self.presses = 0
        self.result = None

    def press(self) -> RotationResult:
        """Draw the next rotation and rotate ``x`` with it."""
        self.result = compute_rotation_demo(self.x, self.seed + self.presses, self.outliers)
        self.presses += 1
        return self.result

    def reset(self) -> None:
        """Back to the unrotated vector; the next press uses ``seed`` again."""
        self.presses = 0
        self.result = None

    def summary(self) -> str:
        """The essay's three figures as one line of text."""
        before = max_over_mean(self.x)
        if self.result is None:
            return (f"Max/Mean before: {before:.1f}x | Max/Mean after: - (press Rotate) | "
                    f"norm {np.linalg.norm(self.x):.4g}")
        r = self.result
        return (f"rotation #{self.presses} (seed {r.seed}) | Max/Mean before: {before:.1f}x | "
                f"Max/Mean after: {r.max_mean_after:.1f}x | norm before {r.norm_before:.4g}, "
                f"after {r.norm_after:.4g}")


@dataclass
class RotationMSEResult:
    """Naive uniform quantization with and without a rotation first, per bit width.

    Attributes
    ----------
    bits : (B,) int ndarray
    mse_before, mse_after : (B,) ndarray
        Mean over vectors and coordinates of ``(x - x_hat)^2``: quantizing ``x``
        directly, and quantizing ``R x`` then rotating back with ``R^T``.
    range_before, range_after : float
        Mean over vectors of ``max - min`` of ``x`` and of ``R x``.
    seed : int
        Seed of the rotation (one rotation shared by all vectors).
    """
    bits: np.ndarray
    mse_before: np.ndarray
    mse_after: np.ndarray
    range_before: float
    range_after: float
    seed: int

    @property
    def ratio(self) -> np.ndarray:
        """``mse_before / mse_after`` per bit width."""
        return self.mse_before / self.mse_after


def compute_rotation_mse(x, bits=range(1, 9), seed: int = 0) -> RotationMSEResult:
    """MSE of the min-max uniform quantizer on ``x`` and on ``R x`` (then rotated back).

    Parameters
    ----------
    x : (n, d) float ndarray
        Vectors, one per row.
    bits : iterable of int in 1..8
    seed : int
        Seed of the Haar rotation ``R = random_orthogonal(d, seed)``.

    Returns
    -------
    RotationMSEResult

    Notes
    -----
    ``x_hat = R^T Q(R x)``. Because ``R`` is orthogonal,
    ``||x - x_hat|| = ||R x - Q(R x)||``: the error is the one made on the rotated
    vector, whose range (hence slot width ``range / (2^b - 1)``) is far smaller.

    Examples
    --------
    >>> from turboquant_lab.data import make_kv_vectors
    >>> r = compute_rotation_mse(make_kv_vectors(100, 64), bits=[3])
    >>> bool(r.mse_after[0] < r.mse_before[0])
    True
    """
    x = as_float_array(x, "x", min_ndim=2).astype(np.float64)
    bits = np.array([check_bits(b) for b in bits], dtype=int)
    q = random_orthogonal(x.shape[-1], seed=seed)
    y = x @ q.T
    before, after = [], []
    for b in bits:
        before.append(np.mean((x - uniform_dequantize(uniform_quantize(x, int(b)))) ** 2))
        after.append(np.mean((x - uniform_dequantize(uniform_quantize(y, int(b))) @ q) ** 2))
    rng_x = x.max(axis=-1) - x.min(axis=-1)
    rng_y = y.max(axis=-1) - y.min(axis=-1)
    return RotationMSEResult(bits=bits, mse_before=np.array(before), mse_after=np.array(after),
                             range_before=float(rng_x.mean()), range_after=float(rng_y.mean()),
                             seed=int(seed))


@dataclass
class RotationTiming:
    """Wall-clock cost of a dense rotation ``x @ Q.T`` (seconds per vector).

    Attributes
    ----------
    dims : (k,) int ndarray
    single : (k,) ndarray
        Seconds to rotate one vector (a matrix-vector product).
    batch : (k,) ndarray
        Seconds per vector when ``batch_size`` vectors are rotated at once.
    batch_size : int
    """
    dims: np.ndarray
    single: np.ndarray
    batch: np.ndarray
    batch_size: int


def time_dense_rotation(dims=(128, 256, 512, 1024, 2048, 4096), batch_size: int = 64,
                        repeats: int = 7, seed: int = 0, threads=1) -> RotationTiming:
    """Time ``x @ Q.T`` for one vector and for a batch, for each dimension.

    ``Q`` is a ``(d, d)`` float32 matrix of Gaussian entries, not a Haar rotation:
    the cost of a dense product does not depend on the numbers in the matrix, and
    drawing a Haar rotation by QR costs O(d^3), seconds at d = 4096. Each figure is
    the best of ``repeats`` runs (the least disturbed by other work on the machine).

    Parameters
    ----------
    threads : int or None
        BLAS threads while timing (needs ``threadpoolctl``; ignored without it).
        1, the default, measures the cost on one core, which stays steady on a
        busy machine, where a multi-threaded product can stall for milliseconds
        waiting for a thread; ``None`` keeps the BLAS as configured.

    Returns
    -------
    RotationTiming
    """


    limit = contextlib.nullcontext()
    if threads is not None:
        try:
            limit = threadpool_limits(limits=int(threads), user_api="blas")
        except ImportError:
            pass
    with limit:
        return _time_dense_rotation(dims, batch_size, repeats, make_rng(seed), time.perf_counter)


def _time_dense_rotation(dims, batch_size, repeats, rng, clock) -> RotationTiming:
    dims = np.array([int(d) for d in dims], dtype=int)
    single, batch = [], []
    for d in dims:
        q = rng.standard_normal((d, d), dtype=np.float32)
        xs = rng.standard_normal((batch_size, d), dtype=np.float32)
        xs @ q.T  # warm-up: the first product starts the BLAS threads
        for x, store, n in ((xs[0], single, 1), (xs, batch, batch_size)):
            best = np.inf
            for _ in range(repeats):
                start = clock()
                x @ q.T
                best = min(best, clock() - start)
            store.append(best / n)
    return RotationTiming(dims=dims, single=np.array(single), batch=np.array(batch),
                          batch_size=int(batch_size))
