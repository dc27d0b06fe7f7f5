"""The results of a sweep as a pandas DataFrame, its CSV file and the best-trials table."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sweeper._layout import RESULTS_FILE

if TYPE_CHECKING:
    from sweeper._journal import TrialRecord
    from sweeper.spec import Spec

__all__ = ["best_trials", "results_frame", "write_results"]


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="milliseconds")


# When a trial entered each state, as columns ``<state>_at`` (ISO 8601, UTC).
_TIMES = {
    "queued_at": "queued",
    "started_at": "starting",
    "staging_at": "staging",
    "running_at": "running",
    "storing_at": "storing",
}


def results_frame(spec: Spec, records: Iterable[TrialRecord]) -> pd.DataFrame:
    """One row per trial: state, final and best metric, GPU time, params, every metric's last
    value, and when the trial entered each state.

    Params are ``params.<name>`` and metrics ``metrics.<name>`` columns, as in
    ``mlflow.search_runs``. ``gpu_seconds`` is GPUs held x seconds, from the moment the trial
    held its GPUs until its results were stored, over all its attempts.
    """
    metric = spec.search.metric
    rows = []
    for record in sorted(records, key=lambda r: r.name):
        row = {
            "trial": record.name,
            "state": record.state,
            metric: record.metrics.get(metric),
            f"best_{metric}": record.best,
            "steps": record.steps,
            "attempts": record.attempts,
            "duration_s": round(record.duration, 3),
            "gpus": record.gpus,
            "gpu_seconds": round(record.gpu_seconds, 3),
        }
        row.update({f"params.{k}": v for k, v in record.params.items()})
        row.update({f"metrics.{k}": v for k, v in record.metrics.items()})
        row.update({column: _iso(record.times.get(state)) for column, state in _TIMES.items()})
        row.update(
            ended_at=_iso(record.ended),
            node=record.node,
            actor_id=record.actor_id,
            pid=record.pid,
            error=record.error,
            mlflow_run_id=record.run_id,
        )
        rows.append(row)
    if not rows:
        # No trial ran (a sweep halted at once): the table still has its columns.
        base = ["trial", "state", metric, f"best_{metric}", "steps", "attempts", "duration_s"]
        columns = [*base, "gpus", "gpu_seconds", *_TIMES, "ended_at", "node", "actor_id", "pid"]
        columns.append("error")
        return pd.DataFrame(columns=[*columns, "mlflow_run_id"])
    return pd.DataFrame(rows)


def best_trials(spec: Spec, frame: pd.DataFrame, count: int = 5) -> pd.DataFrame:
    """The ``count`` best trials by their final metric (completed trials first)."""
    metric = spec.search.metric
    if frame.empty or metric not in frame:
        return frame.head(0)
    ranked = frame[frame["state"] == "completed"].dropna(subset=[metric])
    ranked = ranked.sort_values(metric, ascending=spec.search.mode == "min")
    return ranked.head(count)


def write_results(frame: pd.DataFrame, sweep_dir: Path) -> Path:
    """Write the results CSV atomically (a crash never leaves half a file)."""
    path = sweep_dir / RESULTS_FILE
    partial = path.with_suffix(".csv.partial")
    frame.to_csv(partial, index=False)
    partial.replace(path)
    return path
