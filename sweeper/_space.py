"""Turning a spec's parameters into Ray Tune's search space, or an Optuna search."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from ray import tune

from sweeper.spec import Choice, IntRange, LogUniform, Parameter, Uniform, grid_values

if TYPE_CHECKING:
    import optuna
    from ray.tune.search import BasicVariantGenerator, Searcher

    from sweeper.spec import Spec

__all__ = ["GRID_KEY", "grid_points", "searcher_for", "trial_params", "tune_space"]


GRID_KEY = "grid_point"


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


def tune_space(spec: Spec) -> dict[str, Any]:
    """Tune's ``param_space`` for the spec's dimensions (constants are added in the trial).

    A grid is one Tune dimension over the indexes of :func:`grid_points`: sweeper, not Tune's
    internal ordering of grid dimensions, decides which point is ``trial-0001``, so ``sweeper
    plan`` and the sweep agree.
    """
    if spec.search.method == "grid":
        return {GRID_KEY: tune.grid_search(list(range(spec.trial_count())))}
    if spec.search.method == "random":
        return {name: _tune_dimension(param) for name, param in spec.dimensions.items()}
    return {}


def grid_points(spec: Spec) -> list[dict[str, Any]]:
    """Every point of a grid search in the order trials run: like nested loops over the
    parameters in the order the spec declares them (the last one varies fastest)."""
    dims = spec.dimensions
    values = [grid_values(param) or [] for param in dims.values()]
    return [dict(zip(dims, combo, strict=True)) for combo in itertools.product(*values)]


def trial_params(spec: Spec, config: dict[str, Any], grid: list[dict[str, Any]] | None) -> dict:
    """A trial's parameters from Tune's config: constants, then sampled values or grid point."""
    values = grid[config[GRID_KEY]] if grid is not None and GRID_KEY in config else config
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


def searcher_for(spec: Spec, concurrency: int | None = None) -> Searcher | BasicVariantGenerator:
    """The Tune search algorithm for the spec: Optuna's, or Tune's own grid/random one.

    Tune applies ``max_concurrent_trials`` to searchers only, so Tune's own generator gets the
    cap (and the seed, which TuneConfig has no place for) directly.
    """
    if spec.search.method != "optuna":
        from ray.tune.search import BasicVariantGenerator

        return BasicVariantGenerator(max_concurrent=concurrency or 0, random_state=spec.search.seed)
    from ray.tune.search.optuna import OptunaSearch

    space = {name: _optuna_distribution(p) for name, p in spec.dimensions.items()}
    return OptunaSearch(
        space=space,
        metric=spec.search.metric,
        mode=spec.search.mode,
        sampler=_sampler(spec.sampler or "tpe", spec.search.seed),
    )
