"""Lesson 02 (the outlier problem): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from turboquant_lab.data import ESSAY_SEED, kv_outlier_channels, make_kv_vectors
from turboquant_lab.uniform import quant_stats, uniform_dequantize, uniform_levels, uniform_quantize

__all__ = ["OutlierDemo", "compute_outlier_demo", "format_outlier_figures"]


@dataclass
class OutlierDemo:
    """What the essay's outlier interactive shows at one bit width.

    Attributes
    ----------
    bits, seed : int
    x, x_hat : (d,) float64 ndarray
        The vector (``make_kv_vectors(1, d, seed=seed)[0]``) and its naive reconstruction.
    codes : (d,) uint8 ndarray
    levels : (2**bits,) ndarray
    outliers, normal : int ndarray
        Indices of the outlier channels (``kv_outlier_channels``) and of the others.
    mse, range, slot_width : float
        The essay's figures (:func:`turboquant_lab.uniform.quant_stats`).
    wasted_slots : int
        Levels that no coordinate maps to.
    max_abs_error : float
    slot_counts_normal, slot_counts_outlier : (2**bits,) int ndarray
        How many normal / outlier coordinates each level holds.
    mse_normal : float
        MSE of the normal coordinates, quantized together with the outliers.
    mse_normal_alone : float
        MSE of the normal coordinates quantized on their own (their own min-max range).
    """
    bits: int
    seed: int
    x: np.ndarray
    x_hat: np.ndarray
    codes: np.ndarray
    levels: np.ndarray
    outliers: np.ndarray
    normal: np.ndarray
    mse: float
    range: float
    slot_width: float
    wasted_slots: int
    max_abs_error: float
    slot_counts_normal: np.ndarray
    slot_counts_outlier: np.ndarray
    mse_normal: float
    mse_normal_alone: float

    @property
    def normal_slots_used(self) -> int:
        """Number of distinct levels the normal coordinates land on."""
        return int(np.count_nonzero(self.slot_counts_normal))


def compute_outlier_demo(bits: int, seed: int = ESSAY_SEED, d: int = 64,
                         n_outliers: int = 5, outlier_scale: float = 20.0) -> OutlierDemo:
    """The essay's outlier vector quantized naively at ``bits`` bits, and its figures.

    Parameters
    ----------
    bits : int, 1 to 8
    seed : int
        Seed of :func:`turboquant_lab.data.make_kv_vectors` (default: the course's
        essay vector, :data:`ESSAY_SEED`).
    d, n_outliers, outlier_scale
        As in :func:`turboquant_lab.data.make_kv_vectors` (the essay: 64, 5, 20).

    Returns
    -------
    OutlierDemo

    Raises
    ------
    ValueError, TypeError
        For bits outside 1..8 or a bad seed/dimension (from the library's checks).

    Examples
    --------
    >>> r = compute_outlier_demo(2)
    >>> r.normal_slots_used <= 2, r.wasted_slots >= 1
    (True, True)
    """
    x = make_kv_vectors(1, d, n_outliers=n_outliers, outlier_scale=outlier_scale,
                        seed=seed)[0].astype(np.float64)
    outliers = kv_outlier_channels(d, n_outliers, seed)
    normal = np.setdiff1d(np.arange(d), outliers)
    q = uniform_quantize(x, bits)
    x_hat = uniform_dequantize(q)
    s = quant_stats(x, bits)
    n_levels = 2 ** q.bits
    err = x - x_hat
    alone = quant_stats(x[normal], bits).mse if len(normal) else 0.0
    return OutlierDemo(
        bits=q.bits, seed=int(seed), x=x, x_hat=x_hat, codes=q.codes,
        levels=uniform_levels(x.min(), x.max(), q.bits), outliers=outliers, normal=normal,
        mse=s.mse, range=s.range, slot_width=s.slot_width, wasted_slots=s.wasted_slots,
        max_abs_error=s.max_abs_error,
        slot_counts_normal=np.bincount(q.codes[normal], minlength=n_levels),
        slot_counts_outlier=np.bincount(q.codes[outliers], minlength=n_levels),
        mse_normal=float(np.mean(err[normal] ** 2)) if len(normal) else 0.0,
        mse_normal_alone=float(alone))


def format_outlier_figures(r: OutlierDemo) -> str:
    """The four figures of the essay's panel (MSE, Range, Slot Width, Wasted Slots) as HTML."""
    return (f"<b>{r.bits} bits = {2 ** r.bits} levels</b> &nbsp;|&nbsp; MSE {r.mse:.4g}"
            f" &nbsp;|&nbsp; Range {r.range:.4g} &nbsp;|&nbsp; Slot width {r.slot_width:.4g}"
            f" &nbsp;|&nbsp; Wasted slots {r.wasted_slots} of {2 ** r.bits}"
            f"<br>the {len(r.normal)} normal channels land on {r.normal_slots_used} of the"
            f" {2 ** r.bits} levels")
