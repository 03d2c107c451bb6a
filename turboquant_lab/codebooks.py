"""Lloyd-Max codebooks for the coordinate of a randomly rotated unit vector.

If ``u`` is uniform on the unit sphere of R^d (what a random rotation makes of
any fixed unit vector), each coordinate ``u_1`` has the density

.. math:: f_d(x) = \\frac{(1 - x^2)^{(d-3)/2}}{B(1/2, (d-1)/2)}, \\qquad -1 \\le x \\le 1,

that is ``(u_1 + 1) / 2 ~ Beta((d-1)/2, (d-1)/2)``, with variance exactly
``1/d``. This module works with the *scaled* coordinate ``t = sqrt(d) u_1``
(variance 1, support ``[-sqrt(d), sqrt(d)]``), which tends to N(0, 1) as ``d``
grows. A codebook is designed in scaled units; a quantizer uses
``centroids / sqrt(d)`` on the rotated unit vector. With this scaling the
codebook's per-coordinate MSE ``E[(t - Q(t))^2]`` equals the expected total
squared error ``E||u - u_hat||^2`` of a unit vector, the figure tabulated by
TurboQuant (Zandieh et al. 2025, arXiv:2504.19874).

Every expectation here is computed in closed form (no Monte Carlo): with
``alpha = (d-1)/2`` and ``u >= 0`` the tail integrals of the scaled law are

.. math::

    \\int_u^{\\sqrt d} f(t)\\,dt = \\tfrac12 I^c_{u^2/d}(\\tfrac12, \\alpha), \\quad
    \\int_u^{\\sqrt d} t f(t)\\,dt = \\frac{\\sqrt d\\,(1 - u^2/d)^{\\alpha}}{2\\alpha B(\\tfrac12, \\alpha)}, \\quad
    \\int_u^{\\sqrt d} t^2 f(t)\\,dt = \\tfrac12 I^c_{u^2/d}(\\tfrac32, \\alpha),

(``I^c`` the complementary regularized incomplete beta function,
``scipy.special.betaincc``) and for the Gaussian ``Phi(-u)``, ``phi(u)`` and
``u phi(u) + Phi(-u)``. Cell integrals are differences of *tails* (never of
CDFs near 1), and differences of the first-moment tails use ``expm1`` so that
narrow cells keep their digits even at 8 bits.
"""
from __future__ import annotations

import functools
import math
import numbers
import types
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, linalg, optimize, special

from ._validate import as_float_array, check_bits, check_dim
from .backend import get_xp, is_cupy_array, to_host

__all__ = [
    "Codebook",
    "lloyd_max_codebook",
    "lloyd_max_step",
    "lloyd_max_history",
    "uniform_codebook",
    "expected_mse",
    "expected_mse_reference",
    "coordinate_pdf",
    "coordinate_cdf",
    "unit_coordinate_pdf",
    "GAUSSIAN_MSE",
    "mse_lower_bound",
    "mse_upper_bound",
]

#: Lloyd-Max MSE of the standard Gaussian at 1..4 bits (Max 1960), as tabulated by TurboQuant.
GAUSSIAN_MSE = types.MappingProxyType({1: 0.3634, 2: 0.1175, 3: 0.03455, 4: 0.009497})

_TOL = 1e-12          # convergence: largest centroid change of one Lloyd step
_MAX_ITER = 500       # safety net; Newton-accelerated Lloyd needs far fewer
_UNIFORM_SPAN = 10.0  # a uniform codebook never reaches beyond +-10 (scaled units)
_HISTORY_SPAN = 3.0   # init="span" spreads the slots over [-3, 3] (or the support)


# --------------------------------------------------------------------------- validation


def _check_d(d, name: str = "d"):
    """``None`` (Gaussian) or an int >= 2."""
    if d is None:
        return None
    d = check_dim(d, name)
    if d < 2:
        raise ValueError(f"{name} must be at least 2 (the coordinate of a unit vector in R^1 is "
                         f"always +-1), got {d}; pass d=None for the Gaussian limit")
    return d


def _as_levels(centroids, name: str = "centroids") -> np.ndarray:
    """Host float64 copy of a 1-d array of levels, validated."""
    if is_cupy_array(centroids):
        centroids = to_host(centroids)
    c = as_float_array(centroids, name)
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of levels, got shape {c.shape}")
    return c


def _bits_of(n_levels: int, name: str = "centroids") -> int:
    bits = n_levels.bit_length() - 1
    if n_levels < 2 or (1 << bits) != n_levels or bits > 8:
        raise ValueError(f"{name} must hold 2**bits levels for bits between 1 and 8 "
                         f"(2, 4, ..., 256), got {n_levels}")
    return bits


# --------------------------------------------------------------------------- the law


