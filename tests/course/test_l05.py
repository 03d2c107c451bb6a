"""Lesson 05: its experiments, figures, app and exercise checkers."""
import math

import numpy as np
import pytest
from app_helpers import line_data, texts
from checker_helpers import assert_fails, assert_passes
from hypothesis import given, settings
from hypothesis import strategies as st

from turboquant_lab.course.l05_walsh_hadamard_transform import app as lesson_app
from turboquant_lab.course.l05_walsh_hadamard_transform import checks, experiments, figures
from turboquant_lab.walsh_hadamard import fwht, fwht_stages, hadamard


@pytest.mark.parametrize("d", [2, 4, 8, 64])
def test_pairs_of_stage_s_have_stride_two_to_the_s_and_cover_every_coordinate(d):
    for s in range(d.bit_length() - 1):
        pairs = experiments.butterfly_pairs(d, s)
        assert len(pairs) == d // 2
        assert all(j - i == 2 ** s for i, j in pairs)
        assert sorted(k for p in pairs for k in p) == list(range(d))


def test_pairs_reject_a_stage_out_of_range_and_a_bad_d():
    with pytest.raises(ValueError, match="stage"):
        experiments.butterfly_pairs(8, 3)
    with pytest.raises(ValueError, match="power of two"):
        experiments.butterfly_pairs(6, 0)


def test_stepper_state_after_each_stage_equals_fwht_stages_for_the_essay_input():
    stepper = experiments.ButterflyStepper()
    reference = fwht_stages(np.eye(8)[0])
    np.testing.assert_array_equal(stepper.values, reference[0])
    for k in range(1, 4):
        state = stepper.next()
        assert stepper.stage == state.stage == k
        np.testing.assert_array_equal(stepper.values, reference[k])
        assert state.nonzero == 2 ** k          # information spreads: 2^s coordinates nonzero
        assert state.stride == 2 ** (k - 1)     # stage k is the 0-based butterfly stage k - 1
        assert state.pairs == experiments.butterfly_pairs(8, k - 1)


