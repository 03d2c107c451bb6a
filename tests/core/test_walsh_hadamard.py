"""Tests for turboquant_lab.walsh_hadamard: the matrix, every FWHT strategy against the dense oracle."""
from __future__ import annotations

import functools
import importlib
import sys
import types

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from turboquant_lab import backend
from turboquant_lab._parallel import forced_workers
from turboquant_lab.walsh_hadamard import (
    STRATEGIES,
    fwht,
    fwht_reference,
    fwht_stages,
    hadamard,
    hadamard_op_counts,
)

# the module itself (the package re-exports the function hadamard under the same name)
hmod = importlib.import_module("turboquant_lab.walsh_hadamard")

EPS32 = np.finfo(np.float32).eps
EPS64 = np.finfo(np.float64).eps
ALL_D = [1 << k for k in range(14)]  # 1 ... 8192


# ------------------------------------------------------------------ the matrix


@pytest.mark.parametrize("n", [1 << k for k in range(11)])
def test_hadamard_matches_scipy_and_is_orthogonal(n):
    h = hadamard(n)
    assert h.shape == (n, n) and h.dtype == np.float64
    np.testing.assert_array_equal(h, scipy.linalg.hadamard(n))
    np.testing.assert_array_equal(h @ h.T, n * np.eye(n))


def test_hadamard_is_sylvester_kronecker_product():
    for m, n in [(2, 4), (4, 8), (16, 8), (32, 32)]:
        np.testing.assert_array_equal(hadamard(m * n), np.kron(hadamard(m), hadamard(n)))


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64])
def test_hadamard_dtype(dtype):
    h = hadamard(8, dtype=dtype)
    assert h.dtype == dtype
    np.testing.assert_array_equal(h, scipy.linalg.hadamard(8))


@pytest.mark.parametrize("n", [0, 3, 6, 12, 100, 1 << 17])
def test_hadamard_rejects_bad_order(n):
    with pytest.raises(ValueError, match="power of two|maximum"):
        hadamard(n)


def test_hadamard_rejects_non_integer():
    with pytest.raises(TypeError, match="power of two"):
        hadamard(4.0)


def test_op_counts():
    assert hadamard_op_counts(128) == (16384, 896)
    assert hadamard_op_counts(1) == (1, 0)
    for d in (2, 64, 4096):
        dense, fast = hadamard_op_counts(d)
        assert dense == d * d and fast == d * int(np.log2(d))
    with pytest.raises(ValueError, match="power of two"):
        hadamard_op_counts(96)


# ------------------------------------------------------------------ oracle agreement


@functools.lru_cache(maxsize=1)
def _case(d):
    """Inputs of shape (2, 3, d), the float64 oracles and the plain float32 product's error."""
    x64 = np.random.default_rng(d).standard_normal((2, 3, d))
    x32 = x64.astype(np.float32)
    h = hadamard(d)
    ref32 = x32.astype(np.float64) @ h  # exact inputs of the float32 case, float64 product
    plain32 = x32 @ h.astype(np.float32)  # the plain float32 product, for the tolerance
    err32 = np.abs(plain32 - ref32).max()
    return x32, x64, ref32, err32, x64 @ h


# d varies slowest (the decorator nearest the function), so _case(d) is built once per d
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("d", ALL_D)
def test_every_strategy_matches_dense_oracle(d, strategy):
    x32, x64, ref32, err32, ref64 = _case(d)
    for norm in (True, False):
        scale = 1 / np.sqrt(d) if norm else 1.0
        y = fwht(x32, normalize=norm, strategy=strategy)
        assert y.dtype == np.float32 and y.shape == x32.shape
        # measured tolerance: twice the error of the plain float32 product, plus a few ulps
        tol = 2 * err32 * scale + 4 * EPS32 * np.abs(ref32).max() * scale
        assert np.abs(y - ref32 * scale).max() <= tol
        if d == 8192 and strategy == "dense":
            continue  # its float64 d x d matrix would be a third 512 MiB build
        y64 = fwht(x64, normalize=norm, strategy=strategy)
        assert y64.dtype == np.float64
        np.testing.assert_allclose(y64, ref64 * scale, rtol=0,
                                   atol=64 * EPS64 * np.abs(ref64).max() * scale)


