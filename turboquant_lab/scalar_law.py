"""The 1-D laws that Lloyd-Max codebooks are designed for, described by their cell moments.

:class:`ScalarLaw` is what :mod:`turboquant_lab.codebooks` needs of a law;
:class:`CoordinateLaw` is the law of a rotated coordinate
(:mod:`turboquant_lab.coordinate_law`), and :mod:`turboquant_lab.polar_laws`
adds the laws of PolarQuant's angles.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .coordinate_law import _cell_moments, _check_d, _pdf, _support

__all__ = ["ScalarLaw", "CoordinateLaw"]


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


class ScalarLaw:
    """A 1-D law that a scalar codebook is designed for: what Lloyd-Max needs to know of it.

    Lloyd-Max alternates two half-steps: the cells of given centroids (the
    nearest centroid: edges at the midpoints between neighbours) and the best
    centroid of each given cell. Both need the law only through its *cell
    moments* over intervals ``[lo, hi]``: the mass ``p``, the first moment
    ``m1`` and, for the error, the second moment ``m2``. A subclass supplies
    them (in closed form where it can) and describes its support.

    The default distortion is the squared error ``(t - c)**2``: the best
    centroid of a cell is its conditional mean ``m1 / p``, a cell's error is
    ``m2 - 2 c m1 + c**2 p``, and moving a cell's edge ``b`` moves its centroid
    ``m`` by ``f(b) (b - m) / p`` per unit (the slope Newton's method uses).
    A law whose values are reconstructed elsewhere (an angle coded by a point
    on the unit circle, :mod:`turboquant_lab.polar`) overrides
    :meth:`centroid`, :meth:`cell_error` and :meth:`centroid_slope`.

    Attributes
    ----------
    support : (float, float)
        ``(lo, hi)``; infinite ends are allowed on the line.
    center : float or None
        Centre of symmetry (``f(center + t) = f(center - t)``): Lloyd-Max
        codebooks are kept exactly symmetric about it. None: no symmetry.
    circular : bool
        The support is a circle of circumference :attr:`period`: ``lo`` and
        ``hi`` are the same point, and one cell wraps around through it.
        :meth:`cell_moments` then accepts intervals that reach past ``lo`` or
        ``hi`` (by periodicity).
    name : str
        Shown in a codebook's repr.

    Notes
    -----
    Subclasses are frozen dataclasses (hashable), so that codebooks can be
    cached per ``(bits, law)``.
    """

    support = (-math.inf, math.inf)
    center = None
    circular = False
    name = "law"

    @property
    def period(self) -> float:
        """``hi - lo``: the circumference of a circular support."""
        return self.support[1] - self.support[0]

    def pdf(self, t):
        """Density at the points ``t`` (host float64 array)."""
        raise NotImplementedError

    def cell_moments(self, lo, hi, second: bool = False):
        """``(p, m1)`` or ``(p, m1, m2)`` of the cells ``[lo, hi]`` (arrays of edges)."""
        raise NotImplementedError

    def centroid(self, p, m1):
        """The best reconstruction of a cell of mass ``p > 0`` and first moment ``m1``."""
        return m1 / p

    def cell_error(self, c, p, m1, m2):
        """``E[dist(t, c); t in cell]`` for the reconstruction ``c``: squared error by default."""
        return m2 - 2.0 * c * m1 + c * c * p

    def centroid_slope(self, fb, gap, p, m1):
        """How fast a cell's centroid moves with one of its edges ``b``.

        ``fb`` is the density at the edge, ``gap`` is ``b - m`` for the upper
        edge and ``m - b`` for the lower one (``m`` the centroid), ``p`` and
        ``m1`` the cell's moments (``p`` infinite for an empty cell).
        """
        return fb * gap / p

    def initial_guess(self, n: int) -> np.ndarray:
        """Starting centroids for the solver: the centres of ``n`` equal slots of a finite support."""
        lo, hi = self.support
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise NotImplementedError("a law on an infinite support must supply its initial_guess")
        return lo + (np.arange(n) + 0.5) * ((hi - lo) / n)

    def symmetrize(self, c: np.ndarray) -> np.ndarray:
        """``c`` made exactly symmetric about :attr:`center` (unchanged without one)."""
        if self.center is None:
            return c
        return self.center + 0.5 * ((c - self.center) - (c[::-1] - self.center))

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, repr=False)
class CoordinateLaw(ScalarLaw):
    """The law of the scaled coordinate ``t = sqrt(d) u_1`` of a rotated unit vector (N(0, 1) for ``d=None``).

    What ``lloyd_max_codebook(bits, d)`` designs for; ``law=CoordinateLaw(d)``
    is the same thing. Its cell moments are the closed-form tails of
    :mod:`turboquant_lab.coordinate_law`.

    Examples
    --------
    >>> from turboquant_lab.codebooks import lloyd_max_codebook
    >>> lloyd_max_codebook(2, law=CoordinateLaw(128)) is lloyd_max_codebook(2, 128)
    True
    """

    d: int | None = None
    center = 0.0

    def __post_init__(self):
        object.__setattr__(self, "d", _check_d(self.d))

    @property
    def support(self):
        s = _support(self.d)
        return (-s, s)

    @property
    def name(self) -> str:
        return "Gaussian" if self.d is None else f"d={self.d}"

    def pdf(self, t):
        return _pdf(np.asarray(t, dtype=np.float64), self.d)

    def cell_moments(self, lo, hi, second: bool = False):
        return _cell_moments(lo, hi, self.d, second=second)

    def initial_guess(self, n: int) -> np.ndarray:
        return _initial_guess(n, self.d)

    def symmetrize(self, c: np.ndarray) -> np.ndarray:
        return _symmetrize(c)

    def __repr__(self) -> str:
        return f"CoordinateLaw(d={self.d})"


@functools.lru_cache(maxsize=None)
def _coordinate_law(d) -> CoordinateLaw:
    return CoordinateLaw(d)


def _resolve_law(d, law):
    """The law to design for: ``law`` when given (then ``d`` must be None), else the coordinate law at d."""
    if law is None:
        return _coordinate_law(_check_d(d))
    if not isinstance(law, ScalarLaw):
        raise TypeError(f"law must be a ScalarLaw (e.g. tql.polar_angle_law(2)), "
                        f"got {type(law).__name__}")
    if d is not None:
        raise ValueError(f"pass either d (the coordinate law) or law, not both (got d={d!r} "
                         f"and law={law!r})")
    return law
