"""The exercise checkers of lessons 09-11: a correct answer passes, typical mistakes fail.

Each checker gets a correct implementation (it must pass), at least one
typical wrong one (it must fail, with the hint that names the mistake) and the
exercise stub (``raise NotImplementedError``: "not attempted").
"""
import math

import numpy as np
import pytest

from turboquant_lab import checks
from turboquant_lab.checks import NOT_ATTEMPTED
from turboquant_lab.hadamard import fwht
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.turboquant import TurboQuantMSE
from turboquant_lab.uniform import uniform_dequantize, uniform_quantize


from checker_helpers import assert_fails, assert_passes, stub  # noqa: E402


NEW_CHECKERS = ["check_shuffle_partner", "check_stage_kind", "check_fwht_traffic",
                "check_shuffle_stage",
                "check_attention_weights", "check_kl_divergence", "check_inner_product_ratio",
                "check_qjl_estimate",
                "check_channel_rms", "check_outlier_channels", "check_max_over_mean_rotated",
                "check_storage_and_error"]


@pytest.mark.parametrize("name", NEW_CHECKERS)
def test_registered_documented_and_not_attempted(name):
    assert name in checks.__all__
    checker = getattr(checks, name)
    assert checker.__doc__
    assert checker(stub).status == NOT_ATTEMPTED


# -------------------------------------------------------------------------- lesson 09


def test_shuffle_partner():
    assert_passes(checks.check_shuffle_partner, lambda lane, mask: np.bitwise_xor(lane, mask))
    assert_fails(checks.check_shuffle_partner, lambda lane, mask: np.asarray(lane) + mask,
                 hint="xor (^), not +")
    assert_fails(checks.check_shuffle_partner, lambda lane, mask: (np.asarray(lane) + mask) % 32,
                 hint="does not rotate")
    assert_fails(checks.check_shuffle_partner, lambda lane, mask: np.asarray(lane) | mask,
                 hint="| sets")


def _kind(stride, cfg, lanes):
    if stride < cfg.vec:
        return "registers"
    if stride < cfg.vec * lanes:
        return "warp shuffle"
    if stride < cfg.vec * cfg.threads_per_row:
        return "shared memory"
    return "registers (chunks)"


def test_stage_kind():
    assert_passes(checks.check_stage_kind, lambda s, cfg: _kind(s, cfg, cfg.row_lanes))
    # the whole warp instead of the lanes that hold the row
    assert_fails(checks.check_stage_kind, lambda s, cfg: _kind(s, cfg, cfg.warp_size),
                 hint="row_lanes = min(threads_per_row, warp_size)")

    def inclusive(s, cfg):
        return _kind(s - 1, cfg, cfg.row_lanes) if s > 1 else "registers"

    assert_fails(checks.check_stage_kind, inclusive, hint="boundaries are exclusive")
    assert_fails(checks.check_stage_kind, lambda s, cfg: "shuffle", hint="emu.STAGE_KINDS")


def test_fwht_traffic():
    def ok(d, itemsize=4):
        return 2 * itemsize * d, d * math.log2(d), math.log2(d) / (2 * itemsize)

    assert_passes(checks.check_fwht_traffic, ok)
    assert_fails(checks.check_fwht_traffic,
                 lambda d, itemsize=4: (itemsize * d, d * math.log2(d), math.log2(d) / itemsize),
                 hint="count the write")
    assert_fails(checks.check_fwht_traffic,
                 lambda d, itemsize=4: (2 * itemsize * d, d * math.log2(d) / 2,
                                        math.log2(d) / (4 * itemsize)),
                 hint="not d / 2")
    assert_fails(checks.check_fwht_traffic,
                 lambda d, itemsize=4: (2 * itemsize * d, d * d, d / (2 * itemsize)),
                 hint="dense product")
    assert_fails(checks.check_fwht_traffic, lambda d, itemsize=4: 2 * itemsize * d,
                 hint="end with `return bytes_moved")  # one number instead of three


def shuffle_ok(regs, mask):
    lanes = np.arange(regs.shape[0])
    other = regs[lanes ^ mask]
    upper = ((lanes & mask) != 0)[:, None]
    return np.where(upper, other - regs, regs + other)


def test_shuffle_stage():
    assert_passes(checks.check_shuffle_stage, shuffle_ok)

    def own_minus_other(regs, mask):
        lanes = np.arange(32)
        other = regs[lanes ^ mask]
        return np.where(((lanes & mask) != 0)[:, None], regs - other, regs + other)

    def lane_by_lane(regs, mask):  # overwrites lanes that later lanes still need
        for lane in range(32):
            p = lane ^ mask
            regs[lane] = regs[p] - regs[lane] if lane & mask else regs[lane] + regs[p]
        return regs

    def rotates(regs, mask):
        lanes = np.arange(32)
        other = regs[(lanes + mask) % 32]
        return np.where(((lanes & mask) != 0)[:, None], other - regs, regs + other)

    assert_fails(checks.check_shuffle_stage, own_minus_other, hint="not own - other")
    assert_fails(checks.check_shuffle_stage, lane_by_lane, hint="overwritten before")
    assert_fails(checks.check_shuffle_stage, rotates, hint="not (lane + mask) % 32")
    assert_fails(checks.check_shuffle_stage, lambda regs, mask: regs[:16], hint="shape")


# -------------------------------------------------------------------------- lesson 10


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


# -------------------------------------------------------------------------- lesson 11


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


def test_messages_are_deterministic():
    a = checks.check_shuffle_stage(lambda regs, mask: regs).message
    b = checks.check_shuffle_stage(lambda regs, mask: regs).message
    assert a == b
