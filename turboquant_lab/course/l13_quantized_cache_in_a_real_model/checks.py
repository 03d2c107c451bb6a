"""Lesson 13 (a quantized cache in a real model): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import numpy as np

from turboquant_lab.kv_codecs import UniformCodec, stored_nbytes
from turboquant_lab.llm import KVQuantization, Llama, LlamaConfig, compare_logits
from turboquant_lab.turboquant import TurboQuantMSE

from .._checking import (Failure, NotAttempted, allclose, as_array, as_number, call_learner, checker,
                         seeded_rng)
from .experiments import OutlierSplitCodec

__all__ = ["check_cache_bytes", "check_compare", "check_split_codec", "check_noisy_weights"]


# --------------------------------------------------------------------------- 13.1 the cache's bytes


def _codecs(method, bits, d):
    if method == "float16":
        return None, None
    if method == "uniform":
        return UniformCodec(bits), UniformCodec(bits)
    if method == "kivi":
        return UniformCodec(bits, axis="channel", group_size=64), UniformCodec(bits)
    return TurboQuantMSE(d, bits, seed=0), TurboQuantMSE(d, bits, seed=0)


def _true_bytes(method, bits, n_tokens, n_layers, n_kv_heads, head_dim):
    """What the library's codecs store for one block, times the blocks: the oracle."""
    x = seeded_rng(0).standard_normal((n_tokens, head_dim)).astype(np.float32)
    keys, values = _codecs(method, bits, head_dim)
    per_block = 0
    for codec in (keys, values):
        per_block += 2 * x.size if codec is None else stored_nbytes(codec, codec.encode(x), n_tokens, head_dim)
    return n_layers * n_kv_heads * per_block


