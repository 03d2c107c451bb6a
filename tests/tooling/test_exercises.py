"""The exercise system: generator, sync check, and the shape of the exercise notebooks.

``solutions/NN_*.ipynb`` are the source; ``tools/make_exercises.py`` writes
``exercises/NN_*.ipynb`` from them. nbval (run on both folders by the
repository's pytest configuration) re-executes the notebooks; the tests here
check that the two folders are in sync, that the generator does what its
docstring promises, and that the stored verdicts are the expected ones
(every check passes in the solutions and says "not attempted" in the
exercises).
"""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from turboquant_lab.course._checking import all_checkers

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "make_exercises.py"
LESSONS = ["01_naive_quantization", "02_the_outlier_problem", "03_rotate_first",
           "04_distribution_after_rotation", "05_walsh_hadamard_transform", "06_random_signs",
           "07_optimal_slots", "08_the_complete_pipeline"]
LESSONS += ["09_the_gpu_kernel", "10_inner_products_and_qjl", "11_real_kv_caches"]
LESSONS += ["12_polarquant"]


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_exercises", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_exercises = _load_tool()


# -------------------------------------------------------------------------- the generator


def test_stub_keeps_signature_docstring_and_indentation():
    source = ('def f(x, bits):\n'
              '    """Docstring."""\n'
              '    ### BEGIN SOLUTION\n'
              '    y = x + 1\n'
              '    return y\n'
              '    ### END SOLUTION\n'
              '\n'
              '\n'
              'class A:\n'
              '    def g(self):\n'
              '        ### BEGIN SOLUTION\n'
              '        return 2\n'
              '        ### END SOLUTION\n')
    out = make_exercises.strip_solution(source)
    assert out == ('def f(x, bits):\n'
                   '    """Docstring."""\n'
                   '    raise NotImplementedError("your code here")\n'
                   '\n'
                   '\n'
                   'class A:\n'
                   '    def g(self):\n'
                   '        raise NotImplementedError("your code here")\n')
    compile(out, "<exercise>", "exec")  # still valid Python


def test_top_level_block_becomes_a_comment():
    source = "x = 1\n### BEGIN SOLUTION\nprint(f(x))\n### END SOLUTION\ny = 2"
    assert make_exercises.strip_solution(source) == "x = 1\n# your code here\ny = 2"


def test_cell_without_markers_is_unchanged():
    source = "check_levels(levels)"
    assert make_exercises.strip_solution(source) == source


@pytest.mark.parametrize("source", [
    "### BEGIN SOLUTION\nx = 1",
    "x = 1\n### END SOLUTION",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
])
def test_unbalanced_solution_markers_raise(source):
    with pytest.raises(make_exercises.SolutionMarkerError):
        make_exercises.strip_solution(source, "cell 3")


def test_written_answer_is_replaced():
    source = ("**Written question.** Why?\n\n<!-- BEGIN ANSWER -->\n*Model answer.* "
              "Because.\n<!-- END ANSWER -->")
    out = make_exercises.strip_answer(source)
    assert out == "**Written question.** Why?\n\n*Write your answer here.*"
    with pytest.raises(make_exercises.SolutionMarkerError):
        make_exercises.strip_answer("<!-- BEGIN ANSWER --> never closed")


def test_make_exercise_clears_outputs_and_adds_the_setup_cell():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                     "    ### END SOLUTION")
    cell.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    cell.execution_count = 3
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), cell]
    ex = make_exercises.make_exercise(nb)
    assert ex.cells[0].metadata["tags"] == ["colab-setup"]
    assert ex.cells[2].outputs == [] and ex.cells[2].execution_count is None
    assert "NotImplementedError" in ex.cells[2].source
    assert nb.cells[1].outputs  # the solution notebook itself is untouched


