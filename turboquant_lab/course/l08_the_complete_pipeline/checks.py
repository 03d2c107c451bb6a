"""Lesson 08 (the complete pipeline): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np

from turboquant_lab import codebooks, data, packing, rotation, turboquant

from .._checking import (Failure, allclose, as_array, as_number, call_learner, checker, expect, first_hint,
                         seeded_rng)

__all__ = ["check_pack3", "check_unpack3", "check_roundtrip", "check_predicted_error"]


def _pack_msb_first(codes, bits):
    bits_mat = np.array([[(int(c) >> (bits - 1 - b)) & 1 for b in range(bits)] for c in codes],
                        dtype=np.uint8).reshape(-1)
    return np.packbits(bits_mat, bitorder="big") if bits_mat.size else np.zeros(0, np.uint8)


def _pack_cases():
    return [("codes = np.array([5, 3, 7, 1])", np.array([5, 3, 7, 1], dtype=np.uint8)),
            ("codes = np.arange(8) (every 3-bit code once)", np.arange(8, dtype=np.uint8)),
            ("codes = np.random.default_rng(0).integers(0, 8, 64)",
             seeded_rng(0).integers(0, 8, 64).astype(np.uint8)),
            ("codes = np.array([1, 2, 3, 4, 5])  (n not a multiple of 8)",
             np.array([1, 2, 3, 4, 5], dtype=np.uint8)),
            ("codes = np.array([6])", np.array([6], dtype=np.uint8)),
            ("codes = np.full(16, 7)", np.full(16, 7, dtype=np.uint8))]


@checker("pack3")
def check_pack3(pack3):
    """Check ``pack3(codes)`` against ``tql.pack_bits(codes, 3)`` (little-endian bit stream)."""
    for case, codes in _pack_cases():
        expected = packing.pack_bits(codes, 3)
        got = call_learner(pack3, codes.copy(), case=case)
        g = as_array(got, case, "the bytes")
        if g.shape != expected.shape:
            hint = (f"n codes of 3 bits take ceil(3 n / 8) = {expected.size} bytes; "
                    f"one byte per code is no packing." if g.size == codes.size else
                    "n codes of 3 bits take ceil(3 n / 8) bytes: (3 * n + 7) // 8.")
            raise Failure(f"got {g.size} bytes, expected {expected.size}", case=case,
                           expected=expected, got=g, hint=hint)
        if g.dtype != np.uint8:
            raise Failure(f"the bytes should have dtype uint8, got {g.dtype}", case=case,
                           hint="return np.uint8 values (0 .. 255): .astype(np.uint8).")
        expect(g, expected, case, what="bytes", detectors=[
            (_pack_msb_first(codes, 3), "the layout is least significant bit first: bit j of "
                                        "code i is stream bit 3 i + j, and stream bit k is bit "
                                        "k % 8 (value 2**(k % 8)) of byte k // 8."),
        ], hint="code i occupies stream bits 3 i .. 3 i + 2 (lowest bit first); stream bit k "
                "is bit k % 8 of byte k // 8. Example: [5, 3, 7, 1] -> [221, 3].")
    return "Same bytes as tql.pack_bits(codes, 3), also when n is not a multiple of 8."


@checker("unpack3")
def check_unpack3(unpack3):
    """Check ``unpack3(packed, n)`` against ``tql.unpack_bits(packed, 3, n)``."""
    for case, codes in _pack_cases():
        packed = packing.pack_bits(codes, 3)
        n = codes.size
        case = f"packed = tql.pack_bits({case.split(' = ', 1)[1].split('  (')[0]}, 3), n = {n}"
        expected = packing.unpack_bits(packed, 3, n)
        got = as_array(call_learner(unpack3, packed.copy(), n, case=case), case, "the codes", shape=(n,))
        expect(got, expected, case, what="codes", detectors=[
            (lambda g: np.max(g) > 7, "mask each code to its 3 bits: & 7 (0b111)."),
            (_unpack_msb(packed, n), "the layout is least significant bit first (see "
                                     "tql.pack_bits' docstring)."),
        ], hint="code i = (stream >> 3 i) & 7, where stream bit k is bit k % 8 of byte k // 8.")
    return "Inverts tql.pack_bits(codes, 3) for 1 to 64 codes."


def _unpack_msb(packed, n):
    stream = np.unpackbits(packed, bitorder="big")[:3 * n].reshape(n, 3)
    return (stream * np.array([4, 2, 1])).sum(axis=1)


def _tq_reference(x, bits, seed):
    d = x.shape[-1]
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    rh = rotation.RandomizedHadamard(d, seed=seed)
    cb = codebooks.lloyd_max_codebook(bits, d)
    codes = cb.quantize(math.sqrt(d) * rh.forward(x / norms))
    packed = packing.pack_bits(codes, bits)
    x_hat = rh.inverse(cb.dequantize(codes) / math.sqrt(d)) * norms
    return codes, packed, norms[:, 0], x_hat


@checker("tq_encode / tq_decode")
def check_roundtrip(tq_encode, tq_decode):
    """Check ``tq_encode(x, bits, seed) -> (packed, norms)`` and its inverse ``tq_decode``.

    ``tq_decode(packed, norms, bits, d, seed) -> x_hat``.
    """
    for n, d, n_out, bits, seed in [(500, 64, 0, 2, 0), (500, 128, 5, 3, 1), (300, 64, 0, 4, 2)]:
        x = data.make_kv_vectors(n, d, n_outliers=n_out, seed=seed).astype(np.float64)
        case = (f"x = tql.make_kv_vectors({n}, {d}, n_outliers={n_out}, seed={seed}), "
                f"bits = {bits}, seed = {seed}")
        codes, packed, norms, x_hat_ref = _tq_reference(x, bits, seed)
        out = call_learner(tq_encode, x, bits, seed, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure("tq_encode should return two things: packed, norms", case=case,
                           got=out, hint="end with `return packed, norms`.")
        p = as_array(out[0], case, "packed", shape=packed.shape)
        nm = as_array(out[1], case, "norms")
        if nm.size != n:
            raise Failure(f"norms should hold one number per vector ({n}), got shape {nm.shape}",
                           case=case, hint="np.linalg.norm(x, axis=-1).")
        if not allclose(nm.reshape(n), norms, 1e-3, 1e-6):
            raise Failure("the norms are wrong", case=case, expected=norms, got=nm,
                           hint="norms = np.linalg.norm(x, axis=-1): the length of each vector.")
        got_codes = packing.unpack_bits(p.astype(np.uint8), bits, d)
        wrong = float(np.mean(got_codes != codes))
        if wrong > 5e-3:  # rounding (float32, float16 norms) may flip codes on a boundary
            t = math.sqrt(d) * rotation.RandomizedHadamard(d, seed=seed).forward(
                x / np.linalg.norm(x, axis=-1, keepdims=True))
            cb = codebooks.lloyd_max_codebook(bits, d)
            hint = first_hint(got_codes, [
                (cb.quantize(t / math.sqrt(d)), "scale the rotated unit vector by sqrt(d) "
                                                "before quantizing: the codebook is in scaled "
                                                "units (variance 1)."),
                (cb.quantize(math.sqrt(d) * rotation.RandomizedHadamard(d, seed=seed).forward(x)),
                 "divide x by its norm first: the codebook is made for unit vectors."),
                (_lloyd_gauss_codes(t, bits), "use the codebook of the exact law at this d: "
                                             "tql.lloyd_max_codebook(bits, d)."),
            ], "follow the encode steps in order: the norms, the unit vectors, the rotation "
               "tql.RandomizedHadamard(d, seed), the scale sqrt(d), the codebook of the exact "
               "law at this d, and only then the packing.")
            raise Failure(f"{wrong:.1%} of the codes differ from the library's parts",
                           case=case, expected=codes[0], got=got_codes[0],
                           what="codes of the first vector", hint=hint)
        dcase = case + "; packed, norms = (the library's encoding)"
        x_hat = as_array(call_learner(tq_decode, packed.copy(), norms.copy(), bits, d, seed, case=dcase),
                       dcase, "x_hat", shape=x.shape)
        if not allclose(x_hat, x_hat_ref, 1e-3, 1e-4):
            hint = first_hint(x_hat, [
                (x_hat_ref / norms[:, None], "multiply by the norms at the end: "
                                             "x_hat = norms[:, None] * (...)."),
                (x_hat_ref * math.sqrt(d), "divide the centroids by sqrt(d) before the "
                                           "inverse rotation."),
                (lambda g: allclose(g, _forward_twice(x_hat_ref / norms[:, None], d, seed)
                                    * norms[:, None], 1e-3, 1e-4),
                 "decode with rh.inverse, not rh.forward."),
            ], "undo the encode steps in reverse order: unpack, look up the centroids, undo "
               "the sqrt(d) scale, undo the rotation, restore the length.")
            raise Failure("tq_decode does not invert the library's encoding", case=dcase,
                           expected=x_hat_ref[0], got=x_hat[0], what="first vector", hint=hint)
        # the whole round trip, learner's encode then learner's decode
        packed2, norms2 = call_learner(tq_encode, x, bits, seed, case=case)
        x_hat = as_array(call_learner(tq_decode, np.asarray(packed2), np.asarray(norms2), bits, d, seed,
                             case=case), case, "x_hat", shape=x.shape)
        rel = float(np.mean(np.sum((x - x_hat) ** 2, axis=-1) / np.sum(x ** 2, axis=-1)))
        predicted = codebooks.lloyd_max_codebook(bits, d).mse
        # the prediction is an average over directions: Gaussian vectors meet it within
        # sampling noise; outlier-heavy ones land below it with the randomized Hadamard
        if rel > 1.1 * predicted or (n_out == 0 and rel < 0.9 * predicted):
            raise Failure("the round-trip error is far from the prediction", case=case,
                           expected=predicted, got=rel, what="mean ||x - x_hat||^2 / ||x||^2",
                           hint="tq_decode(*tq_encode(x, bits, seed), bits, d, seed) should "
                                "give x back up to the codebook's error.")
    return ("Codes and decoding match the library's parts for 2, 3 and 4 bits; your round "
            "trip's error ||x - x_hat||^2 / ||x||^2 agrees with the codebook's prediction.")


def _forward_twice(u_hat, d, seed):
    """What a decoder that applies rh.forward instead of rh.inverse returns (for a unit x_hat).

    The right decoder returns ``u_hat = inverse(z)``, so ``z = forward(u_hat)``; the slip
    returns ``forward(z)``.
    """
    rh = rotation.RandomizedHadamard(d, seed=seed)
    return rh.forward(rh.forward(u_hat))


def _lloyd_gauss_codes(t, bits):
    """Codes from the Gaussian-limit codebook (a typical slip: d=None instead of the exact d)."""
    return codebooks.lloyd_max_codebook(bits).quantize(t)


def _measured_outlier_error(bits, d, n_outliers, outlier_scale):
    """The pipeline's mean relative error on make_kv_vectors data, as lesson 08 measures it."""
    x = data.make_kv_vectors(2000, d, n_outliers=n_outliers, outlier_scale=outlier_scale, seed=0)
    q = turboquant.TurboQuantMSE(d, bits, seed=0)
    x_hat = np.asarray(q.decode(q.encode(x)), dtype=np.float64)
    x = x.astype(np.float64)
    return float(np.mean(np.sum((x - x_hat) ** 2, axis=1) / np.sum(x ** 2, axis=1)))


