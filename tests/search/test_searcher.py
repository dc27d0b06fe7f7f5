"""sweeper's Optuna searcher as Tune drives it: several objectives, constraints, conditional
spaces, and a searcher Tune can pickle whatever the sampler."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from optuna.trial import TrialState

from sweeper import _compat
from sweeper._layout import NAME_KEY
from sweeper.search._searcher import searcher_for
from sweeper.spec import Spec, parse_spec

TWO = [{"name": "acc", "mode": "max"}, {"name": "size", "mode": "min"}]


def make(search: dict[str, Any], parameters: dict[str, Any] | None = None) -> Spec:
    return parse_spec(
        {
            "name": "s",
            "framework": "python",
            "entrypoint": "json:loads",
            "search": {"method": "optuna", "trials": 8, "seed": 1, **search},
            "parameters": parameters or {"x": {"uniform": [0.0, 1.0]}},
        }
    )


@pytest.mark.parametrize("sampler", ["tpe", "nsgaii", "nsgaiii", "random", "qmc", "gp"])
def test_tune_can_pickle_the_searcher_with_any_sampler(sampler: str) -> None:
    searcher = searcher_for(make({"sampler": sampler, "metrics": TWO}))
    searcher.suggest("t0")
    copy = pickle.loads(pickle.dumps(searcher))
    assert copy.suggest("t1") is not None  # and it still works


def test_two_objectives_are_told_as_values_without_intermediate_reports() -> None:
    searcher = searcher_for(make({"sampler": "nsgaii", "metrics": TWO}))
    searcher.suggest("t0")
    searcher.on_trial_result("t0", {"acc": 0.5, "size": 2.0, "training_iteration": 1})
    searcher.on_trial_complete("t0", {"acc": 0.7, "size": 3.0})
    (trial,) = _compat.searcher_study(searcher).trials
    assert trial.state == TrialState.COMPLETE and trial.values == [0.7, 3.0]
    assert trial.intermediate_values == {}


def test_a_trial_missing_one_objective_fails() -> None:
    searcher = searcher_for(make({"sampler": "tpe", "metrics": TWO}))
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"acc": 0.7})
    assert _compat.searcher_study(searcher).trials[0].state == TrialState.FAIL


def test_an_early_stopped_two_objective_trial_is_pruned() -> None:
    stopped: set[str] = {"t0"}
    spec = make({"sampler": "tpe", "metrics": TWO})
    searcher = searcher_for(spec, early_stopped=stopped)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"acc": 0.7, "size": 1.0})
    assert _compat.searcher_study(searcher).trials[0].state == TrialState.PRUNED


def test_constraint_values_are_set_before_the_trial_is_told() -> None:
    spec = make({"metric": "acc", "mode": "max", "constraints": ["size <= 2", "lat > 1"]})
    searcher = searcher_for(spec)
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"acc": 0.7, "size": 3.0})  # lat never reported
    trial = _compat.searcher_study(searcher).trials[0]
    assert trial.constraints == {"size <= 2": 1.0, "lat > 1": 1.0}
    assert _compat.searcher_study(searcher).best_trials == []  # Optuna: infeasible


def test_a_conditional_space_is_suggested_define_by_run() -> None:
    spec = make(
        {"metric": "acc", "mode": "max", "sampler": "random", "trials": 30},
        {
            "opt": {"choice": ["adam", "sgd"]},
            "momentum": {"uniform": [0.5, 0.9], "when": {"opt": "sgd"}},
            "nesterov": {"choice": [True, False], "when": {"opt": "sgd"}},
        },
    )
    searcher = searcher_for(spec)
    for i in range(30):
        config = searcher.suggest(f"t{i}")
        assert config is not None
        params = {k: v for k, v in config.items() if k != NAME_KEY}
        expected = {"opt", "momentum", "nesterov"} if params["opt"] == "sgd" else {"opt"}
        assert set(params) == expected
        searcher.on_trial_complete(f"t{i}", {"acc": 0.5})
    trials = _compat.searcher_study(searcher).trials
    assert {t.params["opt"] for t in trials} == {"adam", "sgd"}
