"""How a quantizer plugs into a model's KV cache: the ``KVCodec`` protocol and the uniform baselines.

A KV cache keeps, for every layer and KV head, the keys and values of all
tokens seen so far: one ``(n_tokens, d)`` block each. A *codec* stores such a
block in fewer bits and gives back what attention then uses. Anything with

- ``encode(x)``: ``(n_tokens, d)`` float32 block -> a stored form, and
- ``decode(stored)``: the stored form -> ``(n_tokens, d)`` float array,

is a codec. The course's quantizers already are: :class:`~turboquant_lab.turboquant.TurboQuantMSE`,
:class:`~turboquant_lab.qjl.TurboQuantProd` and PolarQuant encode any ``(..., d)``
array. A codec that also has ``inner_product(stored, q)`` (``(m, d)`` queries ->
``(m, n_tokens)`` scores, as ``TurboQuantProd`` has) can give the attention
scores directly, without decoding the keys.

The size of what is stored (:func:`stored_nbytes`) counts codes and all side
information (norms, ranges, scales), in bytes; it is what a real cache would hold.

The uniform baselines of the KV-cache literature are here as codecs:

- :class:`UniformCodec` ``(bits, axis="token")``: min-max uniform levels per
  token vector, ``lo`` and ``scale`` stored as float16 (32 bits per vector);
- :class:`UniformCodec` ``(bits, axis="channel", group_size=G)``: per channel
  over groups of ``G`` tokens, as KIVI quantizes keys (Liu et al. 2024), with a
  float16 ``lo`` and ``scale`` per channel and group (:func:`uniform_quantize_channels`);
- :class:`FloatCodec`: the unquantized cache in float16 (the usual baseline)
  or float32 (the identity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ._validate import as_float_array, check_bits
from .packing import packed_nbytes
from .uniform import UniformQuantized, uniform_dequantize, uniform_quantize

__all__ = ["KVCodec", "FloatCodec", "UniformCodec", "ChannelQuantized", "uniform_quantize_channels",
           "uniform_dequantize_channels", "stored_nbytes", "check_codec", "KVQuantization"]

#: bytes of a float16 number, the side information of the uniform codecs
_SIDE_BYTES = 2


@runtime_checkable
class KVCodec(Protocol):
    """What the model's KV-cache hook needs from a quantizer.

    ``encode(x)`` takes one layer's and one KV head's keys (or values),
    ``(n_tokens, d)`` float32, and returns any stored form; ``decode(stored)``
    returns ``(n_tokens, d)``. Optional: ``inner_product(stored, q)`` with
    ``q`` of shape ``(m, d)`` returning the ``(m, n_tokens)`` estimates of
    ``q @ x.T`` (used for the attention scores when present); and either
    ``nbytes(stored)`` or a ``bits_per_coordinate`` attribute, when the stored
    form has no ``nbytes`` of its own (see :func:`stored_nbytes`).
    """

    def encode(self, x): ...

    def decode(self, stored): ...


def check_codec(codec, name: str = "codec"):
    """Return ``codec`` if it has ``encode`` and ``decode``, else raise ``TypeError`` naming the fix."""
    if not (callable(getattr(codec, "encode", None)) and callable(getattr(codec, "decode", None))):
        raise TypeError(f"{name} must be a KV codec with encode(x) and decode(stored) (e.g. "
                        f"tql.TurboQuantMSE(64, 3), tql.UniformCodec(3)), got {type(codec).__name__}")
    return codec


def stored_nbytes(codec, stored, n_tokens: int, d: int) -> int:
    """Bytes of one stored block: codes plus all side information.

    Taken, in this order, from ``codec.nbytes(stored)`` when the codec has that
    method; from ``stored.nbytes`` when the stored form is not a bare array
    (:class:`~turboquant_lab.turboquant.Encoded`, :class:`~turboquant_lab.qjl.ProdEncoded`
    and the stored forms here count everything they hold); else from the codec's
    ``bits_per_coordinate``: ``ceil(bits_per_coordinate * n_tokens * d / 8)``;
    else, for a bare array, its own ``nbytes``.

    Examples
    --------
    >>> x = np.ones((10, 64), dtype=np.float32)
    >>> stored_nbytes(FloatCodec(np.float16), FloatCodec(np.float16).encode(x), 10, 64)
    1280
    """
    own = getattr(codec, "nbytes", None)
    if callable(own):
        return int(own(stored))
    if not isinstance(stored, np.ndarray) and hasattr(stored, "nbytes"):
        return int(stored.nbytes)
    bpc = getattr(codec, "bits_per_coordinate", None)
    if bpc is not None and not callable(bpc):
        return int(math.ceil(float(bpc) * n_tokens * d / 8))
    if hasattr(stored, "nbytes"):
        return int(stored.nbytes)
    raise TypeError(f"cannot tell the size of what {type(codec).__name__}.encode stores: give the "
                    f"codec an nbytes(stored) method or a bits_per_coordinate attribute")


# --------------------------------------------------------------------------- float


class FloatCodec:
    """The cache kept as plain floats: float16 (the usual baseline, 16 bits) or float32 (exact).

    Examples
    --------
    >>> x = np.array([[1.0, 1 / 3]], dtype=np.float32)
    >>> FloatCodec(np.float16).decode(FloatCodec(np.float16).encode(x))
    array([[1.        , 0.33325195]], dtype=float32)
    """

    def __init__(self, dtype=np.float16):
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a float dtype (np.float16 or np.float32), got {dtype}")
        self.dtype = dtype
        self.bits_per_coordinate = 8 * dtype.itemsize

    def __repr__(self) -> str:
        return f"FloatCodec({self.dtype.name})"

    def encode(self, x):
        return np.array(as_float_array(x, "x"), dtype=self.dtype)

    def decode(self, stored):
        return np.asarray(stored, dtype=np.float32)

    def nbytes(self, stored) -> int:
        return int(np.asarray(stored).nbytes)


# --------------------------------------------------------------------------- per channel


@dataclass
class ChannelQuantized:
    """Codes of :func:`uniform_quantize_channels`: per channel, min-max levels over groups of tokens.

    Attributes
    ----------
    codes : (..., n, d) uint8 ndarray
        Level of each coordinate, in ``[0, 2**bits - 1]``.
    lo, scale : (..., n_groups, d) ndarray of the side dtype
        Lowest level and slot width of each channel in each group of ``group_size`` tokens.
    bits, group_size : int
    """

    codes: np.ndarray
    lo: np.ndarray
    scale: np.ndarray
    bits: int
    group_size: int

    @property
    def nbytes(self) -> int:
        """Packed codes (``ceil(d * bits / 8)`` bytes per token) plus ``lo`` and ``scale``."""
        n_vectors = int(np.prod(self.codes.shape[:-1]))
        return (n_vectors * packed_nbytes(self.codes.shape[-1], self.bits)
                + int(self.lo.nbytes + self.scale.nbytes))


def uniform_quantize_channels(x, bits: int, group_size: int | None = None,
                              side_dtype=np.float16) -> ChannelQuantized:
    """Quantize each channel over groups of tokens, KIVI's way of storing keys.

    Parameters
    ----------
    x : (..., n, d) float ndarray
        Tokens on axis -2, channels on axis -1.
    bits : int, 1 to 8
    group_size : int, optional
        Tokens per group (the last group may be shorter); ``None``: one group of
        all ``n`` tokens.
    side_dtype : numpy float dtype
        Dtype in which ``lo`` and ``scale`` are stored (float16, as a cache would).

    Returns
    -------
    ChannelQuantized
        ``codes`` ``(..., n, d)``; ``lo``, ``scale`` ``(..., ceil(n / group_size), d)``.

    Notes
    -----
    For channel ``j`` and group ``g`` of tokens ``T_g``:

    .. math:: s_{gj} = \\frac{\\max_{t \\in T_g} x_{tj} - \\min_{t \\in T_g} x_{tj}}{2^b - 1},
              \\quad q_{tj} = \\operatorname{round}\\left(\\frac{x_{tj} - \\min_{T_g} x_{\\cdot j}}{s_{gj}}\\right)

    the per-token quantizer (:func:`~turboquant_lab.uniform.uniform_quantize`)
    applied to each channel of each group. A channel that is large in every token
    (an outlier channel of the keys) gets its own wide range, and the quiet
    channels keep fine slots: this is why KIVI quantizes keys per channel.
    Storage: ``bits`` per coordinate plus ``2 * 16 / group_size`` for the
    float16 ``lo`` and ``scale`` (0.5 bits at ``group_size = 64``, the same as
    per-token side information at ``d = 64``).

    Examples
    --------
    Three tokens, two channels; the second channel is ten times louder and gets
    its own range (slot width 10 against 1 for the first):

    >>> x = np.array([[0.0, 10.0], [1.0, 40.0], [3.0, 20.0]])
    >>> q = uniform_quantize_channels(x, bits=2)
    >>> q.codes.T, q.scale
    (array([[0, 1, 3],
           [0, 3, 1]], dtype=uint8), array([[ 1., 10.]], dtype=float16))
    >>> uniform_dequantize_channels(q)
    array([[ 0., 10.],
           [ 1., 40.],
           [ 3., 20.]], dtype=float32)
    """
    x = as_float_array(x, "x", min_ndim=2)
    bits = check_bits(bits)
    n = x.shape[-2]
    if group_size is None:
        group_size = n
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size < 1:
        raise ValueError(f"group_size must be a positive number of tokens (or None for all), "
                         f"got {group_size!r}")
    group_size = int(group_size)
    codes, los, scales = [], [], []
    for start in range(0, n, group_size):
        block = np.swapaxes(x[..., start:start + group_size, :], -1, -2)   # (..., d, g)
        q = uniform_quantize(block, bits, side_dtype=side_dtype)
        codes.append(np.swapaxes(q.codes, -1, -2))
        los.append(q.lo)
        scales.append(q.scale)
    return ChannelQuantized(codes=np.concatenate(codes, axis=-2), lo=np.stack(los, axis=-2),
                            scale=np.stack(scales, axis=-2), bits=bits, group_size=group_size)


def uniform_dequantize_channels(q: ChannelQuantized):
    """``x_hat[t, j] = lo[g(t), j] + codes[t, j] * scale[g(t), j]``, shape ``(..., n, d)``."""
    if not isinstance(q, ChannelQuantized):
        raise TypeError(f"q must be the ChannelQuantized of uniform_quantize_channels, "
                        f"got {type(q).__name__}")
    n = q.codes.shape[-2]
    dtype = np.promote_types(q.lo.dtype, np.float32)
    lo = np.repeat(q.lo.astype(dtype), q.group_size, axis=-2)[..., :n, :]
    scale = np.repeat(q.scale.astype(dtype), q.group_size, axis=-2)[..., :n, :]
    return lo + q.codes.astype(dtype) * scale


# --------------------------------------------------------------------------- the uniform codec


@dataclass
class UniformStored:
    """What :class:`UniformCodec` stores: the codes and their float16 side information."""

    q: object   # UniformQuantized (per token) or ChannelQuantized (per channel)

    @property
    def nbytes(self) -> int:
        if isinstance(self.q, ChannelQuantized):
            return self.q.nbytes
        codes = self.q.codes
        n_vectors = int(np.prod(codes.shape[:-1]))
        return n_vectors * packed_nbytes(codes.shape[-1], self.q.bits) + int(self.q.lo.nbytes
                                                                                + self.q.scale.nbytes)


class UniformCodec:
    """Min-max uniform quantization of a cache block, per token or per channel.

    Parameters
    ----------
    bits : int, 1 to 8
    axis : {"token", "channel"}
        ``"token"``: each token's ``d``-vector gets its own ``lo`` and ``scale``
        (:func:`~turboquant_lab.uniform.uniform_quantize`, the essay's naive
        quantizer). ``"channel"``: each channel gets them over a group of
        ``group_size`` tokens (:func:`uniform_quantize_channels`, KIVI's keys).
    group_size : int, optional
        Tokens per group for ``"channel"`` (default 64: the same 0.5 bits of side
        information per coordinate as ``"token"`` at ``d = 64``). ``None``: one
        group over all tokens.

    Notes
    -----
    ``lo`` and ``scale`` are float16 (32 bits per vector or per channel and
    group), counted in :func:`stored_nbytes`, and the codes are counted packed
    (``ceil(d * bits / 8)`` bytes per token), the course's convention (lesson 08).

    Per channel over a group, the range of a token's code depends on the other
    tokens of its group, later ones included. In a full pass (the cache after a
    prefill) this is what a stored cache holds; KIVI keeps the newest, partial
    group in full precision until it fills, which this codec does not model.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((128, 64)).astype(np.float32)
    >>> codec = UniformCodec(4, axis="channel")
    >>> stored = codec.encode(x)
    >>> stored_nbytes(codec, stored, 128, 64) * 8 / x.size     # 4 bits + 0.5 of side information
    4.5
    >>> bool(np.abs(codec.decode(stored) - x).max() < 0.5)
    True
    """

    def __init__(self, bits: int, axis: str = "token", group_size: int | None = 64):
        self.bits = check_bits(bits)
        if axis not in ("token", "channel"):
            raise ValueError(f'axis must be "token" (per vector) or "channel" (KIVI), got {axis!r}')
        self.axis = axis
        if group_size is not None and (isinstance(group_size, bool) or
                                       not isinstance(group_size, (int, np.integer)) or group_size < 1):
            raise ValueError(f"group_size must be a positive number of tokens or None, got {group_size!r}")
        self.group_size = None if group_size is None else int(group_size)

    def __repr__(self) -> str:
        extra = f", group_size={self.group_size}" if self.axis == "channel" else ""
        return f"UniformCodec({self.bits}, axis={self.axis!r}{extra})"

    def encode(self, x) -> UniformStored:
        x = as_float_array(x, "x", min_ndim=2)
        if self.axis == "token":
            return UniformStored(uniform_quantize(x, self.bits, side_dtype=np.float16))
        return UniformStored(uniform_quantize_channels(x, self.bits, self.group_size))

    def decode(self, stored: UniformStored):
        if not isinstance(stored, UniformStored):
            raise TypeError(f"stored must be what UniformCodec.encode returned, got {type(stored).__name__}")
        if isinstance(stored.q, UniformQuantized):
            return uniform_dequantize(stored.q)
        return uniform_dequantize_channels(stored.q)


# --------------------------------------------------------------------------- the hook


@dataclass(frozen=True)
class KVQuantization:
    """Which codecs store the cache's keys and values: the hook of :meth:`turboquant_lab.llm.Llama.forward`.

    Attributes
    ----------
    keys, values : KVCodec or None
        Codecs (``encode``/``decode``, see :mod:`turboquant_lab.kv_codecs`) for
        the keys (after RoPE) and the values; ``None`` keeps them exact
        (counted as float16 in the cache's size).
    key_scores : {"auto", "decode", "inner_product"}
        How attention gets its scores from the stored keys: ``"decode"``:
        ``q @ decode(stored).T``; ``"inner_product"``: the codec's
        ``inner_product(stored, q)`` (``TurboQuantProd``: unbiased estimates);
        ``"auto"``: ``inner_product`` when the key codec has one.
    layers : tuple of int, optional
        The layers whose cache is quantized (default: all).

    Examples
    --------
    >>> from turboquant_lab import TurboQuantMSE, TurboQuantProd
    >>> KVQuantization(keys=TurboQuantProd(64, 3), values=TurboQuantMSE(64, 3)).uses_inner_product()
    True
    >>> KVQuantization(keys=UniformCodec(3, axis="channel"), values=UniformCodec(3)).uses_inner_product()
    False
    """

    keys: object = None
    values: object = None
    key_scores: str = "auto"
    layers: tuple | None = None

    def __post_init__(self):
        if self.keys is not None:
            check_codec(self.keys, "keys")
        if self.values is not None:
            check_codec(self.values, "values")
        if self.key_scores not in ("auto", "decode", "inner_product"):
            raise ValueError(f'key_scores must be "auto", "decode" or "inner_product", got {self.key_scores!r}')
        if self.key_scores == "inner_product" and not callable(getattr(self.keys, "inner_product", None)):
            raise ValueError("key_scores='inner_product' needs a key codec with inner_product(stored, q), "
                             "such as TurboQuantProd")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    @classmethod
    def of(cls, kv) -> KVQuantization | None:
        """``None``, a :class:`KVQuantization`, or one codec for both keys and values."""
        if kv is None or isinstance(kv, cls):
            return kv
        check_codec(kv, "kv")
        return cls(keys=kv, values=kv)

    def uses_inner_product(self) -> bool:
        return self.keys is not None and (
            self.key_scores == "inner_product"
            or (self.key_scores == "auto" and callable(getattr(self.keys, "inner_product", None))))

    def applies_to(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers
