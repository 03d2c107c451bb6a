"""Encode/decode throughput of TurboQuantMSE on the CPU, as a ratio to a memory copy.

Usage::

    python benchmarks/quantize_cpu.py [--n 65536] [--d 128] [--repeats 7] [--rotation hadamard]

For 2**16 float32 vectors at d = 128 it prints, for 2, 3 and 4 bits, the
encode and decode throughput (vectors per second) and how many times longer
encode + decode take than ``np.copyto`` of the same float32 input, measured
in the same run (medians of ``--repeats`` runs). The ratio is what to compare
between machines; the target is at most 30x (community NumPy TurboQuant
implementations measure 100-400x).
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from turboquant_lab.turboquant import TurboQuantMSE


def median_time(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1 << 16, help="number of vectors")
    parser.add_argument("--d", type=int, default=128, help="dimension")
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rotation", default="hadamard", choices=["hadamard", "dense"])
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.d)).astype(np.float32)
    dst = np.empty_like(x)
    t_copy = median_time(lambda: np.copyto(dst, x), args.repeats)
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"{args.n} vectors, d={args.d}, float32, rotation={args.rotation!r}")
    print(f"np.copyto of the input ({x.nbytes / 2**20:.0f} MiB): {t_copy * 1e3:.2f} ms "
          f"({x.nbytes / t_copy / 1e9:.1f} GB/s)")
    print(f"{'bits':>4} {'encode vec/s':>14} {'decode vec/s':>14} {'enc ms':>8} {'dec ms':>8} "
          f"{'(enc+dec)/copy':>15} {'rel. MSE/pred':>14}")
    rows = []
    for bits in args.bits:
        q = TurboQuantMSE(args.d, bits, seed=0, rotation=args.rotation)
        enc = q.encode(x)
        t_enc = median_time(lambda: q.encode(x), args.repeats)
        t_dec = median_time(lambda: q.decode(enc), args.repeats)
        x_hat = q.decode(enc)
        rel = float(np.mean(np.sum((x - x_hat) ** 2, axis=1) / np.sum(x * x, axis=1)))
        ratio = (t_enc + t_dec) / t_copy
        rows.append(dict(bits=bits, encode=args.n / t_enc, decode=args.n / t_dec, ratio=ratio))
        print(f"{bits:>4} {args.n / t_enc:>14.3g} {args.n / t_dec:>14.3g} {t_enc * 1e3:>8.1f} "
              f"{t_dec * 1e3:>8.1f} {ratio:>14.1f}x {rel / q.expected_mse:>14.4f}")
    return rows


if __name__ == "__main__":
    main()