def _binet(x: float) -> float:
    """``lgamma(x) - ((x - 1/2) log x - x + log(2 pi)/2)`` by its asymptotic series (x >= 20)."""
    x2 = x * x
    return (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - (1.0 / 1680.0 - 1.0 / (1188.0 * x2)) / x2) / x2)
            / x2) / x


def _log_beta_half(alpha: float) -> float:
    """``log B(1/2, alpha)`` to full precision for any ``alpha > 0``.

    For large ``alpha`` the textbook ``lgamma(1/2) + lgamma(alpha) - lgamma(alpha + 1/2)``
    (and ``scipy.special.betaln``) subtracts numbers of size ``alpha log alpha`` and
    loses ~1e-12 at d = 4096; Stirling's series for the difference keeps every digit:
    ``lgamma(a) - lgamma(a + 1/2) = -log(a)/2 + (1/2 - a log1p(1/(2a))) + mu(a) - mu(a + 1/2)``.
    """
    if alpha < 20.0:
        return float(special.betaln(0.5, alpha))
    diff = (-0.5 * math.log(alpha) + (0.5 - alpha * math.log1p(0.5 / alpha))
            + _binet(alpha) - _binet(alpha + 0.5))
    return 0.5 * math.log(math.pi) + diff


@functools.lru_cache(maxsize=None)
def _law_constants(d: int):
    """``(alpha, k, log B(1/2, alpha), C1)`` for the scaled law at dimension ``d``."""
    alpha = 0.5 * (d - 1)
    k = 0.5 * (d - 3)
    lbeta = _log_beta_half(alpha)
    c1 = math.exp(0.5 * math.log(d) - math.log(2.0 * alpha) - lbeta)
    return alpha, k, lbeta, c1


def _support(d) -> float:
    return math.inf if d is None else math.sqrt(d)


def _y(u, d):
    """``u^2 / d`` in ``[0, 1]``, exactly 1 from the end of the support on (sqrt(d)^2 may round down)."""
    return np.where(u >= math.sqrt(d), 1.0, np.minimum(u * u / d, 1.0))


def _tail0(u, d):
    """Mass beyond ``u >= 0``: ``P(t > u)``."""
    if d is None:
        return special.ndtr(-u)
    alpha = _law_constants(d)[0]
    return 0.5 * special.betaincc(0.5, alpha, _y(u, d))


def _tail1(u, d):
    """First moment beyond ``u >= 0``: ``E[t; t > u]``."""
    if d is None:
        return np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
    alpha, _, _, c1 = _law_constants(d)
    with np.errstate(divide="ignore"):
        return c1 * np.exp(alpha * np.log1p(-_y(u, d)))


def _tail2(u, d):
    """Second moment beyond ``u >= 0``: ``E[t^2; t > u]``."""
    if d is None:
        with np.errstate(invalid="ignore"):
            uphi = np.where(np.isinf(u), 0.0, u * _tail1(u, None))
        return uphi + special.ndtr(-u)
    alpha = _law_constants(d)[0]
    return 0.5 * special.betaincc(1.5, alpha, _y(u, d))


def _tail1_diff(a, b, d):
    """``_tail1(a) - _tail1(b)`` for ``a, b >= 0`` without cancellation.

    With ``lo = min(a, b)``: ``T1(lo) * -expm1(log(T1(hi) / T1(lo)))`` where the
    log-ratio is ``-(hi - lo)(hi + lo) / 2`` (Gaussian) or
    ``alpha * log1p(-(hi - lo)(hi + lo) / (d - lo^2))`` (exact law).
    """
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    sign = np.where(a <= b, 1.0, -1.0)
    t_lo = _tail1(lo, d)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        gap = (hi - lo) * (hi + lo)
        if d is None:
            log_ratio = np.where(np.isinf(hi), -np.inf, -0.5 * gap)
        else:
            alpha = _law_constants(d)[0]
            log_ratio = alpha * np.log1p(-np.minimum(gap / (d - lo * lo), 1.0))
        out = t_lo * -np.expm1(log_ratio)
    return sign * np.where(t_lo > 0, out, 0.0)


def _cell_moments(lo, hi, d, second: bool = False):
    """Mass ``p``, first moment ``M1`` (and second moment ``M2``) of the cells ``[lo, hi]``.

    Cells on the positive side are differences of upper tails, cells on the
    negative side are mirrored onto the positive side, and a cell holding 0 is
    ``1 - (two tails)``.
    """
    s = _support(d)
    lo = np.clip(lo, -s, s)
    hi = np.clip(hi, -s, s)
    pos = lo >= 0
    neg = hi <= 0
    mid = ~pos & ~neg
    a = np.where(neg, -hi, np.where(pos, lo, -lo))
    b = np.where(neg, -lo, hi)
    t0a, t0b = _tail0(a, d), _tail0(b, d)
    p = np.where(mid, 1.0 - t0a - t0b, t0a - t0b)
    m1 = np.where(neg, -1.0, 1.0) * _tail1_diff(a, b, d)
    p = np.maximum(p, 0.0)
    if not second:
        return p, m1
    t2a, t2b = _tail2(a, d), _tail2(b, d)
    m2 = np.where(mid, 1.0 - t2a - t2b, t2a - t2b)
    return p, m1, np.maximum(m2, 0.0)


