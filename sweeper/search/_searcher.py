"""The Tune search algorithm of a sweep: Tune's generator over points, or Optuna's searcher.

Ray's ``OptunaSearch`` keeps its study in memory and pickles it into Tune's experiment state
every few seconds, so a driver killed in between loses what the sampler learned since. Here the
study lives in the sweep's folder (:mod:`sweeper.search._optuna`), each trial is named when it
is asked for, and early-stopped trials are told to Optuna as pruned. This module imports Ray
Tune; the rest of ``sweeper.search`` does not.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ray.tune.search.optuna import OptunaSearch

from sweeper import _compat
from sweeper._layout import NAME_KEY, trial_name
from sweeper.search._optuna import GPU_ATTR, STATE_ATTR, TRIAL_ATTR, DefineByRun, optuna_sampler

if TYPE_CHECKING:
    import optuna
    from ray.tune.search import BasicVariantGenerator, Searcher

    from sweeper.spec import Spec
    from sweeper.spec._objectives import Constraint

__all__ = ["SweepOptunaSearch", "searcher_for"]

logger = logging.getLogger(__name__)


class SweepOptunaSearch(OptunaSearch):
    """Ray's Optuna searcher, with sweeper's trial names and outcomes.

    With several objectives (``metric`` and ``mode`` lists), Optuna takes no intermediate
    values (its rule): a trial is told its final values only. With ``constraints``, each
    finished trial's constraint values are set on it before it is told
    (``Trial.set_constraint``), where Optuna's samplers read them.

    Args:
        first_number: The number of the next new trial (``trial-0001`` in a new sweep).
        early_stopped: Tune trial ids the scheduler stopped; told to Optuna as pruned.
        constraints: The spec's constraints on reported metrics.
        **kwargs: ``OptunaSearch``'s arguments.
    """

    def __init__(
        self,
        *,
        first_number: int = 1,
        early_stopped: set[str] | None = None,
        constraints: list[Constraint] | None = None,
        gpu_seconds: Callable[[str], float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._next_number = first_number
        self._early_stopped = early_stopped if early_stopped is not None else set()
        self._constraints = list(constraints or [])
        self._gpu_seconds = gpu_seconds

    def save(self, checkpoint_path: str) -> None:
        # Tune pickles the searcher's __dict__; the GPU-time hook (the recorder's) stays here.
        hook, self._gpu_seconds = self._gpu_seconds, None
        try:
            super().save(checkpoint_path)
        finally:
            self._gpu_seconds = hook

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        with warnings.catch_warnings():
            # Ray times the define-by-run space and warns past 1 s, meaning training placed
            # there; here the time is the sampler's own (GP takes seconds), nothing to fix.
            warnings.filterwarnings("ignore", message="Define-by-run function passed")
            config = super().suggest(trial_id)
        if config is None:
            return None
        ot_trial = _compat.searcher_trials(self)[trial_id]
        name = ot_trial.user_attrs.get(TRIAL_ATTR)
        if name is None:
            name = trial_name(self._next_number - 1)
            self._next_number += 1
            ot_trial.set_user_attr(TRIAL_ATTR, name)
        return {**config, NAME_KEY: name}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # Reports before the sweep's metric first appears hold other metrics only.
        if isinstance(self.metric, list):
            return  # Optuna has no intermediate values for several objectives
        if self.metric in result and trial_id in _compat.searcher_trials(self):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        from optuna.trial import TrialState

        ot_trial = _compat.searcher_trials(self).get(trial_id)
        completed = _compat.searcher_completed(self)
        if ot_trial is None or trial_id in completed:
            return
        result = result or {}
        names = self.metric if isinstance(self.metric, list) else [self.metric]
        values = [result.get(name) for name in names]
        value: Any = values if isinstance(self.metric, list) else values[0]
        if error:
            state, value = TrialState.FAIL, None
        elif trial_id in self._early_stopped:
            # Optuna's samplers judge a pruned trial by its last intermediate value, reported
            # step by step in on_trial_result: what a stopped trial is worth.
            state, value = TrialState.PRUNED, None
        elif any(v is None for v in values):
            state, value = TrialState.FAIL, None
        else:
            state = TrialState.COMPLETE
        # What optuna-dashboard shows of the trial: set now, as a finished trial is read-only.
        shown = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "stopped"}
        ot_trial.set_user_attr(STATE_ATTR, shown.get(state, "failed"))
        name = ot_trial.user_attrs.get(TRIAL_ATTR)
        if self._gpu_seconds is not None and name:
            ot_trial.set_user_attr(GPU_ATTR, round(self._gpu_seconds(name), 3))
        if state != TrialState.FAIL:
            for constraint in self._constraints:
                # Optuna 5's constraints: at most 0 is feasible; its samplers read them.
                ot_trial.set_constraint(
                    constraint.text, constraint.violation(result.get(constraint.metric))
                )
        try:
            _compat.searcher_study(self).tell(ot_trial, value, state=state)
        except Exception as exc:  # e.g. a NaN value: the trial counts as failed
            logger.warning("Optuna could not record %s: %s", trial_id, exc)
            _compat.searcher_study(self).tell(ot_trial, None, state=TrialState.FAIL)
        completed.add(trial_id)


def searcher_for(
    spec: Spec,
    concurrency: int | None = None,
    *,
    storage: optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    first_number: int = 1,
    told: int = 0,
    early_stopped: set[str] | None = None,
    gpu_seconds: Callable[[str], float] | None = None,
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
        gpu_seconds: A trial's GPU time by name, recorded with it in the study.
    """
    if spec.search.method != "optuna":
        from ray.tune.search import BasicVariantGenerator

        return BasicVariantGenerator(max_concurrent=concurrency or 0)
    seed = spec.search.seed
    objectives = spec.search.objectives
    constraints = spec.search.parsed_constraints
    several = len(objectives) > 1
    return SweepOptunaSearch(
        space=DefineByRun(spec),
        metric=[o.name for o in objectives] if several else objectives[0].name,
        mode=[o.mode for o in objectives] if several else objectives[0].mode,
        sampler=optuna_sampler(spec.sampler or "tpe", None if seed is None else seed + told),
        storage=storage,
        study_name=study_name,
        first_number=first_number,
        early_stopped=early_stopped,
        constraints=constraints,
        gpu_seconds=gpu_seconds,
    )
