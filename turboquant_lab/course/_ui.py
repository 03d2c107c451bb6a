"""Shared by the lessons' figures and apps: colours, a figure shown in an Output, one stepper view."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

__all__ = [
    "stepper_view", "show_figure", "NORMAL_COLOR", "OUTLIER_COLOR", "ROTATED_COLOR", "LEVEL_COLOR",
    "axes_or_new", "RECON_COLOR", "draw_ruler_levels", "PLUS_COLOR", "MINUS_COLOR", "EXACT_COLOR",
    "MSE_COLOR", "PROD_COLOR", "UNIFORM_COLOR",
]


def stepper_view(stepper, caption_of, draw, figsize):
    """Back / Next buttons, a caption and a figure for a stepper with ``back()``, ``next()``, ``state``.

    Returns ``(back, next, caption, out, show)``; ``show(state)`` redraws, and
    has already drawn the stepper's current state.
    """
    back = widgets.Button(description="Back", icon="step-backward")
    nxt = widgets.Button(description="Next", icon="step-forward")
    caption = widgets.Label()
    out = widgets.Output()

    def show(state):
        caption.value = caption_of(state)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=figsize)
            draw(ax, state)
            plt.show()

    back.on_click(lambda _: show(stepper.back()))
    nxt.on_click(lambda _: show(stepper.next()))
    show(stepper.state)
    return back, nxt, caption, out, show


def show_figure(out, draw, *args, figsize=(9, 3), ncols=1, **kw):
    """Clear ``out`` and display a fresh figure drawn by ``draw(axes, *args)``."""
    with out:
        out.clear_output(wait=True)
        fig, axes = plt.subplots(1, ncols, figsize=figsize, **kw)
        draw(axes, *args)
        display(fig)
        plt.close(fig)


# Colours shared by all lessons: outlier channels are red, as in the essay.
NORMAL_COLOR = "#4c72b0"


OUTLIER_COLOR = "#d62728"


ROTATED_COLOR = "#55a868"


LEVEL_COLOR = "#7f7f7f"


def axes_or_new(ax, figsize=(7, 3)):
    """Return ``ax`` or a new axes of a new figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


RECON_COLOR = "#dd8452"  # reconstructed values (lessons 01-02)


def draw_ruler_levels(ax, levels, label_codes: bool):
    """Horizontal grey lines at the quantizer's levels; code numbers at the right edge."""
    levels = np.asarray(levels)
    alpha = 0.8 if len(levels) <= 16 else 0.35
    for k, level in enumerate(levels):
        ax.axhline(level, color=LEVEL_COLOR, lw=0.8, alpha=alpha, zorder=0,
                   label="levels" if k == 0 else None)
        if label_codes:
            ax.annotate(f"code {k}", xy=(1.0, level), xycoords=("axes fraction", "data"),
                        xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=7, color=LEVEL_COLOR, annotation_clip=False)


PLUS_COLOR = "#4c72b0"    # +1 entries of a Hadamard matrix, a + b lines of a butterfly


MINUS_COLOR = "#d62728"   # -1 entries, a - b lines


EXACT_COLOR = "#333333"    # exact scores / weights (lessons 10-11)


MSE_COLOR = NORMAL_COLOR   # TurboQuantMSE


PROD_COLOR = "#8172b2"     # TurboQuantProd (MSE + QJL)


UNIFORM_COLOR = "#dd8452"  # naive uniform
