"""Lesson 10: its experiments, figures, app and exercise checkers."""
import math

import numpy as np
import pytest
from app_helpers import bar_heights
from checker_helpers import assert_fails, assert_passes

import turboquant_lab as tql
from turboquant_lab.course.l10_inner_products_and_qjl import app as lesson_app
from turboquant_lab.course.l10_inner_products_and_qjl import checks, experiments
from turboquant_lab.softmax_attention import softmax
from turboquant_lab.turboquant import TurboQuantMSE


def test_correlated_pairs():
    x, y = experiments.correlated_pairs(500, 64, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, rtol=1e-12)
    assert 0.6 < np.mean(np.sum(x * y, axis=1)) < 0.8


@pytest.fixture(scope="module")
def stats():
    return experiments.compute_inner_product_stats(bits=(1, 2, 4), d=64, n_quantizers=20,
                                               pairs_per_quantizer=200)


def test_stats_are_the_summary_of_the_errors():
    rng = np.random.default_rng(3)
    errors = {b: experiments.inner_product_errors(b, 32, 3, 20, rng) for b in (1, 3)}
    again = experiments.compute_inner_product_stats(bits=(1, 3), d=32, n_quantizers=3,
                                                    pairs_per_quantizer=20, seed=3)
    summary = experiments.summarize_inner_products(32, errors)
    for name in ("mse_ratio", "prod_ratio", "mse_bias", "prod_sq_error", "prod_bias_se"):
        np.testing.assert_array_equal(getattr(summary, name), getattr(again, name))
    exact, e_mse, e_prod = errors[3]
    assert exact.shape == e_mse.shape == e_prod.shape == (3, 20)
    # the MSE error of pair (0, 0) is <x_hat, y> - <x, y> for seed 0's quantizer
    x, y = experiments.correlated_pairs(20, 32, np.random.default_rng(3))
    tq = TurboQuantMSE(32, 1, seed=0)
    first = np.sum(tq.decode(tq.encode(x)) * y, axis=1) - np.sum(x * y, axis=1)
    np.testing.assert_allclose(errors[1][1][0], first, rtol=1e-6)


def test_summarize_inner_products_on_known_errors():
    exact = np.ones((2, 3))
    e_mse = np.full((2, 3), -0.1)
    e_prod = np.array([[0.2, -0.2, 0.0], [0.1, 0.1, -0.2]])
    s = experiments.summarize_inner_products(16, {2: (exact, e_mse, e_prod)})
    assert s.n_pairs == 6 and list(s.bits) == [2]
    assert s.mse_ratio[0] == pytest.approx(0.9) and s.prod_ratio[0] == pytest.approx(1.0)
    assert s.mse_bias[0] == pytest.approx(-0.1) and s.prod_bias[0] == pytest.approx(0.0)
    assert s.mse_bias_se[0] == pytest.approx(0.0)
    assert s.prod_sq_error[0] == pytest.approx(np.mean(e_prod ** 2))
    assert s.one_minus_D[0] == pytest.approx(1 - TurboQuantMSE(16, 2).expected_mse)


def test_inner_product_stats_show_the_bias_and_its_removal(stats):
    assert list(stats.bits) == [1, 2, 4] and stats.n_pairs == 4000
    # the MSE quantizer is shrunk by 1 - D(b), the prod quantizer is not
    np.testing.assert_allclose(stats.mse_ratio, stats.one_minus_D, atol=0.01)
    assert stats.mse_ratio[0] == pytest.approx(2 / math.pi, abs=0.01)
    np.testing.assert_array_less(np.abs(stats.prod_bias), 4 * stats.prod_bias_se)
    np.testing.assert_array_less(10 * stats.mse_bias_se, np.abs(stats.mse_bias))
    np.testing.assert_allclose(stats.prod_ratio, 1.0, atol=0.01)
    # the prod quantizer's squared error follows its variance bound, under the paper's
    # (well under at 1 bit: there r = x and the dropped term <r, y>^2 / d is large for correlated pairs)
    ratio = stats.prod_sq_error / stats.prod_variance_bound
    assert np.all((ratio > 0.5) & (ratio < 1.1)) and ratio[-1] > 0.85
    np.testing.assert_array_less(stats.prod_variance_bound, stats.paper_bound)
    for i, b in enumerate(stats.bits):
        assert stats.one_minus_D[i] == pytest.approx(1 - TurboQuantMSE(64, int(b)).expected_mse)


