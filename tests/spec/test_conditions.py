"""Conditional parameters (``when``): one exact message per rule, and the spaces they make
(the grid's valid combinations, counted and listed; which parameters are active)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

HEAD = "name: demo\nframework: python\nentrypoint: train.py:train\n"
OPTUNA = "search: {method: optuna, metric: loss, mode: min, trials: 3}\n"
GRID = "search: {method: grid, metric: loss, mode: min}\n"
OPT = "parameters:\n  optimizer: {choice: [adam, sgd]}\n"


def test_a_condition_on_an_unknown_parameter(spec_file) -> None:
    text = HEAD + OPTUNA + OPT + "  momentum: {uniform: [0.5, 0.99], when: {optimiser: sgd}}\n"
    assert spec_file.error(text) == (
        "parameters.momentum.when must name parameters of the spec, got 'optimiser' "
        "(experiment.yml: parameters.momentum.when.optimiser); did you mean 'optimizer'?"
    )


def test_a_value_the_parent_can_never_take(spec_file) -> None:
    text = HEAD + OPTUNA + OPT + "  momentum: {uniform: [0.5, 0.99], when: {optimizer: rmsprop}}\n"
    assert spec_file.error(text) == (
        "parameters.momentum.when.optimizer must be a value optimizer can take, got 'rmsprop' "
        "(optimizer is choice('adam', 'sgd')) (experiment.yml: parameters.momentum.when."
        "optimizer); momentum would never be active; fix the value or optimizer's list"
    )


def test_an_int_parent_value_off_its_step(spec_file) -> None:
    text = HEAD + OPTUNA + "parameters:\n  layers: {int: [1, 7], step: 2}\n"
    text += "  width: {choice: [8, 16], when: {layers: 2}}\n"
    assert "got 2 (layers is int(1, 7, step=2))" in spec_file.error(text)


def test_a_cycle(spec_file) -> None:
    text = HEAD + OPTUNA + "parameters:\n  a: {choice: [1, 2], when: {c: 1}}\n"
    text += "  b: {choice: [1, 2], when: {a: 1}}\n  c: {choice: [1, 2], when: {b: 1}}\n"
    assert spec_file.error(text) == (
        "parameters' when conditions must not form a cycle, got a -> c -> b -> a "
        "(experiment.yml: parameters.a.when); a parameter cannot depend, even through others, "
        "on itself"
    )


def test_a_parameter_conditioned_on_itself(spec_file) -> None:
    text = HEAD + OPTUNA + "parameters:\n  a: {choice: [1, 2], when: {a: 1}}\n"
    assert "must not form a cycle, got a -> a" in spec_file.error(text)


def test_a_continuous_parent(spec_file) -> None:
    text = HEAD + OPTUNA + "parameters:\n  lr: {uniform: [0.0, 1.0]}\n"
    text += "  warm: {choice: [true, false], when: {lr: 0.5}}\n"
    assert spec_file.error(text) == (
        "parameters.warm.when must name a parameter with distinct values (choice, int or "
        "constant), got lr: uniform(0, 1) (experiment.yml: parameters.warm.when.lr); a "
        "continuous value is never exactly equal to one number; make lr a choice"
    )


def test_a_combination_no_trial_can_meet(spec_file) -> None:
    text = HEAD + OPTUNA + OPT + "  momentum: {choice: [0.5, 0.9], when: {optimizer: sgd}}\n"
    text += "  nesterov: {choice: [true, false], when: {optimizer: adam, momentum: 0.9}}\n"
    assert spec_file.error(text) == (
        "parameters.nesterov.when must be met by some combination of values, got when "
        "optimizer = 'adam' and momentum = 0.9, which no trial can meet (experiment.yml: "
        "parameters.nesterov.when); a parent it names is itself active only for other values"
    )


def test_when_must_be_a_mapping(spec_file) -> None:
    text = HEAD + OPTUNA + OPT + "  momentum: {uniform: [0.5, 0.99], when: sgd}\n"
    assert spec_file.error(text) == (
        "parameters.momentum.when must be a mapping of parameter to value(s), got 'sgd' "
        "(experiment.yml: parameters.momentum.when); write e.g. when: {optimizer: sgd} or "
        "when: {optimizer: [sgd, rmsprop]}"
    )


def test_when_on_a_constant(spec_file) -> None:
    text = HEAD + OPTUNA + OPT + "  momentum: {value: 0.9, when: {optimizer: sgd}}\n"
    assert spec_file.error(text) == (
        "parameters.momentum.when must not be used with value, got {'optimizer': 'sgd'} "
        "(experiment.yml: parameters.momentum.when); a constant is in every trial; for a "
        "conditional one write {choice: [0.9], when: ...}"
    )


NESTED = (
    OPT
    + "  momentum: {choice: [0.0, 0.5, 0.9], when: {optimizer: sgd}}\n"
    + "  nesterov: {choice: [true, false], when: {momentum: [0.5, 0.9]}}\n"
    + "  beta2: {choice: [0.99, 0.999], when: {optimizer: adam}}\n"
    + "  layers: {int: [1, 3]}\n"
    + "  width: {choice: [32, 64], when: {layers: [2, 3]}}\n"
    + "  model: cnn\n"
    + "  kernel: {choice: [3, 5], when: {model: cnn}}\n"
)


def brute_force(spec) -> list[dict[str, Any]]:
    """Every combination of every dimension, reduced to its active parameters, deduplicated."""
    dims = spec.dimensions
    values = [
        [*(p.values if hasattr(p, "values") else range(p.low, p.high + 1, p.step))]
        for p in dims.values()
    ]
    seen = {}
    for combo in itertools.product(*values):
        values_of = dict(zip(dims, combo, strict=True))
        point = spec.conditional_space.active({**spec.constants, **values_of})
        point = {k: v for k, v in point.items() if k in dims}
        seen[repr(sorted(point.items()))] = point
    return list(seen.values())


def test_a_nested_grid_counts_and_lists_the_valid_combinations(spec_file) -> None:
    from sweeper.search import sweep_points

    spec = spec_file.load(HEAD + GRID + NESTED)
    expected = brute_force(spec)
    # adam: 2 beta2; sgd: momentum 0.0, or 0.5/0.9 x 2 nesterov = 5; layers 1 or (2, 3) x 2.
    assert len(expected) == (2 + 5) * (1 + 2 * 2) * 2
    assert spec.trial_count() == len(expected)
    points = sweep_points(spec)
    assert len(points) == len(expected)
    assert sorted(map(repr, map(sorted, (p.items() for p in points)))) == sorted(
        repr(sorted(p.items())) for p in expected
    )
    # Nested loops in the spec's order: optimizer varies slowest, kernel fastest.
    assert points[0] == {"optimizer": "adam", "beta2": 0.99, "layers": 1, "kernel": 3}
    assert points[1] == {"optimizer": "adam", "beta2": 0.99, "layers": 1, "kernel": 5}


def test_a_child_declared_before_its_parent_is_drawn_after_it(spec_file) -> None:
    text = HEAD + "search: {method: random, metric: loss, mode: min, trials: 40, seed: 1}\n"
    text += "parameters:\n  momentum: {uniform: [0.5, 0.9], when: {optimizer: sgd}}\n"
    text += "  optimizer: {choice: [adam, sgd]}\n"
    spec = spec_file.load(text)
    assert spec.conditional_space.order == ["optimizer", "momentum"]
    from sweeper.search import sweep_points

    points = sweep_points(spec) or []
    assert all(("momentum" in p) == (p["optimizer"] == "sgd") for p in points)
    assert {p["optimizer"] for p in points} == {"adam", "sgd"}


def test_a_grid_too_large_even_with_conditions(spec_file) -> None:
    text = HEAD + GRID + "parameters:\n  a: {int: [1, 100]}\n  b: {int: [1, 100]}\n"
    text += "  c: {int: [1, 100], when: {a: [1, 2]}}\n  d: {int: [1, 30]}\n"
    # a in (1, 2): 2 x 100 x 100 x 30; the other 98 values of a: 98 x 100 x 30.
    assert spec_file.error(text) == (
        "the grid must have at most 100000 points for method grid, got 894000 (valid "
        "combinations of 100 x 100 x 100 x 30) (experiment.yml: parameters); use fewer values "
        "or a larger step, or method random or optuna with trials"
    )


def test_parameters_without_conditions_keep_their_draws(spec_file) -> None:
    # A spec with no when draws exactly what it drew before conditions existed.
    import numpy as np

    from sweeper.search import sweep_points

    text = HEAD + "search: {method: random, metric: loss, mode: min, trials: 3, seed: 7}\n"
    text += "parameters:\n  x: {uniform: [0.0, 1.0]}\n  k: {choice: [a, b]}\n"
    spec = spec_file.load(text)
    rng = np.random.default_rng(7)
    expected = []
    for _ in range(3):
        x = float(rng.uniform(0.0, 1.0, size=1)[0])
        k = ["a", "b"][int(rng.integers(0, 2, size=1)[0])]
        expected.append({"x": x, "k": k})
    assert sweep_points(spec) == expected


@pytest.mark.parametrize("reverse", [False, True])
def test_a_chain_of_thousands_of_conditions_loads(spec_file, reverse: bool) -> None:
    # Each parameter exists only when the one before it is 1: 3,001 valid combinations.
    lines = ["  a0: {choice: [1, 2]}"]
    lines += [f"  a{i}: {{choice: [1, 2], when: {{a{i - 1}: 1}}}}" for i in range(1, 3000)]
    if reverse:  # children declared before their parents
        lines.reverse()
    spec = spec_file.load(HEAD + GRID + "parameters:\n" + "\n".join(lines) + "\n")
    assert spec.trial_count() == 3001
    assert spec.conditional_space.order[:3] == ["a0", "a1", "a2"]
