"""Lesson 11: its experiments, figures, app and exercise checkers."""
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from checker_helpers import assert_fails, assert_passes

import turboquant_lab as tql
from turboquant_lab.course.l10_inner_products_and_qjl import (
    experiments as l10_inner_products_and_qjl_experiments,
)
from turboquant_lab.course.l10_inner_products_and_qjl import figures as l10_inner_products_and_qjl_figures
from turboquant_lab.course.l11_real_kv_caches import checks, experiments, figures
from turboquant_lab.data import load_kv_sample
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.softmax_attention import softmax
from turboquant_lab.turboquant import TurboQuantMSE
from turboquant_lab.uniform import uniform_dequantize, uniform_quantize
from turboquant_lab.walsh_hadamard import fwht


@pytest.fixture(scope="module")
def sample():
    return load_kv_sample()


def test_real_head_app_computation(sample):
    r = experiments.compute_real_head(sample, layer=2, head=3, bits=3, query=10)
    assert r.rms.shape == r.rms_rotated.shape == r.mean.shape == (32,)
    np.testing.assert_allclose(np.sum(r.rms ** 2), np.sum(r.rms_rotated ** 2), rtol=1e-5)
    for w in (r.weights, r.weights_tq, r.weights_uniform):
        assert w.shape == (256,) and w.sum() == pytest.approx(1.0)
    k = sample.keys[2, 3].astype(np.float64)
    q = sample.queries[2, 3, 10].astype(np.float64)
    np.testing.assert_allclose(r.weights, softmax(k @ q / math.sqrt(32)), rtol=1e-5)
    tq, un = r.rows
    assert (tq["method"], un["method"]) == ("turboquant", "uniform") and tq["bits"] == 3
    r8 = experiments.compute_real_head(sample, layer=2, head=3, bits=8, query=10)
    assert np.abs(r8.weights_tq - r8.weights).max() < np.abs(r.weights_tq - r.weights).max()
    with pytest.raises(ValueError, match="layer"):
        experiments.compute_real_head(sample, layer=6)


@pytest.fixture(scope="module")
def stats():
    return l10_inner_products_and_qjl_experiments.compute_inner_product_stats(bits=(1, 2, 4), d=64, n_quantizers=20,
                                               pairs_per_quantizer=200)


def test_draw_functions(stats, sample):
    fig, axes = plt.subplots(1, 2)
    l10_inner_products_and_qjl_figures.draw_inner_product_stats(axes, stats)
    assert axes[1].get_yscale() == "log" and axes[0].get_xlabel()
    plt.close(fig)
    l10_inner_products_and_qjl_figures.draw_attention_demo(None, l10_inner_products_and_qjl_experiments.compute_attention_demo(3, n_keys=64, d=32))
    plt.close("all")
    rms = tql.channel_rms(sample.keys[:2, :3].astype(np.float64))
    ax = figures.draw_channel_profile(None, rms)
    assert len(ax.get_yticklabels()) == 2
    plt.close("all")
    axes = figures.draw_real_head(None, experiments.compute_real_head(sample, 0, 0, 2, 0))
    assert len(axes[1].get_xticklabels()) == 15
    assert all(a.get_xlabel() and a.get_ylabel() for a in axes)  # labelled axes
    plt.close("all")
    rows = [{"bits": b, "method": m, "bits_per_coordinate": b + 0.5, "output_rel_error": 2.0 ** -b}
            for b in (2, 3) for m in ("turboquant", "uniform")]
    ax = figures.draw_error_vs_storage(None, rows)
    assert len(ax.get_lines()) == 2 and "side information" in ax.get_xlabel()
    plt.close("all")


def test_channel_rms():
    assert_passes(checks.check_channel_rms, lambda k: np.sqrt(np.mean(k ** 2, axis=-2)))
    assert_fails(checks.check_channel_rms, lambda k: np.std(k, axis=-2),
                 hint="not the standard deviation")
    assert_fails(checks.check_channel_rms, lambda k: np.sqrt(np.mean(k ** 2, axis=-1)),
                 hint="second-to-last axis")
    assert_fails(checks.check_channel_rms, lambda k: np.mean(k ** 2, axis=-2),
                 hint="square root")