def test_reference_is_plain_product():
    x = np.random.default_rng(0).standard_normal((5, 16))
    np.testing.assert_allclose(fwht_reference(x), x @ scipy.linalg.hadamard(16).T / 4, atol=1e-13)
    np.testing.assert_allclose(fwht_reference(x, normalize=False), x @ scipy.linalg.hadamard(16),
                               atol=1e-12)


def test_auto_at_the_largest_size():
    """d = 2**16 = 256 * 256: H = H_256 (x) H_256, so Y = H_256 X H_256 per vector."""
    d, m = 1 << 16, 256
    x = np.random.default_rng(1).standard_normal((2, d))
    h = hadamard(m)
    expected = np.stack([(h @ v.reshape(m, m) @ h).ravel() for v in x]) / np.sqrt(d)
    y = fwht(x)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_allclose(fwht(x, strategy="butterfly"), y, rtol=0, atol=1e-12)


def test_many_blocks_threaded_path_matches_oracle():
    """Several blocks (more than 1 MiB) go through the worker threads."""
    d = 128
    x = np.random.default_rng(2).standard_normal((5000, d)).astype(np.float32)
    ref = x.astype(np.float64) @ hadamard(d) / np.sqrt(d)
    with forced_workers(2):  # two workers even on a one-CPU machine
        for strategy in STRATEGIES:
            np.testing.assert_allclose(fwht(x, strategy=strategy), ref, rtol=0, atol=1e-5)


def test_blas_thread_count_is_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]
    with forced_workers(2):
        fwht(np.ones((5000, 256), dtype=np.float32))
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]
    assert before == after


# ------------------------------------------------------------------ properties

_vectors = st.integers(0, 10).flatmap(
    lambda k: hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.just(1 << k)),
                         elements=st.floats(-1e3, 1e3, allow_nan=False, width=64)))


@settings(max_examples=40, deadline=None)
@given(x=_vectors, strategy=st.sampled_from(STRATEGIES))
def test_fwht_is_its_own_inverse(x, strategy):
    d = x.shape[-1]
    atol = 1e-11 * max(1.0, np.abs(x).max()) * np.log2(2 * d)
    np.testing.assert_allclose(fwht(fwht(x, strategy=strategy), strategy=strategy), x,
                               rtol=0, atol=atol)
    twice = fwht(fwht(x, normalize=False, strategy=strategy), normalize=False, strategy=strategy)
    np.testing.assert_allclose(twice, d * x, rtol=0, atol=d * atol)


@settings(max_examples=40, deadline=None)
@given(x=_vectors)
def test_fwht_keeps_norms_and_dot_products(x):
    y = fwht(x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1),
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(y @ y.T, x @ x.T, rtol=1e-10, atol=1e-6)


# ------------------------------------------------------------------ shapes, strides, dtypes


def test_leading_batch_dims():
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 32))
    y = fwht(x)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y, fwht(x.reshape(-1, 32)).reshape(x.shape))
    np.testing.assert_allclose(y, fwht_reference(x), atol=1e-13)
    v = x[0, 0, 0]
    np.testing.assert_allclose(fwht(v), hadamard(32) @ v / np.sqrt(32), atol=1e-13)


