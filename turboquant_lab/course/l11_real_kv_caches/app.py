"""Lesson 11 (real KV caches): the ipywidgets app, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from turboquant_lab.data import load_kv_sample

from . import figures
from .experiments import METHOD_NAMES, METHODS, compute_head

__all__ = ["real_kv_app", "describe_head"]


def describe_head(v) -> str:
    """The app's line of figures for one head: per method, its storage and causal attention errors."""
    parts = [f"{METHOD_NAMES[m]}: {v.fidelity[m]['bits_per_coordinate']:.2f} bits/coord, "
             f"key error {v.fidelity[m]['key_rel_mse']:.4f}, KL {v.fidelity[m]['kl']:.4f}, "
             f"top-8 {v.fidelity[m]['topk_agreement']:.2f}" for m in METHODS]
    return (f"layer {v.layer_id}, KV head {v.head} (query head {v.query_head}), all "
            f"{len(v.tokens)} queries with the causal mask, keys at {v.bits} bits: " + "; ".join(parts))


def real_kv_app(sample=None, seed=0):
    """Lesson 11's explorer over layer, KV head, bits and token of the SmolLM2 sample.

    Returns
    -------
    ipywidgets.VBox
        ``children[0]``: layer (a SelectionSlider over the model's layer numbers)
        and KV head; ``children[1]``: bits and token; ``children[2]``: the line of
        figures (HTML); ``children[3]``: the figure.
    """
    if sample is None:
        sample = load_kv_sample("smollm2")
    layer = widgets.SelectionSlider(options=[(str(lid), i) for i, lid in enumerate(sample.layer_ids)],
                                    value=2, description="layer", continuous_update=False)
    head = widgets.IntSlider(value=0, min=0, max=sample.heads - 1, description="KV head",
                             continuous_update=False)
    bits = widgets.IntSlider(value=3, min=1, max=8, description="bits", continuous_update=False)
    token = widgets.IntSlider(value=40, min=0, max=sample.n_tokens - 1, description="token",
                              continuous_update=False)
    label = widgets.HTML()

    def show(layer, head, bits, token):
        v = compute_head(sample, layer, head, bits, token, seed)
        label.value = html.escape(describe_head(v))
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), gridspec_kw={"width_ratios": [3, 3, 2]})
        figures.draw_head(axes, v)
        fig.tight_layout()
        display(fig)
        plt.close(fig)

    out = widgets.interactive_output(show, {"layer": layer, "head": head, "bits": bits, "token": token})
    return widgets.VBox([widgets.HBox([layer, head]), widgets.HBox([bits, token]), label, out])
