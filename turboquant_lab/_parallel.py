"""Row blocks on all cores, with BLAS held at one thread (shared by ``fwht`` and ``TurboQuantMSE``).

Many small BLAS calls from one thread leave a core idle, and a threaded BLAS
inside several Python threads oversubscribes the cores (measured 1.5-2x
slower for ``fwht``; 10-30x slower for encoding on a busy two-core machine,
where each multi-threaded call waits for its slowest thread). So the blocks
go to a pool of Python threads (NumPy releases the GIL in its ufuncs and in
matmul) while ``threadpoolctl`` holds BLAS at one thread. The workers take
blocks from one shared counter, so a core slowed down by another process
simply does fewer of them. Without ``threadpoolctl`` the blocks run in turn.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

MAX_WORKERS = 8  # more threads than this only fight over memory bandwidth

_lock = threading.Lock()  # one parallel run at a time; never taken inside a worker
_state: dict = {}


@contextlib.contextmanager
def forced_workers(n: int):
    """Run every ``for_each_block`` inside with ``n`` worker threads (capped by the block count).

    For tests: on a one-CPU machine, or with ``OMP_NUM_THREADS=1``, the pool
    would otherwise never run, and a test of the threaded path would test
    nothing. Not thread-safe; meant for a test's ``with`` block.
    """
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    previous = _state.get("forced")
    _state["forced"] = int(n)
    try:
        yield
    finally:
        _state["forced"] = previous


def n_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def blas_controller():
    """threadpoolctl's controller for the loaded BLAS libraries (cached), or None without it."""
    if "blas" not in _state:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415 (scans libraries)
        except ImportError:
            _state["blas"] = None
        else:
            _state["blas"] = ThreadpoolController().select(user_api="blas")
    return _state["blas"]


def blas_one_thread():
    """Context manager holding BLAS at one thread, or a no-op without threadpoolctl."""
    ctl = blas_controller()
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1)


def _executor(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of worker threads, rebuilt after a fork or to grow."""
    pool = _state.get("pool")
    if pool is None or _state.get("pid") != os.getpid() or _state["size"] < workers:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="turboquant_lab")
        _state.update(pool=pool, pid=os.getpid(), size=workers)
    return pool


def for_each_block(n_rows: int, block_rows: int, body, new_scratch=lambda: None,
                   limit_single: bool = True) -> None:
    """Call ``body(start, stop, scratch)`` for every block of ``block_rows`` rows, on all cores.

    ``new_scratch()`` makes one set of scratch buffers per worker thread. The
    number of workers is at most the number of CPUs, the BLAS thread count
    (so ``OMP_NUM_THREADS=1`` keeps everything on one core) and
    ``MAX_WORKERS``. A single block runs in the calling thread, with BLAS held
    at one thread when ``limit_single`` is true. The first exception raised
    by ``body`` is re-raised after every worker has stopped.
    """
    starts = range(0, n_rows, block_rows)
    ctl = blas_controller()
    blas_threads = max((lib.num_threads for lib in ctl.lib_controllers), default=1) if ctl else 1
    workers = min(blas_threads, n_cpus(), MAX_WORKERS, len(starts))
    if _state.get("forced"):
        workers = min(_state["forced"], len(starts))
    if workers <= 1:
        with blas_one_thread() if limit_single or ctl is None else contextlib.nullcontext():
            scratch = new_scratch()
            for start in starts:
                body(start, min(start + block_rows, n_rows), scratch)
        return
    todo = iter(starts)
    take = threading.Lock()

    def run():
        scratch = new_scratch()
        while True:
            with take:
                start = next(todo, None)
            if start is None:
                return
            body(start, min(start + block_rows, n_rows), scratch)

    with _lock, blas_one_thread():
        pool = _executor(workers)
        futures = [pool.submit(run) for _ in range(workers)]
        errors = [f.exception() for f in futures]  # wait for all before BLAS threads return
    for err in errors:
        if err is not None:
            raise err
