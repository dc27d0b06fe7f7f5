"""Turning a spec's parameters into Ray Tune's search space, or an Optuna search."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np
from ray import tune

from sweeper.spec import Choice, IntRange, LogUniform, Parameter, Uniform, grid_values

if TYPE_CHECKING:
    import optuna
    from ray.tune.search import BasicVariantGenerator, Searcher

    from sweeper.spec import Spec

__all__ = [
    "NAME_KEY",
    "POINT_KEY",
    "grid_points",
    "point_name",
    "random_points",
    "searcher_for",
    "sweep_points",
    "trial_params",
    "tune_domains",
    "tune_space",
]

# Config keys sweeper adds to Tune's: the index of a grid or random point, and the name an
# Optuna trial was given.
POINT_KEY = "point"
NAME_KEY = "trial_name"


def _tune_dimension(param: Parameter) -> Any:
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


def point_name(index: int) -> str:
    """The name of the trial that runs point ``index``."""
    return f"trial-{index + 1:04d}"


def trial_params(
    spec: Spec, config: dict[str, Any], points: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A trial's parameters from Tune's config: constants, then its point or Optuna's values."""
    values = points[config[POINT_KEY]] if points is not None and POINT_KEY in config else config
    merged = {**spec.constants, **values}
    # In the order the spec declares them: flags, config.json and MLflow show them that way.
    return {name: merged[name] for name in spec.space if name in merged}


def _optuna_distribution(param: Parameter) -> optuna.distributions.BaseDistribution:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(param, Choice):
        return CategoricalDistribution(list(param.values))
    if isinstance(param, Uniform):
        return FloatDistribution(param.low, param.high, step=param.step)
    if isinstance(param, LogUniform):
        return FloatDistribution(param.low, param.high, log=True)
    if isinstance(param, IntRange):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    raise TypeError(param)


def _sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    samplers = {
        "tpe": optuna.samplers.TPESampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "random": optuna.samplers.RandomSampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
    }
    return samplers[name](seed=seed)


def searcher_for(
    spec: Spec,
    concurrency: int | None = None,
    *,
    storage: optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    first_number: int = 1,
    told: int = 0,
    early_stopped: set[str] | None = None,
) -> Searcher | BasicVariantGenerator:
    """The Tune search algorithm for the spec: Optuna's, or Tune's own generator.

    Tune's generator walks the point indexes of :func:`tune_space`; Tune applies
    ``max_concurrent_trials`` to searchers only, so it gets the cap directly.

    Args:
        spec: The spec.
        concurrency: The cap on trials running at once.
        storage: The Optuna study's storage (in memory when ``None``).
        study_name: The study's name in ``storage``.
        first_number: The number of the next new Optuna trial.
        told: Trials the study already holds; the sampler's seed moves on by as many, so a
            resumed sweep does not draw the first session's values again.
        early_stopped: Tune trial ids the scheduler stopped (told to Optuna as pruned).
    """
    if spec.search.method != "optuna":
        from ray.tune.search import BasicVariantGenerator

        return BasicVariantGenerator(max_concurrent=concurrency or 0)
    from sweeper._optuna import SweepOptunaSearch

    seed = spec.search.seed
    space = {name: _optuna_distribution(p) for name, p in spec.dimensions.items()}
    return SweepOptunaSearch(
        space=space,
        metric=spec.search.metric,
        mode=spec.search.mode,
        sampler=_sampler(spec.sampler or "tpe", None if seed is None else seed + told),
        storage=storage,
        study_name=study_name,
        first_number=first_number,
        early_stopped=early_stopped,
    )