def test_attention_demo_slider(stats):
    demo2, demo4 = (experiments.compute_attention_demo(b, n_keys=256, d=64) for b in (2, 4))
    for demo in (demo2, demo4):
        assert demo.scores.shape == demo.scores_mse.shape == demo.scores_prod.shape == (256,)
        for w in (demo.weights, demo.weights_mse, demo.weights_prod):
            assert w.sum() == pytest.approx(1.0)
        assert demo.weights[demo.top[0]] == demo.weights.max()
        assert len(demo.top) == 12
    q, K, _ = experiments.attention_demo_data(256, 64)
    np.testing.assert_allclose(demo2.scores, K.astype(np.float64) @ q)
    np.testing.assert_allclose(demo2.weights, softmax(demo2.scores / 8.0))
    # more bits: scores closer to the exact ones, for both estimators
    for name in ("scores_mse", "scores_prod"):
        e2 = np.sqrt(np.mean((getattr(demo2, name) - demo2.scores) ** 2))
        e4 = np.sqrt(np.mean((getattr(demo4, name) - demo4.scores) ** 2))
        assert e4 < e2
    # the MSE keys' scores are shrunk (slope < 1), though less than 1 - D on these outlier keys
    # with the randomized Hadamard (lesson 10, section 4)
    assert 1 - TurboQuantMSE(64, 2).expected_mse - 0.03 < demo2.slope_mse < 0.99
    assert demo2.slope_prod == pytest.approx(1.0, abs=0.15)


def test_compare_kv_quantizers_rows():
    q, K, V = experiments.attention_demo_data(128, 32)
    Q = np.random.default_rng(1).standard_normal((2, 8, 32))     # two "heads"
    K2, V2 = np.stack([K, K[::-1]]), np.stack([V, V[::-1]])
    rows = tql.compare_kv_quantizers(Q, K2, V2, bits=(2, 4))
    assert [(r["bits"], r["method"]) for r in rows] == [
        (2, "turboquant"), (2, "prod"), (2, "uniform"), (4, "turboquant"), (4, "prod"), (4, "uniform")]
    by = {(r["bits"], r["method"]): r for r in rows}
    assert by[2, "turboquant"]["bits_per_coordinate"] == 2.5
    assert by[2, "prod"]["bits_per_coordinate"] == 3.0
    assert by[2, "uniform"]["bits_per_coordinate"] == 3.0
    assert by[4, "turboquant"]["key_rel_mse"] == pytest.approx(TurboQuantMSE(32, 4).expected_mse, rel=0.3)
    assert math.isnan(by[4, "uniform"]["predicted_rel_mse"])
    # prod keys decode worse (pi/2 D(b-1)) though their scores are unbiased
    assert by[4, "prod"]["key_rel_mse"] > by[4, "turboquant"]["key_rel_mse"]
    for m in ("turboquant", "prod", "uniform"):
        assert by[4, m]["output_rel_error"] < by[2, m]["output_rel_error"]
        assert 0 <= by[4, m]["topk_agreement"] <= 1 and by[4, m]["heads"] == 2
    # values exact: the value error column is that of the quantizer, attention ignores it
    keys_only = tql.compare_kv_quantizers(Q, K2, V2, bits=(4,), methods=("turboquant",),
                                              quantize_values=False)
    assert keys_only[0]["kl"] == pytest.approx(by[4, "turboquant"]["kl"])
    assert keys_only[0]["output_rel_error"] < by[4, "turboquant"]["output_rel_error"]
    with pytest.raises(ValueError, match="method"):
        tql.compare_kv_quantizers(Q, K2, V2, bits=(2,), methods=("gptq",))


