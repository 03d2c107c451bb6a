"""Lesson 10 (inner products and QJL): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from . import figures
from .experiments import compute_attention_demo

__all__ = ["attention_demo_app"]


def attention_demo_app(n_keys=1024, d=128, seed=0):
    """Lesson 10's app: a bits slider; scores and top attention weights, exact vs MSE vs prod.

    Returns
    -------
    ipywidgets.VBox
    """
    bits = widgets.IntSlider(value=2, min=1, max=5, description="bits", continuous_update=False)
    label = widgets.HTML()

    def show(bits):

        demo = compute_attention_demo(bits, n_keys=n_keys, d=d, seed=seed)
        fm, fp = demo.fidelity_mse, demo.fidelity_prod
        label.value = (f"KL(exact || MSE) = {fm.kl:.3g} nats, KL(exact || prod) = {fp.kl:.3g} nats; "
                       f"top-8 kept: MSE {fm.topk_agreement:.0%}, prod {fp.topk_agreement:.0%}")
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        figures.draw_attention_demo(axes, demo)
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(show, {"bits": bits})
    return widgets.VBox([bits, label, out])
