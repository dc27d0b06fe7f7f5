"""A Tune callback that follows every trial of a sweep: states, metrics, GPU time, MLflow.

Each change of a trial's state is appended to the sweep's journal (see :mod:`sweeper._journal`)
as it happens, sent to MLflow and passed to the console.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray import cloudpickle
from ray.tune import Callback

from sweeper import _compat
from sweeper._journal import FINAL_STATES, TrialRecord
from sweeper._layout import ATTEMPT_FILE, ERROR_FILE, LOG_FILE, OUTPUT_DIR
from sweeper.errors import TrialError
from sweeper.frameworks.context import REPORTED_KEY
from sweeper.results import feasible
from sweeper.tracking import TAG_LENGTH

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from sweeper._journal import Journal
    from sweeper.execution._plan import TrialPlan
    from sweeper.execution._stopping import SweepControl
    from sweeper.search._optuna import StudyLog
    from sweeper.tracking import Tracker

__all__ = ["MLFLOW_STATUS", "SweepRecorder"]

# The MLflow run status of each final state; tag sweeper.state tells stopped from completed.
MLFLOW_STATUS = {
    "completed": "FINISHED",
    "stopped": "FINISHED",
    "failed": "FAILED",
    "halted": "KILLED",
}
_NOT_ARTIFACTS = {ATTEMPT_FILE}
_BOARD_EVERY = 0.5  # seconds between reads of the phase board
_JOURNAL_RESULTS_EVERY = 5.0  # seconds between journal lines for a trial's latest metrics
# A trial's states between its start and its end.
_UNDER_WAY = ("starting", "staging", "running", "storing")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ray_error(trial: Trial) -> BaseException | None:
    """What Ray reported for the trial's last attempt: Tune keeps it in the trial's folder on
    the driver, wherever the trial ran."""
    pickled = Path(trial.local_path or "", trial.run_metadata.pickled_error_filename or "")
    try:
        with open(pickled, "rb") as handle:
            error = cloudpickle.load(handle)
    except Exception:
        return None
    return getattr(error, "cause", None) or error


def _error_text(trial: Trial, error_file: Path, since: float | None = None) -> str:
    """The trial's error as sweeper raised it, without Ray's wrapping and traceback.

    The error travels back through Ray (it holds the last lines of the log), so the trial's
    folder need not be on the driver's machine. Without it (the process died), the trial's
    ``error.txt`` is read if this attempt wrote one here, else Ray's own account is used.
    """
    reported = _ray_error(trial)
    if isinstance(reported, TrialError):
        return str(reported).strip()
    if _written_since(error_file, since):
        # Empty when the disk filled while it was written.
        with contextlib.suppress(OSError):
            if text := error_file.read_text(encoding="utf-8", errors="replace").strip():
                return text
    if reported is not None:
        return str(reported).strip()
    return "the trial's process died without an error message"


def _written_since(path: Path, since: float | None) -> bool:
    """Whether ``path`` is a file this attempt (started at ``since``) wrote."""
    try:
        return path.is_file() and (since is None or path.stat().st_mtime >= since - 1.0)
    except OSError:
        return False


def _artifact_files(folder: Path) -> list[tuple[Path, str | None]]:
    """A trial's files worth keeping with its MLflow run: its own top-level files (params,
    log, error) and everything under ``output/``; not checkpoints or links to the code."""
    files: list[tuple[Path, str | None]] = []
    if not folder.is_dir():
        return files
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.is_symlink() and path.name not in _NOT_ARTIFACTS:
            files.append((path, None))
    output = folder / OUTPUT_DIR
    for path in sorted(output.rglob("*")) if output.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            files.append((path, path.parent.relative_to(folder).as_posix()))
    return files


class SweepRecorder(Callback):
    """Keeps a :class:`TrialRecord` per trial and fans events out to MLflow and the console.

    Args:
        plan: The sweep's plan (spec and folders).
        tracker: Where metrics and runs go (``None``: no tracking).
        tags: MLflow tags every child run gets.
        journal: The sweep's journal (``None``: nothing written).
        control: The session's control (which trials a scheduler stopped).
        board: The phase board trials write to (``None``: phases are not followed).
        records: Trials of earlier sessions of the sweep (resume).
        on_event: Called as ``on_event(kind, record)`` for ``start``, ``retry`` and ``end``.
    """

    def __init__(
        self,
        plan: TrialPlan,
        tracker: Tracker | None,
        tags: dict[str, str],
        *,
        journal: Journal | None = None,
        control: SweepControl | None = None,
        board: Any = None,
        records: dict[str, TrialRecord] | None = None,
        on_event: Callable[[str, TrialRecord], None] | None = None,
    ) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.tracker = tracker
        self.tags = tags
        self.journal = journal
        self.control = control
        self.board = board
        self.on_event = on_event
        self.records: dict[str, TrialRecord] = dict(records or {})
        self.log_artifacts = True  # the trials' files go to their MLflow runs
        self.study_log: StudyLog | None = None  # a grid or random sweep's study
        self.session: set[str] = set()  # trials this session ran or queued
        self._seen: set[str] = set()
        self._maximize = self.spec.search.mode == "max"
        self._board_read = 0.0
        self._journaled: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state; live handles stay behind.
        live = ("tracker", "on_event", "journal", "board", "control", "study_log")
        return {**self.__dict__, **dict.fromkeys(live)}

    # -- what others read ----------------------------------------------------------------------

    def usage(self) -> tuple[int, float]:
        """Failed trials and GPU-seconds so far (running attempts included), for the budgets."""
        now = time.time()
        failed = sum(1 for r in self.records.values() if r.state == "failed")
        return failed, sum(r.running_gpu_seconds(now) for r in self.records.values())

    def gpu_seconds_of(self, name: str) -> float:
        """A trial's GPU time so far (its attempt in progress included)."""
        record = self.records.get(name)
        return record.running_gpu_seconds() if record is not None else 0.0

    def queue(self, name: str, params: dict[str, Any]) -> None:
        """Note a trial this session will run: grid and random points wait from the start,
        though Tune creates their trials only as the concurrency cap lets them run."""
        record = self.records.get(name)
        if record is None:
            record = self.records[name] = TrialRecord(
                name, params, gpus=float(self.spec.resources.trial_gpus)
            )
        self.session.add(name)
        record.enter("queued")
        self._write(record, "queued")

    # -- Tune's events -------------------------------------------------------------------------

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        for trial in trials:
            if trial.trial_id not in self._seen and trial.status == "PENDING":
                self._seen.add(trial.trial_id)
                record = self._record(trial)
                if record.state != "queued":
                    record.enter("queued")
                    self._write(record, "queued")
        if time.time() - self._board_read >= _BOARD_EVERY:
            self._read_board()

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._seen.add(trial.trial_id)
        record = self._record(trial)
        now = time.time()
        if record.state in _UNDER_WAY and record.attempt_started is not None:
            # Paused and started again, never ended: a population-based schedule's pause at
            # a perturbation (to continue from its own or another trial's checkpoint). The
            # same attempt goes on.
            record.enter("starting", now)
            self._write(record, "start")
            return
        record.attempts += 1
        record.attempt_started = now
        record.actor_id = _compat.actor_id(trial)
        record.error = None
        record.enter("starting", now)
        if self.tracker:
            if not self.tracker.has_trial(record.name):
                tags = self._run_tags(record.name)
                if "halted" in record.times:
                    # Halted before its run was created (a driver killed at once): say so.
                    tags["sweeper.interrupted"] = "true"
                self.tracker.start_trial(record.name, record.params, tags)
            else:  # a retry, or a trial an earlier session left unfinished
                self.tracker.reopen_trial(record.name, {"sweeper.attempts": str(record.attempts)})
        self._write(record, "start")
        self._emit("start", record)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        record = self.records.get(str(trial))
        if record is None:
            return
        if record.state != "running":
            self._read_board()  # the trial reports, so it has said it runs
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
        if self.study_log is not None and value is not None:
            self.study_log.reported(record.name, step, value)
        now = time.time()
        if now - self._journaled.get(record.name, 0.0) >= _JOURNAL_RESULTS_EVERY:
            self._journaled[record.name] = now
            self._write(record, "result")

    def on_exploit(self, trial: Trial, donor: Trial, config: dict[str, Any]) -> None:
        """A population-based schedule made ``trial`` continue from ``donor``'s checkpoint
        with ``config`` (on the driver, from the scheduler): journal the new parameters and
        show the change in MLflow, as metrics ``pbt.<name>`` at this step (numbers) and the
        tags ``sweeper.pbt.copied_from`` and ``sweeper.pbt.history``."""
        record = self.records.get(str(trial))
        if record is None:
            return
        params = self.plan.params(config)
        changed = {k: v for k, v in params.items() if record.params.get(k) != v}
        source = self.records.get(str(donor))
        if source is not None:
            # The trial now is the donor's state: its metrics and step, until it reports.
            record.metrics.update(source.metrics)
            record.steps = source.steps
        step = record.steps
        record.params = params
        mutated = {k: params[k] for k in self.spec.mutations if k in params}
        record.lineage.append({"step": step, "from": str(donor), "params": mutated})
        if self.tracker:
            numbers = {f"pbt.{k}": float(v) for k, v in changed.items() if _is_number(v)}
            if numbers:
                self.tracker.log_metrics(record.name, numbers, step)
            self.tracker.tag_trial(record.name, self._lineage_tags(record))
        self._write(record, "exploit")
        self._emit("exploit", record)

    def _lineage_tags(self, record: TrialRecord) -> dict[str, str]:
        history = json.dumps(record.lineage, default=str)
        if len(history) > TAG_LENGTH:  # MLflow's limit: the latest exploits are kept
            kept = list(record.lineage)
            while kept and len(json.dumps(kept, default=str)) > TAG_LENGTH:
                kept.pop(0)
            history = json.dumps(kept, default=str)
        return {
            "sweeper.pbt.copied_from": str(record.lineage[-1]["from"]),
            "sweeper.pbt.exploits": str(len(record.lineage)),
            "sweeper.pbt.history": history,
        }

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """A failed trial will run again (``limits.max_failures``)."""
        self._read_board()
        record = self.records.get(str(trial))
        if record is None:
            return
        error_file = self.plan.trial_dir(record.name) / ERROR_FILE
        record.error = _error_text(trial, error_file, record.attempt_started)
        record.end_attempt(self._stored_at(record) or time.time())
        record.enter("queued")
        self._write(record, "retry")
        self._emit("retry", record)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        # Tune reports a trial its scheduler stopped as complete too.
        stopped = self.control is not None and trial.trial_id in self.control.early_stopped
        self._end(trial, "stopped" if stopped else "completed")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        error_file = self.plan.trial_dir(str(trial)) / ERROR_FILE
        record = self.records.get(str(trial))
        since = record.attempt_started if record is not None else None
        text = _error_text(trial, error_file, since)
        if not _written_since(error_file, since) and error_file.parent.is_dir():
            # The trial's process died (SIGKILL, out of memory) before it could write its
            # error: the driver writes it, with the log's last lines, as the trial would have.
            from sweeper.execution._trial import tail

            log = error_file.with_name(LOG_FILE)
            text = f"{text}\n--- last lines of {log} ---\n{tail(log)}"
            with contextlib.suppress(OSError):
                error_file.write_text(text + "\n", encoding="utf-8")
        self._end(trial, "failed", text)

    # -- the end of the session ----------------------------------------------------------------

    def finish(self) -> None:
        """Close this session's trials that did not end: a halt, a crash or Ctrl-C stopped them.

        They count as halted and run again when the sweep is resumed.
        """
        self._read_board()
        now = time.time()
        for name in sorted(self.session):
            record = self.records[name]
            if record.state in FINAL_STATES:
                continue
            if record.attempts == 0:
                del self.records[name]  # never started: it is simply still to run
                continue
            record.end_attempt(now)
            self._finalize(record, "halted", now)

    # -- helpers -------------------------------------------------------------------------------

    def _record(self, trial: Trial) -> TrialRecord:
        name = str(trial)
        record = self.records.get(name)
        if record is None:
            record = self.records[name] = TrialRecord(
                name, self.plan.params(trial.config), gpus=float(self.spec.resources.trial_gpus)
            )
        self.session.add(name)
        return record

    def _run_tags(self, name: str) -> dict[str, str]:
        tags = {**self.tags, "sweeper.trial": name}
        store = self.plan.store
        if store is not None and store.results_uri:
            tags["sweeper.artifacts"] = store.target(self.plan.sweep, name)
        else:
            tags["sweeper.artifacts"] = str(self.plan.trial_dir(name))
        tags.pop("sweeper.results", None)
        return tags

    def _end(self, trial: Trial, state: str, error: str | None = None) -> None:
        self._read_board()
        record = self.records.get(str(trial))
        if record is None or record.state in FINAL_STATES:
            return
        now = time.time()
        record.end_attempt(self._stored_at(record) or now)
        record.error = error
        self._finalize(record, state, now)

    def _finalize(self, record: TrialRecord, state: str, at: float) -> None:
        record.enter(state, at)
        if self.tracker:
            tags = {"sweeper.state": state, "sweeper.attempts": str(record.attempts)}
            if record.error:
                tags["sweeper.error"] = record.error[-5000:]
            if self.spec.search.constraints:
                verdict = feasible(self.spec, record.metrics)
                tags["sweeper.feasible"] = "unknown" if verdict is None else str(verdict).lower()
            if self.log_artifacts:
                self.tracker.log_trial_artifacts(record.name, self._gatherer(record))
            metrics = {}
            if record.best is not None and math.isfinite(record.best):
                # Its best value over its steps; the parent's sweep/best_<metric> is the
                # sweep's best final value.
                metrics[f"peak_{self.spec.search.metric}"] = record.best
            if record.gpus:
                metrics["gpu_seconds"] = record.gpu_seconds
            self.tracker.end_trial(record.name, MLFLOW_STATUS[state], tags, metrics=metrics)
        self._write(record, state)
        if self.study_log is not None:
            self.study_log.ended(record)
        self._emit("end", record)

    def _gatherer(self, record: TrialRecord) -> Callable[[Path], list[tuple[Path, str | None]]]:
        """How the MLflow writer finds a trial's files: in its folder here when the trial last
        ran on the driver's node (or the folder is shared), else in the results store."""
        plan, name = self.plan, record.name
        store = plan.store
        remote = (
            plan.driver_node is not None
            and record.node is not None
            and record.node != plan.driver_node
        )

        def gather(scratch: Path) -> list[tuple[Path, str | None]]:
            if remote and store is not None and store.results_uri:
                store.fetch_files(
                    plan.sweep,
                    name,
                    scratch,
                    lambda rel: (
                        ("/" not in rel and rel not in _NOT_ARTIFACTS) or rel.startswith("output/")
                    ),
                )
                return _artifact_files(scratch)
            return _artifact_files(plan.trial_dir(name))

        return gather

    def _stored_at(self, record: TrialRecord) -> float | None:
        """When the attempt in progress stored its results, if the board said so."""
        stored = record.times.get("stored")
        start = record.attempt_started
        return stored if stored is not None and start is not None and stored >= start else None

    def _read_board(self) -> None:
        self._board_read = time.time()
        if self.board is None or not ray.is_initialized():
            return  # after Ray's shutdown (an error path): nothing may start it again
        try:
            events = ray.get(self.board.take.remote(), timeout=10)
        except Exception:
            return
        for name, phase, at, info in events:
            record = self.records.get(name)
            if record is None or record.state in FINAL_STATES:
                continue
            if info.get("node"):
                record.node = info["node"]
            if info.get("pid"):
                record.pid = int(info["pid"])
            if phase == "stored":
                record.times["stored"] = at
            else:
                if info.get("gang") and record.state == "starting" and record.attempt_started:
                    # A trial of several learners holds its GPUs once they are all placed.
                    record.attempt_started = max(record.attempt_started, at)
                record.enter(phase, at)
                self._write(record, phase)

    def _write(self, record: TrialRecord, event: str) -> None:
        if self.journal is not None:
            self.journal.write(record, event)

    def _emit(self, kind: str, record: TrialRecord) -> None:
        if self.on_event is not None:
            self.on_event(kind, record)
