"""The exercise checkers of lessons 09-11: a correct answer passes, typical mistakes fail.

Each checker gets a correct implementation (it must pass), at least one
typical wrong one (it must fail, with the hint that names the mistake) and the
exercise stub (``raise NotImplementedError``: "not attempted").
"""
import math

import numpy as np
import pytest

from turboquant_lab import checks
from turboquant_lab.checks import FAILED, NOT_ATTEMPTED, PASSED


def stub(*args, **kwargs):
    raise NotImplementedError("your code here")


def assert_passes(checker, *fns):
    v = checker(*fns)
    assert isinstance(v, checks.Verdict)
    assert v.status == PASSED, v.message
    assert bool(v)


def assert_fails(checker, *fns, hint):
    v = checker(*fns)
    assert v.status == FAILED, v.message
    assert not v
    assert hint in v.hint, f"expected a hint containing {hint!r}, got:\n{v.message}"


NEW_CHECKERS = ["check_shuffle_partner", "check_stage_kind", "check_fwht_traffic",
                "check_shuffle_stage"]


@pytest.mark.parametrize("name", NEW_CHECKERS)
def test_registered_documented_and_not_attempted(name):
    assert name in checks.__all__
    checker = getattr(checks, name)
    assert checker.__doc__
    assert checker(stub).status == NOT_ATTEMPTED


# -------------------------------------------------------------------------- lesson 09


def test_shuffle_partner():
    assert_passes(checks.check_shuffle_partner, lambda lane, mask: np.bitwise_xor(lane, mask))
    assert_fails(checks.check_shuffle_partner, lambda lane, mask: np.asarray(lane) + mask,
                 hint="xor (^), not +")
    assert_fails(checks.check_shuffle_partner, lambda lane, mask: (np.asarray(lane) + mask) % 32,
                 hint="does not rotate")
    assert_fails(checks.check_shuffle_partner, lambda lane, mask: np.asarray(lane) | mask,
                 hint="| sets")


def _kind(stride, cfg, lanes):
    if stride < cfg.vec:
        return "registers"
    if stride < cfg.vec * lanes:
        return "warp shuffle"
    if stride < cfg.vec * cfg.threads_per_row:
        return "shared memory"
    return "registers (chunks)"


def test_stage_kind():
    assert_passes(checks.check_stage_kind, lambda s, cfg: _kind(s, cfg, cfg.row_lanes))
    # the whole warp instead of the lanes that hold the row
    assert_fails(checks.check_stage_kind, lambda s, cfg: _kind(s, cfg, cfg.warp_size),
                 hint="row_lanes = min(threads_per_row, warp_size)")

    def inclusive(s, cfg):
        return _kind(s - 1, cfg, cfg.row_lanes) if s > 1 else "registers"

    assert_fails(checks.check_stage_kind, inclusive, hint="boundaries are exclusive")
    assert_fails(checks.check_stage_kind, lambda s, cfg: "shuffle", hint="emu.STAGE_KINDS")


def test_fwht_traffic():
    def ok(d, itemsize=4):
        return 2 * itemsize * d, d * math.log2(d), math.log2(d) / (2 * itemsize)

    assert_passes(checks.check_fwht_traffic, ok)
    assert_fails(checks.check_fwht_traffic,
                 lambda d, itemsize=4: (itemsize * d, d * math.log2(d), math.log2(d) / itemsize),
                 hint="count the write")
    assert_fails(checks.check_fwht_traffic,
                 lambda d, itemsize=4: (2 * itemsize * d, d * math.log2(d) / 2,
                                        math.log2(d) / (4 * itemsize)),
                 hint="not d / 2")
    assert_fails(checks.check_fwht_traffic,
                 lambda d, itemsize=4: (2 * itemsize * d, d * d, d / (2 * itemsize)),
                 hint="dense product")
    assert_fails(checks.check_fwht_traffic, lambda d, itemsize=4: 2 * itemsize * d,
                 hint="end with `return bytes_moved")  # one number instead of three


def shuffle_ok(regs, mask):
    lanes = np.arange(regs.shape[0])
    other = regs[lanes ^ mask]
    upper = ((lanes & mask) != 0)[:, None]
    return np.where(upper, other - regs, regs + other)


def test_shuffle_stage():
    assert_passes(checks.check_shuffle_stage, shuffle_ok)

    def own_minus_other(regs, mask):
        lanes = np.arange(32)
        other = regs[lanes ^ mask]
        return np.where(((lanes & mask) != 0)[:, None], regs - other, regs + other)

    def lane_by_lane(regs, mask):  # overwrites lanes that later lanes still need
        for lane in range(32):
            p = lane ^ mask
            regs[lane] = regs[p] - regs[lane] if lane & mask else regs[lane] + regs[p]
        return regs

    def rotates(regs, mask):
        lanes = np.arange(32)
        other = regs[(lanes + mask) % 32]
        return np.where(((lanes & mask) != 0)[:, None], other - regs, regs + other)

    assert_fails(checks.check_shuffle_stage, own_minus_other, hint="not own - other")
    assert_fails(checks.check_shuffle_stage, lane_by_lane, hint="overwritten before")
    assert_fails(checks.check_shuffle_stage, rotates, hint="not (lane + mask) % 32")
    assert_fails(checks.check_shuffle_stage, lambda regs, mask: regs[:16], hint="shape")
