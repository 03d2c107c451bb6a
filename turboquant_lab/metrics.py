"""The course's shared measurements, one copy each: spikiness, channel RMS, unit rows.

These are the numbers the essay keeps pointing at: how spiky a vector is
(``max |x_i| / mean |x_i|``, 22x for the essay's outlier vector, about 3x
after a rotation), how loud each channel of a set of keys is (its RMS over
the tokens), and vectors scaled to unit length.
"""
from __future__ import annotations

import numpy as np

from ._validate import as_float_array

__all__ = ["channel_rms", "max_over_mean", "unit_rows"]


def max_over_mean(x):
    """The essay's spikiness figure ``max_i |x_i| / mean_i |x_i|`` on the last axis.

    Parameters
    ----------
    x : (..., d) float array
        Vectors on the last axis, each with at least one non-zero coordinate.

    Returns
    -------
    ratio : float for a single vector, ``(...)`` float64 ndarray for a batch
        1 for a vector whose coordinates all have the same magnitude, ``d`` for
        a vector with a single non-zero coordinate.

    Raises
    ------
    ValueError
        For an all-zero vector (its ratio is 0/0).

    Notes
    -----
    Computed as ``1 / mean_i(|x_i| / max_j |x_j|)``: dividing by the peak first
    keeps tiny (even subnormal) vectors exact.

    Examples
    --------
    >>> max_over_mean(np.array([1.0, -1.0, 1.0, 1.0]))
    1.0
    >>> max_over_mean(np.array([[4.0, 0.0, 0.0, 0.0], [2.0, 1.0, 1.0, 0.0]]))
    array([4., 2.])
    """
    x = as_float_array(x, "x")
    a = np.abs(np.asarray(x, dtype=np.float64))
    peak = a.max(axis=-1, keepdims=True)
    if np.any(peak == 0):
        raise ValueError("x has an all-zero vector, whose max/mean ratio is undefined; "
                         "pass vectors with at least one non-zero coordinate")
    r = 1.0 / (a / peak).mean(axis=-1)
    return float(r) if x.ndim == 1 else r


def channel_rms(x):
    """Root mean square of each channel over the tokens: ``(..., n, d) -> (..., d)``.

    ``rms_j = sqrt(mean_t x[t, j]^2)``, in float64. An outlier channel of the
    keys of a transformer shows up as an entry many times the median.

    Examples
    --------
    >>> channel_rms(np.array([[3.0, 1.0], [-3.0, 1.0]]))
    array([3., 1.])
    """
    x = as_float_array(x, "x", min_ndim=2)
    return np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2, axis=-2))


def unit_rows(x):
    """Each vector on the last axis divided by its length: ``(..., d) -> (..., d)``.

    Zero vectors stay zero (no NaN). Same dtype as ``x``.

    Examples
    --------
    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    x = as_float_array(x, "x")
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)
