"""Speed of the GPU kernels: the FWHT against a device copy and a matrix product, and
TurboQuantMSE encode/decode against the NumPy path.

For float32 batches of 256 MiB with d in {128, 1024, 4096}: the median time of
the kernel (cupy.cuda.Event timing, after a warm-up), its bandwidth (one read
and one write of the array), and its ratio to ``cupy.copyto`` of the same
array measured in the same run; the same for ``tql.fwht`` (the kernel plus its
NaN/Inf check), a CuPy matrix product with H and, where PyTorch with CUDA is
installed, ``torch.matmul`` with H. The targets (at least 70% of the copy's
bandwidth at every d, faster than the matrix product) are printed for
information, never asserted. Then encode/decode throughput in vectors/s at
d = 128: 2**20 vectors on the GPU, 2**16 through the NumPy path.

    .venv/bin/python benchmarks/fwht_gpu.py
    .venv/bin/python benchmarks/fwht_gpu.py --d 256 8192 --mib 64 --repeat 50

Without a usable GPU (or without CuPy) it says so and exits 0.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from turboquant_lab.backend import gpu_available
from turboquant_lab.gpu import event_times

TARGET_COPY_FRACTION = 0.70  # kernel bandwidth / copy bandwidth, from the issue


def fwht_table(ds, mib: float, repeat: int) -> list[tuple[int, float, float]]:
    import cupy as cp

    from turboquant_lab import gpu
    from turboquant_lab.walsh_hadamard import fwht, hadamard

    try:
        import torch
        has_torch = torch.cuda.is_available()
    except Exception:  # not installed, or a torch build that cannot load its CUDA libraries
        has_torch = False
    kernels = gpu.CudaKernels()
    print(f"float32, {mib:g} MiB per array, median of {repeat} calls (CUDA events);\n"
          f"GB/s counts one read and one write; x copy = time / time of cupy.copyto\n")
    header = f"{'d':>6}  {'what':<28} {'median ms':>10} {'GB/s':>8} {'x copy':>7} {'% copy BW':>9}"
    print(header)
    print("-" * len(header))
    summary = []
    for d in ds:
        rows = int(mib * 2**20) // (4 * d)
        x = cp.random.default_rng(0).standard_normal((rows, d), dtype=cp.float32)
        out = cp.empty_like(x)
        # correctness first: the kernel against NumPy on a few rows
        ref = fwht(cp.asnumpy(x[:64]).astype(np.float64))
        err = float(np.abs(cp.asnumpy(fwht(x[:64])) - ref).max() / np.abs(ref).max())
        assert err < 1e-5, f"d={d}: relative error {err:.2e} against NumPy"
        h = cp.asarray(hadamard(d, dtype=np.float32) / np.float32(np.sqrt(d)))
        scale = np.float32(1 / np.sqrt(d))
        calls = {
            "cupy.copyto": lambda: cp.copyto(out, x),
            "fwht kernel": lambda: kernels.fwht(x, scale),
            "tql.fwht (kernel + NaN check)": lambda: fwht(x),
            "cupy matmul x @ H": lambda: cp.matmul(x, h, out=out),
        }
        if has_torch:
            xt = torch.from_dlpack(x)
            ht = torch.from_dlpack(h)
            ot = torch.from_dlpack(out)
            calls["torch.matmul x @ H"] = lambda: torch.matmul(xt, ht, out=ot)
        res = {name: float(np.median(event_times(f, repeat))) for name, f in calls.items()}
        nbytes = 2 * x.nbytes
        t_copy = res["cupy.copyto"]
        for name, t in res.items():
            print(f"{d:>6}  {name:<28} {t * 1e3:>10.3f} {nbytes / t / 1e9:>8.1f} "
                  f"{t / t_copy:>7.2f} {100 * t_copy / t:>8.0f}%")
        print()
        matmuls = [t for name, t in res.items() if "matmul" in name]
        summary.append((d, t_copy / res["fwht kernel"], min(matmuls) / res["fwht kernel"]))
    if not has_torch:
        print("(PyTorch with CUDA not found: no torch.matmul row)\n")
    print("target check (information only, never asserted):")
    for d, frac, vs_mm in summary:
        ok = frac >= TARGET_COPY_FRACTION and vs_mm > 1
        print(f"  d={d:<5} kernel at {100 * frac:.0f}% of the copy's bandwidth (target >= "
              f"{100 * TARGET_COPY_FRACTION:.0f}%), {vs_mm:.1f}x faster than the best matmul "
              f"(target > 1x): {'meets' if ok else 'MISSES'}")
    return summary


def codec_table(d: int, bits_list, n_gpu: int, n_cpu: int, repeat: int) -> None:
    import cupy as cp

    from turboquant_lab.turboquant import TurboQuantMSE

    print(f"\nTurboQuantMSE at d = {d}: {n_gpu:,} vectors on the GPU (CUDA events, median of "
          f"{repeat}; each call includes the NaN/norm check, one device sync), {n_cpu:,} "
          f"through the NumPy path (median of 3); vectors per second")
    header = f"{'bits':>4}  {'encode GPU':>14} {'encode CPU':>14} {'ratio':>7}  " \
             f"{'decode GPU':>14} {'decode CPU':>14} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    xg = cp.random.default_rng(1).standard_normal((n_gpu, d), dtype=cp.float32)
    xc = np.random.default_rng(1).standard_normal((n_cpu, d), dtype=np.float32)
    for bits in bits_list:
        q = TurboQuantMSE(d, bits, seed=0)
        enc_g = q.encode(xg)
        t_enc_g = float(np.median(event_times(lambda: q.encode(xg), repeat)))
        t_dec_g = float(np.median(event_times(lambda: q.decode(enc_g), repeat)))
        enc_c = q.encode(xc)
        t_enc_c = float(np.median([_wall(lambda: q.encode(xc)) for _ in range(3)]))
        t_dec_c = float(np.median([_wall(lambda: q.decode(enc_c)) for _ in range(3)]))
        eg, ec = n_gpu / t_enc_g, n_cpu / t_enc_c
        dg, dc = n_gpu / t_dec_g, n_cpu / t_dec_c
        print(f"{bits:>4}  {eg:>14,.0f} {ec:>14,.0f} {eg / ec:>6.1f}x  "
              f"{dg:>14,.0f} {dc:>14,.0f} {dg / dc:>6.1f}x")


def _wall(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, nargs="+", default=[128, 1024, 4096])
    p.add_argument("--mib", type=float, default=256.0, help="array size in MiB (default 256)")
    p.add_argument("--repeat", type=int, default=20, help="timed calls per measurement")
    p.add_argument("--no-codec", action="store_true", help="skip the encode/decode table")
    args = p.parse_args()
    if not gpu_available():
        print("No usable CUDA GPU (or CuPy is not installed): nothing to measure.\n"
              "Install the GPU extra (pip install 'turboquant-lab[gpu]') on a machine with an "
              "NVIDIA GPU, or on Colab choose Runtime > Change runtime type > GPU.")
        return 0
    import cupy as cp

    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"{name}, CuPy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}\n")
    fwht_table(args.d, args.mib, args.repeat)
    if not args.no_codec:
        codec_table(128, (2, 3, 4), 2**20, 2**16, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
