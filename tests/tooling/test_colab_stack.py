"""tools/colab_stack.py: the Colab pins cover the course's dependencies; what it reads off nbclient's widget state."""
import json
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import colab_stack


def test_every_dependency_is_pinned_for_colab_within_its_bound():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = colab_stack.pins()
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = colab_stack._norm(req.name)
        assert name in pins, f"{name} is a dependency but requirements/colab.txt does not pin it"
        assert req.specifier.contains(pins[name]), f"Colab's {name}=={pins[name]} is outside {spec!r}"


def test_pins_reads_names_and_versions_and_skips_comments(tmp_path):
    f = tmp_path / "r.txt"
    f.write_text("# a comment==1\nipywidgets==7.7.1\nJupyterLab_Widgets == 3.0.13  # why\n"
                 "nbclient>=0.8\n\nnumpy==2.1.3 ; python_version >= '3.10'\n")
    assert colab_stack.pins(f) == {"ipywidgets": "7.7.1", "jupyterlab-widgets": "3.0.13", "numpy": "2.1.3"}


def _model(name, **state):
    return {"_model_name": name, **state}


def test_tree_follows_model_references_and_shown_state_keeps_what_a_learner_sees():
    state = {
        "app": _model("VBoxModel", children=["IPY_MODEL_row", "IPY_MODEL_out"]),
        "row": _model("HBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_label"],
                      layout="IPY_MODEL_lay"),
        "slider": _model("IntSliderModel", value=3),
        "label": _model("HTMLModel", value="<b>MSE 0.1</b>"),
        "out": _model("OutputModel", outputs=[{"output_type": "display_data", "data": {"image/png": "x"}}]),
        "lay": _model("LayoutModel"),
        "other": _model("OutputModel", outputs=[]),
    }
    assert colab_stack._tree(state, ["app"]) == {"app", "row", "slider", "label", "out", "lay"}
    shown = colab_stack._shown_state(state)
    assert set(shown) == {"label", "out", "other"}  # Output, HTML and Label models only, not controls
    assert json.loads(shown["label"]) == "<b>MSE 0.1</b>"
    state["slider"]["value"] = 4  # a control moving is not a change of what the app shows ...
    assert colab_stack._shown_state(state) == shown
    state["out"]["outputs"] = []  # ... a redrawn figure is
    assert colab_stack._shown_state(state) != shown


def test_the_probe_drives_every_kind_of_control_the_apps_use():
    used = set()
    for app in (ROOT / "turboquant_lab" / "course").glob("*/app.py"):
        used |= set(re.findall(r"widgets\.(IntSlider|FloatSlider|SelectionSlider|Dropdown|ToggleButtons|"
                               r"RadioButtons|Checkbox|ToggleButton|Button|Text|BoundedIntText|BoundedFloatText|IntText|FloatText|"
                               r"Select|SelectMultiple|Play)\(", app.read_text()))
    assert used, "no control found in the apps"
    missing = {name for name in used if f"{name}Model" not in colab_stack._CONTROLS}
    assert not missing, f"tools/colab_stack.py does not drive {sorted(missing)}: add them to _CONTROLS"


def _notebook(path, source):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


_APP = '''\
import ipywidgets as widgets
import matplotlib.pyplot as plt
bits = widgets.IntSlider(value=3, min=1, max=5, description="bits")
idle = widgets.Dropdown(options=["a", "b"], description="idle")   # wired to nothing
out = widgets.Output()

def draw(change=None):
    with out:
        out.clear_output(wait=True)
        plt.plot([0, bits.value])
        plt.show()
        if bits.value == 1:
            raise RuntimeError("no figure at 1 bit")

bits.observe(draw, names="value")
draw()
widgets.VBox([bits, idle, out, widgets.Output()])
'''


@pytest.mark.slow
def test_a_lesson_run_drives_each_control_and_reports_what_is_broken(tmp_path):
    """One kernel: the slider redraws (and then raises inside its Output), the menu changes nothing,
    and an Output of the displayed app stays empty; each is reported."""
    run = colab_stack.execute_lesson(_notebook(tmp_path / "app.ipynb", _APP))
    assert run.views == 1
    assert [changed for _, changed in run.driven] == [True, False]
    assert run.driven[0][0] == "IntSlider 'bits' -> 1" and run.driven[1][0] == "Dropdown 'idle' -> 'b'"
    assert any("RuntimeError: no figure at 1 bit" in p for p in run.problems)
    assert sum("Output widget of a displayed app is empty" in p for p in run.problems) == 1
    assert run.probe.split()[1] == sys.executable
