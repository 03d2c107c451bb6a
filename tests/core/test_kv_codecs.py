"""KV codecs (turboquant_lab.kv_codecs): the uniform baselines, their bytes, and the protocol."""
import numpy as np
import pytest

from turboquant_lab.data import kv_outlier_channels, make_kv_vectors
from turboquant_lab.kv_codecs import (
    ChannelQuantized,
    FloatCodec,
    KVCodec,
    UniformCodec,
    check_codec,
    stored_nbytes,
    uniform_dequantize_channels,
    uniform_quantize_channels,
)
from turboquant_lab.qjl import TurboQuantProd
from turboquant_lab.turboquant import TurboQuantMSE
from turboquant_lab.uniform import uniform_dequantize, uniform_quantize


def _x(n=100, d=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_per_channel_error_is_within_half_a_slot_of_its_group():
    x = _x(100, 16) * np.linspace(0.1, 10, 16)
    q = uniform_quantize_channels(x, 3, group_size=32)
    assert q.codes.shape == (100, 16) and q.lo.shape == q.scale.shape == (4, 16)   # groups 32, 32, 32, 4
    x_hat = uniform_dequantize_channels(q)
    slot = np.repeat(q.scale.astype(np.float64), 32, axis=0)[:100]
    assert np.all(np.abs(x - x_hat) <= slot / 2 * (1 + 1e-3) + 1e-6)
    # each group's range is its own tokens' range (rounded outwards to float16)
    np.testing.assert_allclose(q.lo[3], x[96:].min(axis=0), rtol=1e-3)
    assert np.all(q.lo[3].astype(np.float64) <= x[96:].min(axis=0))


def test_one_group_is_the_per_token_quantizer_on_the_transpose():
    x = _x(40, 8, seed=1)
    q = uniform_quantize_channels(x, 4)
    ref = uniform_quantize(x.T, 4, side_dtype=np.float16)
    np.testing.assert_array_equal(q.codes, ref.codes.T)
    np.testing.assert_array_equal(uniform_dequantize_channels(q), uniform_dequantize(ref).T)
    assert q.group_size == 40 and q.lo.shape == (1, 8)


def test_per_channel_beats_per_token_on_outlier_channels():
    # KIVI's observation: keys' outlier channels ruin per-token ranges but not per-channel ones
    x = make_kv_vectors(256, 64, seed=3)
    quiet = np.setdiff1d(np.arange(64), kv_outlier_channels(64, 5, seed=3))
    err, quiet_err = {}, {}
    for axis in ("token", "channel"):
        codec = UniformCodec(3, axis=axis)
        e = (codec.decode(codec.encode(x)) - x) ** 2
        err[axis], quiet_err[axis] = e.mean(), e[:, quiet].mean()
    assert err["channel"] < 0.5 * err["token"]
    assert quiet_err["channel"] < 0.02 * quiet_err["token"]     # the quiet channels keep fine slots


def test_bytes_count_codes_and_side_information():
    x = _x(100, 64)
    for bits in (2, 3, 4):
        tok = UniformCodec(bits)
        assert stored_nbytes(tok, tok.encode(x), 100, 64) == 100 * (64 * bits // 8 + 4)
        ch = UniformCodec(bits, axis="channel", group_size=64)
        assert stored_nbytes(ch, ch.encode(x), 100, 64) == 100 * 64 * bits // 8 + 2 * 64 * 4
    odd = UniformCodec(3)
    assert odd.encode(_x(5, 10)).nbytes == 5 * (4 + 4)              # ceil(30 / 8) = 4 bytes of codes
    f16 = FloatCodec()
    assert stored_nbytes(f16, f16.encode(x), 100, 64) == 100 * 64 * 2
    tq = TurboQuantMSE(64, 3, seed=0)
    assert stored_nbytes(tq, tq.encode(x), 100, 64) == 100 * (24 + 2)


def test_float_codecs():
    x = _x(7, 5)
    np.testing.assert_array_equal(FloatCodec(np.float32).decode(FloatCodec(np.float32).encode(x)), x)
    y = FloatCodec().decode(FloatCodec().encode(x))
    assert y.dtype == np.float32 and 0 < np.abs(y - x).max() < 2e-3 * np.abs(x).max()
    with pytest.raises(TypeError, match="float"):
        FloatCodec(np.int8)


def test_the_course_quantizers_are_codecs():
    for codec in (TurboQuantMSE(16, 2), TurboQuantProd(16, 2), UniformCodec(2), FloatCodec()):
        assert isinstance(codec, KVCodec) and check_codec(codec) is codec
    with pytest.raises(TypeError, match="encode"):
        check_codec(np.zeros(3), "keys")


def test_polarquant_plugs_in_without_an_adapter():
    polar = pytest.importorskip("turboquant_lab.polar", reason="PolarQuant is not in this checkout")
    pq = polar.PolarQuant(64, (4, 2, 2, 2), seed=0)
    x = _x(32, 64)
    stored = pq.encode(x)
    assert isinstance(pq, KVCodec)
    assert stored_nbytes(pq, stored, 32, 64) * 8 / x.size == pytest.approx(stored.bits_per_coordinate)
    assert pq.decode(stored).shape == x.shape


def test_clear_errors():
    with pytest.raises(ValueError, match="axis"):
        UniformCodec(3, axis="head")
    with pytest.raises(ValueError, match="group_size"):
        UniformCodec(3, axis="channel", group_size=0)
    with pytest.raises(ValueError, match="group_size"):
        uniform_quantize_channels(_x(), 3, group_size=2.5)
    with pytest.raises(TypeError, match="UniformCodec.encode"):
        UniformCodec(3).decode(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="ChannelQuantized"):
        uniform_dequantize_channels(np.zeros(3))
    with pytest.raises(ValueError, match="bits"):
        UniformCodec(9)
    assert isinstance(uniform_quantize_channels(_x(), 2), ChannelQuantized)
