"""Fixtures of the browser tests: one JupyterLab server and one Chromium for the whole run.

Both skip, with the reason, where Playwright, JupyterLab or Chromium is missing
(``apt-get install chromium``; ``pip install -e ".[dev]"`` brings Playwright;
``TQL_CHROMIUM=/path/to/chrome`` picks another browser). With
``TQL_REQUIRE_BROWSER=1`` (set by ``.ci/run``) they fail instead: CI must run them.
"""
from __future__ import annotations

import os
import shutil
import signal

import pytest
from lab_driver import CHROMIUM_FLAGS, REPORTS, VIEWPORT, LabServer, find_chromium, lessons


def _missing(reason: str):
    if os.environ.get("TQL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"TQL_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[dev]')")
    path = find_chromium()
    if path is None:
        _missing("no Chromium found: apt-get install chromium (or set TQL_CHROMIUM to a Chrome binary)")
    return path


@pytest.fixture(scope="session")
def lab_server(chromium_path, tmp_path_factory):
    """JupyterLab serving copies of notebooks/ (the stored notebooks are never opened)."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        _missing("JupyterLab is not installed (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("lab") / "course"
    shutil.copytree(lessons()[0].parent, root / "notebooks")
    server = LabServer(root)  # in its own session: a SIGTERM to pytest (a CI timeout) does not reach it
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:  # so turn a SIGTERM into an interrupt, which runs the teardown below
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield server
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def browser(chromium_path, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium_path,
            headless=True, args=CHROMIUM_FLAGS, viewport=VIEWPORT)
        context.set_default_timeout(60_000)
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def pytest_terminal_summary(terminalreporter):
    if not REPORTS:
        return
    tr = terminalreporter
    tr.section("lessons in JupyterLab + Chromium (Run All, then each app's first control)")
    for r in REPORTS:
        tr.write_line(f"{r.name}: {r.seconds:.0f} s (Run All {r.run_all_seconds:.0f} s), "
                      f"{r.code_cells} code cells, widget outputs in cells {r.widgets or 'none'}")
        for a in r.apps:
            tr.write_line(f"    {a.summary()} ({a.seconds:.1f} s)")
        for p in r.problems:
            tr.write_line(f"    PROBLEM: {p}")
    tr.write_line(f"total: {sum(r.seconds for r in REPORTS):.0f} s for {len(REPORTS)} lessons")
