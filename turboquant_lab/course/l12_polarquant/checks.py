"""Lesson 12 (PolarQuant): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations

import math

import numpy as np

from turboquant_lab import polar

from .._checking import Failure, as_array, as_number, call_learner, checker, expect, seeded_rng
from .experiments import TREE_EXAMPLE, allocation_table

__all__ = ["check_polar_by_hand", "check_angle_pdf", "check_polar_storage_bits", "check_best_level_bits"]


# --------------------------------------------------------------------------- 12.1


def _halves(x, levels):
    """A typical mistake: pairing the first half with the second instead of neighbours."""
    r, angles = x, []
    for level in range(levels):
        h = r.shape[-1] // 2
        a, b = r[..., :h], r[..., h:]
        psi = np.arctan2(b, a)
        angles.append(np.mod(psi, 2 * np.pi) if level == 0 else psi)
        r = np.hypot(a, b)
    return r, angles


@checker("polar_by_hand")
def check_polar_by_hand(polar_by_hand):
    """Check ``polar_by_hand(x, levels)``: ``(radii, [angles of level 1, ..., level L])``."""
    rng = seeded_rng(12)
    cases = [
        ("x = np.array([3.0, 4.0, -1.0, -1.0]), levels = 2", np.array([3.0, 4.0, -1.0, -1.0]), 2),
        ("x = np.array([1.0, -1.0]), levels = 1  (an angle below the first axis)", np.array([1.0, -1.0]), 1),
        ("x = np.array([3, 4, 1, -1, -2, 0, 2, -2], float), levels = 3  (the lesson's tree)",
         TREE_EXAMPLE.copy(), 3),
        ("x = np.random.default_rng(12).standard_normal((5, 16)), levels = 2  (a batch)",
         rng.standard_normal((5, 16)), 2),
        ("x = np.random.default_rng(12).standard_normal((3, 32)), levels = 5",
         rng.standard_normal((3, 32)), 5),
    ]
    for case, x, levels in cases:
        radii, angles = polar.polar_transform(x, levels)
        out = call_learner(polar_by_hand, x, levels, case=case)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure("return two things: (radii, angles)", case=case, got=out,
                           hint="end with `return r, angles`, angles a list with one array per level.")
        got_r, got_angles = out
        if not isinstance(got_angles, (tuple, list)) or len(got_angles) != levels:
            n = len(got_angles) if isinstance(got_angles, (tuple, list)) else "not a list"
            raise Failure(f"angles should be a list of {levels} arrays (one per level), got {n}", case=case,
                           hint="append each level's angles to a list as you go up the tree.")
        got_r = as_array(got_r, case, "radii", shape=radii.shape)
        bad_halves = _halves(x, levels)
        expect(got_r, radii, case, what="radii", rtol=1e-10, atol=1e-12, detectors=[
            (radii ** 2, "a radius is the length of its pair: take the square root of a² + b²."),
            (bad_halves[0], "pair neighbours, (x[0], x[1]), (x[2], x[3]), ...: the even and the odd "
                            "coordinates, not the first half with the second."),
        ], hint="at each level, r = sqrt(a² + b²) for the pairs (a, b) of the level below.")
        for level, (got, want) in enumerate(zip(got_angles, angles), start=1):
            got = as_array(got, case, f"the level-{level} angles", shape=want.shape)
            what = f"level-{level} angles"
            expect(got, want, case, what=what, rtol=1e-10, atol=1e-12, detectors=[
                (np.arctan2(*_swap(x, levels, level)), "the angle of a pair (a, b) is atan2(b, a): the "
                                                       "second number over the first."),
                (lambda g: level == 1 and np.any(g < 0) and allclose_mod(g, want),
                 "level-1 angles live in [0, 2π): add 2π to the negative ones."),
                (lambda g: not allclose_mod(g, want) and allclose_mod(2 * np.asarray(g), 2 * want),
                 "arctan(b / a) loses the quadrant (a < 0 lands half a turn away): use np.arctan2(b, a)."),
                (bad_halves[1][level - 1], "pair neighbours, (x[0], x[1]), (x[2], x[3]), ...: the even "
                                           "and the odd entries, not the first half with the second."),
            ], hint="at each level the angle of the pair (a, b) of the level below is atan2(b, a); "
                    "above level 1 both are radii, so it lies in [0, π/2].")
    return ("Radii and angles of every level match tql.polar_transform: one vector, a batch, an angle "
            "below the axis, and five levels deep.")


def allclose_mod(a, b) -> bool:
    """``a`` and ``b`` are the same angles up to whole turns."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(np.mod(a - b + np.pi, 2 * np.pi) - np.pi, 0, atol=1e-9))


