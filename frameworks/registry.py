"""Looking framework adapters up by the name a spec gives in ``framework:``.

Built-ins and entry-point plug-ins can be found by name in any process. A class given to
:func:`register` is known only to the processes that ran the call, so the driver resolves the
spec's adapter once, and the class itself travels to the trials' actors in the trial plan
(see :func:`for_workers`).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from sweeper.errors import SpecError

if TYPE_CHECKING:
    from sweeper.frameworks.base import FrameworkAdapter

__all__ = ["available", "block_keys", "for_workers", "get_adapter_class", "register"]

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
    """Register an adapter class under its ``name`` (usable as a class decorator).

    Call it before the spec is loaded; the sweep's trials then run the class, wherever its
    module is defined (a test module, a notebook, ``__main__``).
    """
    _REGISTERED[adapter.name] = adapter
    return adapter


def for_workers(adapter: type[FrameworkAdapter]) -> type[FrameworkAdapter]:
    """Make sure ``adapter`` can be unpickled in Ray's worker processes, and return it.

    Ray pickles a class by reference (its module and name) when its module was imported, and a
    worker then imports that module again. That works for built-ins and installed plug-ins, but
    not for a class registered from a module the workers cannot import (a test file, a
    notebook cell's module): its module is pickled by value instead, as Ray does for
    ``__main__``.
    """
    if _REGISTERED.get(adapter.name) is adapter:
        module = sys.modules.get(adapter.__module__)
        if module is not None and module.__name__ != "__main__":
            from ray import cloudpickle

            cloudpickle.register_pickle_by_value(module)
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


def block_keys() -> dict[str, list[str]]:
    """The top-level spec keys adapters claim for their own blocks, each with its frameworks.

    A plug-in that fails to import claims nothing: it must not hide the user's real error.
    """
    keys: dict[str, list[str]] = {}
    for name in available():
        try:
            key = get_adapter_class(name).block_key()
        except Exception:
            continue
        if key is not None:
            keys.setdefault(key, []).append(name)
    return keys
