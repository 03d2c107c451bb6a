"""Data for the lessons: seeded synthetic KV-cache vectors with outlier channels.

Real key vectors of transformers have a few channels whose magnitude is many
times that of the others, and the same channels stand out in every token
(Dettmers et al. 2022, "LLM.int8()"; Liu et al. 2024, "KIVI"). The synthetic
vectors here mimic that: Gaussian coordinates with ``n_outliers`` fixed
channels scaled by ``outlier_scale``.
"""
from __future__ import annotations

import numpy as np

from ._validate import check_dim

__all__ = ["make_kv_vectors", "kv_outlier_channels"]


def _check_seed(seed) -> int:
    # a data set is named by an integer seed, so that the channels and the values agree
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def kv_outlier_channels(d: int, n_outliers: int = 5, seed=0) -> np.ndarray:
    """Sorted indices of the outlier channels that ``make_kv_vectors`` uses for ``(d, n_outliers, seed)``."""
    d = check_dim(d, "d")
    if not 0 <= int(n_outliers) <= d:
        raise ValueError(f"n_outliers must be between 0 and d = {d}, got {n_outliers}")
    rng = np.random.default_rng([_check_seed(seed), 1])
    return np.sort(rng.choice(d, size=int(n_outliers), replace=False))


def make_kv_vectors(n: int, d: int, n_outliers: int = 5, outlier_scale: float = 20.0,
                    seed=0, dtype=np.float32) -> np.ndarray:
    """Synthetic KV-cache vectors: shape ``(n, d)``, a few channels ``outlier_scale`` times larger.

    Parameters
    ----------
    n : int
        Number of vectors (tokens).
    d : int
        Dimension (head size); the essay's example is d = 64.
    n_outliers : int
        Number of outlier channels, the same for every vector (as in real KV caches).
    outlier_scale : float
        How many times larger the outlier channels are (the essay: 20).
    seed : int
        Seed for both the channel choice and the values.

    Returns
    -------
    x : (n, d) ndarray of ``dtype``
        ``x[:, j] ~ N(0, 1)`` for normal channels, ``N(0, outlier_scale**2)`` for
        the channels in ``kv_outlier_channels(d, n_outliers, seed)``.

    Examples
    --------
    >>> x = make_kv_vectors(3, 64, seed=0)
    >>> x.shape
    (3, 64)
    """
    n = check_dim(n, "n")
    d = check_dim(d, "d")
    if not np.isfinite(outlier_scale) or outlier_scale <= 0:
        raise ValueError(f"outlier_scale must be a positive number, got {outlier_scale}")
    channels = kv_outlier_channels(d, n_outliers, seed)
    rng = np.random.default_rng([_check_seed(seed), 2])
    x = rng.standard_normal((n, d))
    x[:, channels] *= outlier_scale
    return x.astype(dtype)
