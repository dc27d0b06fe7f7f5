"""Optuna's NSGA samplers, made picklable.

Tune pickles the search algorithm with the experiment's state (``Tuner`` does it on creation),
and Optuna's ``NSGAIISampler`` and ``NSGAIIISampler`` hold a ``threading.Lock``, which cannot
be pickled. These subclasses leave locks out of their pickled state and make new ones when
unpickled; nothing else changes (sweeper's study lives in its journal, not in the pickle).
Imports Optuna: import this module only where a sampler is made.
"""

from __future__ import annotations

import threading
from typing import Any

import optuna

__all__ = ["NSGAIIISampler", "NSGAIISampler"]

_LOCK = type(threading.Lock())


class _WithoutLocks:
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sweeper_locks"] = [k for k, v in state.items() if isinstance(v, _LOCK)]
        for key in state["_sweeper_locks"]:
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        locks = state.pop("_sweeper_locks", [])
        self.__dict__.update(state)
        for key in locks:
            setattr(self, key, threading.Lock())


class NSGAIISampler(_WithoutLocks, optuna.samplers.NSGAIISampler):
    """Optuna's ``NSGAIISampler``, picklable."""


class NSGAIIISampler(_WithoutLocks, optuna.samplers.NSGAIIISampler):
    """Optuna's ``NSGAIIISampler``, picklable."""