def _swap(x, levels, level):
    """The (a, b) pair of ``level`` in the argument order of the mistake atan2(a, b)."""
    r = np.asarray(x, dtype=np.float64)
    for _ in range(level - 1):
        r = np.hypot(r[..., 0::2], r[..., 1::2])
    return r[..., 0::2], r[..., 1::2]


# --------------------------------------------------------------------------- 12.2


@checker("angle_pdf")
def check_angle_pdf(angle_pdf):
    """Check ``angle_pdf(psi, level)``: the density of a level-``level`` angle (0 off its support)."""
    for level in (1, 2, 3, 4, 6):
        law = polar.polar_angle_law(level)
        hi = 2 * math.pi if level == 1 else math.pi / 2
        psi = np.concatenate([np.linspace(0.01, hi - 0.01, 41), [-0.5, hi + 0.5]])
        case = (f"psi = np.concatenate([np.linspace(0.01, {hi:.4f} - 0.01, 41), [-0.5, {hi:.4f} + 0.5]]), "
                f"level = {level}")
        want = np.asarray(law.pdf(psi))
        got = as_array(call_learner(angle_pdf, psi.copy(), level, case=case), case, "the density",
                       shape=psi.shape)
        k = 2 ** (level - 1)
        inner = psi[:-2]
        detectors = []
        if level > 1:
            s2 = np.abs(np.sin(2 * inner))
            detectors += [
                (lambda g, s2=s2: _proportional(g[:-2], s2 ** (k - 1))
                 and not allclose_ratio(g[:-2], want[:-2]),
                 "the shape is right but not its height: divide by the integral of sin^(k-1)(2ψ) over "
                 "[0, π/2], which a Beta function gives."),
                (lambda g, s2=s2: _proportional(g[:-2], s2 ** k), "the exponent is one less than the "
                                                                  "degrees of freedom: look again at "
                                                                  "d(sin²ψ) = sin 2ψ dψ."),
                (lambda g: _proportional(g[:-2], np.abs(np.sin(inner)) ** (k - 1)),
                 "the density is a power of sin 2ψ, not of sin ψ: sin ψ cos ψ = sin(2ψ)/2."),
                (lambda g, s2=s2: _proportional(g[:-2], s2 ** (2 * k - 1)),
                 "each radius of level l holds 2^(l-1) coordinates: k = 2**(level - 1), not 2**level."),
            ]
        else:
            detectors += [
                (lambda g: np.allclose(g[:-2], 1 / math.pi), "level 1 spreads over the whole circle, "
                                                             "[0, 2π): its density is 1/(2π), not 1/π."),
            ]
        detectors.append((lambda g: g[-1] != 0 or g[-2] != 0,
                          "outside the support the density is 0: level 1 lives in [0, 2π), the others "
                          "in [0, π/2]."))
        expect(got, want, case, what="density", rtol=1e-7, atol=1e-12, detectors=detectors,
               hint="with k = 2**(level - 1), sin²ψ = B / (A + B) for A, B independent χ² with k degrees "
                    "of freedom: a Beta law. Change the variable from sin²ψ to ψ.")
    return "Matches the exact laws of levels 1, 2, 3, 4 and 6, including 0 off the support."


def _proportional(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.all(np.isfinite(a)) or np.any(b <= 0):
        return False
    ratio = a / b
    return bool(np.allclose(ratio, ratio[0], rtol=1e-6)) and ratio[0] > 0


def allclose_ratio(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=1e-7, atol=1e-12))


# --------------------------------------------------------------------------- 12.3


