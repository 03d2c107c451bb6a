"""Lesson 05: its experiments, figures, app and exercise checkers."""
import math

import numpy as np
import pytest
from checker_helpers import assert_fails, assert_passes
from hypothesis import given, settings
from hypothesis import strategies as st

from turboquant_lab.course.l05_walsh_hadamard_transform import app as lesson_app
from turboquant_lab.course.l05_walsh_hadamard_transform import checks, experiments, figures
from turboquant_lab.walsh_hadamard import fwht_stages, hadamard


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


def test_butterfly_app_builds_and_its_buttons_move_the_stepper():
    app = lesson_app.butterfly_app()
    choice, back, nxt = app.children[0].children
    nxt.click()
    nxt.click()
    assert app.stepper.stage == 2
    back.click()
    assert app.stepper.stage == 1
    assert "Stage 1 of 3" in app.children[1].value
    choice.value = "[0, 1, ..., d-1]"
    assert app.stepper.stage == 0
    np.testing.assert_array_equal(app.stepper.values, np.arange(8.0))


def test_timings_measure_two_transforms_that_agree():
    t = experiments.time_dense_vs_fwht([16, 64], batch=8, repeat=1)
    assert t["dense"].shape == t["fwht"].shape == (2,)
    assert np.all(t["dense"] > 0) and np.all(t["fwht"] > 0)
    assert t["max_abs_diff"] < 1e-5


def test_lesson_05_draw_functions_run():
    stepper = experiments.ButterflyStepper()
    for _ in range(4):
        figures.draw_butterfly(None, stepper.state)
        stepper.next()
    figures.draw_hadamard_grid(None, hadamard(8))
    figures.draw_hadamard_grid(None, hadamard(32))
    figures.draw_scaling(None, {"dims": np.array([16, 32, 64]), "dense": np.array([1e-6, 4e-6, 16e-6]),
                              "fwht": np.array([1e-6, 2e-6, 4e-6])})


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


def sylvester_ok(n):
    if n == 1:
        return np.ones((1, 1))
    h = sylvester_ok(n // 2)
    return np.block([[h, h], [h, -h]])


def test_sylvester():
    assert_passes(checks.check_sylvester, sylvester_ok)

    def wrong_corner(n):
        if n == 1:
            return np.ones((1, 1))
        h = wrong_corner(n // 2)
        return np.block([[h, -h], [h, h]])

    assert_fails(checks.check_sylvester, wrong_corner, hint="bottom-right")
    assert_fails(checks.check_sylvester, lambda n: sylvester_ok(n) / math.sqrt(n), hint="+1 and -1")


def test_butterfly_stage_that_also_mutates_its_input():
    def mutates_and_returns(x, h):
        x[:] = stage_ok(x, h)
        return x

    assert_fails(checks.check_butterfly_stage, mutates_and_returns, hint="out of place")
