"""Lesson 07 (optimal slots (Lloyd-Max)): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets

from .._ui import show_figure
from . import figures
from .experiments import LloydMaxStepper

__all__ = ["lloyd_max_app"]

#: Laws offered by the Lloyd-Max app: 0 stands for the Gaussian limit (d = None).
_LLOYD_LAWS = [("N(0, 1) (large d)", 0), ("exact law, d = 8", 8), ("exact law, d = 16", 16),
               ("exact law, d = 128", 128)]


_LLOYD_STARTS = [("equal slots over [-3, 3]", "span"), ("best uniform slots", "uniform")]


def lloyd_max_app(stepper: LloydMaxStepper | None = None):
    """Lesson 07's app: step the Lloyd-Max iterations and watch slots and MSE move.

    Controls: bits (1-4), the law (N(0, 1) or the exact law at d = 8, 16, 128),
    the start, and Reset / Back / Next / +10 / Run buttons. The figure is
    :func:`turboquant_lab.course.draw_lloyd_max`.

    Parameters
    ----------
    stepper : LloydMaxStepper, optional
        The state the buttons drive (a new one at 3 bits, N(0, 1), by default).

    Returns
    -------
    ipywidgets.VBox
    """
    st = stepper if stepper is not None else LloydMaxStepper()
    bits = widgets.IntSlider(value=min(st.bits, 4), min=1, max=4, description="bits",
                             continuous_update=False)
    law = widgets.Dropdown(options=_LLOYD_LAWS, value=0 if st.d is None else st.d,
                           description="law")
    start = widgets.Dropdown(options=_LLOYD_STARTS, value=st.init, description="start")
    buttons = {name: widgets.Button(description=name, layout=widgets.Layout(width="70px"))
               for name in ("Reset", "Back", "Next", "+10", "Run")}
    info = widgets.HTML()
    out = widgets.Output()

    def redraw(state):
        info.value = (f"iteration <b>{state.iteration}</b> of {state.n_iter} &nbsp; "
                      f"MSE {state.mse:.5f} (start {state.start_mse:.5f}, "
                      f"best uniform {state.uniform_mse:.5f}, "
                      f"Lloyd-Max {state.optimal_mse:.5f})")
        show_figure(out, figures.draw_lloyd_max, state, figsize=(9, 3), ncols=2,
                     gridspec_kw={"width_ratios": [3, 2]})

    def on_settings(_change):
        redraw(st.configure(bits=bits.value, d=None if law.value == 0 else law.value,
                            init=start.value))

    for control in (bits, law, start):
        control.observe(on_settings, names="value")
    actions = {"Reset": st.reset, "Back": st.back, "Next": st.next,
               "+10": lambda: st.next(10), "Run": st.run}
    for name, button in buttons.items():
        button.on_click(lambda _b, act=actions[name]: redraw(act()))
    redraw(st.state)
    return widgets.VBox([widgets.HBox([bits, law, start]),
                         widgets.HBox(list(buttons.values()) + [info]), out])
