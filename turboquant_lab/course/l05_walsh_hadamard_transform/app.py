"""Lesson 05 (the Walsh-Hadamard transform): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets

from .._ui import stepper_view
from . import figures
from .experiments import BUTTERFLY_INPUTS, ButterflyStepper, butterfly_caption

__all__ = ["butterfly_app"]


def butterfly_app(d=8):
    """The essay's butterfly stepper: Back / Next buttons and an input choice.

    Returns the widget; its ``stepper`` attribute is the :class:`ButterflyStepper`.
    """
    stepper = ButterflyStepper(d=d)
    choice = widgets.Dropdown(options=list(BUTTERFLY_INPUTS), description="input")
    back, nxt, caption, out, show = stepper_view(stepper, butterfly_caption,
                                                  figures.draw_butterfly, (8, 3.6))

    def on_choice(change):
        show(stepper.reset(BUTTERFLY_INPUTS[change["new"]](d)))

    choice.observe(on_choice, names="value")
    app = widgets.VBox([widgets.HBox([choice, back, nxt]), caption, out])
    app.stepper = stepper
    return app
