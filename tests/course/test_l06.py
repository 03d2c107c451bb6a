"""Lesson 06: its experiments, figures, app and exercise checkers."""
import math

import numpy as np
import pytest
from app_helpers import bar_heights, line_data, texts
from checker_helpers import assert_fails, assert_passes
from scipy import stats

from turboquant_lab.codebooks import lloyd_max_codebook, unit_coordinate_pdf
from turboquant_lab.course.l06_random_signs import app as lesson_app
from turboquant_lab.course.l06_random_signs import checks, experiments, figures
from turboquant_lab.data import make_kv_vectors
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


def test_dense_haar_of_one_vector_has_the_law_of_a_full_rotation():
    d = 16
    x = 2.0 * experiments.sign_demo_input("KV vector", d)
    direct = experiments.sign_transform(x, "dense Haar", seed=1, n_draws=3000)      # no QR: g / ||g||
    via_qr = experiments.sign_transform(np.stack([x, x]), "dense Haar", seed=2, n_draws=300)[:, 0]
    np.testing.assert_allclose(np.linalg.norm(direct, axis=1), 2.0)
    assert stats.ks_2samp(direct[:, 3], via_qr[:, 3]).pvalue > 0.01
    assert stats.kstest(direct[:, 0] / 2.0, lambda v: stats.beta.cdf((v + 1) / 2, (d - 1) / 2, (d - 1) / 2)).pvalue > 0.01


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


def test_collision_codes_agree_under_a_shared_rotation_and_every_mode_decodes_equally_well():
    r = experiments.compute_collision([10, 2, 1], [9, 3, 1], bits=2, seed=0, n_draws=400)
    assert r["d"] == 4
    np.testing.assert_array_equal(r["a"], [10, 2, 1, 0])
    assert set(r["agreement"]) == set(experiments.COLLISION_MODES)
    for mode in ("same WHT", "shared signs"):
        assert r["agreement"][mode] > 0.9
    assert r["agreement"]["per-vector signs"] < 0.5
    for mode in experiments.COLLISION_MODES:                       # decoded first: all fine
        assert r["dot_decoded"][mode] == pytest.approx(r["dot"], rel=0.1)
    # a query can be scored in the rotated frame only when the frames agree
    for mode in ("same WHT", "shared signs"):
        assert r["dot_rotated"][mode] == pytest.approx(r["dot_decoded"][mode], rel=1e-12)
    assert abs(r["dot_rotated"]["per-vector signs"]) < 0.1 * r["dot"]


def test_collision_decoding_undoes_each_rotation_and_errors_do_not_depend_on_the_mode():
    a = make_kv_vectors(1, 64, seed=0)[0].astype(np.float64)
    b = a + 0.3 * np.random.default_rng(1).standard_normal(64)
    r = experiments.compute_collision(a, b, bits=8, seed=3, n_draws=50)     # 8 bits: nearly lossless
    for mode in experiments.COLLISION_MODES:
        assert r["error"][mode] < 0.01
        assert r["dot_decoded"][mode] == pytest.approx(r["dot"], rel=1e-3)
    r = experiments.compute_collision(a, b, bits=2, seed=3, n_draws=300)
    errors = np.array(list(r["error"].values()))
    assert np.ptp(errors) < 0.1 * errors.mean()
    shared_rh = RandomizedHadamard(64, seed=0)
    assert shared_rh.forward(a) @ shared_rh.forward(b) == pytest.approx(a @ b)   # why one frame can score


def test_pad_to_power_of_two():
    np.testing.assert_array_equal(experiments.pad_to_power_of_two([1.0, 2.0, 3.0]), [1, 2, 3, 0])
    assert experiments.pad_to_power_of_two(np.ones(8)).shape == (8,)
    assert experiments.pad_to_power_of_two(np.ones((2, 5))).shape == (2, 8)


def test_sign_flip_app_redraws_what_its_controls_select(shown_figures, capsys):
    app = lesson_app.sign_flip_app()
    (name, bits, seed), transform = app.children[0].children, app.children[1]
    fig = shown_figures.last
    first = app.shown["result"]
    assert (first.input_name, first.transform, first.bits) == ("constant", "H", 2)
    np.testing.assert_allclose(bar_heights(fig.axes[0]), fwht(experiments.sign_demo_input("constant", 64)))
    assert "max/mean 64.0" in texts(fig)                                  # a fixed H makes a spike
    transform.value = "D2 H D1"
    fig = shown_figures.last
    shown = app.shown["result"]
    np.testing.assert_allclose(bar_heights(fig.axes[0]), shown.y)
    np.testing.assert_allclose(shown.y, RandomizedHadamard(64, seed=0).forward(shown.x), atol=1e-12)
    assert shown.max_over_mean < 10                                       # the signs spread it
    name.value = "e_1"
    bits.value = 3
    seed.value = 4
    fig = shown_figures.last
    np.testing.assert_allclose(np.abs(bar_heights(fig.axes[0])), 1 / 8, rtol=1e-12)
    levels = sorted({line.get_ydata()[0] for line in fig.axes[0].get_lines()})
    np.testing.assert_allclose(levels, lloyd_max_codebook(3, 64).centroids / 8)   # 8 dashed 3-bit levels
    assert "'e_1'" in texts(fig) and "3-bit levels" in texts(fig)
    out = capsys.readouterr().out.strip().splitlines()[-1]
    shown = app.shown["result"]
    assert f"error of this draw {shown.mse:.4f}, mean over 200 draws {shown.mean_mse:.4f}" in out
    assert shown.mse == pytest.approx(shown.mean_mse)                      # e_1: the same error every draw