@pytest.mark.parametrize("strategy", [None, *STRATEGIES])
def test_non_contiguous_input(strategy):
    base = np.random.default_rng(4).standard_normal((64, 128))
    views = [base[:, ::2], base[::3, :64], base.T[:32], base[::-1, ::-1], base[:, 1::2][::2]]
    for view in views:
        assert not view.flags.c_contiguous
        expected = fwht_reference(np.ascontiguousarray(view))
        np.testing.assert_allclose(fwht(view, strategy=strategy), expected, atol=1e-12)
    big = np.random.default_rng(5).standard_normal((1024, 1024)).astype(np.float32).T  # 4 MiB
    np.testing.assert_allclose(fwht(big, strategy=strategy), fwht(np.ascontiguousarray(big)),
                               atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    x = np.random.default_rng(6).standard_normal((3, 64)).astype(dtype)
    for strategy in [None, *STRATEGIES]:
        y = fwht(x, strategy=strategy)
        assert y.dtype == dtype
        expected = fwht_reference(x.astype(np.float64))
        np.testing.assert_allclose(y.astype(np.float64), expected,
                                   atol=4 * np.finfo(dtype).eps * np.abs(expected).max())
    # float16 is computed in float32 and rounded once
    np.testing.assert_array_equal(fwht(x.astype(np.float16)),
                                  fwht(x.astype(np.float16).astype(np.float32)).astype(np.float16))


def test_lists_become_float64():
    y = fwht([1.0, 0.0, 0.0, 0.0])
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [0.5, 0.5, 0.5, 0.5])


def test_input_is_not_modified():
    x = np.random.default_rng(7).standard_normal((4, 256)).astype(np.float32)
    keep = x.copy()
    for strategy in STRATEGIES:
        fwht(x, strategy=strategy)
        fwht_stages(x)
    np.testing.assert_array_equal(x, keep)