def test_format_and_verdict():
    rows = [{"bits": 2, "method": "turboquant", "kl": 0.1, "topk_agreement": 0.9},
            {"bits": 2, "method": "prod", "kl": 0.3, "topk_agreement": 0.95},
            {"bits": 3, "method": "turboquant", "kl": 0.2, "topk_agreement": 0.5},
            {"bits": 3, "method": "prod", "kl": 0.05, "topk_agreement": 0.4}]
    assert experiments.verdict_mse_vs_prod(rows, "kl") == [
        "2 bits: MSE (biased) wins on kl (0.1 MSE vs 0.3 prod)",
        "3 bits: prod (unbiased) wins on kl (0.2 MSE vs 0.05 prod)"]
    top = experiments.verdict_mse_vs_prod(rows, "topk_agreement")
    assert top[0].startswith("2 bits: prod") and top[1].startswith("3 bits: MSE")
    text = tql.format_comparison(rows, ("bits", "method", "kl"))
    lines = text.splitlines()
    assert lines[0].split() == ["bits", "method", "kl"] and len(lines) == 5
    assert lines[4].split() == ["3", "prod", "0.05"]


def test_attention_app_slider_redraws_scores_weights_and_label(shown_figures):
    app = lesson_app.attention_demo_app(n_keys=64, d=32)
    slider, label = app.children[0], app.children[1]
    assert slider.description == "bits"
    for bits in (4, 1, 2):
        shown_figures.clear()
        slider.value = bits
        demo = experiments.compute_attention_demo(bits, n_keys=64, d=32)
        fig = shown_figures.last
        left, right = fig.axes[:2]
        prod_pts, mse_pts = (c.get_offsets() for c in left.collections[:2])
        np.testing.assert_allclose(mse_pts[:, 0], demo.scores)
        np.testing.assert_allclose(mse_pts[:, 1], demo.scores_mse)
        np.testing.assert_allclose(prod_pts[:, 1], demo.scores_prod)
        top = demo.top
        np.testing.assert_allclose(bar_heights(right), np.concatenate(
            [demo.weights[top], demo.weights_mse[top], demo.weights_prod[top]]))
        assert f"KL(exact || MSE) = {demo.fidelity_mse.kl:.3g} nats" in label.value
        assert f"prod {demo.fidelity_prod.topk_agreement:.0%}" in label.value
        assert f"{bits} code bits" in left.get_title()


def weights_ok(q, K):
    z = q @ K.T / math.sqrt(K.shape[-1])
    z = z - z.max(axis=-1, keepdims=True)
    w = np.exp(z)
    return w / w.sum(axis=-1, keepdims=True)


def test_attention_weights():
    assert_passes(checks.check_attention_weights, weights_ok)

    def overflows(q, K):
        w = np.exp(q @ K.T / math.sqrt(K.shape[-1]))
        return w / w.sum(axis=-1, keepdims=True)

    def no_temperature(q, K):
        return weights_ok(q * math.sqrt(K.shape[-1]), K)

    def whole_array(q, K):
        z = q @ K.T / math.sqrt(K.shape[-1])
        w = np.exp(z - z.max())
        return w / w.sum()

    assert_fails(checks.check_attention_weights, overflows, hint="subtract each row's largest")
    assert_fails(checks.check_attention_weights, no_temperature, hint="temperature 1/sqrt(d)")
    assert_fails(checks.check_attention_weights, whole_array, hint="its own softmax")


def kl_ok(p, p_hat):
    safe = np.where(p > 0, p, 1.0)
    return np.sum(np.where(p > 0, p * np.log(safe / p_hat), 0.0), axis=-1)


def test_kl_divergence():
    assert_passes(checks.check_kl_divergence, kl_ok)
    assert_fails(checks.check_kl_divergence, lambda p, q: np.sum(p * np.log(p / q), axis=-1),
                 hint="0 * log(0) is NaN")
    assert_fails(checks.check_kl_divergence, lambda p, q: kl_ok(q, p), hint="not symmetric")
    assert_fails(checks.check_kl_divergence, lambda p, q: kl_ok(p, q) / math.log(2),
                 hint="np.log2")
    assert_fails(checks.check_kl_divergence, lambda p, q: np.sum(kl_ok(p, q)),
                 hint="axis=-1")


def ratio_ok(x, y, bits, seed=0):
    tq = TurboQuantMSE(x.shape[-1], bits, seed=seed)
    return np.sum(tq.decode(tq.encode(x)) * y) / np.sum(x * y)


