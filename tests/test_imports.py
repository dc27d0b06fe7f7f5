"""The package's import graph: no cycles between sweeper's modules.

Every import counts, at module level or deferred inside a function (how sweeper puts off Ray,
MLflow and pandas), except those under ``if TYPE_CHECKING:``, which never run: a deferred
import that closes a loop still ties two modules into one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sweeper"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    # rglob does not follow the sweeper/frameworks link; walk it explicitly.
    files = list(PACKAGE.rglob("*.py")) + list((PACKAGE / "frameworks").glob("*.py"))
    return {_module_name(path): path for path in files if "__pycache__" not in path.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The sweeper modules that ``name`` imports, anywhere but under ``TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node)
        for sub in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    # A module importing its own package (or a package its own modules) is no cycle.
    return {
        target
        for target in found
        if target in modules
        and target != name
        and not name.startswith(target + ".")
        and not target.startswith(name + ".")
    }


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_whole_package() -> None:
    graph = _graph()
    assert {"sweeper.cli", "sweeper.execution._session", "sweeper.frameworks.base"} <= set(graph)
    assert "sweeper._layout" in graph["sweeper.history"]
    assert "sweeper.frameworks.base" in graph["sweeper.frameworks.python"]
    # Deferred imports count too.
    assert "sweeper.execution._phases" in graph["sweeper.execution._actor"]


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_sweep_folder_layout_imports_only_the_standard_library() -> None:
    tree = ast.parse((PACKAGE / "_layout.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "re", "pathlib", "typing"}
