"""Lesson 09 (the GPU kernel): the checkers of its exercises (see :mod:`turboquant_lab.course._checking`)."""
from __future__ import annotations


import numpy as np

from turboquant_lab.gpu import configs, emulation

from . import experiments

from .._checking import (Failure, allclose, as_array, as_number, call_learner, checker, expect, first_hint,
                         seeded_rng)

__all__ = [
    "check_shuffle_partner", "check_stage_kind", "check_issue_limit", "check_shuffle_stage",
    "check_conflict_degree",
]


@checker("shuffle_partner")
def check_shuffle_partner(shuffle_partner):
    """Check ``shuffle_partner(lane, mask)``: the lane a shuffle reads, ``lane ^ mask``."""
    lanes = np.arange(32)
    cfg = configs.fwht_config(256)  # one row per warp: 32 lanes
    cases = [(f"lane = np.arange(32), mask = {m}", lanes, m) for m in (1, 2, 4, 8, 16)]
    cases += [("lane = 5, mask = 3", 5, 3), ("lane = 0, mask = 31", 0, 31),
              ("lane = np.array([6, 7, 30]), mask = 6", np.array([6, 7, 30]), 6)]
    for case, lane, mask in cases:
        # the oracle: the emulated shuffle moves thread indices like values
        src = emulation.shfl_xor(lanes[None, :], mask, cfg)[0]
        expected = src[lane]
        got = call_learner(shuffle_partner, lane, mask, case=case)
        got = as_array(got, case, "the partner lane(s)", shape=np.shape(expected))
        l = np.asarray(lane)
        expect(got, expected, case, what="partner", detectors=[
            (l + mask, "the partner differs from the lane in the bits of the mask: xor (^), "
                       "not +. Lane 5 with mask 3 reads lane 6 (0b101 ^ 0b011 = 0b110)."),
            ((l + mask) % 32, "a shuffle does not rotate the lanes: it flips the bits of the "
                              "mask, lane ^ mask (an exchange, so lane ^ mask ^ mask = lane)."),
            (l - mask, "the partner is lane ^ mask: it adds the mask for the lanes whose mask "
                       "bit is 0 and subtracts it for the others."),
            (l | mask, "| sets the mask's bits; the partner flips them: lane ^ mask."),
            (l & mask, "& keeps the mask's bits; the partner flips them: lane ^ mask."),
        ], hint="__shfl_xor_sync(FULL, v, mask) gives lane l the value of lane l ^ mask.")
    return ("Partners for every lane and the masks 1 to 16 of the kernel's shuffle stages (and "
            "two other masks) match the emulated __shfl_xor_sync.")


def _stage_configs():
    """The kernel's table and two teaching layouts (small warps), as (text, config) pairs."""
    out = [(f"cfg = emu.fwht_config({c.d})", c) for c in configs.FWHT_CONFIGS.values()]
    teaching = [dict(log_d=6, vec=4, threads_per_row=8, chunks=2, rows_per_block=1, warp_size=4),
                dict(log_d=7, vec=4, threads_per_row=16, chunks=2, rows_per_block=1,
                     warp_size=8)]
    for kw in teaching:
        args = ", ".join(f"{k}={v}" for k, v in kw.items())
        out.append((f"cfg = emu.FwhtConfig({args})", configs.FwhtConfig(**kw)))
    return out


def _kind_with(stride, cfg, lanes, inclusive=False):
    """A stage kind with the shuffle boundary at ``vec * lanes`` (a typical slip: warp_size)."""
    kinds = configs.STAGE_KINDS
    bounds = (cfg.vec, cfg.vec * lanes, cfg.vec * cfg.threads_per_row)
    for bound, kind in zip(bounds, kinds):
        if (stride <= bound if inclusive else stride < bound):
            return kind
    return kinds[3]