def test_lesson_06_figures_show_their_data():
    demo = experiments.compute_sign_demo("KV vector", "D2 H D1", bits=2, n_draws=10)
    ax = figures.draw_sign_bars(None, demo)
    np.testing.assert_allclose(bar_heights(ax), demo.y)
    samples = experiments.sign_transform(experiments.sign_demo_input("random", 64), "H D", 0, 200)
    ax = figures.draw_sign_histogram(None, samples, 64, label="H D")
    (polygon,) = ax.patches                                                  # a "stepfilled" histogram
    px, py = polygon.get_xy().T
    area = 0.5 * abs(np.dot(px, np.roll(py, 1)) - np.dot(py, np.roll(px, 1)))   # shoelace formula
    assert area == pytest.approx(1.0, abs=1e-6)                              # a density
    grid, pdf = line_data(ax)[0]
    np.testing.assert_allclose(pdf, unit_coordinate_pdf(grid, 64))
    r = experiments.compute_collision([10, 2, 1], [9, 3, 1], n_draws=10)
    axes = figures.draw_collision(None, r)
    for ax, mode in zip(axes, experiments.COLLISION_MODES):
        ya, yb = r["rotated"][mode]
        np.testing.assert_allclose(bar_heights(ax), np.concatenate([ya, yb]))
        ca, cb = r["codes"][mode]
        assert [t.get_text() for t in ax.texts] == [f"{p}|{q}" for p, q in zip(ca, cb)]


def test_spike_preimage():
    assert_passes(checks.check_spike_preimage, lambda d: np.full(d, 1 / math.sqrt(d)))
    assert_fails(checks.check_spike_preimage, lambda d: np.eye(d)[0], hint="spike already")
    assert_fails(checks.check_spike_preimage, lambda d: np.ones(d), hint="length")


def law_ok(k):
    m = np.arange(k + 1)
    return (2 * m - k) / math.sqrt(k), stats.binom.pmf(m, k, 0.5)


def test_hd_coordinate_law():
    assert_passes(checks.check_hd_coordinate_law, law_ok)
    assert_fails(checks.check_hd_coordinate_law, lambda k: (law_ok(k)[0] * math.sqrt(k), law_ok(k)[1]),
                 hint="+-1/sqrt(k)")
    assert_fails(checks.check_hd_coordinate_law, lambda k: (law_ok(k)[0], np.full(k + 1, 1 / (k + 1))),
                 hint="not equally likely")
    assert_fails(checks.check_hd_coordinate_law, lambda k: (law_ok(k)[0][::-1], law_ok(k)[1]),
                 hint="sort")
    assert_fails(checks.check_hd_coordinate_law, lambda k: law_ok(k)[0], hint="return values, probabilities")


def kurtosis_ok(x):
    u = x / np.linalg.norm(x)
    return 3 - 2 * np.sum(u ** 4)


def test_hd_kurtosis():
    assert_passes(checks.check_hd_kurtosis, kurtosis_ok)
    assert_fails(checks.check_hd_kurtosis, lambda x: 3 - 2 * np.sum(x ** 4), hint="length of x")
    assert_fails(checks.check_hd_kurtosis, lambda x: 3.0, hint="Gaussian")
    assert_fails(checks.check_hd_kurtosis, lambda x: 3 * x.size / (x.size + 2), hint="random rotation")

    def sampled(x):
        s = 1 - 2 * np.random.default_rng(0).integers(0, 2, size=(20_000, x.size))
        t = fwht(s * (x / np.linalg.norm(x)))[:, 0]
        return np.mean(t ** 4) / np.mean(t ** 2) ** 2

    verdict = checks.check_hd_kurtosis(sampled)
    assert not verdict and "estimate" in verdict.hint
    assert "u ** 4" not in verdict.message and "sum(u" not in verdict.message    # a hint, not the formula


def test_spike_preimage_hints_do_not_give_the_answer():
    for wrong in (lambda d: np.eye(d)[0], lambda d: np.eye(d)[1]):
        verdict = checks.check_spike_preimage(wrong)
        assert not verdict and "fwht(np.eye" not in verdict.message and "H e_k" not in verdict.message
