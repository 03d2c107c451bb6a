"""Lloyd-Max codebooks: for the coordinate of a randomly rotated unit vector, and for any 1-D law.

A random rotation turns any unit vector of R^d into a uniformly random one,
whose scaled coordinate ``t = sqrt(d) u_1`` follows one known law
(:mod:`turboquant_lab.coordinate_law`: a scaled Beta law, variance 1, close to
N(0, 1) for large ``d``). A codebook is designed in scaled units; a quantizer
uses ``centroids / sqrt(d)`` on the rotated unit vector. With this scaling the
codebook's per-coordinate MSE ``E[(t - Q(t))^2]`` equals the expected total
squared error ``E||u - u_hat||^2`` of a unit vector, the figure tabulated by
TurboQuant (Zandieh et al. 2025, arXiv:2504.19874). Every expectation is
computed in closed form from the law's tail integrals (no Monte Carlo).

The machinery is not tied to that law. Lloyd-Max needs a law only through its
*cell moments* (the mass and first moment of an interval, and the second
moment for the error), so it runs on any :class:`ScalarLaw` that supplies
them: :class:`CoordinateLaw` is the coordinate law above, and
:mod:`turboquant_lab.polar` passes the laws of PolarQuant's angles (one on a
circle) to the same :func:`lloyd_max_codebook`, :func:`lloyd_max_step` and
:func:`expected_mse` through their ``law`` argument.
"""
from __future__ import annotations

import functools
import math
import numbers
import types
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, linalg, optimize

from ._validate import as_float_array, check_bits
from .backend import get_xp, is_cupy_array, to_host
from .scalar_law import CoordinateLaw, ScalarLaw, _coordinate_law, _resolve_law
from .coordinate_law import (
    _check_d,
    _law_constants,
    _support,
    coordinate_cdf,
    coordinate_pdf,
    unit_coordinate_pdf,
)

