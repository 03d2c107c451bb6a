"""The TurboQuant MSE pipeline: rotate, quantize each coordinate (Lloyd-Max), bit-pack.

A vector ``x`` in R^d is stored as its norm (float16) and ``bits`` bits per
coordinate of its rotated direction. Because a random rotation turns every
unit vector into a uniformly random one, each rotated coordinate follows one
known law (scaled Beta, close to N(0, 1/d)), so one fixed scalar codebook,
optimal for that law, serves every input, outlier channels or not.

Speed: rows go in blocks of 512 KiB of float32 so that every pass stays in
L2, the blocks run on all cores (BLAS held at one thread), the sign flips
cost one pass each, codes come from comparisons with the boundaries, and the
decoder looks two codes up at once. :class:`TurboQuantMSE` (Notes) has the
measured figures; ``python benchmarks/quantize_cpu.py`` prints them.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ._parallel import for_each_block
from ._validate import (as_float_array, check_bits, check_dim, check_last_axis, ensure_finite,
                        next_power_of_two)
from .backend import gpu_function, is_cupy_array
from .codebooks import Codebook, lloyd_max_codebook
from .packing import (
    _PAIRS_OK,
    _pack_unchecked,
    _unpack_pair_index,
    _unpack_unchecked,
    pack_bits_reference,
    packed_nbytes,
    unpack_bits_reference,
)
from .rotation import RandomizedHadamard, random_orthogonal
from .walsh_hadamard import fwht

__all__ = ["Encoded", "StoredSizes", "KernelConstants", "TurboQuantMSE", "bucketize", "bucketize_reference"]

ROTATIONS = ("hadamard", "dense")

#: float32 elements per block of rows (512 KiB): every pass of a block stays in L2
BLOCK_ELEMENTS = 1 << 17

#: up to this many bits codes come from summed comparisons (2**bits - 1 passes); above, searchsorted
_COMPARE_MAX_BITS = 6

_FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504


# --------------------------------------------------------------------------- bucketize


def _float32_thresholds(boundaries) -> np.ndarray:
    """The smallest float32 ``>= b`` for each float64 boundary ``b``.

    For a float32 ``t``: ``t >= b`` exactly when ``t >= ceil32(b)``, so comparing
    float32 values with these thresholds reproduces
    ``searchsorted(boundaries, t, side="right")`` exactly, ties included.
    """
    b = np.asarray(boundaries, dtype=np.float64)
    thr = b.astype(np.float32)
    low = thr.astype(np.float64) < b
    thr[low] = np.nextafter(thr[low], np.float32(np.inf))
    return thr


def bucketize(t, boundaries, out=None):
    """Cell index of each value: the number of boundaries ``<= t`` (fast path).

    Parameters
    ----------
    t : (..., n) float32 ndarray
        Values (scaled coordinates).
    boundaries : (k,) array_like
        Ascending cell edges (float64), ``k = 2**bits - 1 <= 255``.
    out : (..., n) uint8 ndarray, optional
        Where to write the codes.

    Returns
    -------
    codes : (..., n) uint8 ndarray
        Exactly ``np.searchsorted(boundaries, t, side="right")`` (the
        convention of :meth:`Codebook.quantize`), ties included.

    Raises
    ------
    TypeError
        ``t`` is not float32.
    ValueError
        ``boundaries`` is not a 1-d array of at most 255 values.

    Notes
    -----
    ``searchsorted`` costs about 15-20 ns per element here. For up to 63
    boundaries (6 bits) the code is instead the sum of the comparisons
    ``t >= b_k`` (one vectorised compare-and-add per boundary, about
    0.08 ns per element each when the block is in cache: 0.25 ns at 2 bits,
    0.6 at 3, 1.3 at 4). A fine uniform grid with a table lookup was measured
    at 3+ ns per element (``np.take`` alone costs ~1 ns), so it lost. The
    float64 boundaries are rounded *up* to float32 (:func:`_float32_thresholds`)
    so that the float32 comparisons agree exactly with the float64 search.

    Examples
    --------
    >>> bucketize(np.array([-1.0, 0.0, 0.5, 2.0], np.float32), [-0.5, 0.0, 1.0])
    array([0, 2, 2, 3], dtype=uint8)
    """
    t = np.asarray(t)
    if t.dtype != np.float32:
        raise TypeError(f"t must be float32 (the fast path compares float32 values), got {t.dtype}")
    b = np.asarray(boundaries, dtype=np.float64)
    if b.ndim != 1 or b.size > 255:
        raise ValueError(f"boundaries must be a 1-d array of at most 255 cell edges (8 bits), "
                         f"got shape {b.shape}")
    return _bucketize(t, _float32_thresholds(b), out)


def _bucketize(t, thr, out=None, tmp=None):
    if out is None:
        out = np.empty(t.shape, dtype=np.uint8)
    if thr.size > (1 << _COMPARE_MAX_BITS) - 1:
        out[...] = np.searchsorted(thr, t, side="right")
        return out
    if thr.size == 0:
        out[...] = 0
        return out
    if tmp is None:
        tmp = np.empty(t.shape, dtype=np.bool_)
    np.greater_equal(t, thr[0], out=out.view(np.bool_))
    for v in thr[1:]:
        np.greater_equal(t, v, out=tmp)
        out += tmp.view(np.uint8)
    return out


def _symmetric_thresholds(boundaries):
    """For boundaries symmetric about an exact 0 (``b[-1 - k] == -b[k]``, ``b[mid] == 0``):
    ``(p, q)``, the positive boundaries ``b_k > 0`` rounded up to float32 (``|t| >= p_k`` is
    ``|t| >= b_k``) and to the next float32 strictly above (``|t| >= q_k`` is ``|t| > b_k``).
    ``None`` for any other codebook."""
    b = np.asarray(boundaries, dtype=np.float64)
    if b.size < 1 or b.size % 2 == 0 or b[b.size // 2] != 0.0 or not np.array_equal(b, -b[::-1]):
        return None
    pos = b[b.size // 2 + 1:]
    p = _float32_thresholds(pos)
    q = p.copy()
    exact = p.astype(np.float64) == pos  # b_k itself is a float32: > and >= differ at |t| = b_k
    q[exact] = np.nextafter(p[exact], np.float32(np.inf))
    return p, q


def _bucketize_symmetric(t, sym, out, tmp, sign):
    """:func:`bucketize` for a symmetric codebook: ``len(p) + 5`` passes instead of ``2 len(p) + 1``.

    With ``half = len(p) + 1`` (the boundaries ``<= 0`` when ``t >= 0``):
    ``code = half + #{k: |t| >= p_k}`` for ``t >= 0`` and ``half - 1 - #{k: |t| >= q_k}``
    for ``t < 0`` (a negative boundary ``-b_k <= t`` when ``|t| <= b_k``): exactly
    ``searchsorted(boundaries, t, side="right")`` for every float32 ``t`` but NaN (the
    caller raises on NaN). The sign is folded in with uint8 arithmetic modulo 256:
    ``code = (count XOR m) + half`` with ``m = 0`` for ``t >= 0`` and ``255`` for ``t < 0``.
    Overwrites ``t`` with ``|t|``; ``out`` uint8, ``tmp`` and ``sign`` bool, ``t``'s shape.
    """
    p, q = sym
    np.greater_equal(t, np.float32(0.0), out=sign)  # -0.0 counts as >= 0, as in searchsorted
    np.abs(t, out=t)
    if p.size:
        np.greater_equal(t, p[0], out=out.view(np.bool_))
    else:
        out.fill(0)
    for v in p[1:]:
        np.greater_equal(t, v, out=tmp)
        out += tmp.view(np.uint8)
    for k in np.flatnonzero(q != p):  # |t| == b_k exactly, t < 0: -b_k <= t, not counted past it
        np.equal(t, p[k], out=tmp)
        np.greater(tmp, sign, out=tmp)  # and t < 0
        out -= tmp.view(np.uint8)
    m = sign.view(np.uint8)
    np.subtract(m, np.uint8(1), out=m)  # 0 for t >= 0, 255 for t < 0
    np.bitwise_xor(out, m, out=out)
    np.add(out, np.uint8(p.size + 1), out=out)  # modulo 256
    return out


def bucketize_reference(t, boundaries) -> np.ndarray:
    """Plain oracle for :func:`bucketize`: ``np.searchsorted`` in float64."""
    t = np.asarray(t, dtype=np.float64)
    b = np.asarray(boundaries, dtype=np.float64)
    return np.searchsorted(b, t, side="right").astype(np.uint8)


# --------------------------------------------------------------------------- Encoded


class StoredSizes:
    """What every encoded form derives from its ``shape``, ``d`` and ``nbytes``.

    ``n_vectors = prod(shape)`` and ``bits_per_coordinate = 8 * nbytes / (n_vectors * d)``:
    every stored bit (codes and all side information) per original coordinate.
    """

    @property
    def n_vectors(self) -> int:
        """Number of encoded vectors, ``prod(shape)``."""
        return math.prod(self.shape)

    @property
    def bits_per_coordinate(self) -> float:
        """``8 * nbytes / (n_vectors * d)``: storage per original coordinate, side information included."""
        return 8.0 * self.nbytes / (self.n_vectors * self.d)


@dataclass
class Encoded(StoredSizes):
    """Vectors encoded by :class:`TurboQuantMSE`: packed codes plus float16 norms.

    Attributes
    ----------
    codes : (..., n_bytes) uint8 array
        ``d_rot`` codes of ``bits`` bits per vector, packed by
        :func:`~turboquant_lab.packing.pack_bits`; ``n_bytes = ceil(d_rot * bits / 8)``.
    norms : (...) float16 array
        The Euclidean norm of each vector.
    bits : int
        Bits per code.
    d : int
        Original dimension (what :meth:`TurboQuantMSE.decode` returns).
    d_pad : int
        Number of codes per vector: the rotated dimension (the padded power of
        two for the Hadamard rotation, ``d`` for the dense one).
    shape : tuple
        Batch shape (the input's leading axes).
    rotation : str
        ``"hadamard"`` or ``"dense"``.
    fingerprint : int
        CRC-32 of the rotation, so that a decoder with another seed is caught.
    """

    codes: object
    norms: object
    bits: int
    d: int
    d_pad: int
    shape: tuple
    rotation: str = "hadamard"
    fingerprint: int = field(default=0, repr=False)


    @property
    def nbytes(self) -> int:
        """Real storage in bytes: packed codes plus float16 norms."""
        return int(self.codes.nbytes + self.norms.nbytes)



@dataclass(frozen=True)
class KernelConstants:
    """What a fused encode/decode kernel needs of a :class:`TurboQuantMSE` (read-only arrays).

    From :meth:`TurboQuantMSE.kernel_constants`; the GPU drivers
    (:mod:`turboquant_lab.gpu.drivers`) read these instead of the quantizer's internals.

    Attributes
    ----------
    rotation : str
        ``"hadamard"`` or ``"dense"``.
    d, d_pad, bits, n_bytes : int
        As on the quantizer: ``n_bytes = ceil(d_pad * bits / 8)`` per vector.
    sqrt_d_pad : float
        ``sqrt(d_pad)``, the scale of the codebook's units.
    thresholds : (2**bits - 1,) float32 ndarray
        The codebook boundaries rounded *up* to float32, so that
        ``#{k : thresholds[k] <= t}`` for a float32 ``t`` equals the float64
        ``searchsorted(boundaries, t, side="right")``, ties included.
    centroids : (2**bits,) float32 ndarray
        The codebook's levels in scaled units (what the kernels look up).
    levels : (2**bits,) float32 ndarray
        ``centroids / sqrt(d_pad)``, computed in float64 (what the dense path looks up).
    signs1, signs2 : (d_pad,) float32 ndarray or None
        The randomized Hadamard ``D2 H D1`` (``None`` for the dense rotation).
    matrix : (d, d) float32 ndarray or None
        The dense rotation ``Q`` (``y = x @ Q.T``; ``None`` for the Hadamard one).
    """

    rotation: str
    d: int
    d_pad: int
    bits: int
    n_bytes: int
    sqrt_d_pad: float
    thresholds: np.ndarray = field(repr=False)
    centroids: np.ndarray = field(repr=False)
    levels: np.ndarray = field(repr=False)
    signs1: np.ndarray | None = field(default=None, repr=False)
    signs2: np.ndarray | None = field(default=None, repr=False)
    matrix: np.ndarray | None = field(default=None, repr=False)


def _read_only(a):
    """A read-only float32 copy of ``a`` (``None`` stays ``None``)."""
    if a is None:
        return None
    a = np.array(a, dtype=np.float32)  # a copy: the quantizer's own arrays stay private
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------- quantizer


class TurboQuantMSE:
    """TurboQuant's MSE quantizer: random rotation, Lloyd-Max codebook per coordinate, bit packing.

    Parameters
    ----------
    d : int
        Dimension of the vectors, at least 2.
    bits : int
        Bits per coordinate, 1 to 8.
    seed : int, SeedSequence or numpy.random.Generator
        Draws the rotation: the same seed gives the same rotation and the same codes.
    rotation : {"hadamard", "dense"}
        ``"hadamard"``: :class:`~turboquant_lab.rotation.RandomizedHadamard`
        ``D2 H D1`` on ``d_pad`` = the next power of two ``>= d``; a vector whose
        ``d`` is not a power of two is zero-padded to ``d_pad`` before the
        rotation, ``d_pad`` codes are stored, and decoding truncates back to
        ``d``. ``"dense"``: a Haar-random orthogonal ``d x d`` matrix
        (:func:`~turboquant_lab.rotation.random_orthogonal`), no padding.

    Attributes
    ----------
    d_pad : int
        Rotated dimension, the number of codes per vector: the next power of
        two ``>= d`` for ``"hadamard"``, ``d`` for ``"dense"``.
    codebook : Codebook
        ``lloyd_max_codebook(bits, d_pad)``, the exact law of a coordinate of a
        uniformly rotated unit vector of R^d_pad, in scaled units.

    Raises
    ------
    TypeError, ValueError
        ``d < 2`` (a unit vector of R^1 is +-1: there is no direction to
        quantize), ``bits`` outside 1..8, an unknown ``rotation``.

    Notes
    -----
    Encoding (``n = d_pad``, ``R`` the rotation, ``b_k`` the codebook boundaries):

    .. math::

        r = \\|x\\|, \\quad u = x / r, \\quad t = \\sqrt{n}\\, R u, \\quad
        c_i = \\#\\{k : b_k \\le t_i\\},

    stored as the packed ``c`` (``n * bits`` bits) and ``r`` as float16 (16
    bits). Decoding: ``x_hat = r R^T (centroids[c] / sqrt(n))``, truncated to
    ``d``. The prediction is ``E||x - x_hat||^2 / ||x||^2 = codebook.mse``
    (:attr:`expected_mse`): exact for any fixed ``x`` on average over a Haar
    random rotation, and for uniformly distributed directions with any fixed
    rotation. A fixed rotation on *structured* inputs deviates: for the
    synthetic KV vectors of :func:`~turboquant_lab.data.make_kv_vectors`
    (5 channels 20x, d = 128) one dense rotation gives 0.96-1.09 times the
    prediction depending on its seed (1.01 on average over 32 seeds) and the
    randomized Hadamard 0.79-0.88 (it spreads each outlier exactly evenly,
    ``|H_ij| = 1/sqrt(d)``, which makes the rotated coordinates lighter-tailed
    than the sphere law); without any rotation the error is 3-34 times the
    prediction at 1-4 bits. With padding (``d < d_pad``) the truncation
    discards the error that falls on the padded coordinates: the error is
    between about ``(d - 1) / (d_pad - 1)`` and 1 times the prediction
    (measured 0.75-0.84 at d = 96, 0.50-0.83 at d = 33).

    Draw the data and the rotation from different seeds: with
    ``x = np.random.default_rng(0).standard_normal((n, d))`` and
    ``seed=0, rotation="dense"``, the first ``d`` vectors are the very matrix
    whose QR factor is the rotation, and they come out spiky (measured at
    4 bits: 21 times the predicted error for those rows, 1.0 for the rest).

    The norm is computed in float32 and stored as float16: its relative error
    is at most ``2**-11`` (about 5e-4), so the decoded scale is off by that
    much, an extra relative squared error below ``2.5e-7``, far under the
    8-bit MSE (~4e-5). Norms above 65504 (the float16 maximum) raise
    ``ValueError``; norms below ``6e-8`` round to 0. A zero vector has norm 0
    and decodes to exactly 0 (its direction is taken as 0, not NaN).

    Speed (NumPy path). Rows go in blocks of ``BLOCK_ELEMENTS`` (128 Ki
    float32, 512 KiB) so that every pass stays in L2, and the blocks are
    shared out to one thread per core with BLAS held at one thread
    (:func:`_for_each_block`). Encoding a block: squared norms (one
    ``einsum``), ``x * D1`` into a zero-padded buffer, the FWHT
    (:func:`~turboquant_lab.walsh_hadamard.fwht`, Kronecker-factorised BLAS), ``* D2``,
    ``* sqrt(n) / r`` per row, the codes as a sum of comparisons
    (:func:`bucketize`; ``searchsorted`` costs 15-20 ns per element, the
    comparisons 0.25 / 0.6 / 1.3 ns at 2 / 3 / 4 bits; since the codebook is
    symmetric about 0, ``|t|`` is compared with the ``2**(bits-1) - 1``
    positive boundaries only and the sign added back, which halves the passes
    and keeps the codes exactly those of the full search), and word-parallel
    packing (0.3-0.5 ns). Decoding: the codes are unpacked *in
    pairs* and each pair is looked up in a table of float32 pairs that already
    holds ``centroids / sqrt(n)`` and the signs of ``D2`` (one ``np.take``
    per two coordinates, 0.4 ns per coordinate against 1 ns for one per
    coordinate), the FWHT, ``* D1``, truncation and ``* r``. Per coordinate
    on one core of the 2-core AMD EPYC (Zen 4) dev machine (numpy 2.4,
    OpenBLAS): encode 2.6 / 3.2 / 3.6 ns and decode 2.4 / 2.7 / 2.4 ns at
    2 / 3 / 4 bits, of which the FWHT is 1.0 ns each way. A dense
    float32 128 x 128 sgemm costs 2.6 ns per coordinate on one core, which is
    why the ``"dense"`` rotation is slower, and why the Hadamard is not
    applied as a dense matrix. Whole runs, ``python benchmarks/quantize_cpu.py``
    (2**16 vectors, d = 128, both cores, other jobs running on the machine):
    encode 1.6-3.2 million and decode 2.0-4.0 million vectors per second,
    encode + decode 13-22 times one ``np.copyto`` of the float32 input at
    2-4 bits (community NumPy implementations: 100-400 times). A CuPy input
    runs on the GPU (``turboquant_lab.gpu``); nothing is copied to the host
    behind your back.

    Examples
    --------
    >>> q = TurboQuantMSE(d=128, bits=3, seed=0)
    >>> x = np.random.default_rng(1).standard_normal((1000, 128)).astype(np.float32)
    >>> enc = q.encode(x)
    >>> enc.codes.shape, enc.norms.dtype, enc.bits_per_coordinate
    ((1000, 48), dtype('float16'), 3.125)
    >>> x_hat = q.decode(enc)
    >>> err = np.sum((x - x_hat) ** 2, axis=1) / np.sum(x ** 2, axis=1)
    >>> bool(abs(err.mean() / q.expected_mse - 1) < 0.05)
    True
    """

    def __init__(self, d: int, bits: int, seed=0, rotation: str = "hadamard"):
        d = check_dim(d, "d")
        if d < 2:
            raise ValueError("d must be at least 2: a unit vector of R^1 is +-1, so there is no "
                             "direction to rotate and quantize; store such scalars directly")
        self.d = d
        self.bits = check_bits(bits, "bits")
        if rotation not in ROTATIONS:
            raise ValueError(f'rotation must be "hadamard" or "dense", got {rotation!r}')
        self.rotation = rotation
        self.seed = seed
        if rotation == "hadamard":
            self.d_pad = next_power_of_two(d)
            self._hadamard = RandomizedHadamard(self.d_pad, seed)
            self._matrix = self._dense64 = None
            s1, s2 = self._hadamard.signs1, self._hadamard.signs2
            self._signs1 = np.ascontiguousarray(s1[:d], dtype=np.float32)
            self._signs2 = np.ascontiguousarray(s2, dtype=np.float32)
            self.fingerprint = zlib.crc32(s2.tobytes(), zlib.crc32(s1.tobytes()))
        else:
            self.d_pad = d
            self._hadamard = None
            self._dense64 = random_orthogonal(d, seed)
            # (d, d) float32 Q: y = x @ Q.T rotates a row, x = y @ Q undoes it
            self._matrix = np.ascontiguousarray(self._dense64, dtype=np.float32)
            self.fingerprint = zlib.crc32(self._dense64.tobytes())
        self.fingerprint = zlib.crc32(rotation.encode(), self.fingerprint)
        self.codebook: Codebook = lloyd_max_codebook(self.bits, self.d_pad)
        n = self.d_pad
        self._sqrt_n = math.sqrt(n)
        self._thresholds = _float32_thresholds(self.codebook.boundaries)
        # Lloyd-Max codebooks of the symmetric coordinate law are symmetric about an exact 0
        self._symmetric = _symmetric_thresholds(self.codebook.boundaries) if self.bits <= 6 else None
        self._levels = (self.codebook.centroids / self._sqrt_n).astype(np.float32)
        self.n_bytes = packed_nbytes(n, self.bits)
        self._block_rows = max(1, BLOCK_ELEMENTS // n)
        self._kernel_constants = None  # made on the first kernel_constants()
        self._build_tables()

    def _build_tables(self):
        """Decoder tables: levels ``centroids / sqrt(d_pad)``, and pairs of them.

        The pair table holds, for every pair of codes ``(c0, c1)``, the two
        float32 levels side by side as one uint64, so one ``np.take`` decodes
        two coordinates. For the Hadamard rotation (bits <= 6) it also holds
        the four sign patterns of ``D2`` on a pair of coordinates: entry
        ``combo * 4**bits + (c0 | c1 << bits)`` is ``(s0 l[c0], s1 l[c1])``, and
        ``_pair_offsets[j] = combo_j * 4**bits`` for the pair of coordinates
        ``(2j, 2j+1)``; the sign flip ``D2`` then costs one uint16 add on the
        indices (0.07 ns per coordinate) instead of a float32 multiply on the
        values (0.16 ns).
        """
        self._pair_table = self._pair_offsets = None
        self._signs2_folded = False
        if self.bits not in _PAIRS_OK:
            return
        k = 1 << self.bits
        i = np.arange(k * k)
        lo, hi = self._levels[i & (k - 1)], self._levels[i >> self.bits]
        if self._hadamard is not None and self.bits <= 6:
            s = self._signs2
            n_pad = -(-self.d_pad // 64) * 64
            combo = np.zeros(n_pad // 2, dtype=np.uint16)  # 4 * 4**6 = 2**14 fits
            combo[: self.d_pad // 2] = (s[0::2] < 0) + 2 * (s[1::2] < 0)
            self._pair_offsets = combo * np.uint16(k * k)
            sign_lo = np.array([1, -1, 1, -1], np.float32)[:, None]
            sign_hi = np.array([1, 1, -1, -1], np.float32)[:, None]
            pairs = np.stack([sign_lo * lo, sign_hi * hi], axis=-1).reshape(-1, 2)
            self._signs2_folded = True
        else:
            pairs = np.stack([lo, hi], axis=1)
        # one uint64 per pair of float32 levels: np.take moves 8 bytes per index
        self._pair_table = np.ascontiguousarray(pairs, dtype=np.float32).view(np.uint64).reshape(-1)

    # ----------------------------------------------------------------- properties

    def kernel_constants(self) -> KernelConstants:
        """The constants a fused kernel needs: float32 signs, thresholds, levels, the matrix.

        The GPU path (:mod:`turboquant_lab.gpu`) and its NumPy emulation read
        the quantizer only through this; the arrays are read-only copies, made once.

        Examples
        --------
        >>> k = TurboQuantMSE(d=100, bits=2, seed=0).kernel_constants()
        >>> k.d_pad, k.n_bytes, k.thresholds.dtype, k.signs1.shape
        (128, 32, dtype('float32'), (128,))
        """
        if self._kernel_constants is None:
            had = self._hadamard
            self._kernel_constants = KernelConstants(
                self.rotation, self.d, self.d_pad, self.bits, self.n_bytes, self._sqrt_n,
                _read_only(self._thresholds), _read_only(self.codebook.centroids),
                _read_only(self._levels), _read_only(None if had is None else had.signs1),
                _read_only(None if had is None else had.signs2), _read_only(self._matrix))
        return self._kernel_constants

    @property
    def expected_mse(self) -> float:
        """Predicted ``E||x - x_hat||^2 / ||x||^2``: the codebook's MSE (see Notes)."""
        return self.codebook.mse

    def __repr__(self) -> str:
        pad = f", d_pad={self.d_pad}" if self.d_pad != self.d else ""
        return (f"TurboQuantMSE(d={self.d}, bits={self.bits}, rotation={self.rotation!r}{pad}, "
                f"expected_mse={self.expected_mse:.4g})")

    # ----------------------------------------------------------------- encode

    def encode(self, x) -> Encoded:
        """Encode vectors: packed codes and float16 norms.

        Parameters
        ----------
        x : (..., d) float array (NumPy or CuPy)
            Any float dtype; computed in float32.

        Returns
        -------
        Encoded
            ``codes`` (..., ceil(d_pad * bits / 8)) uint8, ``norms`` (...) float16.

        Raises
        ------
        TypeError
            Non-float ``x``.
        ValueError
            Wrong last axis, NaN or Inf, empty or 0-d ``x``, a norm above 65504.
        """
        if is_cupy_array(x):  # turboquant_lab.gpu's fused kernel, through the backend's registry
            return gpu_function("encode_mse")(self, x)
        x = as_float_array(x, "x", check_finite=False)  # finiteness checked on the norms below
        check_last_axis(x, self.d, "x")
        batch = tuple(x.shape[:-1])
        x2 = x.reshape(-1, self.d)
        rows = x2.shape[0]
        codes = np.empty((rows, self.n_bytes), dtype=np.uint8)
        norms = np.empty(rows, dtype=np.float32)
        m = min(self._block_rows, rows)
        n = self.d_pad

        def scratch():
            pad = np.zeros((m, n), dtype=np.float32) if self._hadamard is not None else None
            return (pad, np.empty((m, n), np.float32), np.empty((m, n), np.uint8),
                    np.empty((m, n), np.bool_), np.empty((m, n), np.bool_))

        def body(start, stop, buf):
            k = stop - start
            pad, t, c, tmp, sign = buf
            self._encode_block(x2[start:stop], None if pad is None else pad[:k], t[:k], c[:k],
                               tmp[:k], sign[:k], norms[start:stop], codes[start:stop])

        for_each_block(rows, m, body, scratch)
        if not np.isfinite(norms).all():
            ensure_finite(x, "x")  # names the NaN/Inf; otherwise the squares overflowed
            raise ValueError("x has a vector whose norm overflows float32; the norms are stored "
                             "as float16 (max 65504): rescale x first (e.g. x / x.std())")
        with np.errstate(over="ignore"):  # a norm above 65504 becomes inf: reported next
            norms16 = norms.astype(np.float16)
        if not np.isfinite(norms16).all():
            raise ValueError(f"x has a vector of norm {float(norms.max()):.6g}, above the float16 "
                             f"maximum {_FLOAT16_MAX:g} in which norms are stored: rescale x "
                             f"first (e.g. x / x.std()) and multiply the decoded vectors back")
        return Encoded(codes.reshape(batch + (self.n_bytes,)), norms16.reshape(batch), self.bits,
                       self.d, self.d_pad, batch, self.rotation, self.fingerprint)

    def _encode_block(self, xb, pad, t, c, tmp, sign, norms, codes_out):
        """One block: ``xb`` (k, d) -> ``norms`` (k,) float32 and ``codes_out`` (k, n_bytes)."""
        if xb.dtype != np.float32:
            xb = xb.astype(np.float32)
        np.sqrt(np.einsum("ij,ij->i", xb, xb), out=norms)
        with np.errstate(divide="ignore"):
            scale = np.where(norms > 0, np.float32(self._sqrt_n) / norms, np.float32(0.0))
        if self._hadamard is not None:
            # pad[:, d:] stays 0: the zero padding is written once per worker
            np.multiply(xb, self._signs1, out=pad[:, : self.d])
            y = fwht(pad)  # raises on NaN/Inf in x (it checks each block's first column)
            np.multiply(y, self._signs2, out=t)
        else:
            np.matmul(xb, self._matrix.T, out=t)
        t *= scale[:, None]
        if self._symmetric is not None:  # half the comparisons: |t| against the positive boundaries
            _bucketize_symmetric(t, self._symmetric, c, tmp, sign)
        else:
            _bucketize(t, self._thresholds, c, tmp)
        codes_out[...] = _pack_unchecked(c, self.bits)

    # ----------------------------------------------------------------- decode

    def check_encoded(self, enc) -> None:
        """Raise unless ``enc`` is an :class:`Encoded` that this quantizer can decode.

        Raises
        ------
        TypeError
            ``enc`` is not an :class:`Encoded`.
        ValueError
            Another ``d``, ``bits``, rotation or seed, or arrays that do not match ``enc.shape``.
        """
        if not isinstance(enc, Encoded):
            raise TypeError(f"decode needs the Encoded returned by encode, "
                            f"got {type(enc).__name__}")
        if enc.d != self.d or enc.bits != self.bits or enc.d_pad != self.d_pad:
            raise ValueError(f"these codes were made by a quantizer with d={enc.d}, bits={enc.bits}"
                             f" (d_pad={enc.d_pad}) but this one has d={self.d}, bits={self.bits} "
                             f"(d_pad={self.d_pad}): decode with the quantizer that encoded them")
        if enc.rotation != self.rotation or enc.fingerprint != self.fingerprint:
            raise ValueError(f"these codes were made with another rotation ({enc.rotation!r}, a "
                             f"different seed): decode with the quantizer that encoded them "
                             f"(same rotation and seed)")
        if tuple(enc.codes.shape) != tuple(enc.shape) + (self.n_bytes,) or \
                tuple(enc.norms.shape) != tuple(enc.shape):
            raise ValueError(f"Encoded arrays do not match its shape {enc.shape}: codes "
                             f"{tuple(enc.codes.shape)} (expected "
                             f"{tuple(enc.shape) + (self.n_bytes,)}), "
                             f"norms {tuple(enc.norms.shape)}")

    def decode(self, enc: Encoded):
        """Decode :meth:`encode`'s output back to vectors.

        Parameters
        ----------
        enc : Encoded
            From this quantizer (same ``d``, ``bits``, rotation and seed).

        Returns
        -------
        x_hat : (..., d) float32 array (NumPy, or CuPy for CuPy codes)

        Raises
        ------
        TypeError
            ``enc`` is not an :class:`Encoded`.
        ValueError
            ``enc`` comes from a quantizer with another ``d``, ``bits``, rotation or seed.
        """
        self.check_encoded(enc)
        if is_cupy_array(enc.codes):
            return gpu_function("decode_mse")(self, enc)
        batch = tuple(enc.shape)
        codes = np.asarray(enc.codes).reshape(-1, self.n_bytes)
        norms = np.asarray(enc.norms).reshape(-1).astype(np.float32)
        rows = codes.shape[0]
        out = np.empty((rows, self.d), dtype=np.float32)

        def body(start, stop, _):
            self._decode_block(codes[start:stop], norms[start:stop], out[start:stop])

        for_each_block(rows, min(self._block_rows, rows), body, lambda: None)
        return out.reshape(batch + (self.d,))

    def _lookup(self, packed):
        """``(k, n_bytes)`` packed codes -> ``(k, d_pad)`` float32 ``centroids[c] / sqrt(d_pad)``.

        With ``_signs2_folded`` the values come out already multiplied by ``D2``'s signs.
        """
        n = self.d_pad
        if self._pair_table is not None:
            idx = _unpack_pair_index(packed, self.bits, n)
            if self._pair_offsets is not None:  # the sign pattern of D2: a uint16 add in place
                np.add(idx, self._pair_offsets, out=idx)
            y = np.take(self._pair_table, idx, mode="clip").view(np.float32)
            return y if y.shape[1] == n else y[:, :n]
        c = _unpack_unchecked(packed, self.bits, n)
        return np.take(self._levels, c, mode="clip")

    def _decode_block(self, packed, norms, out):
        """One block: ``packed`` (k, n_bytes), ``norms`` (k,) float32 -> ``out`` (k, d) float32."""
        y = self._lookup(packed)
        if self._hadamard is not None:
            if not self._signs2_folded:
                y *= self._signs2
            z = fwht(y)
            np.multiply(z[:, : self.d], self._signs1, out=out)
        else:
            np.matmul(y, self._matrix, out=out)
        out *= norms[:, None]

    # ----------------------------------------------------------------- oracle

    def encode_reference(self, x) -> Encoded:
        """Plain float64 oracle for :meth:`encode` (NumPy, unblocked; for tests and teaching).

        Explicit zero padding, :meth:`RandomizedHadamard.forward` (FWHT) or the
        dense matrix, :meth:`Codebook.quantize` (searchsorted) and
        :func:`~turboquant_lab.packing.pack_bits_reference`.
        """
        x = as_float_array(x, "x")
        check_last_axis(x, self.d, "x")
        x = np.asarray(x, dtype=np.float64)
        batch = tuple(x.shape[:-1])
        r = np.linalg.norm(x, axis=-1)
        u = np.divide(x, r[..., None], out=np.zeros_like(x), where=r[..., None] > 0)
        if self.rotation == "hadamard":
            u_pad = np.zeros(batch + (self.d_pad,))
            u_pad[..., : self.d] = u
            y = self._hadamard.forward(u_pad)
        else:
            y = u @ self._dense64.T
        codes = self.codebook.quantize(self._sqrt_n * y)
        packed = pack_bits_reference(codes, self.bits)
        return Encoded(packed, r.astype(np.float16), self.bits, self.d, self.d_pad, batch,
                       self.rotation, self.fingerprint)

    def decode_reference(self, enc: Encoded) -> np.ndarray:
        """Plain float64 oracle for :meth:`decode`: levels, inverse rotation, truncation, scale."""
        self.check_encoded(enc)
        codes = unpack_bits_reference(np.asarray(enc.codes), self.bits, self.d_pad)
        y = self.codebook.centroids[codes] / self._sqrt_n
        if self.rotation == "hadamard":
            x = self._hadamard.inverse(y)[..., : self.d]
        else:
            x = y @ self._dense64
        return x * np.asarray(enc.norms, dtype=np.float64)[..., None]
