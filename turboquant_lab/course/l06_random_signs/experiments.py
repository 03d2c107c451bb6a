"""Lesson 06 (random signs): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from turboquant_lab.codebooks import lloyd_max_codebook
from turboquant_lab.data import make_kv_vectors
from turboquant_lab.rotation import random_orthogonal
from turboquant_lab.validation import as_float_array, check_dim, check_power_of_two, make_rng
from turboquant_lab.walsh_hadamard import fwht, hadamard

__all__ = [
    "SIGN_INPUTS", "SIGN_TRANSFORMS", "HADAMARD_ROW", "sign_demo_input", "sign_transform",
    "quantization_error", "SignDemo", "compute_sign_demo", "COLLISION_MODES", "pad_to_power_of_two",
    "compute_collision",
]

#: Inputs of lesson 06 (all scaled to unit length).
SIGN_INPUTS = ("constant", "Hadamard row", "e_1", "KV vector", "random")


#: Transforms of lesson 06: fixed H, one sign flip, two sign flips, a Haar-random rotation.
SIGN_TRANSFORMS = ("H", "H D", "D2 H D1", "dense Haar")


#: Which row of H the "Hadamard row" input is.
HADAMARD_ROW = 5


def sign_demo_input(name, d=64, seed=0):
    """One of the inputs of lesson 06, as a unit vector of shape ``(d,)`` (float64).

    ``"constant"`` is ``[1, ..., 1] / sqrt(d)``; ``"Hadamard row"`` is row
    :data:`HADAMARD_ROW` of ``hadamard(d) / sqrt(d)``; ``"e_1"`` is
    ``[0, 1, 0, ..., 0]``; ``"KV vector"`` is ``make_kv_vectors(1, d, seed=seed)``
    (5 outlier channels, 20x); ``"random"`` is a Gaussian vector. The first
    three are the bad inputs of a fixed H: ``H x / sqrt(d)`` is one spike for
    the first two.
    """
    d = check_power_of_two(d, "d")
    if name == "constant":
        x = np.ones(d)
    elif name == "Hadamard row":
        x = hadamard(d)[HADAMARD_ROW % d].astype(np.float64)
    elif name == "e_1":
        x = np.eye(d)[1 % d]
    elif name == "KV vector":
        x = make_kv_vectors(1, d, seed=seed)[0].astype(np.float64)
    elif name == "random":  # its own stream: not the stream a transform with the same seed uses
        x = np.random.default_rng([seed, 606]).standard_normal(d)
    else:
        raise ValueError(f"name must be one of {SIGN_INPUTS}, got {name!r}")
    return x / np.linalg.norm(x)


def sign_transform(x, transform, seed=0, n_draws=None):
    """Apply one of :data:`SIGN_TRANSFORMS` to ``x`` for one or many random draws.

    Parameters
    ----------
    x : (..., d) array_like
        ``d`` a power of two.
    transform : {"H", "H D", "D2 H D1", "dense Haar"}
        ``fwht(x)``; ``fwht(s1 * x)``; ``s2 * fwht(s1 * x)``; ``Q @ x`` with a
        Haar-random orthogonal ``Q``. ``fwht`` is the orthonormal transform.
        For one vector ``x`` (shape ``(d,)``) "dense Haar" draws ``Q x``
        directly: it is a uniformly random vector of length ``||x||``
        (``||x|| g / ||g||`` with ``g`` Gaussian; lesson 04, section 2), which
        costs no QR factorisation. A batch shares one ``Q`` per draw (QR).
    seed : int or numpy.random.Generator
        Draw ``k`` takes ``s1`` then ``s2`` from one generator, so "H D" and
        "D2 H D1" with the same seed share ``D1``, and the first "D2 H D1"
        draw equals ``RandomizedHadamard(d, seed).forward(x)``.
    n_draws : int or None
        None: one draw, shape ``(..., d)``; else ``(n_draws, ..., d)``.

    Returns
    -------
    y : float64 ndarray
    """
    x = np.asarray(as_float_array(x, "x"), dtype=np.float64)
    d = check_power_of_two(x.shape[-1], "d")
    if transform not in SIGN_TRANSFORMS:
        raise ValueError(f"transform must be one of {SIGN_TRANSFORMS}, got {transform!r}")
    n = 1 if n_draws is None else check_dim(n_draws, "n_draws")
    rng = make_rng(seed)
    if transform == "H":
        y = np.broadcast_to(fwht(x), (n,) + x.shape).copy()
    elif transform == "dense Haar" and x.ndim == 1:
        g = rng.standard_normal((n, d))
        y = np.linalg.norm(x) * g / np.linalg.norm(g, axis=1, keepdims=True)
    elif transform == "dense Haar":
        y = np.stack([x @ random_orthogonal(d, rng).T for _ in range(n)])
    else:
        signs = _sign_draws(rng, n, 2, d)                        # (n, 2, d): s1, s2 of each draw
        s1 = signs[:, 0].reshape((n,) + (1,) * (x.ndim - 1) + (d,))
        s2 = signs[:, 1].reshape(s1.shape)
        y = fwht(s1 * x)
        if transform == "D2 H D1":
            y = s2 * y
    return y[0] if n_draws is None else y


def _sign_draws(rng, n, k, d):
    """``(n, k, d)`` float64 signs: draw by draw, ``k`` vectors of ``random_signs(d, rng)``.

    One call to ``rng.integers`` gives the same numbers as ``n * k`` calls of
    :func:`~turboquant_lab.rotation.random_signs` for even ``d`` (NumPy
    draws two 32-bit values per 64-bit word and keeps no leftover), ``n * k``
    times faster; the tests check it against ``RandomizedHadamard``.
    """
    return (1 - 2 * rng.integers(0, 2, size=(n, k, d))).astype(np.float64)


def quantization_error(y, bits):
    """``||y - y_hat||^2`` of unit vectors ``y`` quantized TurboQuant-style, per vector.

    Each coordinate is scaled to ``t = sqrt(d) y``, quantized with
    ``lloyd_max_codebook(bits, d)`` (designed for the exact coordinate law of a
    randomly rotated unit vector at dimension ``d``) and scaled back. For a
    truly random rotation of a unit vector the expected value is ``codebook.mse``.

    Parameters
    ----------
    y : (..., d) float array
    bits : int, 1..8

    Returns
    -------
    err : (...) float64 ndarray
    """
    y = np.asarray(y, dtype=np.float64)
    d = y.shape[-1]
    cb = lloyd_max_codebook(bits, d)
    t = np.sqrt(d) * y
    t_hat = cb.dequantize(cb.quantize(t))
    return np.sum((t - t_hat) ** 2, axis=-1) / d


@dataclass(frozen=True)
class SignDemo:
    """What the sign-flip app shows for one (input, transform, bits, seed)."""
    input_name: str
    transform: str
    bits: int
    seed: int
    d: int
    x: np.ndarray           # (d,) unit input
    y: np.ndarray           # (d,) output of this draw
    max_over_mean: float    # max |y_i| / mean |y_i| of this draw
    mse: float              # ||y - y_hat||^2 of this draw
    mean_mse: float         # average over n_draws draws (seeds drawn from `seed`)
    codebook_mse: float     # what the codebook promises for a random rotation
    levels: np.ndarray      # the codebook's levels in unscaled units (centroids / sqrt(d))


def compute_sign_demo(input_name="constant", transform="H D", bits=2, seed=0, d=64, n_draws=200):
    """Transform one lesson-06 input, quantize it, and measure spread and error.

    Parameters
    ----------
    input_name : one of :data:`SIGN_INPUTS`
    transform : one of :data:`SIGN_TRANSFORMS`
    bits : int, 1..8
    seed : int
        The draw shown (``y``) is the first of ``n_draws`` draws from this seed.
    d : int, power of two
    n_draws : int
        Draws averaged in ``mean_mse``.

    Returns
    -------
    SignDemo
    """
    x = sign_demo_input(input_name, d)
    ys = sign_transform(x, transform, seed=seed, n_draws=n_draws)
    errors = quantization_error(ys, bits)
    cb = lloyd_max_codebook(bits, d)
    y = ys[0]
    a = np.abs(y)
    return SignDemo(input_name, transform, int(bits), int(seed), d, x, y,
                    float(a.max() / a.mean()), float(errors[0]), float(errors.mean()),
                    float(cb.mse), cb.centroids / np.sqrt(d))


#: The collision demo's three ways of rotating two vectors.
COLLISION_MODES = ("same WHT", "shared signs", "per-vector signs")


def pad_to_power_of_two(x):
    """Append zeros to the last axis up to the next power of two (no copy if already one)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    d = 1 << max(n - 1, 0).bit_length()
    if d == n:
        return x
    return np.concatenate([x, np.zeros(x.shape[:-1] + (d - n,))], axis=-1)


