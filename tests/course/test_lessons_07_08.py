"""Lessons 07 (Lloyd-Max slots) and 08 (the complete pipeline): the widgets' computations."""
import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from turboquant_lab import plots  # noqa: E402
from turboquant_lab.codebooks import (lloyd_max_codebook, lloyd_max_history,  # noqa: E402
                                      uniform_codebook)
from turboquant_lab.hadamard import fwht  # noqa: E402
from turboquant_lab.packing import pack_bits, unpack_bits  # noqa: E402
from turboquant_lab.rotation import RandomizedHadamard  # noqa: E402
from turboquant_lab.turboquant import TurboQuantMSE  # noqa: E402
from turboquant_lab.widgets import (LloydMaxStepper, compute_lloyd_max_state,  # noqa: E402
                                    compute_pipeline_comparison, lloyd_max_app, pipeline_app)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _walk(widget):
    """Every widget inside ``widget`` (depth first)."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


# --------------------------------------------------------------------------- lesson 07


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("d", [None, 8, 128])
@pytest.mark.parametrize("init", ["span", "uniform"])
def test_lloyd_iterations_never_increase_the_mse(bits, d, init):
    state = compute_lloyd_max_state(bits, 60, d=d, init=init)
    mse = state.mse_history
    assert mse.shape == (61,)
    assert np.all(np.diff(mse) <= 1e-14 * mse[:-1])
    # and they head for the Lloyd-Max optimum, never below it
    assert mse[-1] >= state.optimal_mse * (1 - 1e-12)
    assert mse[-1] <= mse[0] * (1 + 1e-14)
    assert state.optimal_mse <= state.uniform_mse * (1 + 1e-12)


def test_lloyd_iterations_reach_the_optimum_and_move_slots_toward_zero():
    state = compute_lloyd_max_state(2, 60, init="span")
    assert state.mse == pytest.approx(lloyd_max_codebook(2).mse, rel=1e-6)
    np.testing.assert_allclose(state.centroids, lloyd_max_codebook(2).centroids, atol=1e-4)
    start = compute_lloyd_max_state(3, 0, init="span")
    end = compute_lloyd_max_state(3, 60, init="span")
    # equal slots over [-3, 3] are too wide for N(0, 1): every level moves toward zero
    assert np.all(np.abs(end.centroids) < np.abs(start.centroids))
    assert start.mse > 1.3 * end.mse


@settings(max_examples=15, deadline=None)
@given(bits=st.integers(1, 4), d=st.sampled_from([None, 8, 16, 128]),
       init=st.sampled_from(["span", "uniform"]), moves=st.lists(st.sampled_from("nbr"), max_size=12))
def test_stepper_states_equal_lloyd_max_history(bits, d, init, moves):
    history = lloyd_max_history(bits, d, n_iter=20, init=init)
    stepper = LloydMaxStepper(bits=bits, d=d, init=init, n_iter=20)
    expected = 0
    for move in moves:
        if move == "n":
            state, expected = stepper.next(), min(expected + 1, 20)
        elif move == "b":
            state, expected = stepper.back(), max(expected - 1, 0)
        else:
            state, expected = stepper.next(7), min(expected + 7, 20)
        assert state.iteration == expected == stepper.iteration
        ref = history[expected]
        np.testing.assert_array_equal(state.centroids, ref.centroids)
        np.testing.assert_array_equal(state.boundaries, ref.boundaries)
        assert state.mse == ref.mse
        np.testing.assert_array_equal(state.mse_history, [h.mse for h in history[:expected + 1]])


def test_stepper_run_reset_and_configure():
    stepper = LloydMaxStepper(bits=3, n_iter=30)
    assert stepper.run().iteration == 30
    assert stepper.next().iteration == 30          # stays at the end
    assert stepper.reset().iteration == 0
    assert stepper.back().iteration == 0           # stays at the start
    stepper.next(5)
    state = stepper.configure(bits=2, d=16, init="uniform")
    assert (state.iteration, state.bits, state.d, state.init) == (0, 2, 16, "uniform")
    np.testing.assert_array_equal(state.centroids, uniform_codebook(2, 16).centroids)
    assert stepper.configure(d=None).d is None


def test_lloyd_state_rejects_bad_settings():
    with pytest.raises(ValueError, match="iteration"):
        compute_lloyd_max_state(3, 61)
    with pytest.raises(ValueError, match="init"):
        compute_lloyd_max_state(3, 0, init="random")
    with pytest.raises(ValueError, match="bits"):
        compute_lloyd_max_state(0, 0)
    with pytest.raises(ValueError, match="d"):
        compute_lloyd_max_state(2, 0, d=1)


def test_lloyd_max_app_builds_and_its_buttons_step():
    stepper = LloydMaxStepper(bits=2, n_iter=30)
    app = lloyd_max_app(stepper)
    assert isinstance(app, ipywidgets.VBox)
    buttons = {w.description: w for w in _walk(app) if isinstance(w, ipywidgets.Button)}
    assert set(buttons) >= {"Next", "Back", "Run", "Reset", "+10"}
    buttons["Next"].click()
    buttons["+10"].click()
    assert stepper.iteration == 11
    buttons["Back"].click()
    assert stepper.iteration == 10
    buttons["Run"].click()
    assert stepper.iteration == 30
    slider = next(w for w in _walk(app) if isinstance(w, ipywidgets.IntSlider))
    slider.value = 4                                # changing the bits restarts
    assert (stepper.bits, stepper.iteration) == (4, 0)
    assert stepper.state.codebook.levels == 16


def test_lloyd_max_figures_draw():
    fig, axes = plt.subplots(1, 2)
    plots.draw_lloyd_max(axes, compute_lloyd_max_state(3, 4, d=8))
    assert "iteration 4" in axes[0].get_title()
    assert axes[1].get_xlabel() == "iteration"
    b = np.arange(1, 5)
    ax = plots.draw_mse_vs_bits(None, {"bits": b, "Lloyd-Max": [lloyd_max_codebook(k).mse for k in b],
                                       "lower bound": 4.0 ** -b, "measured": 4.0 ** -b * 2})
    assert ax.get_yscale() == "log" and len(ax.lines) == 3
    plt.close("all")


def test_codebook_laws_figure_draws_both_codebooks():
    ax = plots.draw_codebook_laws(None, 3, 8)
    ticks = [line.get_xdata() for line in ax.lines if line.get_marker() == "|"]
    assert len(ticks) == 2
    np.testing.assert_allclose(ticks[0], lloyd_max_codebook(3, 8).centroids)
    np.testing.assert_allclose(ticks[1], lloyd_max_codebook(3).centroids)
    # the exact law at d = 8 has lighter tails: its outer centroid sits closer to 0
    assert ticks[0][-1] < ticks[1][-1]
    assert "3 bits" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel() == "density"
    plt.close("all")


# --------------------------------------------------------------------------- lesson 08


@pytest.mark.parametrize("method", ["hadamard", "dense"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_pipeline_error_matches_the_prediction_on_uniform_directions(method, bits):
    # Gaussian vectors have uniformly distributed directions: the prediction is exact in expectation
    r = compute_pipeline_comparison(bits, method, n=2000, data="gaussian", repeats=1)
    assert r.predicted == pytest.approx(lloyd_max_codebook(bits, 128).mse)
    assert r.relative_mse == pytest.approx(r.predicted, rel=0.05)
    assert r.bits_per_coordinate == bits + 16 / 128          # float16 norm per vector


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_pipeline_on_outlier_data(bits):
    naive = compute_pipeline_comparison(bits, "none", repeats=1)
    dense = compute_pipeline_comparison(bits, "dense", repeats=1)
    wht = compute_pipeline_comparison(bits, "hadamard", repeats=1)
    assert naive.predicted is None
    assert naive.bits_per_coordinate == bits + 64 / 128      # float32 lo and scale per vector
    # a Haar rotation meets the prediction up to the spread of one fixed rotation ...
    assert dense.relative_mse == pytest.approx(dense.predicted, rel=0.10)
    # ... the randomized Hadamard of vectors dominated by 5 channels does better than predicted
    assert 0.7 * wht.predicted < wht.relative_mse < wht.predicted
    # and the naive quantizer is far worse than either, with more bits spent
    assert naive.relative_mse > 4 * max(dense.relative_mse, wht.relative_mse)
    assert naive.relative_mse > 4 * dense.predicted


def test_pipeline_comparison_fields_and_errors():
    r = compute_pipeline_comparison(3, "hadamard", n=300, d=64, seed=2, repeats=1)
    assert r.per_vector.shape == (300,) and r.example.shape == r.example_hat.shape == (64,)
    assert r.relative_mse == pytest.approx(r.per_vector.mean())
    assert r.seconds_per_vector > 0
    assert len(r.outlier_channels) == 5
    assert np.linalg.norm(r.example - r.example_hat) < 0.3 * np.linalg.norm(r.example)
    with pytest.raises(ValueError, match="method"):
        compute_pipeline_comparison(3, "random")
    with pytest.raises(ValueError, match="data"):
        compute_pipeline_comparison(3, "dense", data="real")
    with pytest.raises(ValueError, match="bits"):
        compute_pipeline_comparison(9, "dense")


def test_pipeline_by_hand_equals_turboquant():
    # what lesson 08 assembles step by step is what TurboQuantMSE stores and returns
    d, bits, seed = 128, 3, 0
    x = compute_pipeline_comparison(bits, "none", n=4, d=d, repeats=1).example  # a KV vector
    tq, rh, cb = TurboQuantMSE(d, bits, seed=seed), RandomizedHadamard(d, seed=seed), \
        lloyd_max_codebook(bits, d)
    norm = np.linalg.norm(x)
    t = np.sqrt(d) * rh.signs2 * fwht(rh.signs1 * (x / norm))
    codes = cb.quantize(t)
    enc = tq.encode(x.astype(np.float32)[None])
    np.testing.assert_array_equal(pack_bits(codes, bits), enc.codes[0])
    assert enc.norms[0] == np.float16(norm)
    back = unpack_bits(enc.codes[0], bits, d)
    x_hat = float(np.float16(norm)) * rh.signs1 * fwht(rh.signs2 * cb.centroids[back] / np.sqrt(d))
    np.testing.assert_allclose(tq.decode(enc)[0], x_hat, atol=1e-5 * norm)


def test_pipeline_app_builds_and_redraws():
    app = pipeline_app(n=200)
    assert isinstance(app, ipywidgets.VBox)
    toggle = next(w for w in _walk(app) if isinstance(w, ipywidgets.ToggleButtons))
    assert toggle.value == "hadamard"
    for method in ("none", "dense", "hadamard"):   # an unknown value would raise TraitError
        toggle.value = method
    slider = next(w for w in _walk(app) if isinstance(w, ipywidgets.IntSlider))
    assert (slider.min, slider.max) == (1, 8)
    slider.value = 8


def test_pipeline_figures_draw():
    r = compute_pipeline_comparison(2, "dense", n=200, repeats=1)
    ax, ax_h = plots.draw_pipeline_comparison(None, r)
    assert "(timed)" in ax_h.get_title() and ax_h.get_xlabel().startswith("log10")
    x = r.example
    axes = plots.draw_vector_steps(None, {"input": x, "rotated": fwht(x)}, r.outlier_channels)
    assert len(axes) == 2 and "max/mean" in axes[0].get_title()
