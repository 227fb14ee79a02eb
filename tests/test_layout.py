"""The package's shape: no import circle, short functions, a short loop, task kinds only in their modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mtst
from mtst.tasks import TASK_TYPES

PACKAGE = Path(mtst.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["mtst", *path.relative_to(PACKAGE).with_suffix("").parts]
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the mtst modules it imports anywhere in its text: top level, inside functions, and under
    TYPE_CHECKING alike (an annotation-only import still ties the two modules together)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    imported.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        graph[name] = {module for module in imported if module in modules and module != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started (depth-first search)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_circle_among_the_package_modules():
    graph = import_graph()
    assert graph["mtst.config"] >= {"mtst.training.strategies", "mtst.tasks"}  # the graph sees real edges
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_no_function_over_60_lines():
    long = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []


def test_no_module_over_300_lines():
    long = {
        str(path.relative_to(PACKAGE)): length
        for path in PACKAGE.rglob("*.py")
        if (length := len(path.read_text(encoding="utf-8").splitlines())) > 300
    }
    assert long == {}


def test_task_kind_branches_live_in_the_task_kind_modules():
    kinds = PACKAGE / "tasks"
    branch = re.compile(rf"""\btype\s*[!=]=\s*["']({"|".join(TASK_TYPES)})["']""")
    outside = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if kinds not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if branch.search(line)
    ]
    assert outside == []
