"""TurboQuant's inner-product quantizer: a (b-1)-bit MSE stage plus a 1-bit QJL sketch of the residual.

The MSE quantizer of :mod:`turboquant_lab.turboquant` shrinks every inner
product ``<q, k>`` by ``1 - D`` on average (2/pi at 1 bit). TurboQuant's
Algorithm 2 removes that bias: it spends one of the ``b`` bits per coordinate
on the signs of ``S r`` for the residual ``r = k - k_mse`` and a Gaussian
matrix ``S`` (Zandieh, Daliri, Han 2024, "QJL"), from which
``sqrt(pi/2)/d * ||r|| <S q, sign(S r)>`` estimates ``<q, r>`` without bias.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ._validate import as_float_array, check_bits, check_dim, check_last_axis
from .backend import get_xp
from .packing import pack_bits, packed_nbytes, unpack_bits, unpack_bits_reference
from .turboquant import _FLOAT16_MAX, ROTATIONS, Encoded, StoredSizes, TurboQuantMSE

__all__ = ["ProdEncoded", "TurboQuantProd"]


#: spawn key that separates the QJL matrix's random stream from the rotation's
_QJL_STREAM = 0x514A4C  # "QJL"


def _qjl_rng(seed):
    """The generator that draws S: a stream of its own for an int or SeedSequence seed.

    A ``Generator`` is used as it is (the MSE stage has already drawn its
    rotation from it, so S comes from the next draws).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(np.random.SeedSequence(
            seed.entropy, spawn_key=tuple(seed.spawn_key) + (_QJL_STREAM,)))
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, a SeedSequence or a Generator, "
                        f"got {seed!r}")
    return np.random.default_rng([int(seed), _QJL_STREAM])


@dataclass
class ProdEncoded(StoredSizes):
    """Vectors encoded by :class:`TurboQuantProd`.

    Attributes
    ----------
    mse : Encoded or None
        The ``(bits - 1)``-bit :class:`TurboQuantMSE` codes and norms of ``x``
        (``None`` when ``bits == 1``: then ``x_mse = 0``).
    signs : (..., ceil(d / 8)) uint8 array
        The QJL sketch ``sign(S r)`` of the residual ``r = x - x_mse``, one bit
        per row of ``S`` (1 for ``>= 0``), packed by
        :func:`~turboquant_lab.packing.pack_bits` with ``bits=1``.
    residual_norms : (...) float16 array
        ``||r||``.
    bits : int
        Total bits per coordinate (``bits - 1`` for the MSE stage, 1 for the sketch).
    d : int
    shape : tuple
        Batch shape.
    fingerprint : int
        CRC-32 of the rotation and of S: a quantizer with another seed is caught.
    """

    mse: object
    signs: object
    residual_norms: object
    bits: int
    d: int
    shape: tuple
    fingerprint: int = field(default=0, repr=False)


    @property
    def nbytes(self) -> int:
        """Real storage in bytes: MSE codes and norms, packed signs, residual norms."""
        n = int(self.signs.nbytes + self.residual_norms.nbytes)
        return n + (self.mse.nbytes if self.mse is not None else 0)



