"""Shared pytest set-up: the `gpu` marker skips where no CUDA GPU is usable."""
import pytest

from turboquant_lab.backend import gpu_available

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
