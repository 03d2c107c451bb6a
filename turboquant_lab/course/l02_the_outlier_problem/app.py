"""Lesson 02 (the outlier problem): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from turboquant_lab.data import ESSAY_SEED

from . import figures
from .experiments import compute_outlier_demo, format_outlier_figures

__all__ = ["outlier_app"]


def outlier_app(seed: int = ESSAY_SEED, bits: int = 2):
    """Lesson 02: the essay's outlier interactive (bars before/after, bits slider, four figures).

    Parameters
    ----------
    seed : int
        Seed of the vector (default :data:`ESSAY_SEED`).
    bits : int
        Initial slider position (1 to 8).

    Returns
    -------
    ipywidgets.VBox
        ``children = (slider, figures HTML, plot Output)``; the HTML holds
        :func:`format_outlier_figures` of the current setting.
    """
    compute_outlier_demo(bits, seed)  # validate before building anything
    slider = widgets.IntSlider(value=bits, min=1, max=8, step=1, description="bits")
    summary = widgets.HTML()

    def update(bits):
        r = compute_outlier_demo(bits, seed)
        summary.value = format_outlier_figures(r)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
        figures.draw_outlier_bars(axes, r)
        fig.tight_layout()
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(update, {"bits": slider})
    return widgets.VBox([slider, summary, out])
