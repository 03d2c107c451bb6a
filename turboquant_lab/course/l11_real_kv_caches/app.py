"""Lesson 11 (real KV caches): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from turboquant_lab.data import load_kv_sample

from . import figures
from .experiments import compute_real_head

__all__ = ["real_kv_app"]


def real_kv_app(sample=None, seed=0):
    """Lesson 11's app: layer, head, bits and query token over the real sample.

    Returns
    -------
    ipywidgets.VBox
    """
    if sample is None:

        sample = load_kv_sample()
    layer = widgets.IntSlider(value=0, min=0, max=sample.layers - 1, description="layer",
                              continuous_update=False)
    head = widgets.IntSlider(value=0, min=0, max=sample.heads - 1, description="head",
                             continuous_update=False)
    bits = widgets.IntSlider(value=3, min=1, max=8, description="bits", continuous_update=False)
    query = widgets.IntSlider(value=10, min=0, max=sample.n_tokens - 1, description="query token",
                              continuous_update=False)
    label = widgets.HTML()

    def show(layer, head, bits, query):

        r = compute_real_head(sample, layer, head, bits, query, seed)
        tq, un = r.rows
        label.value = (f"this head, all {sample.n_tokens} queries: output error TurboQuant "
                       f"{tq['output_rel_error']:.3g} ({tq['bits_per_coordinate']:.3g} bits/coord), "
                       f"uniform {un['output_rel_error']:.3g} ({un['bits_per_coordinate']:.3g} bits/coord)")
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [2, 3]})
        figures.draw_real_head(axes, r)
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(show, {"layer": layer, "head": head, "bits": bits,
                                            "query": query})
    return widgets.VBox([widgets.HBox([layer, head]), widgets.HBox([bits, query]), label, out])
