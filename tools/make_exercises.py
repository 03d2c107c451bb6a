#!/usr/bin/env python
"""Generate exercises/NN_*.ipynb from solutions/NN_*.ipynb, or check that they are in sync.

Usage::

    python tools/make_exercises.py                 # regenerate and execute every exercise notebook
    python tools/make_exercises.py solutions/03_rotate_first.ipynb
    python tools/make_exercises.py --check         # exit 1 and name the stale ones; writes nothing

The solution notebook is the one source (like fastbook's ``clean.py``). In it:

* code between a ``### BEGIN SOLUTION`` line and a ``### END SOLUTION`` line
  is the answer. Inside a function (an indented block) it becomes
  ``raise NotImplementedError("your code here")`` at the same indentation, so
  the signature and the docstring above it stay; at the top level of a cell
  it becomes the comment ``# your code here`` so that the exercise notebook
  still runs top to bottom;
* a markdown cell's ``<!-- BEGIN ANSWER -->`` ... ``<!-- END ANSWER -->``
  block (a model answer to a written question) becomes
  ``*Write your answer here.*``.

Every other cell is copied as it is (the Colab set-up cell included). The
generated notebook has its outputs cleared and is then executed in a fresh
kernel (``tools/execute_notebooks.py``), so it is stored executed: the
checkers print "not attempted yet".

``--check`` compares what the generator would write with the stored
exercise notebooks by cell type and source only (outputs are not compared)
and reports every exercise notebook that is stale, missing, or has no
solution notebook. ``tests/test_exercises.py`` runs it.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
sys.path.insert(0, str(ROOT / "tools"))
from colab import ensure_setup_cell  # noqa: E402

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_ANSWER = "<!-- BEGIN ANSWER -->"
END_ANSWER = "<!-- END ANSWER -->"
STUB = 'raise NotImplementedError("your code here")'
TOP_LEVEL_STUB = "# your code here"
ANSWER_STUB = "*Write your answer here.*"

_ANSWER_RE = re.compile(re.escape(BEGIN_ANSWER) + r".*?" + re.escape(END_ANSWER), re.DOTALL)


class SolutionMarkerError(ValueError):
    """A solution or answer block that is not closed, or closed without being opened."""


def strip_solution(source: str, where: str = "cell") -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block of a code cell.

    Parameters
    ----------
    source : str
        The cell's source.
    where : str
        Names the cell in error messages.

    Returns
    -------
    str
        The source with each block (its marker lines included) replaced by one
        line: ``raise NotImplementedError("your code here")`` at the block's
        indentation inside a function, ``# your code here`` at the top level.

    Raises
    ------
    SolutionMarkerError
        For a block that is not closed, an end without a begin, or a nested begin.
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped == BEGIN_SOLUTION:
            if inside:
                raise SolutionMarkerError(f"{where}, line {number}: {BEGIN_SOLUTION} inside "
                                          f"another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + (STUB if indent else TOP_LEVEL_STUB))
        elif stripped == END_SOLUTION:
            if not inside:
                raise SolutionMarkerError(f"{where}, line {number}: {END_SOLUTION} without "
                                          f"{BEGIN_SOLUTION}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise SolutionMarkerError(f"{where}: {BEGIN_SOLUTION} is never closed by {END_SOLUTION}")
    return "\n".join(out)


def strip_answer(source: str, where: str = "cell") -> str:
    """Replace each ``<!-- BEGIN ANSWER -->`` ... ``<!-- END ANSWER -->`` block by the stub."""
    stripped = _ANSWER_RE.sub(ANSWER_STUB, source)
    if BEGIN_ANSWER in stripped or END_ANSWER in stripped:
        raise SolutionMarkerError(f"{where}: an answer block is not closed (or not opened)")
    return stripped


def make_exercise(solution_nb) -> nbformat.NotebookNode:
    """The exercise notebook for a solution notebook: stubs in, outputs out, set-up cell first."""
    nb = nbformat.from_dict(solution_nb)  # a deep copy
    for index, cell in enumerate(nb.cells):
        where = f"cell {index}"
        if cell.cell_type == "code":
            cell.source = strip_solution(cell.source, where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = strip_answer(cell.source, where)
    ensure_setup_cell(nb)
    return nb


def exercise_path(solution: Path) -> Path:
    return EXERCISES / solution.name


def _signature(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def stale(solution: Path) -> str | None:
    """Why the exercise notebook of ``solution`` is out of date, or None when it is in sync."""
    target = exercise_path(solution)
    if not target.exists():
        return "missing"
    expected = make_exercise(nbformat.read(solution, as_version=4))
    stored = nbformat.read(target, as_version=4)
    a, b = _signature(expected), _signature(stored)
    if a == b:
        return None
    if len(a) != len(b):
        return f"{len(b)} cells, the solution gives {len(a)}"
    first = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return f"cell {first} differs"


def check(solutions: list[Path]) -> int:
    problems = []
    for solution in solutions:
        try:
            reason = stale(solution)
        except SolutionMarkerError as exc:
            reason = f"bad markers in the solution: {exc}"
        if reason:
            problems.append(f"{exercise_path(solution).relative_to(ROOT)}: {reason}")
    known = {s.name for s in sorted(SOLUTIONS.glob("*.ipynb"))}
    for orphan in sorted(EXERCISES.glob("*.ipynb")):
        if orphan.name not in known:
            problems.append(f"{orphan.relative_to(ROOT)}: no solutions/{orphan.name}")
    if problems:
        print("Stale exercise notebooks (run `python tools/make_exercises.py`):")
        for p in problems:
            print("  " + p)
        return 1
    print(f"{len(solutions)} exercise notebooks are in sync with their solutions.")
    return 0


def generate(solutions: list[Path], execute_them: bool = True) -> int:
    from execute_notebooks import execute  # noqa: PLC0415 (needs nbclient only here)

    EXERCISES.mkdir(exist_ok=True)
    failed = 0
    for solution in solutions:
        target = exercise_path(solution)
        nbformat.write(make_exercise(nbformat.read(solution, as_version=4)), target)
        if not execute_them:
            print(f"  written  {target.relative_to(ROOT)}")
            continue
        try:
            seconds = execute(target)
            print(f"{seconds:7.1f} s  {target.relative_to(ROOT)}", flush=True)
        except Exception as exc:  # a cell raised: the exercise must run untouched
            failed += 1
            print(f"  FAILED  {target.relative_to(ROOT)}\n{exc}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="solution notebooks (default: solutions/*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if an exercise notebook is stale")
    parser.add_argument("--no-execute", action="store_true",
                        help="write the exercise notebooks without executing them")
    args = parser.parse_args(argv)
    solutions = [p.resolve() for p in args.paths] or sorted(SOLUTIONS.glob("*.ipynb"))
    if args.check:
        return check(solutions)
    return generate(solutions, execute_them=not args.no_execute)


if __name__ == "__main__":
    sys.exit(main())
