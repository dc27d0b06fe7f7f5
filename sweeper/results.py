"""The results of a sweep as a pandas DataFrame, its CSV file and the best-trials table.

The rows and the ranking are plain Python (:func:`result_rows`, :func:`best_rows`), so the
read-only commands answer without importing pandas; the DataFrames are built from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper._format import is_missing
from sweeper._layout import RESULTS_FILE
from sweeper.spec._objectives import metric_value, pareto_front

if TYPE_CHECKING:
    import pandas as pd

    from sweeper._journal import TrialRecord
    from sweeper.spec import Spec

__all__ = [
    "best_rows",
    "best_trials",
    "feasible",
    "result_rows",
    "results_frame",
    "rows_frame",
    "write_results",
]


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


def feasible(spec: Spec, metrics: dict[str, Any]) -> bool | None:
    """Whether a trial's last metrics meet every ``search.constraints`` (``None``: one is not
    reported yet)."""
    verdict: bool | None = True
    for constraint in spec.search.parsed_constraints:
        value = metric_value(metrics, constraint.metric)
        if value is None:
            verdict = None
        elif not constraint.holds(value):
            return False
    return verdict


def _objective_columns(spec: Spec) -> list[str]:
    metric = spec.search.metric
    names = [o.name for o in spec.search.objectives]
    columns = [metric, f"peak_{metric}", *names[1:]]
    if spec.search.multi_objective:
        columns.append("pareto")
    if spec.search.constraints:
        columns.append("feasible")
    return columns


def result_rows(spec: Spec, records: Iterable[TrialRecord]) -> list[dict[str, Any]]:
    """One row (a dict) per trial, by name: the rows of :func:`results_frame`'s table.

    Each objective has a column of its final value. With several objectives, ``pareto`` says
    whether the trial is on the Pareto front; with constraints, ``feasible`` whether its
    metrics meet them (an infeasible trial is never best nor on the front).
    """
    metric = spec.search.metric
    objectives = spec.search.objectives
    rows = []
    for record in sorted(records, key=lambda r: r.name):
        row = {
            "trial": record.name,
            "state": record.state,
            metric: record.metrics.get(metric),
            f"peak_{metric}": record.best,
            **{o.name: record.metrics.get(o.name) for o in objectives[1:]},
            "steps": record.steps,
            "attempts": record.attempts,
            "duration_s": round(record.duration, 3),
            "gpus": record.gpus,
            "gpu_seconds": round(record.gpu_seconds, 3),
        }
        if spec.search.multi_objective:
            row["pareto"] = False  # set below, once every row is known
        if spec.search.constraints:
            row["feasible"] = feasible(spec, record.metrics)
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
    if spec.search.multi_objective:
        for i in _front(spec, rows):
            rows[i]["pareto"] = True
    return rows


def results_frame(spec: Spec, records: Iterable[TrialRecord]) -> pd.DataFrame:
    """One row per trial: state, final and best metric, GPU time, params, every metric's last
    value, and when the trial entered each state.

    Params are ``params.<name>`` and metrics ``metrics.<name>`` columns, as in
    ``mlflow.search_runs``. ``gpu_seconds`` is GPUs held x seconds, from the moment the trial
    held its GPUs until its results were stored, over all its attempts.
    """
    return rows_frame(spec, result_rows(spec, records))


def rows_frame(spec: Spec, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame of :func:`result_rows`' rows (with its columns when there are none)."""
    import pandas as pd

    if not rows:
        # No trial ran (a sweep halted at once): the table still has its columns.
        base = ["trial", "state", *_objective_columns(spec), "steps", "attempts", "duration_s"]
        columns = [*base, "gpus", "gpu_seconds", *_TIMES, "ended_at", "node", "actor_id", "pid"]
        columns.append("error")
        return pd.DataFrame(columns=[*columns, "mlflow_run_id"])
    return pd.DataFrame(list(rows))


def _candidates(spec: Spec, rows: Sequence[dict[str, Any]]) -> list[int]:
    # Completed, feasible trials with a value for every objective.
    names = [o.name for o in spec.search.objectives]
    constrained = bool(spec.search.constraints)
    return [
        i
        for i, row in enumerate(rows)
        if row.get("state") == "completed"
        and not any(is_missing(row.get(name)) for name in names)
        and (not constrained or _is_true(row.get("feasible")))
    ]


def _is_true(value: Any) -> bool:
    # results.csv read back by pandas gives numpy booleans, or "True" in an object column.
    return str(value) == "True"


def _front(spec: Spec, rows: Sequence[dict[str, Any]]) -> list[int]:
    """The rows on the Pareto front, by index."""
    objectives = spec.search.objectives
    candidates = _candidates(spec, rows)
    points = [[float(rows[i][o.name]) for o in objectives] for i in candidates]
    return [candidates[j] for j in pareto_front(points, objectives)]


def _ranking(spec: Spec, rows: Sequence[dict[str, Any]]) -> list[int]:
    """The best trials first. One objective: completed, feasible trials by their value (a
    stable sort keeps ties in trial order). Several: the Pareto front, by the first
    objective."""
    first = spec.search.objectives[0]
    chosen = _front(spec, rows) if spec.search.multi_objective else _candidates(spec, rows)
    return sorted(chosen, key=lambda i: rows[i][first.name], reverse=first.mode == "max")


def best_rows(
    spec: Spec, rows: Sequence[dict[str, Any]], count: int | None = 5
) -> list[dict[str, Any]]:
    """The rows of the ``count`` best trials by their final metric (completed, feasible
    trials only); with several objectives, the Pareto front's (``None``: all of them)."""
    return [rows[i] for i in _ranking(spec, rows)[:count]]


def best_trials(spec: Spec, frame: pd.DataFrame, count: int | None = 5) -> pd.DataFrame:
    """The ``count`` best trials, in the order of :func:`best_rows`."""
    if frame.empty or spec.search.metric not in frame:
        return frame.head(0)
    return frame.iloc[_ranking(spec, frame.to_dict("records"))[:count]]


def write_results(frame: pd.DataFrame, sweep_dir: Path) -> Path:
    """Write the results CSV atomically (a crash never leaves half a file)."""
    path = sweep_dir / RESULTS_FILE
    partial = path.with_suffix(".csv.partial")
    frame.to_csv(partial, index=False)
    partial.replace(path)
    return path
