"""The CUDA launcher without a GPU: every launch checked against the kernels' C signatures.

``fake_cupy`` (beside this file) stands in for CuPy: each kernel launch checks
the grid, the block and every argument (dtype, contiguity, alignment, the
search grid the encoder gets), then runs the kernel's NumPy emulation. So the
public GPU entry points (``gpu.fwht_gpu``, ``TurboQuantMSE.encode`` of a
"device" array, ...) run here end to end through ``gpu.cuda.CudaKernels``:
the template arguments they pick (flags, normalize, bits, the row mode of a
``d`` that is not a power of two), the status word and when it is read.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import fake_cupy
import numpy as np
import pytest

from turboquant_lab.gpu import configs, emulation
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.turboquant import TurboQuantMSE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cp(monkeypatch):
    return fake_cupy.install(monkeypatch)


@pytest.fixture
def gpu(cp):
    from turboquant_lab import gpu

    gpu.check_status(raise_error=False)  # a clean sticky word
    return gpu


@pytest.mark.parametrize("d", [2, 8, 128, 1024, 8192])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_fwht_launches_the_template_it_needs(cp, gpu, d, dtype):
    x = np.random.default_rng(d).standard_normal((37, d)).astype(dtype)
    rh = RandomizedHadamard(d, seed=1)
    log_d = d.bit_length() - 1
    ctype = "float" if dtype == np.float32 else "half_bits"
    y = gpu.fwht_gpu(cp.asarray(x))
    assert isinstance(y, cp.ndarray) and y.dtype == dtype
    np.testing.assert_array_equal(cp.asnumpy(y), emulation.emulate_fwht(x))
    y = gpu.fwht_gpu(cp.asarray(x), normalize=False)
    np.testing.assert_array_equal(cp.asnumpy(y), emulation.emulate_fwht(x, normalize=False))
    y = gpu.randomized_hadamard_gpu(cp.asarray(x), rh.signs1, rh.signs2)
    np.testing.assert_array_equal(cp.asnumpy(y), emulation.emulate_fwht(x, signs1=rh.signs1, signs2=rh.signs2))
    assert fake_cupy.LAUNCHES == [f"fwht_kernel<{ctype}, {log_d}, 0, true>",
                                  f"fwht_kernel<{ctype}, {log_d}, 0, false>",
                                  f"fwht_kernel<{ctype}, {log_d}, 3, true>"]


def test_fwht_default_check_is_lazy_and_read_on_request(cp, gpu):
    bad = np.ones((5, 64), np.float32)
    bad[3, 7] = np.nan
    y = gpu.fwht_gpu(cp.asarray(bad))  # no error, no host wait: the flag stays on the device
    assert not np.isfinite(cp.asnumpy(y)[3]).any() and np.isfinite(cp.asnumpy(y)[:3]).all()
    assert gpu.check_status(raise_error=False) == configs.STATUS_NONFINITE
    assert gpu.check_status(raise_error=False) == 0  # read and cleared
    gpu.fwht_gpu(cp.asarray(bad))
    with pytest.raises(ValueError, match="NaN or Inf"):
        gpu.check_status()
    with pytest.raises(ValueError, match="NaN or Inf"):  # the immediate check names the NaN
        gpu.fwht_gpu(cp.asarray(bad), check_finite=True)
    gpu.fwht_gpu(cp.asarray(bad), check_finite=False)
    assert gpu.check_status(raise_error=False) == 0  # False: nothing recorded
    with pytest.raises(ValueError, match="overflowed"):
        gpu.fwht_gpu(cp.asarray(np.full((2, 64), 6e4, np.float16)), normalize=False, check_finite=True)
    with pytest.raises(ValueError, match="check_finite must be"):
        gpu.fwht_gpu(cp.asarray(bad), check_finite="sometimes")


def test_float64_and_d1_keep_the_lazy_flag_without_a_kernel(cp, gpu):
    x = np.ones((3, 16))
    x[1, 2] = np.inf
    gpu.fwht_gpu(cp.asarray(x))
    assert fake_cupy.LAUNCHES == []  # float64: array operations
    assert gpu.check_status(raise_error=False) == configs.STATUS_NONFINITE


@pytest.mark.parametrize("d, bits", [(128, 2), (128, 3), (128, 4), (96, 3), (100, 5), (33, 2),
                                     (3000, 4), (6, 1), (12, 8), (1024, 7)])
def test_encode_decode_through_the_launcher(cp, gpu, d, bits):
    q = TurboQuantMSE(d, bits, seed=d + bits)
    x = np.random.default_rng(bits).standard_normal((41, d)).astype(np.float32)
    enc = q.encode(cp.asarray(x))
    ref = emulation.emulate_encode_mse(q, x)  # the same driver on the emulated kernels
    assert isinstance(enc.codes, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(enc.codes), ref.codes)
    np.testing.assert_array_equal(cp.asnumpy(enc.norms), ref.norms)
    out = q.decode(enc)
    assert isinstance(out, cp.ndarray) and out.shape == x.shape
    np.testing.assert_array_equal(cp.asnumpy(out), emulation.emulate_decode_mse(q, ref))
    mode = 0 if d == q.d_pad else (1 if d % 4 == 0 and q.d_pad < 8192 else 2)
    log_d = q.d_pad.bit_length() - 1
    assert fake_cupy.LAUNCHES == [f"tq_encode_kernel<{log_d}, {bits}, {mode}>",
                                  f"tq_decode_kernel<{log_d}, {bits}, {mode}>"]
    assert gpu.check_status(raise_error=False) == 0


def test_encode_flags_nan_and_float16_overflow_lazily(cp, gpu):
    q = TurboQuantMSE(64, 2, seed=0)
    bad = np.ones((4, 64), np.float32)
    bad[2, 3] = np.inf
    q.encode(cp.asarray(bad))  # the library's default: flagged, not raised
    with pytest.raises(ValueError, match="NaN or Inf"):
        gpu.check_status()
    q.encode(cp.asarray(np.full((1, 64), 1e4, np.float32)))
    assert gpu.check_status(raise_error=False) == configs.STATUS_NORM16
    with pytest.raises(ValueError, match="float16 maximum"):
        gpu.encode_mse_gpu(q, cp.asarray(np.full((1, 64), 1e4, np.float32)), check_finite=True)
    with pytest.raises(ValueError, match="NaN or Inf"):
        gpu.encode_mse_gpu(q, cp.asarray(bad), check_finite=True)


def test_misaligned_and_strided_inputs_are_fixed_before_the_launch(cp, gpu):
    base = np.random.default_rng(5).standard_normal((8, 257)).astype(np.float32)
    off = cp.asarray(base)[:, 1:129]  # rows 4 bytes past a 16-byte boundary, strided
    y = gpu.fwht_gpu(off)
    np.testing.assert_array_equal(cp.asnumpy(y), emulation.emulate_fwht(np.ascontiguousarray(base[:, 1:129])))
    q = TurboQuantMSE(100, 3, seed=2)
    enc = q.encode(off[:, :100])
    np.testing.assert_array_equal(cp.asnumpy(enc.codes), emulation.emulate_encode_mse(q, base[:, 1:101]).codes)


def test_kernels_compile_once_per_instantiation(cp, gpu):
    from turboquant_lab.gpu.cuda import CudaKernels

    x = cp.asarray(np.ones((4, 256), np.float32))
    gpu.fwht_gpu(x)
    n = len(CudaKernels._functions)
    gpu.fwht_gpu(x)
    assert len(CudaKernels._functions) == n
    gpu.fwht_gpu(x, normalize=False)
    assert len(CudaKernels._functions) == n + 1


def test_the_gpu_benchmark_runs_its_pure_parts(cp, gpu, capsys):
    spec = importlib.util.spec_from_file_location("fwht_gpu_bench", ROOT / "benchmarks" / "fwht_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.fwht_rows(128, mib=0.25, repeat=2, k=3)
    names = [r["what"] for r in rows]
    assert {"float32", "float16", "signed float32", "encode 4 bits", "decode 4 bits"} <= set(names)
    for r in rows:  # the copy is timed on the same bytes as the row
        assert r["copy_bytes"] == r["bytes"] and r["fraction"] > 0
    assert "FakeGPU" in bench.device_name()
