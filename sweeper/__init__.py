"""sweeper: hyperparameter sweeps on Ray Tune, with Optuna search and MLflow tracking."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper.errors import ConfigError, SpecError, SweeperError, SweepError, TrialError
from sweeper.frameworks import FrameworkAdapter, TrialContext
from sweeper.settings import Settings, load_settings
from sweeper.spec import Spec, load_spec

if TYPE_CHECKING:
    from sweeper.execution import SweepResult, extend, resume, run
    from sweeper.history import Sweep, load

__all__ = [
    "ConfigError",
    "FrameworkAdapter",
    "Settings",
    "Spec",
    "SpecError",
    "Sweep",
    "SweepError",
    "SweepResult",
    "SweeperError",
    "TrialContext",
    "TrialError",
    "extend",
    "load",
    "load_settings",
    "load_spec",
    "resume",
    "run",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Running a sweep imports Ray, MLflow and pandas; `sweeper validate` should not wait for them.
    if name in ("run", "resume", "extend", "SweepResult"):
        from sweeper import execution

        return getattr(execution, name)
    if name in ("load", "Sweep"):
        from sweeper import history

        return getattr(history, name)
    raise AttributeError(f"module 'sweeper' has no attribute {name!r}")
