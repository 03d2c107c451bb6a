"""Speed of the NumPy Walsh-Hadamard transform, as ratios to a memory copy.

For float32 arrays of 32 MiB with d in {128, 1024, 4096}: the median time of
each ``fwht`` strategy, of the two plans (``plan="estimate"``, the built-in
table, and ``plan="measure"``, the plan timed on this machine by
``walsh_hadamard.plan_fwht(d, measure=True)``, printed with its factors), the
bandwidth (one read and one write of the array) and the ratio to
``np.copyto(out, x)`` of the same array measured in the same run. The target
(at most 3x the copy, writing into ``out=``) is printed for information,
never asserted: the machine is shared, so re-run when the figures look noisy.

    .venv/bin/python benchmarks/fwht_cpu.py
    .venv/bin/python benchmarks/fwht_cpu.py --d 64 256 --mib 64
    .venv/bin/python benchmarks/fwht_cpu.py --factors     # the Kronecker factor table
"""
from __future__ import annotations

import argparse
import functools
import importlib
import itertools
import os
import platform
import time

import numpy as np

# the module, not the function that turboquant_lab re-exports under the same name
H = importlib.import_module("turboquant_lab.walsh_hadamard")

TARGETS = {128: 3.0, 1024: 3.0, 4096: 3.0}  # ratio to the copy (out=), from issue 15


def timed(f, repeat: int) -> list[float]:
    """Seconds per call of ``f()`` for ``repeat`` calls after one warm-up."""
    f()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return times