@checker("stage_kind")
def check_stage_kind(stage_kind):
    """Check ``stage_kind(stride, cfg)`` against ``cfg.stage_plan()`` for every kernel layout."""
    kinds = configs.STAGE_KINDS
    for text, cfg in _stage_configs():
        plan = cfg.stage_plan()
        strides = [s for _, s, _ in plan]
        expected = [k for k, _, _ in plan]
        got = []
        for stride in strides:
            case = f"{text}, stride = {stride}"
            answer = call_learner(stage_kind, stride, cfg, case=case)
            if answer not in kinds:
                raise Failure(f"your function returned {answer!r}, which is not a stage kind",
                               case=case, expected=expected[len(got)],
                               hint="return one of the strings of emu.STAGE_KINDS: "
                                    + ", ".join(repr(k) for k in kinds) + ".")
            got.append(answer)
        if got == expected:
            continue
        wrong = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
        case = f"{text}, stride = {strides[wrong]}"
        with_warp = [_kind_with(s, cfg, cfg.warp_size) for s in strides]
        inclusive = [_kind_with(s, cfg, cfg.row_lanes, inclusive=True) for s in strides]
        if got == with_warp:
            hint = (f"here a row has threads_per_row = {cfg.threads_per_row}, fewer than the "
                    f"{cfg.warp_size} lanes of a warp: the shuffles end at stride vec * "
                    f"row_lanes, with row_lanes = min(threads_per_row, warp_size) "
                    f"(cfg.row_lanes).")
        elif got == inclusive:
            hint = ("the boundaries are exclusive: stride vec pairs element j with j + vec, "
                    "which is the first element of the next thread's load (a lane bit, not a "
                    "bit of i).")
        else:
            hint = ("write the element index in binary: its lowest log2(vec) bits are i, then "
                    "log2(row_lanes) lane bits, then the warp bits, then the bits of c. The "
                    "single bit of the stride falls in one of these fields: compare the stride "
                    "with the field boundaries, which are products of vec, row_lanes and "
                    "threads_per_row.")
        raise Failure(f"stride {strides[wrong]} is a {expected[wrong]!r} stage", case=case,
                       expected=expected[wrong], got=got[wrong], hint=hint)
    return ("The stage kind of every stride matches cfg.stage_plan() for all 13 sizes of the "
            "kernel's table and two teaching layouts with small warps.")


def _issue_limit_ref(name, nbytes, issue_key="issue", fmas_count_two=True):
    spec, rate = configs.GPU_SPECS[name], experiments.SM_RATES[name]
    sm_clocks = spec["fp32_tflops"] * 1e12 / ((2 if fmas_count_two else 1) * rate["fp32"])
    return rate[issue_key] * nbytes / (spec["bandwidth_gbs"] * 1e9 / sm_clocks)


@checker("issue_limit")
def check_issue_limit(issue_limit):
    """Check ``issue_limit(name, bytes_per_element)``: instructions per element issued while memory moves the bytes."""
    for name in configs.GPU_SPECS:
        for nbytes in (8, 4, 4.5):
            case = f"name = {name!r}, bytes_per_element = {nbytes}"
            expected = _issue_limit_ref(name, nbytes)
            got = as_number(call_learner(issue_limit, name, nbytes, case=case), case)
            spec = configs.GPU_SPECS[name]
            whole_gpu = 128 * nbytes / (spec["bandwidth_gbs"] * 1e9)
            expect(got, expected, case, rtol=1e-6, what="instructions per element", detectors=[
                (_issue_limit_ref(name, nbytes, "fp32"),
                 "that is how many FP32 instructions the FP32 pipes can run; the question is "
                 "about issue slots: 128 lane-instructions per clock per SM (SM_RATES 'issue')."),
                (_issue_limit_ref(name, nbytes, fmas_count_two=False),
                 "the quoted FP32 rate counts a multiply-add as two operations: one lane does "
                 "2 per clock."),
                (_issue_limit_ref(name, nbytes) * 1e9, "check the units: bandwidth_gbs is in GB/s "
                                                       "(1e9 bytes per second) and fp32_tflops in "
                                                       "1e12 operations per second."),
                (whole_gpu,
                 "the bandwidth is the whole GPU's: divide it among the SMs and their clocks "
                 "(SMs x clock follows from the FP32 rate and the FP32 lanes per SM)."),
                (lambda g, e=expected: allclose(g, 1 / e, 1e-6, 0) and not allclose(e, 1.0),
                 "it is instructions per element: issue rate x bytes per element / bytes per "
                 "clock, not its inverse."),
            ], hint="per SM and per clock: memory delivers bandwidth / (SMs x clock) bytes, "
                    "and the schedulers issue 128 lane-instructions; SMs x clock is the FP32 rate "
                    "divided by the operations one SM does per clock.")
    return ("Matches issue rate x bytes per element / (bandwidth per SM per clock) on the three "
            "GPUs of GPU_SPECS, for 8, 4 and 4.5 bytes per element.")


