"""Encode + decode time of PolarQuant on the CPU, as a ratio to TurboQuantMSE measured in the same run.

Usage::

    python benchmarks/polar_cpu.py [--n 65536] [--d 128] [--repeats 7] [--rotation hadamard]

For 2**16 float32 vectors at d = 128 it times PolarQuant at the paper's
setting (4, 2, 2, 2) (3.875 bits per coordinate) and at (2, 2, 2, 2) and
(4, 3, 3, 3), and TurboQuantMSE at 2, 3 and 4 bits, every codec once per
round, round after round, so that all see the same load from other processes
(the figures are medians over ``--repeats`` rounds). It prints each codec's
encode and decode time, its bits per coordinate and its measured relative
MSE, and the ratio of PolarQuant's encode + decode time to TurboQuantMSE's at
the nearest bits per coordinate. The target is a ratio of at most 3.

Where the time goes (PolarQuant, NumPy): the rotation is the same as
TurboQuantMSE's; level 1 takes one ``arctan2`` per pair of coordinates, the
levels above only multiply-and-compare squared radii, and decoding looks up
``(cos, sin)`` pairs and multiplies down the tree.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from turboquant_lab.polar import PolarQuant
from turboquant_lab.turboquant import TurboQuantMSE

POLAR = [(4, 2, 2, 2), (2, 2, 2, 2), (4, 3, 3, 3)]
TURBO = [2, 3, 4]


def interleaved_times(fns, repeats: int) -> np.ndarray:
    """Wall times, shape ``(repeats, len(fns))``: each round runs every ``fn`` once (after a warm-up)."""
    for fn in fns:
        fn()
    times = np.empty((repeats, len(fns)))
    for r in range(repeats):
        for j, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[r, j] = time.perf_counter() - t0
    return times


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1 << 16, help="number of vectors")
    parser.add_argument("--d", type=int, default=128, help="dimension")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rotation", default="hadamard", choices=["hadamard", "dense"])
    args = parser.parse_args(argv)

    rng = np.random.default_rng(20240601)
    x = rng.standard_normal((args.n, args.d)).astype(np.float32)
    codecs = [(f"PolarQuant {lb}", PolarQuant(args.d, lb, seed=0, rotation=args.rotation)) for lb in POLAR]
    codecs += [(f"TurboQuantMSE {b} bits", TurboQuantMSE(args.d, b, seed=0, rotation=args.rotation))
               for b in TURBO]
    encoded = [q.encode(x) for _, q in codecs]
    fns = []
    for (_, q), enc in zip(codecs, encoded):
        fns += [lambda q=q: q.encode(x), lambda q=q, enc=enc: q.decode(enc)]
    med = np.median(interleaved_times(fns, args.repeats), axis=0).reshape(-1, 2)

    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}; {args.n} vectors, "
          f"d={args.d}, float32, rotation={args.rotation!r}; medians of {args.repeats} interleaved rounds")
    print(f"{'codec':>28} {'bits/coord':>10} {'enc ms':>7} {'dec ms':>7} {'enc+dec ms':>10} {'rel MSE':>8}")
    rows = {}
    for (name, q), enc, (t_enc, t_dec) in zip(codecs, encoded, med):
        x_hat = q.decode(enc)
        rel = float(np.mean(np.sum((x - x_hat) ** 2, axis=1) / np.sum(x * x, axis=1)))
        rows[name] = dict(bpc=enc.bits_per_coordinate, enc=t_enc, dec=t_dec, mse=rel)
        print(f"{name:>28} {enc.bits_per_coordinate:>10.4g} {t_enc * 1e3:>7.1f} {t_dec * 1e3:>7.1f} "
              f"{(t_enc + t_dec) * 1e3:>10.1f} {rel:>8.4f}")
    print("PolarQuant (encode + decode) / TurboQuantMSE (encode + decode), nearest bits per coordinate:")
    turbo = [r for name, r in rows.items() if name.startswith("Turbo")]
    ratios = {}
    for name, r in rows.items():
        if not name.startswith("Polar"):
            continue
        t = min(turbo, key=lambda s: abs(s["bpc"] - r["bpc"]))
        ratios[name] = (r["enc"] + r["dec"]) / (t["enc"] + t["dec"])
        print(f"  {name} ({r['bpc']:.4g} bits) vs TurboQuantMSE at {t['bpc']:.4g} bits: "
              f"{ratios[name]:.2f}x  (target <= 3x)")
    return ratios


if __name__ == "__main__":
    main()
