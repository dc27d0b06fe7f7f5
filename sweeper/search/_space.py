"""A spec's parameters as Ray Tune's search space, and the points of grid and random search.

Ray is imported by the functions that need it, so reading points back stays Ray-free.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeper._layout import POINT_KEY, POINTS_FILE
from sweeper.spec import Choice, IntRange, LogUniform, Parameter, Uniform, grid_values

if TYPE_CHECKING:
    from sweeper.spec import Spec

__all__ = [
    "grid_points",
    "random_points",
    "read_points",
    "sweep_points",
    "trial_params",
    "tune_domains",
    "tune_space",
    "write_points",
]


def _tune_dimension(param: Parameter) -> Any:
    from ray import tune  # Ray Tune's domains also draw random search's points

    if isinstance(param, Choice):
        return tune.choice(list(param.values))
    if isinstance(param, Uniform):
        if param.step:
            # Tune's quniform rounds to multiples of the step from 0, not from `low`; a choice
            # over the declared values samples exactly the spec's grid.
            return tune.choice(grid_values(param))
        return tune.uniform(param.low, param.high)
    if isinstance(param, LogUniform):
        return tune.loguniform(param.low, param.high)
    if isinstance(param, IntRange):
        if param.log:
            return tune.lograndint(param.low, param.high + 1)  # Tune's upper bound is exclusive
        if param.step != 1:
            return tune.choice(grid_values(param))  # as for uniform: qrandint ignores `low`
        return tune.randint(param.low, param.high + 1)
    raise TypeError(param)


def tune_domains(spec: Spec) -> dict[str, Any]:
    """Tune's domain for each search dimension (constants are added in the trial)."""
    return {name: _tune_dimension(param) for name, param in spec.dimensions.items()}


def tune_space(spec: Spec, indexes: list[int] | None = None) -> dict[str, Any]:
    """Tune's ``param_space``: for grid and random search, one dimension over point indexes.

    sweeper, not Tune, decides which point is ``trial-0001``: ``sweeper plan`` and the sweep
    agree, and a resumed sweep runs exactly the points still missing (``indexes``). An Optuna
    search draws its configurations from the searcher instead.
    """
    from ray import tune

    if spec.search.method == "optuna":
        return {}
    if indexes is None:
        indexes = list(range(spec.trial_count()))
    return {POINT_KEY: tune.grid_search(list(indexes))}


def grid_points(spec: Spec) -> list[dict[str, Any]]:
    """Every point of a grid search in the order trials run: like nested loops over the
    parameters in the order the spec declares them (the last one varies fastest)."""
    dims = spec.dimensions
    values = [grid_values(param) or [] for param in dims.values()]
    return [dict(zip(dims, combo, strict=True)) for combo in itertools.product(*values)]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value  # numpy scalars to Python's


def random_points(spec: Spec) -> list[dict[str, Any]]:
    """The random search's ``trials`` points, drawn up front with ``search.seed``.

    Drawing them before the sweep makes the points part of the sweep's record, so a resumed
    sweep restarts an interrupted trial with its own values.
    """
    rng = np.random.default_rng(spec.search.seed)
    domains = tune_domains(spec)
    return [
        {name: _plain(domain.sample(random_state=rng)) for name, domain in domains.items()}
        for _ in range(spec.trial_count())
    ]


def sweep_points(spec: Spec) -> list[dict[str, Any]] | None:
    """Every trial's values for grid and random search; ``None`` for Optuna's."""
    if spec.search.method == "grid":
        return grid_points(spec)
    if spec.search.method == "random":
        return random_points(spec)
    return None


def trial_params(
    spec: Spec, config: dict[str, Any], points: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A trial's parameters from Tune's config: constants, then its point or Optuna's values."""
    values = points[config[POINT_KEY]] if points is not None and POINT_KEY in config else config
    merged = {**spec.constants, **values}
    # In the order the spec declares them: flags, config.json and MLflow show them that way.
    return {name: merged[name] for name in spec.space if name in merged}


def write_points(sweep_dir: Path, points: list[dict[str, Any]] | None) -> None:
    if points is not None:
        (sweep_dir / POINTS_FILE).write_text(
            json.dumps(points, default=str) + "\n", encoding="utf-8"
        )


def read_points(sweep_dir: Path) -> list[dict[str, Any]] | None:
    path = sweep_dir / POINTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
