"""Lesson 03 (rotate first): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import numpy as np

from turboquant_lab import data, rotation, uniform

from .._checking import (Failure, allclose, as_array, as_number, call_learner, checker, expect, first_hint,
                         seeded_rng)

__all__ = [
    "check_max_over_mean", "check_haar_rotation", "check_rotation_errors",
    "check_predicted_mse_ratio",
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
            (float(x.max() / x.mean()), "use magnitudes |x_i|: a large negative coordinate is "
                                        "as spiky as a large positive one."),
            (float(a.max() / abs(x.mean())), "take the mean of |x_i|, not |mean of x_i|."),
            (float(a.mean() / a.max()), "it is max over mean, not mean over max."),
        ], hint="the largest magnitude divided by the average magnitude of the coordinates.")
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
            (q, "that is QR without the sign fix: the statement says what to do with the "
                "signs of R's diagonal."),
            (s[:, None] * q, "the signs belong to the columns of Q, not its rows: check "
                             "which axis your broadcasting runs along."),
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


def _measured_ratio(x, q, bits: int = 6) -> float:
    """MSE of the min-max ruler on the rows of ``x`` over that on the rows of ``x @ q.T``."""
    y = x @ q.T
    direct = np.mean((x - uniform.uniform_dequantize(uniform.uniform_quantize(x, bits))) ** 2)
    rotated = np.mean((y - uniform.uniform_dequantize(uniform.uniform_quantize(y, bits))) ** 2)
    return float(direct / rotated)


def _range_predictions(x, q):
    """Candidate predictions from the ranges: (mean of squares ratio, squared mean ratio,
    mean of per-vector ratios, plain range ratio)."""
    rx, ry = np.ptp(x, axis=-1), np.ptp(x @ q.T, axis=-1)
    return (float(np.mean(rx ** 2) / np.mean(ry ** 2)), float((rx.mean() / ry.mean()) ** 2),
            float(np.mean(rx ** 2 / ry ** 2)), float(rx.mean() / ry.mean()))


@checker("predicted_mse_ratio")
def check_predicted_mse_ratio(predicted_mse_ratio):
    """Check ``predicted_mse_ratio(x, R)`` against the MSE ratio measured at 6 bits (within 5 %)."""
    sets = [
        ("x = tql.make_kv_vectors(1000, 64, seed=3), R = tql.random_orthogonal(64, seed=1)",
         dict(n=1000, d=64, seed=3)),
        ("x = tql.make_kv_vectors(500, 256, seed=3), R = tql.random_orthogonal(256, seed=1)",
         dict(n=500, d=256, seed=3)),
        ("x = tql.make_kv_vectors(1000, 64, n_outliers=0, seed=3) (no outliers), "
         "R = tql.random_orthogonal(64, seed=1)", dict(n=1000, d=64, n_outliers=0, seed=3)),
        ("x = tql.make_kv_vectors(500, 128, n_outliers=1, outlier_scale=50, seed=3), "
         "R = tql.random_orthogonal(128, seed=1)",
         dict(n=500, d=128, n_outliers=1, outlier_scale=50.0, seed=3)),
    ]
    for case, kw in sets:
        x = data.make_kv_vectors(**kw).astype(np.float64)
        q = rotation.random_orthogonal(kw["d"], seed=1)
        measured = _measured_ratio(x, q)
        got = as_number(call_learner(predicted_mse_ratio, x, q, case=case), case, "the prediction")
        if np.isfinite(got) and abs(got / measured - 1) <= 0.05:
            continue
        squares, squared_means, per_vector, plain = _range_predictions(x, q)
        hint = first_hint(got, [
            (lambda g: abs(g * measured - 1) < 0.1, "that is after over before: the ratio asked "
                                                    "for is the direct MSE over the rotated one."),
            (lambda g: abs(g / plain - 1) < 0.02, "the MSE does not follow the slot width itself "
                                                  "but a power of it (lesson 01's model)."),
            (lambda g: abs(g / squared_means - 1) < 0.02 or abs(g / per_vector - 1) < 0.02,
             "close: the MSE is an average of each vector's slot², so vectors with a wide range "
             "weigh more. Average before you divide, and average the right quantity."),
        ], "compute each vector's range (max - min) before and after the rotation (the rows of "
           "x @ R.T); lesson 01's model says how the MSE depends on the range at a fixed number "
           "of bits.")
        raise Failure(f"your prediction is {abs(got / measured - 1):.0%} away from the ratio "
                      f"measured at 6 bits ({measured:.3g})", case=case, got=got,
                      what="predicted ratio", hint=hint)
    return ("Your prediction from the ranges is within 5 % of the measured MSE ratio at 6 bits "
            "for d = 64, 128 and 256, with 5, 1 and no outlier channels.")
