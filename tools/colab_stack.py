#!/usr/bin/env python
"""Run the course on Google Colab's stack: every lesson headless, then the widget tests.

Usage::

    python tools/colab_stack.py build   # (re)create .venv-colab from requirements/colab.txt
    .venv-colab/bin/python tools/colab_stack.py run      # what `make test-colab` runs

``build`` makes a second virtual environment, ``.venv-colab``, pinned to
Colab's runtime (``requirements/colab.txt``: ipywidgets 7.7.1, numpy 2.1,
matplotlib 3.10, IPython 7.34, ...) with the course installed into it, and
what the Colab set-up cell installs with ``--no-deps`` (``colab-no-deps.txt``). It
uses Python 3.12, as Colab does, where it finds one (``COLAB_PYTHON``, then
``python3.12`` on the PATH, then pyenv's), else the Python running it. pip's
cache is reused; ``make`` rebuilds only when the requirements or
pyproject.toml change (the stamp ``.venv-colab/.installed``).

``run`` (inside that environment) prints the Python and the version of every
pinned package and fails if one differs from its pin; executes every lesson
in ``notebooks/`` top to bottom in a fresh kernel of this environment, on a
copy in memory (the stored notebooks are never written), and checks that no
cell raised, that the kernel really ran the pinned ipywidgets and numpy, and
that no displayed app has an empty Output; then drives each enabled control
of the lesson once, in the kernel (the next menu option, a slider's minimum,
a click), and checks that what the lesson shows changed (its Output, HTML
and Label widgets as nbclient, the stand-in front end, records them) and that
no app shows an error. Last it runs the widget tests (``tests/course``) with
pytest. It prints each lesson's wall time, what was driven, and the total,
and exits 1 if anything failed.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements" / "colab.txt"
NO_DEPS = ROOT / "requirements" / "colab-no-deps.txt"  # as the Colab set-up cell installs them
VENV = ROOT / ".venv-colab"
STAMP = VENV / ".installed"

# Appended to every lesson's copy, after its own cells: which stack the kernel runs, and its
# controls (every enabled slider, menu, toggle, box and button the lesson made, in the order it made them).
_PROBE = """\
import sys, numpy, ipywidgets, matplotlib
print("KERNEL", sys.executable, ipywidgets.__version__, numpy.__version__, matplotlib.__version__)
_tql_live = getattr(ipywidgets.widgets.widget, "_instances", None)  # ipywidgets 8
if _tql_live is None:
    _tql_live = ipywidgets.Widget.widgets  # ipywidgets 7
_tql_controls = [w for w in list(_tql_live.values())
                 if w._model_name in {controls!r} and not getattr(w, "disabled", False)]
print("CONTROLS", len(_tql_controls))

def _tql_drive(i):
    w = _tql_controls[i]
    if w._model_name == "ButtonModel":
        w.click()
        return f"clicked {{w.description!r}}"
    if hasattr(w, "_options_values"):  # menus, toggles, selection sliders: the next option
        values = list(w._options_values)
        w.value = values[(values.index(w.value) + 1) % len(values)]
    elif isinstance(w.value, bool):  # check boxes, toggle buttons
        w.value = not w.value
    elif hasattr(w, "min"):  # sliders, bounded number boxes: the minimum, or one step up from it
        w.value = w.min if w.value != w.min else min(w.value + w.step, w.max)
    else:  # number boxes: one up
        w.value = w.value + 1
    return f"{{w._model_name[:-5]}} {{w.description!r}} -> {{w.value!r}}"
"""
_CONTROLS = {"IntSliderModel", "FloatSliderModel", "SelectionSliderModel", "DropdownModel",
             "ToggleButtonsModel", "RadioButtonsModel", "CheckboxModel", "ToggleButtonModel", "ButtonModel",
             "IntTextModel", "FloatTextModel", "BoundedIntTextModel", "BoundedFloatTextModel"}
_SHOWN = {"OutputModel": "outputs", "HTMLModel": "value", "LabelModel": "value", "HTMLMathModel": "value"}


def pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """``{name: version}`` of every ``name==version`` line of a requirements file (names normalised)."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#;]+)", line)
        if m:
            out[_norm(m.group(1))] = m.group(2)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _python_for_colab() -> str:
    """The interpreter for the environment: Colab's 3.12 where there is one, else this one."""
    candidates = [os.environ.get("COLAB_PYTHON"), shutil.which("python3.12")]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    for exe in filter(None, candidates):
        ok = subprocess.run([exe, "-c", "import sys, venv, ssl; sys.exit(sys.version_info[:2] < (3, 10))"],
                            check=False, capture_output=True).returncode == 0  # pyenv's shims exist but may not run
        if ok:
            return exe
    return sys.executable