@checker("predicted_error")
def check_predicted_error(predicted_error):
    """Check ``predicted_error(bits, d, n_outliers, outlier_scale)`` against the measured pipeline.

    The reference is a measurement: ``TurboQuantMSE(d, bits, seed=0)`` on 2,000 vectors of
    ``tql.make_kv_vectors(2000, d, n_outliers, outlier_scale, seed=0)``; a prediction passes
    within 3%.
    """
    cases = [(b, 128, 5, 20.0) for b in (1, 2, 3, 4)] + [(2, 64, 3, 10.0), (3, 256, 8, 50.0)]
    for bits, d, n_out, scale in cases:
        case = f"bits = {bits}, d = {d}, n_outliers = {n_out}, outlier_scale = {scale}"
        measured = _measured_outlier_error(bits, d, n_out, scale)
        got = as_number(call_learner(predicted_error, bits, d, n_out, scale, case=case), case)
        if abs(got / measured - 1) <= 0.03:
            continue
        cb = codebooks.lloyd_max_codebook(bits, d)
        hint = first_hint(got, [
            (lambda g: abs(g / cb.mse - 1) < 0.01,
             "that is the codebook's own prediction, cb.mse: right for vectors whose directions "
             "are uniformly random. These are not: predict the law of their rotated "
             "coordinates first."),
            (lambda g: abs(g / codebooks.expected_mse(cb.centroids, n_out) - 1) < 0.01,
             f"close: the law at d = n_outliers counts only the {n_out} outlier channels; the "
             f"other {d - n_out} channels carry part of the energy too. Include them."),
            (lambda g: abs(g / (cb.mse * (1 + n_out * scale ** 2 / d)) - 1) < 0.05,
             "the error is relative to ||x||^2 (a unit vector after normalising): it does not "
             "grow with the outliers' size."),
        ], "one rotated, scaled coordinate t = sqrt(d) (D2 H D1 x)_i / ||x|| is a sum over "
           "the channels of x_j / ||x|| with fixed signs +-1. The channels are independent and "
           "symmetric: what law does that sum follow? Estimate E[(t - Q(t))^2] under it, with "
           "Q the codebook tql.lloyd_max_codebook(bits, d).")
        raise Failure(f"off by {got / measured - 1:+.1%} from the measured error (tolerance "
                      f"3%)", case=case, expected=measured, got=got,
                      what="mean ||x - x_hat||^2 / ||x||^2", hint=hint)
    return ("Within 3% of the error measured on the pipeline (2,000 vectors) for 1 to 4 bits "
            "at d = 128 and two other data sets.")
