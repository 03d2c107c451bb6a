"""Lesson 01 (naive quantization): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from turboquant_lab.uniform import uniform_dequantize, uniform_levels, uniform_quantize
from turboquant_lab.validation import as_float_array

__all__ = ["RulerResult", "compute_ruler"]


def _ruler_example():
    """The small vector of lesson 01: 8 standard normal values, rounded to 2 decimals."""
    return np.round(np.random.default_rng(0).standard_normal(8), 2)


@dataclass
class RulerResult:
    """What the ruler of lesson 01 shows for one vector at one bit width.

    Attributes
    ----------
    x, x_hat, error : (d,) ndarray
        The values, their reconstructions and ``x - x_hat``.
    codes : (d,) uint8 ndarray
        Level index of each value.
    levels : (2**bits,) ndarray
        The quantizer's levels ``lo + k * scale``.
    bits : int
    lo, hi, scale : float
        ``min x``, ``max x`` and the slot width ``(hi - lo) / (2**bits - 1)``.
    mse, max_abs_error : float
        Mean of ``error**2`` and max of ``|error|`` (never above ``scale / 2``).
    """
    x: np.ndarray
    bits: int
    lo: float
    hi: float
    scale: float
    levels: np.ndarray
    codes: np.ndarray
    x_hat: np.ndarray
    error: np.ndarray
    mse: float
    max_abs_error: float


def compute_ruler(x, bits: int) -> RulerResult:
    """Quantize one vector with a ``bits``-bit min-max ruler and return what the figure shows.

    Parameters
    ----------
    x : (d,) float array
        One vector (lists are accepted).
    bits : int, 1 to 8

    Returns
    -------
    RulerResult

    Raises
    ------
    ValueError
        If ``x`` is not one vector (1-d), is empty or holds NaN/Inf, or
        ``bits`` is outside 1..8.
    TypeError
        If ``x`` is not floating point or ``bits`` is not an integer.

    Notes
    -----
    ``scale = (max x - min x) / (2**bits - 1)``, ``codes = round((x - min x) / scale)``,
    ``x_hat = min x + codes * scale`` (:func:`turboquant_lab.uniform.uniform_quantize`).

    Examples
    --------
    >>> r = compute_ruler([0.0, 0.2, 0.9, 3.0], bits=2)
    >>> r.codes.tolist(), r.x_hat.tolist()
    ([0, 0, 1, 3], [0.0, 0.0, 1.0, 3.0])
    """
    x = as_float_array(x, "x")
    if x.ndim != 1:
        raise ValueError(f"x must be one vector of shape (d,), got shape {tuple(x.shape)}: "
                         f"pass a single row, e.g. x[0]")
    q = uniform_quantize(x, bits)
    x_hat = uniform_dequantize(q)
    err = x - x_hat
    lo, hi = float(x.min()), float(x.max())
    return RulerResult(x=x, bits=q.bits, lo=lo, hi=hi, scale=float(q.scale),
                       levels=uniform_levels(lo, hi, q.bits), codes=q.codes, x_hat=x_hat,
                       error=err, mse=float(np.mean(err ** 2)),
                       max_abs_error=float(np.max(np.abs(err))))