def make_input(d: int, mib: float, seed: int = 0) -> np.ndarray:
    rows = max(1, int(mib * 2**20) // (4 * d))
    return np.random.default_rng(seed).standard_normal((rows, d), dtype=np.float32)


def check(x: np.ndarray) -> None:
    """Every strategy agrees with the dense oracle on a few rows before anything is timed."""
    ref = H.fwht_reference(x[:8].astype(np.float64))
    for name in H.STRATEGIES:
        err = np.abs(H.fwht(x[:8], strategy=name) - ref).max()
        assert err < 1e-5, f"{name}: max error {err:.2e} against the dense reference"


def interleaved(calls: dict, repeat: int, slow: set) -> dict:
    """Median and best seconds per call, timed round-robin so that load from other
    processes hits every entry alike; entries in ``slow`` run in a third of the rounds."""
    times: dict = {name: [] for name in calls}
    cpu: dict = {name: [] for name in calls}
    for f in calls.values():
        f()  # warm-up: caches, thread pool, page tables
    for r in range(repeat):
        for name, f in calls.items():
            if name in slow and r >= max(3, repeat // 3):
                continue
            c0, t0 = time.process_time(), time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {name: (float(np.median(t)), float(np.min(t)), float(np.median(cpu[name])))
            for name, t in times.items()}


def strategies_table(ds, mib: float, repeat: int) -> None:
    print(f"fwht, float32, {mib:g} MiB per array, median (and best) of {repeat} calls timed "
          f"round-robin (slow strategies fewer);\nx copy = median / median of "
          f"np.copyto(out, x) on the same array; fwht allocates its output (as np.copy "
          f"does)\nunless given out=; cpu ms = CPU time of all threads (fwht uses every core)\n")
    header = (f"{'d':>6}  {'strategy':<20} {'median ms':>10} {'best ms':>8} {'cpu ms':>8} "
              f"{'GB/s':>7} {'x copy':>7}")
    print(header)
    print("-" * len(header))
    summary = []
    load0 = os.getloadavg()[0]
    for d in ds:
        x = make_input(d, mib)
        check(x)
        out = np.empty_like(x)
        nbytes = 2 * x.nbytes  # one read, one write
        auto = H._AUTO_STRATEGY[d]
        calls = {"np.copyto": lambda: np.copyto(out, x), "np.copy (allocates)": x.copy}
        for name in H.STRATEGIES:
            if name == "dense" and d > 4096:
                continue  # a d x d matrix of 256 MiB and minutes of work
            label = name + (f" {H._KRON_FACTORS[d]}" if name == "kron" else "")
            calls[label] = functools.partial(H.fwht, x, strategy=name)
        calls[f"auto -> {auto}"] = functools.partial(H.fwht, x)
        calls["auto, out=buffer"] = functools.partial(H.fwht, x, out=np.empty_like(x))
        plan = H.plan_fwht(d, x.dtype, measure=True)
        print(f"d={d}: measured plan {plan.strategy} {plan.factors}, {plan.block_bytes >> 10} KiB "
              f"blocks ({plan.source})")
        calls["estimate plan, out="] = functools.partial(H.fwht, x, plan="estimate", out=np.empty_like(x))
        calls["measured plan, out="] = functools.partial(H.fwht, x, plan=plan, out=np.empty_like(x))
        slow = {label for label in calls
                if label.startswith("butterfly") or (label == "dense" and d >= 1024)}
        res = interleaved(calls, repeat, slow)
        t_copy = res["np.copyto"][0]
        for label, (med, best, cpu) in res.items():
            print(f"{d:>6}  {label:<20} {med * 1e3:>10.2f} {best * 1e3:>8.2f} {cpu * 1e3:>8.2f} "
                  f"{nbytes / med / 1e9:>7.1f} {med / t_copy:>7.2f}")
        print()
        summary.append((d, res["estimate plan, out="][0] / t_copy, res["measured plan, out="][0] / t_copy,
                        res["estimate plan, out="][1] / res["np.copyto"][1],
                        res["measured plan, out="][1] / res["np.copyto"][1]))
    print("target check (information only, never asserted), time / np.copyto time, median (best):")
    for d, est, meas, est_best, meas_best in summary:
        if d in TARGETS:
            verdict = "meets" if meas <= TARGETS[d] else "MISSES"
            print(f"  d={d:<5} estimate plan {est:5.2f}x ({est_best:4.2f}x), measured plan {meas:5.2f}x "
                  f"({meas_best:4.2f}x), target <= {TARGETS[d]:g}x: {verdict}")
    print(f"load average before/after: {load0:.1f} / {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs. Other processes slow fwht (all cores) more than the copy "
          f"(one core): re-run when the load is high or the figures look noisy.")


def kron_candidates(d: int) -> list[tuple[int, ...]]:
    """Orderings of d into at most 5 factors (the last >= 8), plus dense up to d = 256."""
    out = {(d,)} if d <= 256 else set()
    for k in range(2, 6):
        for t in itertools.product([2, 4, 8, 16, 32, 64, 128, 256], repeat=k):
            if np.prod(t) == d and 8 <= t[-1] <= 128 and min(t[1:]) >= 4:
                out.add(t)
    return sorted(out, key=lambda t: (len(t), t))


def factors_table(ds, mib: float, repeat: int, rounds: int, top: int) -> None:
    """Time every Kronecker factorisation of each d; the best ones fill _KRON_FACTORS."""
    print(f"Kronecker factorisations, float32, {mib:g} MiB, minimum over {rounds} rounds "
          f"of the best of {repeat}; ratio to np.copyto\n")
    for d in ds:
        x = make_input(d, mib)
        out = np.empty_like(x)
        results: dict[tuple[int, ...], float] = {}
        for _ in range(rounds):
            t_copy = min(timed(lambda: np.copyto(out, x), repeat))
            for fac in kron_candidates(d):
                func = functools.partial(H._fwht_kron, factors=fac)
                t = min(timed(lambda: H._parallel_blocks(x, out, func, True, x), repeat))
                results[fac] = min(results.get(fac, np.inf), t / t_copy)
        ranked = sorted(results.items(), key=lambda kv: kv[1])[:top]
        table = H._KRON_FACTORS[d]
        print(f"d={d:<6} table {table}: {results.get(table, float('nan')):.2f} | best "
              + "  ".join(f"{fac}: {r:.2f}" for fac, r in ranked))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, nargs="+", default=None, help="dimensions (powers of two)")
    p.add_argument("--mib", type=float, default=32.0, help="array size in MiB (default 32)")
    p.add_argument("--repeat", type=int, default=11, help="timed calls per measurement")
    p.add_argument("--factors", action="store_true", help="rank Kronecker factorisations")
    p.add_argument("--rounds", type=int, default=3, help="rounds for --factors")
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}\n")
    if args.factors:
        ds = args.d or [64, 128, 256, 512, 1024, 2048, 4096]
        factors_table(ds, args.mib, max(3, args.repeat // 2), args.rounds, top=5)
    else:
        strategies_table(args.d or [128, 1024, 4096], args.mib, args.repeat)


if __name__ == "__main__":
    main()