def _pdf(t, d):
    """Density of the scaled coordinate (host float64 arrays)."""
    if d is None:
        return np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    _, k, lbeta, _ = _law_constants(d)
    inside = np.abs(t) <= math.sqrt(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        logf = -0.5 * math.log(d) - lbeta + k * np.log1p(-np.minimum(t * t / d, 1.0))
        f = np.exp(logf)
    return np.where(inside, f, 0.0)


def _host_float(t, name):
    """``(numpy float64 array, array module of the input)`` for the density helpers."""
    xp = get_xp(t)
    if xp is not np:
        t = to_host(t)
    arr = np.asarray(t, dtype=np.float64) if not hasattr(t, "dtype") or t.dtype.kind in "iuf" \
        else None
    if arr is None:
        raise TypeError(f"{name} must be real numbers, got dtype {t.dtype}")
    return arr, xp


def _wrap(out: np.ndarray, xp):
    if xp is not np:
        return xp.asarray(out)
    return out[()] if out.ndim == 0 else out


def coordinate_pdf(t, d=None):
    """Density of the scaled coordinate ``t = sqrt(d) u_1`` (or of N(0, 1) when ``d`` is None).

    Parameters
    ----------
    t : array_like
        Points, any shape.
    d : int >= 2 or None
        Dimension of the sphere; ``None`` for the Gaussian limit.

    Returns
    -------
    f : ndarray (float for a scalar input)
        Same shape as ``t``, zero outside ``[-sqrt(d), sqrt(d)]``. A CuPy input
        gets a CuPy output (computed on the host with SciPy).

    Raises
    ------
    TypeError, ValueError
        If ``d`` is not None or an integer >= 2.

    Notes
    -----
    .. math:: f(t) = \\frac{(1 - t^2/d)^{(d-3)/2}}{\\sqrt d \\, B(\\tfrac12, \\tfrac{d-1}{2})},
              \\qquad |t| \\le \\sqrt d,

    the density of ``sqrt(d) u_1`` for ``u`` uniform on the unit sphere of
    R^d; it has variance 1 and kurtosis ``3d/(d+2)``. At ``d = 2`` (the arcsine
    law) it is infinite at ``t = +-sqrt(2)``; at ``d = 3`` it is uniform.

    Examples
    --------
    >>> round(float(coordinate_pdf(0.0)), 6)
    0.398942
    >>> round(float(coordinate_pdf(0.0, d=3)), 6)    # uniform on [-sqrt 3, sqrt 3]
    0.288675
    """
    d = _check_d(d)
    arr, xp = _host_float(t, "t")
    return _wrap(_pdf(arr, d), xp)


def coordinate_cdf(t, d=None):
    """Cumulative distribution function of the scaled coordinate (N(0, 1) when ``d`` is None).

    Parameters
    ----------
    t : array_like
        Points, any shape.
    d : int >= 2 or None
        Dimension; ``None`` for the Gaussian limit.

    Returns
    -------
    F : ndarray (float for a scalar input)
        Same shape as ``t``; 0 below ``-sqrt(d)``, 1 above ``sqrt(d)``.

    Raises
    ------
    TypeError, ValueError
        If ``d`` is not None or an integer >= 2.

    Notes
    -----
    ``F(t) = P(t' > |t|)`` for ``t < 0`` and ``1 - P(t' > t)`` for ``t >= 0``,
    with the tail ``P(t' > u) = I^c_{u^2/d}(1/2, (d-1)/2) / 2`` (``u_1^2`` is
    ``Beta(1/2, (d-1)/2)``), so tail probabilities keep full relative precision.

    Examples
    --------
    >>> float(coordinate_cdf(0.0, d=16))
    0.5
    """
    d = _check_d(d)
    arr, xp = _host_float(t, "t")
    tail = _tail0(np.minimum(np.abs(arr), _support(d)), d)
    return _wrap(np.where(arr < 0, tail, 1.0 - tail), xp)


def unit_coordinate_pdf(x, d):
    """Density of the unscaled coordinate ``u_1`` of a uniform unit vector in R^d.

    Parameters
    ----------
    x : array_like
        Points in ``[-1, 1]``, any shape.
    d : int >= 2
        Dimension.

    Returns
    -------
    f : ndarray (float for a scalar input)
        Same shape as ``x``, zero outside ``[-1, 1]``.

    Raises
    ------
    TypeError, ValueError
        If ``d`` is not an integer >= 2.

    Notes
    -----
    .. math:: f_d(x) = \\frac{(1 - x^2)^{(d-3)/2}}{B(\\tfrac12, \\tfrac{d-1}{2})},

    i.e. ``(u_1 + 1)/2 ~ Beta((d-1)/2, (d-1)/2)``, with variance ``1/d``; close
    to N(0, 1/d) for large ``d`` (lesson 04 overlays both on a histogram).

    Examples
    --------
    >>> round(float(unit_coordinate_pdf(0.0, 3)), 6)   # uniform on [-1, 1]
    0.5
    """
    if d is None:
        raise TypeError("d must be an integer >= 2 for the unscaled coordinate; "
                        "for the Gaussian limit use coordinate_pdf(t, d=None)")
    d = _check_d(d)
    arr, xp = _host_float(x, "x")
    return _wrap(math.sqrt(d) * _pdf(math.sqrt(d) * arr, d), xp)


# --------------------------------------------------------------------------- codebook


@dataclass(frozen=True, eq=False, repr=False)
class Codebook:
    """A scalar quantizer for the scaled coordinate: levels, cell boundaries and its MSE.

    Parameters
    ----------
    bits : int
        Bits per coordinate, 1 to 8; ``2**bits`` levels.
    d : int or None
        The dimension whose exact coordinate law the codebook was designed for;
        ``None`` for the Gaussian limit N(0, 1).
    centroids : (2**bits,) float64 ndarray
        Reconstruction levels, ascending (symmetric about 0 for Lloyd-Max and
        uniform codebooks), in scaled units: use ``centroids / sqrt(d)`` on a
        rotated unit vector.
    boundaries : (2**bits - 1,) float64 ndarray
        Cell edges, ascending: the midpoints between neighbouring centroids
        (nearest-centroid cells).
    mse : float
        ``E[(t - Q(t))^2]`` under the law, by exact integration.
    iterations : int
        Lloyd updates used to build it (0 for a uniform codebook).

    Notes
    -----
    Both arrays are stored read-only. The class compares and hashes by
    identity (``eq=False``), so codebooks can be dictionary keys.

    Examples
    --------
    >>> cb = lloyd_max_codebook(1)
    >>> cb.quantize(np.array([-0.3, 0.0, 2.0]))
    array([0, 1, 1], dtype=uint8)
    """

    bits: int
    d: int | None
    centroids: np.ndarray
    boundaries: np.ndarray
    mse: float
    iterations: int = field(default=0)

    def __post_init__(self):
        bits = check_bits(self.bits)
        d = _check_d(self.d)
        n = 1 << bits
        c = np.array(_as_levels(self.centroids, "centroids"), dtype=np.float64)
        b = np.array(to_host(self.boundaries), dtype=np.float64).reshape(-1)
        if c.shape != (n,):
            raise ValueError(f"centroids must have 2**bits = {n} entries, got {c.shape[0]}")
        if b.shape != (n - 1,):
            raise ValueError(f"boundaries must have 2**bits - 1 = {n - 1} entries, got {b.shape[0]}")
        if np.any(np.diff(c) < 0) or np.any(np.diff(b) < 0):
            raise ValueError("centroids and boundaries must be sorted in ascending order")
        c.setflags(write=False)
        b.setflags(write=False)
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "centroids", c)
        object.__setattr__(self, "boundaries", b)
        object.__setattr__(self, "mse", float(self.mse))
        object.__setattr__(self, "iterations", int(self.iterations))

    @property
    def levels(self) -> int:
        """Number of levels, ``2**bits``."""
        return 1 << self.bits

    def __repr__(self) -> str:
        law = "Gaussian" if self.d is None else f"d={self.d}"
        return (f"Codebook(bits={self.bits}, {law}, levels={self.levels}, "
                f"mse={self.mse:.6g}, iterations={self.iterations})")

    def quantize(self, t):
        """Code of each value: the index of its cell.

        Parameters
        ----------
        t : (..., n) float array (NumPy or CuPy)
            Scaled coordinates (``sqrt(d) *`` the rotated unit vector).

        Returns
        -------
        codes : (..., n) uint8 array of the same array module
            ``codes = number of boundaries <= t``, i.e.
            ``searchsorted(boundaries, t, side="right")``: a value exactly on a
            boundary goes to the *upper* cell; values beyond the outer
            boundaries go to the outer cells.

        Raises
        ------
        TypeError, ValueError
            For non-float, empty, 0-d or non-finite input.
        """
        t = as_float_array(t, "t")
        xp = get_xp(t)
        return xp.searchsorted(xp.asarray(self.boundaries), t, side="right").astype(xp.uint8)

    def dequantize(self, codes, dtype=np.float64):
        """Levels for codes: ``centroids[codes]``.

        Parameters
        ----------
        codes : (..., n) integer array (NumPy or CuPy)
            Values in ``[0, 2**bits)``.
        dtype : dtype
            Output dtype (default float64).

        Returns
        -------
        t_hat : (..., n) array of the same array module

        Raises
        ------
        TypeError
            If ``codes`` is not an integer array.
        ValueError
            If a code is outside ``[0, 2**bits)``.
        """
        xp = get_xp(codes)
        codes = codes if hasattr(codes, "dtype") else np.asarray(codes)
        if codes.dtype.kind not in "iu":
            raise TypeError(f"codes must be an integer array (from quantize), got dtype {codes.dtype}")
        if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= self.levels):
            raise ValueError(f"codes must lie in [0, {self.levels}) for a {self.bits}-bit codebook, "
                             f"got values in [{int(codes.min())}, {int(codes.max())}]")
        return xp.asarray(self.centroids, dtype=dtype)[codes]


