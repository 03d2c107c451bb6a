"""What nbval does not check about the stored notebooks: the set-up cell, executed state, widgets."""
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from colab import SETUP_CELL, is_setup_cell  # noqa: E402

NOTEBOOKS = sorted(p for f in ("notebooks", "solutions", "exercises") for p in (ROOT / f).glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_every_folder_has_notebooks():
    names = {p.parent.name for p in NOTEBOOKS}
    assert names == {"notebooks", "solutions", "exercises"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_starts_with_the_colab_setup_cell(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert is_setup_cell(first) and first.source == SETUP_CELL, (
        "run `python tools/execute_notebooks.py` to write the set-up cell of tools/colab.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_executed_in_order_without_errors(path):
    cells = [c for c in _code_cells(path) if c.source.strip()]
    counts = [c.execution_count for c in cells]
    assert None not in counts, "stored unexecuted: run tools/execute_notebooks.py"
    assert counts == list(range(1, len(counts) + 1)), "not run top to bottom in one fresh kernel"
    for c in cells:
        assert not any(o.output_type == "error" for o in c.outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_only_widget_cells_skip_output_comparison(path):
    for c in _code_cells(path):
        ignored = c.source.lstrip().startswith("# NBVAL_IGNORE_OUTPUT")
        shows_widget = any(WIDGET_VIEW in o.get("data", {}) for o in c.outputs)
        # a cell whose output depends on whether a GPU is present cannot match on both machines
        gpu_only = (c.source.startswith("# NBVAL_IGNORE_OUTPUT: GPU-only output")
                    and "if tql.gpu_available():" in c.source)
        assert ignored == (shows_widget or gpu_only), (
            f"cell {c.source[:60]!r}: NBVAL_IGNORE_OUTPUT must mark exactly the cells that display a "
            f"widget and the GPU-only cells")
        assert "NBVAL_SKIP" not in c.source
