"""Encode/decode throughput of TurboQuantMSE on the CPU, as a ratio to a memory copy.

Usage::

    python benchmarks/quantize_cpu.py [--n 65536] [--d 128] [--repeats 7] [--rotation hadamard]

For 2**16 float32 vectors at d = 128 it prints, for 2, 3 and 4 bits, the
encode and decode throughput (vectors per second) and how many times longer
encode + decode take than ``np.copyto`` of the same float32 input, measured
in the same run. The three are timed in turn, round after round, so that
they see the same load from other processes; the figures are medians over
``--repeats`` rounds ("of minima" is the same ratio from the fastest round of
each). The ratio is what to compare between machines; the target is at most
30x (community NumPy TurboQuant implementations measure 100-400x). The last
column is the measured relative MSE over the codebook's prediction (about 1
for these Gaussian vectors).
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from turboquant_lab.turboquant import TurboQuantMSE


def interleaved_times(fns, repeats: int) -> np.ndarray:
    """Wall times, shape ``(repeats, len(fns))``: each round runs every ``fn`` once, in turn.

    Interleaving the copy with the encode and decode it is compared with makes
    the ratio robust to other load on the machine (both see the same load).
    One warm-up round first.
    """
    for fn in fns:
        fn()
    times = np.empty((repeats, len(fns)))
    for r in range(repeats):
        for j, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[r, j] = time.perf_counter() - t0
    return times


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1 << 16, help="number of vectors")
    parser.add_argument("--d", type=int, default=128, help="dimension")
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rotation", default="hadamard", choices=["hadamard", "dense"])
    args = parser.parse_args(argv)

    # not default_rng(0): with the quantizer's seed=0, the dense rotation is the Q of a QR
    # of the very first d x d numbers of that stream, and those d vectors quantize badly
    rng = np.random.default_rng(20240601)
    x = rng.standard_normal((args.n, args.d)).astype(np.float32)
    dst = np.empty_like(x)
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"{args.n} vectors, d={args.d}, float32 ({x.nbytes / 2**20:.0f} MiB), "
          f"rotation={args.rotation!r}; medians of {args.repeats} interleaved rounds")
    print(f"{'bits':>4} {'encode vec/s':>13} {'decode vec/s':>13} {'enc ms':>7} {'dec ms':>7} "
          f"{'copy ms':>8} {'(enc+dec)/copy':>15} {'of minima':>10} {'MSE/pred':>9}")
    rows = []
    for bits in args.bits:
        q = TurboQuantMSE(args.d, bits, seed=0, rotation=args.rotation)
        enc = q.encode(x)
        times = interleaved_times([lambda: np.copyto(dst, x), lambda: q.encode(x),
                                   lambda: q.decode(enc)], args.repeats)
        t_copy, t_enc, t_dec = np.median(times, axis=0)
        ratio = (t_enc + t_dec) / t_copy
        t_min = np.min(times, axis=0)
        best = (t_min[1] + t_min[2]) / t_min[0]
        x_hat = q.decode(enc)
        rel = float(np.mean(np.sum((x - x_hat) ** 2, axis=1) / np.sum(x * x, axis=1)))
        rows.append(dict(bits=bits, encode=args.n / t_enc, decode=args.n / t_dec, ratio=ratio))
        print(f"{bits:>4} {args.n / t_enc:>13.3g} {args.n / t_dec:>13.3g} {t_enc * 1e3:>7.1f} "
              f"{t_dec * 1e3:>7.1f} {t_copy * 1e3:>8.2f} {ratio:>14.1f}x {best:>9.1f}x "
              f"{rel / q.expected_mse:>9.4f}")
    return rows


if __name__ == "__main__":
    main()
