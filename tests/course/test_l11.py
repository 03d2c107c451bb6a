"""Lesson 11 (a real decoder's KV cache, SmolLM2): its experiments, figures, app and exercise checkers."""
import dataclasses
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from app_helpers import bar_heights, line_data
from checker_helpers import assert_fails, assert_passes, stub

import turboquant_lab as tql
from turboquant_lab.course.l10_inner_products_and_qjl import experiments as l10_experiments
from turboquant_lab.course.l10_inner_products_and_qjl import figures as l10_figures
from turboquant_lab.course.l11_real_kv_caches import app as lesson_app
from turboquant_lab.course.l11_real_kv_caches import checks, experiments, figures
from turboquant_lab.data import KVSample, load_kv_sample
from turboquant_lab.llm import apply_rope
from turboquant_lab.softmax_attention import attention_fidelity, softmax


@pytest.fixture(scope="module")
def sample():
    return load_kv_sample("smollm2")


def _one_layer(sample, layer):
    """The sample cut down to one layer (the model's layer ``sample.layer_ids[layer]``)."""
    cut = slice(layer, layer + 1)
    meta = dict(sample.meta, layer_ids=[sample.layer_ids[layer]])
    return dataclasses.replace(sample, queries=sample.queries[cut], keys=sample.keys[cut],
                               values=sample.values[cut], keys_pre_rope=sample.keys_pre_rope[cut],
                               queries_all=sample.queries_all[cut], meta=meta)


def _toy_sample(n=64, d=8, base=10000.0):
    """Keys before RoPE with a constant in channel 0 (the fastest pair) and channel d - 2 (the slowest)."""
    rng = np.random.default_rng(0)
    pre = 0.1 * rng.standard_normal((1, 1, n, d))
    pre[..., 0] += 5.0
    pre[..., d - 2] += 5.0
    keys = apply_rope(pre, np.arange(n), base)
    z = np.zeros((1, 1, n, d), dtype=np.float16)
    meta = {"rope_base": base, "layer_ids": [0], "model": "toy"}
    return KVSample(queries=z, keys=keys.astype(np.float16), values=z, tokens=("t",) * n, meta=meta,
                    keys_pre_rope=pre.astype(np.float16), queries_all=z, token_ids=np.zeros(n, int))


# --------------------------------------------------------------------------- experiments


def test_make_codecs_store_what_the_lesson_counts():
    x = np.random.default_rng(1).standard_normal((256, 64)).astype(np.float32)
    want = {"uniform": 3.5, "kivi": 3.5, "turboquant": 3.25}     # b + 32/64, b + 32/64, b + 16/64
    for method in experiments.METHODS:
        kc, vc = experiments.make_codecs(method, 3)
        stored = kc.encode(x)
        assert 8 * tql.stored_nbytes(kc, stored, 256, 64) / x.size == want[method]
        assert kc.decode(stored).shape == x.shape and vc.decode(vc.encode(x)).shape == x.shape
    kc, vc = experiments.make_codecs("kivi", 2)
    assert (kc.axis, kc.group_size, vc.axis) == ("channel", 64, "token")
    with pytest.raises(ValueError, match="method"):
        experiments.make_codecs("kivy", 2)


def test_channel_profile_of_the_sample(sample):
    p = experiments.compute_channel_profile(sample)
    assert p.layer_ids == (0, 6, 12, 18, 24, 29)
    pre = sample.keys_pre_rope.astype(np.float64)
    rms = np.sqrt(np.mean(pre ** 2, axis=2))
    np.testing.assert_allclose(p.rms["keys before RoPE"], rms)
    np.testing.assert_allclose(p.peak["keys before RoPE"], rms.max(-1) / np.median(rms, -1))
    assert set(p.rms) == {"keys before RoPE", "keys", "values"}
    np.testing.assert_array_equal(p.top_channel, rms.argmax(-1))
    # the share of the loudest channel's energy in its mean, recomputed for one head
    col = pre[3, 2, :, p.top_channel[3, 2]]
    assert p.offset_share[3, 2] == pytest.approx(col.mean() ** 2 / np.mean(col ** 2))
    # what the page says: loud, nearly constant key channels in the upper half; values quieter
    assert np.all(p.top_channel >= 32) and np.all(p.offset_share > 0.8)
    assert np.median(p.peak["values"]) < np.median(p.peak["keys"]) / 2
    with pytest.raises(ValueError, match="smollm2"):
        experiments.compute_channel_profile(load_kv_sample())


