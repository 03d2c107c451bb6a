"""Lesson 09: its experiments, figures, app and exercise checkers."""
import importlib.util
import math
import shutil
import sys
from pathlib import Path

import ipywidgets
import numpy as np
import pytest
from app_helpers import bar_heights, line_data
from checker_helpers import assert_fails, assert_passes

from turboquant_lab.backend import gpu_available
from turboquant_lab.course.l09_the_gpu_kernel import app as lesson_app
from turboquant_lab.course.l09_the_gpu_kernel import checks, experiments, figures
from turboquant_lab.gpu import GPU_SPECS, STAGE_KINDS, fwht_config
from turboquant_lab.walsh_hadamard import fwht_stages

ROOT = Path(__file__).resolve().parents[2]


def test_instruction_counts_follow_the_stage_plan():
    for d in (2, 16, 128, 1024, 8192):
        for itemsize in (4, 2):
            c = experiments.kernel_instruction_counts(d, itemsize)
            cfg = fwht_config(d).for_itemsize(itemsize)
            kinds = [k for k, _, _ in cfg.stage_plan()]
            assert c["fp32"] == cfg.log_d + 1                      # one add per stage, the scale
            assert c["shuffle"] == kinds.count(STAGE_KINDS[1])
            assert (c["shared"] > 0) == (STAGE_KINDS[2] in kinds)
            assert c["memory"] == pytest.approx(2 / cfg.vec)
            assert c["bytes"] == 2 * itemsize and c["convert"] == (2 if itemsize == 2 else 0)
            assert c["total"] == pytest.approx(c["fp32"] + c["shuffle"] + c["shared"] + c["memory"]
                                               + c["convert"])
    signed = experiments.kernel_instruction_counts(128, 4, signs=True)
    assert signed["fp32"] == 7 + 1 + 2 and signed["memory"] == pytest.approx(0.5 + 0.5)
    with pytest.raises(ValueError, match="itemsize"):
        experiments.kernel_instruction_counts(128, 8)


def test_bandwidth_per_sm_clock_matches_the_published_figures():
    # SMs x clock from the FP32 rate: H200 132 SMs at 1.98 GHz, A100 108 at 1.41, T4 40 at 1.59
    for name, sms, ghz in (("H200 SXM", 132, 1.98), ("A100 80GB SXM", 108, 1.41), ("T4", 40, 1.59)):
        spec = GPU_SPECS[name]
        assert experiments.bytes_per_sm_clock(name) == pytest.approx(
            spec["bandwidth_gbs"] / (sms * ghz), rel=0.01)


def test_kernel_budget_rows():
    rows = experiments.compute_kernel_budget(dims=(128, 8192))
    assert len(rows) == 3 * 2 * 2
    for r in rows:
        c = experiments.kernel_instruction_counts(r["d"], r["itemsize"])
        rate = experiments.SM_RATES[r["gpu"]]
        assert r["memory"] == pytest.approx(c["bytes"] / experiments.bytes_per_sm_clock(r["gpu"]))
        assert r["issue"] == pytest.approx(c["total"] / rate["issue"])
        assert r["shuffle"] == pytest.approx(c["shuffle"] / 32)
        assert r["bound"] == max(r[k] for k in ("issue", "fp32", "shuffle", "shared"))
        assert r["ratio"] == pytest.approx(r["bound"] / r["memory"])
        assert r["ratio"] < 1                             # the model: memory bound everywhere
    by = {(r["gpu"], r["d"], r["itemsize"]): r for r in rows}
    # half the bytes, (almost) the same work: float16 is closer to its limit
    for name in GPU_SPECS:
        assert by[name, 8192, 2]["ratio"] > 1.8 * by[name, 8192, 4]["ratio"]
    # a GPU with slow shuffles becomes shuffle bound
    slow = dict(experiments.SM_RATES, **{"H200 SXM": dict(experiments.SM_RATES["H200 SXM"], shuffle=2)})
    r = experiments.compute_kernel_budget(dims=(1024,), itemsizes=(4,), rates=slow)[-1]
    assert r["limiting"] == "shuffle" and r["ratio"] > 1
    # compiled counts replace the algorithm's total in the issue resource only
    r = experiments.compute_kernel_budget(dims=(8192,), itemsizes=(4,), instructions={(4, 8192): 24.2})[-1]
    assert r["issue"] == pytest.approx(24.2 / 128)