def test_inner_product_ratio():
    assert_passes(checks.check_inner_product_ratio, ratio_ok)

    def mean_of_ratios(x, y, bits, seed=0):
        tq = TurboQuantMSE(x.shape[-1], bits, seed=seed)
        return np.mean(np.sum(tq.decode(tq.encode(x)) * y, 1) / np.sum(x * y, 1))

    def against_x(x, y, bits, seed=0):
        tq = TurboQuantMSE(x.shape[-1], bits, seed=seed)
        return np.sum(tq.decode(tq.encode(x)) * x) / np.sum(x * x)

    assert_fails(checks.check_inner_product_ratio, mean_of_ratios, hint="ratio of the sums")
    assert_fails(checks.check_inner_product_ratio, against_x, hint="use the queries y")
    assert_fails(checks.check_inner_product_ratio, lambda x, y, b, s=0: 1 / ratio_ok(x, y, b, s),
                 hint="estimate over truth")


def qjl_ok(r, y, S):
    z = np.sign(r @ S.T)
    return math.sqrt(math.pi / 2) / S.shape[0] * np.linalg.norm(r, axis=-1) * (z @ (S @ y))


def test_qjl_estimate():
    assert_passes(checks.check_qjl_estimate, qjl_ok)
    assert_fails(checks.check_qjl_estimate, lambda r, y, S: qjl_ok(r, y, S) * 2 / math.pi,
                 hint="not by sqrt(2/pi)")
    assert_fails(checks.check_qjl_estimate,
                 lambda r, y, S: qjl_ok(r, y, S) / np.linalg.norm(r, axis=-1), hint="by ||r||")
    assert_fails(checks.check_qjl_estimate,
                 lambda r, y, S: qjl_ok(r, y, S) * S.shape[0] / r.shape[-1],
                 hint="need not be d")

    def both_signs(r, y, S):
        z = np.sign(r @ S.T)
        return (math.sqrt(math.pi / 2) / S.shape[0] * np.linalg.norm(r, axis=-1)
                * (z @ np.sign(S @ y)))

    assert_fails(checks.check_qjl_estimate, both_signs, hint="keep the query side")

    # the fallback hint guides without printing the solution
    v = checks.check_qjl_estimate(lambda r, y, S: qjl_ok(r, y, S) + 1.0)
    assert v.status == "failed" and "np.sign(r @ S.T)" not in v.message and "z @ (S @ y)" not in v.message


def test_kl_fallback_hint_does_not_print_the_solution():
    v = checks.check_kl_divergence(lambda p, q: kl_ok(p, q) + 0.5)
    assert v.status == "failed"
    assert "np.where(p > 0, p * np.log" not in v.message and "sum the terms" in v.hint


def rmse_ratio_ok(bits, d):
    def distortion(b):
        return 1.0 if b == 0 else tql.lloyd_max_codebook(b, d).mse
    return math.sqrt(math.pi / 2 * distortion(bits - 1) / distortion(bits))


def test_rmse_ratio():
    assert_passes(checks.check_rmse_ratio, rmse_ratio_ok)
    assert_fails(checks.check_rmse_ratio, lambda b, d: rmse_ratio_ok(b, d) ** 2, hint="square root")
    assert_fails(checks.check_rmse_ratio, lambda b, d: 1 / rmse_ratio_ok(b, d), hint="prod over MSE")
    assert_fails(checks.check_rmse_ratio,
                 lambda b, d: math.sqrt(math.pi / 2 * tql.lloyd_max_codebook(b - 1, d).mse
                                        / tql.lloyd_max_codebook(b, d).mse),
                 hint="no MSE stage")
    assert_fails(checks.check_rmse_ratio, lambda b, d: rmse_ratio_ok(b, d) / math.sqrt(math.pi / 2),
                 hint="pi/2")
    v = checks.check_rmse_ratio(lambda b, d: 1.0)
    assert v.status == "failed" and "sqrt(pi/2" not in v.hint


def test_rmse_ratio_prediction_is_close_to_the_measured_ratio():
    # the challenge's claim, on a small synthetic cache: within 10% at 3 and 4 bits
    q, K, V = experiments.attention_demo_data(512, 64)
    Q = np.random.default_rng(5).standard_normal((32, 64))
    rows = tql.compare_kv_quantizers(Q, K, V, bits=(3, 4), methods=("turboquant", "prod"),
                                     quantize_values=False)
    rmse = {(r["bits"], r["method"]): r["score_rmse"] for r in rows}
    for b in (3, 4):
        assert rmse[b, "prod"] / rmse[b, "turboquant"] == pytest.approx(rmse_ratio_ok(b, 64), rel=0.1)
