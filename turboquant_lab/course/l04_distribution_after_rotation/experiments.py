"""Lesson 04 (the distribution after rotation): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from turboquant_lab.codebooks import coordinate_pdf, unit_coordinate_pdf
from turboquant_lab.data import ESSAY_SEED, make_kv_vectors
from turboquant_lab.validation import check_dim, make_rng

__all__ = [
    "sample_rotated_coordinate", "gaussian_gap", "CoordinateHistogram", "exact_kurtosis",
    "compute_coordinate_histogram", "DIST_DIMS", "CacheSpread", "cache_coordinate_spread",
]


def sample_rotated_coordinate(d: int, n: int = 10_000, x=None, seed=0):
    """First coordinate of ``Q x`` for ``n`` independent Haar rotations ``Q``, cheaply.

    Parameters
    ----------
    d : int >= 2
    n : int
        Number of rotations.
    x : (d,) float ndarray, optional
        The vector rotated (normalised to unit length here); by default the
        essay-like outlier vector ``make_kv_vectors(1, d, n_outliers=min(5, d // 2), seed=ESSAY_SEED)``.
    seed : int or numpy.random.Generator

    Returns
    -------
    u1 : (n,) float64 ndarray

    Notes
    -----
    ``(Q x)_1 = q_1 . x`` with ``q_1`` the first row of ``Q``; the rows of a Haar
    ``Q`` are uniform unit vectors, so it suffices to draw ``n`` uniform unit
    vectors ``g / ||g||`` (``g`` standard Gaussian) and dot them with ``x``:
    ``O(n d)`` work instead of ``n`` QR factorisations of ``O(d^3)`` each.
    """
    d, n = check_dim(d, "d"), check_dim(n, "n")
    if d < 2:
        raise ValueError(f"d must be at least 2, got {d}")
    if x is None:

        x = make_kv_vectors(1, d, n_outliers=min(5, d // 2), seed=ESSAY_SEED)[0]
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (d,):
        raise ValueError(f"x must have shape ({d},), got {x.shape}")
    x = x / np.linalg.norm(x)
    rng = make_rng(seed)
    out = np.empty(n)
    chunk = max(1, 2_000_000 // d)
    for start in range(0, n, chunk):
        g = rng.standard_normal((min(chunk, n - start), d))
        out[start:start + len(g)] = (g @ x) / np.linalg.norm(g, axis=1)
    return out


def gaussian_gap(d: int, n_grid: int = 40_001):
    """How far N(0, 1/d) is from the exact law of a coordinate of a uniform unit vector.

    Parameters
    ----------
    d : int >= 3
    n_grid : int
        Points of the integration grid (on ``[0, min(sqrt d, 12)]`` in scaled units).

    Returns
    -------
    tv : float
        Total variation distance ``(1/2) int |f_d - g_d|``.
    max_gap : float
        ``max |f - phi|`` in scaled units ``t = sqrt(d) u_1`` (variance 1 for both
        laws, so the figure is comparable across d).

    Notes
    -----
    Both laws are symmetric, and the Gaussian puts mass ``2 Phi(-sqrt d)`` outside
    the support ``[-1, 1]`` of the exact law, so
    ``tv = int_0^sqrt(d) |f - phi| dt + Phi(-sqrt d)`` (trapezoid rule). TV is
    invariant under the scaling, so it is the same in units of ``u_1``.
    """


    d = int(d)
    if d < 3:
        raise ValueError(f"d must be at least 3 (the density is unbounded at d = 2), got {d}")
    t = np.linspace(0.0, min(np.sqrt(d), 12.0), int(n_grid))
    diff = np.abs(coordinate_pdf(t, d) - stats.norm.pdf(t))
    tv = float(np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(t)) + stats.norm.sf(np.sqrt(d)))
    return tv, float(diff.max())


@dataclass
class CoordinateHistogram:
    """One coordinate of a randomly rotated unit vector, simulated and exact.

    Attributes
    ----------
    d, n : int
        Dimension and number of simulated rotations.
    samples : (n,) ndarray
        ``(Q x)_1`` for ``n`` Haar rotations ``Q`` (:func:`sample_rotated_coordinate`).
    sigma_theory, sigma_empirical : float
        ``1 / sqrt(d)`` and the sample standard deviation.
    kurtosis_exact, kurtosis_empirical : float
        ``3 d / (d + 2)`` (from the Beta moments) and the sample kurtosis (3 for a Gaussian).
    grid : (m,) ndarray
        Points in ``[-1, 1]`` where the densities are evaluated.
    exact_pdf, gaussian_pdf : (m,) ndarray
        The scaled Beta density ``f_d`` and the N(0, 1/d) density on ``grid``.
    tv, max_gap : float
        :func:`gaussian_gap` ``(d)``.
    """
    d: int
    n: int
    samples: np.ndarray
    sigma_theory: float
    sigma_empirical: float
    kurtosis_exact: float
    kurtosis_empirical: float
    grid: np.ndarray
    exact_pdf: np.ndarray
    gaussian_pdf: np.ndarray
    tv: float
    max_gap: float

    @property
    def sigma_relative_error(self) -> float:
        """``sigma_empirical / sigma_theory - 1``."""
        return self.sigma_empirical / self.sigma_theory - 1


def exact_kurtosis(d: int) -> float:
    """Kurtosis of a coordinate of a uniform unit vector, from ``Beta((d-1)/2, (d-1)/2)``.

    Equals ``3 d / (d + 2)`` (a Gaussian has 3); scaling and shifting do not change it.
    """
    a = (int(d) - 1) / 2
    return float(stats.beta(a, a).stats(moments="k")) + 3.0


def compute_coordinate_histogram(d: int, n: int = 10_000, seed=0, x=None,
                                 samples=None) -> CoordinateHistogram:
    """Simulate ``n`` rotations of a unit vector in R^d and compare a coordinate with theory.

    Parameters
    ----------
    d : int >= 2
    n, seed, x
        Passed to :func:`sample_rotated_coordinate` (ignored when ``samples`` is given).
    samples : (m,) array_like, optional
        Values of ``(Q x)_1`` already simulated (lesson 04 draws them on the page);
        ``n`` is then ``m``.

    Examples
    --------
    >>> h = compute_coordinate_histogram(128)
    >>> round(h.sigma_theory, 4)
    0.0884
    """
    if samples is None:
        u = sample_rotated_coordinate(d, n, x=x, seed=seed)
    else:
        u = np.asarray(samples, dtype=np.float64).ravel()
        n = u.size
    sigma = 1 / np.sqrt(d)
    half = min(1.0, 5 * sigma)
    grid = np.linspace(-half, half, 801)
    tv, gap = gaussian_gap(d) if d >= 3 else (np.nan, np.nan)
    return CoordinateHistogram(
        d=int(d), n=int(n), samples=u, sigma_theory=float(sigma),
        sigma_empirical=float(u.std()),
        kurtosis_exact=exact_kurtosis(d),
        kurtosis_empirical=float(stats.kurtosis(u, fisher=False)),
        grid=grid, exact_pdf=unit_coordinate_pdf(grid, d),
        gaussian_pdf=stats.norm.pdf(grid, scale=sigma), tv=tv, max_gap=gap)


@dataclass
class CacheSpread:
    """How one coordinate of ``t = sqrt(d) R u`` varies across the tokens of a cache (one fixed ``R``).

    Attributes
    ----------
    t : (n, d) ndarray
        The scaled rotated tokens.
    per_coordinate : (d,) ndarray
        ``t[:, i].std()`` across tokens, for each coordinate ``i`` (1 for N(0, 1)).
    narrow, wide : int
        The coordinates with the smallest and the largest spread.
    """
    t: np.ndarray
    per_coordinate: np.ndarray
    narrow: int
    wide: int


def cache_coordinate_spread(t) -> CacheSpread:
    """Per-coordinate spread across tokens of scaled rotated vectors ``t``, shape ``(n, d)``.

    Examples
    --------
    >>> s = cache_coordinate_spread(np.array([[1.0, 0.0], [-1.0, 0.5]]))
    >>> s.per_coordinate.tolist(), s.narrow, s.wide
    ([1.0, 0.25], 1, 0)
    """
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] < 2:
        raise ValueError(f"t must have shape (n, d) with n >= 2 tokens, got {t.shape}")
    spread = t.std(axis=0)
    return CacheSpread(t, spread, int(np.argmin(spread)), int(np.argmax(spread)))


#: The values of the d slider of lesson 04 (3: Archimedes' uniform law; then powers of two).
DIST_DIMS = (3, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
