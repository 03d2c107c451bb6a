"""Lesson 06: its experiments, figures, app and exercise checkers."""
import math

import numpy as np
import pytest
from checker_helpers import assert_fails, assert_passes

from turboquant_lab.codebooks import lloyd_max_codebook
from turboquant_lab.course.l06_random_signs import app as lesson_app
from turboquant_lab.course.l06_random_signs import checks, experiments, figures
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.walsh_hadamard import fwht


def test_inputs_are_unit_vectors_and_a_fixed_H_maps_the_structured_ones_to_spikes():
    d = 64
    for name in experiments.SIGN_INPUTS:
        assert np.linalg.norm(experiments.sign_demo_input(name, d)) == pytest.approx(1.0)
    np.testing.assert_allclose(fwht(experiments.sign_demo_input("constant", d)), np.eye(d)[0], atol=1e-12)
    np.testing.assert_allclose(fwht(experiments.sign_demo_input("Hadamard row", d)), np.eye(d)[experiments.HADAMARD_ROW],
                               atol=1e-12)
    result = experiments.compute_sign_demo("constant", "H", bits=2, d=d)
    assert result.max_over_mean == pytest.approx(d)
    with pytest.raises(ValueError, match="name must be one of"):
        experiments.sign_demo_input("spike", d)


@pytest.mark.parametrize("name", ["constant", "Hadamard row", "KV vector"])
def test_HD_outputs_have_mean_zero_and_variance_norm_squared_over_d_whatever_x(name):
    d = 16
    x = 3.0 * experiments.sign_demo_input(name, d)                 # ||x||^2 = 9
    y = experiments.sign_transform(x, "H D", seed=1, n_draws=40_000)
    var = y.var(axis=0)
    np.testing.assert_allclose(var, 9.0 / d, rtol=0.05)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=5 * np.sqrt(9.0 / d / 40_000))


