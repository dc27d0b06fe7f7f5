"""A Tune callback that follows every trial of a sweep: state, metrics, MLflow, console."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import cloudpickle
from ray.tune import Callback

from frameworks.context import REPORTED_KEY
from sweeper._trial import ERROR_FILE

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from sweeper._trial import TrialPlan
    from sweeper.tracking import Tracker

__all__ = ["SweepRecorder", "TrialRecord"]


@dataclass
class TrialRecord:
    """What sweeper knows about one trial."""

    name: str
    params: dict[str, Any]
    state: str = "running"
    started: float = field(default_factory=time.time)
    ended: float | None = None
    steps: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    best: float | None = None
    error: str | None = None
    run_id: str | None = None

    @property
    def duration(self) -> float:
        return (self.ended or time.time()) - self.started


def _error_text(trial: Trial, error_file: Path) -> str:
    """The trial's error as sweeper raised it, without Ray's wrapping and traceback."""
    if error_file.is_file():
        return error_file.read_text(encoding="utf-8", errors="replace").strip()
    # No file from the trial: its process died before it could write one. Tune keeps what Ray
    # saw in the trial's local folder (its storage copy is synced only later).
    pickled = Path(trial.local_path or "", trial.run_metadata.pickled_error_filename or "")
    try:
        with open(pickled, "rb") as handle:
            error = cloudpickle.load(handle)
    except Exception:
        return "the trial's process died without an error message"
    return str(getattr(error, "cause", None) or error).strip()


class SweepRecorder(Callback):
    """Keeps a :class:`TrialRecord` per trial and fans events out to MLflow and the console.

    Args:
        plan: The sweep's plan (spec and folders).
        tracker: Where metrics and runs go (``None``: no tracking).
        on_event: Called as ``on_event(kind, record)`` for ``start``, ``end``.
    """

    def __init__(
        self,
        plan: TrialPlan,
        tracker: Tracker | None,
        tags: dict[str, str],
        on_event: Callable[[str, TrialRecord], None] | None = None,
    ) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.tracker = tracker
        self.tags = tags
        self.on_event = on_event
        self.records: dict[str, TrialRecord] = {}
        self._maximize = self.spec.search.mode == "max"

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state; the live tracker (a thread) and
        # the console stay behind and are supplied again on restore.
        return {**self.__dict__, "tracker": None, "on_event": None}

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        name = str(trial)
        params = self.plan.params(trial.config)
        record = self.records[name] = TrialRecord(name, params)
        if self.tracker:
            tags = {**self.tags, "sweeper.trial": name}
            store = self.plan.store
            if store is not None and store.results_uri:
                tags["sweeper.artifacts"] = store.target(self.plan.sweep, name)
            else:
                tags["sweeper.artifacts"] = str(self.plan.trial_dir(name))
            tags.pop("sweeper.results", None)
            self.tracker.start_trial(name, params, tags)
        self._emit("start", record)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        record = self.records.get(str(trial))
        if record is None:
            return
        names = result.get(REPORTED_KEY) or []
        metrics = {k: result[k] for k in names if k in result}
        step = int(result.get("step", record.steps + 1))
        record.steps = step
        record.metrics.update(metrics)
        value = metrics.get(self.spec.search.metric)
        if (
            value is not None
            and not math.isnan(value)
            and (
                record.best is None
                or (value > record.best if self._maximize else value < record.best)
            )
        ):
            record.best = value
        if self.tracker and metrics:
            self.tracker.log_metrics(record.name, metrics, step)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._end(trial, "completed", "FINISHED")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        error_file = self.plan.trial_dir(str(trial)) / ERROR_FILE
        self._end(trial, "failed", "FAILED", _error_text(trial, error_file))

    def _end(self, trial: Trial, state: str, status: str, error: str | None = None) -> None:
        record = self.records.get(str(trial))
        if record is None or record.ended is not None:
            return
        record.state, record.ended, record.error = state, time.time(), error
        if self.tracker:
            tags = {"sweeper.state": state}
            if error:
                tags["sweeper.error"] = error[-5000:]
            self.tracker.end_trial(record.name, status, tags)
        self._emit("end", record)

    def _emit(self, kind: str, record: TrialRecord) -> None:
        if self.on_event is not None:
            self.on_event(kind, record)

    def finish(self) -> None:
        """Resolve MLflow run ids (after the tracker flushed) and close trials left open."""
        for record in self.records.values():
            if record.ended is None:
                record.state, record.ended = "halted", time.time()
            if self.tracker:
                record.run_id = self.tracker.run_id(record.name)
