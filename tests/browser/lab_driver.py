"""Drives the course's lessons in JupyterLab, in a real Chromium, through Playwright.

Used by ``test_lessons_in_browser.py``. Playwright is imported by the caller (the
fixtures in ``conftest.py``), never here, so that this module imports on a
machine without it.

A learner's view of a lesson: JupyterLab serving copies of the notebooks (one
server for the whole run, started as ``make lab`` starts it), a notebook opened
in a fresh workspace, *Run > Run All Cells*, then every cell scrolled into view.
JupyterLab renders notebooks windowed (only the cells near the viewport are
laid out, or attached at all), so the apps' output arrives while their cell is
out of view, as it does for a learner who presses Run All.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
# the ipywidgets controls, as ipywidgets 7 and 8 name their DOM nodes
CONTROLS = (".widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-toggle-button, "
            ".widget-button, .widget-checkbox, .widget-radio, .widget-select, .widget-play")


def lessons() -> list[Path]:
    """Every lesson of the course: ``notebooks/NN_name.ipynb``, new ones included."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def find_chromium() -> str | None:
    """``$TQL_CHROMIUM``, else the first Chromium or Chrome on the PATH (Debian's is /usr/bin/chromium)."""
    if os.environ.get("TQL_CHROMIUM"):
        return os.environ["TQL_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def app_cells(nb: dict) -> list[int]:
    """Indices of the cells that display an app: they start with ``# NBVAL_IGNORE_OUTPUT`` and
    their stored outputs hold a widget view.

    >>> view = {"data": {WIDGET_VIEW: {}}}
    >>> app = {"cell_type": "code", "source": ["# NBVAL_IGNORE_OUTPUT", "app()"], "outputs": [view]}
    >>> gpu = {"cell_type": "code", "source": "# NBVAL_IGNORE_OUTPUT: GPU-only", "outputs": []}
    >>> app_cells({"cells": [gpu, app, {"cell_type": "markdown", "source": "# NBVAL_IGNORE_OUTPUT"}]})
    [1]
    """
    return [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
            and "".join(c["source"]).startswith("# NBVAL_IGNORE_OUTPUT")
            and any(WIDGET_VIEW in o.get("data", {}) for o in c.get("outputs", []))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` as ``make lab`` runs it (``--allow-root`` as root), without a browser,
    on a free port with a token, in ``root``: it serves ``root/notebooks`` (copies of the lessons).

    The Jupyter and IPython configuration, data and runtime folders are fresh ones
    under ``root``, so no user setting, kernel or trust database of the machine
    takes part; JupyterLab's news and update checks are off (no network here).
    """

    def __init__(self, root: Path):
        self.root = root
        self.port, self.token = _free_port(), "tql-browser-" + os.urandom(8).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        home = root.parent / "jupyter-home"
        settings = home / "lab-settings"
        (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
        (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel draws inline
        env.update(JUPYTER_NO_CONFIG="1", JUPYTER_CONFIG_DIR=str(home / "config"),
                   JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   IPYTHONDIR=str(home / "ipython"))
        jupyter = Path(sys.executable).parent / "jupyter"
        cmd = [str(jupyter), "lab"] if jupyter.exists() else [sys.executable, "-m", "jupyterlab"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # as the Makefile's LAB_ROOT
        cmd += ["--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
                "notebooks/"]  # as make lab: the server's root is root/notebooks
        self.log = open(root.parent / "jupyter-lab.log", "wb")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(cmd, cwd=root, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter lab did not start:\n{self.log_tail()}") from None
                time.sleep(0.3)

    def api(self, method: str, path: str):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def sessions(self) -> list[dict]:
        return self.api("GET", "/api/sessions")

    def kernels(self) -> list[dict]:
        return self.api("GET", "/api/kernels")

    def shut_down_kernels(self) -> None:
        """Shut down every session's kernel (DELETE /api/sessions/<id>)."""
        for s in self.sessions():
            self.api("DELETE", f"/api/sessions/{s['id']}")

    def log_tail(self, n: int = 3000) -> str:
        self.log.flush()
        return (self.root.parent / "jupyter-lab.log").read_bytes()[-n:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


# ---- the page ------------------------------------------------------------------------------

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

_CELLS_JS = """() => {
  const panel = document.querySelector('PANEL');
  if (!panel) return [];
  return Array.from(panel.querySelectorAll('.jp-Cell')).map(c => ({
    index: Number(c.dataset.windowedListIndex),
    code: c.classList.contains('jp-CodeCell'),
    prompt: (c.querySelector('.jp-InputArea-prompt') || {textContent: ''}).textContent.trim(),
    source: (c.querySelector('.jp-InputArea-editor') || {textContent: ''}).textContent.slice(0, 80),
    outputs: Array.from(c.querySelectorAll('.jp-OutputArea-child > .jp-OutputArea-output')).map(o => ({
      mime: o.dataset.mimeType || '',
      widget: !!o.querySelector('.jupyter-widgets'),
      text: o.textContent.slice(0, 200),
    })),
  }));
}""".replace("PANEL", PANEL)

# scrolls the notebook down by 90% of its height; true when it was already at the bottom
_STEP_JS = "e => { const t = e.scrollTop; e.scrollBy(0, e.clientHeight * 0.9); return e.scrollTop === t; }"

# records the notebook's execution indicator: whether it went busy, its status and since when
_WATCH_JS = """(panelSelector) => {
  const panel = document.querySelector(panelSelector);
  const state = window.__tqlRun = {busy: false, status: null, since: performance.now()};
  const look = () => {
    const e = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    const status = e ? e.dataset.status : null;
    if (status === 'busy') state.busy = true;
    if (status !== state.status) { state.status = status; state.since = performance.now(); }
  };
  look();
  new MutationObserver(look).observe(panel.querySelector('.jp-Toolbar') || panel,
                                     {subtree: true, childList: true, attributes: true});
}"""

# the app's display without its controls: text of the non-control parts, the figures' sources
_DISPLAY_JS = """(root) => {
  const clone = root.cloneNode(true);
  clone.querySelectorAll('CONTROLS').forEach(e => e.remove());
  return {text: clone.innerText.replace(/\u00a0/g, ' ').trim(),
          images: Array.from(root.querySelectorAll('img')).map(i => i.src.slice(-64))};
}""".replace("CONTROLS", CONTROLS)


@dataclass
class AppResult:
    """What driving one app did: its cell, the control moved, and what its display did."""
    cell: int
    control: str = ""
    before: str = ""
    after: str = ""
    changed_pixels: float = 0.0
    resized: str = ""
    text_change: str = ""
    images_changed: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        what = [f"its size {self.resized}" if self.resized else f"{self.changed_pixels:.2%} of its pixels"]
        if self.images_changed:
            what.append(f"{self.images_changed} figure(s) redrawn")
        if self.text_change:
            what.append(f"text {self.text_change}")
        return (f"cell {self.cell}: {self.control} {self.before!r} -> {self.after!r}; changed: "
                + ", ".join(what))


@dataclass
class LessonReport:
    name: str
    seconds: float = 0.0
    run_all_seconds: float = 0.0
    code_cells: int = 0
    widgets: list[int] = field(default_factory=list)
    apps: list[AppResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


REPORTS: list[LessonReport] = []  # one per lesson run; conftest.py prints them at the end


class Lesson:
    """One lesson open in a page: ``open()``, ``run_all()``, ``cells()``, ``drive_app(index)``."""

    def __init__(self, page, server: LabServer, path: str):
        self.page, self.server, self.path = page, server, path

    # -- open and run
    def open(self, timeout: float = 90) -> None:
        """Open the notebook in a fresh workspace and wait until its kernel is idle."""
        self.page.goto(f"{self.server.url}/lab/tree/{self.path}?reset&token={self.server.token}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kernels = [s["kernel"]["execution_state"] for s in self.server.sessions()
                       if s["path"] == self.path]
            idle = self.page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']")
            name = self.page.locator(f"{PANEL} .jp-Toolbar-kernelName")
            if kernels == ["idle"] and idle.count() and name.count() and "No Kernel" not in name.inner_text():
                return
            time.sleep(0.25)
        raise TimeoutError(f"{self.path}: no idle kernel after {timeout} s")

    def run_all(self, timeout: float = 300) -> float:
        """*Run > Run All Cells* from the main menu; wait until every queued cell has run.

        The notebook's execution indicator shows ``busy`` from the moment cells
        are queued until the queue is empty ("Executed 3/17 cells"), then the
        kernel's status (an error empties the queue). A run of a second or less
        can pass between two looks at the page, so an observer in the page
        records that it went busy. Returns the seconds from the click to idle.
        """
        self.page.evaluate(_WATCH_JS, PANEL)
        start = time.monotonic()
        for attempt in range(2):  # a click that JupyterLab drops (it does, rarely) is tried once more
            self.page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Run").first.click()
            self.page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            try:
                self.page.wait_for_function("() => window.__tqlRun.busy", timeout=15_000)
                break
            except Exception:  # noqa: BLE001 (playwright's TimeoutError)
                if attempt:
                    raise TimeoutError(f"{self.path}: Run All did not start") from None
        while time.monotonic() - start < timeout:
            idle_for = self.page.evaluate("() => window.__tqlRun.status === 'idle' ? "
                                          "performance.now() - window.__tqlRun.since : -1")
            if idle_for > 500:
                return time.monotonic() - start - idle_for / 1000
            time.sleep(0.1)
        raise TimeoutError(f"{self.path}: Run All did not finish within {timeout} s")

    # -- look at every cell
    def _scroller(self):
        return self.page.locator(f"{PANEL} .jp-WindowedPanel-outer")

    def visible_cells(self) -> list[dict]:
        """The cells attached to the page now (JupyterLab attaches those near the viewport)."""
        return self.page.evaluate(_CELLS_JS)

    def cells(self) -> dict[int, dict]:
        """Every cell as the page shows it, scrolling from the top to the bottom of the notebook:
        ``{index: {code, prompt, source, outputs: [{mime, widget, text}]}}``."""
        scroller = self._scroller()
        scroller.evaluate("e => e.scrollTo(0, 0)")
        seen: dict[int, dict] = {}
        for _ in range(500):
            self._settle()
            for c in self.visible_cells():
                seen[c["index"]] = c
            if scroller.evaluate(_STEP_JS):
                break
        return seen

    def _settle(self) -> None:
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        self.page.wait_for_timeout(60)

    def cell(self, index: int):
        """The cell's element, scrolled into view (found by scrolling down from the top)."""
        loc = self.page.locator(f"{PANEL} .jp-Cell[data-windowed-list-index='{index}']")
        scroller = self._scroller()
        if not loc.count():
            scroller.evaluate("e => e.scrollTo(0, 0)")
            for _ in range(500):
                self._settle()
                if loc.count() or scroller.evaluate(_STEP_JS):
                    break
        loc.scroll_into_view_if_needed()
        self._settle()
        return loc

    def save(self) -> dict:
        """Save the notebook (Ctrl+S) and return it as stored by the server."""
        self.page.locator(f"{PANEL} .jp-Notebook").click(position={"x": 5, "y": 5})
        self.page.keyboard.press("Control+s")
        tab = self.page.locator(".lm-TabBar-tab.lm-mod-current[data-type='document-title']")
        for _ in range(100):
            if "jp-mod-dirty" not in (tab.get_attribute("class") or ""):  # saved
                break
            self.page.wait_for_timeout(100)
        return self.server.api("GET", f"/api/contents/{self.path}?content=1")["content"]

    # -- drive one app
    def drive_app(self, index: int, timeout: float = 60) -> AppResult:
        """Move the app's first control; wait until its display (controls masked) changes and settles."""
        res = AppResult(cell=index)
        cell = self.cell(index)
        root = cell.locator(".jp-OutputArea-output:has(.jupyter-widgets)").first
        control = root.locator(CONTROLS).first
        if not control.count():
            raise AssertionError(f"cell {index}: the app has no control to move")
        controls = root.locator(CONTROLS)

        def shot():
            return root.screenshot(mask=[controls], animations="disabled")

        shown = root.evaluate(_DISPLAY_JS)
        before = shot()
        start = time.monotonic()
        res.control, res.before, res.after = (t.replace("\xa0", " ") for t in _move(control))
        after, stable = before, 0
        while time.monotonic() - start < timeout:
            self.page.wait_for_timeout(300)
            now = shot()
            if now != before:
                stable = stable + 1 if now == after else 0
                after = now
                if stable >= 2:
                    break
        res.seconds = time.monotonic() - start
        res.changed_pixels, res.resized = _changed_fraction(before, after)
        now_shown = root.evaluate(_DISPLAY_JS)
        res.images_changed = sum(a != b for a, b in zip(shown["images"], now_shown["images"])) + \
            abs(len(shown["images"]) - len(now_shown["images"]))
        res.text_change = _first_difference(shown["text"], now_shown["text"])
        return res


def _move(control) -> tuple[str, str, str]:
    """Move one control as a learner would; returns (what it is, its value before, after)."""
    cls = control.get_attribute("class") or ""
    label = control.locator(".widget-label").first
    name = label.inner_text().strip() if label.count() else ""
    if "widget-slider" in cls:
        handle = control.locator(".noUi-handle").first
        readout = control.locator(".widget-readout").first

        def value():
            return readout.inner_text() if readout.count() else handle.get_attribute("aria-valuenow")

        old = value()
        handle.focus()
        handle.press("ArrowRight")
        if value() == old:  # at its maximum
            handle.press("ArrowLeft")
        return f"slider {name!r}".strip(), old, value()
    if "widget-dropdown" in cls or "widget-select" in cls:
        select = control.locator("select").first
        options = select.locator("option").all_inner_texts()
        old = select.evaluate("s => s.selectedIndex")
        new = (old + 1) % len(options)
        select.select_option(index=new)
        return f"dropdown {name!r}", options[old], options[new]
    if "widget-toggle-buttons" in cls:
        buttons = control.locator("button")
        texts = buttons.all_inner_texts()
        active = [i for i in range(buttons.count())
                  if "mod-active" in (buttons.nth(i).get_attribute("class") or "")]
        new = next(i for i in range(buttons.count()) if i not in active)
        buttons.nth(new).click()
        return f"toggle buttons {name!r}", ", ".join(texts[i] for i in active), texts[new]
    if "widget-radio" in cls:
        inputs = control.locator("input[type=radio]")
        labels = control.locator("label").all_inner_texts()
        old = next((i for i in range(inputs.count()) if inputs.nth(i).is_checked()), None)
        new = next(i for i in range(inputs.count()) if i != old)
        inputs.nth(new).check()
        return f"radio buttons {name!r}", labels[old] if old is not None else "", labels[new]
    if "widget-checkbox" in cls:
        box = control.locator("input").first
        old = box.is_checked()
        box.click()
        return f"checkbox {name!r}", str(old), str(box.is_checked())
    # a button or a toggle button: a click
    text = control.inner_text().strip()
    control.click()
    return f"button {text!r}", "", "clicked"


def _changed_fraction(a: bytes, b: bytes) -> tuple[float, str]:
    """Fraction of pixels that differ between two PNG screenshots; if their sizes differ,
    ``(1.0, "WxH -> WxH")``."""
    if a == b:
        return 0.0, ""
    from PIL import Image, ImageChops  # Pillow comes with matplotlib

    ia, ib = (Image.open(io.BytesIO(x)).convert("RGB") for x in (a, b))
    if ia.size != ib.size:
        return 1.0, "{}x{} -> {}x{}".format(*ia.size, *ib.size)
    diff = ImageChops.difference(ia, ib).convert("L").point(lambda v: 255 if v else 0)
    return diff.histogram()[255] / (ia.size[0] * ia.size[1]), ""


def _first_difference(a: str, b: str) -> str:
    r"""The first line that differs, as ``'old' -> 'new'`` (empty if the texts are equal).

    >>> print(_first_difference("bits 2\nMSE 0.1", "bits 2\nMSE 0.05"))
    'MSE 0.1' -> 'MSE 0.05'
    """
    if a == b:
        return ""
    la, lb = a.splitlines(), b.splitlines()
    for x, y in zip(la, lb):
        if x != y:
            return f"{x[:70]!r} -> {y[:70]!r}"
    return f"{len(la)} -> {len(lb)} lines"
