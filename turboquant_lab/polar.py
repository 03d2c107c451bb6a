"""PolarQuant: rotate, rewrite the vector in recursive polar coordinates, quantize the angles.

Han, Kacham, Karbasi, Mirrokni and Zandieh, "PolarQuant: Quantizing KV Caches
with Polar Transformation" (arXiv 2502.02617). After a random rotation the
vector is rewritten in recursive polar coordinates (radii and angles, level by
level), whose angles follow laws known in advance, so that each level's angles
are coded with a Lloyd-Max codebook designed offline: the transform, the laws
and the codebooks are in :mod:`turboquant_lab.polar_laws` (re-exported here).

**The error.** With the top radii exact, the cosine similarity of a decoded
sub-vector with the true one multiplies level by level, so for a vector whose
direction is uniformly random (what a Haar rotation makes of any fixed
vector)

.. math:: \\frac{E\\|x - \\hat x\\|^2}{\\|x\\|^2}
          = 2\\Big(1 - \\prod_{l=1}^{L} E\\cos(\\psi_l - \\hat\\psi_l)\\Big)
          = 2\\Big(1 - \\prod_l (1 - D_l/2)\\Big),

``D_l`` the codebook's mean squared chord (:attr:`PolarQuant.expected_mse`).
No per-block scale or zero point is stored: the laws are known in advance,
and the only floats are the ``d / 2**L`` radii (float16).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from ._parallel import for_each_block
from ._validate import as_float_array, check_dim, check_last_axis, ensure_finite, next_power_of_two
from .backend import get_xp, is_cupy_array
from .packing import _pack_unchecked, _unpack_unchecked, pack_bits, packed_nbytes, unpack_bits
from .rotation import RandomizedHadamard, random_orthogonal
from .turboquant import BLOCK_ELEMENTS, ROTATIONS, StoredSizes, bucketize
from .walsh_hadamard import fwht

from .polar_laws import (_FLOAT16_MAX, MAX_LEVEL, RADIUS_BITS, TWO_PI, PolarAngleLaw, PolarCoordinates,
                         _check_level_bits, _check_levels, angle_codebook, polar_angle_law,
                         polar_bits_per_coordinate, polar_expected_mse, polar_inverse, polar_transform)

__all__ = ["PolarCoordinates", "polar_transform", "polar_inverse", "PolarAngleLaw", "polar_angle_law",
           "angle_codebook", "polar_bits_per_coordinate", "polar_expected_mse", "PolarEncoded",
           "PolarQuant", "MAX_LEVEL"]

# --------------------------------------------------------------------------- encoded vectors


@dataclass
class PolarEncoded(StoredSizes):
    """Vectors encoded by :class:`PolarQuant`: packed angle codes per level, float16 radii.

    Attributes
    ----------
    codes : tuple of L uint8 arrays
        ``codes[l - 1]``: ``(..., ceil(d_pad / 2**l * b_l / 8))``, the level-``l``
        codes packed by :func:`~turboquant_lab.packing.pack_bits` with ``b_l`` bits.
    radii : (..., d_pad / 2**L) float16 array
        The last level's radii.
    level_bits : tuple of int
    d, d_pad : int
        Original and rotated dimension.
    shape : tuple
        Batch shape.
    rotation : str
    fingerprint : int
        CRC-32 of the rotation and the bits, so that another quantizer is caught.
    """

    codes: tuple
    radii: object
    level_bits: tuple
    d: int
    d_pad: int
    shape: tuple
    rotation: str = "hadamard"
    fingerprint: int = field(default=0, repr=False)

    @property
    def levels(self) -> int:
        return len(self.level_bits)


    @property
    def nbytes(self) -> int:
        """Real storage in bytes: every level's packed codes plus the float16 radii."""
        return int(sum(int(c.nbytes) for c in self.codes) + self.radii.nbytes)



# --------------------------------------------------------------------------- the quantizer


