"""The recursive polar transform of PolarQuant and the laws of its angles, with their codebooks.

Han, Kacham, Karbasi, Mirrokni and Zandieh, "PolarQuant: Quantizing KV Caches
with Polar Transformation" (arXiv 2502.02617). After a random rotation, a
vector of ``R^d`` (``d`` a multiple of ``2**L``) is rewritten level by level:

* level 1 pairs the coordinates, ``(x_{2j}, x_{2j+1}) -> (r_j, psi_j)`` with
  ``psi_j = atan2(x_{2j+1}, x_{2j})`` in ``[0, 2 pi)``;
* level ``l >= 2`` pairs the radii of level ``l - 1`` the same way; both are
  ``>= 0``, so its angles lie in ``[0, pi/2]``;
* after ``L`` levels the vector is ``d / 2**L`` radii and ``d (1 - 2**-L)``
  angles (``L = log2 d``: its norm and ``d - 1`` angles).

**The angle laws.** For ``x`` with i.i.d. N(0, 1) coordinates, a level-``l``
radius is the norm of ``k = 2**(l-1)`` independent Gaussians on each side of
the pair, a chi variable with ``k`` degrees of freedom, and the two sides are
independent. With ``A, B`` independent chi-squared with ``k`` degrees of
freedom, ``tan^2 psi = B / A``, so ``sin^2 psi = B / (A + B) ~ Beta(k/2, k/2)``
and, changing variables (``d sin^2 psi = sin 2 psi d psi``),

.. math:: f_l(\\psi) = \\frac{\\sin^{k-1}(2\\psi)}{2^{k-2} B(k/2, k/2)}, \\qquad 0 \\le \\psi \\le \\pi/2,

which concentrates around ``pi/4`` as ``l`` grows (``Var sin^2 psi = 1/(4(k+1))``).
Level 1 is the angle of a 2-D Gaussian: uniform on the circle. All the
angles and the last radii are mutually independent (a Beta ratio is
independent of the Gamma sum it divides). The angles are ratios, so they do
not change when ``x`` is scaled: a *unit* vector uniform on the sphere
(``g / ||g||``) has exactly the same angles as ``g``. Its coordinates are not
independent Gaussians (their squares sum to 1); what changes is the radii
only, which are then a Dirichlet split of 1 instead of independent chi
variables.

**Codebooks.** An angle is coded by a point on the unit circle: an error
``delta`` costs a pair of radius ``R`` exactly ``R^2 (2 - 2 cos delta)``, the
squared chord. The codebook of each level is the Lloyd-Max codebook for that
distortion (:func:`~turboquant_lab.codebooks.lloyd_max_codebook` with
``law=polar_angle_law(l)``): cells between angular midpoints, each centroid
the direction of the cell's mean point ``E[e^{i psi}]``, all moments in closed
form through the regularized incomplete beta function. Level 1 is circular:
there is no first or last cell, one cell wraps around through ``0 = 2 pi``,
and for the uniform law the ``2**b`` cells of width ``2 pi / 2**b`` are
optimal in any rotation; the one used puts a boundary at ``0``, so the codes
are ``floor(psi / (2 pi / 2**b))``.

See :mod:`turboquant_lab.polar` for the quantizer built on them.
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special

from ._validate import as_float_array, check_bits, check_dim, make_rng
from .backend import get_xp
from .codebooks import Codebook, ScalarLaw, lloyd_max_codebook
from .packing import packed_nbytes

__all__ = ["PolarCoordinates", "polar_transform", "polar_inverse", "PolarAngleLaw", "polar_angle_law",
           "angle_codebook", "polar_bits_per_coordinate", "polar_expected_mse", "MAX_LEVEL"]

TWO_PI = 2.0 * math.pi
HALF_PI = 0.5 * math.pi
QUARTER_PI = 0.25 * math.pi

#: the deepest level supported (d up to 2**24)
MAX_LEVEL = 24

#: bits of one stored radius (float16)
RADIUS_BITS = 16

_FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504


# --------------------------------------------------------------------------- checks


def _check_levels(levels, d=None, name: str = "levels") -> int:
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer (the depth of the polar tree), got {levels!r}")
    levels = int(levels)
    if not 1 <= levels <= MAX_LEVEL:
        raise ValueError(f"{name} must be between 1 and {MAX_LEVEL}, got {levels}")
    if d is not None and d % (1 << levels):
        fits = (d & -d).bit_length() - 1  # the largest L with 2**L dividing d
        raise ValueError(f"{levels} levels pair the coordinates {levels} times, so d must be a "
                         f"multiple of 2**{levels} = {1 << levels}; d = {d} allows at most "
                         f"{fits} level(s)")
    return levels


def _check_level(level) -> int:
    return _check_levels(level, name="level")


def _check_level_bits(level_bits) -> tuple:
    if isinstance(level_bits, (str, bytes)) or not hasattr(level_bits, "__len__"):
        raise TypeError(f"level_bits must be a sequence of bits per level, e.g. (4, 2, 2, 2), "
                        f"got {level_bits!r}")
    bits = tuple(check_bits(b, f"level_bits[{i}]") for i, b in enumerate(level_bits))
    if not bits:
        raise ValueError("level_bits must name at least one level, e.g. (4, 2, 2, 2)")
    _check_levels(len(bits), name="len(level_bits)")
    return bits


def _work_dtype(x):
    """float64 stays float64; float16 and float32 are computed in float32."""
    return np.float64 if x.dtype == np.float64 else np.float32


# --------------------------------------------------------------------------- the transform


class PolarCoordinates(NamedTuple):
    """The recursive polar coordinates of vectors (what :func:`polar_transform` returns).

    Attributes
    ----------
    radii : (..., d / 2**L) array
        The radii of the last level: the norms of consecutive blocks of ``2**L`` coordinates.
    angles : tuple of L arrays
        ``angles[l - 1]`` has shape ``(..., d / 2**l)``: level 1 in ``[0, 2 pi)``,
        levels ``l >= 2`` in ``[0, pi/2]``.
    """

    radii: object
    angles: tuple


def polar_transform(x, levels) -> PolarCoordinates:
    """The recursive polar transform of vectors, ``L = levels`` levels deep.

    Parameters
    ----------
    x : (..., d) float array (NumPy or CuPy)
        ``d`` a multiple of ``2**levels``. float64 is computed in float64,
        float16 and float32 in float32.
    levels : int
        ``L >= 1``; ``L = log2 d`` leaves one radius, the norm.

    Returns
    -------
    PolarCoordinates
        ``(radii, angles)``: radii ``(..., d / 2**L)`` and ``angles[l - 1]`` of
        shape ``(..., d / 2**l)``, same array module as ``x``.

    Raises
    ------
    TypeError, ValueError
        Non-float, empty or non-finite ``x``; ``levels`` not a positive int, or
        ``d`` not a multiple of ``2**levels``.

    Notes
    -----
    Level 1: ``r_j = hypot(x_{2j}, x_{2j+1})``, ``psi_j = atan2(x_{2j+1}, x_{2j})``
    taken into ``[0, 2 pi)``. Level ``l``: the same on the level ``l - 1`` radii,
    ``psi = atan2(r_{2j+1}, r_{2j})`` in ``[0, pi/2]``. A pair of zeros gets the
    angle 0. :func:`polar_inverse` undoes it to rounding.

    Examples
    --------
    >>> r, angles = polar_transform(np.array([3.0, 4.0, 0.0, 0.0]), 2)
    >>> r, [np.round(a, 4) for a in angles]
    (array([5.]), [array([0.9273, 0.    ]), array([0.])])
    """
    x = as_float_array(x, "x")
    levels = _check_levels(levels, x.shape[-1])
    xp = get_xp(x)
    r = x.astype(_work_dtype(x), copy=False)
    angles = []
    for level in range(1, levels + 1):
        a, b = r[..., 0::2], r[..., 1::2]
        psi = xp.arctan2(b, a)
        if level == 1:
            psi = xp.where(psi < 0, psi + TWO_PI, psi)
            psi = xp.where(psi >= TWO_PI, psi - TWO_PI, psi)  # -tiny + 2 pi rounds to 2 pi
        angles.append(psi)
        r = xp.hypot(a, b)
    return PolarCoordinates(r, tuple(angles))


def polar_inverse(radii, angles):
    """Undo :func:`polar_transform`: vectors from their radii and angles.

    Parameters
    ----------
    radii : (..., m) float array
        The last level's radii.
    angles : sequence of L float arrays
        ``angles[l - 1]`` of shape ``(..., m * 2**(L - l))``.

    Returns
    -------
    x : (..., m * 2**L) array, same array module (float64 for float64 input, else float32)

    Raises
    ------
    TypeError, ValueError
        Non-float or non-finite arrays, an empty list of angles, shapes that
        do not fit together.

    Notes
    -----
    From the top down, each radius ``r`` with angle ``psi`` becomes the pair
    ``(r cos psi, r sin psi)``.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((3, 16))
    >>> bool(np.allclose(polar_inverse(*polar_transform(x, 4)), x, rtol=0, atol=1e-14))
    True
    """
    r = as_float_array(radii, "radii")
    if isinstance(angles, (str, bytes)) or not hasattr(angles, "__len__") or len(angles) == 0:
        raise ValueError("angles must be a non-empty sequence of arrays, one per level "
                         "(as polar_transform returns)")
    levels = _check_levels(len(angles), name="len(angles)")
    xp = get_xp(r)
    dtype = np.float64 if r.dtype == np.float64 else np.float32
    r = r.astype(dtype, copy=False)
    for level in range(levels, 0, -1):
        psi = as_float_array(angles[level - 1], f"angles[{level - 1}]")
        if tuple(psi.shape) != tuple(r.shape):
            raise ValueError(f"angles[{level - 1}] has shape {tuple(psi.shape)} but level {level} "
                             f"needs one angle per radius of level {level}: {tuple(r.shape)}")
        psi = psi.astype(dtype, copy=False)
        r = xp.stack([r * xp.cos(psi), r * xp.sin(psi)], axis=-1).reshape(r.shape[:-1] + (-1,))
    return r


# --------------------------------------------------------------------------- the angle laws


@dataclass(frozen=True, repr=False)
class PolarAngleLaw(ScalarLaw):
    """The law of a level-``l`` angle of the polar transform of a Gaussian (or uniform unit) vector.

    Level 1: uniform on the circle ``[0, 2 pi)``. Level ``l >= 2``: with
    ``k = 2**(l-1)`` and ``a = k / 2``, ``sin^2 psi ~ Beta(a, a)`` on
    ``[0, pi/2]``, density ``sin^(k-1)(2 psi) / (2^(k-2) B(a, a))``, symmetric
    about ``pi/4``. Get one with :func:`polar_angle_law`.

    As a :class:`~turboquant_lab.codebooks.ScalarLaw` it codes an angle by a
    point on the unit circle: the distortion of a reconstruction ``c`` is the
    squared chord ``|e^{i psi} - e^{i c}|^2 = 2 - 2 cos(psi - c)``, a cell's
    first moment is the complex ``E[e^{i psi}; cell]`` and its best
    centroid the direction of that mean point.

    Attributes
    ----------
    level : int
    k : int
        ``2**(level-1)``: the degrees of freedom of each chi radius in the pair
        (level 1: ``k = 1``, the two signed coordinates).

    Examples
    --------
    >>> law = polar_angle_law(3)
    >>> law.support, round(float(law.pdf(np.pi / 4)), 4), round(float(law.cdf(np.pi / 4)), 12)
    ((0.0, 1.5707963267948966), 1.5, 0.5)
    """

    level: int = 2

    def __post_init__(self):
        object.__setattr__(self, "level", _check_level(self.level))

    # ----------------------------------------------------------------- description

    @property
    def k(self) -> int:
        return 1 << (self.level - 1)

    @property
    def circular(self) -> bool:
        return self.level == 1

    @property
    def support(self):
        return (0.0, TWO_PI) if self.level == 1 else (0.0, HALF_PI)

    @property
    def center(self):
        return None if self.level == 1 else QUARTER_PI

    @property
    def name(self) -> str:
        return f"PolarAngleLaw(level={self.level})"

    def __repr__(self) -> str:
        return self.name

    @property
    def _a(self) -> float:
        return 0.5 * self.k

    @functools.cached_property
    def _consts(self):
        """``(log normaliser of the density, kappa = E[sin psi])``."""
        a = self._a
        lnorm = -(self.k - 2) * math.log(2.0) - special.betaln(a, a)
        kappa = math.exp(special.betaln(a + 0.5, a) - special.betaln(a, a))
        return lnorm, kappa

    # ----------------------------------------------------------------- density, cdf, samples

    def pdf(self, psi):
        """Density at ``psi`` (any shape; 0 outside the support)."""
        psi = np.asarray(psi, dtype=np.float64)
        lo, hi = self.support
        inside = (psi >= lo) & (psi <= hi)
        if self.level == 1:
            return np.where(inside & (psi < hi), 1.0 / TWO_PI, 0.0)[()]
        lnorm, _ = self._consts
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.exp(lnorm + (self.k - 1) * np.log(np.sin(2.0 * np.clip(psi, lo, hi))))
        return np.where(inside, np.nan_to_num(f, nan=0.0), 0.0)[()]

    def cdf(self, psi):
        """``P(angle <= psi)``; below ``pi/4`` from ``I_{sin^2 psi}(a, a)``, above from the mirror image."""
        psi = np.asarray(psi, dtype=np.float64)
        lo, hi = self.support
        if self.level == 1:
            return np.clip(psi / TWO_PI, 0.0, 1.0)[()]
        p = np.clip(psi, lo, hi)
        return np.where(p <= QUARTER_PI, self._tail0(p), 1.0 - self._tail0(HALF_PI - p))[()]

    def sample(self, size, seed=0):
        """``size`` independent angles (any shape), from a seed or a ``numpy.random.Generator``.

        Level 1: uniform on ``[0, 2 pi)``; level ``l >= 2``: ``arcsin(sqrt(s))``
        with ``s ~ Beta(a, a)``.
        """
        rng = make_rng(seed)
        if self.level == 1:
            return rng.uniform(0.0, TWO_PI, size)
        return np.arcsin(np.sqrt(rng.beta(self._a, self._a, size)))

    # ----------------------------------------------------------------- closed-form cell moments

    def _tail0(self, u):
        """``P(psi < u)`` for ``0 <= u <= pi/4``."""
        return special.betainc(self._a, self._a, np.sin(u) ** 2)

    def _tails(self, u):
        """Lower tails at ``0 <= u <= pi/4``: ``P(psi < u)``, ``E[cos psi; psi < u]``, ``E[sin psi; .]``.

        ``E[sin psi; .] = E[S^(1/2); .]`` for ``S = sin^2 psi ~ Beta(a, a)``, i.e.
        ``kappa I_s(a + 1/2, a)`` with ``kappa = B(a + 1/2, a) / B(a, a)``; the
        cosine is ``(1 - S)^(1/2)``: ``kappa I_s(a, a + 1/2)``.
        """
        a = self._a
        _, kappa = self._consts
        s = np.sin(u) ** 2
        return (special.betainc(a, a, s), kappa * special.betainc(a, a + 0.5, s),
                kappa * special.betainc(a + 0.5, a, s))

    def cell_moments(self, lo, hi, second: bool = False):
        """Mass ``p`` and first moment ``m1 = E[e^{i psi}; lo <= psi <= hi]`` (complex) of the cells.

        ``m2 = E[|e^{i psi}|^2; cell]`` is ``p``. Level 1 (uniform on the circle,
        any interval of length at most ``2 pi``): ``p = (hi - lo) / (2 pi)`` and
        ``m1 = sin((hi - lo)/2) e^{i (hi + lo)/2} / pi``. Levels ``l >= 2``:
        cells below ``pi/4`` are differences of lower tails (:meth:`_tails`),
        cells above are mirrored (``psi -> pi/2 - psi`` swaps cosine and sine), and
        a cell holding ``pi/4`` is the whole minus two tails, so every cell
        keeps its digits.
        """
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        if self.level == 1:
            w = hi - lo
            p = w / TWO_PI
            m1 = np.sin(0.5 * w) / math.pi * np.exp(0.5j * (hi + lo))
        else:
            lo = np.clip(lo, 0.0, HALF_PI)
            hi = np.clip(hi, 0.0, HALF_PI)
            _, kappa = self._consts
            below, above = hi <= QUARTER_PI, lo >= QUARTER_PI
            mid = ~below & ~above
            # lower tails at u_lo, u_hi on the near side of pi/4 (mirrored above it)
            u_lo = np.where(above, HALF_PI - hi, np.where(below, lo, lo))
            u_hi = np.where(above, HALF_PI - lo, np.where(below, hi, HALF_PI - hi))
            u_lo = np.minimum(u_lo, QUARTER_PI)
            u_hi = np.minimum(u_hi, QUARTER_PI)
            p_a, c_a, s_a = self._tails(u_lo)
            p_b, c_b, s_b = self._tails(u_hi)
            p = np.where(mid, 1.0 - p_a - p_b, p_b - p_a)
            # cos and sin moments; mirrored cells swap them; a middle cell is the whole minus
            # the lower tail below lo and the (mirrored) upper tail above hi
            cos_m = np.where(mid, kappa - c_a - s_b, np.where(above, s_b - s_a, c_b - c_a))
            sin_m = np.where(mid, kappa - s_a - c_b, np.where(above, c_b - c_a, s_b - s_a))
            p = np.maximum(p, 0.0)
            m1 = np.maximum(cos_m, 0.0) + 1j * np.maximum(sin_m, 0.0)
        if second:
            return p, m1, p
        return p, m1

    # ----------------------------------------------------------------- the distortion: squared chord

    def centroid(self, p, m1):
        """The direction of the cell's mean point: ``atan2(E sin, E cos)`` (into ``[0, 2 pi)`` on level 1)."""
        c = np.arctan2(np.imag(m1), np.real(m1))
        return np.mod(c, TWO_PI) if self.level == 1 else c

    def cell_error(self, c, p, m1, m2):
        """``E[2 - 2 cos(psi - c); cell] = 2 p - 2 Re(e^{-i c} m1)``."""
        return 2.0 * p - 2.0 * (np.cos(c) * np.real(m1) + np.sin(c) * np.imag(m1))

    def centroid_slope(self, fb, gap, p, m1):
        """``f(b) sin(gap) / |m1|``: how the direction of the mean point turns with an edge ``b``."""
        rho = np.where(np.isfinite(p), np.abs(m1), np.inf)
        return fb * np.sin(gap) / rho

    def initial_guess(self, n: int) -> np.ndarray:
        """Level 1: the uniform codebook ``(j + 1/2) 2 pi / n``. Levels ``>= 2``: quantiles of ``f^(1/3)``.

        ``f^(1/3)`` is the same family with ``k' = (k + 2)/3`` (Panter-Dite
        companding, as for the coordinate law).
        """
        q = (np.arange(n) + 0.5) / n
        if self.level == 1:
            return q * TWO_PI
        a = (self.k + 2.0) / 6.0
        return self.symmetrize(np.arcsin(np.sqrt(special.betaincinv(a, a, q))))


