"""The law of one coordinate of a randomly rotated unit vector, in closed form.

If ``u`` is uniform on the unit sphere of R^d (what a random rotation makes of
any fixed unit vector), each coordinate ``u_1`` has the density

.. math:: f_d(x) = \\frac{(1 - x^2)^{(d-3)/2}}{B(1/2, (d-1)/2)}, \\qquad -1 \\le x \\le 1,

that is ``(u_1 + 1) / 2 ~ Beta((d-1)/2, (d-1)/2)``, with variance exactly
``1/d``. This module works with the *scaled* coordinate ``t = sqrt(d) u_1``
(variance 1, support ``[-sqrt(d), sqrt(d)]``), which tends to N(0, 1) as ``d``
grows. :mod:`turboquant_lab.codebooks` designs Lloyd-Max codebooks for it.

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

import numpy as np
from scipy import special

from ._validate import check_dim
from .backend import get_xp, to_host

__all__ = ["coordinate_pdf", "coordinate_cdf", "unit_coordinate_pdf"]


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
