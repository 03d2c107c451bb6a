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
from turboquant_lab.gpu.configs import GPU_SPECS, STAGE_KINDS, FwhtConfig, fwht_config
from turboquant_lab.gpu.emulation import emulate_fwht_trace
from turboquant_lab.walsh_hadamard import fwht, fwht_stages, hadamard

__all__ = [
    "SM_RATES", "SASS_PER_ELEMENT", "SASS_COMMAND", "kernel_instruction_counts", "bytes_per_sm_clock",
    "compute_kernel_budget", "dense_product_vs_copy", "GPU_REFERENCE_RUN", "KERNEL_LAYOUTS", "kernel_layout", "KernelStageState",
    "compute_kernel_stage", "kernel_stage_caption", "KernelStepper", "KERNEL_INPUTS", "time_gpu_fwht",
]


#: Per-SM rates, in lane-instructions (or bytes) per clock, of the three GPUs of ``GPU_SPECS``.
#: ``fp32`` and ``shuffle``: the CUDA C++ Programming Guide's table "Throughput of Native
#: Arithmetic Instructions" (32-bit floating-point add, multiply, multiply-add: 64 per clock
#: per SM at compute capability 7.5 and 8.0, 128 at 9.0; warp shuffle: 32). ``issue``: four
#: warp schedulers per SM, each issuing one warp instruction (32 lanes) per clock (the
#: Turing, Ampere and Hopper architecture whitepapers). ``shared_bytes``: 32 banks of 4 bytes
#: per clock (the Programming Guide's "Shared Memory" section).
SM_RATES = {
    "T4": {"compute_capability": "7.5", "issue": 128, "fp32": 64, "shuffle": 32, "shared_bytes": 128},
    "A100 80GB SXM": {"compute_capability": "8.0", "issue": 128, "fp32": 64, "shuffle": 32,
                      "shared_bytes": 128},
    "H200 SXM": {"compute_capability": "9.0", "issue": 128, "fp32": 128, "shuffle": 32,
                 "shared_bytes": 128},
}

#: SASS instructions per element of the compiled FWHT kernel (main path / elements per thread),
#: counted without a GPU by ``tools/sass_budget.py`` (nvcc -cubin, sm_90, nvcc 13.0) on the
#: kernels of commit 9fe4042: ``(kind, d) -> (instructions, shuffles, shared-memory accesses)``.
#: A stored measurement: re-run the command of :data:`SASS_COMMAND` after a kernel change.
SASS_PER_ELEMENT = {
    ("float32", 128): (18.5, 4.0, 0.0), ("float32", 1024): (23.1, 5.0, 2.5),
    ("float32", 8192): (24.2, 5.0, 2.5),
    ("float16", 128): (20.0, 4.0, 0.0), ("float16", 1024): (24.8, 5.0, 2.5),
    ("float16", 8192): (25.1, 5.0, 2.5),
    ("signed", 128): (21.0, 4.0, 0.0), ("signed", 1024): (25.5, 5.0, 2.5),
    ("signed", 8192): (26.3, 5.0, 2.5),
}
SASS_COMMAND = ('python tools/sass_budget.py --kinds "fwht float32" "fwht float16" "fwht signed" '
                '--d 128 1024 8192')


def kernel_instruction_counts(d, itemsize=4, signs=False) -> dict:
    """Instructions per element of the FWHT kernel, counted from its algorithm (lesson 09).

    One thread holds ``cfg.elems`` elements of a row (``cfg = fwht_config(d).for_itemsize(itemsize)``);
    per element it issues:

    * ``fp32``: one add or subtract per stage (``log2 d``), one multiplication by the
      scale, and one per sign vector (``signs``: the randomized Hadamard's two);
    * ``shuffle``: one ``__shfl_xor_sync`` per warp-shuffle stage (``log2 row_lanes``);
    * ``shared``: 2.5 shared-memory accesses when a row spans several warps (a 16-byte
      store per ``vec`` elements, a 4-byte load and store of each element, a 16-byte reload),
      16 bytes of shared-memory traffic (``shared_bytes``), whatever the number of warp stages;
    * ``memory``: one vector load and one vector store per ``vec`` elements (and one
      4-float load per 4 elements of each sign vector, served by the caches);
    * ``convert``: float16 to float32 and back (2 with ``itemsize=2``).

    ``total`` adds them: the issue slots of the algorithm itself. The compiled kernel
    issues more (index arithmetic, predicates): :data:`SASS_PER_ELEMENT`. ``bytes`` is
    the memory traffic per element, ``2 * itemsize`` (one read, one write).

    Examples
    --------
    >>> c = kernel_instruction_counts(128)
    >>> c["fp32"], c["shuffle"], c["shared"], c["memory"], c["total"]
    (8, 4, 0.0, 0.5, 12.5)
    """
    if itemsize not in (2, 4):
        raise ValueError(f"itemsize must be 4 (float32) or 2 (float16), got {itemsize!r}")
    cfg = fwht_config(d).for_itemsize(itemsize)
    kinds = [k for k, _, _ in cfg.stage_plan()]
    fp32 = cfg.log_d + 1 + (2 if signs else 0)
    shuffle = kinds.count(STAGE_KINDS[1])
    shared = 2.5 if cfg.warps_per_row > 1 else 0.0
    memory = 2 / cfg.vec + (2 * 0.25 if signs else 0.0)
    convert = 2 if itemsize == 2 else 0
    return {"d": cfg.d, "itemsize": itemsize, "signs": bool(signs), "fp32": fp32,
            "shuffle": shuffle, "shared": shared, "memory": memory, "convert": convert,
            "total": fp32 + shuffle + shared + memory + convert,
            "shared_bytes": 16.0 if shared else 0.0, "bytes": 2 * itemsize}