@settings(max_examples=25, deadline=None)
@given(log_d=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_stepper_matches_fwht_stages_on_random_input_and_ends_at_hadamard_product(log_d, seed):
    d = 2 ** log_d
    x = np.random.default_rng(seed).integers(-9, 10, size=d).astype(np.float64)
    stepper = experiments.ButterflyStepper(x)
    reference = fwht_stages(x)
    for k in range(1, log_d + 1):
        np.testing.assert_array_equal(stepper.next().values, reference[k])
    np.testing.assert_array_equal(stepper.values, hadamard(d) @ x)   # integers: exact


def test_back_returns_to_the_previous_state_and_both_ends_are_sticky():
    stepper = experiments.ButterflyStepper()
    assert stepper.back().stage == 0                 # Back at the start stays there
    states = [stepper.state] + [stepper.next() for _ in range(3)]
    assert stepper.next().stage == 3                 # Next at the end stays there
    for k in (2, 1, 0):
        state = stepper.back()
        assert state.stage == k
        np.testing.assert_array_equal(state.values, states[k].values)
        assert state.pairs == states[k].pairs
    assert len(stepper.state.history) == 1


def test_reset_with_a_new_input_starts_from_stage_zero():
    stepper = experiments.ButterflyStepper()
    stepper.next()
    state = stepper.reset(np.arange(8.0))
    assert state.stage == 0
    np.testing.assert_array_equal(stepper.next().values, fwht_stages(np.arange(8.0))[1])


def test_compute_butterfly_rejects_bad_input():
    with pytest.raises(ValueError, match="power of two"):
        experiments.compute_butterfly(np.ones(6), 1)
    with pytest.raises(ValueError, match="stage"):
        experiments.compute_butterfly(np.ones(8), 4)
    with pytest.raises(ValueError, match="one vector"):
        experiments.compute_butterfly(np.ones((2, 8)), 1)


def test_caption_says_where_the_information_is():
    stepper = experiments.ButterflyStepper()
    assert "coordinate 0" in experiments.butterfly_caption(stepper.state)
    assert "4 of 8 coordinates nonzero" in experiments.butterfly_caption(stepper.next() and stepper.next())


def _node_values(ax):
    """The numbers written in the butterfly diagram's nodes, column by column (stage 0, 1, ...)."""
    return [t.get_text() for t in ax.texts]


def test_butterfly_app_buttons_and_menu_redraw_the_diagram(shown_figures):
    app = lesson_app.butterfly_app()
    choice, back, nxt = app.children[0].children
    assert "after 0 of 3 stages: 1 of 8 coordinates nonzero" in texts(shown_figures.last)
    nxt.click()
    nxt.click()
    fig = shown_figures.last
    assert "after 2 of 3 stages: 4 of 8 coordinates nonzero" in texts(fig)
    # the nodes drawn so far: input, stage 1, stage 2 (8 numbers each) = fwht_stages of e_0
    expected = [v for stage in fwht_stages(np.eye(8)[0])[:3] for v in stage]
    assert _node_values(fig.axes[0]) == [str(int(v)) for v in expected]
    back.click()
    assert "after 1 of 3 stages: 2 of 8 coordinates nonzero" in texts(shown_figures.last)
    assert "Stage 1 of 3" in app.children[1].value
    choice.value = "[1, 1, ..., 1]"                 # a new input starts again at stage 0
    assert "Stage 0 of 3" in app.children[1].value
    for _ in range(3):
        nxt.click()
    last = shown_figures.last
    assert "after 3 of 3 stages: 1 of 8 coordinates nonzero" in texts(last)   # the spike
    assert _node_values(last.axes[0])[-8:] == ["8"] + ["0"] * 7


def test_timings_cover_every_transform_and_they_agree():
    def library_butterfly(x):
        return fwht(x, strategy="butterfly")

    t = experiments.time_transforms({"butterfly": library_butterfly, "fwht": fwht}, [16, 64, 256], batch=8,
                                    repeat=1, dense_up_to=64)
    assert list(t["seconds"]) == ["dense", "butterfly", "fwht"]
    assert all(v.shape == (3,) for v in t["seconds"].values())
    assert np.isnan(t["seconds"]["dense"][2]) and not np.isnan(t["seconds"]["dense"][:2]).any()
    assert t["max_abs_diff"] < 1e-12
    # a transform that computes something else shows up in max_abs_diff
    wrong = experiments.time_transforms({"unscaled": lambda x: fwht(x, normalize=False)}, [16], batch=4,
                                        repeat=1)
    assert wrong["max_abs_diff"] > 1


def test_draw_scaling_plots_the_timings_and_the_two_slopes():
    timings = {"dims": np.array([16, 32, 64]),
               "seconds": {"dense": np.array([1e-6, 4e-6, np.nan]), "mine": np.array([2e-6, 5e-6, 12e-6]),
                           "lib": np.array([1e-6, 2e-6, 4e-6])}}
    ax = figures.draw_scaling(None, timings)
    lines = line_data(ax)
    np.testing.assert_allclose(lines[0][1], [1, 4, np.nan])          # microseconds
    np.testing.assert_allclose(lines[1][1], [2, 5, 12])
    np.testing.assert_allclose(lines[2][1], [1, 2, 4])
    np.testing.assert_allclose(lines[3][1], [1, 4, 16])               # d^2 through the last dense point
    d = np.array([16, 32, 64])
    np.testing.assert_allclose(lines[4][1], 12 * d * np.log2(d) / (64 * 6))   # d log d through "mine"


def test_draw_butterfly_and_hadamard_grid_show_their_data():
    stepper = experiments.ButterflyStepper(np.arange(8.0))
    ax = figures.draw_butterfly(None, stepper.next())
    assert _node_values(ax) == [str(v) for v in range(8)] + [
        str(int(v)) for v in fwht_stages(np.arange(8.0))[1]]
    ax = figures.draw_hadamard_grid(None, hadamard(8))
    np.testing.assert_array_equal(ax.images[0].get_array(), hadamard(8))
    assert [t.get_text() for t in ax.texts][:8] == ["+"] * 8        # row 0 of H is all +1


def stage_ok(x, h):
    y = x.copy()
    for j in range(0, x.size, 2 * h):
        for i in range(j, j + h):
            y[i], y[i + h] = x[i] + x[i + h], x[i] - x[i + h]
    return y


def test_butterfly_stage():
    assert_passes(checks.check_butterfly_stage, stage_ok)

    def swapped(x, h):
        y = stage_ok(x, h)
        for j in range(0, x.size, 2 * h):
            y[j + h:j + 2 * h] *= -1
        return y

    def adjacent(x, h):
        return stage_ok(x, 1)

    def in_place(x, h):
        x[:] = stage_ok(x, h)

    assert_fails(checks.check_butterfly_stage, swapped, hint="not b - a")
    assert_fails(checks.check_butterfly_stage, adjacent, hint="i + h")
    assert_fails(checks.check_butterfly_stage, in_place, hint="out of place")


def fwht_ok(x):
    y = x.astype(float)
    h = 1
    while h < y.size:
        y = stage_ok(y, h)
        h *= 2
    return y / math.sqrt(y.size)


def test_fwht():
    assert_passes(checks.check_fwht, fwht_ok)
    assert_fails(checks.check_fwht, lambda x: fwht_ok(x) * math.sqrt(x.size), hint="sqrt(d)")

    def mutates(x):
        y = fwht_ok(x)
        x[:] = 0
        return y

    assert_fails(checks.check_fwht, mutates, hint="copy")


def fwht_inplace_ok(x):
    d = x.size
    h = 1
    while h < d:
        for j in range(0, d, 2 * h):
            for i in range(j, j + h):
                a, b = x[i], x[i + h]
                x[i], x[i + h] = a + b, a - b
        h *= 2
    x /= math.sqrt(d)


def test_fwht_inplace():
    assert_passes(checks.check_fwht_inplace, fwht_inplace_ok)

    def overwrite(x):
        d = x.size
        h = 1
        while h < d:
            for j in range(0, d, 2 * h):
                for i in range(j, j + h):
                    x[i] = x[i] + x[i + h]
                    x[i + h] = x[i] - x[i + h]
            h *= 2
        x /= math.sqrt(d)

    def rebinds(x):
        x = fwht_ok(x)
        return x

    assert_fails(checks.check_fwht_inplace, overwrite, hint="overwritten")
    assert_fails(checks.check_fwht_inplace, rebinds, hint="only gives")


def kron_ok(x, d1):
    d2 = x.shape[-1] // d1
    table = x.reshape(*x.shape[:-1], d1, d2)
    return (hadamard(d1) @ table @ hadamard(d2).T).reshape(x.shape)


def test_kron_fwht():
    assert_passes(checks.check_kron_fwht, kron_ok)

    def output_transposed(x, d1):
        d2 = x.shape[-1] // d1
        table = x.reshape(*x.shape[:-1], d1, d2)
        return (hadamard(d2) @ np.swapaxes(table, -1, -2) @ hadamard(d1).T).reshape(x.shape)

    def one_factor(x, d1):
        return (hadamard(d1) @ x.reshape(*x.shape[:-1], d1, -1)).reshape(x.shape)

    assert_fails(checks.check_kron_fwht, output_transposed, hint="wrong order")
    assert_fails(checks.check_kron_fwht, one_factor, hint="H_d1 only")
    assert_fails(checks.check_kron_fwht, lambda x, d1: kron_ok(x, d1) / math.sqrt(x.shape[-1]),
                 hint="no 1/sqrt(d)")


def test_checker_hints_guide_without_giving_the_code():
    def wrong_pairs(x, h):
        return stage_ok(x, 1) if h > 1 else -stage_ok(x, h)

    verdict = checks.check_butterfly_stage(wrong_pairs)
    assert not verdict and "a + b" not in verdict.hint and "y[i]" not in verdict.hint


def test_butterfly_stage_that_also_mutates_its_input():
    def mutates_and_returns(x, h):
        x[:] = stage_ok(x, h)
        return x

    assert_fails(checks.check_butterfly_stage, mutates_and_returns, hint="out of place")
