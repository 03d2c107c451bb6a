"""Lessons 10-11: the widgets' computations, their figures and apps (inner products, QJL, real KV)."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from turboquant_lab import plots, widgets  # noqa: E402
from turboquant_lab.attention import softmax  # noqa: E402
from turboquant_lab.data import load_kv_sample  # noqa: E402
from turboquant_lab.turboquant import TurboQuantMSE  # noqa: E402


@pytest.fixture(scope="module")
def sample():
    return load_kv_sample()


@pytest.fixture(scope="module")
def stats():
    return widgets.compute_inner_product_stats(bits=(1, 2, 4), d=64, n_quantizers=20,
                                               pairs_per_quantizer=200)


def test_correlated_pairs():
    x, y = widgets.correlated_pairs(500, 64, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, rtol=1e-12)
    assert 0.6 < np.mean(np.sum(x * y, axis=1)) < 0.8


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
    demo2, demo4 = (widgets.compute_attention_demo(b, n_keys=256, d=64) for b in (2, 4))
    for demo in (demo2, demo4):
        assert demo.scores.shape == demo.scores_mse.shape == demo.scores_prod.shape == (256,)
        for w in (demo.weights, demo.weights_mse, demo.weights_prod):
            assert w.sum() == pytest.approx(1.0)
        assert demo.weights[demo.top[0]] == demo.weights.max()
        assert len(demo.top) == 12
    q, K, _ = widgets.attention_demo_data(256, 64)
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
    q, K, V = widgets.attention_demo_data(128, 32)
    Q = np.random.default_rng(1).standard_normal((2, 8, 32))     # two "heads"
    K2, V2 = np.stack([K, K[::-1]]), np.stack([V, V[::-1]])
    rows = widgets.compare_kv_quantizers(Q, K2, V2, bits=(2, 4))
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
    keys_only = widgets.compare_kv_quantizers(Q, K2, V2, bits=(4,), methods=("turboquant",),
                                              quantize_values=False)
    assert keys_only[0]["kl"] == pytest.approx(by[4, "turboquant"]["kl"])
    assert keys_only[0]["output_rel_error"] < by[4, "turboquant"]["output_rel_error"]
    with pytest.raises(ValueError, match="method"):
        widgets.compare_kv_quantizers(Q, K2, V2, bits=(2,), methods=("gptq",))


def test_format_and_verdict():
    rows = [{"bits": 2, "method": "turboquant", "kl": 0.1, "topk_agreement": 0.9},
            {"bits": 2, "method": "prod", "kl": 0.3, "topk_agreement": 0.95},
            {"bits": 3, "method": "turboquant", "kl": 0.2, "topk_agreement": 0.5},
            {"bits": 3, "method": "prod", "kl": 0.05, "topk_agreement": 0.4}]
    assert widgets.verdict_mse_vs_prod(rows, "kl") == [
        "2 bits: MSE (biased) wins on kl (0.1 MSE vs 0.3 prod)",
        "3 bits: prod (unbiased) wins on kl (0.2 MSE vs 0.05 prod)"]
    top = widgets.verdict_mse_vs_prod(rows, "topk_agreement")
    assert top[0].startswith("2 bits: prod") and top[1].startswith("3 bits: MSE")
    text = widgets.format_comparison(rows, ("bits", "method", "kl"))
    lines = text.splitlines()
    assert lines[0].split() == ["bits", "method", "kl"] and len(lines) == 5
    assert lines[4].split() == ["3", "prod", "0.05"]


def test_channel_rms_and_max_over_mean():
    x = np.zeros((2, 10, 8))
    x[..., 3] = 2.0
    np.testing.assert_allclose(widgets.channel_rms(x)[0], [0, 0, 0, 2, 0, 0, 0, 0])
    # the rotation is orthogonal: it keeps the total energy per token
    r = widgets.channel_rms(x, seed=0)
    np.testing.assert_allclose(np.sum(r ** 2, -1), np.sum(widgets.channel_rms(x) ** 2, -1))
    np.testing.assert_allclose(r, 2 / math.sqrt(8))   # one spike spreads evenly
    assert widgets.max_over_mean(x[0, 0]) == pytest.approx(8.0)
    assert widgets.max_over_mean(x[0, 0], seed=0) == pytest.approx(1.0)


def test_real_head_app_computation(sample):
    r = widgets.compute_real_head(sample, layer=2, head=3, bits=3, query=10)
    assert r.rms.shape == r.rms_rotated.shape == r.mean.shape == (32,)
    np.testing.assert_allclose(np.sum(r.rms ** 2), np.sum(r.rms_rotated ** 2), rtol=1e-5)
    for w in (r.weights, r.weights_tq, r.weights_uniform):
        assert w.shape == (256,) and w.sum() == pytest.approx(1.0)
    k = sample.keys[2, 3].astype(np.float64)
    q = sample.queries[2, 3, 10].astype(np.float64)
    np.testing.assert_allclose(r.weights, softmax(k @ q / math.sqrt(32)), rtol=1e-5)
    tq, un = r.rows
    assert (tq["method"], un["method"]) == ("turboquant", "uniform") and tq["bits"] == 3
    r8 = widgets.compute_real_head(sample, layer=2, head=3, bits=8, query=10)
    assert np.abs(r8.weights_tq - r8.weights).max() < np.abs(r.weights_tq - r.weights).max()
    with pytest.raises(ValueError, match="layer"):
        widgets.compute_real_head(sample, layer=6)


def test_draw_functions(stats, sample):
    fig, axes = plt.subplots(1, 2)
    plots.draw_inner_product_stats(axes, stats)
    assert axes[1].get_yscale() == "log" and axes[0].get_xlabel()
    plt.close(fig)
    plots.draw_attention_demo(None, widgets.compute_attention_demo(3, n_keys=64, d=32))
    plt.close("all")
    rms = widgets.channel_rms(sample.keys[:2, :3].astype(np.float64))
    ax = plots.draw_channel_profile(None, rms)
    assert len(ax.get_yticklabels()) == 2
    plt.close("all")
    axes = plots.draw_real_head(None, widgets.compute_real_head(sample, 0, 0, 2, 0))
    assert len(axes[1].get_xticklabels()) == 15
    assert all(a.get_xlabel() and a.get_ylabel() for a in axes)  # labelled axes
    plt.close("all")
    rows = [{"bits": b, "method": m, "bits_per_coordinate": b + 0.5, "output_rel_error": 2.0 ** -b}
            for b in (2, 3) for m in ("turboquant", "uniform")]
    ax = plots.draw_error_vs_storage(None, rows)
    assert len(ax.get_lines()) == 2 and "side information" in ax.get_xlabel()
    plt.close("all")


def test_apps_build(sample):
    app = widgets.attention_demo_app(n_keys=64, d=32)
    assert app.children[0].description == "bits"
    assert "KL" in app.children[1].value        # the label was filled by the first draw
    app.children[0].value = 4                  # move the slider: the label follows
    assert "KL" in app.children[1].value
    real = widgets.real_kv_app(sample)
    sliders = [w for box in real.children[:2] for w in box.children]
    assert [s.description for s in sliders] == ["layer", "head", "bits", "query token"]
    before = real.children[2].value
    sliders[2].value = 8
    assert real.children[2].value != before
    plt.close("all")
