"""For the app tests: see what an ipywidgets app shows, outside a Jupyter kernel.

In pytest there is no kernel, so an ``Output`` widget captures nothing and an
exception raised in a callback propagates to the test (in Jupyter it would be
swallowed into the Output). What the app *shows* is recorded instead: every
matplotlib figure passed to ``display`` or shown with ``plt.show()`` by a
module of ``turboquant_lab.course``. Use the ``shown_figures`` fixture
(tests/conftest.py)::

    def test_app(shown_figures):
        app = lesson_app.ruler_app()
        app.children[0].value = 5                 # drive a control
        fig = shown_figures.last                  # the figure it drew
        assert bar_heights(fig.axes[0]) ...       # assert on its data
"""
import sys

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


class FigureRecorder:
    """The figures the course's apps showed, in order (``figures``; ``last``; ``clear()``)."""

    def __init__(self):
        self.figures = []

    def display(self, *objs, **kwargs):
        self.figures.extend(o for o in objs if isinstance(o, Figure))

    def show(self, *args, **kwargs):
        if plt.get_fignums():
            self.figures.append(plt.gcf())

    @property
    def last(self) -> Figure:
        assert self.figures, "the app showed no figure"
        return self.figures[-1]

    def clear(self):
        self.figures.clear()

    def install(self, monkeypatch):
        def show(*args, **kwargs):  # a plain function: pyplot sets attributes on its show
            self.show()

        monkeypatch.setattr(plt, "show", show)
        for name, module in list(sys.modules.items()):
            if name.startswith("turboquant_lab.course") and hasattr(module, "display"):
                monkeypatch.setattr(module, "display", self.display)
        return self


def bar_heights(ax) -> np.ndarray:
    """Heights of the bars (Rectangle patches of bar charts) drawn on ``ax``, in drawing order."""
    return np.array([p.get_height() for p in ax.patches if hasattr(p, "get_height")])


def line_data(ax) -> list:
    """``(x, y)`` arrays of every line on ``ax``, in drawing order."""
    return [(np.asarray(line.get_xdata()), np.asarray(line.get_ydata())) for line in ax.get_lines()]


def texts(fig) -> str:
    """All text on the figure (titles, labels, annotations), joined by newlines."""
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()] + [t.get_text() for t in ax.texts]
    out += [t.get_text() for t in fig.texts]
    return "\n".join(s for s in out if s)