def test_rope_pairs_on_a_toy_cache():
    toy = _toy_sample()
    r = experiments.compute_rope_pairs(toy)
    np.testing.assert_array_equal(r.channels, [0, 2, 4, 6])
    np.testing.assert_allclose(r.turn, 63 * 10000.0 ** (-np.arange(4) * 2 / 8))
    np.testing.assert_allclose(r.pair_rms_after, r.pair_rms_before, rtol=2e-3)   # float16 storage
    # pair 0 turns a radian per token: its constant is shared evenly; the slowest pair keeps it
    assert r.larger_share_before[0] > 0.99 and abs(r.larger_share_after[0] - 0.5) < 0.05
    assert r.turn[3] < 1 and r.larger_share_after[3] > 0.99
    assert r.mean_share_after[0] < 0.6 and r.mean_share_before[0] > 0.95


def test_rope_pairs_of_the_sample(sample):
    r = experiments.compute_rope_pairs(sample)
    assert r.turn[0] == pytest.approx(255) and np.all(np.diff(r.turn) < 0)
    np.testing.assert_allclose(r.pair_rms_after, r.pair_rms_before, rtol=1e-3)
    fast, slow = r.turn > 10, r.turn < 0.1
    assert np.all(r.larger_share_after[fast] < 0.6) and np.all(r.larger_share_before[fast] > 0.65)
    np.testing.assert_allclose(r.larger_share_after[slow], r.larger_share_before[slow], atol=0.02)
    assert np.all(r.mean_share_after < r.mean_share_before)


@pytest.fixture(scope="module")
def table(sample):
    return experiments.compute_method_table(_one_layer(sample, 2), bits=(2, 3))


