"""sweeper: hyperparameter sweeps on Ray Tune, with Optuna search and MLflow tracking."""

from sweeper.errors import ConfigError, SpecError, SweeperError, SweepError, TrialError
from sweeper.spec import Spec, load_spec

__all__ = [
    "ConfigError",
    "Spec",
    "SpecError",
    "SweepError",
    "SweeperError",
    "TrialError",
    "load_spec",
]
__version__ = "0.1.0"
