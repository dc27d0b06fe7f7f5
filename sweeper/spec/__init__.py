"""The experiment spec: loading, validating and the parsed search space."""

from sweeper.spec._blocks import parse_duration
from sweeper.spec._loader import load_spec, parse_spec
from sweeper.spec._model import (
    EarlyStopping,
    Limits,
    MetricsSpec,
    Objective,
    Resources,
    Schedule,
    Search,
    Spec,
    StorageSpec,
)
from sweeper.spec._parameters import (
    Choice,
    Constant,
    IntRange,
    LogUniform,
    Parameter,
    Uniform,
    contains,
    grid_count,
    grid_value,
    grid_values,
    same_value,
)

__all__ = [
    "Choice",
    "Constant",
    "EarlyStopping",
    "IntRange",
    "Limits",
    "LogUniform",
    "MetricsSpec",
    "Objective",
    "Parameter",
    "Resources",
    "Schedule",
    "Search",
    "Spec",
    "StorageSpec",
    "Uniform",
    "contains",
    "grid_count",
    "grid_value",
    "grid_values",
    "load_spec",
    "parse_duration",
    "parse_spec",
    "same_value",
]