def test_check_mode_names_stale_and_orphan_notebooks(tmp_path, monkeypatch, capsys):
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    sol.mkdir()
    ex.mkdir()
    monkeypatch.setattr(make_exercises, "ROOT", tmp_path)
    monkeypatch.setattr(make_exercises, "SOLUTIONS", sol)
    monkeypatch.setattr(make_exercises, "EXERCISES", ex)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                          "    ### END SOLUTION")]
    nbformat.write(nb, sol / "01_a.ipynb")
    solutions = [sol / "01_a.ipynb"]
    assert make_exercises.check(solutions) == 1  # missing
    assert "01_a.ipynb: missing" in capsys.readouterr().out
    assert make_exercises.generate(solutions, execute_them=False) == 0
    assert make_exercises.check(solutions) == 0
    # outputs do not matter, sources do
    stored = nbformat.read(ex / "01_a.ipynb", as_version=4)
    stored.cells[1].outputs = [nbformat.v4.new_output("stream", text="anything\n")]
    nbformat.write(stored, ex / "01_a.ipynb")
    assert make_exercises.check(solutions) == 0
    nb.cells[0].source = nb.cells[0].source.replace("return 1", "return 2") + "\nx = 1"
    nbformat.write(nb, sol / "01_a.ipynb")
    capsys.readouterr()
    assert make_exercises.check(solutions) == 1
    assert "exercises/01_a.ipynb: cell 1 differs" in capsys.readouterr().out
    nbformat.write(nb, ex / "99_orphan.ipynb")
    make_exercises.generate(solutions, execute_them=False)
    capsys.readouterr()
    assert make_exercises.check(solutions) == 1
    assert "no solutions/99_orphan.ipynb" in capsys.readouterr().out


def test_exercises_are_in_sync_with_solutions():
    result = subprocess.run([sys.executable, str(TOOL), "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# -------------------------------------------------------------------------- the notebooks


def _read(folder, name):
    path = ROOT / folder / f"{name}.ipynb"
    assert path.exists(), f"{folder}/{name}.ipynb is missing"
    return nbformat.read(path, as_version=4)


def _check_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("check_")]


def _text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.parametrize("name", LESSONS)
def test_solution_notebook_structure(name):
    nb = _read("solutions", name)
    headings = [c.source for c in nb.cells
                if c.cell_type == "markdown" and c.source.startswith("## Exercise ")]
    assert len(headings) >= 3, "at least three exercises per lesson"
    levels = [re.match(r"## Exercise \d+\.\d+ \((warm-up|core|challenge)\) — practises: \S",
                       h) for h in headings]
    assert all(levels), headings
    assert "warm-up" in headings[0] and "challenge" in headings[-1]
    assert f"../notebooks/{name}.ipynb" in nb.cells[1].source  # after the set-up cell
    assert (ROOT / "notebooks" / f"{name}.ipynb").exists(), "the linked lesson is missing"
    check_cells = _check_cells(nb)
    assert len(check_cells) == len(headings), "one check call per exercise"
    lesson = next(p.name for p in (ROOT / "turboquant_lab" / "course").glob(f"l{name[:2]}_*"))
    checkers = all_checkers()
    for cell in check_cells:
        checker = cell.source.split("(")[0]
        assert checker in checkers, checker
        assert checkers[checker].__module__ == f"turboquant_lab.course.{lesson}.checks", (
            f"{checker} is not one of lesson {name[:2]}'s checkers")
    solved = [c for c in nb.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    assert len(solved) >= len(headings)


@pytest.mark.parametrize("name", LESSONS)
def test_stored_solutions_pass_every_check(name):
    for cell in _check_cells(_read("solutions", name)):
        assert _text(cell).startswith("✔"), (cell.source, _text(cell))


@pytest.mark.parametrize("name", LESSONS)
def test_stored_exercises_say_not_attempted(name):
    nb = _read("exercises", name)
    for cell in _check_cells(nb):
        assert _text(cell).startswith("…") and "not attempted yet" in _text(cell), cell.source
    for cell in nb.cells:
        assert "### BEGIN SOLUTION" not in cell.source and "BEGIN ANSWER" not in cell.source
        assert not any(o.output_type == "error" for o in cell.get("outputs", []))