class TurboQuantProd:
    """TurboQuant's inner-product quantizer: unbiased estimates of ``<x, y>`` from ``bits`` bits.

    A ``(bits - 1)``-bit :class:`TurboQuantMSE` stage stores ``x_mse``; a
    1-bit QJL sketch (Zandieh, Daliri, Han 2024) stores the signs of ``S r``
    for the residual ``r = x - x_mse`` and a Gaussian matrix ``S``, plus
    ``||r||``. From these, :meth:`inner_product` estimates ``<x, y>`` for any
    query ``y`` *without bias*, which the MSE quantizer alone does not do.

    Parameters
    ----------
    d : int
        Dimension, at least 2; ``S`` is ``d x d`` (``4 d**2`` bytes as
        float32: 64 MiB at ``d = 4096``).
    bits : int
        Total bits per coordinate, 1 to 8: ``bits - 1`` for the MSE stage and
        1 for the sketch. At ``bits = 1`` there is no MSE stage: ``x_mse = 0``,
        ``r = x``, and this is the plain QJL sketch of ``x`` (as in the paper,
        which defines the quantizer for ``b >= 1``).
    seed : int, SeedSequence or numpy.random.Generator
        Draws the MSE stage's rotation (the same as ``TurboQuantMSE(d, bits - 1,
        seed)``) and, from a separate stream, ``S``.
    rotation : {"hadamard", "dense"}
        Rotation of the MSE stage (see :class:`TurboQuantMSE`).

    Attributes
    ----------
    mse : TurboQuantMSE or None
        The MSE stage (``None`` at ``bits = 1``).
    S : (d, d) float32 ndarray
        The QJL matrix, i.i.d. N(0, 1) entries.

    Raises
    ------
    TypeError, ValueError
        ``d < 2``, ``bits`` outside 1..8, a bad ``seed`` or ``rotation``.

    Notes
    -----
    **Encoding** (TurboQuant, arXiv 2504.19874, Algorithm 2):
    ``x_mse = MSE_{b-1}(x)`` (decoded), ``r = x - x_mse``, stored as the MSE
    codes, ``z = sign(S r)`` (``d`` bits) and ``||r||`` (float16). Storage:
    ``(b - 1) d_pad + d + 32`` bits per vector (two float16 norms), i.e.
    ``b + 32 / d`` bits per coordinate for a power-of-two ``d``.

    **Decoding and the estimator**, with ``c = sqrt(pi/2) / d``:

    .. math::

        \\tilde x = x_{mse} + c\\, \\|r\\|\\, S^T \\mathrm{sign}(S r), \\qquad
        \\widehat{\\langle x, y\\rangle} = \\langle x_{mse}, y\\rangle
            + c\\, \\|r\\|\\, \\langle \\mathrm{sign}(S r), S y\\rangle
            = \\langle \\tilde x, y\\rangle.

    **Why it is unbiased.** Let ``s`` be one row of ``S`` (``s ~ N(0, I_d)``)
    and write ``y = a u + y_perp`` with ``u = r / ||r||``. Then ``g = <s, u>``
    is N(0, 1) and independent of ``<s, y_perp>`` (which has mean 0), so

    .. math::

        E[\\mathrm{sign}(\\langle s, r\\rangle)\\langle s, y\\rangle]
        = a\\, E|g| = \\sqrt{2/\\pi}\\, \\langle r, y\\rangle / \\|r\\|.

    Summing the ``d`` rows and multiplying by ``c ||r||`` gives exactly
    ``<r, y>``: the sketch term is an unbiased estimate of the residual's
    inner product, whatever ``x_mse`` is, so the whole estimate is unbiased
    (the expectation is over ``S``). This needs *Gaussian* rows: with
    orthonormal rows (a QR of ``S``) each ``E|<s, u>|`` is about
    ``sqrt(2/(pi d))``, not ``sqrt(2/pi)``, and the same ``c`` would make the
    correction about ``sqrt(d)`` times too small.

    **Variance.** Each term ``sign(<s, r>) <s, y>`` has second moment
    ``E<s, y>^2 = ||y||^2``, the ``d`` rows are independent, so

    .. math::

        \\mathrm{Var} = \\frac{1}{d}\\Big(\\frac{\\pi}{2}\\|r\\|^2\\|y\\|^2
                                 - \\langle r, y\\rangle^2\\Big)
              \\le \\frac{\\pi}{2d}\\, \\|y\\|^2 \\|r\\|^2 .

    For a unit ``x``, ``E||r||^2`` is the MSE stage's distortion ``D(b-1)``
    (1 at ``b = 1``): :attr:`variance_bound` is ``pi / (2d) D(b-1)``, and
    with the paper's ``D(b-1) <= sqrt(3) pi / 2 * 4**-(b-1)`` it is at most
    :attr:`paper_bound` ``= sqrt(3) pi**2 / (d 4**b)`` (Theorem 2).

    **The price.** The decoded vector is unbiased (``E x_tilde = x``) but
    noisy: ``E||x_tilde - x||^2 = (pi/2 - 1/d) ||r||^2``, *more* than the
    ``||r||^2`` of ``x_mse`` alone. Use :meth:`inner_product` for scores;
    use :class:`TurboQuantMSE` when you need the vector back.

    Cost: encoding adds one ``d x d`` product per vector to the MSE stage;
    :meth:`inner_product` costs ``O(d^2)`` per query (``S y`` once) plus
    ``O(d)`` per (query, key) pair.

    Examples
    --------
    >>> q = TurboQuantProd(d=128, bits=3, seed=0)
    >>> rng = np.random.default_rng(1)
    >>> keys = rng.standard_normal((1000, 128)).astype(np.float32)
    >>> enc = q.encode(keys)
    >>> enc.bits_per_coordinate
    3.25
    >>> y = rng.standard_normal(128)
    >>> q.inner_product(enc, y).shape, q.inner_product(enc, np.stack([y, y])).shape
    ((1000,), (2, 1000))
    """

    def __init__(self, d: int, bits: int, seed=0, rotation: str = "hadamard"):
        d = check_dim(d, "d")
        if d < 2:
            raise ValueError("d must be at least 2 (the MSE stage rotates directions of R^d)")
        self.d = d
        self.bits = check_bits(bits, "bits")
        if rotation not in ROTATIONS:
            raise ValueError(f'rotation must be "hadamard" or "dense", got {rotation!r}')
        self.rotation = rotation
        self.seed = seed
        # an int or SeedSequence is checked (and S's stream made) first; a Generator
        # draws the rotation first, then S
        rng = None if isinstance(seed, np.random.Generator) else _qjl_rng(seed)
        self.mse = TurboQuantMSE(d, self.bits - 1, seed, rotation) if self.bits > 1 else None
        if rng is None:
            rng = seed
        self.S = rng.standard_normal((d, d)).astype(np.float32)
        self._c = math.sqrt(math.pi / 2.0) / d
        self.n_sign_bytes = packed_nbytes(d, 1)
        crc = zlib.crc32(self.S.tobytes())
        if self.mse is not None:
            crc = zlib.crc32(self.mse.fingerprint.to_bytes(4, "little"), crc)
        self.fingerprint = zlib.crc32(b"prod%d" % self.bits, crc)
        self._S_dev = {}

    # ----------------------------------------------------------------- properties

    @property
    def residual_mse(self) -> float:
        """``E||r||^2 / ||x||^2`` predicted for the MSE stage: its codebook MSE (1.0 at ``bits = 1``)."""
        return 1.0 if self.mse is None else self.mse.expected_mse

    @property
    def variance_bound(self) -> float:
        """``pi / (2 d) * residual_mse``: bound on ``E(est - <x, y>)^2`` for unit ``x`` and ``y``."""
        return math.pi / (2.0 * self.d) * self.residual_mse

    @property
    def paper_bound(self) -> float:
        """The paper's bound ``sqrt(3) pi**2 / (d 4**bits)`` on the distortion, unit ``x`` and ``y``."""
        return math.sqrt(3.0) * math.pi ** 2 / (self.d * 4.0 ** self.bits)

    def __repr__(self) -> str:
        return (f"TurboQuantProd(d={self.d}, bits={self.bits} = {self.bits - 1} (MSE) + 1 (QJL), "
                f"rotation={self.rotation!r})")

    def _S(self, xp):
        if xp is np:
            return self.S
        key = id(xp)
        if key not in self._S_dev:
            self._S_dev[key] = xp.asarray(self.S)
        return self._S_dev[key]

    # ----------------------------------------------------------------- encode / decode

    def encode(self, x) -> ProdEncoded:
        """Encode vectors: MSE codes and norm, packed residual signs, residual norm.

        Parameters
        ----------
        x : (..., d) float array (NumPy or CuPy)

        Returns
        -------
        ProdEncoded

        Raises
        ------
        TypeError
            Non-float ``x``.
        ValueError
            Wrong last axis, NaN or Inf, empty ``x``, a norm above the float16 maximum.
        """
        x = as_float_array(x, "x")
        check_last_axis(x, self.d, "x")
        xp = get_xp(x)
        batch = tuple(x.shape[:-1])
        x32 = x.reshape(-1, self.d).astype(xp.float32)
        if self.mse is not None:
            enc_mse = self.mse.encode(x32)
            r = x32 - self.mse.decode(enc_mse)
        else:
            enc_mse = None
            r = x32
        rn = xp.sqrt(xp.einsum("ij,ij->i", r, r))
        if not bool(xp.isfinite(rn).all()) or float(rn.max()) > _FLOAT16_MAX:
            raise ValueError(f"x has a vector whose residual norm {float(rn.max()):.6g} is above the "
                             f"float16 maximum {_FLOAT16_MAX:g} in which norms are stored: rescale x "
                             f"first (e.g. x / x.std())")
        rn16 = rn.astype(xp.float16)
        proj = r @ self._S(xp).T
        signs = pack_bits((proj >= 0).astype(xp.uint8), 1)
        if enc_mse is not None:
            enc_mse = Encoded(enc_mse.codes.reshape(batch + (self.mse.n_bytes,)),
                              enc_mse.norms.reshape(batch), enc_mse.bits, enc_mse.d,
                              enc_mse.d_pad, batch, enc_mse.rotation, enc_mse.fingerprint)
        return ProdEncoded(enc_mse, signs.reshape(batch + (self.n_sign_bytes,)), rn16.reshape(batch),
                           self.bits, self.d, batch, self.fingerprint)

    def check_encoded(self, enc) -> None:
        """Raise unless ``enc`` is a :class:`ProdEncoded` made by this quantizer (same ``d``,
        ``bits`` and seed, arrays matching ``enc.shape``)."""
        if not isinstance(enc, ProdEncoded):
            raise TypeError(f"this needs the ProdEncoded returned by TurboQuantProd.encode, "
                            f"got {type(enc).__name__}")
        if enc.d != self.d or enc.bits != self.bits or enc.fingerprint != self.fingerprint:
            raise ValueError(f"these codes were made by another quantizer (d={enc.d}, "
                             f"bits={enc.bits}, or another seed) than this one (d={self.d}, "
                             f"bits={self.bits}): use the quantizer that encoded them")
        if tuple(enc.signs.shape) != tuple(enc.shape) + (self.n_sign_bytes,) or \
                tuple(enc.residual_norms.shape) != tuple(enc.shape):
            raise ValueError(f"ProdEncoded arrays do not match its shape {enc.shape}")

    def _parts(self, enc):
        """``(x_mse or None, z, ||r||)`` as (n, d), (n, d) of +-1 and (n,) float32 arrays."""
        xp = get_xp(enc.signs)
        n = enc.n_vectors
        x_mse = None
        if enc.mse is not None:
            x_mse = self.mse.decode(enc.mse).reshape(n, self.d)
        bits = unpack_bits(enc.signs.reshape(n, self.n_sign_bytes), 1, self.d)
        z = bits.astype(xp.float32) * 2.0 - 1.0
        rn = enc.residual_norms.reshape(n).astype(xp.float32)
        return x_mse, z, rn

    def decode(self, enc: ProdEncoded):
        """The unbiased reconstruction ``x_tilde = x_mse + sqrt(pi/2)/d ||r|| S^T sign(S r)``.

        Returns
        -------
        x_tilde : (..., d) float32 array
            ``E[x_tilde] = x`` over ``S``, but ``E||x_tilde - x||^2 = (pi/2 - 1/d)
            ||r||^2`` (see Notes of the class): for scores use :meth:`inner_product`.
        """
        self.check_encoded(enc)
        xp = get_xp(enc.signs)
        x_mse, z, rn = self._parts(enc)
        out = (z @ self._S(xp)) * (xp.float32(self._c) * rn[:, None])
        if x_mse is not None:
            out += x_mse
        return out.reshape(tuple(enc.shape) + (self.d,))

    def inner_product(self, enc: ProdEncoded, y):
        """Unbiased estimates of ``<x, y>`` for every encoded ``x`` and every query ``y``.

        Parameters
        ----------
        enc : ProdEncoded
            ``n`` encoded vectors (any batch shape ``B``).
        y : (d,) or (..., d) float array
            Queries (exact).

        Returns
        -------
        est : (..., *B) float32 array
            ``est[i..., j...] ~ <x_j, y_i>``: queries first, like ``y @ X.T``.
            ``y`` of shape ``(d,)`` gives shape ``B`` (``(n,)``); ``(m, d)``
            gives ``(m, n)``.

        Notes
        -----
        ``<x_mse, y> + sqrt(pi/2)/d ||r|| <sign(S r), S y>``: ``S y`` is
        computed once per query (``O(d^2)``), then each pair costs two
        length-``d`` dot products.
        """
        self.check_encoded(enc)
        y = as_float_array(y, "y")
        check_last_axis(y, self.d, "y")
        xp = get_xp(enc.signs)
        qshape = tuple(y.shape[:-1])
        y2 = y.reshape(-1, self.d).astype(xp.float32)
        x_mse, z, rn = self._parts(enc)
        sy = y2 @ self._S(xp).T                      # (m, d): S y once per query
        est = (sy @ z.T) * (xp.float32(self._c) * rn[None, :])
        if x_mse is not None:
            est += y2 @ x_mse.T
        return est.reshape(qshape + tuple(enc.shape))

    # ----------------------------------------------------------------- oracle

    def inner_product_reference(self, enc: ProdEncoded, y) -> np.ndarray:
        """Plain float64 oracle for :meth:`inner_product`: the dense formula, one pair at a time."""
        self.check_encoded(enc)
        y = np.asarray(y, dtype=np.float64)
        n = enc.n_vectors
        S = self.S.astype(np.float64)
        x_mse = (np.zeros((n, self.d)) if enc.mse is None
                 else self.mse.decode_reference(enc.mse).reshape(n, self.d))
        z = unpack_bits_reference(np.asarray(enc.signs).reshape(n, -1), 1, self.d) * 2.0 - 1.0
        rn = np.asarray(enc.residual_norms, dtype=np.float64).reshape(n)
        ys = y.reshape(-1, self.d)
        out = np.empty((ys.shape[0], n))
        for i, yi in enumerate(ys):
            for j in range(n):
                out[i, j] = x_mse[j] @ yi + self._c * rn[j] * (z[j] @ (S @ yi))
        return out.reshape(y.shape[:-1] + tuple(enc.shape))
