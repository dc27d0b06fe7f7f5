"""Looking framework adapters up by the name a spec gives in ``framework:``."""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from sweeper.errors import SpecError

if TYPE_CHECKING:
    from sweeper.frameworks.base import FrameworkAdapter

__all__ = ["available", "get_adapter_class", "register"]

# Built-ins are imported lazily by dotted path so that listing them never imports a framework.
_BUILTINS: dict[str, str] = {
    "caffe": "sweeper.frameworks.caffe:CaffeAdapter",
    "command": "sweeper.frameworks.command:CommandAdapter",
    "python": "sweeper.frameworks.python:PythonAdapter",
    "pytorch": "sweeper.frameworks.pytorch:PyTorchAdapter",
    "tensorflow": "sweeper.frameworks.tensorflow:TensorFlowAdapter",
}
_REGISTERED: dict[str, type[FrameworkAdapter]] = {}
GROUP = "sweeper.frameworks"


def register(adapter: type[FrameworkAdapter]) -> type[FrameworkAdapter]:
    """Register an adapter class under its ``name`` (usable as a class decorator)."""
    _REGISTERED[adapter.name] = adapter
    return adapter


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """The names ``framework:`` accepts: built-ins, registered and installed plug-ins."""
    return sorted({*_BUILTINS, *_REGISTERED, *_plugins()})


def get_adapter_class(name: str, *, file: str | None = None) -> type[FrameworkAdapter]:
    """The adapter class for ``name``.

    Raises:
        SpecError: If no adapter has that name (naming the spec's ``framework`` field).
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = _BUILTINS.get(name) or _plugins().get(name)
    if target is None:
        names = available()
        close = difflib.get_close_matches(name, names, n=1)
        raise SpecError(
            f"framework must be one of {', '.join(names)}, got {name!r}",
            file=file,
            field="framework",
            hint=f"did you mean {close[0]!r}?" if close else None,
        )
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