def test_dense_product_is_compute_bound_at_large_d():
    dense = experiments.dense_product_vs_copy([16, 4096])
    for name, ratios in dense.items():
        memory = 8 / experiments.bytes_per_sm_clock(name)
        assert ratios[1] == pytest.approx(4096 / experiments.SM_RATES[name]["fp32"] / memory)
        assert ratios[0] == 1.0                           # 16 multiply-adds: still memory bound


def test_stored_sass_counts_have_the_shape_of_the_kernels():
    for (kind, d), (total, shuffles, shared) in experiments.SASS_PER_ELEMENT.items():
        c = experiments.kernel_instruction_counts(d, 2 if kind == "float16" else 4, kind == "signed")
        assert shuffles == c["shuffle"] and shared == c["shared"]
        assert total > c["total"]                          # the compiler adds index arithmetic
    assert experiments.GPU_REFERENCE_RUN == {} or {"device", "commit", "rows"} <= set(
        experiments.GPU_REFERENCE_RUN)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc: the stored SASS counts are not re-measured")
def test_stored_sass_counts_are_those_of_the_current_kernels(monkeypatch):
    spec = importlib.util.spec_from_file_location("sass_budget", ROOT / "tools" / "sass_budget.py")
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "sass_budget", tool)   # its dataclasses look themselves up there
    spec.loader.exec_module(tool)
    if tool.missing_tools():
        pytest.skip(f"the SASS tools are missing: {tool.missing_tools()}")
    rows = tool.measure([128], [2], kinds=["fwht float32", "fwht float16"], jobs=2)
    for row in rows:
        kind = row["kind"].split()[1]
        total, shuffles, shared = experiments.SASS_PER_ELEMENT[kind, 128]
        assert row["per_element"] == pytest.approx(total, abs=0.05), (
            f"the kernels changed: re-run {experiments.SASS_COMMAND} and update SASS_PER_ELEMENT")
        assert row["shuffles"] == shuffles and row["shared"] == shared


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


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_kernel_app_buttons_and_menus_redraw_the_register_file(shown_figures):
    app = lesson_app.kernel_app()
    buttons = {w.description: w for w in _walk(app) if isinstance(w, ipywidgets.Button)}
    layout = next(w for w in _walk(app) if isinstance(w, ipywidgets.Dropdown) and w.description == "layout")
    choice = next(w for w in _walk(app) if isinstance(w, ipywidgets.Dropdown) and w.description == "input")
    caption = next(w for w in _walk(app) if isinstance(w, ipywidgets.Label))
    teach = experiments.kernel_layout(next(iter(experiments.KERNEL_LAYOUTS)))

    def assert_shows(stage, x, cfg):
        state = experiments.compute_kernel_stage(x, stage, cfg)
        ax = shown_figures.last.axes[0]
        expected = np.zeros((cfg.elems, cfg.threads_per_row))
        expected[state.slot, state.owner] = state.values
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), expected)
        assert f"d = {cfg.d}" in ax.get_title() and (stage == 0 or f"stage {stage}/" in ax.get_title())
        assert caption.value == experiments.kernel_stage_caption(state)

    for name, stage in (("Next", 1), ("Next", 2), ("Next", 3), ("Back", 2)):
        shown_figures.clear()
        buttons[name].click()
        assert_shows(stage, np.eye(64, dtype=np.float32)[0], teach)
    shown_figures.clear()
    layout.value = "real kernel: d = 1024"
    assert_shows(0, np.eye(1024, dtype=np.float32)[0], fwht_config(1024))
    choice.value = "random (seed 0)"
    shown_figures.clear()
    buttons["Next"].click()
    assert_shows(1, experiments.KERNEL_INPUTS["random (seed 0)"](1024), fwht_config(1024))


