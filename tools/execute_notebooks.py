#!/usr/bin/env python
"""Re-execute notebooks in place, each in a fresh kernel, and store their outputs.

Usage::

    python tools/execute_notebooks.py                   # every notebook of the course
    python tools/execute_notebooks.py notebooks/03_*.ipynb

Each notebook first gets the Colab set-up cell (tools/colab.py) at its top,
then runs top to bottom with its own folder as the working directory. The
script prints the wall time of each notebook (a lesson must stay under 30 s
on a two-core CPU, the LLM capstone under 60 s) and exits 1 if any cell raised. Execution counts and the
kernel metadata are normalised so that re-running an unchanged notebook
gives the same file.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from colab import ensure_setup_cell  # noqa: E402

FOLDERS = ("notebooks", "solutions", "exercises")
KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


#: Every lesson runs in under 30 s on a two-core CPU; the capstone, which loads and runs a real LLM, in 60 s.
CAPSTONE_BUDGET = {"13_quantized_cache_in_a_real_model.ipynb": 60}


def budget_seconds(path: Path) -> int:
    """The wall-time budget of a lesson notebook, in seconds."""
    return CAPSTONE_BUDGET.get(path.name, 30)


def all_notebooks() -> list[Path]:
    return sorted(p for f in FOLDERS for p in (ROOT / f).glob("*.ipynb"))


def execute(path: Path, timeout: int = 120, allow_errors: bool = False, attempts: int = 3) -> float:
    """Execute ``path`` in place; return the seconds it took.

    nbclient now and then never receives the reply to a cell that displays an
    ipywidgets ``interactive_output`` (jupyter/nbclient#312; reproduced here
    about once in ten runs of lesson 04, with the kernel idle and the client
    waiting), so a cell that times out gets the notebook re-run in a fresh
    kernel, up to ``attempts`` times. Every lesson runs in well under a
    minute, hence the short default ``timeout`` per cell.
    """
    for attempt in range(1, attempts + 1):
        nb = nbformat.read(path, as_version=4)
        ensure_setup_cell(nb)
        nb.metadata["kernelspec"] = KERNEL
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}},
                                allow_errors=allow_errors, record_timing=False)
        start = time.perf_counter()
        try:
            client.execute()
            break
        except CellTimeoutError:
            if attempt == attempts:
                raise
            print(f"  a cell of {_shown(path)} timed out after {timeout} s "
                  f"(attempt {attempt} of {attempts}); running it again", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    if not _has_widget_views(nb):  # widget state is only worth keeping for displayed widgets
        nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return seconds


def _has_widget_views(nb) -> bool:
    return any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.paths] or all_notebooks()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    failed = []
    for path in paths:
        try:
            seconds = execute(path, timeout=args.timeout)
            budget = budget_seconds(path)
            flag = f"  (over the {budget} s budget)" if seconds > budget and "notebooks" in path.parts else ""
            print(f"{seconds:7.1f} s  {_shown(path)}{flag}", flush=True)
        except (CellExecutionError, CellTimeoutError) as exc:
            failed.append(path)
            print(f"  FAILED  {_shown(path)}\n{exc}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
