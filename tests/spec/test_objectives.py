"""Several objectives and constraints: one exact message per rule, the Pareto front against a
brute-force check, and Optuna's constraint values."""

from __future__ import annotations

import math
import random

import pytest

from sweeper.spec import Objective
from sweeper.spec._objectives import Constraint, pareto_front

HEAD = "name: demo\nframework: python\nentrypoint: train.py:train\n"
PARAMS = "parameters:\n  lr: {loguniform: [1.0e-4, 1.0e-1]}\n"
TWO = "metrics: [{name: acc, mode: max}, {name: size, mode: min}]"


def search(body: str) -> str:
    return f"search: {{method: optuna, trials: 3, {body}}}\n"


def test_metrics_fill_metric_and_mode_with_the_first_objective(spec_file) -> None:
    spec = spec_file.load(HEAD + search("sampler: nsgaii, " + TWO) + PARAMS)
    assert (spec.search.metric, spec.search.mode) == ("acc", "max")
    assert spec.search.objectives == [
        Objective(name="acc", mode="max"),
        Objective(name="size", mode="min"),
    ]
    assert spec.search.multi_objective
    # The dump (a sweep's record) holds both forms, and loads again.
    dumped = spec.search.model_dump(exclude_none=True)
    assert type(spec.search).model_validate(dumped) == spec.search


def test_one_entry_under_metrics_is_a_single_objective(spec_file) -> None:
    spec = spec_file.load(HEAD + search("metrics: [{name: loss, mode: min}]") + PARAMS)
    assert not spec.search.multi_objective and spec.search.metric == "loss"


def test_metric_must_not_be_set_with_metrics(spec_file) -> None:
    text = HEAD + search(f"metric: loss, mode: min, {TWO}") + PARAMS
    assert spec_file.error(text) == (
        "search.metric must not be set with search.metrics, got 'loss' (experiment.yml: "
        "search.metric); list every objective under metrics, or use metric and mode alone"
    )


def test_objective_names_must_be_distinct(spec_file) -> None:
    text = HEAD + search("metrics: [{name: acc, mode: max}, {name: acc, mode: min}]") + PARAMS
    assert spec_file.error(text) == (
        "search.metrics names must be distinct, got 'acc' twice (experiment.yml: "
        "search.metrics.1.name); each objective is one reported metric"
    )


def test_an_objective_needs_a_mode(spec_file) -> None:
    text = HEAD + search("metrics: [{name: acc}, {name: size, mode: min}]") + PARAMS
    assert spec_file.error(text).startswith("search.metrics.0.mode ")


def test_cmaes_cannot_take_several_objectives(spec_file) -> None:
    text = HEAD + search("sampler: cmaes, " + TWO) + PARAMS
    assert spec_file.error(text) == (
        "search.sampler must support several objectives, got cmaes for 2 metrics "
        "(experiment.yml: search.sampler); use nsgaii, nsgaiii, tpe, gp, qmc or random, or a "
        "single metric"
    )


def test_early_stopping_must_name_its_objective_with_several(spec_file) -> None:
    text = HEAD + search(TWO) + PARAMS + "early_stopping: {method: asha, max_steps: 9}\n"
    assert spec_file.error(text) == (
        "early_stopping.metric must be set with several objectives, got nothing "
        "(search.metrics: acc, size) (experiment.yml: early_stopping.metric); name the "
        "objective trials are stopped on, e.g. metric: acc"
    )


def test_early_stopping_metric_must_be_an_objective(spec_file) -> None:
    text = HEAD + search(TWO) + PARAMS
    text += "early_stopping: {method: asha, max_steps: 9, metric: loss}\n"
    assert spec_file.error(text) == (
        "early_stopping.metric must be one of the search's objectives (acc, size), got 'loss' "
        "(experiment.yml: early_stopping.metric); early_stopping judges trials by one "
        "objective's value, in that objective's mode"
    )


def test_early_stopping_judges_the_objective_it_names(spec_file) -> None:
    text = HEAD + search(TWO) + PARAMS
    spec = spec_file.load(text + "early_stopping: {method: median, metric: size}\n")
    assert spec.stopping_objective == Objective(name="size", mode="min")


def test_a_constraint_must_be_metric_op_number(spec_file) -> None:
    text = HEAD + search("metric: acc, mode: max, constraints: ['size == 5']") + PARAMS
    assert spec_file.error(text) == (
        "search.constraints[0] must be '<metric> <op> <number>' with op one of <=, <, >=, >, "
        "got 'size == 5' (experiment.yml: search.constraints.0); write e.g. 'params_m <= 5' "
        "or 'latency_ms < 20'"
    )


def test_a_constraint_must_not_name_a_parameter(spec_file) -> None:
    text = HEAD + search("metric: acc, mode: max, constraints: ['lr < 0.01']") + PARAMS
    assert spec_file.error(text) == (
        "search.constraints[0] must name a reported metric, got parameter 'lr' ('lr < 0.01') "
        "(experiment.yml: search.constraints.0); constraints judge what trials report; narrow "
        "lr's range under parameters instead"
    )


def test_one_constraint_may_be_written_without_a_list(spec_file) -> None:
    spec = spec_file.load(
        HEAD + search("metric: acc, mode: max, constraints: 'size<=5e1'") + PARAMS
    )
    (constraint,) = spec.search.parsed_constraints
    assert (constraint.metric, constraint.op, constraint.bound) == ("size", "<=", 50.0)
    assert spec.search.watched_metrics == ("acc", "size")


@pytest.mark.parametrize(
    ("op", "value", "holds", "violation"),
    [
        ("<=", 5.0, True, 0.0),
        ("<", 5.0, False, math.ulp(0.0)),
        ("<", 4.0, True, -1.0),
        (">=", 7.0, True, -2.0),
        (">", 4.0, False, 1.0),
    ],
)
def test_constraint_values_are_optunas(op, value, holds, violation) -> None:
    constraint = Constraint("m", op, 5.0, f"m {op} 5")
    assert constraint.holds(value) is holds
    assert constraint.violation(value) == violation
    assert (constraint.violation(value) <= 0) is holds  # Optuna's rule: at most 0 is feasible


def test_a_missing_or_nan_value_is_infeasible() -> None:
    constraint = Constraint("m", "<=", 5.0, "m <= 5")
    assert constraint.violation(None) == 1.0 and constraint.violation(float("nan")) == 1.0
    assert not constraint.holds(float("nan"))


def test_the_pareto_front_matches_a_brute_force_check() -> None:
    objectives = [Objective(name="a", mode="max"), Objective(name="b", mode="min")]
    rng = random.Random(3)
    for _ in range(50):
        # Few distinct values, so ties and duplicate points happen.
        points = [[rng.randint(0, 6), rng.randint(0, 6)] for _ in range(rng.randint(1, 25))]
        expected = [
            i
            for i, p in enumerate(points)
            if not any(
                q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1]) for q in points
            )
        ]
        assert pareto_front(points, objectives) == expected