def build() -> int:
    exe = _python_for_colab()
    version = subprocess.run([exe, "--version"], check=False, capture_output=True, text=True).stdout.strip()
    print(f"building {VENV.name} with {version} ({exe}) from {REQUIREMENTS.relative_to(ROOT)}", flush=True)
    shutil.rmtree(VENV, ignore_errors=True)  # from scratch: no package left over from older pins
    subprocess.run([exe, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-r", str(REQUIREMENTS), "-e", str(ROOT)], check=True)
    subprocess.run(pip + ["--no-deps", "-r", str(NO_DEPS)], check=True)
    STAMP.touch()
    return 0


def _check_versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    print(f"Colab stack: Python {sys.version.split()[0]} ({sys.executable})")
    wrong = []
    for name, pinned in {**pins(), **pins(NO_DEPS)}.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = "missing"
        flag = "" if have == pinned else f"   <-- pinned {pinned}"
        print(f"  {name:20s} {have}{flag}")
        if have != pinned:
            wrong.append(f"{name} {have} (pinned {pinned})")
    return wrong


class LessonRun:
    """What running one lesson on this stack showed (see :func:`execute_lesson`)."""

    def __init__(self):
        self.seconds = 0.0
        self.probe = ""
        self.views = 0           # widget views the lesson's cells displayed
        self.driven = []         # (what was done, whether what the lesson shows changed)
        self.problems = []
        self.cell_seconds = {}   # cell index: wall time


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")


def _shown_state(state: dict) -> dict:
    """``{model id: what it shows}`` for every Output, HTML and Label model in nbclient's widget state."""
    return {mid: json.dumps(s.get(_SHOWN[s.get("_model_name")]), sort_keys=True)
            for mid, s in state.items() if s.get("_model_name") in _SHOWN}


def _tree(state: dict, roots: list[str]) -> set[str]:
    """The model ids reachable from ``roots`` through ``IPY_MODEL_`` references (children, ...)."""
    seen, todo = set(), list(roots)
    while todo:
        mid = todo.pop()
        if mid in seen:
            continue
        seen.add(mid)
        todo += re.findall(r"IPY_MODEL_(\w+)", json.dumps(state.get(mid, {})))
    return seen


async def _run_lesson(client, nb, result: LessonRun):
    from nbclient.util import ensure_async
    from nbformat.v4 import new_code_cell

    async def run_cell(source=None, index=None):
        if source is not None:
            nb.cells.append(new_code_cell(source))
            index = len(nb.cells) - 1
        start = time.perf_counter()
        cell = await client.async_execute_cell(nb.cells[index], index)
        result.cell_seconds[index] = time.perf_counter() - start
        return cell

    async with client.async_setup_kernel():
        await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
        for index in range(len(nb.cells)):
            await run_cell(index=index)
        views = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
                 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        result.views = len(views)
        state = client.widget_state
        for mid in sorted(_tree(state, views)):
            if mid not in state:
                result.problems.append(f"a displayed widget refers to model {mid}, which the kernel never made")
            elif state[mid].get("_model_name") == "OutputModel" and not state[mid].get("outputs"):
                result.problems.append(f"an Output widget of a displayed app is empty (model {mid})")
        probe = _stdout(await run_cell(_PROBE.format(controls=_CONTROLS)))
        result.probe = next((ln for ln in probe.splitlines() if ln.startswith("KERNEL")), "")
        n = int(re.search(r"CONTROLS (\d+)", probe).group(1))
        async def drive(i):
            before = _shown_state(client.widget_state)
            did = _stdout(await run_cell(f"print(_tql_drive({i}))")).strip()
            return did, _shown_state(client.widget_state) != before

        result.driven = [await drive(i) for i in range(n)]
        for i, (did, changed) in reversed(list(enumerate(result.driven))):  # Back or Reset at the start: again, after the rest
            if not changed and did.startswith("clicked"):
                did, changed = await drive(i)
                result.driven[i] = (did + " (again, after the other controls)", changed)
    for mid, s in client.widget_state.items():  # a callback that raised inside `with out:`
        for o in s.get("outputs", []) if s.get("_model_name") == "OutputModel" else []:
            if o.get("output_type") == "error":
                result.problems.append(f"an app's Output shows an error: {o.get('ename')}: {o.get('evalue')}")


def _run_coroutine(coro):
    """``asyncio.run(coro)``, in a thread of its own when this thread already runs an event loop
    (in a pytest session, Playwright's sync API keeps one running in the main thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def execute_lesson(path: Path, timeout: int = 120, attempts: int = 3) -> LessonRun:
    """Run a copy of ``path`` in a fresh kernel, then drive each of its controls once.

    Raises if a cell (or a control's callback) raised. Returns a :class:`LessonRun`:
    the probe line (interpreter and versions the kernel ran), the widget views
    displayed, each control driven and whether what the lesson shows (its
    Output, HTML and Label widgets, as nbclient records them) changed, and the
    problems found: a displayed app with an empty Output, a reference to a
    model that does not exist, an error shown inside an app.

    Like tools/execute_notebooks.py, a cell that times out (nbclient never gets
    the reply to a widget cell now and then, jupyter/nbclient#312) gets the
    notebook re-run in a fresh kernel, up to ``attempts`` times.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    for attempt in range(1, attempts + 1):
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        result = LessonRun()
        start = time.perf_counter()
        try:
            _run_coroutine(_run_lesson(client, nb, result))
            break
        except CellTimeoutError:
            if attempt == attempts:
                raise
            print(f"  a cell of {path.name} timed out (attempt {attempt} of {attempts}); running it again",
                  flush=True)
    result.seconds = time.perf_counter() - start
    for i, cell in enumerate(nb.cells):  # what a learner would see as a warning
        for o in cell.get("outputs", []):
            if o.get("name") == "stderr" and "Warning" in o.get("text", ""):
                print(f"  cell {i} of {path.name} warns: {o['text'].strip()[:300]}", flush=True)
    return result


def run(lessons: list[Path], tests: bool) -> int:
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's notes on Python 3.12
    t0 = time.perf_counter()
    failed = [f"version: {w}" for w in _check_versions()]
    want = pins()
    expected = (sys.executable, want["ipywidgets"], want["numpy"], want["matplotlib"])
    for path in lessons:
        try:
            lesson = execute_lesson(path)
        except Exception as exc:  # noqa: BLE001 (a cell raised or timed out: report it, go on)
            failed.append(f"lesson {path.name}")
            print(f"  FAILED  {path.name}\n{str(exc)[-3000:]}", flush=True)
            continue
        if tuple(lesson.probe.split()[1:]) != expected:
            failed.append(f"lesson {path.name} ran on another stack: {lesson.probe!r}")
        changed = sum(c for _, c in lesson.driven)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{lesson.seconds:7.1f} s  {shown}: {lesson.views} widget views, "
              f"{len(lesson.driven)} controls driven, {changed} changed what the lesson shows", flush=True)
        slow = {i: t for i, t in lesson.cell_seconds.items() if t > 20}
        if slow:
            print("           slow cells: " + ", ".join(f"{i} ({t:.0f} s)" for i, t in slow.items()), flush=True)
        for did, c in lesson.driven:
            print(f"           {did}: {'changed' if c else 'NOTHING CHANGED'}", flush=True)
        lesson.problems += [f"{did}: nothing it shows changed" for did, c in lesson.driven if not c]
        for problem in lesson.problems:
            print(f"  PROBLEM  {problem}", flush=True)
            failed.append(f"lesson {path.name}: {problem}")
    if tests:
        print("widget tests (tests/course) on the Colab stack", flush=True)
        rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-o", "addopts=-ra", "tests/course"], check=False, cwd=ROOT).returncode
        if rc:
            failed.append(f"tests/course (pytest exit {rc})")
    minutes = (time.perf_counter() - t0) / 60
    if failed:
        print(f"Colab stack: FAILED ({minutes:.1f} min):\n  " + "\n  ".join(failed), flush=True)
        return 1
    what = " and the widget tests passed" if tests else ""
    print(f"Colab stack: {len(lessons)} lessons ran, every control drove its app{what} ({minutes:.1f} min)",
          flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="(re)create .venv-colab from requirements/colab.txt")
    r = sub.add_parser("run", help="run the lessons and the widget tests (inside .venv-colab)")
    r.add_argument("lessons", nargs="*", type=Path, help="notebooks (default: every lesson in notebooks/)")
    r.add_argument("--no-tests", action="store_true", help="only the lessons")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build()
    lessons = [p.resolve() for p in args.lessons] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    return run(lessons, tests=not args.no_tests)


if __name__ == "__main__":
    sys.exit(main())
