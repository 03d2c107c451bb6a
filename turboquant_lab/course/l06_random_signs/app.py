"""Lesson 06 (random signs): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from . import figures
from .experiments import SIGN_INPUTS, SIGN_TRANSFORMS, compute_sign_demo

__all__ = ["sign_flip_app"]


def sign_flip_app(d=64):
    """Input x transform x bits: the output bars, their max/mean and the quantization error.

    Returns the widget; its ``shown`` attribute is a dict whose ``"result"``
    is the :class:`SignDemo` on display (what the tests read).
    """
    name = widgets.Dropdown(options=list(SIGN_INPUTS), value="constant", description="input")
    transform = widgets.ToggleButtons(options=list(SIGN_TRANSFORMS), value="H", description="transform")
    bits = widgets.IntSlider(value=2, min=1, max=4, description="bits")
    seed = widgets.IntSlider(value=0, min=0, max=20, description="sign draw", continuous_update=False)
    shown = {}

    def show(input_name, transform, bits, seed):
        result = shown["result"] = compute_sign_demo(input_name, transform, bits, seed, d=d)
        fig, ax = plt.subplots(figsize=(8, 3))
        figures.draw_sign_bars(ax, result)
        plt.show()
        print(f"max/mean {result.max_over_mean:.1f};  error of this draw {result.mse:.4f}, "
              f"mean over 200 draws {result.mean_mse:.4f}, codebook promises {result.codebook_mse:.4f}")

    out = widgets.interactive_output(show, {"input_name": name, "transform": transform,
                                            "bits": bits, "seed": seed})
    app = widgets.VBox([widgets.HBox([name, bits, seed]), transform, out])
    app.shown = shown
    return app
