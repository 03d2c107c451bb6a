"""Shared pytest set-up: Hypothesis profiles, and the `gpu` marker that skips where no CUDA GPU is usable.

Hypothesis runs derandomized by default (profile "ci"): every run tries the
same examples, so a failure seen once reproduces on the next run and on
another machine. ``HYPOTHESIS_PROFILE=dev`` explores new random examples and
keeps the failing ones in a database outside the repository
(``~/.cache/turboquant-lab/hypothesis``), from which the next run replays them.
"""
import os
import sys
from pathlib import Path

import matplotlib
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from turboquant_lab.backend import gpu_available

matplotlib.use("Agg")  # figures are drawn, never shown (this process only: nbval's kernels keep inline)
import matplotlib.pyplot as plt  # noqa: E402

# the shared helpers (codec_helpers, checker_helpers) sit beside this file, above the test folders
sys.path.insert(0, str(Path(__file__).resolve().parent))

# --doctest-modules (pyproject's addopts) would import every conftest.py as a module named "conftest":
# two of them clash. They hold no doctests.
collect_ignore_glob = ["conftest.py", "*/conftest.py"]

settings.register_profile("ci", derandomize=True, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", database=DirectoryBasedExampleDatabase(
    str(Path.home() / ".cache" / "turboquant-lab" / "hypothesis")), print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _close_figures():
    """Every figure a test draws is closed after it (no "more than 20 figures" build-up)."""
    yield
    plt.close("all")


@pytest.fixture
def shown_figures(monkeypatch):
    """Records the figures the course's apps show (see tests/app_helpers.py): import the app first."""
    from app_helpers import FigureRecorder

    return FigureRecorder().install(monkeypatch)


_GPU = None


def _gpu() -> bool:
    global _GPU
    if _GPU is None:
        _GPU = gpu_available()
    return _GPU


def pytest_collection_modifyitems(config, items):
    if any(item.get_closest_marker("gpu") for item in items) and not _gpu():
        skip = pytest.mark.skip(reason="no CUDA GPU with CuPy on this machine")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)
