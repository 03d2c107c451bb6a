"""Lesson 03 (rotate first): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import numpy as np

from turboquant_lab import data, rotation

from .._checking import (
    Failure,
    allclose,
    as_array,
    as_number,
    call_learner,
    checker,
    expect,
    first_hint,
    seeded_rng,
)

__all__ = [
    "check_max_over_mean", "check_haar_rotation", "check_rotation_errors",
    "check_fraction_positive",
]




@checker("max_over_mean")
def check_max_over_mean(max_over_mean):
    """Check ``max_over_mean(x)``: ``max |x_i| / mean |x_i|`` of one vector."""
    kv = data.make_kv_vectors(1, 64, seed=0)[0].astype(np.float64)
    cases = [
        ("x = np.array([1.0, -3.0, 2.0, 0.5])", np.array([1.0, -3.0, 2.0, 0.5])),
        ("x = tql.make_kv_vectors(1, 64, seed=0)[0]", kv),
        ("x = np.random.default_rng(5).standard_normal(128)", seeded_rng(5).standard_normal(128)),
        ("x = np.full(16, -2.0)", np.full(16, -2.0)),
    ]
    for case, x in cases:
        a = np.abs(x)
        expected = float(a.max() / a.mean())
        got = as_number(call_learner(max_over_mean, x, case=case), case)
        expect(got, expected, case, detectors=[
            (float(x.max() / x.mean()), "use magnitudes: np.abs(x).max() / np.abs(x).mean()."),
            (float(a.max() / abs(x.mean())), "take the mean of |x_i|, not |mean of x_i|."),
            (float(a.mean() / a.max()), "it is max over mean, not mean over max."),
        ], hint="ratio = np.abs(x).max() / np.abs(x).mean().")
    return "Checked a small vector, an outlier vector, a Gaussian vector and a constant one."


@checker("haar_rotation")
def check_haar_rotation(haar_rotation):
    """Check ``haar_rotation(d, seed)``: QR of a Gaussian matrix with the sign fix."""
    for d, seed in [(1, 0), (2, 1), (5, 3), (16, 0), (64, 7)]:
        case = f"d = {d}, seed = {seed}"
        expected = rotation.random_orthogonal(d, seed=seed)
        got = as_array(call_learner(haar_rotation, d, seed, case=case), case, "Q", shape=(d, d))
        if not allclose(got @ got.T, np.eye(d), 1e-8, 1e-8):
            raise Failure("Q is not orthogonal: Q @ Q.T is not the identity", case=case,
                           expected=np.eye(d), got=got @ got.T,
                           hint="return the Q factor of np.linalg.qr(G), not G or R.")
        g = seeded_rng(seed).standard_normal((d, d))
        q, r = np.linalg.qr(g)
        s = np.sign(np.diag(r))
        s[s == 0] = 1.0
        expect(got, expected, case, what="Q", rtol=1e-7, atol=1e-9, detectors=[
            (q, "that is QR without the sign fix: multiply column j of Q by sign(R[j, j]), "
                "q * np.sign(np.diag(r))."),
            (s[:, None] * q, "multiply the columns of Q by the signs (q * s), not its rows "
                             "(s[:, None] * q)."),
            ((q * s).T, "return Q itself, not its transpose."),
            (lambda a: np.allclose(np.abs(a), np.abs(expected)),
             "right up to signs: multiply column j of Q by sign(R[j, j]) exactly once."),
        ], hint="draw G = np.random.default_rng(seed).standard_normal((d, d)), so that "
                "the same seed gives the library's matrix.")
    return "Orthogonal, and equal to tql.random_orthogonal for d = 1, 2, 5, 16, 64."


def _rotation_oracle(q, x, y):
    rx, ry = x @ q.T, y @ q.T
    norm_err = np.max(np.abs(np.linalg.norm(rx, axis=-1) - np.linalg.norm(x, axis=-1)))
    dot_err = np.max(np.abs(np.sum(rx * ry, axis=-1) - np.sum(x * y, axis=-1)))
    inv_err = np.max(np.abs(rx @ q - x))
    return float(norm_err), float(dot_err), float(inv_err)


@checker("rotation_errors")
def check_rotation_errors(rotation_errors):
    """Check ``rotation_errors(Q, x, y) -> (norm_err, dot_err, inverse_err)``."""
    x = data.make_kv_vectors(6, 16, seed=0).astype(np.float64)
    y = data.make_kv_vectors(6, 16, seed=1).astype(np.float64)
    q = rotation.random_orthogonal(16, seed=0)
    stretch = q * np.linspace(0.8, 1.3, 16)  # not orthogonal: columns of unequal length
    shear = np.eye(16) + 0.3 * np.triu(seeded_rng(4).standard_normal((16, 16)), 1)
    cases = [
        ("Q = tql.random_orthogonal(16, seed=0), x = tql.make_kv_vectors(6, 16, seed=0), "
         "y = tql.make_kv_vectors(6, 16, seed=1)", q, True),
        ("Q = tql.random_orthogonal(16, seed=0) * np.linspace(0.8, 1.3, 16) (not orthogonal), "
         "same x, y", stretch, False),
        ("Q = np.eye(16) + 0.3 * np.triu(np.random.default_rng(4).standard_normal((16, 16)), 1) "
         "(not orthogonal), same x, y", shear, False),
    ]
    for case, m, orthogonal in cases:
        expected = _rotation_oracle(m, x, y)
        out = call_learner(rotation_errors, m.copy(), x, y, case=case)
        if not isinstance(out, (tuple, list, np.ndarray)) or len(out) != 3:
            raise Failure("return three numbers: (norm_err, dot_err, inverse_err)", case=case,
                           got=out, hint="end with `return norm_err, dot_err, inverse_err`.")
        got = tuple(as_number(v, case, "each error") for v in out)
        if orthogonal:
            if max(got) > 1e-9:
                names = ("norm_err", "dot_err", "inverse_err")
                worst = names[int(np.argmax(got))]
                hint = {
                    "inverse_err": "undo the rotation with the transpose: for rows, "
                                   "x_back = (x @ Q.T) @ Q.",
                    "norm_err": "compare ||x @ Q.T|| with ||x|| row by row (axis=-1).",
                    "dot_err": "compare the dot product of each rotated pair with that of the "
                               "original pair, row by row: np.sum(a * b, axis=-1).",
                }[worst]
                raise Failure(f"for an orthogonal Q all three errors are ~1e-15, but "
                               f"{worst} is not", case=case, expected=expected, got=got,
                               hint=hint)
            continue
        expect(got, expected, case, rtol=1e-6, atol=1e-9, detectors=[
            (_rotation_oracle(m.T, x, y), "rotate the rows with x @ Q.T (that is Q x for each "
                                          "row taken as a column vector), undo with @ Q."),
            (lambda g: allclose(g[0], np.max(np.abs(np.sum((x @ m.T) ** 2, -1)
                                                  - np.sum(x ** 2, -1)))),
             "compare lengths ||Qx|| and ||x|| (np.linalg.norm), not squared lengths."),
            (lambda g: allclose(g[2], np.max(np.abs(x @ m.T @ np.linalg.inv(m).T - x)), 1e-6, 1e-6),
             "undo with the transpose Q.T, not with np.linalg.inv(Q): the point is that the "
             "transpose is the inverse only for a rotation."),
        ], hint="the three numbers, in this order, are max |‖Qx‖ - ‖x‖|, "
                "max |(Qx)·(Qy) - x·y| and max |Q.T (Q x) - x| over the rows.")
    return ("All three errors vanish for a rotation and match the library's definitions for "
            "two matrices that are not rotations.")


def _fraction_oracle(n_samples, d, seed, sign_fix):
    rng = seeded_rng(seed)
    hits = 0
    for _ in range(n_samples):
        q, r = np.linalg.qr(rng.standard_normal((d, d)))
        if sign_fix:
            s = np.sign(np.diag(r))
            s[s == 0] = 1.0
            q = q * s
        hits += q[0, 0] > 0
    return hits / n_samples


@checker("fraction_positive_q00")
def check_fraction_positive(fraction_positive_q00):
    """Check ``fraction_positive_q00(n_samples, d, seed, sign_fix)``: how often ``Q[0, 0] > 0``."""
    for n_samples, d, seed in [(400, 8, 0), (400, 2, 1), (200, 32, 2)]:
        for fix in (True, False):
            case = f"n_samples = {n_samples}, d = {d}, seed = {seed}, sign_fix = {fix}"
            expected = _fraction_oracle(n_samples, d, seed, fix)
            got = as_number(call_learner(fraction_positive_q00, n_samples, d, seed, fix, case=case), case)
            if abs(got - expected) <= 0.1:  # another draw order is fine: same law
                continue
            hint = first_hint(got, [
                (lambda g: g > 1, "return a fraction between 0 and 1: count / n_samples."),
                (lambda g: fix and (g < 0.1 or g > 0.9),
                 "with the sign fix Q[0, 0] is positive about half the time: multiply column j "
                 "of Q by sign(R[j, j]) before reading Q[0, 0]."),
                (lambda g: not fix and 0.3 < g < 0.7,
                 "without the fix, use np.linalg.qr's Q exactly as it comes out."),
            ], "draw a new Gaussian matrix for every sample from one "
               "rng = np.random.default_rng(seed).")
            raise Failure(problem="the fraction is off by more than the sampling noise (0.1)",
                           case=case, expected=expected, got=got, hint=hint)
    return ("Matches the library's draws: with the sign fix Q[0, 0] > 0 about half the time, "
            "without it (np.linalg.qr's Q as it comes) almost never.")
