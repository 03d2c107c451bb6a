"""Lesson 01 (naive quantization): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from . import figures
from .experiments import _ruler_example, compute_ruler

__all__ = ["ruler_app"]


def ruler_app(x=None, bits: int = 2):
    """Lesson 01's ruler: a bits slider (1 to 8) that redraws the levels and the reconstruction.

    Parameters
    ----------
    x : (d,) float array, optional
        The vector to quantize (default: 8 standard normal values, seed 0,
        rounded to 2 decimals).
    bits : int
        Initial slider position.

    Returns
    -------
    ipywidgets.VBox
        ``children = (slider, summary HTML, plot Output)``.
    """
    x = _ruler_example() if x is None else x
    compute_ruler(x, bits)  # validate before building anything
    slider = widgets.IntSlider(value=bits, min=1, max=8, step=1, description="bits")
    summary = widgets.HTML()

    def update(bits):
        r = compute_ruler(x, bits)
        summary.value = (f"<b>{bits} bits = {2 ** bits} levels</b> &nbsp; slot width {r.scale:.4g}"
                         f" &nbsp; MSE {r.mse:.4g} &nbsp; max |error| {r.max_abs_error:.4g}"
                         f" (bound scale/2 = {r.scale / 2:.4g})")
        fig, ax = plt.subplots(figsize=(8, 3))
        figures.draw_ruler(ax, r)
        fig.tight_layout()
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(update, {"bits": slider})
    return widgets.VBox([slider, summary, out])