def _midpoints(c: np.ndarray) -> np.ndarray:
    return 0.5 * (c[:-1] + c[1:])


def _edges(boundaries: np.ndarray, d) -> np.ndarray:
    s = _support(d)
    return np.concatenate(([-s], boundaries, [s]))


def _make(bits, d, c, iterations) -> Codebook:
    b = _midpoints(c)
    return Codebook(bits, d, c, b, _mse(c, b, d), iterations)


# --------------------------------------------------------------------------- expected MSE


def _mse(c: np.ndarray, boundaries: np.ndarray, d) -> float:
    e = _edges(boundaries, d)
    p, m1, m2 = _cell_moments(e[:-1], e[1:], d, second=True)
    return float(np.sum(m2 - 2.0 * c * m1 + c * c * p))


def _check_boundaries(boundaries, n: int) -> np.ndarray:
    b = _as_levels(boundaries, "boundaries") if n > 1 else np.zeros(0)
    if b.shape != (n - 1,):
        raise ValueError(f"boundaries must have len(centroids) - 1 = {n - 1} entries, got {b.shape[0]}")
    if np.any(np.diff(b) < 0):
        raise ValueError("boundaries must be sorted in ascending order")
    return b


def _levels_and_cells(centroids, boundaries):
    """Checked levels and their cell boundaries (midpoints of the sorted levels when None)."""
    c = _as_levels(centroids)
    if boundaries is None:
        c = np.sort(c)
        return c, _midpoints(c)
    return c, _check_boundaries(boundaries, c.shape[0])


