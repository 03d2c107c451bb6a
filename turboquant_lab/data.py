"""Data for the lessons: seeded synthetic KV-cache vectors with outlier channels.

Real key vectors of transformers have a few channels whose magnitude is many
times that of the others, and the same channels stand out in every token
(Dettmers et al. 2022, "LLM.int8()"; Liu et al. 2024, "KIVI"). The synthetic
vectors here mimic that: Gaussian coordinates with ``n_outliers`` fixed
channels scaled by ``outlier_scale``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import check_dim

__all__ = ["ESSAY_D", "ESSAY_SEED", "essay_vector", "make_kv_vectors", "kv_outlier_channels",
           "KVSample", "load_kv_sample"]

#: The essay's 64-coordinate vector is ``make_kv_vectors(1, ESSAY_D, seed=ESSAY_SEED)[0]``.
#: Seed 15 was chosen because its five outlier channels all stand out (|x| > 7 against a
#: normal spread of 1) and its max/mean ratio (22.3) is close to the essay's 22.1.
ESSAY_D, ESSAY_SEED = 64, 15


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


# --------------------------------------------------------------------------- real sample

#: file of the shipped sample, inside the package (``turboquant_lab/data/``)
def essay_vector(seed: int = ESSAY_SEED, d: int = ESSAY_D):
    """The essay's outlier vector (lessons 02 and 03) and its outlier channels.

    Returns
    -------
    x : (d,) float64 ndarray
        ``make_kv_vectors(1, d, seed=seed)[0]``: N(0, 1) coordinates, 5 channels 20x larger.
    outliers : (5,) int ndarray
        The outlier channels, ``kv_outlier_channels(d, 5, seed)``.

    Examples
    --------
    >>> x, outliers = essay_vector()
    >>> x.shape, outliers.tolist()
    ((64,), [7, 12, 23, 44, 47])
    """
    return (make_kv_vectors(1, d, seed=seed)[0].astype(np.float64),
            kv_outlier_channels(d, 5, seed=seed))


KV_SAMPLE_FILE = "kv_sample.npz"


@dataclass(frozen=True)
class KVSample:
    """Real queries, keys and values of a transformer (see :func:`load_kv_sample`).

    Attributes
    ----------
    queries, keys, values : (layers, heads, n_tokens, head_dim) float16 ndarray
        Per layer and head, the projections ``h W^T + b`` of every token,
        before attention: the attention scores are ``queries @ keys^T / sqrt(head_dim)``.
    tokens : tuple of str
        The ``n_tokens`` word pieces, ``[CLS]`` first.
    meta : dict
        ``model``, ``text_source``, ``n_tokens``, ``layers``, ``heads``,
        ``head_dim``, ``dtype``, ``what``, ``made_by``, ``weights_from``.
    """

    queries: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    tokens: tuple
    meta: dict = field(repr=False)

    @property
    def layers(self) -> int:
        return int(self.keys.shape[0])

    @property
    def heads(self) -> int:
        return int(self.keys.shape[1])

    @property
    def n_tokens(self) -> int:
        return int(self.keys.shape[2])

    @property
    def head_dim(self) -> int:
        return int(self.keys.shape[3])

    def __repr__(self) -> str:
        return (f"KVSample({self.meta.get('model', '?')}: {self.layers} layers x {self.heads} heads "
                f"x {self.n_tokens} tokens x head_dim {self.head_dim}, {self.keys.dtype})")


def load_kv_sample() -> KVSample:
    """Load the shipped sample of real queries, keys and values (no network, no PyTorch).

    The sample holds every layer and head of all-MiniLM-L6-v2 (a 6-layer
    BERT, 12 heads of dimension 32) run on the first 256 tokens of Jane
    Austen's *Pride and Prejudice*; ``tools/capture_kv.py`` made it (a NumPy
    forward pass from the model's safetensors weights, checked against
    Hugging Face ``transformers``).

    Returns
    -------
    KVSample
        ``queries``, ``keys``, ``values`` of shape (6, 12, 256, 32), float16;
        ``tokens`` (256 word pieces); ``meta`` (model, text source, shapes).

    Raises
    ------
    FileNotFoundError
        The package was installed without its data file (reinstall it; the
        file ``turboquant_lab/data/kv_sample.npz`` is package data).

    Notes
    -----
    float16 is how the keys and values of a KV cache are usually held, so it
    is the honest baseline: 16 bits per coordinate. Convert with
    ``.astype(np.float32)`` before computing with them.

    Examples
    --------
    >>> s = load_kv_sample()
    >>> s.keys.shape, s.keys.dtype
    ((6, 12, 256, 32), dtype('float16'))
    """
    import json  # noqa: PLC0415
    from importlib import resources  # noqa: PLC0415

    res = resources.files(__package__).joinpath("data", KV_SAMPLE_FILE)
    if not res.is_file():
        raise FileNotFoundError(f"the real KV sample {KV_SAMPLE_FILE} is missing from "
                                f"turboquant_lab/data/: reinstall turboquant-lab, or regenerate "
                                f"it with python tools/capture_kv.py")
    with res.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return KVSample(queries=z["queries"], keys=z["keys"], values=z["values"],
                        tokens=tuple(str(t) for t in z["tokens"]), meta=meta)
