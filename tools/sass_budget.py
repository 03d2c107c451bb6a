"""A static instruction budget of the GPU kernels, checkable without a GPU.

Compiles each kernel of ``turboquant_lab/gpu/kernels`` for one architecture
(``nvcc -cubin``, sm_90 by default, with the library's NVRTC options),
disassembles it (``cuobjdump -sass``) and counts the SASS instructions that
one thread issues per element it holds, for a table of kernel x d x bits:

    python tools/sass_budget.py                       # d = 128, 1024, 4096; bits 2, 3, 4
    python tools/sass_budget.py --d 128 --bits 2 4 8
    python tools/sass_budget.py --check               # exit 1 when a kernel is over budget

What is counted
---------------
A thread of a kernel holds ``ELEMS = VEC * CHUNKS`` elements of a row (8 at
d = 128: ``gpu.configs.fwht_config(d).elems``). The count is every
instruction of the kernel's main path (from its entry to its last ``EXIT``)
divided by ``ELEMS``: index arithmetic, loads, signs, butterflies, search,
packing and stores all included. Both sides of a branch count (an upper
bound). Not counted: ``NOP`` padding, the ``BRA`` to itself that ends the
code, and the subroutines placed after the main path that end in ``RET``
(the slow paths of ``__fsqrt_rn`` / ``__frcp_rn`` for subnormal or special
operands, taken only on such inputs). A loop left in the main path (a
backward branch) runs more than once: a loop whose body reads shared memory
and touches neither global memory nor shared stores is a per-element search
loop and is weighted by ``bits`` (the runtime binary search of the kernels
before issue 15); any other loop is a block-strided copy that runs about
once per thread at these sizes and is counted once. The "loops" column says
how many loops were found; the kernels of issue 15 have none (every loop
over elements is unrolled), so their count is exact up to the branch sides.

How the count maps to issue slots and bandwidth (lesson 09's model)
------------------------------------------------------------------
Every lane of an SM's FP32 pipes issues one instruction per clock: a GPU
issues ``fp32_tflops / 2`` lane-instructions per second (the quoted FP32
rate counts a fused multiply-add as two operations; ``gpu.GPU_SPECS``: 33.5
T/s on an H200). A kernel that issues ``I`` instructions per element is
therefore limited to ``fp32_tflops / 2 / I`` elements per second by issue,
and to ``bandwidth / B`` by memory, where ``B`` is the bytes it moves per
element (8 for a float32 FWHT: one read, one write; ``4 + bits / 8`` for the
encode; ``bits / 8 + 4`` for the decode). It keeps up with memory while

    I  <=  (fp32_tflops / 2) * B / bandwidth       (the "limit" column)

(H200: 33.5e12 * B / 4.8e12 = 7.0 B, so 56 for the float32 FWHT and 31 for
encode or decode at 4 bits). Shuffles and shared-memory accesses issue like
any instruction but have their own, slower pipes (a warp shuffle delivers
32 lanes per clock per SM, a quarter of the FP32 rate), so the limit is an
upper bound: the budgets below (encode <= 40 at bits 2-4, decode <= 30,
FWHT <= 20 in float32, at d = 128) leave room for that and for latency.

Needs ``nvcc`` (the CUDA toolkit) and ``cuobjdump`` + ``nvdisasm`` (on PATH,
in ``$CUDA_HOME/bin``, or from the pip wheels ``nvidia-cuda-cuobjdump`` and
``nvidia-cuda-nvdisasm``). Nothing here needs a GPU or CuPy.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from turboquant_lab.gpu import cuda
from turboquant_lab.gpu.configs import GPU_SPECS, fwht_config

#: (kind, d) -> most instructions per element; kind "encode"/"decode" for bits 2-4
BUDGETS = {("fwht float32", 128): 20.0, ("encode", 128): 40.0, ("decode", 128): 30.0}
BUDGET_BITS = (2, 3, 4)

KINDS = ("fwht float32", "fwht float16", "fwht signed", "encode", "decode")

_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;?\s*/\*")


# --------------------------------------------------------------------------- tools


def find_tool(name: str) -> str | None:
    """``name`` on PATH, in ``$CUDA_HOME/bin``, or in a pip ``nvidia`` wheel's ``bin``."""
    found = shutil.which(name)
    if found:
        return found
    dirs = [Path(os.environ[v]) / "bin" for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    try:
        import nvidia  # namespace package of the nvidia-cuda-* wheels

        for root in nvidia.__path__:
            dirs += sorted(Path(root).glob("*/bin"))
    except ImportError:
        pass
    for d in dirs:
        if (d / name).is_file():
            return str(d / name)
    return None


def missing_tools() -> list[str]:
    """The tools this script needs that are not found (empty when it can run)."""
    return [t for t in ("nvcc", "cuobjdump", "nvdisasm") if find_tool(t) is None]


# --------------------------------------------------------------------------- what to compile


def kernel_expression(kind: str, d: int, bits: int) -> tuple[str, str]:
    """``(file, C++ expression naming one instantiation)`` of ``kind`` at ``d`` and ``bits``.

    Uses the launcher's own names (``CudaKernels.name_expression``) when it has them.
    """
    namer = getattr(cuda, "name_expression", None)
    if namer is not None:
        return namer(kind, d, bits)
    # the kernels before issue 15: bits, flags and scale were runtime arguments
    log_d = fwht_config(d).log_d
    if kind.startswith("fwht"):
        t = "half_bits" if kind == "fwht float16" else "float"
        return "fwht.cu", f"fwht_kernel<{t}, {log_d}>"
    return "turboquant.cu", f"tq_{kind}_kernel<{log_d}>"


def compile_sass(file: str, expr: str, arch: str, workdir: Path) -> str:
    """The SASS text of the one instantiation ``expr`` of ``kernels/file``."""
    tag = re.sub(r"\W+", "_", expr)
    src = workdir / f"{tag}.cu"
    # taking the kernel's address instantiates it, whatever its signature
    src.write_text(cuda.kernel_source(file) + f"\nvoid* tq_budget_instance = (void*)&{expr};\n")
    cubin = workdir / f"{tag}.cubin"
    cmd = [find_tool("nvcc"), *cuda.NVRTC_OPTIONS, "-cubin", f"-arch={arch}", "-o", str(cubin), str(src)]
    run = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"nvcc failed on {expr}:\n{run.stderr[-3000:]}")
    env = dict(os.environ, NVDISASM_PATH=str(Path(find_tool("nvdisasm")).parent))
    env["PATH"] = env["NVDISASM_PATH"] + os.pathsep + env.get("PATH", "")
    dump = subprocess.run([find_tool("cuobjdump"), "-sass", str(cubin)], check=False, capture_output=True,
                          text=True, timeout=600, env=env)
    if dump.returncode != 0 or "Function" not in dump.stdout:
        raise RuntimeError(f"cuobjdump failed on {expr}:\n{dump.stderr[-3000:]}")
    return dump.stdout


