"""`make lab` serves JupyterLab, for root (containers, CI) and for an ordinary user alike."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_lab():
    port, token = _free_port(), "tql-test-token"
    bin_dir = Path(sys.executable).parent
    # exactly the lab target, with this interpreter's environment and without the install
    # step (-o: take the stamp as up to date) or a browser
    cmd = ["make", "-s", "-o", ".venv/.installed", "lab", f"BIN={bin_dir}",
           f"LAB_ARGS=--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
           f"--IdentityProvider.token={token} --ServerApp.open_browser=False"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "JUPYTER_NO_CONFIG": "1"})
    status, deadline = None, time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}",
                                            timeout=5) as r:
                    status = r.status
                    page = r.read().decode("utf-8", "replace")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            out = proc.communicate(timeout=30)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0].decode("utf-8", "replace")
    assert status == 200, f"make lab did not serve /lab (exit code {proc.returncode}):\n{out[-3000:]}"
    assert "JupyterLab" in page
