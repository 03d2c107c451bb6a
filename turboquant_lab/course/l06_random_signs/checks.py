"""Lesson 06 (random signs): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np

from turboquant_lab import codebooks, data, rotation

from .._checking import Failure, allclose, as_array, as_number, call_learner, checker, expect, seeded_rng

__all__ = [
    "check_spike_preimage", "check_rht_forward", "check_rht_inverse", "check_second_flip",
]

from turboquant_lab import walsh_hadamard


@checker("spike_preimage")
def check_spike_preimage(spike_preimage):
    """Check ``spike_preimage(d)``: a unit vector that the fixed orthonormal H maps to a spike."""
    for d in (4, 8, 64):
        case = f"d = {d}"
        x = as_array(call_learner(spike_preimage, d, case=case), case, "x", shape=(d,)).astype(np.float64)
        norm = float(np.linalg.norm(x))
        if abs(norm - 1) > 1e-6:
            raise Failure("x should be a unit vector", case=case, expected=1.0, got=norm,
                           what="||x||", hint="divide by its length: x / np.linalg.norm(x).")
        y = walsh_hadamard.fwht(x)
        peak = float(np.max(np.abs(y)))
        if peak < 1 - 1e-6:
            hint = ("that is a spike already, and H spreads a spike flat. Go backwards: H is its "
                    "own inverse, so x = H e_0 = tql.fwht(np.eye(d)[0]) lands on e_0."
                    if np.max(np.abs(x)) > 1 - 1e-6 else
                    "H is its own inverse: the vector that H maps to e_k is H e_k.")
            raise Failure("tql.fwht(x) is not a spike: its largest |coordinate| should be 1",
                           case=case,
                           expected=1.0, got=peak, what="max |fwht(x)|", hint=hint)
    return "tql.fwht maps your flat unit vector to a single spike for d = 4, 8 and 64."


def _rht_cases():
    out = []
    for d, seed, shape in [(8, 0, (8,)), (64, 1, (5, 64)), (256, 2, (3, 256))]:
        rh = rotation.RandomizedHadamard(d, seed=seed)
        x = seeded_rng(seed + 10).standard_normal(shape)
        case = (f"x = np.random.default_rng({seed + 10}).standard_normal({shape}), "
                f"rh = tql.RandomizedHadamard({d}, seed={seed}), signs1 = rh.signs1, "
                f"signs2 = rh.signs2")
        out.append((case, rh, x))
    return out


@checker("rht_forward")
def check_rht_forward(rht_forward):
    """Check ``rht_forward(x, signs1, signs2)`` against ``RandomizedHadamard.forward``."""
    for case, rh, x in _rht_cases():
        s1, s2 = rh.signs1.astype(np.float64), rh.signs2.astype(np.float64)
        expected = rh.forward(x)
        got = as_array(call_learner(rht_forward, x, rh.signs1.copy(), rh.signs2.copy(), case=case), case,
                     "y", shape=x.shape)
        d = x.shape[-1]
        expect(got, expected, case, what="y", detectors=[
            (s1 * walsh_hadamard.fwht(s2 * x), "signs1 goes before the transform and signs2 after: "
                                         "y = signs2 * fwht(signs1 * x)."),
            (walsh_hadamard.fwht(s1 * x), "you left out the second flip: multiply by signs2 after "
                                    "the transform."),
            (s2 * walsh_hadamard.fwht(x), "you left out the first flip: multiply x by signs1 before "
                                    "the transform."),
            (s2 * walsh_hadamard.fwht(s1 * x) * math.sqrt(d), "use the orthonormal transform "
                                                       "(tql.fwht divides by sqrt(d))."),
        ], hint="y = signs2 * tql.fwht(signs1 * x).")
    return "Matches tql.RandomizedHadamard.forward for d = 8, 64, 256 (one vector and batches)."


@checker("rht_inverse")
def check_rht_inverse(rht_inverse):
    """Check ``rht_inverse(y, signs1, signs2)`` against ``RandomizedHadamard.inverse``."""
    for case, rh, x in _rht_cases():
        y = rh.forward(x)
        case = case.replace("x = ", "y = rh.forward(x), x = ")
        s1, s2 = rh.signs1.astype(np.float64), rh.signs2.astype(np.float64)
        expected = rh.inverse(y)
        got = as_array(call_learner(rht_inverse, y, rh.signs1.copy(), rh.signs2.copy(), case=case), case,
                     "x", shape=y.shape)
        expect(got, expected, case, what="x", detectors=[
            (s2 * walsh_hadamard.fwht(s1 * y), "undo in reverse order: first signs2, then the "
                                         "transform, then signs1."),
            (walsh_hadamard.fwht(y), "undo the sign flips too: x = signs1 * fwht(signs2 * y)."),
            (s1 * walsh_hadamard.fwht(s2 * y) * math.sqrt(y.shape[-1]),
             "use the orthonormal transform (tql.fwht divides by sqrt(d))."),
        ], hint="each step is its own inverse: x = signs1 * tql.fwht(signs2 * y).")
    return "Undoes tql.RandomizedHadamard.forward exactly for d = 8, 64 and 256."


def _flip_oracle(x, bits, seed):
    d = x.shape[-1]
    rh = rotation.RandomizedHadamard(d, seed=seed)
    u = x / np.linalg.norm(x, axis=-1, keepdims=True)
    t1 = math.sqrt(d) * walsh_hadamard.fwht(u * rh.signs1.astype(np.float64))
    t2 = t1 * rh.signs2.astype(np.float64)
    cb = codebooks.lloyd_max_codebook(bits, d)
    return tuple(float(np.mean((t - cb.dequantize(cb.quantize(t))) ** 2)) for t in (t1, t2))


@checker("mse_one_and_two_flips")
def check_second_flip(mse_one_and_two_flips):
    """Check ``mse_one_and_two_flips(x, bits, seed) -> (mse_one_flip, mse_two_flips)``."""
    flat = np.ones((4, 64)) + 0.01 * seeded_rng(9).standard_normal((4, 64))
    cases = [("x = tql.make_kv_vectors(300, 64, seed=0), bits = 2, seed = 0",
              data.make_kv_vectors(300, 64, seed=0).astype(np.float64), 2, 0),
             ("x = tql.make_kv_vectors(300, 128, seed=1), bits = 3, seed = 5",
              data.make_kv_vectors(300, 128, seed=1).astype(np.float64), 3, 5),
             ("x = np.ones((4, 64)) + 0.01 * np.random.default_rng(9).standard_normal((4, 64)), "
              "bits = 1, seed = 2", flat, 1, 2)]
    for case, x, bits, seed in cases:
        expected = _flip_oracle(x, bits, seed)
        out = call_learner(mse_one_and_two_flips, x, bits, seed, case=case)
        if not isinstance(out, (tuple, list, np.ndarray)) or len(out) != 2:
            raise Failure("return two numbers: (mse_one_flip, mse_two_flips)", case=case,
                           got=out, hint="end with `return mse_one, mse_two`.")
        got = tuple(as_number(v, case, "each MSE") for v in out)
        d = x.shape[-1]
        expect(got, expected, case, rtol=1e-6, atol=1e-12, detectors=[
            (lambda g: allclose(np.array(g) * d, expected, 1e-4),
             "scale the rotated unit vector by sqrt(d): the codebook is in scaled units "
             "(t = sqrt(d) * y has variance 1)."),
            (lambda g: allclose(np.array(g) / d, expected, 1e-4),
             "work with unit vectors: divide x by its norm before rotating."),
        ], hint="t = sqrt(d) * fwht(signs1 * u) (one flip) and t * signs2 (two flips); "
                "the MSE is np.mean((t - cb.dequantize(cb.quantize(t)))**2).")
    return ("Both MSEs match the library's parts, and they are equal: a symmetric codebook "
            "does not see the second flip.")
