"""Lesson 01 (naive quantization): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import numpy as np

from .._ui import LEVEL_COLOR, NORMAL_COLOR, RECON_COLOR, axes_or_new, draw_ruler_levels

__all__ = ["draw_ruler", "draw_uniform_error_vs_bits", "NORMAL_COLOR"]


def draw_ruler(ax, result):
    """The ruler of lesson 01: values, the ``2**bits`` levels, and where each value lands.

    Parameters
    ----------
    ax : matplotlib Axes or None
        Where to draw (a new figure when None).
    result : RulerResult
        From :func:`turboquant_lab.course.compute_ruler`.

    Returns
    -------
    ax : matplotlib Axes
        Coordinate index on x, value on y; levels as grey horizontal lines,
        values as blue dots, reconstructions as orange diamonds, an arrow from
        each value to its level.
    """
    ax = axes_or_new(ax, figsize=(8, 3))
    n = len(result.x)
    idx = np.arange(n)
    draw_ruler_levels(ax, result.levels, label_codes=result.bits <= 3)
    for i in idx:
        if abs(result.x_hat[i] - result.x[i]) > 1e-3 * max(result.scale, 1e-12):
            ax.annotate("", xy=(i, result.x_hat[i]), xytext=(i, result.x[i]),
                        arrowprops=dict(arrowstyle="->", color=RECON_COLOR, lw=1.0))
    ax.plot(idx, result.x, "o", color=NORMAL_COLOR, ms=6, label="value x", zorder=3)
    ax.plot(idx, result.x_hat, "D", color=RECON_COLOR, ms=5, mfc="none", mew=1.5,
            label="reconstruction x_hat", zorder=4)
    ax.set_xticks(idx)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set(xlabel="coordinate index i", ylabel="value",
           title=f"{result.bits} bits = {len(result.levels)} levels, slot width {result.scale:.3g}")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    return ax


def draw_uniform_error_vs_bits(ax, bits, mse, model_mse, label="measured"):
    """Measured MSE against bits on a log axis, with the scale^2/12 model and a 4^-b line.

    Parameters
    ----------
    ax : matplotlib Axes or None
    bits : (B,) int array
        Bit widths.
    mse, model_mse : (B,) float arrays
        The measured MSE and the model's mean ``scale**2 / 12`` at each width.
    label : str
        Legend text of the measured curve.

    Returns
    -------
    ax : matplotlib Axes
        Lines in this order: measured, model, the ``4**-b`` slope through the last point.
    """
    ax = axes_or_new(ax, figsize=(6, 3))
    bits, mse, model_mse = np.asarray(bits), np.asarray(mse), np.asarray(model_mse)
    ax.semilogy(bits, mse, "o-", color=NORMAL_COLOR, label=label, zorder=3)
    ax.semilogy(bits, model_mse, "x--", color=RECON_COLOR, label="model: mean of scale²/12")
    anchor = mse[-1] * 4.0 ** bits[-1]
    ax.semilogy(bits, anchor * 4.0 ** -bits, ":", color=LEVEL_COLOR,
                label="slope 4^-b (through the last point)")
    ax.set(xlabel="bits per value b", ylabel="MSE (value²)", xticks=bits,
           title="each extra bit divides the MSE by about 4")
    ax.legend(fontsize=7)
    return ax