@checker("polar_storage_bits")
def check_polar_storage_bits(polar_storage_bits):
    """Check ``polar_storage_bits(level_bits, d)``: bits per coordinate that ``PolarQuant`` stores."""
    cases = [((4, 2, 2, 2), 128), ((4, 2, 2, 2), 32), ((3, 1), 8), ((2,) * 7, 128), ((5,), 64),
             ((1, 1, 1, 1, 1, 1), 64)]
    for level_bits, d in cases:
        case = f"level_bits = {level_bits}, d = {d}"
        want = polar.polar_bits_per_coordinate(level_bits, d)
        got = as_number(call_learner(polar_storage_bits, level_bits, d, case=case), case,
                        "bits per coordinate")
        L = len(level_bits)
        code_bits = sum(8 * math.ceil((d >> lv) * b / 8) for lv, b in enumerate(level_bits, 1))
        ideal = sum((d >> lv) * b for lv, b in enumerate(level_bits, 1))
        n_radii = d >> L
        expect(got, want, case, what="bits per coordinate", rtol=1e-12, atol=1e-12, detectors=[
            (code_bits / d, "count the radii too: every block of 2**L coordinates keeps its radius "
                            "as a float16."),
            ((code_bits + 32 * n_radii) / d, "the radii are float16: 16 bits each."),
            ((ideal + 16 * n_radii) / d if ideal != code_bits else np.nan,
             "each level is packed on its own into whole bytes per vector: round each level's "
             "bits up to a multiple of 8."),
            ((code_bits + 16) / d if n_radii > 1 else np.nan,
             "there is one radius per block of 2**L coordinates, d / 2**L of them, not one per vector."),
            ((sum(8 * math.ceil(d * b / 8) for b in level_bits) + 16 * n_radii) / d,
             "level l has d / 2**l angles, not d."),
            (code_bits + 16 * n_radii, "divide by d: the result is per coordinate, not per vector."),
        ], hint="per vector: for each level, its d / 2**l angles of b_l bits in whole bytes; then "
                "the float16 radii; divide by d.")
    return ("Matches tql.polar_bits_per_coordinate (and PolarQuant's storage) from 1 to 7 levels, with "
            "whole bytes per level and the float16 radii.")


# --------------------------------------------------------------------------- 12.4


def _best(d, levels, budget, max_bits):
    alloc, bpc, mse = allocation_table(levels, max_bits, d)
    ok = bpc <= budget + 1e-12
    if not ok.any():
        return None, None
    i = np.flatnonzero(ok)[np.argmin(mse[ok])]
    return tuple(int(v) for v in alloc[i]), float(mse[i])


@checker("best_level_bits")
def check_best_level_bits(best_level_bits):
    """Check ``best_level_bits(d, levels, budget, max_bits)``: the allocation of least predicted error."""
    cases = [(32, 3, 3.5, 4), (64, 4, 3.0, 4), (16, 4, 20.0, 3), (64, 5, 2.5, 3), (64, 2, 3.0, 4)]
    for d, levels, budget, max_bits in cases:
        case = f"d = {d}, levels = {levels}, budget = {budget}, max_bits = {max_bits}"
        want, want_mse = _best(d, levels, budget, max_bits)
        got = call_learner(best_level_bits, d, levels, budget, max_bits, case=case)
        if want is None:
            if got is not None:
                raise Failure("no allocation fits this budget, so the answer is None", case=case, got=got,
                               hint="the radii alone cost 16 / 2**levels bits per coordinate: check the "
                                    "budget before anything else, and return None when nothing fits.")
            continue
        if got is None:
            raise Failure("your function returned None, but some allocations fit the budget", case=case,
                           hint="keep every allocation whose stored bits per coordinate are at most the "
                                "budget (tql.polar_bits_per_coordinate(level_bits, d)).")
        try:
            got = tuple(int(b) for b in got)
        except TypeError:
            raise Failure("return a tuple of bits, one per level", case=case, got=got,
                           hint="return e.g. (3, 2, 2), the bits of level 1 first.") from None
        if len(got) != levels or min(got) < 1 or max(got) > max_bits:
            raise Failure(f"expected {levels} levels of 1 to {max_bits} bits", case=case, got=got,
                           hint="one entry per level, each between 1 and max_bits.")
        bpc = polar.polar_bits_per_coordinate(got, d)
        if bpc > budget + 1e-12:
            raise Failure(f"{got} stores {bpc:g} bits per coordinate, over the budget {budget}", case=case,
                           got=got, hint="count storage as PolarQuant stores it: "
                                         "tql.polar_bits_per_coordinate(level_bits, d), radii included.")
        got_mse = polar.polar_expected_mse(got)
        if got_mse > want_mse * (1 + 1e-12):
            hint = ("the most bits is not the least error: compare the predicted errors "
                    "(tql.polar_expected_mse) of every allocation that fits."
                    if bpc >= budget - 1e-12 or got_mse > 2 * want_mse else
                    "a cheaper allocation is not always the better one: try every allocation that fits.")
            raise Failure(f"{got} fits, but another allocation within the budget has a lower predicted "
                           f"error ({want_mse:.5g} against {got_mse:.5g})", case=case, got=got, hint=hint)
    return ("Finds the allocation of least predicted error within the budget (or None) for 2 to 5 levels, "
            "the stored bits counted as PolarQuant stores them.")
