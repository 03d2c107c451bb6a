"""Lesson 09: its experiments, figures, app and exercise checkers."""
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from checker_helpers import assert_fails, assert_passes

from turboquant_lab.backend import gpu_available
from turboquant_lab.course.l09_the_gpu_kernel import app as lesson_app
from turboquant_lab.course.l09_the_gpu_kernel import checks, experiments, figures
from turboquant_lab.gpu import GPU_SPECS, STAGE_KINDS, fwht_config
from turboquant_lab.walsh_hadamard import fwht_stages


def test_arithmetic_is_memory_bound_everywhere():
    dims = 2 ** np.arange(1, 14)
    r = experiments.compute_kernel_arithmetic(dims)
    np.testing.assert_allclose(r["adds_per_byte"], np.log2(dims) / 8)
    for name, spec in GPU_SPECS.items():
        bal = spec["fp32_tflops"] * 1e12 / 2 / (spec["bandwidth_gbs"] * 1e9)
        assert r["balance"][name] == pytest.approx(bal)
        assert np.all(r["adds_per_byte"] < bal)  # memory bound at every d up to 8192
        np.testing.assert_array_equal(r["fwht_vs_copy"][name], 1.0)
        # the dense product: d multiply-adds per element, compute bound for large d
        assert r["dense_vs_copy"][name][-1] == pytest.approx(8192 / bal / 8)
    # float16 halves the bytes: twice the additions per byte
    r16 = experiments.compute_kernel_arithmetic(dims, itemsize=2)
    np.testing.assert_allclose(r16["adds_per_byte"], 2 * r["adds_per_byte"])
    # a machine with a tiny balance makes the large transforms compute bound
    slow = experiments.compute_kernel_arithmetic(dims, {"toy": {"bandwidth_gbs": 1000.0,
                                                            "fp32_tflops": 2.0}})
    assert slow["balance"]["toy"] == pytest.approx(1.0)
    assert slow["fwht_vs_copy"]["toy"][-1] == pytest.approx(13 / 8)


def test_stepper_walks_the_teaching_layout():
    s = experiments.KernelStepper()
    assert s.config.d == 64 and s.config.warp_size == 4 and s.stage == 0
    kinds = [s.next().kind for _ in range(6)]
    assert kinds == [STAGE_KINDS[0]] * 2 + [STAGE_KINDS[1]] * 2 + [STAGE_KINDS[2], STAGE_KINDS[3]]
    assert s.next().stage == 6  # stays at the end
    assert s.back().stage == 5 and s.state.stride == 16
    st = s.reset()
    assert st.stage == 0 and st.nonzero == 1 and len(st.pairs) == 0
    # from e_0 every stage doubles the nonzero coordinates, as in lesson 05
    assert [s.next().nonzero for _ in range(6)] == [2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize("name", list(experiments.KERNEL_LAYOUTS))
def test_stepper_states_match_fwht_stages(name):
    cfg = experiments.kernel_layout(name)
    x = experiments.KERNEL_INPUTS["random (seed 0)"](cfg.d)
    ref = fwht_stages(x)
    for stage in range(cfg.log_d + 1):
        st = experiments.compute_kernel_stage(x, stage, cfg)
        assert st.matches_fwht_stages
        np.testing.assert_array_equal(st.values, ref[stage])
        # every element sits in exactly one (thread, register) cell
        cells = set(zip(st.owner.tolist(), st.slot.tolist()))
        assert len(cells) == cfg.d
        if stage:
            a, b = st.pairs.T
            assert np.all(b - a == st.stride) and len(st.pairs) == cfg.d // 2
            # where the pair meets is what the stage kind says
            same_thread = st.owner[a] == st.owner[b]
            same_warp = (st.owner[a] // cfg.warp_size) == (st.owner[b] // cfg.warp_size)
            if st.kind in (STAGE_KINDS[0], STAGE_KINDS[3]):
                assert same_thread.all()
            elif st.kind == STAGE_KINDS[1]:
                assert (~same_thread & same_warp).all()
                assert np.all(st.owner[a] ^ st.owner[b] == st.detail)  # the xor mask
            else:
                assert (~same_warp).all()


def test_stepper_reset_and_captions():
    s = experiments.KernelStepper()
    cfg = fwht_config(256)
    st = s.reset(experiments.KERNEL_INPUTS["e_5"](256), cfg)
    assert st.d == 256 and st.values[5] == 1 and st.nonzero == 1
    assert "input" in experiments.kernel_stage_caption(st)
    for _ in range(3):
        st = s.next()
    assert "xor mask 1" in experiments.kernel_stage_caption(st) and "stride 4" in \
        experiments.kernel_stage_caption(st)
    with pytest.raises(ValueError, match="shape"):
        s.reset(np.ones(8))


def test_kernel_app_builds_and_steps():
    app = lesson_app.kernel_app()
    stepper = app.stepper
    assert stepper.stage == 0
    buttons = [w for box in app.children[:2] for w in getattr(box, "children", [])
               if w.__class__.__name__ == "Button"]
    back, nxt = buttons
    nxt.click()
    nxt.click()
    assert stepper.stage == 2
    back.click()
    assert stepper.stage == 1
    layout = app.children[0].children[0]
    layout.value = "real kernel: d = 1024"
    assert stepper.config.d == 1024 and stepper.stage == 0
    plt.close("all")


def test_draw_functions():
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    st = experiments.compute_kernel_stage(np.eye(64, dtype=np.float32)[0], 5,
                                      experiments.kernel_layout(next(iter(experiments.KERNEL_LAYOUTS))))
    figures.draw_kernel_stage(axes[0], st)
    assert axes[0].get_ylabel() and "shared memory" in axes[0].get_title()
    figures.draw_kernel_arithmetic(axes[1], experiments.compute_kernel_arithmetic(2 ** np.arange(1, 14)))
    assert "byte" in axes[1].get_ylabel()
    fake = {"dims": np.array([128, 1024]), "nbytes": np.array([2e8, 2e8]),
            "kernel": np.array([1e-4, 1.1e-4]), "copy": np.array([9e-5, 9e-5]),
            "matmul": np.array([3e-4, 2e-3]), "numpy": np.array([0.1, 0.2])}
    figures.draw_gpu_timings(axes[2], fake)
    assert "GB/s" in axes[2].get_ylabel()
    big = experiments.compute_kernel_stage(np.ones(1024, np.float32), 10, fwht_config(1024))
    figures.draw_kernel_stage(None, big)
    plt.close("all")


def test_time_gpu_fwht_needs_a_gpu():
    if gpu_available():
        pytest.skip("a GPU is present: tests/test_gpu.py covers the kernel")
    with pytest.raises(RuntimeError, match="GPU"):
        experiments.time_gpu_fwht([128])


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


def test_messages_are_deterministic():
    a = checks.check_shuffle_stage(lambda regs, mask: regs).message
    b = checks.check_shuffle_stage(lambda regs, mask: regs).message
    assert a == b
