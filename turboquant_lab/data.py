"""Data for the lessons: seeded synthetic KV-cache vectors with outlier channels, and real samples.

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
           "KVSample", "load_kv_sample", "KV_SAMPLE_MODELS", "PRIDE_AND_PREJUDICE", "TEXT_SOURCE"]

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


# --------------------------------------------------------------------------- real samples

#: where the course's text comes from (public domain)
TEXT_SOURCE = ("Jane Austen, Pride and Prejudice (1813), opening of Chapter 1; "
               "public domain (Project Gutenberg eBook #1342)")

#: The opening of *Pride and Prejudice*, the text every real sample and lesson 13 run on.
#: 1,769 characters: 464 SmolLM2 tokens.
PRIDE_AND_PREJUDICE = """\
It is a truth universally acknowledged, that a single man in possession of a good \
fortune, must be in want of a wife.

However little known the feelings or views of such a man may be on his first \
entering a neighbourhood, this truth is so well fixed in the minds of the \
surrounding families, that he is considered the rightful property of some one or \
other of their daughters.

"My dear Mr. Bennet," said his lady to him one day, "have you heard that \
Netherfield Park is let at last?"

Mr. Bennet replied that he had not.

"But it is," returned she; "for Mrs. Long has just been here, and she told me \
all about it."

Mr. Bennet made no answer.

"Do you not want to know who has taken it?" cried his wife impatiently.

"You want to tell me, and I have no objection to hearing it."

This was invitation enough.

"Why, my dear, you must know, Mrs. Long says that Netherfield is taken by a young \
man of large fortune from the north of England; that he came down on Monday in a \
chaise and four to see the place, and was so much delighted with it, that he \
agreed with Mr. Morris immediately; that he is to take possession before \
Michaelmas, and some of his servants are to be in the house by the end of next \
week."

"What is his name?"

"Bingley."

"Is he married or single?"

"Oh! Single, my dear, to be sure! A single man of large fortune; four or five \
thousand a year. What a fine thing for our girls!"

"How so? How can it affect them?"

"My dear Mr. Bennet," replied his wife, "how can you be so tiresome! You must \
know that I am thinking of his marrying one of them."

"Is that his design in settling here?"

"Design! Nonsense, how can you talk so! But it is very likely that he may fall in \
love with one of them, and therefore you must visit him as soon as he comes."
"""

#: file of each shipped sample, inside the package (``turboquant_lab/data/``)
KV_SAMPLE_MODELS = {"minilm": "kv_sample.npz", "smollm2": "kv_sample_smollm2.npz"}
KV_SAMPLE_FILE = KV_SAMPLE_MODELS["minilm"]


@dataclass(frozen=True)
class KVSample:
    """Real queries, keys and values of a transformer (see :func:`load_kv_sample`).

    Attributes
    ----------
    queries, keys, values : (layers, heads, n_tokens, head_dim) float16 ndarray
        Per captured layer and (key/value) head, the attention inputs of every
        token: the scores of head ``h`` are ``queries[l, h] @ keys[l, h].T / sqrt(head_dim)``.
        For SmolLM2, ``heads`` counts the 3 KV heads, ``keys`` are after RoPE
        (what the cache stores) and ``queries[l, h]`` is query head ``3 h``, the
        first of the three that read KV head ``h`` (all nine: ``queries_all``).
        For MiniLM (no RoPE, 12 heads), ``h W^T + b``.
    tokens : tuple of str
        The ``n_tokens`` tokens' text (word pieces for MiniLM, ``[CLS]`` first).
    meta : dict
        ``model``, ``text_source``, ``n_tokens``, ``layers``, ``heads``,
        ``head_dim``, ``dtype``, ``what``, ``made_by``, ``weights_from``; for
        SmolLM2 also ``layer_ids``, ``n_heads``, ``rope_base``, ``rope_layout``.
    keys_pre_rope : (layers, heads, n_tokens, head_dim) float16 ndarray or None
        SmolLM2: the keys ``x W_k^T`` before RoPE. None for MiniLM (no RoPE).
    queries_all : (layers, n_heads, n_tokens, head_dim) float16 ndarray or None
        SmolLM2: all 9 query heads after RoPE; head ``j`` reads KV head ``j // 3``.
    token_ids : (n_tokens,) int ndarray or None
        SmolLM2: the token ids (for :mod:`turboquant_lab.llm`).
    """

    queries: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    tokens: tuple
    meta: dict = field(repr=False)
    keys_pre_rope: np.ndarray | None = field(default=None, repr=False)
    queries_all: np.ndarray | None = field(default=None, repr=False)
    token_ids: np.ndarray | None = field(default=None, repr=False)

    @property
    def layers(self) -> int:
        """Number of captured layers (their indices in the model: :attr:`layer_ids`)."""
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

    @property
    def model(self) -> str:
        return str(self.meta.get("model", "?"))

    @property
    def layer_ids(self) -> tuple:
        """The model's indices of the captured layers (MiniLM: all six, 0..5)."""
        return tuple(int(i) for i in self.meta.get("layer_ids", range(self.layers)))

    def __repr__(self) -> str:
        return (f"KVSample({self.model}: {self.layers} layers x {self.heads} heads "
                f"x {self.n_tokens} tokens x head_dim {self.head_dim}, {self.keys.dtype})")


