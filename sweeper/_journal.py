"""A sweep's durable record on disk: ``state.json`` (the sweep) and ``trials.jsonl`` (its trials).

Ray Tune saves its experiment state every few seconds, so a driver killed between two saves
loses what finished in between, and a restored Tune run repeats it. sweeper appends every trial
event to ``trials.jsonl`` as it happens (one JSON object per line; a torn last line from a kill
is skipped on reading), which makes the journal, not Tune's state, what ``sweeper resume`` and
``sweeper status`` read.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sweeper._layout import JOURNAL_FILE, STATE_FILE

__all__ = [
    "FINAL_STATES",
    "Journal",
    "SweepState",
    "TrialRecord",
    "drop_torn_tail",
    "read_journal",
]


# A trial ends in one of these; "halted" trials (interrupted by a stop, a budget or a crash)
# run again on resume, the others do not (failed ones only with --retry-failed).
FINAL_STATES = ("completed", "stopped", "failed", "halted")
# The phases a running trial goes through, in order.
PHASES = ("queued", "starting", "staging", "running", "storing")


@dataclass
class TrialRecord:
    """What sweeper knows about one trial: its state, timestamps, metrics and GPU time.

    ``times`` maps each state the trial entered (queued, staging, running, storing and its final
    state) to when it last entered it. ``gpu_seconds`` adds up every attempt, from the moment
    the trial held its GPUs until its results were stored.
    """

    name: str
    params: dict[str, Any]
    state: str = "queued"
    times: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    best: float | None = None
    error: str | None = None
    run_id: str | None = None
    attempts: int = 0
    gpus: float = 0.0
    held_seconds: float = 0.0
    gpu_seconds: float = 0.0
    attempt_started: float | None = None
    node: str | None = None
    actor_id: str | None = None
    pid: int | None = None
    # A population-based schedule's exploits of this trial: each {step, from, params}.
    lineage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started(self) -> float | None:
        """When the trial last started to hold its resources."""
        return self.times.get("starting")

    @property
    def ended(self) -> float | None:
        """When the trial reached its final state (``None`` while it is not in one)."""
        return self.times.get(self.state) if self.state in FINAL_STATES else None

    @property
    def duration(self) -> float:
        """Seconds the trial held its resources, over all its attempts (the one running too)."""
        if self.attempt_started is None:
            return self.held_seconds
        return self.held_seconds + max(0.0, time.time() - self.attempt_started)

    def running_gpu_seconds(self, now: float | None = None) -> float:
        """GPU-seconds so far, the attempt in progress included."""
        if self.attempt_started is None:
            return self.gpu_seconds
        return self.gpu_seconds + self.gpus * max(0.0, (now or time.time()) - self.attempt_started)

    def enter(self, state: str, at: float | None = None) -> None:
        self.state = state
        self.times[state] = at if at is not None else time.time()

    def end_attempt(self, at: float) -> None:
        """Close the attempt in progress: its GPU time counts from here on."""
        if self.attempt_started is not None:
            held = max(0.0, at - self.attempt_started)
            self.held_seconds += held
            self.gpu_seconds += self.gpus * held
            self.attempt_started = None


def drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill or a full disk left without its newline.

    Appending after it would glue the next entry onto it, and both would be unreadable (for
    Optuna's journal, which refuses a bad line anywhere but last, the whole study). What it
    held was never fully written, so nothing recorded is lost.
    """
    try:
        with open(path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            # Back to the end of the last whole line, a block at a time.
            end = size
            while end > 0:
                start = max(0, end - 65536)
                handle.seek(start)
                cut = handle.read(end - start).rfind(b"\n")
                if cut >= 0:
                    handle.truncate(start + cut + 1)
                    return
                end = start
            handle.truncate(0)
    except FileNotFoundError:
        return


class Journal:
    """Appends trial events to ``trials.jsonl``; each line is flushed as it is written."""

    def __init__(self, sweep_dir: Path) -> None:
        self.path = sweep_dir / JOURNAL_FILE
        drop_torn_tail(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open

    def write(self, record: TrialRecord, event: str, **extra: Any) -> None:
        """Append the record's current state, tagged with the event that changed it."""
        entry = {"event": event, "t": time.time(), **asdict(record), **extra}
        self._handle.write(json.dumps(entry, default=str, allow_nan=True) + "\n")
        self._handle.flush()
        if record.state in FINAL_STATES:
            # A final state must survive a reboot, not only a killed driver.
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


def read_journal(sweep_dir: Path) -> dict[str, TrialRecord]:
    """Every trial's last recorded state (an empty mapping when there is no journal)."""
    path = sweep_dir / JOURNAL_FILE
    records: dict[str, TrialRecord] = {}
    if not path.is_file():
        return records
    fields = set(TrialRecord.__dataclass_fields__)
    last: dict[str, dict[str, Any]] = {}  # a trial's last line: only it becomes a record
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short when the driver was killed
            if isinstance(entry, dict) and "name" in entry:
                last[entry["name"]] = entry
    for name, entry in last.items():
        records[name] = TrialRecord(**{k: v for k, v in entry.items() if k in fields})
    return records


@dataclass
class SweepState:
    """``state.json``: a sweep's identity and lifecycle, rewritten atomically on each change.

    ``status`` is ``running`` while a driver works on it (``pid`` and ``host`` say which),
    then ``completed``, ``halted`` (stopped on purpose or by a budget: resumable) or
    ``failed``. A ``running`` sweep whose driver is gone was interrupted.
    """

    sweep: str
    spec: str
    status: str = "running"
    base_dir: str = ""
    spec_hash: str = ""
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    sessions: int = 0
    pid: int | None = None
    host: str | None = None
    reason: str | None = None
    parent_run_id: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    experiment_id: str | None = None
    gpu_seconds: float = 0.0
    # The sweeps whose trials seeded this one: each {sweep, trials, left_out}.
    seeded_from: list[dict[str, Any]] = field(default_factory=list)
    # Each `sweeper extend`: {at, session, trials, changes, spec} (spec: the one before it).
    extensions: list[dict[str, Any]] = field(default_factory=list)

    def save(self, sweep_dir: Path) -> None:
        self.updated = time.time()
        path = sweep_dir / STATE_FILE
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)

    def claim(self) -> None:
        """Mark the sweep as run by this process from now on."""
        self.status, self.pid, self.host, self.reason = "running", os.getpid(), _host(), None
        self.sessions += 1

    @property
    def driver_alive(self) -> bool:
        """Whether the process that runs the sweep is still alive (on this machine)."""
        if self.status != "running" or self.pid is None:
            return False
        if self.host != _host():
            return True  # another machine's process: assume it lives
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def shown_status(self) -> str:
        """The status as users see it: a running sweep without a driver was interrupted."""
        if self.status == "running" and not self.driver_alive:
            return "interrupted"
        return self.status

    @classmethod
    def load(cls, sweep_dir: Path) -> SweepState | None:
        """The sweep's state, or ``None`` when the folder holds none.

        Raises:
            SweepError: If ``state.json`` is unreadable, not JSON, or holds values of the
                wrong kind.
        """
        path = sweep_dir / STATE_FILE
        if not path.is_file():
            return None
        try:
            return cls._parse(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            from sweeper.errors import SweepError

            raise SweepError(
                f"sweep state must be readable JSON, got {exc}", file=str(path)
            ) from None

    @classmethod
    def _parse(cls, data: Any) -> SweepState:
        if not isinstance(data, dict):
            raise ValueError(f"{STATE_FILE} must hold a JSON object, got {type(data).__name__}")
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name, kinds in _STATE_KINDS.items():
            value = values.get(name)
            optional = value is None and name not in ("created", "updated")
            if name in values and not optional and not _of_kind(value, kinds):
                shown = " or ".join(kind.__name__ for kind in kinds)
                raise ValueError(f"{STATE_FILE} field {name} must be {shown}, got {value!r}")
        for name in ("sweep", "spec"):
            value = values.get(name)
            if not isinstance(value, str):
                raise ValueError(f"{STATE_FILE} field {name} must be text, got {value!r}")
        return cls(**values)


# The types state.json's fields must have (a damaged file must not break `sweeper list`).
_STATE_KINDS: dict[str, tuple[type, ...]] = {
    "status": (str,),
    "base_dir": (str,),
    "spec_hash": (str,),
    "created": (int, float),
    "updated": (int, float),
    "sessions": (int,),
    "pid": (int,),
    "host": (str,),
    "reason": (str,),
    "parent_run_id": (str,),
    "tracking_uri": (str,),
    "experiment": (str,),
    "experiment_id": (str,),
    "gpu_seconds": (int, float),
    "seeded_from": (list,),
    "extensions": (list,),
}


def _of_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def _host() -> str:
    return socket.gethostname()