def _shuffle_reference(regs, mask):
    lanes = np.arange(regs.shape[0])
    other = regs[lanes ^ mask]
    upper = ((lanes & mask) != 0)[:, None]
    return np.where(upper, other - regs, regs + other)


def _shuffle_cases():
    """(case, regs_in, expected) from the emulated d = 256 kernel, then random registers."""
    cfg = configs.fwht_config(256)  # vec 4, 32 threads per row, 2 chunks: 8 registers
    x = seeded_rng(9).standard_normal(256).astype(np.float32)
    trace = emulation.emulate_fwht_trace(x)
    idx = cfg.element_index()  # (32, 2, 4)
    out = []
    for s, (kind, _, mask) in enumerate(cfg.stage_plan(), start=1):
        if kind != configs.STAGE_KINDS[1]:
            continue
        before = trace[s - 1].values[idx].reshape(32, -1)
        after = trace[s].values[idx].reshape(32, -1)
        out.append((f"regs = the registers of the d = 256 kernel before its stage {s} "
                    f"(shape (32, 8), float32; see the cell below), mask = {mask}",
                    before, mask, after))
    small = np.arange(32.0)[:, None] * np.array([[1.0, -0.5]]) + 1.0
    for mask in (1, 16):
        out.append((f"regs = np.arange(32.0)[:, None] * np.array([[1.0, -0.5]]) + 1.0, "
                    f"mask = {mask}", small, mask, _shuffle_reference(small, mask)))
    one = seeded_rng(3).standard_normal((32, 1))
    out.append(("regs = np.random.default_rng(3).standard_normal((32, 1)), mask = 4", one, 4,
                _shuffle_reference(one, 4)))
    return out


def _shuffle_overwrite_bug(regs, mask):
    """The in-place slip: lanes updated one by one, later lanes reading updated partners."""
    out = np.array(regs, dtype=np.float64)
    for lane in range(out.shape[0]):
        partner = lane ^ mask
        out[lane] = out[partner] - out[lane] if lane & mask else out[lane] + out[partner]
    return out


