"""A stand-in for CuPy that checks every kernel launch against the kernels' C signatures.

No GPU: ``ndarray`` is a NumPy subclass, array functions come from NumPy, and a
``RawModule`` function, when launched, checks the grid, the block, each argument's
dtype, contiguity and alignment against the C signature of the kernel it names
(``fwht_kernel<T, LOG_D, FLAGS, NORMALIZE>``, ``tq_encode_kernel<LOG_D, BITS, MODE>``,
``tq_decode_kernel<LOG_D, BITS, MODE>``), then runs the kernel's NumPy emulation
(``turboquant_lab.gpu.emulation``). CuPy itself passes bare pointers and checks
none of this, so a wrong dtype or a misaligned view would read garbage on a GPU:
here it fails the test. ``install(monkeypatch)`` puts it in ``sys.modules["cupy"]``.
"""
from __future__ import annotations

import re
import sys
import types

import numpy as _np

LAUNCHES: list[str] = []


class ndarray(_np.ndarray):
    """A device array: a NumPy array with CuPy's ``.data.ptr``."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])

    def get(self):
        return _np.array(self, copy=True).view(_np.ndarray)


def _wrap_out(r):
    if isinstance(r, _np.ndarray) and not isinstance(r, ndarray):
        return r.view(ndarray)
    if isinstance(r, tuple):
        return tuple(_wrap_out(v) for v in r)
    return r


def _wrap(f):
    def g(*a, **k):
        return _wrap_out(f(*a, **k))

    g.__name__ = getattr(f, "__name__", "f")
    return g


def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray) and (dtype is None or _np.dtype(dtype) == a.dtype):
        return a
    return _np.asarray(a, dtype=dtype, order=order).view(ndarray)


def ascontiguousarray(a, dtype=None):
    r = _np.ascontiguousarray(a, dtype=dtype)
    return r if isinstance(r, ndarray) else r.view(ndarray)


def asnumpy(a):
    return _np.array(a, copy=True).view(_np.ndarray) if isinstance(a, ndarray) else _np.asarray(a)


def __getattr__(name):  # every other name: NumPy's, returning device arrays
    v = getattr(_np, name)
    if callable(v) and not isinstance(v, type):
        return _wrap(v)
    return v


# ------------------------------------------------------------------ cuda


class _Event:
    def record(self, stream=None):
        pass

    def synchronize(self):
        pass


cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1,
                                  getDeviceProperties=lambda i: {"name": b"FakeGPU"},
                                  runtimeGetVersion=lambda: 12000),
    Device=lambda *a: types.SimpleNamespace(id=0),
    Event=_Event,
    get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None),
    get_elapsed_time=lambda a, b: 1.0,
)


# ------------------------------------------------------------------ kernels


def _ptr(a, dtype, align, what):
    assert isinstance(a, ndarray), f"{what}: not a device array ({type(a).__name__})"
    assert a.dtype == _np.dtype(dtype), f"{what}: dtype {a.dtype}, the C signature wants {_np.dtype(dtype)}"
    assert a.flags.c_contiguous, f"{what}: not C-contiguous"
    assert a.data.ptr % align == 0, f"{what}: pointer not {align}-byte aligned"
    return a.view(_np.ndarray)


def _scalar(v, dtype, what):
    assert type(v) is _np.dtype(dtype).type, f"{what}: {type(v).__name__}, the C signature wants {dtype}"
    return v


class _Function:
    def __init__(self, expr, code, options):
        self.expr = expr
        m = re.fullmatch(r"(\w+)<([^>]*)>", expr)
        assert m, expr
        self.name = m.group(1)
        self.targs = [a.strip() for a in m.group(2).split(",")]
        assert re.search(r"\b" + self.name + r"\b", code), "kernel not in the source"
        assert "-std=c++17" in options and "-ftz=true" in options and "--fmad=false" in options

    def __call__(self, grid, block, args):
        from turboquant_lab.gpu import emulation as emu
        from turboquant_lab.gpu.configs import fwht_config, search_grid

        LAUNCHES.append(self.expr)
        if self.name == "fwht_kernel":
            ctype, log_d, flags, normalize = self.targs
            dt = {"float": _np.float32, "half_bits": _np.float16}[ctype]
            cfg = fwht_config(1 << int(log_d))
            vec = cfg.for_itemsize(_np.dtype(dt).itemsize).vec
            x, y, n, s1, s2, status = args
            assert len(args) == 6
            n = int(_scalar(n, _np.int64, "n_rows"))
            flags = int(flags)
            xh = _ptr(x, dt, _np.dtype(dt).itemsize * vec, "x")
            assert xh.shape == (n, cfg.d)
            _ptr(y, dt, _np.dtype(dt).itemsize * vec, "y")
            s1h = _ptr(s1, _np.float32, 16, "signs1") if flags & 1 else None
            s2h = _ptr(s2, _np.float32, 16, "signs2") if flags & 2 else None
            st = _ptr(status, _np.uint32, 4, "status")
            scale = _np.float32(1 / _np.sqrt(cfg.d)) if normalize == "true" else _np.float32(1)
            out = emu._run_fwht(xh, cfg.for_itemsize(_np.dtype(dt).itemsize), scale, s1h, s2h, status=st)
            y.view(_np.ndarray)[...] = out
        elif self.name == "tq_encode_kernel":
            log_d, bits, mode = (int(a) for a in self.targs)
            cfg = fwht_config(1 << log_d)
            assert len(args) == 13
            x, codes, norms, n, d, s1, s2, table, scale, magic, top, cells, status = args
            n = int(_scalar(n, _np.int64, "n_rows"))
            d = int(_scalar(d, _np.int32, "d"))
            assert mode == (0 if d == cfg.d else (1 if d % 4 == 0 and cfg.d < 8192 else 2)), (mode, d)
            xh = _ptr(x, _np.float32, 16 if mode < 2 else 4, "x")
            assert xh.shape == (n, d)
            th = _ptr(table, _np.float32, 8, "grid")  # float2
            thr = th[:, 0][~_np.isnan(th[:, 0])]
            g = search_grid(thr, bits)  # the launcher must pass exactly this grid
            assert (_scalar(scale, _np.float32, "grid_scale"), _scalar(magic, _np.float32, "grid_magic"),
                    _scalar(top, _np.float32, "grid_top"), int(_scalar(cells, _np.int32, "grid_cells"))) \
                == (g.scale, g.magic, g.top, g.size)
            _np.testing.assert_array_equal(th.view(_np.uint32), g.table().view(_np.uint32))
            c, r = emu.emulate_encode(xh, _ptr(s1, _np.float32, 16, "signs1"), _ptr(s2, _np.float32, 16, "signs2"),
                                      thr, bits, status=_ptr(status, _np.uint32, 4, "status"))
            _ptr(codes, _np.uint8, 4, "codes")[...] = c
            _ptr(norms, _np.float32, 4, "norms")[...] = r
        elif self.name == "tq_decode_kernel":
            log_d, bits, mode = (int(a) for a in self.targs)
            cfg = fwht_config(1 << log_d)
            assert len(args) == 8
            codes, norms, out, n, d, s1, s2, levels = args
            n = int(_scalar(n, _np.int64, "n_rows"))
            d = int(_scalar(d, _np.int32, "d"))
            assert mode == (0 if d == cfg.d else (1 if d % 4 == 0 and cfg.d < 8192 else 2)), (mode, d)
            r = emu.emulate_decode(_ptr(codes, _np.uint8, 4, "codes"), _ptr(norms, _np.float16, 2, "norms"),
                                   _ptr(s1, _np.float32, 16, "signs1"), _ptr(s2, _np.float32, 16, "signs2"),
                                   _ptr(levels, _np.float32, 4, "levels"), bits, cfg.d, d_out=d)
            _ptr(out, _np.float32, 16 if mode < 2 else 4, "out")[...] = r
        else:
            raise AssertionError(f"unknown kernel {self.expr}")
        cfg = fwht_config(1 << int(self.targs[1] if self.name == "fwht_kernel" else self.targs[0]))
        assert block == (cfg.block_threads,), (block, cfg)
        assert len(grid) == 1 and grid[0] == -(-n // cfg.rows_per_block) >= 1, (grid, n)


class RawModule:
    def __init__(self, code, options=(), name_expressions=()):
        self.code, self.options, self.names = code, tuple(options), list(name_expressions)

    def get_function(self, expr):
        assert expr in self.names
        return _Function(expr, self.code, self.options)


__version__ = "0.fake"


def install(monkeypatch):
    """Make this module ``cupy`` for the test (``sys.modules``), with fresh launcher caches."""
    from turboquant_lab.gpu import cuda as tq_cuda

    module = sys.modules[__name__]
    monkeypatch.setitem(sys.modules, "cupy", module)
    for cache in (tq_cuda.CudaKernels._functions, tq_cuda.CudaKernels._constants,
                  tq_cuda.CudaKernels._words):
        monkeypatch.setattr(tq_cuda.CudaKernels, _cache_name(cache), {})
    LAUNCHES.clear()
    return module


def _cache_name(cache) -> str:
    from turboquant_lab.gpu import cuda as tq_cuda

    for name in ("_functions", "_constants", "_words"):
        if getattr(tq_cuda.CudaKernels, name) is cache:
            return name
    raise AssertionError("unknown cache")