__all__ = [
    "Codebook",
    "ScalarLaw",
    "CoordinateLaw",
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

#: Lloyd-Max MSE of the standard Gaussian at 1..4 bits, from Max (1960), "Quantizing for minimum
#: distortion" (TurboQuant's paper quotes them). Lesson 07 recomputes them: 0.009501 at 4 bits.
GAUSSIAN_MSE = types.MappingProxyType({1: 0.3634, 2: 0.1175, 3: 0.03455, 4: 0.009497})

_TOL = 1e-12          # convergence: largest centroid change of one Lloyd step
_MAX_ITER = 500       # safety net; Newton-accelerated Lloyd needs far fewer
_UNIFORM_SPAN = 10.0  # a uniform codebook never reaches beyond +-10 (scaled units)
_HISTORY_SPAN = 3.0   # init="span" spreads the slots over [-3, 3] (or the support)


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
    law : ScalarLaw or None
        The law of a codebook made with ``law=`` (then ``d`` is None, and
        ``mse`` is that law's distortion, e.g. the squared chord of an angle);
        None for the coordinate law, which ``d`` names.

    Notes
    -----
    Both arrays are stored read-only. The class compares and hashes by
    identity (``eq=False``), so codebooks can be dictionary keys.

    On a circular law (``law.circular``) the cells are those of the nearest
    centroid *on the circle*: besides the ``2**bits - 1`` boundaries between
    neighbours there is one more, the midpoint between the last centroid and
    the first one plus a period (:attr:`wrap`), and values are reduced modulo
    the period before they are compared.

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
    law: object = field(default=None)

    def __post_init__(self):
        bits = check_bits(self.bits)
        d = _check_d(self.d)
        if self.law is not None:
            if not isinstance(self.law, ScalarLaw):
                raise TypeError(f"law must be a ScalarLaw, got {type(self.law).__name__}")
            if d is not None:
                raise ValueError("a codebook has either d (the coordinate law) or law, not both")
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

    @property
    def wrap(self):
        """On a circular law: the boundary between the last cell and the first, in ``[lo, lo + period)``.

        None on the line.
        """
        if self.law is None or not self.law.circular:
            return None
        return _wrap_edge(self.centroids, self.law) % self.law.period + self.law.support[0]

    def __repr__(self) -> str:
        if self.law is not None:
            return (f"Codebook(bits={self.bits}, {self.law!r}, levels={self.levels}, "
                    f"mse={self.mse:.6g}, iterations={self.iterations})")
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
        if self.wrap is None:
            return xp.searchsorted(xp.asarray(self.boundaries), t, side="right").astype(xp.uint8)
        lo, period, wrap = self.law.support[0], self.law.period, self.wrap
        t = xp.mod(t - lo, period) + lo
        codes = xp.searchsorted(xp.asarray(self.boundaries), t, side="right")
        if wrap < self.centroids[0]:      # the wrap cell reaches past lo: its start is the last cell's
            codes = xp.where(t < wrap, self.levels - 1, codes)
        elif wrap > self.centroids[-1]:   # it reaches below lo + period: its end is the first cell's
            codes = xp.where(t >= wrap, 0, codes)
        return codes.astype(xp.uint8)

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


def _wrap_edge(c: np.ndarray, law) -> float:
    """On a circle: the midpoint between the last centroid and the first one plus a period."""
    return 0.5 * (float(c[-1]) + float(c[0]) + law.period)


def _edges(boundaries: np.ndarray, law, c=None) -> np.ndarray:
    """Cell edges: the support's ends around the boundaries, or on a circle the wrap edge on both sides."""
    if law.circular:
        wrap = _wrap_edge(c, law)
        return np.concatenate(([wrap - law.period], boundaries, [wrap]))
    lo, hi = law.support
    return np.concatenate(([lo], boundaries, [hi]))


def _make(bits, law, c, iterations) -> Codebook:
    b = _midpoints(c)
    if isinstance(law, CoordinateLaw):
        return Codebook(bits, law.d, c, b, _mse(c, b, law), iterations)
    return Codebook(bits, None, c, b, _mse(c, b, law), iterations, law)


# --------------------------------------------------------------------------- expected MSE


def _mse(c: np.ndarray, boundaries: np.ndarray, law) -> float:
    e = _edges(boundaries, law, c)
    p, m1, m2 = law.cell_moments(e[:-1], e[1:], second=True)
    return float(np.sum(law.cell_error(c, p, m1, m2)))


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


def expected_mse(centroids, d=None, boundaries=None, *, law=None) -> float:
    """Exact ``E[(t - Q(t))^2]`` of any scalar codebook under the coordinate law (or ``law``).

    Parameters
    ----------
    centroids : (n,) array_like
        Levels (scaled units). Sorted first when ``boundaries`` is None.
    d : int >= 2 or None
        Law: exact at dimension ``d``, or N(0, 1) when None.
    boundaries : (n - 1,) array_like, optional
        Ascending cell edges; cell ``i`` (``boundaries[i-1] <= t < boundaries[i]``)
        maps to ``centroids[i]``. Default: nearest centroid (midpoints).
    law : ScalarLaw, optional
        Any other law (then ``d`` must be None): the result is that law's
        distortion, ``sum_i law.cell_error(c_i, cell moments)``.

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
    law = _resolve_law(d, law)
    c, b = _levels_and_cells(centroids, boundaries)
    return _mse(c, b, law)


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
        e = _edges(b, _coordinate_law(None))
        for lo, hi, ci in zip(e[:-1], e[1:], c):
            def g(t, ci=ci):
                return (t - ci) ** 2 * math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
            if hi > lo:
                total += integrate.quad(g, lo, hi, **opts)[0]
        return total
    _, k, lbeta, _ = _law_constants(d)
    rd = math.sqrt(d)
    norm = math.exp(-lbeta)
    e = np.clip(_edges(b, _coordinate_law(d)) / rd, -1.0, 1.0)
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


def _lloyd_map(c: np.ndarray, law, jacobian: bool = False):
    """Best centroids of the nearest-centroid cells of ``c`` (and the map's Jacobian bands).

    Empty cells (mass 0) keep their centroid. On a circular law the result is
    reduced to the support and sorted (the Jacobian is not available there).
    """
    b = _midpoints(c)
    e = _edges(b, law, c)
    p, m1 = law.cell_moments(e[:-1], e[1:])
    ok = p > 0
    m = np.where(ok, law.centroid(np.where(ok, p, 1.0), m1), c)
    if law.circular:
        lo = law.support[0]
        return np.sort(np.mod(m - lo, law.period) + lo)
    if not jacobian:
        return m
    # dm_i/db_i = f(b_i)(b_i - m_i)/p_i (upper edge), dm_i/db_{i-1} = f(b_{i-1})(m_i - b_{i-1})/p_i
    # for the squared error (law.centroid_slope in general)
    fb = law.pdf(b)
    pp = np.where(ok, p, np.inf)
    d_up = np.zeros_like(c)
    d_lo = np.zeros_like(c)
    d_up[:-1] = law.centroid_slope(fb, b - m[:-1], pp[:-1], m1[:-1])
    d_lo[1:] = law.centroid_slope(fb, m[1:] - b, pp[1:], m1[1:])
    # boundaries are midpoints: db_i/dc_i = db_i/dc_{i+1} = 1/2
    return m, 0.5 * d_lo, 0.5 * (d_lo + d_up), 0.5 * d_up


def _solve_lloyd_max(n: int, law):
    """Fixed point of the Lloyd map by Newton's method, falling back to plain Lloyd steps.

    On a circle: plain Lloyd steps (for the uniform law the first one finds the start already fixed).
    """
    c = law.initial_guess(n)
    s_lo, s_hi = law.support
    if law.circular:
        for it in range(1, _MAX_ITER + 1):
            m = _lloyd_map(c, law)
            res = float(np.max(np.abs(m - c)))
            c = m
            if res <= _TOL:
                return c, it
        raise RuntimeError(f"Lloyd-Max did not converge for {n} levels on {law!r}: "  # pragma: no cover
                           f"last centroid change {res:.3g}")
    prev_c, prev_res = None, math.inf
    for it in range(1, _MAX_ITER + 1):
        m, lo, diag, up = _lloyd_map(c, law, jacobian=True)
        r = m - c
        res = float(np.max(np.abs(r)))
        if res <= _TOL:
            return law.symmetrize(m), it
        if res > prev_res and prev_c is not None:   # the Newton step made it worse: Lloyd instead
            c, prev_c, prev_res = law.symmetrize(_lloyd_map(prev_c, law)), None, math.inf
            continue
        # solve (I - J) delta = r with J tridiagonal (sub lo, diag, super up)
        ab = np.zeros((3, n))
        ab[0, 1:] = -up[:-1]
        ab[1] = 1.0 - diag
        ab[2, :-1] = -lo[1:]
        try:
            delta = linalg.solve_banded((1, 1), ab, r, check_finite=False)
            c_new = law.symmetrize(c + delta)
            good = np.all(np.isfinite(c_new)) and np.all(np.diff(c_new) > 0) and \
                np.all((c_new > s_lo) & (c_new < s_hi))
        except (linalg.LinAlgError, ValueError):
            good = False
        prev_c, prev_res = c, res
        c = c_new if good else law.symmetrize(m)
    raise RuntimeError(f"Lloyd-Max did not converge for {n} levels, {law!r}: "  # pragma: no cover
                       f"last centroid change {res:.3g}")


@functools.lru_cache(maxsize=None)
def _lloyd_max_cached(bits: int, d):
    law = _coordinate_law(d)
    c, iterations = _solve_lloyd_max(1 << bits, law)
    return _make(bits, law, c, iterations)


@functools.lru_cache(maxsize=None)
def _lloyd_max_law_cached(bits: int, law):
    c, iterations = _solve_lloyd_max(1 << bits, law)
    return _make(bits, law, c, iterations)


def lloyd_max_codebook(bits, d=None, *, law=None) -> Codebook:
    """Lloyd-Max (MSE-optimal) codebook for the scaled coordinate of a rotated unit vector, or for ``law``.

    Parameters
    ----------
    bits : int
        1 to 8; the codebook has ``2**bits`` levels.
    d : int >= 2 or None
        Exact law at dimension ``d`` (scaled Beta), or N(0, 1) when None.
    law : ScalarLaw, optional
        Design for this law instead (then ``d`` must be None): the same
        solver, with the law's cell moments and its distortion
        (:class:`ScalarLaw`). ``law=CoordinateLaw(d)`` is the same as ``d``.

    Returns
    -------
    Codebook
        Symmetric ascending centroids (scaled units), midpoint boundaries, the
        exact MSE. Cached per ``(bits, d)`` (or ``(bits, law)``): repeated
        calls return the same object (read-only arrays).

    Raises
    ------
    TypeError, ValueError
        ``bits`` not an integer in 1..8, ``d`` not None or an integer >= 2,
        ``law`` not a :class:`ScalarLaw`, or both ``d`` and ``law``.

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

    With ``law``, the centroid of a cell is ``law.centroid`` of its moments
    (the conditional mean for the squared error), the solver starts from
    ``law.initial_guess`` and, on a circular law, runs plain Lloyd steps with
    the wrap-around cell (:class:`Codebook`).

    Examples
    --------
    >>> cb = lloyd_max_codebook(2)
    >>> np.round(cb.centroids, 4)
    array([-1.5104, -0.4528,  0.4528,  1.5104])
    >>> round(cb.mse, 4)
    0.1175
    """
    bits = check_bits(bits)
    law = _resolve_law(d, law)
    if isinstance(law, CoordinateLaw):
        return _lloyd_max_cached(bits, law.d)
    return _lloyd_max_law_cached(bits, law)


def lloyd_max_step(centroids, d=None, *, law=None) -> Codebook:
    """One Lloyd iteration: boundaries to midpoints, centroids to conditional means.

    Parameters
    ----------
    centroids : (2**bits,) array_like
        Current levels (sorted first), ``bits`` in 1..8.
    d : int >= 2 or None
        Law: exact at dimension ``d``, or N(0, 1).
    law : ScalarLaw, optional
        Any other law (then ``d`` must be None); its centroids are ``law.centroid``.

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
    law = _resolve_law(d, law)
    c = np.sort(_as_levels(centroids))
    bits = _bits_of(c.shape[0])
    return _make(bits, law, _lloyd_map(c, law), 1)


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
    law = _coordinate_law(d)
    states = [_make(bits, law, c, 0)]
    for i in range(1, int(n_iter) + 1):
        c = _lloyd_map(c, law)
        states.append(_make(bits, law, c, i))
    return states


# --------------------------------------------------------------------------- uniform


def _uniform_levels(n: int, step: float) -> np.ndarray:
    return (np.arange(n) - 0.5 * (n - 1)) * step


@functools.lru_cache(maxsize=None)
def _uniform_cached(bits: int, d):
    n = 1 << bits
    span = min(_UNIFORM_SPAN, _support(d))
    hi_step = 2.0 * span / (n - 1)
    law = _coordinate_law(d)

    def loss(step):
        c = _uniform_levels(n, step)
        return _mse(c, _midpoints(c), law)

    grid = hi_step * np.geomspace(1e-3, 1.0, 64)
    vals = np.array([loss(s) for s in grid])
    j = int(np.argmin(vals))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
    res = optimize.minimize_scalar(loss, bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-12 * hi_step})
    step = float(res.x) if res.fun <= vals[j] else float(grid[j])
    return _make(bits, law, _uniform_levels(n, step), 0)


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
