"""Population-based training on the driver: Ray Tune's ``PopulationBasedTraining`` and ``PB2``
for a spec's ``schedule``, and what sweeper learns of each exploit.

Tune does the work: every ``perturbation_interval`` steps a trial in the bottom quantile is
paused, takes the last checkpoint of a trial in the top quantile (reported with ``ctx.save``)
and that trial's config, with the ``mutations`` parameters changed, and runs on. Two things are
sweeper's own, because Tune has neither:

- Mutated values stay in the space the spec declares. PBT scales a continuous value by 0.8 or
  1.2 and never clips it, so a learning rate can leave its bounds (and an integer become a
  float); :class:`_Explore` clips, rounds and snaps to the step.
- Each exploit is told to the recorder (:attr:`on_exploit`), which journals the trial's new
  parameters and logs the change to MLflow. Tune's own record of it is a log line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sweeper.spec import Choice, IntRange, LogUniform, Parameter, Uniform, grid_values

if TYPE_CHECKING:
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    from sweeper.spec import Spec

__all__ = ["Exploit", "pbt_scheduler"]

# Exploit(trial, donor, new config) -> None, on the driver.
Exploit = Callable[["Trial", "Trial", dict[str, Any]], None]


def _tune_domain(param: Parameter) -> Any:
    """Tune's domain (PBT resamples from it) or list (PBT moves to a neighbour) for ``param``."""
    from ray import tune

    if isinstance(param, Choice):
        return list(param.values)
    if isinstance(param, Uniform):
        if param.step:
            return grid_values(param)
        return tune.uniform(param.low, param.high)
    if isinstance(param, LogUniform):
        return tune.loguniform(param.low, param.high)
    if isinstance(param, IntRange):
        if param.log:
            return tune.lograndint(param.low, param.high + 1)
        return grid_values(param) if param.step != 1 else tune.randint(param.low, param.high + 1)
    raise TypeError(param)


def _within(param: Parameter, value: Any) -> Any:
    """``value`` moved into ``param``'s declared space: clipped, rounded, on its step."""
    if not isinstance(param, (Uniform, LogUniform, IntRange)) or not isinstance(
        value, (int, float)
    ):
        return value
    low, high = param.low, param.high
    clipped = min(max(float(value), low), high)
    if isinstance(param, IntRange):
        steps = round((clipped - low) / param.step)
        return int(min(low + steps * param.step, high))
    if isinstance(param, Uniform) and param.step:
        steps = math.floor((clipped - low) / param.step + 0.5)
        return float(f"{min(low + steps * param.step, high):.12g}")
    return clipped


class _Explore:
    """PBT's ``custom_explore_fn``: keeps mutated values inside the spec's space (a class, not
    a closure: Tune pickles its scheduler)."""

    def __init__(self, mutations: dict[str, Parameter]) -> None:
        self.mutations = mutations

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for name, param in self.mutations.items():
            if name in config:
                config[name] = _within(param, config[name])
        return config


def pbt_scheduler(spec: Spec, on_exploit: Exploit | None = None) -> TrialScheduler:
    """Tune's PBT or PB2 for ``spec.schedule``, telling ``on_exploit`` of each exploit.

    Ranked by :attr:`Spec.stopping_objective` (Tune passes metric and mode from the
    ``TuneConfig``), on the trials' ``step``.
    """
    from ray.tune.schedulers import PopulationBasedTraining

    schedule = spec.schedule
    assert schedule is not None
    method = schedule.method
    mutations = spec.mutations
    if method == "pb2":
        from ray.tune.schedulers.pb2 import PB2

        base: type[PopulationBasedTraining] = PB2
        options: dict[str, Any] = {
            "hyperparam_bounds": {
                name: [float(p.low), float(p.high)]  # type: ignore[union-attr]
                for name, p in mutations.items()
            }
        }
    else:
        base = PopulationBasedTraining
        options = {
            "hyperparam_mutations": {n: _tune_domain(p) for n, p in mutations.items()},
            "resample_probability": schedule.effective_resample_probability,
            "custom_explore_fn": _Explore(mutations),
        }

    class Scheduler(base):  # type: ignore[valid-type, misc]
        def _exploit(self, tune_controller: Any, trial: Trial, trial_to_clone: Trial) -> None:
            super()._exploit(tune_controller, trial, trial_to_clone)
            if on_exploit is not None and trial.config is not None:
                if method == "pb2":  # PB2 has no explore hook: the same rule here
                    _Explore(mutations)(trial.config)
                on_exploit(trial, trial_to_clone, dict(trial.config))

    Scheduler.__name__ = Scheduler.__qualname__ = base.__name__
    return Scheduler(
        time_attr="step",
        perturbation_interval=schedule.perturbation_interval,
        quantile_fraction=schedule.quantile_fraction,
        **options,
    )