def expected_mse(centroids, d=None, boundaries=None) -> float:
    """Exact ``E[(t - Q(t))^2]`` of any scalar codebook under the coordinate law.

    Parameters
    ----------
    centroids : (n,) array_like
        Levels (scaled units). Sorted first when ``boundaries`` is None.
    d : int >= 2 or None
        Law: exact at dimension ``d``, or N(0, 1) when None.
    boundaries : (n - 1,) array_like, optional
        Ascending cell edges; cell ``i`` (``boundaries[i-1] <= t < boundaries[i]``)
        maps to ``centroids[i]``. Default: nearest centroid (midpoints).

    Returns
    -------
    mse : float

    Raises
    ------
    TypeError, ValueError
        Bad ``d``, non-finite or mis-shaped levels or boundaries.

    Notes
    -----
    With cells ``[b_{i-1}, b_i]`` (outer edges at the support ends),

    .. math:: \\mathrm{MSE} = \\sum_i \\left( M_{2,i} - 2 c_i M_{1,i} + c_i^2 p_i \\right),

    where ``p_i``, ``M_{1,i}``, ``M_{2,i}`` are the cell's mass, first and second
    moments, differences of the closed-form tails in the module docstring
    (absolute error about 1e-15, far below the 8-bit MSE of ~4e-5). Cost
    O(n) special-function calls. :func:`expected_mse_reference` is the
    ``scipy.integrate.quad`` oracle.

    Examples
    --------
    >>> round(expected_mse([-np.sqrt(2 / np.pi), np.sqrt(2 / np.pi)]), 4)
    0.3634
    """
    d = _check_d(d)
    c, b = _levels_and_cells(centroids, boundaries)
    return _mse(c, b, d)