def load_kv_sample(model: str = "minilm") -> KVSample:
    """Load a shipped sample of real queries, keys and values (no network, no PyTorch).

    Parameters
    ----------
    model : {"minilm", "smollm2"}
        ``"minilm"`` (the default): every layer and head of all-MiniLM-L6-v2, a
        6-layer BERT sentence encoder (12 heads of dimension 32, no causal mask,
        no RoPE), on the first 256 word pieces of Jane Austen's *Pride and
        Prejudice*, made by ``tools/capture_kv.py`` from a NumPy pass checked
        against Hugging Face ``transformers``.
        ``"smollm2"``: the KV cache of a causal LLM, SmolLM2-135M-Instruct
        (:mod:`turboquant_lab.llm`), on the first 256 tokens of the same text:
        layers 0, 6, 12, 18, 24 and 29 of its 30, its 3 KV heads of dimension
        64, keys before and after RoPE, values, and the queries after RoPE,
        made by ``tools/capture_kv.py --model smollm2``.

    Returns
    -------
    KVSample
        MiniLM: ``queries``, ``keys``, ``values`` of shape (6, 12, 256, 32).
        SmolLM2: ``queries``, ``keys``, ``values``, ``keys_pre_rope`` of shape
        (6, 3, 256, 64) and ``queries_all`` (6, 9, 256, 64). All float16.

    Raises
    ------
    ValueError
        An unknown ``model``.
    FileNotFoundError
        The package was installed without its data file (reinstall it; the
        files ``turboquant_lab/data/*.npz`` are package data).

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
    >>> s = load_kv_sample("smollm2")
    >>> s.keys.shape, s.queries_all.shape, s.layer_ids
    ((6, 3, 256, 64), (6, 9, 256, 64), (0, 6, 12, 18, 24, 29))
    """
    import json  # noqa: PLC0415
    from importlib import resources  # noqa: PLC0415

    if model not in KV_SAMPLE_MODELS:
        raise ValueError(f"model must be one of {sorted(KV_SAMPLE_MODELS)}, got {model!r}")
    name = KV_SAMPLE_MODELS[model]
    res = resources.files(__package__).joinpath("data", name)
    if not res.is_file():
        raise FileNotFoundError(f"the real KV sample {name} is missing from "
                                f"turboquant_lab/data/: reinstall turboquant-lab, or regenerate "
                                f"it with python tools/capture_kv.py --model {model}")
    with res.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        tokens = tuple(str(t) for t in z["tokens"])
        if "queries_all" not in z.files:
            return KVSample(queries=z["queries"], keys=z["keys"], values=z["values"], tokens=tokens,
                            meta=meta)
        q_all = z["queries_all"]
        group = q_all.shape[1] // z["keys"].shape[1]
        return KVSample(queries=q_all[:, ::group], keys=z["keys"], values=z["values"], tokens=tokens,
                        meta=meta, keys_pre_rope=z["keys_pre_rope"], queries_all=q_all,
                        token_ids=z["token_ids"])
