"""Lesson 07: its experiments, figures, app and exercise checkers."""
import math

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
from app_helpers import line_data
from checker_helpers import assert_fails, assert_passes
from hypothesis import given, settings
from hypothesis import strategies as st

from turboquant_lab.codebooks import lloyd_max_codebook, lloyd_max_history, uniform_codebook
from turboquant_lab.course.l07_optimal_slots import app as lesson_app
from turboquant_lab.course.l07_optimal_slots import checks, experiments, figures


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("d", [None, 8, 128])
@pytest.mark.parametrize("init", ["span", "uniform"])
def test_lloyd_iterations_never_increase_the_mse(bits, d, init):
    state = experiments.compute_lloyd_max_state(bits, 60, d=d, init=init)
    mse = state.mse_history
    assert mse.shape == (61,)
    assert np.all(np.diff(mse) <= 1e-14 * mse[:-1])
    # and they head for the Lloyd-Max optimum, never below it
    assert mse[-1] >= state.optimal_mse * (1 - 1e-12)
    assert mse[-1] <= mse[0] * (1 + 1e-14)
    assert state.optimal_mse <= state.uniform_mse * (1 + 1e-12)


def test_lloyd_iterations_reach_the_optimum_and_move_slots_toward_zero():
    state = experiments.compute_lloyd_max_state(2, 60, init="span")
    assert state.mse == pytest.approx(lloyd_max_codebook(2).mse, rel=1e-6)
    np.testing.assert_allclose(state.centroids, lloyd_max_codebook(2).centroids, atol=1e-4)
    start = experiments.compute_lloyd_max_state(3, 0, init="span")
    end = experiments.compute_lloyd_max_state(3, 60, init="span")
    # equal slots over [-3, 3] are too wide for N(0, 1): every level moves toward zero
    assert np.all(np.abs(end.centroids) < np.abs(start.centroids))
    assert start.mse > 1.3 * end.mse


@settings(max_examples=15, deadline=None)
@given(bits=st.integers(1, 4), d=st.sampled_from([None, 8, 16, 128]),
       init=st.sampled_from(["span", "uniform"]), moves=st.lists(st.sampled_from("nbr"), max_size=12))
def test_stepper_states_equal_lloyd_max_history(bits, d, init, moves):
    history = lloyd_max_history(bits, d, n_iter=20, init=init)
    stepper = experiments.LloydMaxStepper(bits=bits, d=d, init=init, n_iter=20)
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
    stepper = experiments.LloydMaxStepper(bits=3, n_iter=30)
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
        experiments.compute_lloyd_max_state(3, 61)
    with pytest.raises(ValueError, match="init"):
        experiments.compute_lloyd_max_state(3, 0, init="random")
    with pytest.raises(ValueError, match="bits"):
        experiments.compute_lloyd_max_state(0, 0)
    with pytest.raises(ValueError, match="d"):
        experiments.compute_lloyd_max_state(2, 0, d=1)


