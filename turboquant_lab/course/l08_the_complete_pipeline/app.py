"""Lesson 08 (the complete pipeline): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from . import figures
from .experiments import compute_pipeline_comparison

__all__ = ["pipeline_app"]


def pipeline_app(n: int = 2000, d: int = 128, seed: int = 0):
    """Lesson 08's app: bits, rotation method and data; error (measured vs predicted) and cost.

    Controls: bits (1-8), method (none = naive min-max / dense / randomized
    Hadamard), data (KV vectors with outliers, or plain Gaussian vectors). The
    figure is :func:`turboquant_lab.course.draw_pipeline_comparison`.

    Returns
    -------
    ipywidgets.VBox
    """
    bits = widgets.IntSlider(value=3, min=1, max=8, description="bits", continuous_update=False)
    method = widgets.ToggleButtons(options=[("none (naive)", "none"), ("dense", "dense"),
                                            ("Hadamard", "hadamard")], value="hadamard",
                                   description="rotation")
    data = widgets.Dropdown(options=[("KV vectors with outliers", "outliers"),
                                     ("Gaussian vectors", "gaussian")], value="outliers",
                            description="data")

    def show(bits, method, data):

        result = compute_pipeline_comparison(bits, method, n=n, d=d, seed=seed, data=data)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
        figures.draw_pipeline_comparison(axes, result)
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(show, {"bits": bits, "method": method, "data": data})
    return widgets.VBox([widgets.HBox([bits, data]), method, out])
