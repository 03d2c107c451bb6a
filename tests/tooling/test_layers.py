"""The dependency rule of ARCHITECTURE.md, checked on the source (every import, also inside functions).

    core (flat modules)  imports only core; never gpu, course, matplotlib or ipywidgets, and
                         cupy only in backend.py (to_device, gpu_available)
    gpu/                 imports core's public names only (no ``_`` module or name); cupy only in gpu/cuda.py
    course/              imports core's public names and, for lesson 09 only, gpu; matplotlib only in
                         figures/_ui, ipywidgets only in app/_ui
    nothing outside course/ imports course
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "turboquant_lab"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(module, names, lineno) of every import in the file, relative imports resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names = [a.name for a in node.names]
            if node.module is None:  # from . import x, y: each name is a module
                for n in names:
                    yield f"{module}.{n}", [], node.lineno
            else:
                yield module, names, node.lineno


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "turboquant_lab":
        return "external"
    if len(parts) > 1 and parts[1] in ("gpu", "course"):
        return parts[1]
    return "core"


def _private(module: str, names) -> bool:
    return any(p.startswith("_") and p != "__init__" for p in module.split(".")[1:]) or \
        any(n.startswith("_") for n in names)


def test_the_modules_are_found():
    layers = {_layer(_module_name(p)) for p in MODULES}
    assert layers == {"core", "gpu", "course"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    me = _module_name(path)
    mine = _layer(me)
    problems = []
    for module, names, line in _imports(path):
        top = module.split(".")[0]
        other = _layer(module)
        where = f"{path.name}:{line} imports {module}"
        if mine == "core":
            if other in ("gpu", "course"):
                problems.append(f"{where}: core must not import {other} (use backend.gpu_function)")
            if top in ("matplotlib", "ipywidgets", "IPython") or (top == "cupy" and path.name != "backend.py"):
                problems.append(f"{where}: core stays NumPy/SciPy only (CuPy: backend.py alone)")
        elif mine == "gpu":
            if other == "course":
                problems.append(f"{where}: gpu must not import the course")
            if other == "core" and _private(module, names):
                problems.append(f"{where} {names}: gpu uses core's public API only")
            if top == "cupy" and not me.endswith("gpu.cuda"):
                problems.append(f"{where}: only gpu/cuda.py imports cupy")
            if top in ("matplotlib", "ipywidgets"):
                problems.append(f"{where}: gpu draws nothing")
        else:  # course
            if other == "core" and _private(module, names):
                problems.append(f"{where} {names}: the course uses core's public API only")
            if other == "gpu" and ".l09_" not in me:
                problems.append(f"{where}: only lesson 09 uses the gpu package")
            if other == "course" and module.split(".")[2:3] != me.split(".")[2:3] and \
                    not module.split(".")[2].startswith("_"):
                problems.append(f"{where}: a lesson does not import another lesson")
            kind = me.rsplit(".", 1)[-1]
            if top == "matplotlib" and kind not in ("figures", "_ui", "app"):
                problems.append(f"{where}: matplotlib belongs in figures.py (or app.py)")
            if top in ("ipywidgets", "IPython") and kind not in ("app", "_ui"):
                problems.append(f"{where}: ipywidgets belongs in app.py")
            if top == "cupy" and ".l09_" not in me:
                problems.append(f"{where}: only lesson 09 touches CuPy")
    assert not problems, "\n".join(problems)


def test_importing_the_package_loads_no_gpu_plotting_or_course_module():
    import subprocess
    import sys
    code = ("import sys, turboquant_lab; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('cupy', 'matplotlib', 'ipywidgets') or m.startswith(('turboquant_lab.gpu', "
            "'turboquant_lab.course'))]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
