"""Lesson 08 (the complete pipeline): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from turboquant_lab.data import kv_outlier_channels, make_kv_vectors
from turboquant_lab.turboquant import TurboQuantMSE
from turboquant_lab.uniform import uniform_dequantize, uniform_quantize
from turboquant_lab.validation import check_bits, check_dim

__all__ = ["PIPELINE_METHODS", "PipelineComparison", "compute_pipeline_comparison"]

#: Methods of lesson 08's comparison: no rotation (naive min-max), dense, randomized Hadamard.
PIPELINE_METHODS = ("none", "dense", "hadamard")


_PIPELINE_LABELS = {"none": "naive min-max (no rotation)", "dense": "dense rotation + Lloyd-Max",
                    "hadamard": "WHT + Lloyd-Max (TurboQuant)"}


_PIPELINE_DATA = ("outliers", "gaussian")


@dataclass(frozen=True, eq=False)
class PipelineComparison:
    """One method's round trip on a batch of vectors (lesson 08's widget).

    Attributes
    ----------
    method : {"none", "dense", "hadamard"}
    label : str
        What the method is, in words.
    bits, d, n, seed : the settings.
    data : {"outliers", "gaussian"}
        KV-like vectors with outlier channels, or plain N(0, 1) vectors.
    relative_mse : float
        Measured mean of ``||x - x_hat||^2 / ||x||^2`` over the ``n`` vectors.
    predicted : float or None
        The codebook's prediction (``TurboQuantMSE.expected_mse``); None for
        naive quantization, which has no data-independent prediction.
    per_vector : (n,) ndarray
        ``||x - x_hat||^2 / ||x||^2`` of each vector.
    bits_per_coordinate : float
        Storage per coordinate with the side information: float16 norm for
        TurboQuant (``Encoded.bits_per_coordinate``), float16 ``lo`` and
        ``scale`` for naive min-max (``uniform_quantize(..., side_dtype=np.float16)``,
        the course's convention, as in ``tql.compare_kv_quantizers``).
    seconds_per_vector : float
        Wall-clock time of encode + decode per vector (best of ``repeats``);
        a timing, so it changes from run to run.
    example, example_hat : (d,) ndarray
        The first vector and its reconstruction.
    outlier_channels : (k,) ndarray
        The outlier channels of the data (empty for ``"gaussian"``).
    """
    method: str
    label: str
    bits: int
    d: int
    n: int
    seed: int
    data: str
    relative_mse: float
    predicted: float | None
    per_vector: np.ndarray
    bits_per_coordinate: float
    seconds_per_vector: float
    example: np.ndarray
    example_hat: np.ndarray
    outlier_channels: np.ndarray


def _pipeline_round_trip(x, bits: int, method: str, seed: int):
    """``(encode, decode, predicted, bits_per_coordinate_of)`` for one method."""
    if method == "none":  # lo and scale stored as float16, rounded outwards: 32 bits per vector
        return (lambda v: uniform_quantize(v, bits, side_dtype=np.float16), uniform_dequantize,
                None, lambda q: q.bits_per_coordinate())

    tq = TurboQuantMSE(x.shape[-1], bits, seed=seed, rotation=method)
    return tq.encode, tq.decode, tq.expected_mse, lambda enc: enc.bits_per_coordinate


def compute_pipeline_comparison(bits: int = 3, method: str = "hadamard", n: int = 2000,
                                d: int = 128, seed: int = 0, data: str = "outliers",
                                n_outliers: int = 5, outlier_scale: float = 20.0,
                                repeats: int = 3) -> PipelineComparison:
    """Encode and decode ``n`` vectors with one method; measure the error, the bits and the time.

    Parameters
    ----------
    bits : int
        Bits per coordinate, 1 to 8 (the same for every method).
    method : {"none", "dense", "hadamard"}
        ``"none"``: naive per-vector min-max uniform quantization (lessons
        01-02; ``lo`` and ``scale`` stored as float16); ``"dense"``: ``TurboQuantMSE(rotation="dense")`` (Haar rotation,
        Lloyd-Max codebook); ``"hadamard"``: ``TurboQuantMSE(rotation="hadamard")``.
    n, d : int
        Number and dimension of the vectors (``d`` a power of two for "hadamard"
        to avoid padding).
    seed : int
        Seeds the data and the rotation.
    data : {"outliers", "gaussian"}
        ``make_kv_vectors(n, d, n_outliers, outlier_scale, seed)`` or plain
        N(0, 1) vectors (no outlier channels).
    n_outliers, outlier_scale : int, float
        The outlier channels of ``"outliers"`` data.
    repeats : int
        The round trip is timed this many times; the best time is kept.

    Returns
    -------
    PipelineComparison

    Raises
    ------
    ValueError, TypeError
        Unknown ``method`` or ``data``, bad ``bits``, ``n``, ``d`` or ``repeats``.

    Notes
    -----
    Relative MSE: ``mean_i ||x_i - x_hat_i||^2 / ||x_i||^2``. TurboQuant
    predicts it as the codebook's MSE: exact on average over a Haar rotation
    for any fixed vector, and for any fixed rotation when the directions of
    the data are uniform (``data="gaussian"``). For data dominated by a few
    channels and one fixed rotation it is only approximate (lesson 08 shows
    why the randomized Hadamard then does *better* than predicted).

    Examples
    --------
    >>> r = compute_pipeline_comparison(3, "dense", n=500, data="gaussian")
    >>> bool(abs(r.relative_mse / r.predicted - 1) < 0.05)
    True
    """
    bits = check_bits(bits)
    if method not in PIPELINE_METHODS:
        raise ValueError(f"method must be one of {PIPELINE_METHODS}, got {method!r}")
    if data not in _PIPELINE_DATA:
        raise ValueError(f"data must be one of {_PIPELINE_DATA}, got {data!r}")
    n, d = check_dim(n, "n"), check_dim(d, "d")
    repeats = check_dim(repeats, "repeats")
    if data == "outliers":
        x = make_kv_vectors(n, d, n_outliers=n_outliers, outlier_scale=outlier_scale, seed=seed)
        channels = kv_outlier_channels(d, n_outliers, seed)
    else:
        x = np.random.default_rng([seed, 8]).standard_normal((n, d)).astype(np.float32)
        channels = np.array([], dtype=np.int64)
    encode, decode, predicted, bits_of = _pipeline_round_trip(x, bits, method, seed)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        enc = encode(x)
        x_hat = decode(enc)
        best = min(best, time.perf_counter() - start)
    x64, xh64 = x.astype(np.float64), np.asarray(x_hat, dtype=np.float64)
    per_vector = np.sum((x64 - xh64) ** 2, axis=-1) / np.sum(x64 ** 2, axis=-1)
    return PipelineComparison(
        method=method, label=_PIPELINE_LABELS[method], bits=bits, d=d, n=n, seed=seed,
        data=data, relative_mse=float(per_vector.mean()), predicted=predicted,
        per_vector=per_vector, bits_per_coordinate=float(bits_of(enc)),
        seconds_per_vector=best / n, example=x64[0], example_hat=xh64[0],
        outlier_channels=channels)