def _walk(widget):
    """Every widget inside ``widget`` (depth first)."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _shown_state(fig):
    """What the Lloyd-Max figure shows: the centroid dots (left) and the MSE curve (right)."""
    left, right = fig.axes[:2]
    dots = next(line for line in left.get_lines() if line.get_marker() == "o")
    mse_x, mse_y = line_data(right)[0]
    return np.asarray(dots.get_xdata()), mse_x, mse_y


def test_lloyd_max_app_buttons_and_settings_redraw_the_figure(shown_figures):
    stepper = experiments.LloydMaxStepper(bits=2, n_iter=30)
    app = lesson_app.lloyd_max_app(stepper)
    buttons = {w.description: w for w in _walk(app) if isinstance(w, ipywidgets.Button)}
    info = next(w for w in _walk(app) if isinstance(w, ipywidgets.HTML))
    history = lloyd_max_history(2, n_iter=30, init="span")

    def assert_shows(iteration, hist=history):
        dots, mse_x, mse_y = _shown_state(shown_figures.last)
        np.testing.assert_allclose(dots, hist[iteration].centroids)   # 2-bit levels all within +-4
        np.testing.assert_array_equal(mse_x, np.arange(iteration + 1))
        np.testing.assert_allclose(mse_y, [h.mse for h in hist[:iteration + 1]])
        assert f"iteration <b>{iteration}</b>" in info.value
        assert f"MSE {hist[iteration].mse:.5f}" in info.value

    assert_shows(0)
    for name, iteration in (("Next", 1), ("+10", 11), ("Back", 10), ("Run", 30), ("Reset", 0)):
        shown_figures.clear()
        buttons[name].click()
        assert_shows(iteration)
    # a new setting restarts at iteration 0 with that codebook
    buttons["Next"].click()
    slider = next(w for w in _walk(app) if isinstance(w, ipywidgets.IntSlider))
    slider.value = 1
    assert_shows(0, lloyd_max_history(1, n_iter=30, init="span"))
    law = next(w for w in _walk(app) if isinstance(w, ipywidgets.Dropdown) and w.description == "law")
    law.value = 8
    buttons["Run"].click()
    exact8 = lloyd_max_history(1, 8, n_iter=30, init="span")
    assert_shows(30, exact8)
    assert "d = 8" in shown_figures.last.axes[0].get_title()


def test_lloyd_max_figure_draws_the_state_it_is_given():
    fig, axes = plt.subplots(1, 2)
    state = experiments.compute_lloyd_max_state(3, 4, d=8)
    figures.draw_lloyd_max(axes, state)
    dots, mse_x, mse_y = _shown_state(fig)
    inside = np.abs(state.centroids) <= np.sqrt(8)
    np.testing.assert_allclose(dots, state.centroids[inside])
    np.testing.assert_allclose(mse_y, state.mse_history)
    dashed = [line.get_xdata()[0] for line in axes[0].get_lines() if line.get_linestyle() == "--"]
    np.testing.assert_allclose(sorted(dashed), state.boundaries[np.abs(state.boundaries) <= np.sqrt(8)])
    assert "iteration 4" in axes[0].get_title()


def test_mse_vs_bits_plots_the_table_it_is_given():
    b = np.arange(1, 5)
    lloyd = [lloyd_max_codebook(k).mse for k in b]
    table = {"bits": b, "Lloyd-Max": lloyd, "lower bound": 4.0 ** -b,
             "measured": [lloyd[0] * 1.01, lloyd[1] * 0.99]}
    ax = figures.draw_mse_vs_bits(None, table)
    assert ax.get_yscale() == "log"
    (x1, y1), (x2, y2), (x3, y3) = line_data(ax)
    np.testing.assert_allclose(y1, lloyd)
    np.testing.assert_allclose(y2, 4.0 ** -b)
    np.testing.assert_array_equal(x3, [1, 2])              # a shorter list belongs to the first bits
    ax2 = figures.draw_mse_vs_bits(None, table, normalized=True)
    np.testing.assert_allclose(line_data(ax2)[1][1], 1.0)  # the lower bound times 4^b


def test_codebook_laws_figure_draws_both_codebooks():
    ax = figures.draw_codebook_laws(None, 3, 8)
    ticks = [line.get_xdata() for line in ax.lines if line.get_marker() == "|"]
    assert len(ticks) == 2
    np.testing.assert_allclose(ticks[0], lloyd_max_codebook(3, 8).centroids)
    np.testing.assert_allclose(ticks[1], lloyd_max_codebook(3).centroids)
    # the exact law at d = 8 has lighter tails: its outer centroid sits closer to 0
    assert ticks[0][-1] < ticks[1][-1]


def assign_ok(samples, centroids):
    return np.searchsorted((centroids[:-1] + centroids[1:]) / 2, samples)


def test_assign_cells():
    assert_passes(checks.check_assign_cells, assign_ok)
    assert_fails(checks.check_assign_cells, lambda s, c: np.searchsorted(c, s), hint="midpoints")
    assert_fails(checks.check_assign_cells, lambda s, c: c[assign_ok(s, c)],
                 hint="not its value")


def lloyd_step_ok(samples, centroids):
    cells = assign_ok(samples, centroids)
    new = centroids.astype(float).copy()
    for k in range(centroids.size):
        if np.any(cells == k):
            new[k] = samples[cells == k].mean()
    return new


def test_lloyd_step():
    assert_passes(checks.check_lloyd_step, lloyd_step_ok)

    def nan_on_empty(s, c):
        cells = assign_ok(s, c)
        return np.array([s[cells == k].mean() for k in range(c.size)])

    def medians(s, c):
        cells = assign_ok(s, c)
        return np.array([np.median(s[cells == k]) if np.any(cells == k) else c[k]
                         for k in range(c.size)])

    assert_fails(checks.check_lloyd_step, nan_on_empty, hint="keep its old centroid")
    assert_fails(checks.check_lloyd_step, medians, hint="not the median")


def fit_ok(samples, bits, n_iter=100):
    c = np.linspace(samples.min(), samples.max(), 2 ** bits)
    for _ in range(n_iter):
        c = lloyd_step_ok(samples, c)
    return np.sort(c)


def test_fit_codebook():
    assert_passes(checks.check_fit_codebook, fit_ok)
    assert_fails(checks.check_fit_codebook, lambda s, b, n: fit_ok(s, b, 1), hint="converged")
    assert_fails(checks.check_fit_codebook, lambda s, b, n: fit_ok(s, b, n)[::-1], hint="ascending")


def uniform_mse_ok(step, bits):
    from scipy import integrate, stats

    n = 2 ** bits
    c = (np.arange(n) - (n - 1) / 2) * step
    edges = np.concatenate(([-np.inf], (c[:-1] + c[1:]) / 2, [np.inf]))
    return sum(integrate.quad(lambda t: (t - c[i]) ** 2 * stats.norm.pdf(t), edges[i],
                              edges[i + 1])[0] for i in range(n))


def test_uniform_codebook_mse():
    assert_passes(checks.check_uniform_codebook_mse, uniform_mse_ok)
    assert_fails(checks.check_uniform_codebook_mse, lambda step, bits: step ** 2 / 12,
                 hint="tails")


def compander_ok(bits):
    from scipy import stats

    n = 2 ** bits
    return math.sqrt(3) * stats.norm.ppf((np.arange(n) + 0.5) / n)


def test_compander_levels():
    from scipy import stats

    assert_passes(checks.check_compander_levels, compander_ok)
    # the oracle integrates phi**(1/3) numerically: it must agree with the closed form
    for bits in (1, 3, 5):
        np.testing.assert_allclose(checks._compander_oracle(bits), compander_ok(bits), atol=1e-6)
    data_quantiles = lambda b: stats.norm.ppf((np.arange(2 ** b) + 0.5) / 2 ** b)  # noqa: E731
    assert_fails(checks.check_compander_levels, data_quantiles, hint="data's own density")
    assert_fails(checks.check_compander_levels, lambda b: math.sqrt(3) * data_quantiles(b)[::-1],
                 hint="ascending")
    assert_fails(checks.check_compander_levels, lambda b: 3 * data_quantiles(b),
                 hint="not a variance")
    assert_fails(checks.check_compander_levels,
                 lambda b: math.sqrt(3) * stats.norm.ppf(np.arange(2 ** b) / 2 ** b),
                 hint="middle of its slice")
    # the closed form is never printed by a hint
    v = checks.check_compander_levels(data_quantiles)
    assert "sqrt(3)" not in v.message and "N(0, 3)" not in v.message
