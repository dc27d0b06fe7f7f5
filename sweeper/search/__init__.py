"""Search: the spec's space as Tune's, grid and random points, and the sweep's Optuna study.

Everything here but :func:`searcher_for` is Ray-free at import; the searcher subclasses Ray
Tune's ``OptunaSearch`` and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper.search._optuna import (
    adopt_finished,
    open_study,
    optuna_distribution,
    seed_study,
    study_name,
)
from sweeper.search._seeds import Carried, carry
from sweeper.search._space import grown_points, sweep_points, trial_params, tune_space

if TYPE_CHECKING:
    from sweeper.search._searcher import searcher_for

__all__ = [
    "Carried",
    "adopt_finished",
    "carry",
    "grown_points",
    "open_study",
    "optuna_distribution",
    "searcher_for",
    "seed_study",
    "study_name",
    "sweep_points",
    "trial_params",
    "tune_space",
]


def __getattr__(name: str) -> Any:
    if name == "searcher_for":  # imports Ray Tune
        from sweeper.search._searcher import searcher_for

        return searcher_for
    raise AttributeError(f"module 'sweeper.search' has no attribute {name!r}")