class PolarQuant:
    """PolarQuant: random rotation, recursive polar transform, one angle codebook per level.

    Parameters
    ----------
    d : int
        Dimension, at least 2.
    level_bits : sequence of int
        Bits of the angles of each level, level 1 first; its length is the
        depth ``L``. The paper's KV setting is ``(4, 2, 2, 2)``: 3.875 bits per
        coordinate with ``d / 16`` float16 radii.
    seed : int, SeedSequence or numpy.random.Generator
        Draws the rotation (the same one as ``TurboQuantMSE(d, bits, seed, rotation)``).
    rotation : {"hadamard", "dense"}
        As for :class:`~turboquant_lab.turboquant.TurboQuantMSE`: the randomized
        Hadamard on ``d_pad`` = the next power of two (zero padding), or a
        Haar-random ``d x d`` matrix.

    Attributes
    ----------
    d_pad : int
        Rotated dimension; must be a multiple of ``2**L``.
    levels : int
        ``L = len(level_bits)``.
    codebooks : tuple of Codebook
        ``angle_codebook(l, level_bits[l - 1])`` per level.
    n_angles : tuple of int
        ``d_pad / 2**l`` angles per vector at level ``l``.
    n_radii : int
        ``d_pad / 2**L`` radii per vector.

    Raises
    ------
    TypeError, ValueError
        ``d < 2``, bits outside 1..8, an empty ``level_bits``, more levels than
        ``d_pad`` allows, an unknown rotation.

    Notes
    -----
    **Encoding.** ``y = R x`` (zero-padded for the Hadamard), the polar
    transform of ``y``, each level's angles quantized with its codebook and
    packed, and the last radii stored as float16. No norm and no per-block
    scale or zero point: the angle laws do not depend on the input, and the
    radii carry the scale. **Decoding** runs the tree from the top: each radius
    times ``(cos c, sin c)`` of its code's centroid, down to the coordinates,
    then ``R^T`` and truncation to ``d``.

    **Storage.** ``sum_l (d_pad / 2**l) b_l`` code bits and ``16 d_pad / 2**L``
    radius bits per vector: ``sum_l b_l 2**-l + 16 / 2**L`` bits per coordinate
    (:func:`polar_bits_per_coordinate`), 3.875 for ``(4, 2, 2, 2)``.

    **The error.** :attr:`expected_mse` is :func:`polar_expected_mse`: exact
    for uniformly random directions (and for any fixed vector on average over a
    Haar rotation), up to the float16 radii (relative error ``2**-11``). As for
    TurboQuant, the randomized Hadamard only approaches it on structured inputs,
    and zero padding lowers it (the error on the padded coordinates is dropped).

    **Inner products.** The decoded vector has the norm of ``x`` (up to the
    float16 radii), and on average over a Haar rotation ``E x_hat`` points along
    ``x`` with ``E<x_hat, x> = (1 - D/2) ||x||^2``: :meth:`inner_product`
    shrinks ``<x, y>`` by ``1 - D/2`` on average (TurboQuantMSE by ``1 - D``).

    **Speed (NumPy).** Rows in blocks of 512 KiB on all cores, as
    TurboQuantMSE: level 1 takes one ``arctan2`` per pair and ``2**b - 1``
    comparisons; the levels above compare ``tan^2 psi = r_{2j+1}^2 / r_{2j}^2``
    with ``tan^2`` of the boundaries (``psi >= beta`` exactly when
    ``tan^2 psi >= tan^2 beta``), so no other angle is ever computed.
    Decoding looks up ``(cos, sin)`` pairs of float32. ``python
    benchmarks/polar_cpu.py`` compares it with TurboQuantMSE.

    Examples
    --------
    >>> pq = PolarQuant(128, (4, 2, 2, 2), seed=0)
    >>> x = np.random.default_rng(1).standard_normal((1000, 128)).astype(np.float32)
    >>> enc = pq.encode(x)
    >>> [c.shape for c in enc.codes], enc.radii.shape, enc.bits_per_coordinate
    ([(1000, 32), (1000, 8), (1000, 4), (1000, 2)], (1000, 8), 3.875)
    >>> err = np.sum((x - pq.decode(enc)) ** 2, axis=1) / np.sum(x ** 2, axis=1)
    >>> bool(abs(err.mean() / pq.expected_mse - 1) < 0.05)
    True
    """

    def __init__(self, d: int, level_bits=(4, 2, 2, 2), seed=0, rotation: str = "hadamard"):
        d = check_dim(d, "d")
        if d < 2:
            raise ValueError("d must be at least 2: the polar transform pairs coordinates")
        self.d = d
        self.level_bits = _check_level_bits(level_bits)
        self.levels = len(self.level_bits)
        if rotation not in ROTATIONS:
            raise ValueError(f'rotation must be "hadamard" or "dense", got {rotation!r}')
        self.rotation = rotation
        self.seed = seed
        self.d_pad = next_power_of_two(d) if rotation == "hadamard" else d
        _check_levels(self.levels, self.d_pad, name="len(level_bits)")
        if rotation == "hadamard":
            self._hadamard = RandomizedHadamard(self.d_pad, seed)
            self._matrix = self._dense64 = None
            s1, s2 = self._hadamard.signs1, self._hadamard.signs2
            self._signs1 = np.ascontiguousarray(s1[:d], dtype=np.float32)
            self._signs2 = np.ascontiguousarray(s2, dtype=np.float32)
            crc = zlib.crc32(s2.tobytes(), zlib.crc32(s1.tobytes()))
        else:
            self._hadamard = None
            self._dense64 = random_orthogonal(d, seed)
            self._matrix = np.ascontiguousarray(self._dense64, dtype=np.float32)
            crc = zlib.crc32(self._dense64.tobytes())
        crc = zlib.crc32(rotation.encode(), crc)
        self.fingerprint = zlib.crc32(bytes(self.level_bits), crc)
        self.codebooks = tuple(angle_codebook(level, b) for level, b in enumerate(self.level_bits, 1))
        self.n_angles = tuple(self.d_pad >> level for level in range(1, self.levels + 1))
        self.n_radii = self.d_pad >> self.levels
        self.n_bytes = tuple(packed_nbytes(n, b) for n, b in zip(self.n_angles, self.level_bits))
        self._block_rows = max(1, BLOCK_ELEMENTS // self.d_pad)
        # encoder: level 1 compares float32 angles, the levels above compare r_b^2 with tan^2(beta) r_a^2
        self._tan2 = tuple(np.tan(cb.boundaries) ** 2 for cb in self.codebooks[1:])  # ascending
        # decoder: (cos c, sin c) of every centroid, as float32 pairs viewed as one uint64
        self._cos_sin = tuple(
            np.ascontiguousarray(np.stack([np.cos(cb.centroids), np.sin(cb.centroids)], axis=1),
                                 dtype=np.float32).view(np.uint64).reshape(-1)
            for cb in self.codebooks)
        self._dev = {}

    # ----------------------------------------------------------------- properties

    @property
    def bits_per_coordinate(self) -> float:
        """Stored bits per original coordinate (bytes per level and radii; padding to ``d_pad`` paid)."""
        total = sum(8 * n for n in self.n_bytes) + RADIUS_BITS * self.n_radii
        return total / self.d

    @property
    def expected_mse(self) -> float:
        """Predicted ``E||x - x_hat||^2 / ||x||^2`` for uniformly random directions (see Notes)."""
        return polar_expected_mse(self.level_bits)

    def __repr__(self) -> str:
        pad = f", d_pad={self.d_pad}" if self.d_pad != self.d else ""
        return (f"PolarQuant(d={self.d}, level_bits={self.level_bits}, rotation={self.rotation!r}{pad}, "
                f"bits_per_coordinate={self.bits_per_coordinate:.4g}, "
                f"expected_mse={self.expected_mse:.4g})")

    # ----------------------------------------------------------------- rotation

    def _rotate(self, x2):
        """``(n, d)`` -> ``(n, d_pad)`` rotated float32 (any array module)."""
        xp = get_xp(x2)
        if self._hadamard is not None:
            if self.d_pad != self.d:
                pad = xp.zeros((x2.shape[0], self.d_pad), dtype=xp.float32)
                pad[:, : self.d] = x2
                x2 = pad
            return self._hadamard.forward(x2)
        return x2 @ self._const(xp, "matrix").T

    def _unrotate(self, y):
        xp = get_xp(y)
        if self._hadamard is not None:
            return self._hadamard.inverse(y)[:, : self.d]
        return y @ self._const(xp, "matrix")

    def _const(self, xp, name):
        """Constants in the array module ``xp`` (made once per module): the dense matrix, or
        ``"centroids<l>"``, the float32 ``(cos, sin)`` of level ``l``'s centroids."""
        key = (id(xp), name)
        if key not in self._dev:
            if name == "matrix":
                value = xp.asarray(self._matrix)
            else:
                cb = self.codebooks[int(name[len("centroids"):]) - 1]
                value = (xp.asarray(np.cos(cb.centroids), dtype=xp.float32),
                         xp.asarray(np.sin(cb.centroids), dtype=xp.float32))
            self._dev[key] = value
        return self._dev[key]

    # ----------------------------------------------------------------- encode

    def encode(self, x) -> PolarEncoded:
        """Encode vectors: packed angle codes per level and float16 radii.

        Parameters
        ----------
        x : (..., d) float array (NumPy or CuPy)
            Computed in float32.

        Returns
        -------
        PolarEncoded

        Raises
        ------
        TypeError
            Non-float ``x``.
        ValueError
            Wrong last axis, NaN or Inf, empty or 0-d ``x``, a radius above
            65504 (the float16 maximum).
        """
        x = as_float_array(x, "x", check_finite=False)  # finiteness checked on the radii
        check_last_axis(x, self.d, "x")
        batch = tuple(x.shape[:-1])
        x2 = x.reshape(-1, self.d)
        if is_cupy_array(x2):
            codes, radii = self._encode_xp(x2)
        else:
            codes, radii = self._encode_numpy(x2)
        xp = get_xp(radii)
        if not bool(xp.isfinite(radii).all()):
            ensure_finite(x, "x")  # names the NaN/Inf; otherwise the squares overflowed
            raise ValueError("x has a vector whose radii overflow float32; they are stored as "
                             "float16 (max 65504): rescale x first (e.g. x / x.std())")
        top = float(radii.max())
        if top > _FLOAT16_MAX:
            raise ValueError(f"x has a block of {1 << self.levels} coordinates of norm {top:.6g}, above "
                             f"the float16 maximum {_FLOAT16_MAX:g} in which the radii are stored: "
                             f"rescale x first (e.g. x / x.std()) and multiply the decoded vectors back")
        radii16 = radii.astype(xp.float16)
        codes = tuple(c.reshape(batch + (n,)) for c, n in zip(codes, self.n_bytes))
        return PolarEncoded(codes, radii16.reshape(batch + (self.n_radii,)), self.level_bits, self.d,
                            self.d_pad, batch, self.rotation, self.fingerprint)

    def _encode_xp(self, x2):
        """Any array module (the CuPy path): whole-array operations, codes by searchsorted."""
        xp = get_xp(x2)
        y = self._rotate(x2.astype(xp.float32))
        radii, angles = polar_transform(y, self.levels)
        codes = tuple(pack_bits(cb.quantize(a), cb.bits) for cb, a in zip(self.codebooks, angles))
        return codes, radii

    def _encode_numpy(self, x2):
        rows = x2.shape[0]
        codes = tuple(np.empty((rows, n), dtype=np.uint8) for n in self.n_bytes)
        radii = np.empty((rows, self.n_radii), dtype=np.float32)
        m = min(self._block_rows, rows)
        n = self.d_pad

        def scratch():
            pad = np.zeros((m, n), dtype=np.float32) if self._hadamard is not None else None
            return pad, np.empty((m, n), np.float32)

        def body(start, stop, buf):
            pad, y = buf
            k = stop - start
            self._encode_block(x2[start:stop], None if pad is None else pad[:k], y[:k],
                               radii[start:stop], [c[start:stop] for c in codes])

        for_each_block(rows, m, body, scratch)
        return codes, radii

    def _encode_block(self, xb, pad, y, radii_out, codes_out):
        """One block: ``xb`` (k, d) -> radii (k, n_radii) float32 and each level's packed codes."""
        if xb.dtype != np.float32:
            xb = xb.astype(np.float32)
        if self._hadamard is not None:
            np.multiply(xb, self._signs1, out=pad[:, : self.d])
            np.multiply(fwht(pad), self._signs2, out=y)  # fwht raises on NaN/Inf in x
        else:
            np.matmul(xb, self._matrix.T, out=y)
        a, b = y[:, 0::2], y[:, 1::2]
        psi = np.arctan2(b, a)
        psi += np.float32(TWO_PI) * (psi < 0)
        c = bucketize(psi, self.codebooks[0].boundaries)  # exactly searchsorted on the float32 angles
        codes_out[0][...] = _pack_unchecked(c, self.level_bits[0])
        s = a * a
        s += b * b                                   # squared level-1 radii
        for level in range(2, self.levels + 1):
            sa, sb = s[:, 0::2], s[:, 1::2]
            with np.errstate(divide="ignore", invalid="ignore"):
                t = sb / sa                          # tan^2 psi: psi >= beta  <=>  t >= tan^2(beta)
            c = bucketize(t, self._tan2[level - 2])  # (a pair of zeros: NaN, code 0)
            codes_out[level - 1][...] = _pack_unchecked(c, self.level_bits[level - 1])
            s = sa + sb
        np.sqrt(s, out=radii_out)

    # ----------------------------------------------------------------- decode

    def check_encoded(self, enc) -> None:
        """Raise unless ``enc`` is a :class:`PolarEncoded` that this quantizer can decode."""
        if not isinstance(enc, PolarEncoded):
            raise TypeError(f"this needs the PolarEncoded returned by PolarQuant.encode, "
                            f"got {type(enc).__name__}")
        if enc.d != self.d or tuple(enc.level_bits) != self.level_bits or enc.d_pad != self.d_pad:
            raise ValueError(f"these codes were made by a quantizer with d={enc.d}, "
                             f"level_bits={tuple(enc.level_bits)} but this one has d={self.d}, "
                             f"level_bits={self.level_bits}: decode with the quantizer that encoded them")
        if enc.rotation != self.rotation or enc.fingerprint != self.fingerprint:
            raise ValueError(f"these codes were made with another rotation ({enc.rotation!r}, a "
                             f"different seed): decode with the quantizer that encoded them "
                             f"(same rotation and seed)")
        shape = tuple(enc.shape)
        if len(enc.codes) != self.levels or any(
                tuple(c.shape) != shape + (n,) for c, n in zip(enc.codes, self.n_bytes)) or \
                tuple(enc.radii.shape) != shape + (self.n_radii,):
            raise ValueError(f"PolarEncoded arrays do not match its shape {shape}: codes "
                             f"{[tuple(c.shape) for c in enc.codes]}, radii {tuple(enc.radii.shape)}")

    def decode(self, enc: PolarEncoded):
        """Decode :meth:`encode`'s output back to vectors.

        Returns
        -------
        x_hat : (..., d) float32 array (NumPy, or CuPy for CuPy codes)

        Raises
        ------
        TypeError
            ``enc`` is not a :class:`PolarEncoded`.
        ValueError
            ``enc`` comes from a quantizer with another ``d``, bits, rotation or seed.
        """
        self.check_encoded(enc)
        batch = tuple(enc.shape)
        n = enc.n_vectors
        codes = [c.reshape(n, nb) for c, nb in zip(enc.codes, self.n_bytes)]
        radii = enc.radii.reshape(n, self.n_radii)
        if is_cupy_array(radii):
            return self._decode_xp(codes, radii).reshape(batch + (self.d,))
        codes = [np.asarray(c) for c in codes]
        radii = np.asarray(radii)
        out = np.empty((n, self.d), dtype=np.float32)

        def body(start, stop, _):
            self._decode_block([c[start:stop] for c in codes], radii[start:stop], out[start:stop])

        for_each_block(n, min(self._block_rows, n), body, lambda: None)
        return out.reshape(batch + (self.d,))

    def _decode_block(self, packed, radii, out):
        r = radii.astype(np.float32)
        for level in range(self.levels, 0, -1):
            c = _unpack_unchecked(packed[level - 1], self.level_bits[level - 1], self.n_angles[level - 1])
            cs = np.take(self._cos_sin[level - 1], c, mode="clip").view(np.float32)  # (k, 2 n): cos, sin
            cs = cs.reshape(r.shape + (2,))
            cs *= r[:, :, None]
            r = cs.reshape(r.shape[0], -1)
        if self._hadamard is not None:
            r *= self._signs2
            np.multiply(fwht(r)[:, : self.d], self._signs1, out=out)
        else:
            np.matmul(r, self._matrix, out=out)

    def _decode_xp(self, codes, radii):
        xp = get_xp(radii)
        r = radii.astype(xp.float32)
        for level in range(self.levels, 0, -1):
            c = unpack_bits(codes[level - 1], self.level_bits[level - 1], self.n_angles[level - 1])
            cos_c, sin_c = self._const(xp, f"centroids{level}")
            r = xp.stack([r * cos_c[c], r * sin_c[c]], axis=-1).reshape(r.shape[0], -1)
        return self._unrotate(r)

    # ----------------------------------------------------------------- inner products

    def inner_product(self, enc: PolarEncoded, y):
        """Estimates ``<x_hat, y>`` of ``<x, y>`` for every encoded ``x`` and every query ``y``.

        Parameters
        ----------
        enc : PolarEncoded
            ``n`` encoded vectors (any batch shape ``B``).
        y : (d,) or (..., d) float array
            Queries (exact).

        Returns
        -------
        est : (..., *B) float32 array
            Queries first, like ``y @ X.T``: ``(d,)`` gives shape ``B``, ``(m, d)``
            gives ``(m, *B)``.

        Notes
        -----
        The inner product with the decoded vectors. On average over a Haar
        rotation it is ``(1 - D/2) <x, y>`` (class Notes): biased, by half
        the shrink of TurboQuantMSE's ``1 - D``.
        """
        self.check_encoded(enc)
        y = as_float_array(y, "y")
        check_last_axis(y, self.d, "y")
        xp = get_xp(enc.radii)
        qshape = tuple(y.shape[:-1])
        y2 = xp.asarray(y).reshape(-1, self.d).astype(xp.float32)
        x_hat = self.decode(enc).reshape(-1, self.d)
        return (y2 @ x_hat.T).reshape(qshape + tuple(enc.shape))

    # ----------------------------------------------------------------- oracle

    def encode_reference(self, x) -> PolarEncoded:
        """Plain float64 oracle for :meth:`encode`: :func:`polar_transform`, ``quantize``, ``pack_bits``."""
        x = as_float_array(x, "x")
        check_last_axis(x, self.d, "x")
        x = np.asarray(x, dtype=np.float64)
        batch = tuple(x.shape[:-1])
        if self.rotation == "hadamard":
            pad = np.zeros(batch + (self.d_pad,))
            pad[..., : self.d] = x
            y = self._hadamard.forward(pad)
        else:
            y = x @ self._dense64.T
        radii, angles = polar_transform(y, self.levels)
        codes = tuple(pack_bits(cb.quantize(a), cb.bits) for cb, a in zip(self.codebooks, angles))
        return PolarEncoded(codes, radii.astype(np.float16), self.level_bits, self.d, self.d_pad, batch,
                            self.rotation, self.fingerprint)

    def decode_reference(self, enc: PolarEncoded) -> np.ndarray:
        """Plain float64 oracle for :meth:`decode`: centroids, :func:`polar_inverse`, ``R^T``, truncation."""
        self.check_encoded(enc)
        angles = [cb.centroids[unpack_bits(np.asarray(c), cb.bits, n)]
                  for cb, c, n in zip(self.codebooks, enc.codes, self.n_angles)]
        y = polar_inverse(np.asarray(enc.radii, dtype=np.float64), angles)
        if self.rotation == "hadamard":
            return self._hadamard.inverse(y)[..., : self.d]
        return y @ self._dense64
