"""The set-up a learner runs: pyproject and environment.yml agree; the import stays light."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# conda-forge's names of the PyPI packages that it names differently
CONDA_NAMES = {"playwright-python": "playwright"}


def _req(spec: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", spec)
    name = m.group(1).lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), m.group(2).replace(" ", "")


def test_environment_yml_mirrors_pyproject():
    project = _pyproject()["project"]
    wanted = dict(_req(s) for s in project["dependencies"] + project["optional-dependencies"]["dev"])
    wanted["python"] = project["requires-python"].replace(" ", "")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_req(s) for s in env["dependencies"] if isinstance(s, str) and s != "pip")
    assert conda == wanted
    pip_section = next(s for s in env["dependencies"] if isinstance(s, dict))
    assert pip_section["pip"] == ["-e ."]


def test_no_upper_pins_that_would_make_colab_reinstall():
    project = _pyproject()["project"]
    for spec in project["dependencies"]:
        assert "<" not in spec and "==" not in spec, spec
    assert _req(next(s for s in project["dependencies"] if s.startswith("ipywidgets")))[1] == ">=7.7"


def test_import_is_light():
    code = ("import sys, turboquant_lab; "
            "print(sorted(m for m in ('cupy', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert commands[-1].strip() == "make test"


def test_kernels_and_data_ship_as_package_data():
    project = _pyproject()
    data = project["tool"]["setuptools"]["package-data"]["turboquant_lab"]
    assert "gpu/kernels/*.cu" in data and "gpu/kernels/*.cuh" in data and "data/*.npz" in data


def test_readme_lists_every_lesson_with_a_colab_link():
    sys.path.insert(0, str(ROOT / "tools"))
    from colab import REPO_URL

    readme = (ROOT / "README.md").read_text()
    owner_repo = REPO_URL.split("github.com/")[1]
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        rel = f"notebooks/{nb.name}"
        assert f"]({rel})" in readme, f"{rel} is missing from the syllabus"
        assert f"https://colab.research.google.com/github/{owner_repo}/blob/main/{rel}" in readme
