"""Lessons 05-06: the butterfly stepper, the Hadamard grid, timings, and the random-sign demos."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from turboquant_lab import plots  # noqa: E402
from turboquant_lab.codebooks import lloyd_max_codebook  # noqa: E402
from turboquant_lab.hadamard import fwht, fwht_stages, hadamard  # noqa: E402
from turboquant_lab.rotation import RandomizedHadamard  # noqa: E402
from turboquant_lab.widgets import (  # noqa: E402
    COLLISION_MODES,
    HADAMARD_ROW,
    SIGN_INPUTS,
    SIGN_TRANSFORMS,
    ButterflyStepper,
    butterfly_app,
    butterfly_caption,
    butterfly_pairs,
    compute_butterfly,
    compute_collision,
    compute_sign_demo,
    hd_blocks,
    pad_to_power_of_two,
    quantization_error,
    sign_demo_input,
    sign_flip_app,
    sign_transform,
    time_dense_vs_fwht,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- lesson 05


@pytest.mark.parametrize("d", [2, 4, 8, 64])
def test_pairs_of_stage_s_have_stride_two_to_the_s_and_cover_every_coordinate(d):
    for s in range(d.bit_length() - 1):
        pairs = butterfly_pairs(d, s)
        assert len(pairs) == d // 2
        assert all(j - i == 2 ** s for i, j in pairs)
        assert sorted(k for p in pairs for k in p) == list(range(d))


def test_pairs_reject_a_stage_out_of_range_and_a_bad_d():
    with pytest.raises(ValueError, match="stage"):
        butterfly_pairs(8, 3)
    with pytest.raises(ValueError, match="power of two"):
        butterfly_pairs(6, 0)


def test_stepper_state_after_each_stage_equals_fwht_stages_for_the_essay_input():
    stepper = ButterflyStepper()
    reference = fwht_stages(np.eye(8)[0])
    np.testing.assert_array_equal(stepper.values, reference[0])
    for k in range(1, 4):
        state = stepper.next()
        assert stepper.stage == state.stage == k
        np.testing.assert_array_equal(stepper.values, reference[k])
        assert state.nonzero == 2 ** k          # information spreads: 2^s coordinates nonzero
        assert state.stride == 2 ** (k - 1)     # stage k is the 0-based butterfly stage k - 1
        assert state.pairs == butterfly_pairs(8, k - 1)


@settings(max_examples=25, deadline=None)
@given(log_d=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_stepper_matches_fwht_stages_on_random_input_and_ends_at_hadamard_product(log_d, seed):
    d = 2 ** log_d
    x = np.random.default_rng(seed).integers(-9, 10, size=d).astype(np.float64)
    stepper = ButterflyStepper(x)
    reference = fwht_stages(x)
    for k in range(1, log_d + 1):
        np.testing.assert_array_equal(stepper.next().values, reference[k])
    np.testing.assert_array_equal(stepper.values, hadamard(d) @ x)   # integers: exact


def test_back_returns_to_the_previous_state_and_both_ends_are_sticky():
    stepper = ButterflyStepper()
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
    stepper = ButterflyStepper()
    stepper.next()
    state = stepper.reset(np.arange(8.0))
    assert state.stage == 0
    np.testing.assert_array_equal(stepper.next().values, fwht_stages(np.arange(8.0))[1])


def test_compute_butterfly_rejects_bad_input():
    with pytest.raises(ValueError, match="power of two"):
        compute_butterfly(np.ones(6), 1)
    with pytest.raises(ValueError, match="stage"):
        compute_butterfly(np.ones(8), 4)
    with pytest.raises(ValueError, match="one vector"):
        compute_butterfly(np.ones((2, 8)), 1)


def test_caption_says_where_the_information_is():
    stepper = ButterflyStepper()
    assert "coordinate 0" in butterfly_caption(stepper.state)
    assert "4 of 8 coordinates nonzero" in butterfly_caption(stepper.next() and stepper.next())


def test_butterfly_app_builds_and_its_buttons_move_the_stepper():
    app = butterfly_app()
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
    t = time_dense_vs_fwht([16, 64], batch=8, repeat=1)
    assert t["dense"].shape == t["fwht"].shape == (2,)
    assert np.all(t["dense"] > 0) and np.all(t["fwht"] > 0)
    assert t["max_abs_diff"] < 1e-5


def test_lesson_05_draw_functions_run():
    stepper = ButterflyStepper()
    for _ in range(4):
        plots.draw_butterfly(None, stepper.state)
        stepper.next()
    plots.draw_hadamard_grid(None, hadamard(8))
    plots.draw_hadamard_grid(None, hadamard(32))
    plots.draw_scaling(None, {"dims": np.array([16, 32, 64]), "dense": np.array([1e-6, 4e-6, 16e-6]),
                              "fwht": np.array([1e-6, 2e-6, 4e-6])})


# --------------------------------------------------------------------------- lesson 06


def test_inputs_are_unit_vectors_and_a_fixed_H_maps_the_structured_ones_to_spikes():
    d = 64
    for name in SIGN_INPUTS:
        assert np.linalg.norm(sign_demo_input(name, d)) == pytest.approx(1.0)
    np.testing.assert_allclose(fwht(sign_demo_input("constant", d)), np.eye(d)[0], atol=1e-12)
    np.testing.assert_allclose(fwht(sign_demo_input("Hadamard row", d)), np.eye(d)[HADAMARD_ROW],
                               atol=1e-12)
    result = compute_sign_demo("constant", "H", bits=2, d=d)
    assert result.max_over_mean == pytest.approx(d)
    with pytest.raises(ValueError, match="name must be one of"):
        sign_demo_input("spike", d)


@pytest.mark.parametrize("name", ["constant", "Hadamard row", "KV vector"])
def test_HD_outputs_have_mean_zero_and_variance_norm_squared_over_d_whatever_x(name):
    d = 16
    x = 3.0 * sign_demo_input(name, d)                 # ||x||^2 = 9
    y = sign_transform(x, "H D", seed=1, n_draws=40_000)
    var = y.var(axis=0)
    np.testing.assert_allclose(var, 9.0 / d, rtol=0.05)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=5 * np.sqrt(9.0 / d / 40_000))


def test_HD_variance_is_exactly_norm_squared_over_d_over_all_sign_patterns():
    d = 8
    x = sign_demo_input("constant", d)
    patterns = 1 - 2 * ((np.arange(2 ** d)[:, None] >> np.arange(d)) & 1)   # all 256 sign vectors
    y = fwht(patterns * x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose((y ** 2).mean(axis=0), 1.0 / d, rtol=1e-12)


@pytest.mark.parametrize("name", SIGN_INPUTS)
@pytest.mark.parametrize("bits", [1, 2, 3])
def test_second_sign_flip_leaves_the_error_unchanged_with_a_symmetric_codebook(name, bits):
    x = sign_demo_input(name, 64)
    one = quantization_error(sign_transform(x, "H D", seed=5, n_draws=50), bits)
    two = quantization_error(sign_transform(x, "D2 H D1", seed=5, n_draws=50), bits)
    np.testing.assert_array_equal(one, two)
    assert not np.allclose(sign_transform(x, "H D", seed=5), sign_transform(x, "D2 H D1", seed=5))


@pytest.mark.parametrize("transform", ["H", "H D", "D2 H D1"])
def test_e1_maps_to_plus_minus_one_over_sqrt_d(transform):
    d = 64
    y = sign_transform(sign_demo_input("e_1", d), transform, seed=3, n_draws=20)
    np.testing.assert_allclose(np.abs(y), 1 / np.sqrt(d), rtol=1e-12)
    assert np.all(np.abs(np.diff(quantization_error(y, 2))) < 1e-15)     # the same error every draw


def test_first_two_flip_draw_is_the_library_randomized_hadamard():
    x = sign_demo_input("KV vector", 64)
    np.testing.assert_allclose(sign_transform(x, "D2 H D1", seed=7),
                               RandomizedHadamard(64, seed=7).forward(x), atol=1e-12)


def test_transforms_keep_the_norm_and_have_the_right_shapes():
    x = sign_demo_input("random", 32)
    for transform in SIGN_TRANSFORMS:
        one = sign_transform(x, transform, seed=0)
        many = sign_transform(x, transform, seed=0, n_draws=4)
        assert one.shape == (32,) and many.shape == (4, 32)
        np.testing.assert_allclose(np.linalg.norm(many, axis=-1), 1.0)
        np.testing.assert_allclose(many[0], one)
    batch = sign_transform(np.stack([x, -x]), "H D", seed=0, n_draws=3)
    assert batch.shape == (3, 2, 32)
    np.testing.assert_allclose(batch[:, 1], -batch[:, 0])            # one sign draw per batch
    with pytest.raises(ValueError, match="transform must be one of"):
        sign_transform(x, "D H", seed=0)


def test_hd_blocks_one_block_is_HD_and_more_blocks_approach_the_beta_kurtosis():
    d = 64
    e1 = sign_demo_input("e_1", d)
    np.testing.assert_allclose(hd_blocks(e1, 1, seed=2, n_draws=5), sign_transform(e1, "H D", 2, 5))
    kurt = []
    for k in (1, 2, 3):
        t = np.sqrt(d) * hd_blocks(e1, k, seed=0, n_draws=3000)
        kurt.append(np.mean(t ** 4) / np.mean(t ** 2) ** 2)
    assert kurt[0] == pytest.approx(1.0)                     # +-1 only: as far from Beta as can be
    beta = 3 * d / (d + 2)
    assert abs(kurt[1] - beta) < 0.15 and abs(kurt[2] - beta) < 0.15


def test_quantization_error_matches_a_direct_computation():
    d, bits = 16, 2
    cb = lloyd_max_codebook(bits, d)
    y = np.full(d, cb.centroids[1] / np.sqrt(d))                 # every coordinate on a level
    assert quantization_error(y, bits) == pytest.approx(0.0, abs=1e-24)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((3, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    t = np.sqrt(d) * u
    nearest = cb.centroids[np.argmin(np.abs(t[..., None] - cb.centroids), axis=-1)]
    np.testing.assert_allclose(quantization_error(u, bits), np.sum((t - nearest) ** 2, -1) / d)


def test_random_hd_error_averages_to_the_codebook_mse_for_a_random_input():
    result = compute_sign_demo("random", "dense Haar", bits=2, seed=0, n_draws=2000)
    assert result.mean_mse == pytest.approx(result.codebook_mse, rel=0.05)


def test_collision_shared_rotation_keeps_distances_and_per_vector_signs_break_comparison():
    r = compute_collision([10, 2, 1], [9, 3, 1], bits=2, seed=0, n_draws=400)
    assert r["d"] == 4
    np.testing.assert_array_equal(r["a"], [10, 2, 1, 0])
    for mode in ("same WHT", "shared signs"):
        assert r["rotated_distance"][mode] == pytest.approx(r["distance"])
        assert r["agreement"][mode] > 0.9
    assert r["rotated_distance"]["per-vector signs"] > 5 * r["distance"]
    assert r["agreement"]["per-vector signs"] < 0.5
    assert abs(r["dot_estimate"]["per-vector signs"]) < 0.1 * r["dot"]
    assert r["dot_estimate"]["shared signs"] == pytest.approx(r["dot"], rel=0.1)
    assert set(r["agreement"]) == set(COLLISION_MODES)


def test_pad_to_power_of_two():
    np.testing.assert_array_equal(pad_to_power_of_two([1.0, 2.0, 3.0]), [1, 2, 3, 0])
    assert pad_to_power_of_two(np.ones(8)).shape == (8,)
    assert pad_to_power_of_two(np.ones((2, 5))).shape == (2, 8)


def test_sign_flip_app_builds_and_reacts():
    app = sign_flip_app()
    (name, bits, seed), transform = app.children[0].children, app.children[1]
    first = app.shown["result"]
    assert (first.input_name, first.transform, first.bits) == ("constant", "H", 2)
    assert first.max_over_mean == pytest.approx(64.0)                 # a fixed H makes a spike
    transform.value = "D2 H D1"
    assert app.shown["result"].max_over_mean < 10                     # the signs spread it
    name.value = "e_1"
    bits.value = 3
    seed.value = 4
    shown = app.shown["result"]
    assert (shown.input_name, shown.transform, shown.bits, shown.seed) == ("e_1", "D2 H D1", 3, 4)
    np.testing.assert_allclose(np.abs(shown.y), 1 / 8, rtol=1e-12)
    assert shown.mse == pytest.approx(shown.mean_mse)                 # e_1: the same error every draw


def test_lesson_06_draw_functions_run():
    plots.draw_sign_bars(None, compute_sign_demo("KV vector", "D2 H D1", bits=2, n_draws=10))
    plots.draw_sign_histogram(None, sign_transform(sign_demo_input("constant", 64), "H D", 0, 50), 64,
                              label="H D")
    plots.draw_collision(None, compute_collision([10, 2, 1], [9, 3, 1], n_draws=10))
