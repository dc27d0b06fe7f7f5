"""Trials tell the driver which phase they are in through a small Ray actor.

Tune carries only results from a trial to the driver, and a result that is not a metric would
reach Tune's schedulers and searchers too; phases (staging data, running, storing results) go
through this board instead, which the driver reads between Tune's steps. An actor works the same
on one machine and on a cluster, where the driver cannot see the trial's files.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import ray

__all__ = ["PhaseBoard", "mark_phase"]


@ray.remote(num_cpus=0, max_restarts=0)
class PhaseBoard:
    """Holds phase events until the driver takes them."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, float, dict[str, Any]]] = []

    def mark(self, trial: str, phase: str, at: float, info: dict[str, Any]) -> None:
        self._events.append((trial, phase, at, info))

    def take(self) -> list[tuple[str, str, float, dict[str, Any]]]:
        events, self._events = self._events, []
        return events


def mark_phase(board: Any, trial: str, phase: str, **info: Any) -> None:
    """Record that ``trial`` entered ``phase`` now; waits until the board has it, so the driver
    always sees a trial's phases before its end. A board that is gone is ignored."""
    if board is None:
        return
    # If the driver is shutting down, the phase no longer matters.
    with contextlib.suppress(Exception):
        ray.get(board.mark.remote(trial, phase, time.time(), info), timeout=10)