def _bytes_without_side(method, bits, n, L, H, d):
    if method == "float16":
        return None
    return 2 * L * H * n * ((d * bits + 7) // 8)


@checker("cache_bytes")
def check_cache_bytes(cache_bytes):
    """Check ``cache_bytes(method, bits, n_tokens, n_layers, n_kv_heads, head_dim)`` against the codecs' storage."""
    cases = [("float16", 16, 100, 30, 3, 64), ("uniform", 2, 100, 30, 3, 64), ("mse", 3, 100, 30, 3, 64),
             ("kivi", 2, 128, 30, 3, 64), ("kivi", 4, 100, 30, 3, 64), ("uniform", 3, 7, 2, 1, 20),
             ("mse", 3, 5, 1, 1, 64), ("kivi", 3, 1, 1, 2, 64)]
    for method, bits, n, L, H, d in cases:
        case = (f"cache_bytes({method!r}, bits={bits}, n_tokens={n}, n_layers={L}, n_kv_heads={H}, "
                f"head_dim={d})")
        expected = _true_bytes(method, bits, n, L, H, d)
        got = as_number(call_learner(cache_bytes, method, bits, n, L, H, d, case=case), case, "the bytes")
        if got == expected:
            continue
        no_side = _bytes_without_side(method, bits, n, L, H, d)
        if got * 2 == expected:
            hint = "the cache holds keys and values: two blocks per layer and KV head."
        elif no_side is not None and got == no_side:
            hint = ("count the side information too: what each method stores besides the codes "
                    "(lesson 08's convention: float16 numbers, 2 bytes each).")
        elif method == "float16":
            hint = "float16 is 2 bytes per coordinate, and nothing else."
        elif method == "mse":
            hint = "TurboQuantMSE stores one float16 norm per vector besides its packed codes."
        elif method == "uniform":
            hint = "the per-token uniform quantizer stores lo and scale per vector, each a float16."
        else:
            hint = ("KIVI: the keys' lo and scale are per channel and per group of 64 tokens (the last "
                    "group may be shorter, and still counts), the values' per token.")
        if method != "float16" and d * bits % 8 and got == 2 * L * H * n * (d * bits / 8) + (expected - no_side):
            hint = "packed codes take whole bytes per vector: ceil(head_dim * bits / 8)."
        raise Failure("wrong number of bytes", case=case, expected=expected, got=got, hint=hint)
    return "Float16, per-token uniform, KIVI and TurboQuantMSE caches counted byte for byte as the codecs store them."


# --------------------------------------------------------------------------- 13.2 comparing distributions


def _compare_cases():
    rng = seeded_rng(1)
    ref = rng.standard_normal((40, 500)) * 3
    return [("ref = 3 * N(0, 1) logits (40, 500); logits = ref + 0.5 * N(0, 1)", ref,
             ref + 0.5 * rng.standard_normal(ref.shape)),
            ("ref = logits (the same array)", ref, ref.copy()),
            ("ref = 3 * N(0, 1) logits; logits = ref + 1000 (a constant shift)", ref, ref + 1000.0),
            ("ref = 200 * N(0, 1) logits (40, 500), very peaked; logits = ref + 50 * N(0, 1)", ref * 200 / 3,
             ref * 200 / 3 + 50 * rng.standard_normal(ref.shape)),
            ("two positions, vocabulary 3", np.log([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]),
             np.log([[0.1, 0.6, 0.3], [0.1, 0.3, 0.6]]))]


@checker("compare")
def check_compare(compare):
    """Check ``compare(ref_logits, logits) -> (top1_agreement, mean_kl)`` against ``llm.compare_logits``."""
    for case, ref, logits in _compare_cases():
        expected = compare_logits(ref, logits)
        out = call_learner(compare, ref.copy(), logits.copy(), case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure("compare should return two numbers: top1_agreement, mean_kl", case=case, got=out,
                          hint="end with `return top1, kl`.")
        top1 = as_number(out[0], case, "top1_agreement")
        kl = as_number(out[1], case, "mean_kl")
        if not allclose(top1, expected.top1_agreement, 1e-9, 1e-12):
            hint = ("the fraction of positions where argmax(ref) == argmax(logits), a number in [0, 1]."
                    if not 0 <= top1 <= 1 else "compare the argmax of each row (axis=1), not of the whole array.")
            raise Failure("wrong top-1 agreement", case=case, expected=expected.top1_agreement, got=top1,
                          hint=hint)
        if allclose(kl, expected.kl_mean, 1e-6, 1e-9):
            continue
        reverse = compare_logits(logits, ref).kl_mean
        if not np.isfinite(kl):
            hint = ("exp of large logits overflows: subtract each row's maximum before exp (log-softmax: "
                    "z - max - log(sum(exp(z - max))))")
        elif allclose(kl, reverse, 1e-6, 1e-9):
            hint = ("the KL is the other way round: KL(p_ref || p) = sum p_ref (log p_ref - log p), "
                    "weighted by the exact model's probabilities.")
        elif allclose(kl, expected.kl_mean / np.log(2), 1e-6, 1e-9):
            hint = "in nats: use the natural logarithm (np.log), not log2."
        elif allclose(kl, expected.kl_mean * ref.shape[0], 1e-6, 1e-9):
            hint = "the mean over positions, not the sum."
        else:
            hint = "per position: sum over the vocabulary of p_ref * (log p_ref - log p); then the mean."
        raise Failure("wrong mean KL", case=case, expected=expected.kl_mean, got=kl, hint=hint)
    return ("Top-1 agreement and KL(p_ref || p) in nats agree with llm.compare_logits, also for peaked "
            "and shifted logits.")


# --------------------------------------------------------------------------- 13.3 the outlier split as a codec


def _split_data(seed, n=96, d=64):
    rng = seeded_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    loud = rng.choice(d, 6, replace=False)
    x[:, loud] *= 15
    x[:, :4] += 3.0          # channels with a large mean but an ordinary spread
    return x, loud


@checker("SplitCodec")
def check_split_codec(SplitCodec):
    """Check the learner's ``SplitCodec(d, bits, n_outliers, seed)`` against ``OutlierSplitCodec`` and in a model."""
    for seed, bits, n_out in ((0, 2, 32), (1, 3, 16), (2, 2, 8)):
        x, _ = _split_data(seed)
        d = x.shape[1]
        case = (f"x: 96 tokens x 64 channels, 6 loud channels (x15), 4 channels shifted by +3 (seed {seed}); "
                f"SplitCodec({d}, bits={bits}, n_outliers={n_out}, seed=0)")
        ref = OutlierSplitCodec(d, bits, n_out, seed=0)
        expected = ref.decode(ref.encode(x))
        codec = call_learner(SplitCodec, d, bits, n_out, 0, case=case)
        stored = call_learner(codec.encode, x.copy(), case=case)
        got = as_array(call_learner(codec.decode, stored, case=case), case, "decode(encode(x))", shape=x.shape)
        if allclose(got, expected, 1e-4, 1e-4):
            _check_split_nbytes(codec, stored, ref.encode(x), case)
            continue
        rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=0))
        by_std = np.argsort(-x.std(axis=0), kind="stable")[:n_out]
        by_rms = np.argsort(-rms, kind="stable")[:n_out]
        no_split = TurboQuantMSE(d, bits, seed=0)
        swapped = OutlierSplitCodec(d, bits, n_out, seed=0)
        swapped.high, swapped.low = TurboQuantMSE(n_out, bits, seed=0), TurboQuantMSE(d - n_out, bits + 1, seed=0)
        if allclose(got, no_split.decode(no_split.encode(x)), 1e-4, 1e-4):
            hint = "that is one TurboQuantMSE for the whole vector: split the channels into two groups first."
        elif allclose(got, swapped.decode(swapped.encode(x)), 1e-4, 1e-4):
            hint = "the outlier channels get bits + 1, the others bits."
        elif set(by_std) != set(by_rms) and allclose(got, _decode_with(x, by_std, bits, n_out), 1e-4, 1e-4):
            hint = ("rank the channels by root mean square sqrt(mean(x**2)) over the tokens, not by their "
                    "standard deviation: a channel with a large mean is loud too.")
        else:
            hint = ("outliers: the n_outliers channels of largest sqrt(mean(x**2, axis=0)) (np.argsort, "
                    "kind='stable'); encode x[:, mask] with TurboQuantMSE(n_outliers, bits + 1, seed) and "
                    "x[:, ~mask] with TurboQuantMSE(d - n_outliers, bits, seed); decode puts them back.")
        err = float(np.mean((got - expected) ** 2) / np.mean(expected ** 2))
        raise Failure(f"decode(encode(x)) differs from the library's split (relative difference {err:.2g})",
                      case=case, expected=expected[0, :6], got=got[0, :6], what="first token, channels 0-5",
                      hint=hint)
    # in a model: the cache hook takes any object with encode, decode and nbytes
    cfg = LlamaConfig(n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, head_dim=32, d_ff=96, vocab_size=64)
    model = Llama.random(cfg, seed=0)
    ids = np.arange(40) % 64
    case = "a 2-layer random Llama (head size 32), 40 tokens, keys and values stored by SplitCodec(32, 2, 16, 0)"
    codec = call_learner(SplitCodec, 32, 2, 16, 0, case=case)
    try:
        got = model.forward(ids, kv=KVQuantization(keys=codec, values=codec)).logits
    except NotImplementedError:
        raise NotAttempted() from None
    except Exception as exc:  # reported, never raised
        raise Failure(f"the model could not use your codec ({type(exc).__name__}: {exc})", case=case,
                      hint="encode takes one (n_tokens, d) block and returns anything; decode returns "
                           "(n_tokens, d); nbytes(stored) returns an int.") from None
    ref = OutlierSplitCodec(32, 2, 16, seed=0)
    expected = model.forward(ids, kv=KVQuantization(keys=ref, values=ref)).logits
    if not allclose(got, expected, 1e-3, 1e-3):
        raise Failure("the model's logits with your codec differ from those with the library's split", case=case,
                      hint="encode one block (all tokens of one head) at a time; choose the channels per block.")
    return ("Your codec decodes and counts its bytes like the library's OutlierSplitCodec, and the model's "
            "cache hook uses it: same logits.")


