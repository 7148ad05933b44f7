"""The package's import graph, read from `ast`: no cycle, the layers in one direction, every module
importable on its own.

Layers (a module may import only from its own layer or those before it):
    model (and the shared types) -> runtime (loads artifacts) -> export (builds them)
    -> runtime_factory -> pipeline -> ros
Only gssplat_ros/ros/ imports rclpy at module level; tools elsewhere (bags, demo, bench, CLI commands)
import it inside the function that needs it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "gssplat_ros"
PACKAGE = PACKAGE_DIR.name


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py")) if "__pycache__" not in p.parts}


def imported_modules(path: Path, modules: dict[str, Path], module_level_only: bool = False) -> set[str]:
    """The package modules `path` imports (`from a.b import c` counts a.b.c when that is a module)."""
    tree = ast.parse(path.read_text())
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found.update(n for n in names if n in modules and n != this)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one cycle path."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_no_import_cycle():
    # a package __init__ that re-exports its submodules is not a cycle with them: Python imports the
    # submodule from inside the package's own import; every other back edge is
    graph = {m: {d for d in deps if not (m.startswith(d + ".") and all_modules()[d].name == "__init__.py")}
             for m, deps in import_graph().items()}  # fmt: skip
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


LAYERS = {  # module prefix -> rank; a module may import only modules of the same or a lower rank
    f"{PACKAGE}.model": 0,
    f"{PACKAGE}.runtime": 1,
    f"{PACKAGE}.export": 2,
    f"{PACKAGE}.runtime_factory": 3,
    f"{PACKAGE}.pipeline": 4,
    f"{PACKAGE}.ros": 5,
}


def rank(module: str):
    for prefix, r in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return r
    return None


def test_layers_import_in_one_direction():
    bad = []
    for module, deps in import_graph().items():
        own = rank(module)
        if own is None:
            continue
        for dep in sorted(deps):
            other = rank(dep)
            if other is not None and other > own:
                bad.append(f"{module} imports {dep}")
    assert not bad, "layer order model -> runtime -> export -> runtime_factory -> pipeline -> ros broken:\n" + "\n".join(bad)


def test_model_and_runtime_stay_below_the_exporter():
    graph = import_graph()
    model = {m for m in graph if rank(m) == 0}
    runtime = {m for m in graph if rank(m) == 1}
    for module in model:
        assert not {d for d in graph[module] if rank(d) not in (None, 0)}, module
    for module in runtime:
        assert not {d for d in graph[module] if d.startswith(f"{PACKAGE}.export")}, module


def test_only_ros_imports_rclpy_at_module_level():
    offenders = []
    for name, path in all_modules().items():
        if name.startswith(f"{PACKAGE}.ros"):
            continue
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])  # fmt: skip
            if any(n == "rclpy" or n.startswith("rclpy.") for n in names):
                offenders.append(name)
    assert not offenders, offenders


def test_find_cycles_reports_a_cycle():
    """The checker itself: a three-module cycle is found and named."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


# the layered modules each import alone (a fresh interpreter each, as a user's first import would)
LAYERED = sorted(m for m in all_modules() if rank(m) is not None and rank(m) < 5 and not m.endswith("__main__"))


@pytest.mark.slow
def test_each_layered_module_imports_alone():
    code = "import importlib, sys\nfailed = []\nfor name in sys.argv[1:]:\n" \
           "    try:\n        importlib.import_module(name)\n    except Exception as exc:\n" \
           "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n" \
           "    for m in [m for m in sys.modules if m.startswith('gssplat_ros')]:\n        del sys.modules[m]\n" \
           "print('\\n'.join(failed)); sys.exit(1 if failed else 0)\n"  # fmt: skip
    # one interpreter, the package's modules dropped between imports: each import starts from nothing
    # of ours (third-party modules stay loaded, which only saves time)
    out = subprocess.run([sys.executable, "-c", code, *LAYERED], capture_output=True, text=True, timeout=600,
                         cwd=PACKAGE_DIR.parent)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def lazy_reason_missing(source: str) -> list[int]:
    """Line numbers of function-local `gssplat_ros` imports without a `# lazy:` reason on their line, the line
    above, or above the run of import lines they belong to (one reason may cover a block of imports)."""
    lines = source.splitlines()
    missing = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                names = [a.name for a in sub.names]
            elif isinstance(sub, ast.ImportFrom) and not sub.level:
                names = [sub.module or ""]
            else:
                names = [PACKAGE] if isinstance(sub, ast.ImportFrom) else []
            if not any(n == PACKAGE or n.startswith(PACKAGE + ".") for n in names):
                continue
            row = sub.end_lineno - 1
            while row >= 0 and "# lazy:" not in lines[row]:
                text = lines[row].strip()
                inside = row >= sub.lineno - 1  # the import's own (possibly wrapped) lines
                if not inside and not text.startswith(("from ", "import ")):
                    row = -1
                    break
                row -= 1
            if row < 0:
                missing.append(sub.lineno)
    return sorted(set(missing))


def test_function_local_imports_say_why():
    """Package imports inside functions are for optional heavy dependencies (numba, onnx, rclpy, trimesh) or
    on-use CLI loading, and each says so in a `# lazy:` comment; every other import belongs at module level."""
    missing = [f"{path.relative_to(PACKAGE_DIR.parent)}:{line}" for path in all_modules().values()
               for line in lazy_reason_missing(path.read_text())]  # fmt: skip
    assert not missing, "function-local imports without a '# lazy: <reason>' comment:\n" + "\n".join(missing)


def test_lazy_reason_check_finds_a_bare_import():
    """The checker itself: a bare local import is reported, a commented one or its block is not."""
    source = ("def f():\n    from gssplat_ros.data import load_scene\n\n"
              "def g():\n    # lazy: numba is optional\n    from gssplat_ros.data import a\n"
              "    from gssplat_ros.data import b\n\n"
              "def h():\n    import numpy\n    from gssplat_ros.data import c  # lazy: numba is optional\n"
              "    x = 1\n    from gssplat_ros.data import d\n")  # fmt: skip
    assert lazy_reason_missing(source) == [2, 13]
