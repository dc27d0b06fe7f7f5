"""Finding and loading a spec's ``entrypoint`` (``path/to/file.py:function`` or ``pkg.mod:fn``)."""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SpecError, TrialError

if TYPE_CHECKING:
    from sweeper.spec import Spec

__all__ = ["check_entrypoint", "load_entrypoint"]

_FORMS = "'path/to/file.py:function' or 'package.module:function'"


def _split(spec: Spec) -> tuple[str, str]:
    # Adapters that read an entry point require it: the loader rejects a spec without one.
    target, sep, function = (spec.entrypoint or "").rpartition(":")
    if not sep or not target or not function.isidentifier():
        raise SpecError(
            f"entrypoint must be {_FORMS}, got {spec.entrypoint!r}",
            file=_file(spec),
            field="entrypoint",
        )
    return target, function


def _file(spec: Spec) -> str | None:
    return spec.label


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _find_module(target: str, base_dir: Path) -> ModuleSpec | None:
    """Where ``import target`` finds the module in a trial, which puts ``base_dir`` first on
    ``sys.path``, without importing it or its packages.

    The walk starts afresh from the path, rather than from packages already imported here: a
    user's own package (``frameworks/``, ``models/``) in the spec's folder is what the trial
    imports, whatever module of that name this process holds. Modules only a meta-path finder
    knows (editable installs) are left to :func:`importlib.util.find_spec`.
    """
    search: list[str] | None = [str(base_dir), *sys.path]
    found = None
    parts = target.split(".")
    for depth in range(1, len(parts) + 1):
        if search is None:  # a module, not a package, on the way
            return None
        try:
            found = PathFinder.find_spec(".".join(parts[:depth]), search)
        except (ImportError, ValueError):
            found = None
        if found is None:
            break
        search = list(found.submodule_search_locations or []) or None
    if found is not None:
        return found
    # Only a meta-path finder knows it (an editable install). find_spec of a dotted name
    # imports its parent packages, running their code: ask it for the top-level name only,
    # then walk on through the package's folders.
    with _on_path(base_dir):
        try:
            found = importlib.util.find_spec(parts[0])
        except (ImportError, ValueError):
            return None
    for depth in range(2, len(parts) + 1):
        search = list(found.submodule_search_locations or []) if found is not None else []
        if not search:
            return None
        try:
            found = PathFinder.find_spec(".".join(parts[:depth]), search)
        except (ImportError, ValueError):
            return None
    return found


def check_entrypoint(spec: Spec) -> None:
    """Check that the entry point's file or module exists and defines the function.

    Python files are read, not imported, so validation never imports the framework.

    Raises:
        SpecError: Naming the ``entrypoint`` field.
    """
    target, function = _split(spec)
    if not _is_path(target):
        found = _find_module(target, spec.base_dir)
        if found is None:
            raise SpecError(
                f"entrypoint module must be importable, got {target!r}",
                file=_file(spec),
                field="entrypoint",
                hint=f"check the name or install the package; a file is written as {_FORMS}",
            )
        if not (found.origin and found.origin.endswith(".py")):
            return  # an extension or namespace module: only importing it would tell
        path = Path(found.origin)
    else:
        path = spec.resolve(target)
    if not path.is_file():
        raise SpecError(
            f"entrypoint file must exist, got {target!r} ({path} is missing)",
            file=_file(spec),
            field="entrypoint",
            hint=f"relative paths are relative to {spec.base_dir}",
        )
    try:
        names = _defined_names(path)
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte, before Python 3.12
        line = getattr(exc, "lineno", None)
        got = f"a syntax error at line {line}" if line else str(getattr(exc, "msg", exc))
        raise SpecError(
            f"entrypoint file must be valid Python, got {got}",
            file=_file(spec),
            field="entrypoint",
            hint=None if _is_path(target) else f"in {path}",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            f"entrypoint file must be readable UTF-8 Python, got {type(exc).__name__}: {exc}",
            file=_file(spec),
            field="entrypoint",
        ) from None
    if function not in names and "*" not in names:  # a star import could define it
        close = difflib.get_close_matches(function, sorted(names), n=1)
        raise SpecError(
            f"entrypoint function must be defined in {target}, got {function!r}",
            file=_file(spec),
            field="entrypoint",
            hint=f"did you mean {close[0]!r}?" if close else None,
        )


class _on_path:
    """Put a directory first on ``sys.path`` for the block (the user's code imports siblings)."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)

    def __enter__(self) -> None:
        sys.path.insert(0, self.directory)

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):
            sys.path.remove(self.directory)


_CACHE: dict[tuple[str, float], Callable[..., Any]] = {}


def load_entrypoint(spec: Spec) -> Callable[..., Any]:
    """Import the entry point and return its function (in the trial's process).

    Raises:
        TrialError: If the entry point's file cannot be imported.
    """
    target, function = _split(spec)
    if _is_path(target):
        path = spec.resolve(target)
        # Ray reuses trial actors; import each file once per process unless it changed.
        key = (str(path), path.stat().st_mtime)
        if key not in _CACHE:
            module_name = f"_sweeper_entry_{abs(hash(key))}"
            loader_spec = importlib.util.spec_from_file_location(module_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise TrialError(f"cannot import entrypoint file {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            loader_spec.loader.exec_module(module)
            _CACHE[key] = getattr(module, function)
        return _CACHE[key]
    if str(spec.base_dir) not in sys.path:
        sys.path.insert(0, str(spec.base_dir))
    return getattr(importlib.import_module(target), function)
