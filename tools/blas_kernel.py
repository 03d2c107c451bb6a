"""Print the name of a second OpenBLAS kernel to run the library tests under.

numpy's bundled OpenBLAS picks its compute kernel per CPU (SkylakeX with
AVX-512, Haswell with AVX2 only, ...), and kernels round products
differently. ``make test`` runs the library tests a second time with
``OPENBLAS_CORETYPE`` set to what this script prints, so that a test which
relies on one kernel's rounding fails on the machine where it is written,
not on the next one.

    python tools/blas_kernel.py           # e.g. "Haswell" on an AVX-512 machine
    python tools/blas_kernel.py --native  # the kernel this machine picks

Prints nothing when numpy does not use OpenBLAS or the CPU family has no
known alternative (the Makefile then skips the second run).
"""
from __future__ import annotations

import platform
import sys

# A second kernel that every CPU of the family can run, given the native one.
_ALTERNATIVES = {
    "x86_64": ("Haswell", "Sandybridge"),   # AVX2 machines without AVX-512; AVX only
    "AMD64": ("Haswell", "Sandybridge"),
    "aarch64": ("ARMV8", "NEOVERSEN1"),
    "arm64": ("ARMV8", "NEOVERSEN1"),
}


def native_kernel() -> str | None:
    import numpy  # noqa: F401  (loads OpenBLAS, so that threadpoolctl sees it)
    from threadpoolctl import threadpool_info

    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas":
            return lib.get("architecture")
    return None


def other_kernel(native: str | None) -> str | None:
    if native is None:
        return None
    first, second = _ALTERNATIVES.get(platform.machine(), (None, None))
    if first is None:
        return None
    return second if native.lower() == first.lower() else first


def main(argv: list[str]) -> int:
    native = native_kernel()
    name = native if "--native" in argv else other_kernel(native)
    if name:
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