@functools.lru_cache(maxsize=None)
def _angle_law(level: int) -> PolarAngleLaw:
    return PolarAngleLaw(level)


def polar_angle_law(level) -> PolarAngleLaw:
    """The law of the level-``level`` angles of the polar transform of a rotated vector.

    Parameters
    ----------
    level : int
        1 (uniform on the circle) or more (``sin^2 psi ~ Beta(2**(l-2), 2**(l-2))``).

    Returns
    -------
    PolarAngleLaw
        With ``pdf``, ``cdf``, ``sample(size, seed)``, ``support`` and the cell
        moments the codebooks are built from. Cached per level.

    Examples
    --------
    >>> polar_angle_law(1).support
    (0.0, 6.283185307179586)
    >>> law = polar_angle_law(4)                 # density ~ sin^7(2 psi)
    >>> x = law.sample(100_000, seed=0)
    >>> bool(abs(x.mean() - np.pi / 4) < 0.002)
    True
    """
    return _angle_law(_check_level(level))


def angle_codebook(level, bits) -> Codebook:
    """The Lloyd-Max codebook of the level-``level`` angles at ``bits`` bits (cached).

    ``lloyd_max_codebook(bits, law=polar_angle_law(level))``: the angles that
    minimise the mean squared chord ``E[2 - 2 cos(psi - Q(psi))]`` (the
    codebook's ``mse``). Level 1: ``2**bits`` uniform cells ``[j w, (j + 1) w)``,
    ``w = 2 pi / 2**bits``, centroids at their centres.

    Examples
    --------
    >>> cb = angle_codebook(1, 2)
    >>> np.round(cb.centroids / np.pi, 3), round(cb.mse, 4)
    (array([0.25, 0.75, 1.25, 1.75]), 0.1994)
    """
    return lloyd_max_codebook(bits, law=polar_angle_law(level))


