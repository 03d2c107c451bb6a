"""Lesson 13 (a quantized cache in a real model): the ipywidgets app, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from .._ui import show_figure
from . import experiments, figures

__all__ = ["cache_app", "summary_html", "continuation_html"]


def _bit_options(table, method):
    return [(f"{b:g}", b) for b in table.bits_of(method)]


def summary_html(result) -> str:
    """One line of numbers for a measured setting (what the app prints above its figure)."""
    return (f"<b>{html.escape(result.label)}</b>: {result.bits_per_coordinate:.2f} bits per coordinate, "
            f"{result.cache_nbytes:,} bytes ({result.compression:.1f}x smaller than float16); "
            f"perplexity {result.perplexity_ref:.1f} → {result.perplexity:.3g}; "
            f"top-1 token unchanged at {result.top1_agreement:.0%} of positions; "
            f"mean KL {result.kl_mean:.2g} nats")


def continuation_html(prompt_tail: str, exact: str, quantized: str, label: str) -> str:
    """The exact and the quantized-cache greedy continuations, one above the other."""
    def block(title, text):
        return f"<b>{html.escape(title)}</b><pre>…{html.escape(prompt_tail)}<b>{html.escape(text)}</b></pre>"

    return block("exact cache", exact) + block(label, quantized)


def cache_app(table=None, continuation_fn=None, prompt=None, method="mse", bits=2.0):
    """Lesson 13's app: pick a method and its bits; see what the quantized cache does to the model.

    Controls: method (a dropdown over the methods measured in ``table``), bits
    (the widths measured for that method; 2.5 and 3.5 for the outlier split).
    Shows: the setting's numbers, :func:`~.figures.draw_setting` (KL at each
    measured position, and the setting among all of them), and the greedy
    continuation of the prompt with the exact cache and with this one.

    Parameters
    ----------
    table : CacheTable, optional
        Default :func:`~.experiments.course_table` (SmolLM2 on the course's text).
    continuation_fn : callable, optional
        ``continuation_fn(method, bits) -> str`` (``method=None``: the exact cache);
        default :func:`~.experiments.course_continuation`.
    prompt : str, optional
        The prompt that ``continuation_fn`` continues (its last line is shown);
        default :data:`~.experiments.GENERATION_PROMPT`.
    method, bits : the first setting shown.

    Returns
    -------
    ipywidgets.VBox
    """
    table = experiments.course_table() if table is None else table
    continuation_fn = experiments.course_continuation if continuation_fn is None else continuation_fn
    prompt = experiments.GENERATION_PROMPT if prompt is None else prompt
    tail = prompt.rstrip("\n").rsplit("\n", 1)[-1][-80:] + "\n" * (len(prompt) - len(prompt.rstrip("\n")))
    method_w = widgets.Dropdown(options=[(experiments.LABELS.get(m, m), m) for m in table.methods],
                                value=method, description="method")
    bits_w = widgets.ToggleButtons(options=_bit_options(table, method), value=bits, description="bits")
    summary = widgets.HTML()
    out = widgets.Output()
    text = widgets.HTML()
    updating = [False]

    def redraw(*_):
        if updating[0]:
            return
        result = table.get(method_w.value, bits_w.value)
        summary.value = summary_html(result)
        show_figure(out, figures.draw_setting, table, method_w.value, bits_w.value, figsize=(12, 3.4), ncols=2)
        text.value = continuation_html(tail, continuation_fn(None, 2), continuation_fn(method_w.value, bits_w.value),
                                       result.label + " cache")

    def on_method(change):
        options = _bit_options(table, change["new"])
        old = bits_w.value
        updating[0] = True
        try:
            bits_w.options = options
            bits_w.value = min((b for _, b in options), key=lambda b: (abs(b - old), b))
        finally:
            updating[0] = False
        redraw()

    method_w.observe(on_method, names="value")
    bits_w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([method_w, bits_w]), summary, out, text])
