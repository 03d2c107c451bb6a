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
    """Lesson 04: histogram of a rotated coordinate against N(0, 1/d) and the exact law; d slider.

    Returns
    -------
    ipywidgets.VBox
        The slider (``app.slider``), and the figure with the figures printed under it.
    """
    dims = np.array(DIST_DIMS)
    gaps = np.array([gaussian_gap(k)[0] for k in dims])
    slider = widgets.SelectionSlider(options=list(DIST_DIMS), value=int(d), description="d",
                                     continuous_update=False)

    def show(d):
        h = compute_coordinate_histogram(d, n=n, seed=seed)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
        figures.draw_coordinate_histogram(axes[0], h)
        figures.draw_gaussian_gap(axes[1], dims, gaps, current=(h.d, h.tv))
        plt.tight_layout()
        plt.show()
        print(f"sigma: theory 1/sqrt(d) = {h.sigma_theory:.4f}, simulated {h.sigma_empirical:.4f} "
              f"({100 * h.sigma_relative_error:+.1f}%) | kurtosis: exact {h.kurtosis_exact:.3f}, "
              f"simulated {h.kurtosis_empirical:.3f} (Gaussian 3) | TV(exact, Gaussian) = {h.tv:.2g}")

    out = widgets.interactive_output(show, {"d": slider})
    app = widgets.VBox([slider, out])
    app.slider = slider
    return app