# --------------------------------------------------------------------------- counting


@dataclass
class Count:
    """Instructions of one kernel instantiation (see the module notes)."""

    total: int           # every instruction of the main path
    weighted: float      # with per-element search loops weighted by bits
    loops: int           # backward branches in the main path
    subroutine: int      # instructions after the main path (slow paths), not counted
    shuffles: int        # SHFL in the main path
    shared: int          # LDS / STS / ATOMS in the main path


def parse(sass: str) -> list[tuple[int, str]]:
    """``[(address, instruction text)]`` of the first function in ``sass``."""
    out = []
    for m in _LINE.finditer(sass):
        out.append((int(m.group(1), 16), m.group(2).strip()))
    return out


def count(sass: str, bits: int) -> Count:
    """Count the main path of the kernel in ``sass``; weight search loops by ``bits``."""
    ins = [(a, t) for a, t in parse(sass) if not t.startswith("NOP")]
    # the main path ends at the last EXIT before the first RET (subroutines follow it)
    first_ret = next((i for i, (_, t) in enumerate(ins) if t.startswith("RET")), len(ins))
    last_exit = max(i for i, (_, t) in enumerate(ins[:first_ret]) if re.search(r"\bEXIT\b", t))
    main, rest = ins[: last_exit + 1], ins[last_exit + 1:]
    rest = [t for _, t in rest if not re.fullmatch(r"BRA 0x[0-9a-f]+", t)]  # the closing self-branch
    addr = {a: i for i, (a, _) in enumerate(main)}
    weighted = float(len(main))
    loops = 0
    for i, (a, t) in enumerate(main):
        m = re.search(r"\bBRA (0x[0-9a-f]+)", t)
        if not m or int(m.group(1), 16) >= a or int(m.group(1), 16) not in addr:
            continue
        loops += 1
        body = [x for _, x in main[addr[int(m.group(1), 16)]: i + 1]]
        ops = " ".join(x.split()[0] if not x.startswith("@") else x.split()[1] for x in body)
        search = "LDS" in ops and not re.search(r"\b(LDG|STG|STS|ATOMS|ATOMG|RED)", ops)
        if search:
            weighted += (bits - 1) * len(body)
    ops = [t.split()[1] if t.startswith("@") else t.split()[0] for _, t in main]
    return Count(len(main), weighted, loops, len(rest),
                 sum(o.startswith("SHFL") for o in ops),
                 sum(o.split(".")[0] in ("LDS", "STS", "ATOMS") for o in ops))