def outliers_ok(keys, factor=2.0):
    rms = np.sqrt(np.mean(keys ** 2, axis=0))
    return np.flatnonzero(rms > factor * np.median(rms))


def test_outlier_channels():
    assert_passes(checks.check_outlier_channels, outliers_ok)

    def against_mean(keys, factor=2.0):
        rms = np.sqrt(np.mean(keys ** 2, axis=0))
        return np.flatnonzero(rms > factor * rms.mean())

    def with_std(keys, factor=2.0):
        std = np.std(keys, axis=0)
        return np.flatnonzero(std > factor * np.median(std))

    def mask(keys, factor=2.0):
        rms = np.sqrt(np.mean(keys ** 2, axis=0))
        return rms > factor * np.median(rms)

    assert_fails(checks.check_outlier_channels, against_mean, hint="not the mean")
    assert_fails(checks.check_outlier_channels, with_std, hint="not its standard deviation")
    assert_fails(checks.check_outlier_channels, mask, hint="np.flatnonzero")
    assert_fails(checks.check_outlier_channels, lambda k, f=2.0: outliers_ok(k, f)[::-1],
                 hint="np.sort")


def _mom(v):
    a = np.abs(v)
    return a.max(axis=-1) / a.mean(axis=-1)


def test_max_over_mean_rotated():
    assert_passes(checks.check_max_over_mean_rotated,
                  lambda x, seed=0: (_mom(x), _mom(RandomizedHadamard(x.shape[-1], seed=seed)
                                                   .forward(x))))
    assert_fails(checks.check_max_over_mean_rotated,
                 lambda x, seed=0: (_mom(x), _mom(fwht(x))), hint="not the plain tql.fwht")
    assert_fails(checks.check_max_over_mean_rotated,
                 lambda x, seed=0: (_mom(x), _mom(RandomizedHadamard(x.shape[-1], seed=0)
                                                  .forward(x))), hint="use the seed")
    assert_fails(checks.check_max_over_mean_rotated,
                 lambda x, seed=0: (_mom(x).mean(), _mom(x).mean()), hint="don't average")


def storage_ok(x, bits, method, seed=0):
    d = x.shape[-1]
    if method == "uniform":
        x_hat = uniform_dequantize(uniform_quantize(x, bits))
        bpc = bits + 32 / d
    else:
        tq = TurboQuantMSE(d, bits, seed=seed)
        enc = tq.encode(x)
        x_hat, bpc = tq.decode(enc), enc.bits_per_coordinate
    return bpc, np.sum((x - x_hat) ** 2) / np.sum(x ** 2)


def test_storage_and_error():
    assert_passes(checks.check_storage_and_error, storage_ok)
    assert_fails(checks.check_storage_and_error,
                 lambda x, b, m, s=0: (b, storage_ok(x, b, m, s)[1]), hint="side information")
    assert_fails(checks.check_storage_and_error,
                 lambda x, b, m, s=0: (b + 64 / x.shape[-1] if m == "uniform" else
                                       storage_ok(x, b, m, s)[0], storage_ok(x, b, m, s)[1]),
                 hint="not float32")

    def per_vector(x, bits, method, seed=0):
        bpc, _ = storage_ok(x, bits, method, seed)
        if method == "uniform":
            x_hat = uniform_dequantize(uniform_quantize(x, bits))
        else:
            tq = TurboQuantMSE(x.shape[-1], bits, seed=seed)
            x_hat = tq.decode(tq.encode(x))
        return bpc, np.mean(np.sum((x - x_hat) ** 2, 1) / np.sum(x ** 2, 1))

    assert_fails(checks.check_storage_and_error, per_vector, hint="pool before dividing")

    def float16_side(x, bits, method, seed=0):  # rounding lo and scale to float16 is allowed
        if method != "uniform":
            return storage_ok(x, bits, method, seed)
        q = uniform_quantize(x, bits)
        q = type(q)(q.codes, q.lo.astype(np.float16).astype(np.float64),
                    q.scale.astype(np.float16).astype(np.float64), q.bits)
        x_hat = uniform_dequantize(q)
        return bits + 32 / x.shape[-1], np.sum((x - x_hat) ** 2) / np.sum(x ** 2)

    assert_passes(checks.check_storage_and_error, float16_side)