def test_HD_variance_is_exactly_norm_squared_over_d_over_all_sign_patterns():
    d = 8
    x = experiments.sign_demo_input("constant", d)
    patterns = 1 - 2 * ((np.arange(2 ** d)[:, None] >> np.arange(d)) & 1)   # all 256 sign vectors
    y = fwht(patterns * x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose((y ** 2).mean(axis=0), 1.0 / d, rtol=1e-12)


@pytest.mark.parametrize("name", experiments.SIGN_INPUTS)
@pytest.mark.parametrize("bits", [1, 2, 3])
def test_second_sign_flip_leaves_the_error_unchanged_with_a_symmetric_codebook(name, bits):
    x = experiments.sign_demo_input(name, 64)
    one = experiments.quantization_error(experiments.sign_transform(x, "H D", seed=5, n_draws=50), bits)
    two = experiments.quantization_error(experiments.sign_transform(x, "D2 H D1", seed=5, n_draws=50), bits)
    np.testing.assert_array_equal(one, two)
    assert not np.allclose(experiments.sign_transform(x, "H D", seed=5), experiments.sign_transform(x, "D2 H D1", seed=5))


@pytest.mark.parametrize("transform", ["H", "H D", "D2 H D1"])
def test_e1_maps_to_plus_minus_one_over_sqrt_d(transform):
    d = 64
    y = experiments.sign_transform(experiments.sign_demo_input("e_1", d), transform, seed=3, n_draws=20)
    np.testing.assert_allclose(np.abs(y), 1 / np.sqrt(d), rtol=1e-12)
    assert np.all(np.abs(np.diff(experiments.quantization_error(y, 2))) < 1e-15)     # the same error every draw


def test_first_two_flip_draw_is_the_library_randomized_hadamard():
    x = experiments.sign_demo_input("KV vector", 64)
    np.testing.assert_allclose(experiments.sign_transform(x, "D2 H D1", seed=7),
                               RandomizedHadamard(64, seed=7).forward(x), atol=1e-12)


def test_transforms_keep_the_norm_and_have_the_right_shapes():
    x = experiments.sign_demo_input("random", 32)
    for transform in experiments.SIGN_TRANSFORMS:
        one = experiments.sign_transform(x, transform, seed=0)
        many = experiments.sign_transform(x, transform, seed=0, n_draws=4)
        assert one.shape == (32,) and many.shape == (4, 32)
        np.testing.assert_allclose(np.linalg.norm(many, axis=-1), 1.0)
        np.testing.assert_allclose(many[0], one)
    batch = experiments.sign_transform(np.stack([x, -x]), "H D", seed=0, n_draws=3)
    assert batch.shape == (3, 2, 32)
    np.testing.assert_allclose(batch[:, 1], -batch[:, 0])            # one sign draw per batch
    with pytest.raises(ValueError, match="transform must be one of"):
        experiments.sign_transform(x, "D H", seed=0)


def test_hd_blocks_one_block_is_HD_and_more_blocks_approach_the_beta_kurtosis():
    d = 64
    e1 = experiments.sign_demo_input("e_1", d)
    np.testing.assert_allclose(experiments.hd_blocks(e1, 1, seed=2, n_draws=5), experiments.sign_transform(e1, "H D", 2, 5))
    kurt = []
    for k in (1, 2, 3):
        t = np.sqrt(d) * experiments.hd_blocks(e1, k, seed=0, n_draws=3000)
        kurt.append(np.mean(t ** 4) / np.mean(t ** 2) ** 2)
    assert kurt[0] == pytest.approx(1.0)                     # +-1 only: as far from Beta as can be
    beta = 3 * d / (d + 2)
    assert abs(kurt[1] - beta) < 0.15 and abs(kurt[2] - beta) < 0.15


def test_quantization_error_matches_a_direct_computation():
    d, bits = 16, 2
    cb = lloyd_max_codebook(bits, d)
    y = np.full(d, cb.centroids[1] / np.sqrt(d))                 # every coordinate on a level
    assert experiments.quantization_error(y, bits) == pytest.approx(0.0, abs=1e-24)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((3, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    t = np.sqrt(d) * u
    nearest = cb.centroids[np.argmin(np.abs(t[..., None] - cb.centroids), axis=-1)]
    np.testing.assert_allclose(experiments.quantization_error(u, bits), np.sum((t - nearest) ** 2, -1) / d)


def test_random_hd_error_averages_to_the_codebook_mse_for_a_random_input():
    result = experiments.compute_sign_demo("random", "dense Haar", bits=2, seed=0, n_draws=2000)
    assert result.mean_mse == pytest.approx(result.codebook_mse, rel=0.05)


def test_collision_shared_rotation_keeps_distances_and_per_vector_signs_break_comparison():
    r = experiments.compute_collision([10, 2, 1], [9, 3, 1], bits=2, seed=0, n_draws=400)
    assert r["d"] == 4
    np.testing.assert_array_equal(r["a"], [10, 2, 1, 0])
    for mode in ("same WHT", "shared signs"):
        assert r["rotated_distance"][mode] == pytest.approx(r["distance"])
        assert r["agreement"][mode] > 0.9
    assert r["rotated_distance"]["per-vector signs"] > 5 * r["distance"]
    assert r["agreement"]["per-vector signs"] < 0.5
    assert abs(r["dot_estimate"]["per-vector signs"]) < 0.1 * r["dot"]
    assert r["dot_estimate"]["shared signs"] == pytest.approx(r["dot"], rel=0.1)
    assert set(r["agreement"]) == set(experiments.COLLISION_MODES)


def test_pad_to_power_of_two():
    np.testing.assert_array_equal(experiments.pad_to_power_of_two([1.0, 2.0, 3.0]), [1, 2, 3, 0])
    assert experiments.pad_to_power_of_two(np.ones(8)).shape == (8,)
    assert experiments.pad_to_power_of_two(np.ones((2, 5))).shape == (2, 8)


def test_sign_flip_app_builds_and_reacts():
    app = lesson_app.sign_flip_app()
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
    figures.draw_sign_bars(None, experiments.compute_sign_demo("KV vector", "D2 H D1", bits=2, n_draws=10))
    figures.draw_sign_histogram(None, experiments.sign_transform(experiments.sign_demo_input("constant", 64), "H D", 0, 50), 64,
                              label="H D")
    figures.draw_collision(None, experiments.compute_collision([10, 2, 1], [9, 3, 1], n_draws=10))


def test_spike_preimage():
    assert_passes(checks.check_spike_preimage, lambda d: np.full(d, 1 / math.sqrt(d)))
    assert_fails(checks.check_spike_preimage, lambda d: np.eye(d)[0], hint="spike already")
    assert_fails(checks.check_spike_preimage, lambda d: np.ones(d), hint="length")


def test_rht_forward():
    assert_passes(checks.check_rht_forward, lambda x, s1, s2: s2 * fwht(s1 * x))
    assert_fails(checks.check_rht_forward, lambda x, s1, s2: s1 * fwht(s2 * x), hint="before")
    assert_fails(checks.check_rht_forward, lambda x, s1, s2: fwht(s1 * x), hint="second flip")
    assert_fails(checks.check_rht_forward,
                 lambda x, s1, s2: s2 * fwht(s1 * x, normalize=False), hint="orthonormal")


def test_rht_inverse():
    assert_passes(checks.check_rht_inverse, lambda y, s1, s2: s1 * fwht(s2 * y))
    assert_fails(checks.check_rht_inverse, lambda y, s1, s2: s2 * fwht(s1 * y),
                 hint="reverse order")


def flips_ok(x, bits, seed):
    d = x.shape[-1]
    rh = RandomizedHadamard(d, seed=seed)
    cb = lloyd_max_codebook(bits, d)
    u = x / np.linalg.norm(x, axis=-1, keepdims=True)
    t1 = math.sqrt(d) * fwht(rh.signs1 * u)
    t2 = rh.signs2 * t1
    return tuple(np.mean((t - cb.dequantize(cb.quantize(t))) ** 2) for t in (t1, t2))


def test_second_flip():
    assert_passes(checks.check_second_flip, flips_ok)

    def unscaled(x, bits, seed):
        return tuple(m / x.shape[-1] for m in flips_ok(x, bits, seed))

    assert_fails(checks.check_second_flip, unscaled, hint="sqrt(d)")
    assert_fails(checks.check_second_flip, lambda x, b, s: flips_ok(x, b, s)[0],
                 hint="return mse_one, mse_two")
