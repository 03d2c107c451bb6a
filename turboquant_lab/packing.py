"""Pack b-bit codes tightly into bytes, and unpack them.

A 3-bit quantizer stores 3 bits per coordinate, not one byte: eight 3-bit
codes fill exactly three bytes. This module does that packing for any
``bits`` from 1 to 8, vectorised over whole arrays (NumPy or CuPy).

Layout (the same for every ``bits``)
------------------------------------
The codes of one row, ``c[0], c[1], ..., c[n-1]``, are written one after the
other into a little-endian bit stream: code ``i`` occupies stream bits
``i*bits`` to ``i*bits + bits - 1``, least significant bit first, and stream
bit ``k`` is bit ``k % 8`` (value ``2**(k % 8)``) of byte ``k // 8``. A row of
``n`` codes takes ``ceil(n * bits / 8)`` bytes; the unused high bits of the
last byte are zero. Rows (all leading axes) are packed independently.

Worked example, ``bits = 3``, codes ``[5, 3, 7, 1]`` (binary 101, 011, 111, 001)::

    stream bit   0 1 2 | 3 4 5 | 6 7 8 | 9 10 11
    code         c0=5  | c1=3  | c2=7  | c3=1
    bit value    1 0 1 | 1 1 0 | 1 1 1 | 1 0  0

    byte 0 = stream bits 0..7  = 1 + 4 + 8 + 16 + 64 + 128 = 221
           = 5 | 3 << 3 | (7 << 6) & 0xFF
    byte 1 = stream bits 8..15 = 1 + 2                     = 3
           = 7 >> 2 | 1 << 1

so ``pack_bits([5, 3, 7, 1], 3)`` is ``[221, 3]`` (12 bits in 2 bytes).
For ``bits = 1`` this is ``np.packbits(..., bitorder="little")``; for
``bits = 8`` the bytes are the codes themselves.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from math import gcd

import numpy as np

from ._validate import check_bits
from .backend import get_xp

__all__ = ["pack_bits", "unpack_bits", "pack_codes", "unpack_codes", "packed_nbytes",
           "pack_bits_reference", "unpack_bits_reference"]


def packed_nbytes(n: int, bits: int) -> int:
    """Number of bytes that ``n`` codes of ``bits`` bits take: ``ceil(n * bits / 8)``."""
    return (int(n) * int(bits) + 7) // 8


def _as_int_array(codes, name: str):
    xp = get_xp(codes)
    if not hasattr(codes, "dtype"):
        codes = np.asarray(codes)
        xp = np
    if codes.dtype.kind not in "iu":
        raise TypeError(f"{name} has dtype {codes.dtype}, but integer codes are needed: "
                        f"convert them first, e.g. {name}.astype(np.uint8)")
    if codes.ndim < 1:
        raise ValueError(f"{name} must have at least 1 axis (shape (..., n)); got a 0-d array: "
                         f"wrap a single code as np.array([code])")
    return xp, codes


def _check_code_range(codes, bits: int) -> None:
    if codes.size == 0:
        return
    top = (1 << bits) - 1
    hi = int(codes.max())
    lo = int(codes.min()) if codes.dtype.kind == "i" else 0
    if lo < 0 or hi > top:
        bad = lo if lo < 0 else hi
        raise ValueError(f"codes must lie in [0, {top}] for bits={bits} "
                         f"(the max is 2**bits - 1 = {top}), "
                         f"got a code {bad}: use more bits or clip the codes")


@lru_cache(maxsize=None)
def _lane_mask(lane: int, width: int) -> np.uint64:
    """A uint64 whose every ``lane``-bit lane has its low ``width`` bits set."""
    m = 0
    for i in range(64 // lane):
        m |= ((1 << width) - 1) << (i * lane)
    return np.uint64(m)


_U64 = np.uint64
_LITTLE = sys.byteorder == "little"


def _compress(w, bits: int):
    """uint64 words of 8 codes, one per byte -> the 8 codes packed in the low ``8*bits`` bits.

    Three halving steps: merge the two ``bits``-wide codes of each 16-bit lane,
    then the two ``2*bits``-wide fields of each 32-bit lane, then the two halves.
    """
    for lane, width in ((16, bits), (32, 2 * bits), (64, 4 * bits)):
        shift = _U64(lane // 2 - width)
        if 2 * width <= lane // 2:  # the shifted low field falls off: one mask suffices
            w = (w | (w >> shift)) & _lane_mask(lane, 2 * width)
        else:
            lo = _lane_mask(lane, width)
            w = (w & lo) | ((w >> shift) & (lo << _U64(width)))
    return w


def _expand(w, bits: int, pairs: bool = False):
    """Inverse of :func:`_compress`: packed codes in the low ``8*bits`` bits -> one code per byte.

    With ``pairs=True`` it stops one step early: each 16-bit lane then holds two
    neighbouring codes, ``c[2i] | c[2i+1] << bits`` (the index into a table of pairs).
    """
    steps = ((64, 4 * bits), (32, 2 * bits), (16, bits))
    for lane, width in steps[:2] if pairs else steps:
        half = lane // 2
        shift = _U64(half - width)
        if 2 * width <= half:
            w = (w | (w << shift)) & _lane_mask(half, width)
        else:
            lo = _lane_mask(lane, width)
            w = (w & lo) | ((w << shift) & (lo << _U64(half)))
    return w


def _superblock(bits: int) -> int:
    """Groups of 8 codes whose ``8*bits``-bit fields fill a whole number of uint64 words."""
    return 8 // gcd(8, bits)


def _pack_words(codes2d, bits: int):
    """Word-parallel packing of a C-contiguous ``(rows, n)`` uint8 array, ``n`` a multiple of 64."""
    xp = get_xp(codes2d)
    rows = codes2d.shape[0]
    w = _compress(codes2d.reshape(-1).view(np.uint64), bits)
    if bits in (2, 4):  # a group fills exactly 2 or 4 bytes: narrow the words
        out = w.astype(np.uint16 if bits == 2 else np.uint32)
        return out.view(np.uint8).reshape(rows, -1)
    s = _superblock(bits)  # 8 groups (odd bits) or 4 (bits = 6) -> bits (or 3) whole words
    w = w.reshape(-1, s)
    n_words = s * bits // 8
    out = xp.empty((w.shape[0], n_words), dtype=np.uint64)
    for m in range(n_words):  # output word m holds stream bits [64m, 64m + 64)
        acc = None
        for i in range(s):  # group i holds stream bits [8*bits*i, 8*bits*(i + 1))
            lo = 8 * bits * i - 64 * m
            if lo < 64 and lo + 8 * bits > 0:
                t = w[:, i]
                if lo > 0:
                    t = t << _U64(lo)
                elif lo < 0:
                    t = t >> _U64(-lo)
                acc = t if acc is None else acc | t
        out[:, m] = acc
    return out.view(np.uint8).reshape(rows, -1)


def _unpack_words(packed2d, bits: int, pairs: bool = False):
    """Inverse of :func:`_pack_words`: C-contiguous ``(rows, n * bits / 8)`` uint8 -> ``(rows, n)``.

    With ``pairs=True``: ``(rows, n / 2)`` uint16, element ``i`` = ``c[2i] | c[2i+1] << bits``.
    """
    xp = get_xp(packed2d)
    rows = packed2d.shape[0]
    flat = packed2d.reshape(-1)
    if bits in (2, 4):
        w = flat.view(np.uint16 if bits == 2 else np.uint32).astype(np.uint64)
    else:
        s = _superblock(bits)
        p = flat.view(np.uint64).reshape(-1, s * bits // 8)
        w = xp.empty((p.shape[0], s), dtype=np.uint64)
        for i in range(s):
            m, o = divmod(8 * bits * i, 64)
            t = p[:, m] >> _U64(o) if o else p[:, m]
            if o + 8 * bits > 64:  # the group straddles two words
                t = t | (p[:, m + 1] << _U64(64 - o))
            w[:, i] = t
        w = w.reshape(-1) & _lane_mask(64, 8 * bits)
    return _expand(w, bits, pairs).view(np.uint16 if pairs else np.uint8).reshape(rows, -1)


def _byte_plan(bits: int):
    """For each output byte ``k`` of a group of 8 codes: the list of ``(code j, shift)``.

    A positive shift means ``c[j] << shift`` (bits that overflow the byte are
    dropped), a negative one ``c[j] >> -shift``.
    """
    plan = []
    for k in range(bits):
        parts = []
        for j in range(8):
            lo, hi = j * bits, j * bits + bits  # stream bits of code j
            if lo < 8 * k + 8 and hi > 8 * k:
                parts.append((j, lo - 8 * k))
        plan.append(parts)
    return plan


_PLANS = {b: _byte_plan(b) for b in range(1, 9)}


def _pack_bytewise(c, bits: int):
    """Byte-by-byte packing of ``(..., groups, 8)`` uint8 codes (any byte order; slower)."""
    xp = get_xp(c)
    out = xp.empty(c.shape[:-1] + (bits,), dtype=np.uint8)
    for k, parts in enumerate(_PLANS[bits]):
        acc = None
        for j, shift in parts:
            term = c[..., j]
            if shift > 0:
                term = term << np.uint8(shift)  # uint8: the bits above 7 fall off
            elif shift < 0:
                term = term >> np.uint8(-shift)
            acc = term if acc is None else acc | term
        out[..., k] = acc
    return out


def _unpack_bytewise(p, bits: int):
    """Inverse of :func:`_pack_bytewise`: ``(..., groups, bits)`` -> ``(..., groups, 8)``."""
    xp = get_xp(p)
    out = xp.empty(p.shape[:-1] + (8,), dtype=np.uint8)
    mask = np.uint8((1 << bits) - 1)
    for j in range(8):
        k, s = divmod(j * bits, 8)
        term = p[..., k] >> np.uint8(s) if s else p[..., k]
        if s + bits > 8:  # the code runs into the next byte
            term = term | (p[..., k + 1] << np.uint8(8 - s))
        if s + bits != 8:  # clear the bits of the neighbouring codes
            term = term & mask
        out[..., j] = term
    return out


def _pack_unchecked(codes, bits: int, *, bytewise: bool = False):
    """Pack integer codes ``(..., n)`` with values in ``[0, 2**bits)`` (no validation)."""
    xp = get_xp(codes)
    n = codes.shape[-1]
    batch = tuple(codes.shape[:-1])
    nbytes = packed_nbytes(n, bits)
    if bits == 8:
        return codes.astype(np.uint8, copy=True)
    if codes.size == 0:
        return xp.zeros(batch + (nbytes,), dtype=np.uint8)
    codes = codes.astype(np.uint8, copy=False)
    chunk = 8 if (bits == 1 or bytewise or not _LITTLE) else 64
    n_pad = -(-n // chunk) * chunk
    if n_pad != n:
        codes = xp.concatenate([codes, xp.zeros(batch + (n_pad - n,), dtype=np.uint8)], axis=-1)
    codes = xp.ascontiguousarray(codes).reshape(-1, n_pad)
    if bits == 1:
        # each row holds a multiple of 8 codes, so packing the flat array keeps rows apart
        out = xp.packbits(codes.reshape(-1), bitorder="little")
    elif chunk == 8:
        out = _pack_bytewise(codes.reshape(-1, 8), bits)
    else:
        out = _pack_words(codes, bits)
    out = out.reshape(batch + (n_pad * bits // 8,))
    return out if out.shape[-1] == nbytes else out[..., :nbytes]


def _unpack_unchecked(packed, bits: int, n: int, *, bytewise: bool = False):
    """Unpack ``(..., ceil(n * bits / 8))`` uint8 bytes into ``(..., n)`` uint8 codes, unchecked."""
    xp = get_xp(packed)
    batch = tuple(packed.shape[:-1])
    if bits == 8:
        return packed.copy()
    if n == 0 or packed.size == 0:
        return xp.zeros(batch + (n,), dtype=np.uint8)
    chunk = 8 if (bits == 1 or bytewise or not _LITTLE) else 64
    n_pad = -(-n // chunk) * chunk
    full = n_pad * bits // 8
    if packed.shape[-1] != full:
        pad = xp.zeros(batch + (full - packed.shape[-1],), dtype=np.uint8)
        packed = xp.concatenate([packed, pad], axis=-1)
    packed = xp.ascontiguousarray(packed).reshape(-1, full)
    if bits == 1:
        out = xp.unpackbits(packed.reshape(-1), bitorder="little")
    elif chunk == 8:
        out = _unpack_bytewise(packed.reshape(-1, bits), bits)
    else:
        out = _unpack_words(packed, bits)
    out = out.reshape(batch + (n_pad,))
    return out if n_pad == n else out[..., :n]


def _unpack_pair_index(packed, bits: int, n: int):
    """Pair indices of packed codes, for a table lookup of two codes at a time.

    ``packed`` is ``(rows, ceil(n * bits / 8))`` uint8, ``2 <= bits <= 7`` and
    the host little-endian (see ``_PAIRS_OK``). Returns ``(rows, n_pad // 2)``
    uint16 with ``n_pad`` = ``n`` rounded up to a multiple of 64 and element
    ``i`` = ``c[2i] | c[2i+1] << bits`` (padding codes are 0).
    """
    xp = get_xp(packed)
    rows = packed.shape[0]
    n_pad = -(-n // 64) * 64
    full = n_pad * bits // 8
    if packed.shape[-1] != full:
        pad = xp.zeros((rows, full - packed.shape[-1]), dtype=np.uint8)
        packed = xp.concatenate([packed, pad], axis=-1)
    return _unpack_words(xp.ascontiguousarray(packed), bits, pairs=True)


#: bits for which :func:`_unpack_pair_index` works on this host
_PAIRS_OK = frozenset(range(2, 8)) if _LITTLE else frozenset()


def pack_bits(codes, bits: int):
    """Pack integer codes of ``bits`` bits each, tightly, into bytes.

    Parameters
    ----------
    codes : (..., n) integer array (NumPy or CuPy)
        Values in ``[0, 2**bits)``.
    bits : int
        Bits per code, 1 to 8.

    Returns
    -------
    packed : (..., ceil(n * bits / 8)) uint8 array
        Same array module as ``codes``; the layout is in the module docstring.

    Raises
    ------
    TypeError
        ``codes`` is not an integer array, or ``bits`` is not an int.
    ValueError
        ``bits`` outside 1..8, a code outside ``[0, 2**bits - 1]``, a 0-d array.

    Notes
    -----
    Code ``i`` of a row goes to stream bits ``[i*bits, (i+1)*bits)``, least
    significant first, and stream bit ``k`` is bit ``k % 8`` of byte ``k // 8``.
    Eight codes make exactly ``bits`` bytes, so the row is padded with zero
    codes to a multiple of 8, each group of 8 codes is turned into ``bits``
    bytes with one shift-and-or per (code, byte) overlap in uint8 arithmetic
    (a loop over the 8 positions of a group, not over elements), and the
    padding bytes are cut off. ``bits = 1`` uses ``packbits(bitorder="little")``.
    Cost: O(n * bits / 8) byte operations per row, a few passes over the codes.

    Examples
    --------
    >>> pack_bits(np.array([5, 3, 7, 1]), 3)
    array([221,   3], dtype=uint8)
    >>> unpack_bits(pack_bits(np.array([5, 3, 7, 1]), 3), 3, 4)
    array([5, 3, 7, 1], dtype=uint8)
    """
    bits = check_bits(bits, "bits")
    _, codes = _as_int_array(codes, "codes")
    _check_code_range(codes, bits)
    return _pack_unchecked(codes, bits)


def unpack_bits(packed, bits: int, n: int):
    """Unpack bytes made by :func:`pack_bits` back into ``n`` codes per row.

    Parameters
    ----------
    packed : (..., ceil(n * bits / 8)) uint8 array (NumPy or CuPy)
    bits : int
        Bits per code, 1 to 8 (the value given to :func:`pack_bits`).
    n : int
        Number of codes per row (the last axis of the original codes).

    Returns
    -------
    codes : (..., n) uint8 array
        Same array module as ``packed``.

    Raises
    ------
    TypeError
        ``packed`` is not a uint8 array, ``bits`` or ``n`` not an int.
    ValueError
        ``bits`` outside 1..8, ``n`` negative, or ``packed.shape[-1]`` is not
        ``ceil(n * bits / 8)``.

    Notes
    -----
    Code ``j`` of a group of 8 starts at bit ``s = (j * bits) % 8`` of byte
    ``k = (j * bits) // 8``: ``c = (p[k] >> s | p[k + 1] << (8 - s)) & (2**bits - 1)``,
    the second byte only when the code crosses a byte boundary.

    Examples
    --------
    >>> unpack_bits(np.array([221, 3], dtype=np.uint8), 3, 4)
    array([5, 3, 7, 1], dtype=uint8)
    """
    bits = check_bits(bits, "bits")
    if not hasattr(packed, "dtype"):
        raise TypeError("packed must be a uint8 array as returned by pack_bits, "
                        f"got {type(packed).__name__}")
    if packed.dtype != np.uint8:
        raise TypeError(f"packed has dtype {packed.dtype}, but pack_bits returns uint8: "
                        f"pass the array pack_bits returned (or packed.astype(np.uint8))")
    if packed.ndim < 1:
        raise ValueError("packed must have at least 1 axis (shape (..., n_bytes)); got a 0-d array")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be a non-negative integer (codes per row), got {n!r}")
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be a non-negative integer (codes per row), got {n}")
    expected = packed_nbytes(n, bits)
    if packed.shape[-1] != expected:
        raise ValueError(f"packed has {packed.shape[-1]} bytes per row, but n={n} codes of "
                         f"bits={bits} take ceil(n * bits / 8) = {expected}: pass the n and bits "
                         f"used with pack_bits")
    return _unpack_unchecked(packed, bits, n)


def pack_codes(codes, bits: int):
    """:func:`pack_bits` without the checks, byte by byte: for codes known to be valid.

    For a producer that makes the codes itself (the GPU path's dense rotation,
    from a search over the thresholds): no check of the code range, so no
    reduction and, on a GPU, no wait for the device; and the byte-by-byte plan
    of the module docstring, with no 64-bit word views, on any array module
    and byte order. The bytes are :func:`pack_bits`' (a test compares them).

    Parameters
    ----------
    codes : (..., n) integer array (NumPy or CuPy)
        Values in ``[0, 2**bits)``, *unchecked*: a code out of range corrupts its neighbours.
    bits : int
        1 to 8, unchecked.

    Returns
    -------
    packed : (..., ceil(n * bits / 8)) uint8 array, same array module as ``codes``

    Examples
    --------
    >>> pack_codes(np.array([5, 3, 7, 1], np.uint8), 3)
    array([221,   3], dtype=uint8)
    """
    return _pack_unchecked(codes, bits, bytewise=True)


def unpack_codes(packed, bits: int, n: int):
    """:func:`unpack_bits` without the checks, byte by byte: the inverse of :func:`pack_codes`.

    ``packed`` must be ``(..., ceil(n * bits / 8))`` uint8 (unchecked); returns
    ``(..., n)`` uint8 codes, same array module.

    Examples
    --------
    >>> unpack_codes(np.array([221, 3], np.uint8), 3, 4)
    array([5, 3, 7, 1], dtype=uint8)
    """
    return _unpack_unchecked(packed, bits, n, bytewise=True)


def pack_bits_reference(codes, bits: int) -> np.ndarray:
    """Plain reference for :func:`pack_bits` (NumPy only): the oracle of the tests.

    Writes every code as a row of ``bits`` bits (least significant first),
    concatenates the rows into one bit stream per row of ``codes`` and packs it
    with ``np.packbits(..., bitorder="little")``.
    """
    bits = check_bits(bits, "bits")
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu":
        raise TypeError(f"codes has dtype {codes.dtype}, but integer codes are needed")
    n = codes.shape[-1]
    if codes.size and (codes.min() < 0 or codes.max() >= 2 ** bits):
        raise ValueError(f"codes must lie in [0, {2 ** bits - 1}] for bits={bits}")
    bit_matrix = np.empty(codes.shape + (bits,), dtype=np.uint8)
    for b in range(bits):
        bit_matrix[..., b] = (codes >> b) & 1
    stream = bit_matrix.reshape(codes.shape[:-1] + (n * bits,))
    return np.packbits(stream, axis=-1, bitorder="little")


def unpack_bits_reference(packed, bits: int, n: int) -> np.ndarray:
    """Plain reference for :func:`unpack_bits` (NumPy only)."""
    bits = check_bits(bits, "bits")
    packed = np.asarray(packed, dtype=np.uint8)
    stream = np.unpackbits(packed, axis=-1, count=n * bits, bitorder="little")
    bit_matrix = stream.reshape(packed.shape[:-1] + (n, bits)).astype(np.uint8)
    codes = np.zeros(packed.shape[:-1] + (n,), dtype=np.uint8)
    for b in range(bits):
        codes |= bit_matrix[..., b] << b
    return codes
