"""What a sweep's MLflow parent run records about it: params, end-of-session metrics, the best
trial (on the driver; the trials' own child runs are written by :mod:`._recorder`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper._journal import FINAL_STATES
from sweeper.results import best_trials
from sweeper.tracking import TAG_LENGTH

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec import Spec

__all__ = ["SWEEP_PREFIX", "best_tags", "sweep_metrics", "sweep_params"]


def sweep_params(spec: Spec) -> dict[str, Any]:
    """The parent run's params: the search, the framework, resources and the space."""
    search = spec.search.model_dump(exclude_none=True, exclude={"metrics", "constraints"})
    params = {f"search.{k}": v for k, v in search.items()}
    if spec.search.multi_objective:
        params["search.metrics"] = ", ".join(f"{o.name} ({o.mode})" for o in spec.search.objectives)
    for i, constraint in enumerate(spec.search.parsed_constraints):
        params[f"search.constraints.{i}"] = constraint.text
    params.update(
        framework=spec.framework,
        entrypoint=spec.entrypoint,
        **{f"resources.{k}": v for k, v in spec.resources.model_dump(exclude_none=True).items()},
        **{f"space.{k}": _described(spec, k) for k in spec.space},
    )
    if spec.search.method == "optuna":
        params["search.sampler"] = spec.sampler
    return params


def _described(spec: Spec, name: str) -> str:
    condition = spec.conditional_space.describe(name)
    return spec.space[name].describe() + (f" {condition}" if condition else "")


# The parent run's own metrics are the sweep's: under this prefix, apart from the trials'.
SWEEP_PREFIX = "sweep/"


def sweep_metrics(spec: Spec, frame: pd.DataFrame, wall: float) -> dict[str, float]:
    """The parent run's metrics at a session's end, each ``sweep/...``: trial counts, wall
    time, GPU time (when its trials hold GPUs), and the best trial's final value
    (``sweep/best_<metric>``; a trial's own peak over its steps is its ``peak_<metric>``)."""
    states = frame["state"].value_counts().to_dict() if not frame.empty else {}
    metrics = {
        **{f"trials_{state}": float(states.get(state, 0)) for state in FINAL_STATES},
        "wall_time_s": wall,
    }
    if spec.resources.trial_gpus:
        gpu_seconds = float(frame["gpu_seconds"].sum()) if not frame.empty else 0.0
        metrics.update(gpu_seconds=gpu_seconds, gpu_hours=gpu_seconds / 3600)
    if spec.search.multi_objective:
        metrics["pareto_trials"] = float(len(best_trials(spec, frame, None)))
    else:
        best = best_trials(spec, frame, 1)
        if not best.empty:
            metrics[f"best_{spec.search.metric}"] = float(best.iloc[0][spec.search.metric])
    return {SWEEP_PREFIX + name: value for name, value in metrics.items()}


def best_tags(spec: Spec, frame: pd.DataFrame) -> dict[str, str]:
    """The parent run's tags naming the best trial so far, or with several objectives the
    Pareto front's trials (``trial-0003,trial-0007``; ``results.csv``'s ``pareto`` column has
    them all when a front outgrows a tag)."""
    if spec.search.multi_objective:
        names = [str(n) for n in best_trials(spec, frame, None)["trial"]]
        text = ",".join(sorted(names))
        if len(text) > TAG_LENGTH:
            text = text[: text.rfind(",", 0, TAG_LENGTH - 4)] + ",..."
        objectives = ",".join(f"{o.name}:{o.mode}" for o in spec.search.objectives)
        return {"sweeper.pareto_trials": text, "sweeper.objectives": objectives}
    best = best_trials(spec, frame, 1)
    return {} if best.empty else {"sweeper.best_trial": str(best.iloc[0]["trial"])}