def test_kernel_stage_figure_draws_the_pairs_of_the_stage():
    cfg = experiments.kernel_layout(next(iter(experiments.KERNEL_LAYOUTS)))
    st = experiments.compute_kernel_stage(np.eye(64, dtype=np.float32)[0], 5, cfg)
    ax = figures.draw_kernel_stage(None, st)
    assert "shared memory" in ax.get_title()
    segments = ax.collections[0].get_segments()
    assert len(segments) == len(st.pairs) == 32
    # the pairs of a shared-memory stage join two threads of different warps
    x_from = np.array([seg[0][0] for seg in segments])
    x_to = np.array([seg[1][0] for seg in segments])
    assert np.all(np.floor(x_from + 0.5) // cfg.warp_size != np.floor(x_to + 0.5) // cfg.warp_size)
    assert sorted(int(t.get_text()) for t in ax.texts) == list(range(64))   # every element in its cell


def test_kernel_budget_figure_draws_the_ratios():
    rows = experiments.compute_kernel_budget(dims=(128, 1024))
    compiled = experiments.compute_kernel_budget(dims=(128, 1024), instructions={
        (4, 128): 18.5, (4, 1024): 23.1, (2, 128): 20.0, (2, 1024): 24.8})
    axes = figures.draw_kernel_budget(None, rows, compiled)
    assert [ax.get_title() for ax in axes] == list(GPU_SPECS)
    for ax, name in zip(axes, GPU_SPECS):
        mine = [r for r in rows if r["gpu"] == name]
        expected = [r["ratio"] for itemsize in (4, 2) for r in mine if r["itemsize"] == itemsize]
        np.testing.assert_allclose(bar_heights(ax), expected)
        dots = np.concatenate([y for (_, y), line in zip(line_data(ax), ax.get_lines())
                               if line.get_marker() == "o"])
        np.testing.assert_allclose(sorted(dots), sorted(r["ratio"] for r in compiled if r["gpu"] == name))


def test_gpu_timings_figure_draws_bandwidths():
    fake = {"dims": np.array([128, 1024]), "nbytes": np.array([2e8, 2e8]),
            "kernel": np.array([1e-4, 1.1e-4]), "copy": np.array([9e-5, 9e-5]),
            "matmul": np.array([3e-4, 2e-3]), "numpy": np.array([0.1, 0.2])}
    ax = figures.draw_gpu_timings(None, fake)
    expected = np.concatenate([fake["nbytes"] / fake[k] / 1e9 for k in ("copy", "kernel", "matmul", "numpy")])
    np.testing.assert_allclose(bar_heights(ax), expected)


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


def issue_limit_ok(name, nbytes):
    spec, rate = GPU_SPECS[name], experiments.SM_RATES[name]
    sm_clocks = spec["fp32_tflops"] * 1e12 / (2 * rate["fp32"])
    return rate["issue"] * nbytes / (spec["bandwidth_gbs"] * 1e9 / sm_clocks)


def test_issue_limit():
    assert_passes(checks.check_issue_limit, issue_limit_ok)
    # H200, float32 FWHT: the 56 instructions per element of tools/sass_budget.py's "limit"
    assert issue_limit_ok("H200 SXM", 8) == pytest.approx(55.8, abs=0.1)

    def fp32_rate(name, nbytes):
        return issue_limit_ok(name, nbytes) * experiments.SM_RATES[name]["fp32"] / 128

    def whole_gpu(name, nbytes):
        return 128 * nbytes / (GPU_SPECS[name]["bandwidth_gbs"] * 1e9)

    assert_fails(checks.check_issue_limit, fp32_rate, hint="issue slots")
    assert_fails(checks.check_issue_limit, whole_gpu, hint="among the SMs")
    assert_fails(checks.check_issue_limit, lambda n, b: 1 / issue_limit_ok(n, b), hint="not its inverse")
    v = checks.check_issue_limit(lambda n, b: 1.0)
    assert v.status == "failed" and "fp32_tflops" not in v.hint


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


def conflict_ok(addresses):
    a = np.unique(np.asarray(addresses))
    return int(np.bincount(a % 32, minlength=32).max())


def test_conflict_degree():
    assert_passes(checks.check_conflict_degree, conflict_ok)
    assert_fails(checks.check_conflict_degree,
                 lambda a: int(np.bincount(np.asarray(a) % 32, minlength=32).max()), hint="broadcast")
    assert_fails(checks.check_conflict_degree,
                 lambda a: int(np.bincount(np.unique(a) // 32 % 32, minlength=32).max()), hint="a % 32")
    assert_fails(checks.check_conflict_degree, lambda a: int(np.unique(np.asarray(a) % 32).size),
                 hint="busiest bank")
    # the challenge's answer: the degree of a strided column read is gcd(stride, 32)
    lanes = np.arange(32)
    for stride in range(32, 49):
        assert max(conflict_ok(lanes * stride + k) for k in range(32)) == math.gcd(stride, 32)