def expected_mse_reference(centroids, d=None, boundaries=None) -> float:
    """The plain oracle for :func:`expected_mse`: ``scipy.integrate.quad`` cell by cell.

    Integrates ``(t - c_i)^2 f(t)`` over each cell; for the exact law it works
    in ``x = t / sqrt(d)`` and hands the end-point factors ``(1 -+ x)^((d-3)/2)``
    of the outer cells to quad's algebraic weight, so ``d = 2`` (infinite
    density at the ends) is integrated accurately. Slow (one quad per cell);
    for tests and teaching.

    Examples
    --------
    >>> round(expected_mse_reference([-1.0, 1.0], d=3), 6)   # uniform law: 2 - sqrt(3)
    0.267949
    """
    d = _check_d(d)
    c, b = _levels_and_cells(centroids, boundaries)
    opts = dict(epsabs=1e-14, epsrel=1e-12, limit=200)
    total = 0.0
    if d is None:
        e = _edges(b, None)
        for lo, hi, ci in zip(e[:-1], e[1:], c):
            def g(t, ci=ci):
                return (t - ci) ** 2 * math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
            if hi > lo:
                total += integrate.quad(g, lo, hi, **opts)[0]
        return total
    _, k, lbeta, _ = _law_constants(d)
    rd = math.sqrt(d)
    norm = math.exp(-lbeta)
    e = np.clip(_edges(b, d) / rd, -1.0, 1.0)
    for lo, hi, ci in zip(e[:-1], e[1:], c):
        if not hi > lo:
            continue
        at_lo, at_hi = lo <= -1.0, hi >= 1.0
        # factor out (1 + x)^k at x = -1 and (1 - x)^k at x = 1 into quad's weight
        def g(x, ci=ci, at_lo=at_lo, at_hi=at_hi):
            w = 1.0
            if not at_lo:
                w *= (1.0 + x) ** k
            if not at_hi:
                w *= (1.0 - x) ** k
            return (rd * x - ci) ** 2 * w * norm
        if at_lo or at_hi:
            wvar = (k if at_lo else 0.0, k if at_hi else 0.0)
            total += integrate.quad(g, lo, hi, weight="alg", wvar=wvar, **opts)[0]
        else:
            total += integrate.quad(g, lo, hi, **opts)[0]
    return total


# --------------------------------------------------------------------------- Lloyd-Max


def _lloyd_map(c: np.ndarray, d, jacobian: bool = False):
    """Conditional means of the nearest-centroid cells of ``c`` (and the map's Jacobian bands).

    Empty cells (mass 0) keep their centroid.
    """
    b = _midpoints(c)
    e = _edges(b, d)
    p, m1 = _cell_moments(e[:-1], e[1:], d)
    ok = p > 0
    m = np.where(ok, m1 / np.where(ok, p, 1.0), c)
    if not jacobian:
        return m
    # dm_i/db_i = f(b_i)(b_i - m_i)/p_i (upper edge), dm_i/db_{i-1} = f(b_{i-1})(m_i - b_{i-1})/p_i
    fb = _pdf(b, d)
    pp = np.where(ok, p, np.inf)
    d_up = np.zeros_like(c)
    d_lo = np.zeros_like(c)
    d_up[:-1] = fb * (b - m[:-1]) / pp[:-1]
    d_lo[1:] = fb * (m[1:] - b) / pp[1:]
    # boundaries are midpoints: db_i/dc_i = db_i/dc_{i+1} = 1/2
    return m, 0.5 * d_lo, 0.5 * (d_lo + d_up), 0.5 * d_up


def _initial_guess(n: int, d) -> np.ndarray:
    """Companding start: quantiles of the law whose density is f^(1/3) (Panter-Dite).

    For N(0, 1) that law is N(0, 3); for the exact law with exponent
    ``(d-3)/2`` it is the same family with exponent ``(d-3)/6``, i.e.
    ``(x + 1)/2 ~ Beta(a, a)`` with ``a = (d + 3)/6``.
    """
    q = (np.arange(n) + 0.5) / n
    if d is None:
        c = math.sqrt(3.0) * special.ndtri(q)
    else:
        a = (d + 3.0) / 6.0
        c = math.sqrt(d) * (2.0 * special.betaincinv(a, a, q) - 1.0)
    return _symmetrize(c)


def _symmetrize(c: np.ndarray) -> np.ndarray:
    return 0.5 * (c - c[::-1])


def _solve_lloyd_max(n: int, d):
    """Fixed point of the Lloyd map by Newton's method, falling back to plain Lloyd steps."""
    c = _initial_guess(n, d)
    s = _support(d)
    prev_c, prev_res = None, math.inf
    for it in range(1, _MAX_ITER + 1):
        m, lo, diag, up = _lloyd_map(c, d, jacobian=True)
        r = m - c
        res = float(np.max(np.abs(r)))
        if res <= _TOL:
            return _symmetrize(m), it
        if res > prev_res and prev_c is not None:   # the Newton step made it worse: Lloyd instead
            c, prev_c, prev_res = _symmetrize(_lloyd_map(prev_c, d)), None, math.inf
            continue
        # solve (I - J) delta = r with J tridiagonal (sub lo, diag, super up)
        ab = np.zeros((3, n))
        ab[0, 1:] = -up[:-1]
        ab[1] = 1.0 - diag
        ab[2, :-1] = -lo[1:]
        try:
            delta = linalg.solve_banded((1, 1), ab, r, check_finite=False)
            c_new = _symmetrize(c + delta)
            good = np.all(np.isfinite(c_new)) and np.all(np.diff(c_new) > 0) and \
                np.all(np.abs(c_new) < s)
        except (linalg.LinAlgError, ValueError):
            good = False
        prev_c, prev_res = c, res
        c = c_new if good else _symmetrize(m)
    raise RuntimeError(f"Lloyd-Max did not converge for {n} levels, d={d}: "  # pragma: no cover
                       f"last centroid change {res:.3g}")


