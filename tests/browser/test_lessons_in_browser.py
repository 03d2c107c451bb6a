"""Every lesson in a real browser: JupyterLab, Run All, every output and every app checked.

For each ``notebooks/NN_name.ipynb`` (a copy of it, served by one JupyterLab for
the whole run), as a learner would: open it, *Run > Run All Cells*, wait for
the kernel, then scroll through the whole notebook and check that

- every code cell ran, in order, in the fresh kernel, and no output is an error;
- no widget shows "Error displaying widget" or stays at "Loading widget...";
- every app (a cell starting with ``# NBVAL_IGNORE_OUTPUT`` whose stored output
  is a widget) is shown as a widget, not as the text fallback of its ``repr``
  (``VBox(children=(...``);
- moving each app's first control (slider, dropdown, toggle, button) changes
  what it displays: a screenshot of the app, its controls masked, differs
  before and after;

then shut the lesson's kernel down. Run with ``pytest -m browser``; skipped
without Playwright or Chromium (see conftest.py). The terminal summary lists,
per lesson, the widgets found, the controls driven and what changed.
"""
from __future__ import annotations

import json
import time

import pytest
from lab_driver import REPORTS, WIDGET_VIEW, Lesson, LessonReport, app_cells, lessons

pytestmark = pytest.mark.browser

STUCK = ("Error displaying widget", "Loading widget")


def _widget_reprs(nb: dict, index: int) -> list[str]:
    """The text/plain of the cell's stored widget outputs: what the page shows if a widget fails to render."""
    return ["".join(o["data"].get("text/plain", ""))[:40] for o in nb["cells"][index].get("outputs", [])
            if WIDGET_VIEW in o.get("data", {})]


def _check_run(saved: dict, problems: list[str]) -> int:
    code = [(i, c) for i, c in enumerate(saved["cells"])
            if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c.get("execution_count") for _, c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"not every code cell ran once, in order, in the fresh kernel: counts {counts}")
    for i, c in code:
        for o in c.get("outputs", []):
            if o["output_type"] == "error":
                problems.append(f"cell {i} raised {o.get('ename')}: {o.get('evalue', '')[:200]}")
    return len(code)


def _check_shown(lesson: Lesson, stored: dict, apps: list[int], report: LessonReport) -> None:
    shown = lesson.cells()
    missing = sorted(set(range(len(stored["cells"]))) - set(shown))
    if missing:
        report.problems.append(f"cells {missing} never appeared while scrolling through the notebook")
    for _ in range(40):  # a widget may still be loading: give it up to 20 s
        loading = [i for i, c in shown.items() for o in c["outputs"]
                   if o["text"].startswith("Loading widget")]
        if not loading:
            break
        lesson.page.wait_for_timeout(500)
        for i in loading:
            lesson.cell(i)
        shown.update({c["index"]: c for c in lesson.visible_cells() if c["index"] in loading})
    for i, c in sorted(shown.items()):
        for o in c["outputs"]:
            if any(s in o["text"] for s in STUCK):
                report.problems.append(f"cell {i} shows {o['text'][:80]!r}")
            if o["widget"]:
                report.widgets.append(i)
    report.widgets = sorted(set(report.widgets))
    for i in apps:
        outputs = shown.get(i, {}).get("outputs", [])
        fallback = [o["text"][:80] for o in outputs if not o["widget"]
                    and any(r and o["text"].startswith(r) for r in _widget_reprs(stored, i))]
        if fallback or not any(o["widget"] for o in outputs):
            report.problems.append(f"cell {i}: the app is not shown as a widget; the page shows "
                                   f"{[o['text'][:80] for o in outputs]}")


@pytest.mark.parametrize("path", lessons(), ids=lambda p: p.stem)
def test_lesson_runs_in_jupyterlab_and_its_apps_respond(path, lab_server, page, tmp_path):
    start = time.monotonic()
    report = LessonReport(path.stem)
    REPORTS.append(report)
    stored = json.loads(path.read_text())
    apps = app_cells(stored)
    lesson = Lesson(page, lab_server, path.name)
    try:
        lesson.open()
        report.run_all_seconds = lesson.run_all()
        _check_shown(lesson, stored, apps, report)
        report.code_cells = _check_run(lesson.save(), report.problems)
        if not report.problems:  # drive the apps only when every one of them rendered
            for i in apps:
                try:
                    result = lesson.drive_app(i)
                except Exception as exc:  # noqa: BLE001 (reported with the lesson's other problems)
                    report.problems.append(f"cell {i}: driving the app failed: {exc}")
                    continue
                report.apps.append(result)
                if result.changed_pixels == 0:
                    report.problems.append(f"cell {i}: moving {result.control} ({result.before!r} -> "
                                           f"{result.after!r}) did not change what the app displays")
    except Exception:
        page.screenshot(path=tmp_path / "page.png")
        print(f"the page when it failed: {tmp_path / 'page.png'}")
        raise
    finally:
        lab_server.shut_down_kernels()
        report.seconds = time.monotonic() - start
    if report.problems:
        page.screenshot(path=tmp_path / "page.png")
        report.problems.append(f"the page at the end: {tmp_path / 'page.png'}")
    assert not lab_server.kernels(), "the lesson's kernel is still running"
    assert not report.problems, f"{path.name} in JupyterLab:\n" + "\n".join(report.problems)
