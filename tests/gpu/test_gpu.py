"""The CUDA kernels on a GPU: equal to the NumPy path, and bit for bit to their emulation.

Marked ``gpu``: tests/conftest.py skips them where CuPy sees no usable GPU.
Tolerances: the FWHT to 1e-5 relative in float32; encode codes identical
except where a coordinate lies within float32 rounding of a codebook
boundary; decode within float32 rounding. Against the NumPy emulation
(``gpu.emulation``), which follows the kernels loop for loop, the results
must be *identical*.
"""
from __future__ import annotations

import numpy as np
import pytest
from codec_helpers import assert_codes_match_except_ties, rel_err  # noqa: E402  (tests/, on sys.path)

from turboquant_lab.gpu.configs import FWHT_CONFIGS
from turboquant_lab.gpu.emulation import emulate_decode, emulate_encode, emulate_fwht
from turboquant_lab.packing import unpack_bits_reference
from turboquant_lab.rotation import RandomizedHadamard
from turboquant_lab.turboquant import TurboQuantMSE
from turboquant_lab.walsh_hadamard import fwht

pytestmark = pytest.mark.gpu

cp = pytest.importorskip("cupy")
gpu = pytest.importorskip("turboquant_lab.gpu")

DIMS = [2, 128, 1024, 4096, 8192]
BATCHES = [(1,), (7,), (3, 5), (1001,)]


# --------------------------------------------------------------------------- FWHT


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("batch", BATCHES)
def test_fwht_gpu_matches_numpy(d, batch):
    x = np.random.default_rng(d).standard_normal(batch + (d,)).astype(np.float32)
    y = fwht(cp.asarray(x))  # the library dispatches a CuPy array to the kernel
    assert isinstance(y, cp.ndarray) and y.shape == x.shape and y.dtype == np.float32
    assert rel_err(cp.asnumpy(y), fwht(x.astype(np.float64))) < 1e-5
    y_raw = fwht(cp.asarray(x), normalize=False)
    assert rel_err(cp.asnumpy(y_raw), fwht(x.astype(np.float64), normalize=False)) < 1e-5


@pytest.mark.parametrize("log_d", sorted(FWHT_CONFIGS))
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_fwht_kernel_is_its_emulation_bit_for_bit(log_d, dtype):
    d = 1 << log_d
    n = 2 * FWHT_CONFIGS[log_d].rows_per_block + 3  # full blocks and a partial one
    x = np.random.default_rng(log_d).standard_normal((n, d)).astype(dtype)
    rh = RandomizedHadamard(d, seed=log_d)
    for normalize in (True, False):
        y = gpu.fwht_gpu(cp.asarray(x), normalize=normalize)
        np.testing.assert_array_equal(cp.asnumpy(y), emulate_fwht(x, normalize=normalize))
    y = gpu.randomized_hadamard_gpu(cp.asarray(x), rh.signs1, rh.signs2)
    np.testing.assert_array_equal(cp.asnumpy(y), emulate_fwht(x, signs1=rh.signs1, signs2=rh.signs2))


@pytest.mark.parametrize("d", DIMS)
def test_fwht_gpu_non_contiguous_input(d):
    base = np.random.default_rng(1).standard_normal((9, 2 * d)).astype(np.float32)
    xs = cp.asarray(base)[:, ::2]  # strided rows
    assert not xs.flags.c_contiguous
    np.testing.assert_allclose(cp.asnumpy(fwht(xs)), fwht(base[:, ::2].astype(np.float64)),
                               rtol=0, atol=1e-5 * np.sqrt(d))
    xt = cp.asarray(np.random.default_rng(2).standard_normal((d, 5)).astype(np.float32)).T
    np.testing.assert_allclose(cp.asnumpy(fwht(xt)), fwht(cp.asnumpy(xt).astype(np.float64)),
                               rtol=0, atol=1e-5 * np.sqrt(d))
    offset = cp.asarray(base.reshape(-1))[1: 1 + 4 * d].reshape(4, d)  # misaligned start
    np.testing.assert_allclose(cp.asnumpy(fwht(offset)), fwht(cp.asnumpy(offset).astype(np.float64)),
                               rtol=0, atol=1e-5 * np.sqrt(d))


@pytest.mark.parametrize("d", DIMS)
def test_fwht_gpu_float16_and_float64(d):
    x = np.random.default_rng(3).standard_normal((11, d))
    y16 = fwht(cp.asarray(x.astype(np.float16)))
    assert y16.dtype == np.float16
    assert rel_err(cp.asnumpy(y16), fwht(x.astype(np.float16).astype(np.float64))) < 2e-3
    y64 = fwht(cp.asarray(x))
    assert y64.dtype == np.float64
    assert rel_err(cp.asnumpy(y64), fwht(x)) < 1e-12