@functools.lru_cache(maxsize=None)
def _lloyd_max_cached(bits: int, d):
    c, iterations = _solve_lloyd_max(1 << bits, d)
    return _make(bits, d, c, iterations)


def lloyd_max_codebook(bits, d=None) -> Codebook:
    """Lloyd-Max (MSE-optimal) codebook for the scaled coordinate of a rotated unit vector.

    Parameters
    ----------
    bits : int
        1 to 8; the codebook has ``2**bits`` levels.
    d : int >= 2 or None
        Exact law at dimension ``d`` (scaled Beta), or N(0, 1) when None.

    Returns
    -------
    Codebook
        Symmetric ascending centroids (scaled units), midpoint boundaries, the
        exact MSE. Cached per ``(bits, d)``: repeated calls return the same
        object (read-only arrays).

    Raises
    ------
    TypeError, ValueError
        ``bits`` not an integer in 1..8, ``d`` not None or an integer >= 2.

    Notes
    -----
    Lloyd-Max conditions: every boundary is the midpoint of its neighbouring
    centroids, every centroid the conditional mean of its cell,

    .. math:: c_i = E[t \\mid b_{i-1} < t < b_i]
              = \\frac{\\int_{b_{i-1}}^{b_i} t f(t)\\,dt}{\\int_{b_{i-1}}^{b_i} f(t)\\,dt},

    in closed form (Gaussian: ``(phi(a) - phi(b)) / (Phi(b) - Phi(a))``; exact
    law: ``int x (1-x^2)^k dx = -(1-x^2)^(k+1) / (2(k+1))`` over a regularized
    incomplete beta mass). Plain Lloyd iteration converges slowly for many
    levels, so the fixed point ``c = m(c)`` of the Lloyd map ``m`` is found by
    Newton's method (the Jacobian of ``m`` is tridiagonal), started from the
    Panter-Dite companding guess (quantiles of ``f^(1/3)``) and falling back to
    a plain Lloyd step whenever Newton would not help. It stops when one Lloyd
    step moves no centroid by more than 1e-12 and returns that last Lloyd step.
    ``iterations`` counts the updates. The MSE is :func:`expected_mse`. For
    large ``d`` it tends to the Gaussian table :data:`GAUSSIAN_MSE`; ``d = 3``
    (uniform law) gives the uniform quantizer with MSE exactly ``4**-bits``.

    Examples
    --------
    >>> cb = lloyd_max_codebook(2)
    >>> np.round(cb.centroids, 4)
    array([-1.5104, -0.4528,  0.4528,  1.5104])
    >>> round(cb.mse, 4)
    0.1175
    """
    bits = check_bits(bits)
    d = _check_d(d)
    return _lloyd_max_cached(bits, d)


def lloyd_max_step(centroids, d=None) -> Codebook:
    """One Lloyd iteration: boundaries to midpoints, centroids to conditional means.

    Parameters
    ----------
    centroids : (2**bits,) array_like
        Current levels (sorted first), ``bits`` in 1..8.
    d : int >= 2 or None
        Law: exact at dimension ``d``, or N(0, 1).

    Returns
    -------
    Codebook
        The new centroids (conditional means of the cells cut at the midpoints
        of the given ones; an empty cell keeps its centroid), with the
        *new* midpoints as boundaries and their MSE; ``iterations=1``.

    Raises
    ------
    TypeError, ValueError
        Wrong number of levels, non-finite values, bad ``d``.

    Notes
    -----
    Each half of the step cannot raise the MSE: midpoints are the best cells
    for fixed centroids, conditional means the best centroids for fixed cells.

    Examples
    --------
    >>> cb = lloyd_max_step([-1.0, 1.0])      # 1 bit, Gaussian: straight to E|t|
    >>> np.round(cb.centroids, 6)
    array([-0.797885,  0.797885])
    """
    d = _check_d(d)
    c = np.sort(_as_levels(centroids))
    bits = _bits_of(c.shape[0])
    return _make(bits, d, _lloyd_map(c, d), 1)


