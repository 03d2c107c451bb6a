"""Lesson 09 (the GPU kernel): the numbers behind its figures and widgets, NumPy only.

Each ``compute_*`` function returns what one figure or app shows; tests call
them directly, setting the "slider" by argument.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from turboquant_lab.backend import gpu_available
from turboquant_lab.gpu import event_times
from turboquant_lab.gpu.configs import GPU_SPECS, FwhtConfig, fwht_config
from turboquant_lab.gpu.emulation import emulate_fwht_trace
from turboquant_lab.walsh_hadamard import fwht, fwht_stages, hadamard

__all__ = [
    "compute_kernel_arithmetic", "KERNEL_LAYOUTS", "kernel_layout", "KernelStageState",
    "compute_kernel_stage", "kernel_stage_caption", "KernelStepper", "KERNEL_INPUTS", "time_gpu_fwht",
]


def compute_kernel_arithmetic(dims, specs=None, itemsize=4):
    """Why the FWHT is memory bound: additions per byte moved against each GPU's balance.

    Parameters
    ----------
    dims : sequence of int
        Powers of two.
    specs : dict, optional
        ``{name: {"bandwidth_gbs": ..., "fp32_tflops": ...}}``; default :data:`GPU_SPECS`.
    itemsize : int
        Bytes per element (4 for float32): one read and one write per element.

    Returns
    -------
    dict with ``dims``; ``adds_per_byte`` (``log2(d) / (2 itemsize)``: ``d log2 d``
    additions per ``2 itemsize d`` bytes); ``balance`` (per GPU: additions per
    second / bytes per second, where an addition takes one FP32 issue slot, half
    the quoted FLOP rate that counts a multiply-add as two); ``fwht_vs_copy`` and
    ``dense_vs_copy`` (per GPU, per d: predicted time / time of a copy, the
    larger of the memory and the arithmetic time; the dense product does ``d``
    multiply-adds per element).
    """
    specs = GPU_SPECS if specs is None else specs
    dims = np.asarray(dims, dtype=np.int64)
    log_d = np.log2(dims)
    adds_per_byte = log_d / (2 * itemsize)
    balance, fwht_ratio, dense_ratio = {}, {}, {}
    for name, s in specs.items():
        bytes_per_s = s["bandwidth_gbs"] * 1e9
        ops_per_s = s["fp32_tflops"] * 1e12 / 2  # additions or multiply-adds per second
        balance[name] = ops_per_s / bytes_per_s
        copy_s = 2 * itemsize / bytes_per_s  # per element
        fwht_ratio[name] = np.maximum(copy_s, log_d / ops_per_s) / copy_s
        dense_ratio[name] = np.maximum(copy_s, dims / ops_per_s) / copy_s
    return {"dims": dims, "adds_per_byte": adds_per_byte, "balance": balance,
            "fwht_vs_copy": fwht_ratio, "dense_vs_copy": dense_ratio}


#: Layouts of the kernel stepper: a teaching one (d = 64 with warps of 4 lanes, so that all
#: four kinds of stage appear) and two of the real kernel's table (log2 d, custom constants).
KERNEL_LAYOUTS = {
    "teaching: d = 64, warps of 4 lanes": (6, dict(vec=4, threads_per_row=8, chunks=2,
                                                   rows_per_block=1, warp_size=4)),
    "real kernel: d = 256": (8, None),
    "real kernel: d = 1024": (10, None),
}


def kernel_layout(name):
    """The :class:`~turboquant_lab.configs.FwhtConfig` of a :data:`KERNEL_LAYOUTS` entry."""
    log_d, custom = KERNEL_LAYOUTS[name]
    return fwht_config(1 << log_d) if custom is None else FwhtConfig(log_d, **custom)


@dataclass
class KernelStageState:
    """One stage of the emulated kernel on one vector (what the kernel stepper shows).

    ``owner[e]`` is the thread (of the row) that holds element ``e``, in its
    register ``slot[e] = c * vec + i``; ``pairs`` the element pairs of this
    stage (empty at stage 0); ``values`` the vector after it (unnormalized).
    """
    config: object
    stage: int
    n_stages: int
    kind: str
    stride: int
    detail: int
    values: np.ndarray
    owner: np.ndarray
    slot: np.ndarray
    pairs: np.ndarray
    vmax: float
    matches_fwht_stages: bool

    @property
    def d(self) -> int:
        return self.config.d

    @property
    def nonzero(self) -> int:
        return int(np.count_nonzero(self.values))


def compute_kernel_stage(x, stage, config=None):
    """The emulated kernel after ``stage`` stages, on one vector ``x`` (lesson 09).

    Parameters
    ----------
    x : (d,) array_like
        The vector (float32 in the kernel).
    stage : int
        0 (the loaded input) to ``log2 d``; clipped to that range.
    config : FwhtConfig, optional
        Default: the real kernel's configuration for ``d``.

    Returns
    -------
    KernelStageState
        Also says whether the values equal ``fwht_stages(x)[stage]`` bit for bit.
    """
    x = np.asarray(x, dtype=np.float32)
    cfg = fwht_config(x.shape[-1]) if config is None else config
    records = emulate_fwht_trace(x, config=cfg)
    stage = int(min(max(stage, 0), len(records) - 1))
    rec = records[stage]
    d = cfg.d
    slot = np.empty(d, dtype=np.int64)
    slot[cfg.element_index()] = np.arange(cfg.chunks)[None, :, None] * cfg.vec + \
        np.arange(cfg.vec)[None, None, :]
    if stage == 0:
        pairs = np.zeros((0, 2), dtype=np.int64)
    else:
        e = np.arange(d)
        low = e[(e & rec.stride) == 0]
        pairs = np.stack([low, low + rec.stride], axis=1)
    vmax = max(float(np.abs(r.values).max()) for r in records) or 1.0
    same = bool(np.array_equal(rec.values, fwht_stages(x)[stage]))
    return KernelStageState(cfg, stage, len(records) - 1, rec.kind, rec.stride, rec.detail,
                            rec.values, cfg.owner(), slot, pairs, vmax, same)


_STAGE_WHERE = {
    "input": "the vector as loaded: each thread holds its elements in registers",
    "registers": "both elements of each pair sit in one thread: a register add and subtract",
    "warp shuffle": "the pairs sit in two lanes of one warp: __shfl_xor_sync, xor mask {detail}",
    "shared memory": "the pairs sit in two different warps: an exchange through shared memory",
    "registers (chunks)": "back in one thread (two of its vector loads): register adds again",
}


def kernel_stage_caption(state) -> str:
    """One line for the stepper: the stage, its stride and where its pairs are."""
    where = _STAGE_WHERE[state.kind].format(detail=state.detail)
    if state.stage == 0:
        return f"input (stage 0 of {state.n_stages}): {where}"
    return f"stage {state.stage} of {state.n_stages}, stride {state.stride}: {where}"


class KernelStepper:
    """State of the kernel stepper (lesson 09): Next / Back through the stages of the emulation.

    Parameters
    ----------
    x : (d,) array_like, optional
        Default ``e_0``.
    config : FwhtConfig, optional
        Default: the teaching layout (d = 64, warps of 4 lanes).

    Examples
    --------
    >>> s = KernelStepper()
    >>> s.next().kind, s.next().kind, s.next().kind
    ('registers', 'registers', 'warp shuffle')
    """
    def __init__(self, x=None, config=None):
        self.config = kernel_layout(next(iter(KERNEL_LAYOUTS))) if config is None else config
        self.x = self._input(x)
        self._state = compute_kernel_stage(self.x, 0, self.config)

    def _input(self, x):
        if x is None:
            x = np.zeros(self.config.d, dtype=np.float32)
            x[0] = 1.0
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (self.config.d,):
            raise ValueError(f"x must have shape ({self.config.d},) for this layout, got {x.shape}")
        return x

    @property
    def state(self) -> KernelStageState:
        return self._state

    @property
    def stage(self) -> int:
        return self._state.stage

    def _go(self, stage):
        self._state = compute_kernel_stage(self.x, stage, self.config)
        return self._state

    def next(self) -> KernelStageState:
        """One stage forward (stays at the last)."""
        return self._go(self.stage + 1)

    def back(self) -> KernelStageState:
        """One stage back (stays at 0)."""
        return self._go(self.stage - 1)

    def reset(self, x=None, config=None) -> KernelStageState:
        """Back to stage 0, optionally with a new layout and/or input (``e_0`` by default)."""
        if config is not None:
            self.config = config
        self.x = self._input(x)
        return self._go(0)


#: Inputs of the kernel stepper, each a function of d.
KERNEL_INPUTS = {
    "e_0 = [1, 0, ..., 0]": lambda d: np.eye(d, dtype=np.float32)[0],
    "e_5": lambda d: np.eye(d, dtype=np.float32)[5],
    "random (seed 0)": lambda d: np.random.default_rng(0).standard_normal(d).astype(np.float32),
}


def time_gpu_fwht(dims, mib=64.0, repeat=10, seed=0):
    """Seconds per call on the GPU (the FWHT kernel, ``cupy.copyto``, a CuPy matrix product)
    and on the CPU (NumPy ``fwht``), for float32 arrays of ``mib`` MiB. Needs a GPU.

    Returns
    -------
    dict with ``dims``, ``nbytes`` (bytes read + written per call), ``kernel``,
    ``copy``, ``matmul``, ``numpy`` (median seconds per call, float arrays; the
    NumPy figure is measured on a 1/16 slice and scaled up) and
    ``max_rel_err`` (the kernel against NumPy). Wall-clock figures: print them
    only in a plot or on a line marked ``(timed)``.

    Raises
    ------
    RuntimeError
        Without a usable GPU (see :func:`turboquant_lab.backend.gpu_available`).
    """


    if not gpu_available():
        raise RuntimeError("no usable CUDA GPU: time_gpu_fwht needs CuPy and a GPU")
    import cupy as cp


    def median_gpu(f):
        return float(np.median(event_times(f, repeat, warmup=1)))

    res = {k: [] for k in ("kernel", "copy", "matmul", "numpy")}
    err, nbytes = 0.0, []
    for d in dims:
        rows = int(mib * 2**20) // (4 * d)
        x_host = np.random.default_rng(seed).standard_normal((rows, d), dtype=np.float32)
        x = cp.asarray(x_host)
        out = cp.empty_like(x)
        h = cp.asarray(hadamard(d, dtype=np.float32) / np.float32(np.sqrt(d)))
        res["kernel"].append(median_gpu(lambda: fwht(x)))
        res["copy"].append(median_gpu(lambda: cp.copyto(out, x)))
        res["matmul"].append(median_gpu(lambda: cp.matmul(x, h, out=out)))
        part = x_host[: max(1, rows // 16)]
        t0 = time.perf_counter()
        y_part = fwht(part)
        res["numpy"].append((time.perf_counter() - t0) * rows / len(part))
        y_gpu = cp.asnumpy(fwht(x[: len(part)]))
        err = max(err, float(np.abs(y_gpu - y_part).max() / np.abs(y_part).max()))
        nbytes.append(2 * x.nbytes)
    result = {k: np.asarray(v) for k, v in res.items()}
    result.update(dims=np.asarray(dims), nbytes=np.asarray(nbytes), max_rel_err=err)
    return result