def test_method_table_counts_storage_and_measures_causal_attention(sample, table):
    assert [(r["bits"], r["method"]) for r in table] == [(b, m) for b in (2, 3) for m in experiments.METHODS]
    bpc = {(r["bits"], r["method"]): r["bits_per_coordinate"] for r in table}
    assert bpc[2, "uniform"] == bpc[2, "kivi"] == 2.5 and bpc[2, "turboquant"] == 2.25
    # the uniform row at 2 bits, recomputed: all nine query heads over their KV head, causal
    K = sample.keys[2].astype(np.float32)
    V = sample.values[2].astype(np.float32)
    Q = sample.queries_all[2].astype(np.float32)
    codec = tql.UniformCodec(2)
    K_hat, V_hat = codec.decode(codec.encode(K)), codec.decode(codec.encode(V))
    fids = [attention_fidelity(Q[j], K[j // 3], V[j // 3], K_hat=K_hat[j // 3], V_hat=V_hat[j // 3],
                               causal=True) for j in range(9)]
    row = table[0]
    assert row["kl"] == pytest.approx(np.mean([f.kl for f in fids]), rel=1e-9)
    assert row["output_rel_error"] == pytest.approx(np.mean([f.output_rel_error for f in fids]), rel=1e-9)
    assert row["key_rel_mse"] == pytest.approx(np.sum((K - K_hat) ** 2) / np.sum(K.astype(np.float64) ** 2))
    # what the page concludes for these keys: KIVI < TurboQuant < per-token, on error and KL;
    # values: KIVI stores them per token, and TurboQuant has the smaller error
    for b in (2, 3):
        r = {m: next(x for x in table if x["bits"] == b and x["method"] == m) for m in experiments.METHODS}
        for metric in ("key_rel_mse", "kl"):
            assert r["kivi"][metric] < r["turboquant"][metric] < r["uniform"][metric]
        assert r["kivi"]["value_rel_mse"] == r["uniform"]["value_rel_mse"] > r["turboquant"]["value_rel_mse"]


def test_at_equal_storage_interpolates_log_linearly():
    rows = [{"method": "m", "bits_per_coordinate": b + 0.25, "kl": 0.5 * 4.0 ** -b} for b in (2, 3, 4)]
    assert experiments.at_equal_storage(rows, "m", "kl", 3.25) == pytest.approx(0.5 * 4.0 ** -3)
    assert experiments.at_equal_storage(rows, "m", "kl", 2.75) == pytest.approx(0.5 * 4.0 ** -2.5)
    assert experiments.at_equal_storage(rows, "m", "kl", 4.75) == pytest.approx(0.5 * 4.0 ** -4.5)  # beyond
    with pytest.raises(ValueError, match="two rows"):
        experiments.at_equal_storage(rows[:1], "m", "kl", 3.0)


def test_compute_head(sample):
    v = experiments.compute_head(sample, layer=2, head=1, bits=3, token=40)
    assert (v.layer_id, v.query_head) == (12, 3)
    assert v.rms_pre.shape == v.rms_post.shape == v.rms_values.shape == v.key.shape == (64,)
    np.testing.assert_allclose(v.rms_post, tql.channel_rms(sample.keys[2, 1]))
    q = sample.queries[2, 1, 40].astype(np.float64)
    k = sample.keys[2, 1, :41].astype(np.float64)
    np.testing.assert_allclose(v.weights["exact"], softmax(k @ q / 8), rtol=1e-5)
    assert set(v.weights) == {"exact", *experiments.METHODS}
    for w in v.weights.values():
        assert w.shape == (41,) and w.sum() == pytest.approx(1.0)
    assert v.max_over_mean == (tql.max_over_mean(v.key), tql.max_over_mean(v.key_rotated))
    np.testing.assert_allclose(np.linalg.norm(v.key_rotated), np.linalg.norm(v.key), rtol=1e-6)
    assert [v.fidelity[m]["bits_per_coordinate"] for m in experiments.METHODS] == [3.5, 3.5, 3.25]
    v8 = experiments.compute_head(sample, layer=2, head=1, bits=8, token=40)
    for m in experiments.METHODS:
        assert v8.fidelity[m]["kl"] < v.fidelity[m]["kl"]
    first = experiments.compute_head(sample, layer=0, head=0, bits=2, token=0)
    assert all(np.array_equal(w, [1.0]) for w in first.weights.values())   # token 0 sees one key
    for bad in ({"layer": 6}, {"head": 3}, {"token": 256}, {"layer": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            experiments.compute_head(sample, **bad)
    with pytest.raises(ValueError, match="smollm2"):
        experiments.compute_head(load_kv_sample())


# --------------------------------------------------------------------------- figures


def test_draw_channel_profiles(sample):
    p = experiments.compute_channel_profile(sample)
    axes = figures.draw_channel_profiles(None, p)
    assert [ax.get_title() for ax in axes] == ["keys before RoPE", "keys", "values"]
    for ax, kind in zip(axes, p.rms):
        im = ax.get_images()[0]
        np.testing.assert_array_equal(im.get_array(), p.rms[kind].reshape(18, 64))
        assert im.get_clim() == axes[0].get_images()[0].get_clim()          # one colour scale
    assert [t.get_text() for t in axes[0].get_yticklabels()] == [f"layer {i}" for i in p.layer_ids]
    plt.close("all")


def test_draw_rope_pairs(sample):
    r = experiments.compute_rope_pairs(sample)
    ax, twin = figures.draw_rope_pairs(None, r, [44, 49])
    np.testing.assert_allclose(bar_heights(ax), np.concatenate([r.larger_share_before, r.larger_share_after]))
    x, y = line_data(twin)[0]
    np.testing.assert_array_equal(x, r.channels)
    np.testing.assert_allclose(y, r.turn)
    assert twin.get_yscale() == "log"
    assert sorted(line.get_xdata()[0] for line in ax.get_lines()) == [44, 49]   # the marked channels
    plt.close("all")


def test_draw_rotated_law():
    grid = np.linspace(-0.5, 0.5, 11)
    law, gauss = tql.unit_coordinate_pdf(grid, 64), np.exp(-32 * grid ** 2) / np.sqrt(np.pi / 32)
    values = np.random.default_rng(0).standard_normal(1000) / 8
    axes = figures.draw_rotated_law(None, [("a", values), ("b", values[:100])], grid, law, gauss, 64)
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    heights = bar_heights(axes[0])
    assert len(heights) == 80
    assert np.sum(heights) * (1.0 / 80) == pytest.approx(np.mean(np.abs(values) <= 0.5))   # density
    np.testing.assert_allclose(line_data(axes[0])[0][1], law)
    np.testing.assert_allclose(line_data(axes[0])[1][1], gauss)
    plt.close("all")


def test_draw_error_vs_storage(table):
    ax = figures.draw_error_vs_storage(None, table, "kl", "KL")
    lines = line_data(ax)
    assert len(lines) == 3 and ax.get_yscale() == "log" and "side information" in ax.get_xlabel()
    for (x, y), method in zip(lines, experiments.METHODS):
        rows = [r for r in table if r["method"] == method]
        np.testing.assert_allclose(x, [r["bits_per_coordinate"] for r in rows])
        np.testing.assert_allclose(y, [r["kl"] for r in rows])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [experiments.METHOD_NAMES[m]
                                                                   for m in experiments.METHODS]
    plt.close("all")


def test_draw_head(sample):
    v = experiments.compute_head(sample, layer=4, head=2, bits=2, token=100)
    a1, a2, a3 = figures.draw_head(None, v, n_keys=10)
    np.testing.assert_allclose(bar_heights(a1), np.concatenate([v.rms_pre, v.rms_post]))
    np.testing.assert_allclose(bar_heights(a2), np.concatenate([v.key, v.key_rotated]))
    top = np.argsort(-v.weights["exact"], kind="stable")[:10]
    np.testing.assert_allclose(bar_heights(a3), np.concatenate([v.weights[m][top] for m in v.weights]))
    assert "layer 24, KV head 2" in a1.get_title() and "token 100" in a2.get_title()
    assert len(a3.get_xticklabels()) == 10 and "query head 6" in a3.get_title()
    assert all(a.get_xlabel() and a.get_ylabel() for a in (a1, a2, a3))
    plt.close("all")


# --------------------------------------------------------------------------- app


def test_app_controls_redraw_what_they_name(sample, shown_figures):
    app = lesson_app.real_kv_app(sample)
    (layer, head), (bits, token) = app.children[0].children, app.children[1].children
    label = app.children[2]
    assert [w.description for w in (layer, head, bits, token)] == ["layer", "KV head", "bits", "token"]
    assert "layer 12, KV head 0" in label.value and "3.50 bits/coord" in label.value

    shown_figures.clear()
    layer.value = 5                                              # the model's layer 29
    fig = shown_figures.last
    np.testing.assert_allclose(bar_heights(fig.axes[0])[:64], tql.channel_rms(sample.keys_pre_rope[5, 0]))
    assert "layer 29, KV head 0" in fig.axes[0].get_title() and "layer 29" in label.value

    head.value = 2
    fig = shown_figures.last
    assert "KV head 2" in fig.axes[0].get_title() and "query head 6" in fig.axes[2].get_title()

    bits.value = 2
    v = experiments.compute_head(sample, 5, 2, 2, 40)
    assert "2.50 bits/coord" in label.value and "2.25 bits/coord" in label.value
    assert f"KL {v.fidelity['turboquant']['kl']:.4f}" in label.value

    token.value = 5                                              # sees 6 keys: 6 bars per series
    fig = shown_figures.last
    assert len(bar_heights(fig.axes[2])) == 4 * 6
    np.testing.assert_allclose(bar_heights(fig.axes[1])[:64], sample.keys[5, 2, 5].astype(np.float64))
    assert "token 5" in fig.axes[1].get_title()
    plt.close("all")


def test_describe_head(sample):
    v = experiments.compute_head(sample, layer=1, head=1, bits=4, token=3)
    text = lesson_app.describe_head(v)
    assert text.startswith("layer 6, KV head 1 (query head 3)")
    for m in experiments.METHODS:
        assert experiments.METHOD_NAMES[m] in text
        assert f"top-8 {v.fidelity[m]['topk_agreement']:.2f}" in text


# --------------------------------------------------------------------------- lesson 10's figures


def test_lesson_10_figures_draw():
    # lesson 10's draw functions (kept here from before the re-layout; test_l10.py does not draw them)
    stats = l10_experiments.compute_inner_product_stats(bits=(1, 2, 4), d=64, n_quantizers=20,
                                                        pairs_per_quantizer=200)
    fig, axes = plt.subplots(1, 2)
    l10_figures.draw_inner_product_stats(axes, stats)
    assert axes[1].get_yscale() == "log" and axes[0].get_xlabel()
    plt.close(fig)
    l10_figures.draw_attention_demo(None, l10_experiments.compute_attention_demo(3, n_keys=64, d=32))
    plt.close("all")


# --------------------------------------------------------------------------- checkers


def outlier_channels_ok(keys, factor=4.0):
    rms = np.sqrt(np.mean(keys ** 2, axis=0))
    channels = np.flatnonzero(rms > factor * np.median(rms))
    col = keys[:, channels]
    return channels, col.mean(axis=0) ** 2 / np.mean(col ** 2, axis=0)


def test_check_outlier_channels():
    assert_passes(checks.check_outlier_channels, outlier_channels_ok)
    assert checks.check_outlier_channels(stub).status == "not attempted"

    def against_mean(keys, factor=4.0):
        rms = np.sqrt(np.mean(keys ** 2, axis=0))
        ch = np.flatnonzero(rms > factor * rms.mean())
        return ch, outlier_channels_ok(keys, 0.0)[1][ch] if ch.size else ch

    def with_std(keys, factor=4.0):
        std = keys.std(axis=0)
        ch = np.flatnonzero(std > factor * np.median(std))
        col = keys[:, ch]
        return ch, col.mean(axis=0) ** 2 / np.mean(col ** 2, axis=0)

    def not_squared(keys, factor=4.0):
        ch, _ = outlier_channels_ok(keys, factor)
        col = keys[:, ch]
        return ch, np.abs(col.mean(axis=0)) / np.sqrt(np.mean(col ** 2, axis=0))

    def over_variance(keys, factor=4.0):
        ch, _ = outlier_channels_ok(keys, factor)
        col = keys[:, ch]
        return ch, col.mean(axis=0) ** 2 / col.var(axis=0)

    assert_fails(checks.check_outlier_channels, against_mean, hint="not the mean")
    assert_fails(checks.check_outlier_channels, with_std, hint="not the standard deviation")
    assert_fails(checks.check_outlier_channels, not_squared, hint="square the mean")
    assert_fails(checks.check_outlier_channels, over_variance, hint="not by the variance")
    assert_fails(checks.check_outlier_channels,
                 lambda k, f=4.0: (outlier_channels_ok(k, f)[0] > -1, outlier_channels_ok(k, f)[1]),
                 hint="indices")
    assert_fails(checks.check_outlier_channels, lambda k, f=4.0: outlier_channels_ok(k, f)[0],
                 hint="return channels, offset_share")


def rope_ok(x, positions, base=100000.0):
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    angle = np.asarray(positions, dtype=np.float64)[:, None] * base ** (-np.arange(0, d, 2) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * np.cos(angle) - b * np.sin(angle)
    out[..., 1::2] = a * np.sin(angle) + b * np.cos(angle)
    return out


def test_check_rope():
    assert_passes(checks.check_rope, rope_ok)
    assert_passes(checks.check_rope, lambda x, p, base=100000.0: apply_rope(x, p, base))
    assert_fails(checks.check_rope, lambda x, p, base=1e5: apply_rope(x, p, base, layout="half"),
                 hint="adjacent channels")
    assert_fails(checks.check_rope, lambda x, p, base=1e5: rope_ok(x, -np.asarray(p), base), hint="backwards")
    assert_fails(checks.check_rope, lambda x, p, base=1e5: rope_ok(x, p, math.sqrt(base)),
                 hint="the exponent")
    assert_fails(checks.check_rope, lambda x, p, base=1e5: rope_ok(x, np.ones(len(p)), base),
                 hint="its own position")
    assert_fails(checks.check_rope, lambda x, p, base=1e5: np.array(x), hint="unchanged")


def causal_kl_ok(Q, K, K_hat):
    return attention_fidelity(Q, K, K, K_hat=K_hat, causal=True).kl


def test_check_causal_kl():
    assert_passes(checks.check_causal_kl, causal_kl_ok)
    assert_fails(checks.check_causal_kl, lambda Q, K, K_hat: attention_fidelity(Q, K, K, K_hat=K_hat).kl,
                 hint="causal mask")

    def reversed_kl(Q, K, K_hat):
        return attention_fidelity(Q, K_hat, K_hat, K_hat=K, causal=True).kl

    def unscaled(Q, K, K_hat):
        return attention_fidelity(Q, K, K, K_hat=K_hat, causal=True, scale=1.0).kl

    assert_fails(checks.check_causal_kl, reversed_kl, hint="KL(p_hat || p)")
    assert_fails(checks.check_causal_kl, unscaled, hint="1/sqrt(d)")
    assert_fails(checks.check_causal_kl, lambda Q, K, K_hat: len(Q) * causal_kl_ok(Q, K, K_hat),
                 hint="average over the queries")


def centred_ok(K, bits, seed=0):
    n, d = K.shape[-2:]
    c = K.mean(axis=-2, keepdims=True).astype(np.float16).astype(np.float32)
    tq = tql.TurboQuantMSE(d, bits, seed=seed)
    enc = tq.encode(K - c)
    return c + tq.decode(enc), enc.bits_per_coordinate + 16 / n


def test_check_centred_turboquant():
    assert_passes(checks.check_centred_turboquant, centred_ok)

    def unrounded(K, bits, seed=0):   # an offset kept in float32 changes a code or two at most
        n, d = K.shape[-2:]
        c = K.mean(axis=-2, keepdims=True)
        tq = tql.TurboQuantMSE(d, bits, seed=seed)
        enc = tq.encode(K - c)
        return c + tq.decode(enc), enc.bits_per_coordinate + 16 / n

    assert_passes(checks.check_centred_turboquant, unrounded)

    def no_add_back(K, bits, seed=0):
        c = K.mean(axis=-2, keepdims=True).astype(np.float16).astype(np.float32)
        tq = tql.TurboQuantMSE(K.shape[-1], bits, seed=seed)
        return tq.decode(tq.encode(K - c)), centred_ok(K, bits, seed)[1]

    def plain(K, bits, seed=0):
        tq = tql.TurboQuantMSE(K.shape[-1], bits, seed=seed)
        return tq.decode(tq.encode(K)), centred_ok(K, bits, seed)[1]

    assert_fails(checks.check_centred_turboquant, no_add_back, hint="add the offset back")
    assert_fails(checks.check_centred_turboquant, plain, hint="centre the keys first")
    assert_fails(checks.check_centred_turboquant,
                 lambda K, b, s=0: (centred_ok(K, b, s)[0], centred_ok(K, b, s)[1] - 16 / K.shape[-2]),
                 hint="count the offset")
    assert_fails(checks.check_centred_turboquant,
                 lambda K, b, s=0: (centred_ok(K, b, s)[0], centred_ok(K, b, s)[1] + 16 / K.shape[-2]),
                 hint="not 32")


def kivi_before_ok(keys_pre_rope, bits, base=100000.0, group_size=64):
    codec = tql.UniformCodec(bits, axis="channel", group_size=group_size)
    decoded = codec.decode(codec.encode(keys_pre_rope))
    return rope_ok(decoded, np.arange(decoded.shape[-2]), base)


def test_check_kivi_before_rope():
    assert_passes(checks.check_kivi_before_rope, kivi_before_ok)

    def after(x, bits, base=1e5, group_size=64):
        codec = tql.UniformCodec(bits, axis="channel", group_size=group_size)
        return codec.decode(codec.encode(rope_ok(x, np.arange(x.shape[-2]), base)))

    def no_rope(x, bits, base=1e5, group_size=64):
        codec = tql.UniformCodec(bits, axis="channel", group_size=group_size)
        return codec.decode(codec.encode(x))

    def per_token(x, bits, base=1e5, group_size=64):
        codec = tql.UniformCodec(bits)
        return rope_ok(codec.decode(codec.encode(x)), np.arange(x.shape[-2]), base)

    assert_fails(checks.check_kivi_before_rope, after, hint="quantizes after RoPE")
    assert_fails(checks.check_kivi_before_rope, no_rope, hint="turn the decoded keys")
    assert_fails(checks.check_kivi_before_rope, per_token, hint="not per token")
