"""The naive quantizer: per-vector min-max uniform levels (the essay's ruler).

A b-bit uniform quantizer stretches ``2**b`` equally spaced levels from the
smallest to the largest coordinate of each vector and rounds every coordinate
to the nearest level. It needs two extra numbers per vector (``lo`` and
``scale``), which the storage arithmetic must count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import as_float_array, check_bits
from .backend import get_xp

__all__ = ["UniformQuantized", "QuantStats", "uniform_quantize", "uniform_dequantize",
           "uniform_levels", "quant_stats", "UniformErrorTable", "uniform_error_table"]


@dataclass
class UniformQuantized:
    """Codes of a min-max uniform quantizer and what is needed to decode them.

    Attributes
    ----------
    codes : (..., d) uint8 ndarray
        Level index of each coordinate, in ``[0, 2**bits - 1]``.
    lo : (...,) ndarray
        Smallest coordinate of each vector (the lowest level), in the side dtype.
    scale : (...,) ndarray
        Slot width ``(max - min) / (2**bits - 1)`` of each vector (0 for a constant
        vector), in the side dtype.
    bits : int
        Bits per coordinate.
    """

    codes: np.ndarray
    lo: np.ndarray
    scale: np.ndarray
    bits: int

    @property
    def n_levels(self) -> int:
        return 2 ** self.bits

    def bits_per_coordinate(self, side_bits: int | None = None) -> float:
        """Storage per coordinate: ``bits + 2 * side_bits / d`` (``lo`` and ``scale`` kept per vector).

        ``side_bits`` defaults to the width of the stored side dtype: 32 for the
        float16 ``lo`` and ``scale`` of ``uniform_quantize(..., side_dtype=np.float16)``
        (the course's convention for a KV cache: lessons 08, 11, 13).
        """
        if side_bits is None:
            side_bits = 8 * np.dtype(self.lo.dtype).itemsize
        return self.bits + 2 * side_bits / self.codes.shape[-1]


@dataclass
class QuantStats:
    """The essay's four figures (and the worst error) for each vector.

    Each field is a float for a single vector ``(d,)`` or an array of shape
    ``(...)`` for a batch ``(..., d)``.
    """

    mse: np.ndarray | float          # mean over coordinates of (x - x_hat)^2
    range: np.ndarray | float        # max - min
    slot_width: np.ndarray | float   # (max - min) / (2**bits - 1)
    wasted_slots: np.ndarray | int   # levels that no coordinate maps to
    max_abs_error: np.ndarray | float  # max |x - x_hat|; <= slot_width / 2 up to the rounding of the dtype


def _round_side(v, dtype, xp, up: bool):
    """``v`` rounded to ``dtype`` towards +inf (``up``) or -inf, so that the stored range covers x."""
    r = v.astype(dtype)
    wrong = r.astype(v.dtype) < v if up else r.astype(v.dtype) > v
    toward = xp.asarray(xp.inf if up else -xp.inf, dtype=dtype)
    return xp.where(wrong, xp.nextafter(r, toward), r)


def uniform_quantize(x, bits: int, side_dtype=None) -> UniformQuantized:
    """Quantize each vector on the last axis to ``2**bits`` evenly spaced levels.

    Parameters
    ----------
    x : (..., d) float ndarray
    bits : int, 1 to 8
    side_dtype : numpy float dtype, optional
        The dtype in which ``lo`` and ``scale`` are stored (default: ``x``'s).
        With ``np.float16`` they are rounded outwards (``lo`` down, ``scale``
        up) before the codes are computed, so the stored levels still cover
        ``[min x, max x]`` and the error bound ``s / 2`` holds for the stored
        ``s``: what a KV cache would really keep (32 bits per vector).

    Returns
    -------
    UniformQuantized
        ``codes`` of shape ``(..., d)``, ``lo`` and ``scale`` of shape ``(...)``.

    Notes
    -----
    .. math:: s = \\frac{\\max x - \\min x}{2^b - 1}, \\quad
              q_i = \\operatorname{round}\\left(\\frac{x_i - \\min x}{s}\\right)

    Rounding sends each coordinate to its nearest level, so
    ``|x_i - x_hat_i| <= s / 2`` for every coordinate. A constant vector has
    ``s = 0`` and is stored exactly (all codes 0).

    Examples
    --------
    >>> q = uniform_quantize(np.array([0.0, 0.2, 0.9, 3.0]), bits=2)
    >>> q.codes
    array([0, 0, 1, 3], dtype=uint8)
    >>> uniform_dequantize(q)
    array([0., 0., 1., 3.])
    """
    x = as_float_array(x, "x")
    bits = check_bits(bits)
    xp = get_xp(x)
    if x.dtype == np.float16:  # computed in float32; lo and scale stored as float16, rounded outwards
        side_dtype = np.float16 if side_dtype is None else side_dtype
        x = x.astype(np.float32)
    lo = x.min(axis=-1)
    hi = x.max(axis=-1)
    if side_dtype is not None and np.dtype(side_dtype) != x.dtype:
        side_dtype = np.dtype(side_dtype)
        if side_dtype.kind != "f":
            raise TypeError(f"side_dtype must be a float dtype such as np.float16, got {side_dtype}")
        with np.errstate(over="ignore"):
            lo = _round_side(lo, side_dtype, xp, up=False)
            scale = _round_side((hi - lo.astype(x.dtype)) / (2 ** bits - 1), side_dtype, xp, up=True)
        if not bool(xp.isfinite(lo).all() & xp.isfinite(scale).all()):
            raise ValueError(f"x's range does not fit in {side_dtype} (|x| up to "
                             f"{float(xp.abs(x).max()):.3g}): rescale x or use a wider side_dtype")
        safe = xp.where(scale > 0, scale, 1).astype(x.dtype)
        codes = xp.rint((x - lo.astype(x.dtype)[..., None]) / safe[..., None])
        codes = xp.clip(codes, 0, 2 ** bits - 1).astype(xp.uint8)
        return UniformQuantized(codes=codes, lo=lo, scale=scale, bits=bits)
    scale = (hi - lo) / (2 ** bits - 1)
    safe = xp.where(scale > 0, scale, 1)
    codes = xp.rint((x - lo[..., None]) / safe[..., None])
    codes = xp.clip(codes, 0, 2 ** bits - 1).astype(xp.uint8)
    return UniformQuantized(codes=codes, lo=lo, scale=scale, bits=bits)


def uniform_dequantize(q: UniformQuantized):
    """Reconstruct ``x_hat = lo + codes * scale`` (shape ``(..., d)``; float16 side info is
    widened to float32 first)."""
    if not isinstance(q, UniformQuantized):
        raise TypeError(f"q must be the UniformQuantized returned by uniform_quantize, "
                        f"got {type(q).__name__}")
    dtype = np.promote_types(q.lo.dtype, np.float32)
    lo, scale = q.lo.astype(dtype, copy=False), q.scale.astype(dtype, copy=False)
    return lo[..., None] + q.codes.astype(dtype) * scale[..., None]


def uniform_levels(lo: float, hi: float, bits: int) -> np.ndarray:
    """The ``2**bits`` levels ``lo + k * (hi - lo) / (2**bits - 1)``, k = 0 .. 2**bits - 1."""
    bits = check_bits(bits)
    return np.linspace(lo, hi, 2 ** bits)


def _count_wasted(codes, n_levels):
    xp = get_xp(codes)
    flat = codes.reshape(-1, codes.shape[-1]).astype(xp.int64)
    offsets = xp.arange(flat.shape[0], dtype=xp.int64)[:, None] * n_levels
    used = xp.zeros(flat.shape[0] * n_levels, dtype=bool)
    used[(flat + offsets).ravel()] = True
    return n_levels - used.reshape(flat.shape[0], n_levels).sum(axis=1)


def quant_stats(x, bits: int) -> QuantStats:
    """The essay's figures for naive uniform quantization of each vector.

    Parameters
    ----------
    x : (d,) or (..., d) float ndarray
    bits : int, 1 to 8

    Returns
    -------
    QuantStats
        ``mse`` (mean over the d coordinates of the squared error), ``range``
        (max - min), ``slot_width`` ((max - min) / (2**bits - 1)),
        ``wasted_slots`` (levels that no coordinate of the vector maps to) and
        ``max_abs_error`` (largest absolute error: at most ``slot_width / 2`` in exact
        arithmetic; float32 reconstruction can exceed it by a rounding error).
        Scalars for a single vector, arrays of shape ``(...)`` for a batch.

    Examples
    --------
    >>> s = quant_stats(np.array([0.0, 0.1, 0.2, 10.0]), bits=2)
    >>> int(s.wasted_slots), float(s.slot_width) > 3
    (2, True)
    """
    x = as_float_array(x, "x")
    q = uniform_quantize(x, bits)
    err = x - uniform_dequantize(q)
    wasted = _count_wasted(q.codes, q.n_levels).reshape(x.shape[:-1])
    out = QuantStats(
        mse=(err ** 2).mean(axis=-1),
        range=x.max(axis=-1) - x.min(axis=-1),
        slot_width=q.scale,
        wasted_slots=wasted,
        max_abs_error=abs(err).max(axis=-1),
    )
    if x.ndim == 1:
        out = QuantStats(mse=float(out.mse), range=float(out.range),
                         slot_width=float(out.slot_width), wasted_slots=int(out.wasted_slots),
                         max_abs_error=float(out.max_abs_error))
    return out


@dataclass
class UniformErrorTable:
    """Error of the min-max quantizer against bits, over many vectors.

    Attributes
    ----------
    bits : (k,) int ndarray
    mse : (k,) ndarray
        Mean over vectors and coordinates of ``(x - x_hat)**2``.
    model_mse : (k,) ndarray
        Mean over vectors of ``scale**2 / 12`` (uniform rounding noise).
    mse_ratio : (k,) ndarray
        ``mse / model_mse``.
    step : (k,) ndarray
        ``mse[b-1] / mse[b]``: how much one more bit divides the MSE (NaN first).
    model_step : (k,) ndarray
        The same ratio for the model: ``((2**b - 1) / (2**(b-1) - 1))**2`` (NaN first).
    worst_ratio : (k,) ndarray
        Max over all vectors and coordinates of ``|x - x_hat| / scale`` (at most 0.5
        in exact arithmetic).
    """

    bits: np.ndarray
    mse: np.ndarray
    model_mse: np.ndarray
    mse_ratio: np.ndarray
    step: np.ndarray
    model_step: np.ndarray
    worst_ratio: np.ndarray


def uniform_error_table(x, bits=range(1, 9)) -> UniformErrorTable:
    """Measure the MSE, the scale²/12 model and the worst error/scale at each bit width.

    Parameters
    ----------
    x : (n, d) or (..., d) float array
        Vectors, each quantized with its own min-max range.
    bits : iterable of int, each 1 to 8
        Bit widths, in increasing order.

    Returns
    -------
    UniformErrorTable

    Notes
    -----
    If the rounding error of a coordinate is uniform on ``[-scale/2, scale/2]``
    its mean square is ``scale**2 / 12``; with ``scale = range / (2**b - 1)``
    one more bit divides it by ``((2**(b+1) - 1) / (2**b - 1))**2``, which is
    9, 5.44, 4.59, ... and tends to 4. Cost: one quantization of ``x`` per bit width.

    Examples
    --------
    >>> t = uniform_error_table(np.random.default_rng(0).standard_normal((100, 64)), [3, 4])
    >>> bool(t.worst_ratio.max() <= 0.5)
    True
    """

    x = as_float_array(x, "x")
    bits = np.array([check_bits(b) for b in bits], dtype=int)
    if bits.size == 0 or np.any(np.diff(bits) <= 0):
        raise ValueError(f"bits must be a non-empty increasing sequence, got {bits.tolist()}")
    mse, model, worst = [], [], []
    for b in bits:
        s = quant_stats(x, int(b))
        sw = np.asarray(s.slot_width, dtype=np.float64)
        mse.append(float(np.mean(s.mse)))
        model.append(float(np.mean(sw ** 2 / 12)))
        ok = sw > 0
        worst.append(float(np.max(np.asarray(s.max_abs_error)[ok] / sw[ok])) if ok.any() else 0.0)
    mse, model = np.array(mse), np.array(model)
    step = np.concatenate([[np.nan], mse[:-1] / mse[1:]])
    levels = 2.0 ** bits - 1
    model_step = np.concatenate([[np.nan], (levels[1:] / levels[:-1]) ** 2 *
                                 np.where(np.diff(bits) == 1, 1.0, np.nan)])
    return UniformErrorTable(bits=bits, mse=mse, model_mse=model, mse_ratio=mse / model, step=step,
                      model_step=model_step, worst_ratio=np.array(worst))
