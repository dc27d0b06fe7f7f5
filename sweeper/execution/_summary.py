"""What a sweep's MLflow parent run records about it: params, end-of-session metrics, the best
trial (on the driver; the trials' own child runs are written by :mod:`._recorder`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper._journal import FINAL_STATES
from sweeper.results import best_trials

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec import Spec

__all__ = ["best_tags", "sweep_metrics", "sweep_params"]


def sweep_params(spec: Spec) -> dict[str, Any]:
    """The parent run's params: the search, the framework, resources and the space."""
    search = spec.search.model_dump(exclude_none=True)
    params = {f"search.{k}": v for k, v in search.items()}
    params.update(
        framework=spec.framework,
        entrypoint=spec.entrypoint,
        **{f"resources.{k}": v for k, v in spec.resources.model_dump(exclude_none=True).items()},
        **{f"space.{k}": p.describe() for k, p in spec.space.items()},
    )
    if spec.search.method == "optuna":
        params["search.sampler"] = spec.sampler
    return params


def sweep_metrics(spec: Spec, frame: pd.DataFrame, wall: float) -> dict[str, float]:
    """The parent run's metrics at a session's end: trial counts, wall and GPU time, best."""
    states = frame["state"].value_counts().to_dict() if not frame.empty else {}
    gpu_seconds = float(frame["gpu_seconds"].sum()) if not frame.empty else 0.0
    metrics = {
        **{f"trials_{state}": float(states.get(state, 0)) for state in FINAL_STATES},
        "wall_time_s": wall,
        "gpu_seconds": gpu_seconds,
        "gpu_hours": gpu_seconds / 3600,
    }
    best = best_trials(spec, frame, 1)
    if not best.empty:
        metrics[f"best_{spec.search.metric}"] = float(best.iloc[0][spec.search.metric])
    return metrics


def best_tags(spec: Spec, frame: pd.DataFrame) -> dict[str, str]:
    """The parent run's tag naming the best trial so far."""
    best = best_trials(spec, frame, 1)
    return {} if best.empty else {"sweeper.best_trial": str(best.iloc[0]["trial"])}