@checker("shuffle_stage")
def check_shuffle_stage(shuffle_stage):
    """Check ``shuffle_stage(regs, mask)`` on a (32, k) register file against the emulation."""
    for case, regs, mask, expected in _shuffle_cases():
        got = as_array(call_learner(shuffle_stage, regs, mask, case=case), case, "the registers",
                     shape=regs.shape)
        if allclose(got, expected, 1e-6, 1e-6):
            continue
        lanes = np.arange(32)
        other = regs[lanes ^ mask]
        upper = ((lanes & mask) != 0)[:, None]
        hint = first_hint(got, [
            (np.where(upper, regs - other, regs + other),
             "the lane whose mask bit is set holds the upper element b, and its partner's value "
             "`other` is a: it keeps a - b = other - own, not own - other."),
            (np.where(upper, regs + other, other - regs),
             "upper and lower are swapped: the lane whose mask bit is 0 (lane & mask == 0) holds "
             "a and keeps a + b; the other one keeps other - own."),
            (np.where(upper, regs[(lanes + mask) % 32] - regs, regs + regs[(lanes + mask) % 32]),
             "the partner lane is lane ^ mask (exercise 9.1), not (lane + mask) % 32."),
            (_shuffle_overwrite_bug(regs, mask),
             "a lane was overwritten before its partner read it: on the GPU all 32 lanes "
             "shuffle at once, so read every partner value first (other = regs[lanes ^ mask], "
             "a new array), then build the result."),
            (regs + other, "every lane adds: the upper lane must keep other - own (the "
                           "difference)."),
            (other, "the shuffle only fetches the partner's value; the butterfly then combines "
                    "it with the lane's own."),
        ], "read every lane's partner value first (exercise 9.1 gives the partner), then "
           "let each lane keep a + b or a - b according to its mask bit, all lanes at once "
           "(np.where with a per-lane condition broadcast over the registers).")
        bad = ~np.all(np.isclose(got, expected, rtol=1e-6, atol=1e-6), axis=1)
        lane = int(np.argmax(bad))
        raise Failure(f"{int(bad.sum())} of the 32 lanes hold wrong values", case=case,
                       expected=expected[lane], got=got[lane], what=f"lane {lane}:", hint=hint)
    return ("All five shuffle stages of the d = 256 kernel give the emulation's registers, and "
            "so do hand-made register files.")


def _degree(addresses):
    a = np.unique(np.asarray(addresses, dtype=np.int64))
    return int(np.bincount(a % 32, minlength=32).max())


@checker("conflict_degree")
def check_conflict_degree(conflict_degree):
    """Check ``conflict_degree(addresses)``: the most distinct addresses one bank serves for a warp."""
    lanes = np.arange(32)
    cases = [
        ("addresses = np.arange(32) * 32 + np.arange(32) % 2  (16 floats in bank 0, 16 in bank 1)",
         lanes * 32 + lanes % 2),
        ("addresses = np.arange(32)  (consecutive floats)", lanes),
        ("addresses = np.full(32, 7)  (every lane reads the same float)", np.full(32, 7)),
        ("addresses = np.arange(32) * 32  (a column of a 32 x 32 tile)", lanes * 32),
        ("addresses = np.arange(32) * 2", lanes * 2),
        ("addresses = np.arange(32) // 2  (two lanes per float)", lanes // 2),
        ("addresses = np.arange(32) * 33 + 5", lanes * 33 + 5),
        ("addresses = np.random.default_rng(4).integers(0, 256, 32)",
         seeded_rng(4).integers(0, 256, 32)),
        ("addresses = (np.arange(32) % 4) * 32  (four floats, all in bank 0)", (lanes % 4) * 32),
    ]
    cfg = configs.fwht_config(2048)
    exchange = emulation.exchange_addresses(cfg)                   # (threads, groups, warps)
    addr = exchange.reshape(-1, 32, *exchange.shape[1:])           # (warp, lane, groups, warps)
    cases.append(("addresses = the exchange reads of warp 0 at d = 2048 (lesson 09, section 3)",
                  addr[0, :, 0, 0]))
    for case, a in cases:
        expected = _degree(a)
        got = as_number(call_learner(conflict_degree, np.array(a), case=case), case, "the degree")
        if got == expected:
            continue
        banks = np.asarray(a) % 32
        hint = first_hint(got, [
            (int(np.bincount(banks, minlength=32).max()),
             "lanes that read the same address share one read (a broadcast): count the distinct "
             "addresses in each bank, not the lanes."),
            (int(np.bincount((np.unique(a) // 32) % 32, minlength=32).max()),
             "the bank of float address a is a % 32 (consecutive floats sit in consecutive "
             "banks), not a // 32."),
            (int(np.unique(banks).size), "that is how many banks the warp touches; the rounds are "
                                         "set by the busiest bank."),
        ], "group the warp's distinct addresses by bank (address % 32) and return the size of "
           "the largest group.")
        raise Failure("wrong number of rounds", case=case, expected=expected, got=got, hint=hint)
    return ("Rounds match for consecutive, broadcast, strided, random and the kernel's own "
            "exchange addresses.")
