"""Lesson 04 (the distribution after rotation): the ipywidgets apps, wiring :mod:`.experiments` to :mod:`.figures`.

Only the ipywidgets API that versions 7 and 8 share is used (Colab ships 7.7.1).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from . import figures
from .experiments import DIST_DIMS, compute_coordinate_histogram, gaussian_gap

__all__ = ["distribution_app"]


def distribution_app(n: int = 10_000, seed: int = 0, d: int = 128):
    """Lesson 04: histogram of a rotated coordinate against N(0, 1/d) and the exact law.

    A ``d`` slider, and a "new draw" button that simulates ``n`` fresh
    rotations (draw ``k`` uses the seed ``[seed, k]``), so that a learner can
    tell the law from one sample's noise.

    Returns
    -------
    ipywidgets.VBox
        With attributes ``slider`` (d), ``resample`` (the button) and ``draw``
        (the draw number, an ``IntText``), and the figure with its numbers printed under it.
    """
    dims = np.array(DIST_DIMS)
    gaps = np.array([gaussian_gap(k)[0] for k in dims])
    slider = widgets.SelectionSlider(options=list(DIST_DIMS), value=int(d), description="d",
                                     continuous_update=False)
    draw = widgets.IntText(value=0, description="draw", disabled=True,
                           layout=widgets.Layout(width="140px"))
    resample = widgets.Button(description="new draw", icon="refresh",
                              tooltip=f"simulate {n:,} fresh rotations")

    def show(d, draw):
        h = compute_coordinate_histogram(d, n=n, seed=[seed, draw])
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
        figures.draw_coordinate_histogram(axes[0], h)
        figures.draw_gaussian_gap(axes[1], dims, gaps, current=(h.d, h.tv))
        plt.tight_layout()
        plt.show()
        print(f"draw {draw}: sigma theory 1/sqrt(d) = {h.sigma_theory:.4f}, simulated "
              f"{h.sigma_empirical:.4f} ({100 * h.sigma_relative_error:+.1f}%) | kurtosis: exact "
              f"{h.kurtosis_exact:.3f}, simulated {h.kurtosis_empirical:.3f} (Gaussian 3) | "
              f"TV(exact, Gaussian) = {h.tv:.2g}")

    def on_resample(_):
        draw.value += 1

    resample.on_click(on_resample)
    out = widgets.interactive_output(show, {"d": slider, "draw": draw})
    app = widgets.VBox([widgets.HBox([slider, resample, draw]), out])
    app.slider, app.resample, app.draw = slider, resample, draw
    return app