def polar_bits_per_coordinate(level_bits, d=None) -> float:
    """Bits per coordinate of PolarQuant: ``sum_l b_l / 2**l + 16 / 2**L``.

    Every level-``l`` angle stands for ``2**l`` coordinates and each of the
    ``d / 2**L`` float16 radii for ``2**L``. With ``d`` given, the storage of
    :class:`PolarQuant` itself: each level packed into whole bytes per vector
    (the same for ``d`` a multiple of ``2**(L+3)``; 3.875 for ``(4, 2, 2, 2)``
    at ``d = 128``).

    Examples
    --------
    >>> polar_bits_per_coordinate((4, 2, 2, 2))
    3.875
    """
    bits = _check_level_bits(level_bits)
    L = len(bits)
    if d is None:
        return sum(b / (1 << level) for level, b in enumerate(bits, start=1)) + RADIUS_BITS / (1 << L)
    d = check_dim(d, "d")
    _check_levels(L, d)
    total = sum(8 * packed_nbytes(d >> level, b) for level, b in enumerate(bits, start=1))
    return (total + RADIUS_BITS * (d >> L)) / d


def polar_expected_mse(level_bits) -> float:
    """The predicted ``E||x - x_hat||^2 / ||x||^2`` of PolarQuant for uniformly random directions.

    ``2 (1 - prod_l (1 - D_l / 2))`` with ``D_l`` the mean squared chord of
    level ``l``'s codebook (module docstring). It does not depend on ``d``.

    Examples
    --------
    >>> round(polar_expected_mse((4, 2, 2, 2)), 4)
    0.0321
    """
    bits = _check_level_bits(level_bits)
    prod = 1.0
    for level, b in enumerate(bits, start=1):
        prod *= 1.0 - 0.5 * angle_codebook(level, b).mse
    return 2.0 * (1.0 - prod)
