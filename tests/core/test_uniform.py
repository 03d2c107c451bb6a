import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from turboquant_lab.data import kv_outlier_channels, make_kv_vectors
from turboquant_lab.uniform import quant_stats, uniform_dequantize, uniform_levels, uniform_quantize

finite = st.floats(-1e3, 1e3, allow_nan=False, width=64)


def test_hand_example():
    x = np.array([0.0, 0.2, 0.9, 3.0])
    q = uniform_quantize(x, 2)
    assert q.scale == pytest.approx(1.0) and q.lo == 0.0
    np.testing.assert_array_equal(q.codes, [0, 0, 1, 3])
    np.testing.assert_allclose(uniform_dequantize(q), [0, 0, 1, 3])


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 40)), elements=finite),
       st.integers(1, 8))
def test_error_never_above_half_a_slot(x, bits):
    q = uniform_quantize(x, bits)
    err = np.abs(x - uniform_dequantize(q))
    assert np.all(err <= 0.5 * q.scale[:, None] * (1 + 1e-9) + 1e-12)
    assert q.codes.max() <= 2 ** bits - 1
    s = quant_stats(x, bits)
    np.testing.assert_allclose(s.max_abs_error, err.max(axis=-1))
    assert np.all(s.max_abs_error <= 0.5 * s.slot_width * (1 + 1e-9) + 1e-12)


def test_extremes_are_exact_and_constant_vector_is_stored_exactly():
    x = np.array([[-2.0, 0.3, 5.0], [1.5, 1.5, 1.5]])
    xh = uniform_dequantize(uniform_quantize(x, 3))
    np.testing.assert_allclose(xh[0, [0, 2]], [-2.0, 5.0])
    np.testing.assert_array_equal(xh[1], x[1])


def test_stats_of_the_essay_vector_at_two_bits():
    x = make_kv_vectors(1, 64, seed=0)[0]
    s = quant_stats(x, 2)
    assert s.range == pytest.approx(x.max() - x.min())
    assert s.slot_width == pytest.approx(s.range / 3)
    q = uniform_quantize(x, 2)
    normal = np.setdiff1d(np.arange(64), kv_outlier_channels(64, 5, 0))
    # the 59 ordinary channels collapse into at most two of the four slots
    assert len(np.unique(q.codes[normal])) <= 2
    assert s.wasted_slots == 4 - len(np.unique(q.codes))


def test_wasted_slots_counts_unused_levels():
    x = np.array([0.0, 0.01, 0.02, 1.0])
    assert quant_stats(x, 3).wasted_slots == 8 - 2
    batch = quant_stats(np.stack([x, np.array([0.0, 1 / 7, 5 / 7, 1.0])]), 3)
    np.testing.assert_array_equal(batch.wasted_slots, [6, 4])


def test_each_extra_bit_divides_mse_by_about_four():
    x = np.random.default_rng(0).standard_normal((2000, 128))
    mse = [quant_stats(x, b).mse.mean() for b in range(4, 9)]
    ratios = np.array(mse[:-1]) / np.array(mse[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.5))


def test_levels():
    np.testing.assert_allclose(uniform_levels(-1, 1, 2), [-1, -1 / 3, 1 / 3, 1])


@pytest.mark.parametrize("bad, exc, words", [
    (np.array([1, 2, 3]), TypeError, "astype"),
    (np.array([1.0, np.nan]), ValueError, "NaN"),
    (np.array([1.0, np.inf]), ValueError, "Inf"),
    (np.zeros((2, 0)), ValueError, "empty"),
    (np.float64(3.0), ValueError, "axis"),
    (np.array([1 + 2j]), TypeError, "complex"),
])
def test_bad_input(bad, exc, words):
    with pytest.raises(exc, match=words):
        uniform_quantize(bad, 2)


@pytest.mark.parametrize("bits", [0, 9, 2.5, True])
def test_bad_bits(bits):
    with pytest.raises((ValueError, TypeError), match="bits"):
        uniform_quantize(np.ones(4), bits)


def test_kv_vectors_have_the_outliers_where_announced():
    x = make_kv_vectors(4000, 64, n_outliers=5, outlier_scale=20.0, seed=3)
    rms = np.sqrt((x.astype(np.float64) ** 2).mean(axis=0))
    ch = kv_outlier_channels(64, 5, 3)
    assert np.allclose(rms[ch], 20, rtol=0.1)
    assert np.allclose(np.delete(rms, ch), 1, rtol=0.1)
    np.testing.assert_array_equal(x, make_kv_vectors(4000, 64, seed=3))
    with pytest.raises(ValueError, match="n_outliers"):
        make_kv_vectors(2, 8, n_outliers=9)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_float16_side_information_is_rounded_outwards(bits):
    """lo and scale stored as float16 (a KV cache's convention): 32 bits per vector, bound kept."""
    rng = np.random.default_rng(bits)
    x = (rng.standard_normal((500, 64)) * rng.uniform(0.01, 300, (500, 1))).astype(np.float32)
    q = uniform_quantize(x, bits, side_dtype=np.float16)
    assert q.lo.dtype == q.scale.dtype == np.float16
    assert q.bits_per_coordinate() == bits + 32 / 64
    lo, scale = q.lo.astype(np.float32), q.scale.astype(np.float32)
    top = lo.astype(np.float64) + (2 ** bits - 1) * scale.astype(np.float64)
    assert np.all(lo <= x.min(axis=1))
    assert np.all(top >= x.max(axis=1) - 1e-6 * np.abs(x).max(axis=1))  # up to float32 rounding
    x_hat = uniform_dequantize(q)
    assert x_hat.dtype == np.float32
    assert np.all(np.abs(x - x_hat) <= scale[:, None] * (0.5 + 1e-4))  # float32 arithmetic
    with pytest.raises(ValueError, match="float16"):
        uniform_quantize(np.array([0.0, 1e6]), 2, side_dtype=np.float16)
    with pytest.raises(TypeError, match="side_dtype"):
        uniform_quantize(x, 2, side_dtype=np.int16)


def test_float16_input_is_computed_in_float32():
    x = np.random.default_rng(7).standard_normal((300, 64)).astype(np.float32)
    q16, q32 = uniform_quantize(x.astype(np.float16), 2), uniform_quantize(
        x.astype(np.float16).astype(np.float32), 2, side_dtype=np.float16)
    np.testing.assert_array_equal(q16.codes, q32.codes)
    assert q16.lo.dtype == np.float16 and q16.bits_per_coordinate() == 2 + 32 / 64
