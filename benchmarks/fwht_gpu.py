"""Speed of the GPU kernels as a fraction of a device copy of the same bytes.

For each d: the float32 FWHT, the float16 FWHT, the signed (randomized
Hadamard) path, and TurboQuantMSE encode and decode at each bits. Every row
times K back-to-back kernel launches between one pair of CUDA events, into
outputs allocated beforehand (``CudaKernels`` with ``out=``; the status word is
the discarded one, so nothing makes the host wait), and a device copy of the
same number of bytes (read + write) timed the same way, in the same run. The
fraction = copy time / kernel time: 100% means the kernel moves its bytes as
fast as a copy. Lesson 09's model predicts the kernels are memory bound
(``tools/sass_budget.py`` counts the instructions that the prediction needs).

    .venv/bin/python benchmarks/fwht_gpu.py
    .venv/bin/python benchmarks/fwht_gpu.py --d 128 4096 --mib 64 --k 50 --bits 2 4

Prints the device name first. Without a usable GPU (or without CuPy) it says
so and exits 0.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from turboquant_lab.backend import gpu_available

TARGET_COPY_FRACTION = 0.70  # kernel bandwidth / copy bandwidth (information only)


def device_name() -> str:
    """The current CUDA device's name, CuPy's version and the CUDA runtime's."""
    import cupy as cp

    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return f"{name}, CuPy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}"


def time_k(f, k: int, repeat: int) -> float:
    """Median over ``repeat`` rounds of (time of ``k`` back-to-back ``f()`` between two events) / k."""
    import cupy as cp

    f()  # warm-up: compilation, caches
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(k):
            f()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3 / k)
    return float(np.median(times))


def _copy_call(nbytes: int):
    """A device copy that reads and writes ``nbytes`` in all (``nbytes / 2`` each way)."""
    import cupy as cp

    half = max(16, nbytes // 2)
    src, dst = cp.zeros(half, dtype=np.uint8), cp.empty(half, dtype=np.uint8)
    return (lambda: cp.copyto(dst, src)), 2 * half


def fwht_rows(d: int, mib: float, repeat: int, k: int, bits_list=(4,)) -> list[dict]:
    """One dict per row: what, bytes (read + write per call), seconds per call, fraction of the copy."""
    import cupy as cp

    from turboquant_lab.gpu import CudaKernels
    from turboquant_lab.rotation import RandomizedHadamard
    from turboquant_lab.turboquant import TurboQuantMSE

    kern = CudaKernels()
    discard = kern.status_word("discard")
    n = max(1, int(mib * 2**20) // (4 * d))
    x32 = cp.asarray(np.random.default_rng(0).standard_normal((n, d), dtype=np.float32))
    x16 = x32.astype(np.float16)
    rh = RandomizedHadamard(d, seed=1)
    s1, s2 = kern.constant(rh.signs1), kern.constant(rh.signs2)
    scale = np.float32(1.0 / np.sqrt(d))
    y32, y16 = cp.empty_like(x32), cp.empty_like(x16)
    calls = {
        "float32": (lambda: kern.fwht(x32, scale, status=discard, out=y32), 2 * x32.nbytes),
        "float16": (lambda: kern.fwht(x16, scale, status=discard, out=y16), 2 * x16.nbytes),
        "signed float32": (lambda: kern.fwht(x32, scale, s1, s2, status=discard, out=y32), 2 * x32.nbytes),
    }
    for bits in bits_list:
        q = TurboQuantMSE(d, bits, seed=0)
        kc = q.kernel_constants()
        codes = cp.empty((n, kc.n_bytes), dtype=np.uint8)
        norms = cp.empty(n, dtype=np.float32)
        qs1, qs2, thr = kern.constant(kc.signs1), kern.constant(kc.signs2), kern.constant(kc.thresholds)
        kern.encode(x32, qs1, qs2, thr, bits, status=discard, out=(codes, norms))
        norms16 = norms.astype(np.float16)
        levels = kern.constant(kc.centroids)
        out = cp.empty_like(x32)
        moved = x32.nbytes + codes.nbytes + norms.nbytes

        def enc(b=bits, a=(qs1, qs2, thr), o=(codes, norms)):
            kern.encode(x32, *a, b, status=discard, out=o)

        def dec(b=bits, c=codes, r=norms16, a=(qs1, qs2, levels), o=out):
            kern.decode(c, r, *a, b, d, out=o)

        calls[f"encode {bits} bits"] = (enc, moved)
        calls[f"decode {bits} bits"] = (dec, x32.nbytes + codes.nbytes + norms16.nbytes)
    rows = []
    for what, (f, nbytes) in calls.items():
        copy, copy_bytes = _copy_call(nbytes)
        t_copy = time_k(copy, k, repeat)
        t = time_k(f, k, repeat)
        rows.append(dict(d=d, what=what, bytes=nbytes, copy_bytes=copy_bytes, seconds=t,
                         copy_seconds=t_copy, gbs=nbytes / t / 1e9, fraction=t_copy / t))
    return rows


def print_rows(rows) -> None:
    header = f"{'d':>6}  {'kernel':<16} {'MiB moved':>9} {'us/call':>9} {'GB/s':>8} {'copy GB/s':>9} {'of copy':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['d']:>6}  {r['what']:<16} {r['bytes'] / 2**20:>9.1f} {r['seconds'] * 1e6:>9.1f} "
              f"{r['gbs']:>8.0f} {r['copy_bytes'] / r['copy_seconds'] / 1e9:>9.0f} "
              f"{100 * r['fraction']:>7.0f}%")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, nargs="+", default=[128, 1024, 4096])
    p.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--mib", type=float, default=256.0, help="float32 input per call, MiB (default 256)")
    p.add_argument("--k", type=int, default=20, help="back-to-back calls between two events")
    p.add_argument("--repeat", type=int, default=5, help="rounds (the median is printed)")
    args = p.parse_args(argv)
    if not gpu_available():
        print("No usable CUDA GPU (or CuPy is not installed): nothing to measure.\n"
              "Install the GPU extra (pip install 'turboquant-lab[gpu]') on a machine with an "
              "NVIDIA GPU, or on Colab choose Runtime > Change runtime type > GPU.")
        return 0
    print(device_name())
    print(f"{args.mib:g} MiB of float32 input per call; {args.k} back-to-back calls between two CUDA "
          f"events, median of {args.repeat} rounds; outputs allocated beforehand;\n'of copy' = time "
          f"of a device copy of the same bytes (read + write) / time of the kernel\n")
    rows = []
    for d in args.d:
        rows += fwht_rows(d, args.mib, args.repeat, args.k, tuple(args.bits))
    print_rows(rows)
    low = [r for r in rows if r["fraction"] < TARGET_COPY_FRACTION]
    print(f"\nbelow {100 * TARGET_COPY_FRACTION:.0f}% of the copy (information only, never asserted): "
          + (", ".join(f"d={r['d']} {r['what']}" for r in low) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
