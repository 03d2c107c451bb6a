"""The shared measurements: max/mean, channel RMS, unit rows."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import turboquant_lab as tql
from turboquant_lab.rotation import RandomizedHadamard


def test_max_over_mean_values_and_shapes():
    assert tql.max_over_mean(np.array([1.0, -1.0, 1.0, -1.0])) == 1.0
    assert tql.max_over_mean(np.array([0.0, 0.0, 0.0, -4.0])) == 4.0
    x = np.random.default_rng(0).standard_normal((5, 16))
    np.testing.assert_allclose(tql.max_over_mean(x), np.abs(x).max(axis=1) / np.abs(x).mean(axis=1))
    assert tql.max_over_mean(x.reshape(1, 5, 16)).shape == (1, 5)
    with pytest.raises(ValueError, match="all-zero"):
        tql.max_over_mean(np.zeros(4))
    with pytest.raises(TypeError, match="dtype"):
        tql.max_over_mean(np.arange(4))


@given(x=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=32))
@settings(max_examples=60, deadline=None)
def test_max_over_mean_is_between_1_and_d(x):
    x = np.array(x)
    if not np.any(x != 0):
        return
    assert 1 - 1e-12 <= tql.max_over_mean(x) <= len(x) * (1 + 1e-12)


def test_max_over_mean_of_subnormal_vectors():
    assert tql.max_over_mean(np.array([0.0, 5e-324])) == 2.0


def test_channel_rms_and_a_rotation():
    x = np.zeros((2, 10, 8))
    x[..., 3] = 2.0
    np.testing.assert_allclose(tql.channel_rms(x)[0], [0, 0, 0, 2, 0, 0, 0, 0])
    r = tql.channel_rms(RandomizedHadamard(8, seed=0).forward(x))
    # the rotation is orthogonal: it keeps the total energy per token ...
    np.testing.assert_allclose(np.sum(r ** 2, -1), np.sum(tql.channel_rms(x) ** 2, -1))
    # ... and the Hadamard spreads one spike evenly over the channels
    np.testing.assert_allclose(r, 2 / math.sqrt(8))
    assert tql.max_over_mean(x[0, 0]) == pytest.approx(8.0)
    assert tql.max_over_mean(RandomizedHadamard(8, seed=0).forward(x[0, 0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        tql.channel_rms(np.ones(4))


def test_unit_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    u = tql.unit_rows(x)
    assert u.dtype == np.float32
    np.testing.assert_allclose(u, [[0.6, 0.8], [0.0, 0.0]])
