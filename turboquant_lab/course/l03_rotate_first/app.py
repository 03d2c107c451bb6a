"""Lesson 03 (rotate first): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from . import figures
from .experiments import RotateDemo

__all__ = ["rotate_app"]


def rotate_app(x=None, outliers=None, seed: int = 0):
    """The essay's Rotate button (lesson 03): bar charts before and after a random rotation.

    Returns
    -------
    ipywidgets.VBox
        Buttons, a summary line and the figure; ``app.demo`` is the
        :class:`RotateDemo` behind it (``app.demo.press()`` is what a click does).
    """
    demo = RotateDemo(x, outliers, seed)
    rotate = widgets.Button(description="Rotate", button_style="primary")
    reset = widgets.Button(description="Reset")
    label = widgets.Label()
    out = widgets.Output()

    def redraw():
        label.value = demo.summary()
        with out:
            out.clear_output(wait=True)
            fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
            figures.draw_rotation(axes, demo.result, x=demo.x, outliers=demo.outliers)
            plt.show()

    def on_rotate(_):
        demo.press()
        redraw()

    def on_reset(_):
        demo.reset()
        redraw()

    rotate.on_click(on_rotate)
    reset.on_click(on_reset)
    redraw()
    app = widgets.VBox([widgets.HBox([rotate, reset]), label, out])
    app.demo = demo
    return app