def test_fwht_gpu_errors():
    with pytest.raises(ValueError, match="up to 8192"):
        fwht(cp.zeros((2, 16384), cp.float32))
    with pytest.raises(ValueError, match="power of two"):
        fwht(cp.zeros((2, 100), cp.float32))
    with pytest.raises(TypeError):
        fwht(cp.zeros((2, 8), cp.int32))
    bad = cp.ones((4, 64), cp.float32)
    bad[2, 7] = cp.nan
    gpu.check_status(raise_error=False)
    fwht(bad)  # the library's default: flagged on the device, no host wait
    with pytest.raises(ValueError, match="NaN or Inf"):
        gpu.check_status()
    with pytest.raises(ValueError, match="NaN or Inf"):
        gpu.fwht_gpu(bad, check_finite=True)


def test_randomized_hadamard_on_gpu():
    rh = RandomizedHadamard(1024, seed=5)
    x = np.random.default_rng(4).standard_normal((3, 7, 1024)).astype(np.float32)
    y = rh.forward(cp.asarray(x))
    assert isinstance(y, cp.ndarray)
    assert rel_err(cp.asnumpy(y), rh.forward(x.astype(np.float64))) < 1e-5
    assert rel_err(cp.asnumpy(rh.inverse(y)), x) < 1e-5
    fused = gpu.randomized_hadamard_gpu(cp.asarray(x), rh.signs1, rh.signs2)
    assert rel_err(cp.asnumpy(fused), cp.asnumpy(y)) < 1e-6


def test_kernels_flush_subnormals_like_their_emulation():
    # CuPy compiles with -ftz=true; the emulation flushes after every operation as well
    tiny = np.float32(2.0**-126)
    x = (np.random.default_rng(0).standard_normal((40, 64)) * 4 * tiny).astype(np.float32)
    assert (np.abs(x) < tiny).any()  # subnormal inputs, and subnormal butterfly results
    y = gpu.fwht_gpu(cp.asarray(x), normalize=False, check_finite=False)
    np.testing.assert_array_equal(cp.asnumpy(y).view(np.uint32),
                                  emulate_fwht(x, normalize=False).view(np.uint32))
    k = TurboQuantMSE(64, 2, seed=0).kernel_constants()
    s1, s2, thr = k.signs1, k.signs2, k.thresholds
    xs = np.vstack([np.full(64, 1e-20, np.float32), x[:3] * np.float32(2.0**100)])
    codes, norms = gpu.CudaKernels().encode(cp.asarray(xs), s1, s2, thr, 2)
    codes_e, norms_e = emulate_encode(xs, s1, s2, thr, 2)
    assert norms_e[0] == 0  # the squares of 1e-20 are subnormal: flushed
    np.testing.assert_array_equal(cp.asnumpy(norms), norms_e)
    np.testing.assert_array_equal(cp.asnumpy(codes), codes_e)


def test_kernel_launchers_fix_strides_dtypes_and_alignment():
    # CuPy passes bare pointers: the launchers must hand the kernels what their C signatures say
    kern = gpu.CudaKernels()
    rh = RandomizedHadamard(128, seed=1)
    base = np.random.default_rng(5).standard_normal((8, 256)).astype(np.float32)
    strided = cp.asarray(base)[:, ::2]
    s1 = cp.asarray(np.r_[np.float32(1), rh.signs1.astype(np.float32)])[1:]  # 4 bytes off
    assert s1.data.ptr % 16 and not strided.flags.c_contiguous
    y = kern.fwht(strided, np.float32(1.0), s1, cp.asarray(rh.signs2, dtype=cp.float64))
    np.testing.assert_array_equal(
        cp.asnumpy(y), emulate_fwht(base[:, ::2].copy(), False, rh.signs1, rh.signs2))
    q = TurboQuantMSE(128, 3, seed=2)
    enc = q.encode(base[:, :128])
    levels = q.codebook.centroids.astype(np.float32)
    out = kern.decode(cp.asarray(enc.codes), enc.norms,  # host norms: copied to the device
                      rh.signs1, rh.signs2, levels, 3, 128)
    np.testing.assert_array_equal(
        cp.asnumpy(out), emulate_decode(enc.codes, enc.norms, rh.signs1, rh.signs2, levels, 3, 128))


def test_kernels_are_compiled_once_and_cached():
    x = cp.ones((4, 256), cp.float32)
    gpu.fwht_gpu(x)
    n = len(gpu.CudaKernels._functions)
    gpu.fwht_gpu(x)
    assert len(gpu.CudaKernels._functions) == n


# --------------------------------------------------------------------------- encode / decode

CASES = [(2, 1), (100, 3), (128, 1), (128, 2), (128, 3), (128, 4), (128, 8), (1024, 4),
         (3000, 2), (4096, 3), (8192, 4)]