def test_out_argument():
    x = np.random.default_rng(9).standard_normal((3000, 128)).astype(np.float32)  # 1.5 MiB
    expected = fwht(x)
    for strategy in [None, *STRATEGIES]:
        out = np.full_like(x, np.nan)
        assert fwht(x, strategy=strategy, out=out) is out
        np.testing.assert_allclose(out, expected, atol=1e-5)
    x16 = x[:4].astype(np.float16)
    out16 = np.empty_like(x16)
    assert fwht(x16, out=out16) is out16
    np.testing.assert_array_equal(out16, fwht(x16))
    with pytest.raises(ValueError, match="overlap"):
        fwht(x, out=x)
    with pytest.raises(ValueError, match="shape"):
        fwht(x, out=np.empty((3000, 64), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        fwht(x, out=np.empty_like(x, dtype=np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        fwht(x[:, :64], out=np.empty((128, 3000), np.float32)[:64].T)
    with pytest.raises(TypeError, match="NumPy array"):
        fwht(x, out=[0.0] * 128)


# ------------------------------------------------------------------ the stage trace


def test_stages_small_example():
    stages = fwht_stages(np.array([1.0, 2.0, 3.0, 4.0]))
    assert [s.tolist() for s in stages] == [[1, 2, 3, 4], [3, -1, 7, -1], [10, -2, -4, 0]]


@pytest.mark.parametrize("d", [1, 2, 8, 64, 512])
def test_stages_count_and_meaning(d):
    x = np.random.default_rng(d).standard_normal((2, 3, d))
    stages = fwht_stages(x)
    assert len(stages) == int(np.log2(d)) + 1
    np.testing.assert_array_equal(stages[0], x)
    for k, s in enumerate(stages):
        assert s.shape == x.shape and s.dtype == x.dtype
        # after k stages (stride 1 first) every run of 2**k entries holds its own H_(2**k) transform
        m = 1 << k
        runs = x.reshape(2, 3, d // m, m)
        np.testing.assert_allclose(s, (runs @ hadamard(m)).reshape(x.shape), atol=1e-12 * m)
    np.testing.assert_allclose(stages[-1], fwht(x, normalize=False), atol=1e-12 * d)


def test_stages_on_one_vector_and_float32():
    x = np.arange(8, dtype=np.float32)
    stages = fwht_stages(x)
    assert all(s.shape == (8,) and s.dtype == np.float32 for s in stages)
    np.testing.assert_allclose(stages[-1], hadamard(8) @ x, atol=1e-5)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("func", [fwht, fwht_stages, fwht_reference])
@pytest.mark.parametrize("d", [3, 12, 100])
def test_non_power_of_two_d(func, d):
    with pytest.raises(ValueError, match="power of two"):
        func(np.ones((2, d)))


def test_d_above_maximum():
    with pytest.raises(ValueError, match="maximum"):
        fwht(np.ones((1, 1 << 17), dtype=np.float32))
    with pytest.raises(ValueError, match="dense"):
        fwht(np.ones((1, 1 << 14), dtype=np.float32), strategy="dense")


@pytest.mark.parametrize("strategy", [None, *STRATEGIES])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_raise(strategy, bad):
    rng = np.random.default_rng(8)
    for shape, where in [((8,), (0,)), ((8,), (7,)), ((3, 64), (1, 17)), ((5000, 128), (4999, 127)),
                         ((1200, 512), (600, 0))]:
        x = rng.standard_normal(shape).astype(np.float32)
        x[where] = bad
        with forced_workers(2), pytest.raises(ValueError, match=r"x contains 1 NaN or Inf"):
            fwht(x, strategy=strategy)
    x = np.zeros((2, 16))
    x[0, 3], x[0, 9] = np.inf, -np.inf  # Inf - Inf: the sum is NaN, still caught
    with pytest.raises(ValueError, match="NaN or Inf"):
        fwht(x, strategy=strategy)


def test_overflow_raises_with_the_fix():
    x = np.full((2, 4), 3e38, dtype=np.float32)
    with pytest.raises(ValueError, match="overflow"):
        fwht(x)
    np.testing.assert_allclose(fwht(x.astype(np.float64)), fwht_reference(x.astype(np.float64)))


@pytest.mark.parametrize("func", [fwht, fwht_stages])
def test_empty_0d_and_wrong_types(func):
    with pytest.raises(ValueError, match="empty"):
        func(np.ones((0, 8)))
    with pytest.raises(ValueError, match="empty"):
        func(np.ones((4, 0)))
    with pytest.raises(ValueError, match="at least 1 axis"):
        func(np.float64(1.0))
    with pytest.raises(TypeError, match="floating-point"):
        func(np.ones((2, 8), dtype=np.int64))
    with pytest.raises(TypeError, match="floating-point"):
        func(np.ones((2, 8), dtype=bool))
    with pytest.raises(TypeError, match="complex"):
        func(np.ones((2, 8), dtype=np.complex128))


def test_unknown_strategy():
    with pytest.raises(ValueError, match="strategy must be None.*'kron'"):
        fwht(np.ones(8), strategy="fft")


# ------------------------------------------------------------------ dispatch


def test_dispatch_table_covers_every_size():
    for k in range(hmod.MAX_LOG2_D + 1):
        d = 1 << k
        assert hmod._AUTO_STRATEGY[d] in STRATEGIES
        assert int(np.prod(hmod._KRON_FACTORS[d])) == d


def test_cupy_input_goes_to_the_gpu_module(monkeypatch):
    """A CuPy array is handed to the GPU function registered as "fwht" (faked here: no GPU needed)."""
    calls = []

    class FakeCupyArray:
        pass

    # an empty registry, a stand-in for the GPU package (so the real one is not imported),
    # and a fake fwht registered the way turboquant_lab.gpu registers its own
    fake_gpu = types.ModuleType(backend.GPU_PACKAGE)
    monkeypatch.setitem(sys.modules, backend.GPU_PACKAGE, fake_gpu)
    monkeypatch.setattr(backend, "_GPU_FUNCTIONS", {})
    backend.register_gpu("fwht", lambda x, normalize=True: calls.append((x, normalize)) or "from gpu")
    monkeypatch.setattr(hmod, "is_cupy_array", lambda x: isinstance(x, FakeCupyArray))
    arr = FakeCupyArray()
    assert fwht(arr, normalize=False) == "from gpu"
    assert calls == [(arr, False)]


# ------------------------------------------------------------------ plans and wisdom


@pytest.fixture
def wisdom_home(tmp_path, monkeypatch):
    """An empty cache folder for the default wisdom file, and no wisdom in memory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    hmod.forget_wisdom()
    monkeypatch.setattr(hmod, "_wisdom_loaded", set())
    yield tmp_path
    hmod.forget_wisdom()


def test_estimate_plan_is_the_table():
    for d in (1, 2, 32, 128, 4096, 65536):
        p = hmod.plan_fwht(d)
        assert p.source == "estimate" and p.d == d and int(np.prod(p.factors)) == d
        assert p.strategy == hmod._AUTO_STRATEGY[d]
    assert hmod.plan_fwht(64, np.float16).dtype == "float32"  # float16 runs in float32
    with pytest.raises(TypeError, match="float32 or float64"):
        hmod.plan_fwht(64, np.int32)


@pytest.mark.parametrize("d", [2, 64, 512])
def test_measured_plan_is_a_valid_factorisation_and_transforms(wisdom_home, d):
    p = hmod.plan_fwht(d, np.float32, measure=True, mib=0.25, rounds=1)
    assert p.source == "measured" and p.ratio > 0 and p.d == d
    assert int(np.prod(p.factors)) == d and all(f & (f - 1) == 0 for f in p.factors)
    assert p.strategy == "dense" or p.factors in hmod._kron_candidates(d)
    x = np.random.default_rng(d).standard_normal((300, d)).astype(np.float32)
    ref = fwht_reference(x.astype(np.float64))
    for plan in (p, "measure"):  # the second comes from the wisdom in memory
        np.testing.assert_allclose(fwht(x, plan=plan), ref, rtol=0, atol=8 * EPS32 * np.log2(2 * d) * 4)
    assert hmod.plan_fwht(d, measure=True).source == "wisdom"
    assert not hmod.wisdom_path().exists()  # nothing written unless asked


def test_every_candidate_factorisation_gives_the_transform():
    x = np.random.default_rng(0).standard_normal((40, 256))
    ref = fwht_reference(x)
    for f in hmod._kron_candidates(256):
        np.testing.assert_allclose(fwht(x, plan=hmod.FwhtPlan(256, "float64", "kron", f)), ref,
                                   atol=1e-12)
    with pytest.raises(ValueError, match="not a valid plan"):
        hmod.FwhtPlan(256, "float64", "kron", (4, 32))
    with pytest.raises(ValueError, match="d = 128"):
        fwht(x, plan=hmod.plan_fwht(128))
    with pytest.raises(ValueError, match="not both"):
        fwht(x, strategy="kron", plan="measure")


def test_wisdom_round_trips_and_is_keyed_by_machine(wisdom_home):
    p = hmod.plan_fwht(128, measure=True, mib=0.25, rounds=1)
    path = hmod.export_wisdom()
    assert path == hmod.wisdom_path() and path.exists()
    data = __import__("json").loads(path.read_text())
    assert list(data["machines"]) == [hmod.machine_key()]
    hmod.forget_wisdom()
    assert hmod.import_wisdom(path) == 1
    q = hmod.plan_fwht(128, measure=True)
    assert q.source == "wisdom" and (q.factors, q.block_bytes, q.ratio) == (p.factors, p.block_bytes, p.ratio)
    # another machine's plans are kept but not used
    data["machines"] = {"another cpu | openblas x | numpy 0": data["machines"][hmod.machine_key()]}
    other = wisdom_home / "other.json"
    other.write_text(__import__("json").dumps(data))
    hmod.forget_wisdom()
    assert hmod.import_wisdom(other) == 0
    assert hmod.plan_fwht(128, measure=True, mib=0.25, rounds=1).source == "measured"


@pytest.mark.parametrize("text", ["{not json", '{"format": "something else", "version": 1}',
                                  '{"format": "turboquant-lab fwht wisdom", "version": 1, "machines": '
                                  '{"m": {"float32:128": {"d": 128, "dtype": "float32", "strategy": "kron", '
                                  '"factors": [4, 16], "block_bytes": 1048576, "ratio": 1.0}}}}'])
def test_a_corrupt_wisdom_file_is_ignored_with_a_warning(wisdom_home, text):
    path = hmod.wisdom_path()
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.warns(UserWarning, match="ignoring the FWHT wisdom file"):
        assert hmod.import_wisdom() == 0
    with pytest.warns(UserWarning):  # plan="measure" reads the default file once, then measures
        p = hmod.plan_fwht(32, measure=True, mib=0.1, rounds=1)
    assert p.source == "measured"
    assert path.read_text() == text  # left alone
