"""One ipywidgets app per interactive figure of the essay.

Pattern (see STYLE.md): a pure ``compute_*`` function returns the numbers a
figure shows (tests call it directly, setting the "slider" by argument); a
``draw_*`` function in :mod:`turboquant_lab.plots` only plots; and an
``*_app()`` function wires them with ``ipywidgets.interactive_output`` (or
``interact``) into an explicit layout and returns the widget. Only the
ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1):
``interact``, ``interactive``, ``interactive_output``, the basic controls,
``Output``, ``HBox``/``VBox``, ``observe`` and ``on_click``.

The file is organised in one section per lesson; keep each lesson's apps
inside its section.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from . import plots


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