# --------------------------------------------------------------------------- the table


def bytes_per_element(kind: str, bits: int) -> float:
    """Bytes one element moves to or from memory (read + write)."""
    if kind == "fwht float16":
        return 4.0
    if kind.startswith("fwht"):
        return 8.0
    return 4.0 + bits / 8.0


def issue_limit(kind: str, bits: int, gpu: str = "H200 SXM") -> float:
    """Instructions per element at which issue and memory take the same time on ``gpu``."""
    s = GPU_SPECS[gpu]
    return s["fp32_tflops"] * 1e12 / 2 * bytes_per_element(kind, bits) / (s["bandwidth_gbs"] * 1e9)


def budget(kind: str, d: int, bits: int) -> float | None:
    if kind.startswith("fwht"):
        return BUDGETS.get((kind, d))
    return BUDGETS.get((kind, d)) if bits in BUDGET_BITS else None


def measure(ds, bits_list, kinds=KINDS, arch: str = "sm_90", jobs: int = 2) -> list[dict]:
    """One row per kernel x d x bits (fwht rows do not depend on bits: one per d)."""
    todo = []
    for kind in kinds:
        for d in ds:
            for bits in (bits_list if not kind.startswith("fwht") else bits_list[:1]):
                todo.append((kind, d, bits))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        def one(job):
            kind, d, bits = job
            file, expr = kernel_expression(kind, d, bits)
            c = count(compile_sass(file, expr, arch, Path(tmp)), bits)
            elems = fwht_config(d).elems
            return dict(kind=kind, d=d, bits=None if kind.startswith("fwht") else bits, expr=expr,
                        per_element=c.weighted / elems, total=c.total, loops=c.loops,
                        shuffles=c.shuffles / elems, shared=c.shared / elems,
                        subroutine=c.subroutine, limit=issue_limit(kind, bits),
                        budget=budget(kind, d, bits))
        return list(pool.map(one, todo))


def print_table(rows, arch: str) -> None:
    print(f"SASS instructions per element, {arch} (nvcc -cubin {' '.join(cuda.NVRTC_OPTIONS)}); "
          f"main path / elements per thread;\nlimit = instructions per element at which an H200 "
          f"is as fast by issue as by memory (GPU_SPECS)\n")
    head = (f"{'kernel':<14} {'d':>5} {'bits':>4} {'instr/elem':>10} {'SHFL/elem':>9} "
            f"{'smem/elem':>9} {'loops':>5} {'limit':>6} {'budget':>7}  verdict")
    print(head)
    print("-" * len(head))
    for r in rows:
        b = r["budget"]
        verdict = "" if b is None else ("ok" if r["per_element"] <= b else "OVER BUDGET")
        approx = "~" if r["loops"] else " "
        print(f"{r['kind']:<14} {r['d']:>5} {r['bits'] if r['bits'] is not None else '-':>4} "
              f"{approx}{r['per_element']:>9.1f} {r['shuffles']:>9.2f} {r['shared']:>9.2f} "
              f"{r['loops']:>5} {r['limit']:>6.0f} {'' if b is None else f'{b:.0f}':>7}  {verdict}")
    print("\n~ : the kernel has runtime loops (counted as the module notes say)")


def over_budget(rows) -> list[dict]:
    return [r for r in rows if r["budget"] is not None and r["per_element"] > r["budget"]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, nargs="+", default=[128, 1024, 4096])
    p.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--arch", default="sm_90")
    p.add_argument("--jobs", type=int, default=2, help="parallel nvcc runs")
    p.add_argument("--check", action="store_true", help="exit 1 when a kernel is over budget")
    args = p.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"cannot count: {', '.join(missing)} not found (CUDA toolkit; pip install "
              f"nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)")
        return 2
    rows = measure(args.d, args.bits, args.kinds, args.arch, args.jobs)
    print_table(rows, args.arch)
    over = over_budget(rows)
    if args.check and over:
        print("over budget: " + ", ".join(f"{r['kind']} d={r['d']} bits={r['bits']}" for r in over))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
