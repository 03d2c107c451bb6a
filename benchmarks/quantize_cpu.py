"""Encode/decode throughput of TurboQuantMSE on the CPU, as a ratio to a memory copy.

Usage::

    python benchmarks/quantize_cpu.py [--n 65536] [--d 128] [--bits 2 3 4] [--repeats 7]

For 2**16 float32 vectors at d = 128 it prints, for 2, 3 and 4 bits, the
encode and decode throughput (vectors per second), their CPU time (all
threads) and how many times longer encode + decode take than ``np.copyto``
of the same float32 input. Every round runs the copy and then encode and
decode at every bits, in turn, so that all of them see the same load from
other processes; the figures are medians over ``--repeats`` rounds. Then the
cost of the encoder at the most bits over the fewest, measured in the same
rounds (issue 15's target: at most 1.3 at 4 over 2 bits), by wall time and
by CPU time (CPU time is the steadier figure on a shared machine). The last
column is the measured relative MSE over the codebook's prediction (about 1
for these Gaussian vectors).

Other packages that implement TurboQuant's MSE quantizer in NumPy are timed
beside it when they are installed (never a dependency of this project): for
now ``turboquant-py`` (``import turboquant``), on fewer vectors (it is slower),
with the same d and bits and its own rotation.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import time

import numpy as np

from turboquant_lab.turboquant import TurboQuantMSE


def interleaved_times(fns, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall and CPU times, each ``(repeats, len(fns))``: each round runs every ``fn`` once, in turn.

    Interleaving makes the ratios robust to other load on the machine (all
    entries see the same load). One warm-up round first.
    """
    for fn in fns:
        fn()
    wall = np.empty((repeats, len(fns)))
    cpu = np.empty((repeats, len(fns)))
    for r in range(repeats):
        for j, fn in enumerate(fns):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[r, j] = time.perf_counter() - t0
            cpu[r, j] = time.process_time() - c0
    return wall, cpu


def peers():
    """``{name: (make(d, bits), encode(q, x), decode(q, c))}`` of the installed NumPy peers."""
    found = {}
    try:
        tq = importlib.import_module("turboquant")
        if hasattr(tq, "TurboQuant") and hasattr(tq.TurboQuant, "quantize"):
            version = getattr(tq, "__version__", "?")
            found[f"turboquant-py {version}"] = (
                lambda d, bits: tq.TurboQuant(d, bits, mode="mse", seed=0),
                lambda q, x: q.quantize(x), lambda q, c: q.dequantize(c))
    except Exception:  # noqa: BLE001 (not installed, or another package of that name)
        pass
    return found


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1 << 16, help="number of vectors")
    parser.add_argument("--d", type=int, default=128, help="dimension")
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rotation", default="hadamard", choices=["hadamard", "dense"])
    parser.add_argument("--peer-n", type=int, default=1 << 12, help="vectors for the other packages")
    args = parser.parse_args(argv)

    # not default_rng(0): with the quantizer's seed=0, the dense rotation is the Q of a QR
    # of the very first d x d numbers of that stream, and those d vectors quantize badly
    rng = np.random.default_rng(20240601)
    x = rng.standard_normal((args.n, args.d)).astype(np.float32)
    dst = np.empty_like(x)
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"{args.n} vectors, d={args.d}, float32 ({x.nbytes / 2**20:.0f} MiB), "
          f"rotation={args.rotation!r}; medians of {args.repeats} interleaved rounds")
    qs = {bits: TurboQuantMSE(args.d, bits, seed=0, rotation=args.rotation) for bits in args.bits}
    encs = {bits: q.encode(x) for bits, q in qs.items()}
    fns = [lambda: np.copyto(dst, x)]
    for bits in args.bits:
        fns += [lambda q=qs[bits]: q.encode(x), lambda q=qs[bits], e=encs[bits]: q.decode(e)]
    wall, cpu = interleaved_times(fns, args.repeats)
    med, med_cpu = np.median(wall, axis=0), np.median(cpu, axis=0)
    print(f"{'bits':>4} {'encode vec/s':>13} {'decode vec/s':>13} {'enc ms':>7} {'dec ms':>7} "
          f"{'enc cpu':>8} {'dec cpu':>8} {'copy ms':>8} {'(enc+dec)/copy':>15} {'MSE/pred':>9}")
    rows = []
    for j, bits in enumerate(args.bits):
        t_enc, t_dec = med[1 + 2 * j], med[2 + 2 * j]
        ratio = (t_enc + t_dec) / med[0]
        x_hat = qs[bits].decode(encs[bits])
        rel = float(np.mean(np.sum((x - x_hat) ** 2, axis=1) / np.sum(x * x, axis=1)))
        rows.append(dict(bits=bits, encode=args.n / t_enc, decode=args.n / t_dec, ratio=ratio))
        print(f"{bits:>4} {args.n / t_enc:>13.3g} {args.n / t_dec:>13.3g} {t_enc * 1e3:>7.1f} "
              f"{t_dec * 1e3:>7.1f} {med_cpu[1 + 2 * j] * 1e3:>8.1f} {med_cpu[2 + 2 * j] * 1e3:>8.1f} "
              f"{med[0] * 1e3:>8.2f} {ratio:>14.1f}x {rel / qs[bits].expected_mse:>9.4f}")
    if len(args.bits) > 1:
        lo, hi = 0, len(args.bits) - 1
        per_round = wall[:, 1 + 2 * hi] / wall[:, 1 + 2 * lo]
        per_round_cpu = cpu[:, 1 + 2 * hi] / cpu[:, 1 + 2 * lo]
        print(f"encode at {args.bits[hi]} bits / at {args.bits[lo]} bits: wall {np.median(per_round):.2f} "
              f"(median of per-round ratios), CPU {np.median(per_round_cpu):.2f} "
              f"(target <= 1.3, information only)")
    for name, (make, enc, dec) in peers().items():
        xp = x[: args.peer_n].astype(np.float64)
        for bits in args.bits:
            try:
                q = make(args.d, bits)
                c = enc(q, xp)
                w, _ = interleaved_times([lambda: enc(q, xp), lambda: dec(q, c)], max(3, args.repeats // 2))
            except Exception as err:  # noqa: BLE001 (a peer that does not support this case)
                print(f"{name}: bits={bits}: {type(err).__name__}: {err}")
                continue
            t_enc, t_dec = np.median(w, axis=0)
            print(f"{name:>20} bits={bits}: encode {args.peer_n / t_enc:>10.3g} vec/s, decode "
                  f"{args.peer_n / t_dec:>10.3g} vec/s ({args.peer_n} vectors, float64 input)")
    return rows


if __name__ == "__main__":
    main()