def lloyd_max_history(bits, d=None, n_iter=30, init="uniform") -> list:
    """The Lloyd iterations from a starting codebook, for teaching (lesson 07).

    Parameters
    ----------
    bits : int
        1 to 8.
    d : int >= 2 or None
        Law: exact at dimension ``d``, or N(0, 1).
    n_iter : int
        Number of Lloyd iterations (>= 0).
    init : {"uniform", "span"} or (2**bits,) array_like
        ``"uniform"``: the best uniform codebook (:func:`uniform_codebook`);
        ``"span"``: equal slots over ``[-L, L]``, ``L = min(3, sqrt(d))``
        (``L = 3`` for the Gaussian), centroids at the slot centres; or an
        explicit array of levels.

    Returns
    -------
    list of Codebook
        ``n_iter + 1`` states: the start (``iterations=0``), then the state
        after each iteration (``iterations=i``). Their MSE never increases.

    Raises
    ------
    TypeError, ValueError
        Bad ``bits``, ``d``, ``n_iter`` or ``init``.

    Examples
    --------
    >>> h = lloyd_max_history(2, n_iter=5, init="span")
    >>> len(h), h[0].mse > h[-1].mse
    (6, True)
    """
    bits = check_bits(bits)
    d = _check_d(d)
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    n = 1 << bits
    if isinstance(init, str):
        if init == "uniform":
            c = np.array(uniform_codebook(bits, d).centroids)
        elif init == "span":
            span = min(_HISTORY_SPAN, _support(d))
            c = -span + (np.arange(n) + 0.5) * (2.0 * span / n)
        else:
            raise ValueError(f'init must be "uniform", "span" or an array of {n} levels, got {init!r}')
    else:
        c = np.sort(_as_levels(init, "init"))
        if c.shape != (n,):
            raise ValueError(f"init must hold 2**bits = {n} levels, got {c.shape[0]}")
    states = [_make(bits, d, c, 0)]
    for i in range(1, int(n_iter) + 1):
        c = _lloyd_map(c, d)
        states.append(_make(bits, d, c, i))
    return states


# --------------------------------------------------------------------------- uniform


def _uniform_levels(n: int, step: float) -> np.ndarray:
    return (np.arange(n) - 0.5 * (n - 1)) * step


@functools.lru_cache(maxsize=None)
def _uniform_cached(bits: int, d):
    n = 1 << bits
    span = min(_UNIFORM_SPAN, _support(d))
    hi_step = 2.0 * span / (n - 1)

    def loss(step):
        c = _uniform_levels(n, step)
        return _mse(c, _midpoints(c), d)

    grid = hi_step * np.geomspace(1e-3, 1.0, 64)
    vals = np.array([loss(s) for s in grid])
    j = int(np.argmin(vals))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
    res = optimize.minimize_scalar(loss, bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-12 * hi_step})
    step = float(res.x) if res.fun <= vals[j] else float(grid[j])
    return _make(bits, d, _uniform_levels(n, step), 0)


def uniform_codebook(bits, d=None) -> Codebook:
    """The best *uniform* codebook with ``2**bits`` evenly spaced levels for the law.

    Parameters
    ----------
    bits : int
        1 to 8.
    d : int >= 2 or None
        Law: exact at dimension ``d``, or N(0, 1).

    Returns
    -------
    Codebook
        Centroids ``c_i = (i - (2**bits - 1)/2) * step``, midpoint boundaries,
        ``iterations=0``. Cached per ``(bits, d)``.

    Raises
    ------
    TypeError, ValueError
        Bad ``bits`` or ``d``.

    Notes
    -----
    ``step`` minimises :func:`expected_mse` over
    ``(0, 2 L / (2**bits - 1)]``, ``L = min(10, sqrt(d))``: a 64-point
    log-spaced scan, then ``scipy.optimize.minimize_scalar`` (bounded) between
    the neighbours of the best point. This is the baseline lesson 07 puts
    Lloyd-Max against at the same bits.

    Examples
    --------
    >>> uniform_codebook(3).mse > lloyd_max_codebook(3).mse
    True
    """
    bits = check_bits(bits)
    d = _check_d(d)
    return _uniform_cached(bits, d)


# --------------------------------------------------------------------------- bounds


def mse_lower_bound(bits):
    """``4**-bits``: the Shannon lower bound on the MSE at ``bits`` per coordinate.

    No quantizer, scalar or vector, spending ``bits`` bits per coordinate on
    i.i.d. N(0, 1) coordinates reaches a lower MSE; TurboQuant (Zandieh et al.
    2025, Thm. 3) states the same ``4**-bits`` for unit vectors in high
    dimension. It is a bound for the Gaussian law, not for every ``d``: at
    ``d = 3`` the exact coordinate law is uniform and Lloyd-Max meets it
    exactly, and at ``d = 2`` (arcsine law) ``lloyd_max_codebook(bits, 2).mse``
    is below it. Takes an int or an array (for plotting curves).

    Examples
    --------
    >>> mse_lower_bound(2)
    0.0625
    """
    out = 4.0 ** -np.asarray(bits, dtype=np.float64)
    return float(out) if out.ndim == 0 else out


def mse_upper_bound(bits):
    """``(sqrt(3) pi / 2) 4**-bits``: TurboQuant's guarantee for its MSE quantizer.

    It is also the Panter-Dite high-resolution limit of the Gaussian Lloyd-Max
    MSE. Takes an int or an array.

    Examples
    --------
    >>> round(mse_upper_bound(1), 4)
    0.6802
    """
    out = math.sqrt(3.0) * math.pi / 2.0 * 4.0 ** -np.asarray(bits, dtype=np.float64)
    return float(out) if out.ndim == 0 else out
