"""Sweeps on disk, read from any terminal: also while another process runs them.

A sweep's folder holds its state (``state.json``, rewritten atomically) and its journal
(``trials.jsonl``, appended to as trials change state). :class:`Sweep` reads both, so its
``results`` are live while the sweep runs and the same as ``results.csv`` once it ended.

pandas is imported only for the DataFrames (:attr:`Sweep.results`, :meth:`Sweep.top`,
:func:`export`): ``rows``, ``top_rows``, ``counts`` and the rest are plain Python, which keeps
``sweeper status`` and ``show`` quick on a big sweep.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from sweeper._format import first_line, is_missing
from sweeper._journal import FINAL_STATES, SweepState, TrialRecord, read_journal
from sweeper._layout import (
    LOG_FILE,
    POINTS_FILE,
    RESULTS_FILE,
    SPEC_FILE,
    STORE_FILE,
    find_sweep,
    is_sweep_dir,
    is_trial_name,
    trial_dir,
    trial_name,
)
from sweeper.errors import NotFoundError, SpecError, SweeperError, UsageError
from sweeper.results import best_rows, best_trials, result_rows, rows_frame
from sweeper.spec import Objective, Search, Spec

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.settings import Settings

__all__ = ["EXPORT_FORMATS", "Sweep", "export", "list_sweeps", "load"]

EXPORT_FORMATS = ("csv", "parquet", "json")


class Sweep:
    """One sweep's folder as it stands on disk; :meth:`refresh` reads it again.

    Attributes:
        sweep: The sweep's id (its folder's name).
        sweep_dir: The sweep's folder.
        state: ``state.json``: status, driver, sessions, MLflow parent run.
    """

    def __init__(self, sweep_dir: str | Path) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.refresh()

    def refresh(self) -> Sweep:
        """Read ``state.json`` and the journal again (what a running sweep changed since)."""
        state = SweepState.load(self.sweep_dir)
        if state is None:
            raise NotFoundError(f"sweep folder must hold state.json, got {str(self.sweep_dir)!r}")
        self.state = state
        self.sweep = state.sweep or self.sweep_dir.name
        for cached in ("records", "rows", "results"):
            self.__dict__.pop(cached, None)
        return self

    def __repr__(self) -> str:
        return f"Sweep({self.sweep!r}, status={self.status!r})"

    # -- the sweep ----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``halted``, ``failed`` or ``interrupted`` (driver gone)."""
        return self.state.shown_status

    @property
    def reason(self) -> str | None:
        """Why the sweep halted or failed."""
        return self.state.reason

    @cached_property
    def spec(self) -> Spec | None:
        """The spec it ran (``spec.yml``), or ``None`` when its files moved since."""
        from sweeper.spec import load_spec

        try:
            return load_spec(self.sweep_dir / SPEC_FILE, base_dir=Path(self.state.base_dir or "."))
        except SpecError:
            return None

    @cached_property
    def spec_fields(self) -> Spec:
        """``spec.yml``'s own fields, validated on their own: unlike :attr:`spec`, the
        training code and data need not be on this machine.

        Raises:
            SpecError: If ``spec.yml`` is missing or is not a valid spec.
        """
        path = self.sweep_dir / SPEC_FILE
        try:
            return Spec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except Exception as exc:
            why = f"{type(exc).__name__}: {first_line(exc)}"
            raise SpecError(f"the sweep's spec must be valid, got {why}", file=str(path)) from None

    @property
    def dimensions(self) -> list[str] | None:
        """The names of the search's dimensions, constants left out (from :attr:`spec_fields`;
        ``None`` when ``spec.yml`` is not a valid spec)."""
        try:
            return list(self.spec_fields.dimensions)
        except SpecError:
            return None

    @cached_property
    def _search(self) -> dict[str, Any]:
        # From the spec's text: there even when its files moved and .spec is None.
        try:
            data = yaml.safe_load((self.sweep_dir / SPEC_FILE).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            data = None
        search = data.get("search") if isinstance(data, dict) else None
        return search if isinstance(search, dict) else {}

    @property
    def metric(self) -> str:
        """The metric the search optimizes (the first of several objectives)."""
        return str(self._search.get("metric") or self._first_objective.get("name") or "")

    @property
    def mode(self) -> Literal["min", "max"]:
        """``min`` or ``max`` (the first objective's)."""
        mode = self._search.get("mode") or self._first_objective.get("mode")
        return "min" if mode == "min" else "max"

    @property
    def _first_objective(self) -> dict[str, Any]:
        raw = self._search.get("metrics")
        first = raw[0] if isinstance(raw, list) and raw else None
        return first if isinstance(first, dict) else {}

    @property
    def _ranking(self) -> Spec:
        # All that results_frame and best_trials read of a spec; there even when .spec is None.
        # Partial on purpose: model_construct validates nothing, but mypy wants every field.
        search = Search.model_construct(  # type: ignore[call-arg]
            metric=self.metric,
            mode=self.mode,
            metrics=self.objectives if len(self.objectives) > 1 else None,
            constraints=self.constraints,
        )
        return Spec.model_construct(search=search)  # type: ignore[call-arg]

    @property
    def constraints(self) -> list[str]:
        """The search's constraints on reported metrics, as written."""
        return [str(c) for c in self._search.get("constraints") or []]

    @property
    def objectives(self) -> list[Objective]:
        """What the search optimizes: one objective, or several (a Pareto front)."""
        raw = self._search.get("metrics")
        if isinstance(raw, list) and raw:
            found = []
            for entry in raw:
                if isinstance(entry, dict) and entry.get("name"):
                    mode: Literal["min", "max"] = "min" if entry.get("mode") == "min" else "max"
                    found.append(Objective.model_construct(name=str(entry["name"]), mode=mode))
            if found:
                return found
        return [Objective.model_construct(name=self.metric, mode=self.mode)]

    @property
    def elapsed(self) -> float:
        """Seconds from the sweep's start to now (running) or to the last change it recorded."""
        if self.status == "running":
            return max(0.0, time.time() - self.state.created)
        times = [t for record in self.records.values() for t in record.times.values()]
        return max(0.0, max([self.state.updated, *times]) - self.state.created)

    @property
    def results_uri(self) -> str | None:
        """``s3://bucket/prefix/<sweep>`` when the sweep syncs to an object store, else ``None``."""
        try:
            data = json.loads((self.sweep_dir / STORE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        results = data.get("results") if isinstance(data, dict) else None
        if not results:
            return None
        from sweeper.storage import parse_s3_uri, safe_key

        uri = parse_s3_uri(results)
        return f"s3://{uri.bucket}/{safe_key(uri.prefix, self.sweep)}"

    # -- its trials ---------------------------------------------------------------------------

    @cached_property
    def records(self) -> dict[str, TrialRecord]:
        """Each trial's last journaled state, its clock stopped when read.

        A trial's attempt in progress counts until now, or until the journal last saw it when
        the sweep's driver is gone; trials such a sweep never started are left out (they run on
        resume), as ``results.csv`` leaves them out.
        """
        records = read_journal(self.sweep_dir)
        live = self.state.driver_alive
        now = time.time()
        for name, record in list(records.items()):
            if live or record.state in FINAL_STATES:
                record.end_attempt(now)
            elif record.attempts == 0:
                del records[name]
            else:
                record.end_attempt(max(record.times.values(), default=now))
        return dict(sorted(records.items()))

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per trial, by name, with the columns of ``results.csv``: :attr:`results`
        without pandas (a missing value is ``None``, or NaN when read from ``results.csv``)."""
        saved = self.sweep_dir / RESULTS_FILE
        if not self.records:
            return self.results.to_dict("records") if saved.is_file() else []
        # The journal does not hold MLflow's run ids: the driver adds them at the end.
        ids = _run_ids(saved)
        for record in self.records.values():
            record.run_id = record.run_id or ids.get(record.name)
        return result_rows(self._ranking, self.records.values())

    @cached_property
    def results(self) -> pd.DataFrame:
        """One row per trial, the columns of ``results.csv``; live while the sweep runs."""
        saved = self.sweep_dir / RESULTS_FILE
        if not self.records and saved.is_file():
            import pandas as pd

            return pd.read_csv(saved)
        return rows_frame(self._ranking, self.rows)

    @property
    def best(self) -> pd.Series | None:
        """The best completed trial's row, or ``None``."""
        ranked = self.top(1)
        return None if ranked.empty else ranked.iloc[0]

    def top(self, count: int = 5) -> pd.DataFrame:
        """The ``count`` best completed trials, best first."""
        return best_trials(self._ranking, self.results, count)

    def top_rows(self, count: int | None = 5) -> list[dict[str, Any]]:
        """:meth:`top` as rows of :attr:`rows`, without pandas."""
        return best_rows(self._ranking, self.rows, count)

    def counts(self) -> dict[str, int]:
        """How many trials are in each state, most first."""
        return dict(Counter(str(row["state"]) for row in self.rows).most_common())

    @property
    def trials_done(self) -> int:
        """Trials finished for good: completed, stopped or failed (halted ones run again)."""
        counts = self.counts()
        return sum(counts.get(state, 0) for state in ("completed", "stopped", "failed"))

    @property
    def trials_total(self) -> int:
        """How many trials the sweep runs in all."""
        try:  # a grid's or random search's points, drawn up front
            total = len(json.loads((self.sweep_dir / POINTS_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            trials = self._search.get("trials")
            if isinstance(trials, int):
                total = trials
            else:
                try:  # the spec's own fields give a grid's size: its code need not be here
                    total = self.spec_fields.trial_count()
                except SpecError:
                    total = 0
        return max(total, len(self.rows))

    @property
    def gpu_hours(self) -> float:
        """GPU-hours the sweep's trials held so far, over all sessions."""
        seconds = [row["gpu_seconds"] for row in self.rows]
        return math.fsum(float(s) for s in seconds if not is_missing(s)) / 3600

    def trial_name(self, trial: str | int) -> str:
        """The name of one of the sweep's trials (``7`` and ``0007`` name ``trial-0007``).

        Raises:
            NotFoundError: If the sweep has no such trial.
        """
        text = str(trial).strip()
        name = trial_name(int(text) - 1) if text.isdigit() else text
        if is_trial_name(name) and trial_dir(self.sweep_dir, name).is_dir():
            return name  # the journal is not read: `sweeper logs` answers at once on any sweep
        known = {str(row["trial"]) for row in self.rows}
        if name in known:
            return name
        names = sorted(known)
        have = f"one of {names[0]}..{names[-1]}" if len(names) > 1 else " ".join(names)
        raise NotFoundError(
            f"trial must be {have or 'a started trial'} of sweep {self.sweep}, got {text!r}",
            hint=f"list them with: sweeper status {self.sweep}",
        )

    def trial_dir(self, name: str | int) -> Path:
        """The trial's folder: ``params.json``, ``trial.log``, ``output/``, ``checkpoints/``."""
        return trial_dir(self.sweep_dir, self.trial_name(name))

    def log_path(self, name: str | int) -> Path:
        """The trial's log: everything it printed (it may not exist yet while it is queued)."""
        return self.trial_dir(name) / LOG_FILE


def _run_ids(path: Path) -> dict[str, str]:
    """Each trial's MLflow run id in ``results.csv`` (none when it is missing)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return {
        row["trial"]: row["mlflow_run_id"]
        for row in rows
        if row.get("trial") and row.get("mlflow_run_id")
    }


def load(sweep: str | Path | None, settings: Settings | None = None) -> Sweep:
    """A sweep by what a user types for it: its folder, its id (a folder under ``[results]
    dir``), a spec's name (its newest sweep), a unique id prefix, or ``None`` (the newest).

    Raises:
        NotFoundError: If no such sweep exists.
        SweepError: If its ``state.json`` cannot be read.
    """
    return Sweep(find_sweep(sweep, settings))


def list_sweeps(
    settings: Settings | None = None,
    root: str | Path | None = None,
    skipped: list[tuple[Path, str]] | None = None,
) -> list[Sweep]:
    """Every sweep under ``root`` (default ``[results] dir``), newest first.

    Folders whose ``state.json`` is unreadable or damaged are left out, and added to
    ``skipped`` with the reason when it is given.
    """
    if root is None:
        from sweeper.settings import load_settings

        root = (settings or load_settings()).results.dir
    folder = Path(root).expanduser()
    sweeps = []
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if is_sweep_dir(child):
            try:
                sweeps.append(Sweep(child))
            except SweeperError as error:
                if skipped is not None:
                    skipped.append((child, first_line(error)))
    return sorted(sweeps, key=lambda s: s.state.created, reverse=True)


def export(sweep: Sweep | str | Path, path: str | Path, format: str | None = None) -> Path:
    """Write a sweep's results table as ``csv``, ``parquet`` or ``json`` (a list of records).

    The format is taken from ``path``'s suffix when not given. The file appears whole or not at
    all (written to a temporary file, then renamed).

    Raises:
        UsageError: If the format is not one of :data:`EXPORT_FORMATS`, or the folder of
            ``path`` does not exist.
    """
    sweep = sweep if isinstance(sweep, Sweep) else load(sweep)
    path = Path(path)
    format = (format or path.suffix.lstrip(".")).lower()
    if format not in EXPORT_FORMATS:
        raise UsageError(
            f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}",
            hint="name it with --format or the output file's suffix",
        )
    if not path.parent.is_dir():
        raise UsageError(
            f"export path must be in an existing folder, got {str(path)!r}",
            hint=f"create {path.parent} first",
        )
    frame = sweep.results
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        if format == "csv":
            frame.to_csv(partial, index=False)
        elif format == "parquet":
            _for_parquet(frame).to_parquet(partial, index=False)
        else:
            frame.to_json(partial, orient="records", double_precision=15)
        partial.replace(path)
    except OSError as exc:
        raise SweeperError(
            f"export path must be writable, got {str(path)!r} ({exc.strerror or exc})"
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    return path


def _for_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """Parquet columns hold one type: a parameter whose values mix types becomes JSON text."""
    out = frame.copy()
    for column in out.columns:
        values = out[column].dropna()
        if out[column].dtype == object and len({type(v) for v in values}) > 1:
            out[column] = out[column].map(
                lambda v: v if v is None or isinstance(v, str) else json.dumps(v, default=str)
            )
    return out