@pytest.mark.parametrize("d, bits", CASES)
@pytest.mark.parametrize("batch", [(1,), (999,), (3, 17)])
def test_encode_decode_gpu_match_numpy(d, bits, batch):
    q = TurboQuantMSE(d, bits, seed=11)
    rng = np.random.default_rng(d + bits)
    x = (rng.standard_normal(batch + (d,)) * 4).astype(np.float32)
    x.reshape(-1, d)[0] = 0.0
    enc_gpu = q.encode(cp.asarray(x))
    enc_cpu = q.encode(x)
    assert isinstance(enc_gpu.codes, cp.ndarray) and isinstance(enc_gpu.norms, cp.ndarray)
    assert enc_gpu.codes.shape == enc_cpu.codes.shape and enc_gpu.norms.dtype == np.float16
    assert_codes_match_except_ties(q, x, cp.asnumpy(enc_gpu.codes), enc_cpu.codes)
    ulp16 = np.spacing(enc_cpu.norms).astype(np.float32)
    assert np.all(np.abs(cp.asnumpy(enc_gpu.norms).astype(np.float32) - enc_cpu.norms) <= ulp16)
    # decode the NumPy path's codes on the GPU: the same vectors within float32 rounding
    enc_dev = type(enc_cpu)(cp.asarray(enc_cpu.codes), cp.asarray(enc_cpu.norms), enc_cpu.bits,
                            enc_cpu.d, enc_cpu.d_pad, enc_cpu.shape, enc_cpu.rotation,
                            enc_cpu.fingerprint)
    x_gpu = q.decode(enc_dev)
    assert isinstance(x_gpu, cp.ndarray) and x_gpu.shape == x.shape and x_gpu.dtype == np.float32
    x_cpu = q.decode(enc_cpu)
    np.testing.assert_allclose(cp.asnumpy(x_gpu), x_cpu, rtol=0,
                               atol=1e-6 * q.d_pad.bit_length() * np.abs(x_cpu).max())


@pytest.mark.parametrize("log_d", sorted(FWHT_CONFIGS))
@pytest.mark.parametrize("bits", [1, 3, 4, 8])
def test_codec_kernels_are_their_emulation_bit_for_bit(log_d, bits):
    d = 1 << log_d
    q = TurboQuantMSE(max(d, 2), bits, seed=log_d)
    n = 2 * FWHT_CONFIGS[log_d].rows_per_block + 1
    x = np.random.default_rng(bits).standard_normal((n, d)).astype(np.float32)
    k = q.kernel_constants()
    s1, s2, thr = k.signs1, k.signs2, k.thresholds
    kern = gpu.CudaKernels()
    codes, norms = kern.encode(cp.asarray(x), s1, s2, thr, bits)
    codes_e, norms_e = emulate_encode(x, s1, s2, thr, bits)
    np.testing.assert_array_equal(cp.asnumpy(codes), codes_e)
    np.testing.assert_array_equal(cp.asnumpy(norms), norms_e)
    levels = q.codebook.centroids.astype(np.float32)
    n16 = norms_e.astype(np.float16)
    out = kern.decode(cp.asarray(codes_e), cp.asarray(n16), s1, s2, levels, bits, d)
    np.testing.assert_array_equal(cp.asnumpy(out), emulate_decode(codes_e, n16, s1, s2, levels, bits, d))


@pytest.mark.parametrize("bits", [2, 4])
def test_dense_rotation_on_gpu(bits):
    q = TurboQuantMSE(64, bits, seed=3, rotation="dense")
    x = np.random.default_rng(0).standard_normal((50, 64)).astype(np.float32)
    enc = q.encode(cp.asarray(x))
    a = unpack_bits_reference(cp.asnumpy(enc.codes), bits, 64)
    b = unpack_bits_reference(q.encode(x).codes, bits, 64)
    assert np.mean(a != b) < 1e-3
    assert rel_err(cp.asnumpy(q.decode(enc)), q.decode(q.encode(x))) < 0.05


def test_encode_gpu_errors():
    q = TurboQuantMSE(64, 2)
    bad = cp.ones((3, 64), cp.float32)
    bad[1, 1] = cp.inf
    gpu.check_status(raise_error=False)
    q.encode(bad)  # flagged, not raised: check_status reads the flag
    with pytest.raises(ValueError, match="NaN or Inf"):
        gpu.check_status()
    with pytest.raises(ValueError, match="NaN or Inf"):
        gpu.encode_mse_gpu(q, bad, check_finite=True)
    with pytest.raises(ValueError, match="float16 maximum"):
        gpu.encode_mse_gpu(q, cp.full((1, 64), 1e4, cp.float32), check_finite=True)
    q.encode(cp.full((1, 64), 1e4, cp.float32))
    assert gpu.check_status(raise_error=False) == gpu.configs.STATUS_NORM16
