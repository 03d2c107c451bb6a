"""Lesson 09 (the GPU kernel): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets

from .._ui import stepper_view
from . import figures
from .experiments import KERNEL_INPUTS, KERNEL_LAYOUTS, KernelStepper, kernel_layout, kernel_stage_caption

__all__ = ["kernel_app"]


def kernel_app():
    """Lesson 09's stepper: the butterfly stages of the GPU kernel, thread by thread.

    A layout menu (the teaching layout or the real kernel at d = 256 or 1024),
    an input menu, Back / Next. Returns the widget; its ``stepper`` attribute is
    the :class:`KernelStepper`.
    """
    stepper = KernelStepper()
    layout = widgets.Dropdown(options=list(KERNEL_LAYOUTS), description="layout",
                              layout=widgets.Layout(width="330px"))
    choice = widgets.Dropdown(options=list(KERNEL_INPUTS), description="input")
    back, nxt, caption, out, show = stepper_view(stepper, kernel_stage_caption,
                                                  figures.draw_kernel_stage, (8, 3.8))

    def on_change(_):
        cfg = kernel_layout(layout.value)
        show(stepper.reset(KERNEL_INPUTS[choice.value](cfg.d), cfg))

    layout.observe(on_change, names="value")
    choice.observe(on_change, names="value")
    app = widgets.VBox([widgets.HBox([layout, choice]), widgets.HBox([back, nxt]), caption, out])
    app.stepper = stepper
    return app
