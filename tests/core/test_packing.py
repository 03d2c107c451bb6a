"""Bit packing: round trips, the plain bit-matrix oracle, the documented layout, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from turboquant_lab.packing import (
    _PAIRS_OK,
    _unpack_pair_index,
    pack_bits,
    pack_bits_reference,
    pack_codes,
    packed_nbytes,
    unpack_bits,
    unpack_bits_reference,
    unpack_codes,
)

ALL_BITS = range(1, 9)


@st.composite
def codes_and_bits(draw):
    bits = draw(st.integers(1, 8))
    batch = draw(st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple))
    n = draw(st.integers(0, 200))
    dtype = draw(st.sampled_from([np.uint8, np.int64, np.uint16, np.int32]))
    codes = draw(hnp.arrays(dtype, batch + (n,), elements=st.integers(0, 2 ** bits - 1)))
    return codes, bits


@settings(max_examples=150, deadline=None)
@given(codes_and_bits())
def test_round_trip_and_reference(case):
    codes, bits = case
    n = codes.shape[-1]
    packed = pack_bits(codes, bits)
    assert packed.dtype == np.uint8
    assert packed.shape == codes.shape[:-1] + (-(-n * bits // 8),)
    np.testing.assert_array_equal(packed, pack_bits_reference(codes, bits))
    back = unpack_bits(packed, bits, n)
    assert back.dtype == np.uint8 and back.shape == codes.shape
    np.testing.assert_array_equal(back, codes)
    np.testing.assert_array_equal(unpack_bits_reference(packed, bits, n), codes)
    # the byte-by-byte path (big-endian hosts, pack_codes / unpack_codes) makes the same bytes
    np.testing.assert_array_equal(pack_codes(codes, bits), packed)
    np.testing.assert_array_equal(unpack_codes(packed, bits, n), codes)


@pytest.mark.parametrize("bits", ALL_BITS)
@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 65, 128, 131, 1000])
def test_every_bits_and_length_against_reference(bits, n):
    rng = np.random.default_rng(bits * 1000 + n)
    codes = rng.integers(0, 2 ** bits, size=(3, n))
    packed = pack_bits(codes, bits)
    assert packed.shape == (3, packed_nbytes(n, bits))
    np.testing.assert_array_equal(packed, pack_bits_reference(codes, bits))
    np.testing.assert_array_equal(unpack_bits(packed, bits, n), codes)


def test_documented_worked_example():
    # module docstring: codes 5, 3, 7, 1 at 3 bits -> bytes 221, 3
    np.testing.assert_array_equal(pack_bits(np.array([5, 3, 7, 1]), 3), [221, 3])
    assert 5 | 3 << 3 | (7 << 6) & 0xFF == 221 and 7 >> 2 | 1 << 1 == 3


def test_layout_is_a_little_endian_bit_stream():
    # code i occupies stream bits [i*bits, (i+1)*bits), stream bit k = bit k % 8 of byte k // 8
    rng = np.random.default_rng(0)
    for bits in ALL_BITS:
        codes = rng.integers(0, 2 ** bits, size=37)
        stream = np.unpackbits(pack_bits(codes, bits), bitorder="little")
        value = sum(int(b) << k for k, b in enumerate(stream))
        expected = sum(int(c) << (i * bits) for i, c in enumerate(codes))
        assert value == expected


def test_tight_packing_sizes():
    assert pack_bits(np.zeros(8, np.uint8), 3).shape == (3,)      # 8 codes in 3 bytes
    assert pack_bits(np.zeros(128, np.uint8), 3).shape == (48,)
    assert pack_bits(np.zeros(9, np.uint8), 3).shape == (4,)      # 27 bits -> 4 bytes
    assert pack_bits(np.zeros(5, np.uint8), 1).shape == (1,)
    assert pack_bits(np.zeros(3, np.uint8), 8).shape == (3,)


def test_bits_1_is_packbits_little():
    bits = np.random.default_rng(1).integers(0, 2, size=(4, 29)).astype(np.uint8)
    np.testing.assert_array_equal(pack_bits(bits, 1), np.packbits(bits, axis=-1, bitorder="little"))


def test_unused_high_bits_are_zero():
    packed = pack_bits(np.full(3, 7, np.uint8), 3)  # 9 bits: the last byte holds one bit
    assert packed.tolist() == [255, 1]


def test_non_contiguous_and_lists():
    codes = np.random.default_rng(2).integers(0, 16, size=(6, 40)).astype(np.uint8)
    view = codes[::2, ::3]
    expected = pack_bits_reference(np.ascontiguousarray(view), 4)
    np.testing.assert_array_equal(pack_bits(view, 4), expected)
    np.testing.assert_array_equal(pack_bits([1, 2, 3], 2), [1 | 2 << 2 | 3 << 4])


@pytest.mark.parametrize("bits", sorted(_PAIRS_OK))
@pytest.mark.parametrize("n", [8, 64, 96, 128, 200])
def test_pair_index_for_the_decoder(bits, n):
    codes = np.random.default_rng(n + bits).integers(0, 2 ** bits, size=(5, n)).astype(np.uint16)
    idx = _unpack_pair_index(pack_bits(codes, bits), bits, n)
    padded = np.zeros((5, -(-n // 64) * 64), np.uint16)
    padded[:, :n] = codes
    np.testing.assert_array_equal(idx, padded[:, 0::2] | padded[:, 1::2] << bits)


def test_large_input_round_trip():
    codes = np.random.default_rng(3).integers(0, 8, size=(5000, 128)).astype(np.uint8)
    packed = pack_bits(codes, 3)
    np.testing.assert_array_equal(packed, pack_bits_reference(codes, 3))
    np.testing.assert_array_equal(unpack_bits(packed, 3, 128), codes)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bits", [0, 9, -1])
def test_bits_out_of_range(bits):
    with pytest.raises(ValueError, match="bits"):
        pack_bits(np.zeros(4, np.uint8), bits)
    with pytest.raises(ValueError, match="bits"):
        unpack_bits(np.zeros(4, np.uint8), bits, 4)


def test_bits_not_an_int():
    with pytest.raises(TypeError, match="bits"):
        pack_bits(np.zeros(4, np.uint8), 2.0)


@pytest.mark.parametrize("bad, bits", [(8, 3), (4, 2), (256, 8), (2, 1), (-1, 4)])
def test_code_out_of_range(bad, bits):
    codes = np.array([0, 1, bad], dtype=np.int64)
    with pytest.raises(ValueError, match=rf"codes must lie in \[0, {2 ** bits - 1}\]"):
        pack_bits(codes, bits)


@pytest.mark.parametrize("codes", [np.zeros(4, np.float32), np.zeros(4, bool),
                                   np.zeros(4, complex)])
def test_non_integer_codes(codes):
    with pytest.raises(TypeError, match="codes"):
        pack_bits(codes, 2)


def test_zero_dim_codes():
    with pytest.raises(ValueError, match="0-d"):
        pack_bits(np.uint8(3), 2)


def test_unpack_length_mismatch():
    packed = pack_bits(np.zeros(10, np.uint8), 3)  # 30 bits -> 4 bytes
    unpack_bits(packed, 3, 9)                      # 27 bits also take 4 bytes: fine
    with pytest.raises(ValueError, match=r"ceil\(n \* bits / 8\) = 3"):
        unpack_bits(packed, 3, 8)
    with pytest.raises(ValueError, match="n must be"):
        unpack_bits(packed, 3, -1)
    with pytest.raises(TypeError, match="n must be"):
        unpack_bits(packed, 3, 10.0)


def test_unpack_needs_uint8():
    with pytest.raises(TypeError, match="uint8"):
        unpack_bits(np.zeros(3, np.int64), 3, 8)
    with pytest.raises(TypeError, match="uint8"):
        unpack_bits([1, 2, 3], 3, 8)
