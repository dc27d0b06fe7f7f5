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

__all__ = ["grid_points", "searcher_for", "tune_space"]


def _tune_dimension(param: Parameter) -> Any:
    if isinstance(param, Choice):
        return tune.choice(list(param.values))
    if isinstance(param, Uniform):
        if param.step:
            return tune.quniform(param.low, param.high, param.step)
        return tune.uniform(param.low, param.high)
    if isinstance(param, LogUniform):
        return tune.loguniform(param.low, param.high)
    if isinstance(param, IntRange):
        if param.log:
            return tune.lograndint(param.low, param.high + 1)  # Tune's upper bound is exclusive
        if param.step != 1:
            return tune.qrandint(param.low, param.high, param.step)  # ... but inclusive here
        return tune.randint(param.low, param.high + 1)
    raise TypeError(param)


def tune_space(spec: Spec) -> dict[str, Any]:
    """Tune's ``param_space`` for the spec's dimensions (constants are added in the trial)."""
    if spec.search.method == "grid":
        return {
            name: tune.grid_search(grid_values(param)) for name, param in spec.dimensions.items()
        }
    if spec.search.method == "random":
        return {name: _tune_dimension(param) for name, param in spec.dimensions.items()}
    return {}


def grid_points(spec: Spec) -> list[dict[str, Any]]:
    """Every point of a grid search, in the order Tune runs them (last parameter fastest)."""
    dims = spec.dimensions
    names = list(dims)
    # Tune expands grid_search dimensions with the last-defined varying slowest.
    values = [grid_values(dims[name]) or [] for name in reversed(names)]
    return [dict(zip(reversed(names), combo)) for combo in itertools.product(*values)]


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

        return BasicVariantGenerator(
            max_concurrent=concurrency or 0, random_state=spec.search.seed
        )
    from ray.tune.search.optuna import OptunaSearch

    space = {name: _optuna_distribution(p) for name, p in spec.dimensions.items()}
    return OptunaSearch(
        space=space,
        metric=spec.search.metric,
        mode=spec.search.mode,
        sampler=_sampler(spec.sampler or "tpe", spec.search.seed),
    )