def compute_collision(a, b, bits=2, seed=0, n_draws=1000):
    """The essay's collision demo, measured: codes of two similar vectors under three rotations.

    Each vector is padded to a power of two ``d``, scaled to unit length (its
    norm is kept apart, as TurboQuant does), rotated, quantized with
    ``lloyd_max_codebook(bits, d)``, and **decoded**: dequantized, rotated back
    with its own rotation and scaled by its norm. Modes: ``"same WHT"`` (``H``
    for both), ``"shared signs"`` (one ``D2 H D1`` for both, as a real system
    uses), ``"per-vector signs"`` (each vector its own ``D2 H D1``: the essay's
    "scrambled by different random signs").

    Returns
    -------
    dict with ``d``, ``a``, ``b`` (padded), ``bits``, ``dot`` (the true ``a . b``),
    and per mode:

    - ``rotated[mode] = (ya, yb)`` and ``codes[mode] = (ca, cb)``: the draw
      ``seed`` (unit vectors, each in its own rotated frame);
    - ``agreement[mode]``: the fraction of coordinates whose codes agree;
    - ``dot_decoded[mode]``: ``a_hat . b_hat`` of the decoded vectors, in the
      original frame (what attention needs);
    - ``dot_rotated[mode]``: the dot product of the dequantized vectors taken
      in the rotated frame, times the norms. With one shared rotation it equals
      ``dot_decoded`` (a rotation keeps dot products), so a query rotated once
      can be scored against every stored key; with per-vector signs the two
      vectors live in different frames and this number means nothing;
    - ``error[mode]``: ``(||a - a_hat|| / ||a|| + ||b - b_hat|| / ||b||) / 2``.

    All but the first item are averaged over ``n_draws`` draws.
    """
    a, b = pad_to_power_of_two(a), pad_to_power_of_two(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be vectors of the same length, got {a.shape} and {b.shape}")
    d = a.shape[0]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cb = lloyd_max_codebook(bits, d)
    rng = make_rng(seed)
    out = {"d": d, "a": a, "b": b, "bits": int(bits), "dot": float(a @ b), "rotated": {}, "codes": {},
           "agreement": {}, "dot_decoded": {}, "dot_rotated": {}, "error": {}}
    for mode in COLLISION_MODES:
        if mode == "same WHT":
            signs = np.ones((n_draws, 2, 2, d))                      # (draw, vector, s1/s2, d)
        else:
            signs = _sign_draws(rng, n_draws, 4, d).reshape(n_draws, 2, 2, d)
            if mode == "shared signs":
                signs[:, 1] = signs[:, 0]                            # B uses A's rotation
        s1, s2 = signs[:, :, 0], signs[:, :, 1]                      # (draw, vector, d)
        units = np.stack([a / na, b / nb])                           # (vector, d)
        y = s2 * fwht(s1 * units)                                    # D2 H D1, each vector its own
        codes = cb.quantize(np.sqrt(d) * y)
        y_hat = cb.dequantize(codes) / np.sqrt(d)
        decoded = np.array([na, nb])[:, None] * s1 * fwht(s2 * y_hat)  # undo D2, H, D1; scale back
        out["rotated"][mode] = (y[0, 0], y[0, 1])
        out["codes"][mode] = (codes[0, 0], codes[0, 1])
        out["agreement"][mode] = float(np.mean(codes[:, 0] == codes[:, 1]))
        out["dot_decoded"][mode] = float(np.mean(np.sum(decoded[:, 0] * decoded[:, 1], axis=-1)))
        out["dot_rotated"][mode] = float(na * nb * np.mean(np.sum(y_hat[:, 0] * y_hat[:, 1], axis=-1)))
        errors = np.linalg.norm(decoded - np.stack([a, b]), axis=-1) / np.array([na, nb])
        out["error"][mode] = float(np.mean(errors))
    return out