def _check_split_nbytes(codec, stored, ref_stored, case):
    if not callable(getattr(codec, "nbytes", None)):
        raise Failure("your codec has no nbytes(stored) method", case=case,
                      hint="the model's cache hook counts the bytes of what encode stored: add "
                           "nbytes(self, stored) returning them.")
    got = as_number(call_learner(codec.nbytes, stored, case=case), case, "nbytes(stored)")
    expected = ref_stored.nbytes
    if got == expected:
        return
    codes_and_norms = ref_stored.outliers.nbytes + ref_stored.rest.nbytes
    if got == codes_and_norms:
        hint = "count the mask too: which channels are outliers, one bit per channel, d / 8 bytes."
    elif got == codes_and_norms - 2 * (ref_stored.outliers.norms.nbytes):
        hint = "each of the two encodings stores a float16 norm per token: Encoded.nbytes counts it."
    else:
        hint = ("the two encodings' .nbytes (packed codes and float16 norms) plus the mask, "
                "one bit per channel.")
    raise Failure("wrong number of bytes", case=case, expected=expected, got=got, hint=hint)


def _decode_with(x, channels, bits, n_out):
    d = x.shape[1]
    mask = np.zeros(d, dtype=bool)
    mask[channels] = True
    hi, lo = TurboQuantMSE(n_out, bits + 1, seed=0), TurboQuantMSE(d - n_out, bits, seed=0)
    out = np.empty_like(x)
    out[:, mask] = hi.decode(hi.encode(np.ascontiguousarray(x[:, mask])))
    out[:, ~mask] = lo.decode(lo.encode(np.ascontiguousarray(x[:, ~mask])))
    return out


# --------------------------------------------------------------------------- 13.4 noise in the scores


def _softmax(s):
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def _mc_reference(scores, sigma, n_draws, seed):
    rng = np.random.default_rng(seed)
    noise = sigma * rng.standard_normal((n_draws, scores.size))
    return _softmax(scores[None, :] + noise).mean(axis=0)


