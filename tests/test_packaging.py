"""What ``pyproject.toml`` declares against what sweeper imports and ships.

Every third-party module imported anywhere in ``sweeper/`` (its adapters in
``sweeper/frameworks`` included, imports inside functions too) must come from a distribution in
``[project] dependencies``; the frameworks' own modules, and pytest for the adapter conformance
suite, from their extra. A wheel built from the project holds the one top-level package
``sweeper``, with the adapters inside it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sweeper"
# Modules only an adapter imports, inside the functions that need them: the extra providing each.
FRAMEWORK_MODULES = {"torch": "pytorch", "tensorflow": "tensorflow", "keras": "tensorflow"}
# pytest: only the adapter conformance suite (for plug-ins' own tests) imports it.
TESTING_MODULE, TESTING_EXTRA = "sweeper/frameworks/testing.py", "testing"


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]


def _names(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` name, whatever their markers (``tomli`` on 3.10)."""
    return {canonicalize_name(Requirement(text).name) for text in requirements}


def _sources() -> list[Path]:
    found = []
    # followlinks: sweeper/frameworks is a link to the top-level frameworks/ folder.
    for folder, dirs, files in os.walk(PACKAGE, followlinks=True):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        found += [Path(folder, name) for name in files if name.endswith(".py")]
    return sorted(found)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(top-level module, line, at module level)`` of each absolute import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    nested = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(name.partition(".")[0], node.lineno, id(node) not in nested) for name in names]
    return found


def _third_party() -> dict[str, list[str]]:
    """Each third-party module sweeper imports, with where (``path:line``)."""
    found: dict[str, list[str]] = {}
    for path in _sources():
        for module, line, _ in _imports(path):
            if module != "sweeper" and module not in sys.stdlib_module_names:
                found.setdefault(module, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def test_the_imports_are_found() -> None:
    # Guards the walk itself: the adapters' files are read through the link.
    found = _third_party()
    assert {"ray", "optuna", "mlflow", "torch", "keras"} <= set(found)
    assert any(where.startswith("sweeper/frameworks/") for where in found["torch"])


def test_every_imported_module_comes_from_a_declared_dependency() -> None:
    declared = _names(_project()["dependencies"])
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, where in sorted(_third_party().items()):
        if module in FRAMEWORK_MODULES or module == "pytest":
            continue
        # A module not installed here (tomli on Python 3.11+) counts by its own name.
        dists = {canonicalize_name(d) for d in providers.get(module, [module])}
        if not dists & declared:
            undeclared[module] = f"from {', '.join(sorted(dists))}, imported at {where[0]}"
    assert not undeclared, f"declare these in pyproject.toml's dependencies: {undeclared}"


@pytest.mark.parametrize("module", sorted(FRAMEWORK_MODULES))
def test_a_framework_module_comes_from_its_extra_and_is_imported_lazily(module: str) -> None:
    extra = FRAMEWORK_MODULES[module]
    declared = _names(_project()["optional-dependencies"][extra])
    dists = importlib.metadata.packages_distributions().get(module)
    if dists is not None:  # else: the extra is not installed here
        assert {canonicalize_name(d) for d in dists} & declared, f"declare {dists} in [{extra}]"
    # `import sweeper.frameworks.<name>` works without the framework: it is imported in the
    # functions that use it.
    eager = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        for name, line, at_top in _imports(path)
        if name == module and at_top
    ]
    assert not eager, f"{module} is imported at module level in {eager}"


def test_pytest_comes_from_the_testing_extra_and_only_the_conformance_suite_imports_it() -> None:
    declared = _names(_project()["optional-dependencies"][TESTING_EXTRA])
    assert "pytest" in declared
    assert {where.partition(":")[0] for where in _third_party().get("pytest", [])} <= {
        TESTING_MODULE
    }


def _shipped_wheel(folder: Path) -> set[str]:
    """The file names in a wheel built from a copy of the project (not to touch the checkout)."""
    source = folder / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE, source / "sweeper", symlinks=True, ignore=ignore)
    if (PACKAGE / "frameworks").is_symlink():  # to ../frameworks: copy what it points to
        shutil.copytree(ROOT / "frameworks", source / "frameworks", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(folder / "dist"), str(source)],
        check=True, capture_output=True, timeout=240,
    )  # fmt: skip
    (wheel,) = (folder / "dist").glob("sweeper-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_ships_one_top_level_package_with_the_adapters_inside(tmp_path: Path) -> None:
    names = _shipped_wheel(tmp_path)
    assert {name.split("/")[0] for name in names if not name.startswith("sweeper-")} == {"sweeper"}
    assert "sweeper/frameworks/base.py" in names
    assert "frameworks/base.py" not in names


def test_no_top_level_frameworks_is_importable_outside_the_checkout(tmp_path: Path) -> None:
    # From the checkout's root the folder itself is importable; from elsewhere nothing is.
    probe = "import importlib.util; print(importlib.util.find_spec('frameworks'))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "None"
