"""Lesson 12 (PolarQuant): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .._ui import show_figure, stepper_view
from . import figures
from .experiments import TREE_EXAMPLE, PolarTreeStepper, compute_angle_histogram, tree_caption

__all__ = ["polar_tree_app", "angle_law_app", "TREE_INPUTS"]

#: Inputs of the tree stepper (d = 8)
TREE_INPUTS = {
    "worked example [3, 4, 1, -1, -2, 0, 2, -2]": lambda: TREE_EXAMPLE.copy(),
    "e_0 = [1, 0, ..., 0]": lambda: np.eye(8)[0],
    "[1, 1, ..., 1]": lambda: np.ones(8),
    "Gaussian (seed 0)": lambda: np.round(np.random.default_rng(0).standard_normal(8), 2),
}


def polar_tree_app():
    """Lesson 12's tree stepper: Back / Next walk the levels of the polar transform of a d = 8 vector.

    Returns the widget; its ``stepper`` attribute is the :class:`PolarTreeStepper`, ``caption``
    the line under the buttons.
    """
    stepper = PolarTreeStepper()
    choice = widgets.Dropdown(options=list(TREE_INPUTS), description="input",
                              layout=widgets.Layout(width="360px"))
    back, nxt, caption, out, show = stepper_view(stepper, tree_caption, figures.draw_polar_tree, (9, 3.8))

    def on_choice(change):
        show(stepper.reset(TREE_INPUTS[change["new"]]()))

    choice.observe(on_choice, names="value")
    app = widgets.VBox([widgets.HBox([choice, back, nxt]), caption, out])
    app.stepper = stepper
    app.caption = caption
    return app


def angle_law_app(n=2000, seed=0):
    """Lesson 12's law explorer: a level slider and a d menu over the angle histograms.

    The figure is :func:`~turboquant_lab.course.l12_polarquant.figures.draw_angle_histogram`
    (rotated Gaussian vectors, and outlier KV vectors before and after the randomized Hadamard,
    against the exact law); the line above it gives the KS distances and the spreads.
    Attributes ``level``, ``d`` (the controls) and ``info`` (the line) are kept on the widget.
    """
    d = widgets.Dropdown(options=[8, 16, 32, 64, 128, 256, 512], value=128, description="d")
    level = widgets.IntSlider(value=2, min=1, max=7, description="level", continuous_update=False)
    info = widgets.HTML()
    out = widgets.Output()

    def redraw(_change=None):
        top = d.value.bit_length() - 1
        if level.max != top:
            level.max = top  # clamps level.value, which calls redraw again
            if level.value > top:
                return
        h = compute_angle_histogram(level.value, d.value, n, seed)
        info.value = (f"level {h.level}, d = {h.d}: KS distance from the law: rotated Gaussian vectors "
                      f"<b>{h.ks_gaussian:.3f}</b>; outlier vectors {h.ks_before:.3f} raw, "
                      f"<b>{h.ks_after:.3f}</b> rotated. Spread (rad): law {h.std_law:.4f}, Gaussian "
                      f"{h.std_gaussian:.4f}, rotated outliers {h.std_after:.4f}")
        show_figure(out, figures.draw_angle_histogram, h, figsize=(7, 3.2))

    d.observe(redraw, names="value")
    level.observe(redraw, names="value")
    redraw()
    app = widgets.VBox([widgets.HBox([d, level]), info, out])
    app.level, app.d, app.info = level, d, info
    return app