def bytes_per_sm_clock(name, specs=None, rates=None) -> float:
    """Memory bandwidth per SM per clock: ``bandwidth * 2 * fp32_rate / fp32_flops``.

    The quoted FP32 rate is ``SMs * clock * fp32_rate * 2`` (a multiply-add counts as two
    operations), so ``SMs * clock = fp32_flops / (2 fp32_rate)``, and the bandwidth over
    it is what one SM gets per clock.
    """
    s = (GPU_SPECS if specs is None else specs)[name]
    r = (SM_RATES if rates is None else rates)[name]
    return s["bandwidth_gbs"] * 1e9 * 2 * r["fp32"] / (s["fp32_tflops"] * 1e12)


def compute_kernel_budget(dims=(128, 1024, 8192), itemsizes=(4, 2), signs=False, specs=None,
                          rates=None, instructions=None) -> list:
    """Clocks per element on one SM: what memory needs, and what each instruction resource needs.

    Parameters
    ----------
    dims : sequence of int
        Sizes from the kernel's table.
    itemsizes : sequence of {4, 2}
        float32 and/or float16 storage (the arithmetic is float32 either way).
    signs : bool
        The randomized Hadamard (two sign vectors) instead of the plain transform.
    specs, rates : dict, optional
        Default :data:`GPU_SPECS` and :data:`SM_RATES` (the same GPU names).
    instructions : dict, optional
        ``{(itemsize, d): instructions per element}`` replacing the algorithm's ``total``
        in the issue resource (e.g. the compiled counts of :data:`SASS_PER_ELEMENT`).

    Returns
    -------
    list of dict
        One row per (GPU, d, itemsize): ``memory`` = bytes / :func:`bytes_per_sm_clock`;
        ``issue`` = instructions / ``issue`` rate; ``fp32`` = FP32 instructions / fp32 rate;
        ``shuffle`` = shuffles / 32; ``shared`` = shared bytes / 128; ``bound`` = the largest
        of the four (the pipes run side by side, so the busiest one decides), ``limiting``
        its name, and ``ratio = bound / memory``: below 1 the kernel waits for memory (it
        can run at the speed of a copy), above 1 for its own instructions.

    Examples
    --------
    >>> rows = compute_kernel_budget(dims=(128,), itemsizes=(4,))
    >>> [(r["gpu"], bool(r["ratio"] < 1)) for r in rows]
    [('T4', True), ('A100 80GB SXM', True), ('H200 SXM', True)]
    >>> rows[-1]["limiting"], rows[-1]["shuffle"]
    ('shuffle', 0.125)
    """
    specs = GPU_SPECS if specs is None else specs
    rates = SM_RATES if rates is None else rates
    rows = []
    for name in specs:
        r = rates[name]
        per_clock = bytes_per_sm_clock(name, specs, rates)
        for d in dims:
            for itemsize in itemsizes:
                c = kernel_instruction_counts(d, itemsize, signs)
                total = c["total"] if instructions is None else instructions[itemsize, d]
                need = {"issue": total / r["issue"], "fp32": c["fp32"] / r["fp32"],
                        "shuffle": c["shuffle"] / r["shuffle"],
                        "shared": c["shared_bytes"] / r["shared_bytes"]}
                limiting = max(need, key=need.get)
                memory = c["bytes"] / per_clock
                rows.append({"gpu": name, "d": int(d), "itemsize": itemsize, "memory": memory,
                             **need, "bound": need[limiting], "limiting": limiting,
                             "ratio": need[limiting] / memory})
    return rows


def dense_product_vs_copy(dims, specs=None, rates=None) -> dict:
    """Predicted time of the dense product ``x @ H`` (float32) over the time of a copy, per GPU.

    ``d`` multiply-adds per element on the FP32 pipes against 8 bytes of memory traffic:
    ``max(1, (d / fp32_rate) / (8 / bytes_per_sm_clock))``. No tensor cores (TF32 would be
    faster on the A100 and H200).
    """
    specs = GPU_SPECS if specs is None else specs
    rates = SM_RATES if rates is None else rates
    dims = np.asarray(dims, dtype=np.float64)
    out = {}
    for name in specs:
        memory = 8 / bytes_per_sm_clock(name, specs, rates)
        out[name] = np.maximum(1.0, dims / rates[name]["fp32"] / memory)
    return out


#: A real run of the kernels, to be filled from ``benchmarks/fwht_gpu.py`` on a GPU:
#: ``{"device": ..., "commit": ..., "rows": {(kind, d): kernel speed / copy speed}}``.
#: Empty: no run of these kernels on a GPU exists yet.
GPU_REFERENCE_RUN: dict = {}


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
