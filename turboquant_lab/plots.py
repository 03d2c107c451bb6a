"""Matplotlib figures the lessons reuse.

Each ``draw_*`` function draws on the ``matplotlib.axes.Axes`` it is given
(or creates a figure when none is) and returns what it drew on; it computes
nothing that a lesson or a test would want to check: the numbers come from
the library or from a ``compute_*`` function in :mod:`turboquant_lab.widgets`.
Every axis is labelled, with units where the quantity has one.

The file is organised in one section per lesson; keep each lesson's figures
inside its section.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

# Colours shared by all lessons: outlier channels are red, as in the essay.
NORMAL_COLOR = "#4c72b0"
OUTLIER_COLOR = "#d62728"
ROTATED_COLOR = "#55a868"
LEVEL_COLOR = "#7f7f7f"


def _axes(ax, figsize=(7, 3)):
    """Return ``ax`` or a new axes of a new figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


# ---- lessons 01-02 ----------------------------------------------------------
# ---- end lessons 01-02 ------------------------------------------------------

# ---- lessons 03-04 ----------------------------------------------------------
# ---- end lessons 03-04 ------------------------------------------------------

# ---- lessons 05-06 ----------------------------------------------------------
# ---- end lessons 05-06 ------------------------------------------------------

# ---- lessons 07-08 ----------------------------------------------------------
# ---- end lessons 07-08 ------------------------------------------------------

# ---- lessons 09-11 ----------------------------------------------------------
# ---- end lessons 09-11 ------------------------------------------------------