def _prediction(scores, sigma):
    w = _softmax(scores)
    return w + sigma ** 2 * w * (np.sum(w ** 2) - w)


def _score_cases():
    return [("scores = [2.0, 0.0, -1.0, 0.5], sigma = 0.3", np.array([2.0, 0.0, -1.0, 0.5]), 0.3),
            ("scores = np.linspace(-2, 2, 9), sigma = 0.2", np.linspace(-2, 2, 9), 0.2),
            ("scores = [0, 0, 0, 0] (all equal), sigma = 0.5", np.zeros(4), 0.5),
            ("scores = 2 * N(0, 1) (16 keys, seed 3), sigma = 0.1", 2 * seeded_rng(3).standard_normal(16), 0.1)]


@checker("noisy_weights / predicted_weights")
def check_noisy_weights(noisy_weights, predicted_weights=None):
    """Check the Monte Carlo mean of ``softmax(scores + noise)`` and its second-order prediction.

    Call it with both functions: ``check_noisy_weights(noisy_weights, predicted_weights)``
    (the Monte Carlo is checked first).
    """
    for case, scores, sigma in _score_cases():
        mcase = case + ", n_draws = 20000, seed = 0"
        expected = _mc_reference(scores, sigma, 20_000, 0)
        got = as_array(call_learner(noisy_weights, scores.copy(), sigma, 20_000, 0, case=mcase), mcase,
                       "the mean weights", shape=scores.shape)
        if not allclose(got, expected, 1e-6, 1e-9):
            if allclose(got, _softmax(scores), 1e-6, 1e-9):
                hint = ("that is softmax(scores): add the noise, sigma * rng.standard_normal((n_draws, n)), "
                        "take the softmax of each noisy row, then the mean over the draws.")
            elif allclose(got, _softmax(scores + sigma * np.random.default_rng(0).standard_normal(
                    (20_000, scores.size)).mean(axis=0)), 1e-6, 1e-9):
                hint = "average the weights, not the scores: the mean of softmax, not the softmax of the mean."
            else:
                hint = ("draw all the noise at once, rng = np.random.default_rng(seed), "
                        "sigma * rng.standard_normal((n_draws, n)), so that your draws are the checker's.")
            raise Failure("wrong Monte Carlo mean", case=mcase, expected=expected, got=got, hint=hint)
        if predicted_weights is None:
            raise Failure("the prediction is missing", case=case,
                          hint="pass both functions: check_noisy_weights(noisy_weights, predicted_weights).")
        expected = _prediction(scores, sigma)
        got = as_array(call_learner(predicted_weights, scores.copy(), sigma, case=case), case,
                       "the predicted weights", shape=scores.shape)
        if not allclose(got, expected, 1e-9, 1e-12):
            w = _softmax(scores)
            if allclose(got, w, 1e-9, 1e-12) and sigma > 0 and not np.allclose(scores, scores[0]):
                hint = ("the first-order term has mean zero, but the second-order one does not: "
                        "E[e_j e_k] = sigma^2 when j = k.")
            elif allclose(got.sum(), 1.0, 1e-9, 1e-12):
                hint = ("close: expand w_i(s + e) to second order, take the mean, and use "
                        "sum_j d^2 w_i / d s_j^2, with d w_i / d s_j = w_i (delta_ij - w_j).")
            else:
                hint = ("the weights still sum to 1 after the noise, and so must the prediction: "
                        "check the second derivative term by term.")
            raise Failure("wrong prediction", case=case, expected=expected, got=got, hint=hint)
    # the prediction is the small-noise limit of the Monte Carlo mean
    scores = np.array([2.0, 0.0, -1.0, 0.5])
    mc = np.asarray(call_learner(noisy_weights, scores, 0.2, 200_000, 1, case="sigma = 0.2, 200000 draws"))
    shift_mc = mc - _softmax(scores)
    shift_pred = np.asarray(call_learner(predicted_weights, scores, 0.2, case="sigma = 0.2")) - _softmax(scores)
    if not np.all(np.sign(shift_mc) == np.sign(shift_pred)):
        raise Failure("the prediction's shifts do not have the Monte Carlo's signs at sigma = 0.2",
                      case="scores = [2.0, 0.0, -1.0, 0.5]", expected=shift_mc, got=shift_pred,
                      hint="both functions pass their own checks; rerun the cells.")
    return ("Monte Carlo and prediction agree with the checker's; at sigma = 0.2 the predicted shift "
            f"of the top weight, {shift_pred[0]:+.4f}, matches the sampled {shift_mc[0]:+.4f} in sign.")
