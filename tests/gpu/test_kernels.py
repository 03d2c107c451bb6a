"""The CUDA kernels without a GPU: nvcc compiles them, and their NumPy emulation is right.

* every ``kernels/*.cu`` compiles with nvcc for sm_80 and sm_90, with every
  size of the dispatch table instantiated (skipped, with the reason, without
  nvcc);
* the table and the emulation (``gpu.configs``, ``gpu.emulation``, which
  follows the kernels loop for loop) and the kernels agree on their
  constants, parsed from the CUDA sources;
* the emulated kernels equal the NumPy library: ``fwht`` for every d from 2
  to 8192 in float32 and float16, the randomized Hadamard, and
  ``TurboQuantMSE.encode`` / ``decode`` through the very driver code that
  runs on a GPU (``gpu.drivers.encode`` with ``EmulatedKernels``);
* the package imports without CuPy and registers itself with the backend.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import assert_codes_match_except_ties  # noqa: E402  (tests/, put on sys.path by conftest)
from hypothesis import given, settings
from hypothesis import strategies as st

from turboquant_lab import backend
from turboquant_lab.gpu import cuda, drivers
from turboquant_lab.gpu.configs import (
    FWHT_CONFIGS,
    MAX_BITS,
    STAGE_KINDS,
    STATUS_NONFINITE,
    STATUS_NORM16,
    WARP_SIZE,
    FwhtConfig,
    fwht_config,
    grid_max_cells,
)
from turboquant_lab.gpu.emulation import (
    EmulatedKernels,
    emulate_decode,
    emulate_encode,
    emulate_fwht,
    emulate_fwht_trace,
    exchange_addresses,
)
from turboquant_lab.packing import unpack_bits_reference
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.turboquant import TurboQuantMSE
from turboquant_lab.walsh_hadamard import fwht, fwht_stages

KERNELS = Path(resources.files("turboquant_lab.gpu").joinpath("kernels"))
EMULATION = Path(resources.files("turboquant_lab.gpu").joinpath("emulation.py"))
CONFIGS = Path(resources.files("turboquant_lab.gpu").joinpath("configs.py"))
ALL_LOG_D = sorted(FWHT_CONFIGS)
EMU = EmulatedKernels()
EPS32 = float(np.finfo(np.float32).eps)


def read(name: str) -> str:
    return (KERNELS / name).read_text()


# --------------------------------------------------------------------------- nvcc


def instantiations(file: str) -> list[str]:
    """The kernel instantiations nvcc compiles: every size of the table for the common ones,
    every bits / flags / mode at a few sizes (all of them would take minutes)."""
    exprs = []
    for log_d in ALL_LOG_D:
        d = 1 << log_d
        if file == "fwht.cu":
            exprs.append(cuda.name_expression("fwht signed", d)[1])
            exprs.append(cuda.name_expression("fwht float16", d, normalize=False)[1])
            if d in (2, 128, 8192):
                exprs += [cuda.name_expression(k, d, flags=f, normalize=nz)[1]
                          for k in ("fwht float32", "fwht float16") for f in range(4) for nz in (True, False)]
        else:
            for kind in ("encode", "decode"):
                exprs.append(cuda.name_expression(kind, d, 3, mode=0)[1])
                if d in (2, 4, 8, 16, 128, 8192):  # the modes the launcher uses (cuda.row_mode)
                    modes = {cuda.row_mode(dd, d) for dd in (d, d - 4, d - 1) if dd >= 1}
                    exprs += [cuda.name_expression(kind, d, b, mode=m)[1]
                              for b in range(1, MAX_BITS + 1) for m in sorted(modes)]
    return sorted(set(exprs))


def instantiation_source(file: str) -> str:
    """The string NVRTC gets (header inlined), plus one address per instantiation."""
    lines = [f"void* tq_instance_{k} = (void*)&{e};" for k, e in enumerate(instantiations(file))]
    return cuda.kernel_source(file) + "\n" + "\n".join(lines) + "\n"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH (CUDA toolkit needed)")
@pytest.mark.parametrize("file", cuda.KERNEL_FILES)
def test_nvcc_compiles_every_kernel_for_sm75_sm80_and_sm90(file, tmp_path):
    # sm_75: Colab's T4; sm_80: A100; sm_90: H100 / H200
    src = tmp_path / file
    src.write_text(instantiation_source(file))
    cmd = ["nvcc", *cuda.NVRTC_OPTIONS, "--fatbin", "--threads", "2",
           "-gencode", "arch=compute_75,code=sm_75", "-gencode", "arch=compute_80,code=sm_80",
           "-gencode", "arch=compute_90,code=sm_90",
           "-Xptxas", "-v", "-o", str(tmp_path / "out.fatbin"), str(src)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if run.returncode != 0 and "--threads" in run.stderr:  # an old nvcc: one target at a time
        cmd.remove("--threads"), cmd.remove("2")
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    # no register spills at any size, on any architecture
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", run.stderr)
    assert len(spills) == 3 * len(instantiations(file))
    assert all(s == ("0", "0") for s in spills), run.stderr[-4000:]


def test_kernel_source_inlines_the_header():
    for file in cuda.KERNEL_FILES:
        src = cuda.kernel_source(file)
        assert '#include "' not in src and "#pragma once" not in src
        assert "struct fwht_config<13>" in src and src.count("struct fwht_traits") == 1


# --------------------------------------------------------------------------- in step


def parse_table(text: str) -> dict[int, tuple[int, int, int, int]]:
    pattern = (r"template <> struct fwht_config<(\d+)>\s*\{\s*static constexpr int VEC = (\d+), "
               r"THREADS_PER_ROW = (\d+),\s*CHUNKS = (\d+), ROWS_PER_BLOCK = (\d+);")
    return {int(m[0]): tuple(int(v) for v in m[1:]) for m in re.findall(pattern, text)}


def define(text: str, name: str) -> int:
    m = re.search(rf"^#define {name} (\w+)", text, re.MULTILINE)
    assert m, f"#define {name} not found"
    return int(m.group(1), 0)


def test_emulation_table_is_the_cuda_table():
    table = parse_table(read("fwht_common.cuh"))
    assert len(table) == len(FWHT_CONFIGS) == 13
    for log_d, cfg in FWHT_CONFIGS.items():
        assert table[log_d] == (cfg.vec, cfg.threads_per_row, cfg.chunks, cfg.rows_per_block)
        assert cfg.warp_size == WARP_SIZE


def test_emulation_constants_are_the_cuda_constants():
    common, tq, fw = read("fwht_common.cuh"), read("turboquant.cu"), read("fwht.cu")
    assert define(common, "TQ_WARP_SIZE") == WARP_SIZE
    assert define(tq, "TQ_MAX_BITS") == MAX_BITS
    assert define(fw, "TQ_FLAG_SIGNS1") == cuda.FLAG_SIGNS1
    assert define(fw, "TQ_FLAG_SIGNS2") == cuda.FLAG_SIGNS2
    assert define(common, "TQ_STATUS_NONFINITE") == STATUS_NONFINITE == cuda.STATUS_NONFINITE
    assert define(common, "TQ_STATUS_NORM16") == STATUS_NORM16 == cuda.STATUS_NORM16
    # the grid's cells: `bits <= A ? B : C` on both sides
    m = re.search(r"tq_grid_max_cells\(int bits\) \{ return bits <= (\d+) \? (\d+) : (\d+); \}", tq)
    assert m, "tq_grid_max_cells not found"
    a, b, c = (int(v) for v in m.groups())
    assert [grid_max_cells(bits) for bits in range(1, 9)] == [b if bits <= a else c for bits in range(1, 9)]
    # the same derived names appear on both sides (a renamed constant shows up here)
    python = (CONFIGS.read_text() + EMULATION.read_text()).lower()
    for name in ("ROW_LANES", "WARPS_PER_ROW", "EXCHANGE_GROUPS", "EXCHANGE_FLOATS"):
        assert name in common + tq and name.lower() in python


def test_every_file_says_keep_in_step():
    for name in ("fwht_common.cuh", *cuda.KERNEL_FILES):
        assert "keep in step with turboquant_lab/gpu/emulation.py" in read(name), name
    for module in (EMULATION, CONFIGS):
        head = module.read_text()[:1500]  # the module docstring
        assert "keep in step with turboquant_lab/gpu/kernels/" in head, module.name
        for name in ("fwht_common.cuh", "turboquant.cu"):
            assert name in head, (module.name, name)
    assert "fwht.cu" in EMULATION.read_text()[:1500]


def test_invalid_configurations_raise():
    with pytest.raises(ValueError, match="vec \\* threads_per_row \\* chunks"):
        FwhtConfig(7, 4, 16, 4, 16)
    with pytest.raises(ValueError, match="whole warps"):
        FwhtConfig(7, 4, 16, 2, 1)  # 16 threads: half a warp
    with pytest.raises(ValueError, match="vec must be 2, 4 or 8"):
        FwhtConfig(7, 16, 4, 2, 32)
    with pytest.raises(ValueError, match="d = 2 .. 8192"):
        fwht_config(16384)
    with pytest.raises(ValueError, match="power of two"):
        fwht_config(96)


def test_stage_plan_has_one_stage_per_bit_in_stride_order():
    for cfg in FWHT_CONFIGS.values():
        plan = cfg.stage_plan()
        assert [stride for _, stride, _ in plan] == [1 << s for s in range(cfg.log_d)]
        kinds = [k for k, _, _ in plan]
        assert kinds == sorted(kinds, key=STAGE_KINDS.index)
        assert (STAGE_KINDS[2] in kinds) == (cfg.warps_per_row > 1)
    teach = FwhtConfig(6, 4, 8, 2, 1, warp_size=4)
    assert [k for k, _, _ in teach.stage_plan()] == [STAGE_KINDS[0]] * 2 + [STAGE_KINDS[1]] * 2 + \
        [STAGE_KINDS[2], STAGE_KINDS[3]]


def test_register_layout_covers_each_element_once():
    for cfg in FWHT_CONFIGS.values():
        idx = cfg.element_index()
        assert sorted(idx.reshape(-1).tolist()) == list(range(cfg.d))
        # the shared-memory exchange reads every element of the row exactly once
        if cfg.warps_per_row > 1:
            addr = exchange_addresses(cfg)
            assert sorted(addr.reshape(-1).tolist()) == list(range(cfg.d))
            # lanes 0..31 of a warp read 32 consecutive floats: no bank conflicts
            warp0 = addr[:WARP_SIZE, 0, 0]
            assert sorted(warp0 % 32) == list(range(32))


# --------------------------------------------------------------------------- the FWHT


@pytest.mark.parametrize("log_d", ALL_LOG_D)
def test_emulated_fwht_equals_fwht(log_d):
    d = 1 << log_d
    cfg = FWHT_CONFIGS[log_d]
    rng = np.random.default_rng(log_d)
    n = cfg.rows_per_block + 3 if d <= 1024 else 3  # a full block and a partial one
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = emulate_fwht(x)
    ref = fwht(x.astype(np.float64))
    # each output sums d terms in log2 d rounded stages
    tol = 4 * EPS32 * log_d * np.abs(ref).max()
    np.testing.assert_allclose(y, ref, rtol=0, atol=tol)
    np.testing.assert_allclose(emulate_fwht(x, normalize=False), ref * np.sqrt(d), rtol=0,
                               atol=tol * np.sqrt(d))
    # float16: loaded as half, computed in float32, stored as half (round to nearest)
    x16 = x[:5].astype(np.float16)
    y16 = emulate_fwht(x16)
    assert y16.dtype == np.float16
    ref16 = fwht(x16.astype(np.float64))
    half_ulp = np.spacing(np.abs(ref16).astype(np.float16)).astype(np.float64)
    assert np.all(np.abs(y16.astype(np.float64) - ref16) <= half_ulp * 0.5 + tol)


@pytest.mark.parametrize("log_d", ALL_LOG_D)
def test_emulated_stages_are_fwht_stages_bit_for_bit(log_d):
    x = np.random.default_rng(log_d).standard_normal((2, 1 << log_d)).astype(np.float32)
    records = emulate_fwht_trace(x)
    expected = fwht_stages(x)
    assert len(records) == len(expected) == log_d + 1
    for rec, ref in zip(records, expected):
        np.testing.assert_array_equal(rec.values, ref)


def test_teaching_configuration_with_small_warps():
    cfg = FwhtConfig(6, 4, 8, 2, 4, warp_size=4)  # 2 warps per row: a shared-memory stage
    x = np.random.default_rng(5).standard_normal((9, 64)).astype(np.float32)
    for rec, ref in zip(emulate_fwht_trace(x, config=cfg), fwht_stages(x)):
        np.testing.assert_array_equal(rec.values, ref)
    np.testing.assert_allclose(emulate_fwht(x, config=cfg), fwht(x), atol=1e-5)
    assert cfg.owner().tolist()[:8] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_emulated_fwht_keeps_batch_shape():
    x = np.random.default_rng(1).standard_normal((3, 5, 256)).astype(np.float32)
    y = emulate_fwht(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, fwht(x), atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(log_d=st.integers(1, 11), n=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_emulated_fwht_twice_is_identity(log_d, n, seed):
    x = np.random.default_rng(seed).standard_normal((n, 1 << log_d)).astype(np.float32)
    np.testing.assert_allclose(emulate_fwht(emulate_fwht(x)), x, atol=1e-5 * log_d)


@pytest.mark.parametrize("d", [2, 64, 1024, 8192])
def test_emulated_randomized_hadamard(d):
    rh = RandomizedHadamard(d, seed=3)
    x = np.random.default_rng(d).standard_normal((7, d)).astype(np.float32)
    y = emulate_fwht(x, signs1=rh.signs1, signs2=rh.signs2)
    np.testing.assert_allclose(y, rh.forward(x.astype(np.float64)), atol=1e-5)
    back = emulate_fwht(y, signs1=rh.signs2, signs2=rh.signs1)
    np.testing.assert_allclose(back, x, atol=2e-5)


def test_emulation_flushes_subnormals_like_the_ftz_kernels():
    # CuPy compiles with -ftz=true: a float32 subnormal operand or result is a signed zero
    assert "-ftz=true" in cuda.NVRTC_OPTIONS
    tiny = np.float32(2.0**-126)  # the smallest normal float32
    x = np.array([[1.5, 1.0], [-1.5, -1.0]], np.float32) * tiny
    y = emulate_fwht(x, normalize=False)
    # a + b = 2.5 tiny (normal, kept); a - b = 0.5 tiny (subnormal: flushed, sign kept)
    np.testing.assert_array_equal(y, np.array([[2.5, 0.0], [-2.5, -0.0]], np.float32) * tiny)
    assert np.signbit(y[1, 1]) and not np.signbit(y[0, 1])
    assert fwht(x, normalize=False)[0, 1] == np.float32(0.5) * tiny  # the NumPy path keeps it
    sub = np.full((3, 64), 1e-39, np.float32)  # subnormal input: read as zeros
    assert not emulate_fwht(sub).any()
    # squares below 2**-126 vanish: a vector of 1e-20 entries has norm 0 on the GPU
    k = TurboQuantMSE(64, 2, seed=0).kernel_constants()
    x2 = np.vstack([np.full(64, 1e-20, np.float32), np.full(64, 1e-3, np.float32)])
    _, norms = emulate_encode(x2, k.signs1, k.signs2, k.thresholds, 2)
    assert norms[0] == 0 and abs(norms[1] - 8e-3) < 1e-8


def test_emulation_rejects_bad_input():
    with pytest.raises(TypeError, match="float32 or float16"):
        emulate_fwht(np.zeros((2, 8)))  # float64 has no kernel
    with pytest.raises(ValueError, match="power of two"):
        emulate_fwht(np.zeros((2, 12), np.float32))
    with pytest.raises(ValueError, match="signs1"):
        emulate_fwht(np.zeros((2, 8), np.float32), signs1=np.ones(4))


# --------------------------------------------------------------------------- the drivers (gpu.drivers)


@pytest.mark.parametrize("d", [1, 2, 16, 512, 8192])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_fwht_driver_on_emulated_kernels(d, dtype):
    x = np.random.default_rng(d).standard_normal((2, 3, d)).astype(dtype)
    x_strided = np.repeat(x, 2, axis=1)[:, ::2]  # non-contiguous, as a user might pass
    for normalize in (True, False):
        y = drivers.fwht(x_strided, normalize, None, None, EMU)
        assert y.shape == x.shape and y.dtype == x.dtype
        ref = fwht(x.astype(np.float64), normalize=normalize)
        tol = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-12}[dtype]
        np.testing.assert_allclose(y.astype(np.float64), ref, atol=tol * max(1, np.abs(ref).max()))


def test_fwht_driver_errors():
    with pytest.raises(ValueError, match="up to 8192"):
        drivers.fwht(np.zeros((1, 16384), np.float32), True, None, None, EMU)
    with pytest.raises(ValueError, match="power of two"):
        drivers.fwht(np.zeros((1, 100), np.float32), True, None, None, EMU)
    bad = np.ones((3, 64), np.float32)
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        drivers.fwht(bad, True, None, None, EMU)
    with pytest.raises(ValueError, match="overflowed"):
        drivers.fwht(np.full((1, 64), 6e4, np.float16), False, None, None, EMU)
    with pytest.raises(TypeError):
        drivers.fwht(np.ones((2, 8), np.int32), True, None, None, EMU)


CASES = [(2, 1), (3, 2), (8, 3), (33, 4), (96, 2), (128, 1), (128, 2), (128, 3), (128, 4),
         (128, 8), (200, 5), (512, 6), (1024, 4), (2048, 7), (4096, 3), (8192, 2)]


@pytest.mark.parametrize("d, bits", CASES)
def test_emulated_encode_decode_equal_turboquant(d, bits):
    q = TurboQuantMSE(d, bits, seed=7)
    cfg = fwht_config(q.d_pad)
    n = cfg.rows_per_block + 5 if q.d_pad <= 512 else 5
    rng = np.random.default_rng(d * 10 + bits)
    x = (rng.standard_normal((n, d)) * rng.uniform(0.1, 10, (n, 1))).astype(np.float32)
    x[1] = 0.0  # a zero vector: norm 0, decodes to 0
    enc_cpu, enc_emu = q.encode(x), drivers.encode(q, x, EMU)
    assert enc_emu.codes.shape == enc_cpu.codes.shape and enc_emu.codes.dtype == np.uint8
    assert (enc_emu.d, enc_emu.d_pad, enc_emu.bits, enc_emu.shape, enc_emu.fingerprint) == \
        (enc_cpu.d, enc_cpu.d_pad, enc_cpu.bits, enc_cpu.shape, enc_cpu.fingerprint)
    assert assert_codes_match_except_ties(q, x, enc_emu.codes, enc_cpu.codes) <= n * q.d_pad // 1000
    # norms: float32 sums in another order, then float16: equal or one float16 step apart
    ulp16 = np.spacing(enc_cpu.norms).astype(np.float32)
    assert np.all(np.abs(enc_emu.norms.astype(np.float32) - enc_cpu.norms) <= ulp16)
    assert enc_emu.norms[1] == 0
    # decode the same codes both ways
    x_cpu, x_emu = q.decode(enc_cpu), drivers.decode(q, enc_cpu, EMU)
    assert x_emu.shape == x.shape and x_emu.dtype == np.float32
    scale = np.abs(x_cpu).max()
    np.testing.assert_allclose(x_emu, x_cpu, rtol=0, atol=8 * EPS32 * q.d_pad.bit_length() * scale)
    assert np.all(x_emu[1] == 0)


def test_emulated_encode_with_batch_dims_and_float64_input():
    q = TurboQuantMSE(100, 3, seed=1)
    x = np.random.default_rng(0).standard_normal((2, 3, 100))
    enc = drivers.encode(q, x, EMU)
    ref = q.encode(x)
    assert enc.codes.shape == (2, 3, q.n_bytes) and enc.norms.shape == (2, 3)
    assert_codes_match_except_ties(q, x, enc.codes, ref.codes)
    out = drivers.decode(q, ref, EMU)
    assert out.shape == (2, 3, 100)
    np.testing.assert_allclose(out, q.decode(ref), atol=1e-5)


@pytest.mark.parametrize("bits", [1, 3, 4])
def test_dense_rotation_driver(bits):
    q = TurboQuantMSE(48, bits, seed=2, rotation="dense")
    x = np.random.default_rng(bits).standard_normal((37, 48)).astype(np.float32)
    enc, ref = drivers.encode(q, x, EMU), q.encode(x)
    a = unpack_bits_reference(enc.codes, bits, 48)
    b = unpack_bits_reference(ref.codes, bits, 48)
    assert np.mean(a != b) < 1e-3
    np.testing.assert_allclose(drivers.decode(q, ref, EMU), q.decode(ref), atol=1e-5)


def test_encode_driver_errors_match_numpy_path():
    q = TurboQuantMSE(64, 2, seed=0)
    bad = np.ones((4, 64), np.float32)
    bad[2, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        drivers.encode(q, bad, EMU)
    with pytest.raises(ValueError, match="float16 maximum"):
        drivers.encode(q, np.full((1, 64), 1e4, np.float32), EMU)
    with pytest.raises(ValueError, match="last axis"):
        drivers.encode(q, np.ones((2, 32), np.float32), EMU)
    with pytest.raises(ValueError, match="d = 2 .. 8192"):
        drivers.encode(TurboQuantMSE(9000, 2), np.ones((1, 9000), np.float32), EMU)


def test_emulated_kernel_functions_directly():
    """emulate_encode's bytes are pack_bits' layout; emulate_decode inverts it up to the codebook."""
    q = TurboQuantMSE(64, 4, seed=4)
    x = np.random.default_rng(2).standard_normal((3, 64)).astype(np.float32)
    k = q.kernel_constants()
    thr, s1, s2 = k.thresholds, k.signs1, k.signs2
    codes, norms = emulate_encode(x, s1, s2, thr, 4)
    np.testing.assert_allclose(norms, np.linalg.norm(x, axis=1), rtol=1e-6)
    c = unpack_bits_reference(codes, 4, 64)
    np.testing.assert_array_equal(c, q.codebook.quantize(np.sqrt(64) * q._hadamard.forward(
        x / np.linalg.norm(x, axis=1, keepdims=True))))
    out = emulate_decode(codes, norms.astype(np.float16), s1, s2,
                         q.codebook.centroids.astype(np.float32), 4, 64)
    np.testing.assert_allclose(out, q.decode_reference(q.encode_reference(x)), atol=1e-3)
    with pytest.raises(ValueError, match="thresholds"):
        emulate_encode(x, s1, s2, thr[:3], 4)


def test_gpu_package_imports_without_cupy():
    code = ("import sys, turboquant_lab.gpu, turboquant_lab.gpu.emulation, turboquant_lab.gpu.cuda; "
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_core_reaches_the_gpu_package_only_through_the_backend_registry():
    # importing the library (or running it on NumPy arrays) loads no GPU module;
    # the first gpu_function call imports turboquant_lab.gpu, which registers its entry points
    code = "\n".join([
        "import sys, numpy as np, turboquant_lab as tql",
        "from turboquant_lab import backend",
        "q = tql.TurboQuantMSE(64, 2)",
        "q.decode(q.encode(np.ones((2, 64), np.float32)))",
        "print(sorted(m for m in sys.modules if m.startswith('turboquant_lab.gpu')))",
        "f = backend.gpu_function('fwht')",
        "g = sys.modules['turboquant_lab.gpu']",
        "print(f is g.fwht_gpu and [backend.gpu_function(n) for n in "
        "('randomized_hadamard', 'encode_mse', 'decode_mse')] == "
        "[g.randomized_hadamard_gpu, g.encode_mse_gpu, g.decode_mse_gpu])",
        "print('cupy' in sys.modules)",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True", "False"]
    with pytest.raises(LookupError, match="no GPU function 'fft'"):
        backend.gpu_function("fft")
