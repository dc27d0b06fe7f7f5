"""What a spec says about earlier trials: defaults, initial points, warm-start names, which
earlier values fit a space, and what an extension may change (one rule per test)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from sweeper.errors import SpecError
from sweeper.spec import Choice, Constant, IntRange, LogUniform, Uniform, contains, parse_spec
from sweeper.spec._iteration import check_extension

ROOT = Path(__file__).resolve().parents[2]
CODE = "tests/_code/trainables.py:quadratic"


def data(method: str = "optuna", **search: Any) -> dict[str, Any]:
    return {
        "name": "iterate",
        "framework": "python",
        "entrypoint": CODE,
        "parameters": {
            "epochs": 3,
            "lr": {"loguniform": [1.0e-4, 1.0e-1]},
            "hidden": {"choice": [32, 64]},
            "optimizer": {"choice": ["adam", "sgd"]},
            "momentum": {"uniform": [0.5, 0.9], "when": {"optimizer": "sgd"}},
        },
        "search": {"method": method, "metric": "loss", "mode": "min", "trials": 4, **search},
    }


def grid() -> dict[str, Any]:
    spec = data("grid")
    spec["parameters"] = {"epochs": 3, "lr": {"choice": [0.1, 0.01]}, "hidden": {"int": [1, 3]}}
    del spec["search"]["trials"]
    return spec


def parse(spec: dict[str, Any], file: str | None = None):
    return parse_spec(spec, base_dir=ROOT, file=file)


def refused(spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse(spec)
    return str(info.value)


# -- default -------------------------------------------------------------------------------


def test_a_dimension_takes_a_default():
    spec = data()
    spec["parameters"]["dropout"] = {"uniform": [0.0, 0.5], "default": 0.1}
    assert parse(spec).defaults == {"dropout": 0.1}


def test_a_default_must_be_a_scalar():
    spec = data()
    spec["parameters"]["dropout"] = {"uniform": [0.0, 0.5], "default": [0.1]}
    assert refused(spec) == (
        "parameters.dropout.default must be a number, text or true/false on a search "
        "dimension, got [0.1] (parameters.dropout.default); a default is the value earlier "
        "trials ran with, where they lack the parameter"
    )


def test_a_constant_takes_no_default():
    spec = data()
    spec["parameters"]["dropout"] = {"value": 0.1, "default": 0.2}
    assert refused(spec).startswith("parameters.dropout.default must be a number, text or")


# -- initial points ----------------------------------------------------------------------------


def test_initial_points_may_leave_dimensions_out():
    spec = data(initial_points=[{"lr": 0.01}, {"optimizer": "sgd", "momentum": 0.7}])
    assert parse(spec).search.initial_points[1] == {"optimizer": "sgd", "momentum": 0.7}


def test_an_initial_point_must_name_something():
    assert refused(data(initial_points=[{}])) == (
        "search.initial_points[0] must name at least one parameter, got {} "
        "(search.initial_points.0); write e.g. initial_points: [{lr: 0.01, hidden: 64}]"
    )


def test_an_initial_point_must_name_dimensions():
    assert refused(data(initial_points=[{"layers": 2}])) == (
        "search.initial_points[0] must name search dimensions, got 'layers' (no parameter) "
        "(search.initial_points.0.layers); the dimensions are lr, hidden, optimizer, momentum"
    )


def test_an_initial_point_must_not_name_a_constant():
    assert refused(data(initial_points=[{"epochs": 5}])).startswith(
        "search.initial_points[0] must name search dimensions, got 'epochs' (a constant)"
    )


def test_an_initial_point_must_be_in_the_space():
    assert refused(data(initial_points=[{"lr": 0.5}])) == (
        "search.initial_points[0].lr must be a value of loguniform(0.0001, 0.1), got 0.5 "
        "(search.initial_points.0.lr); widen the parameter's range, or change the point"
    )


def test_a_grid_initial_point_must_be_a_grid_value():
    spec = grid()
    spec["search"]["initial_points"] = [{"lr": 0.05}]
    assert refused(spec) == (
        "search.initial_points[0].lr must be a value of choice(0.1, 0.01), got 0.05 "
        "(search.initial_points.0.lr); a grid runs points of its own first"
    )


def test_an_initial_point_must_not_set_an_inactive_parameter():
    spec = data(initial_points=[{"optimizer": "adam", "momentum": 0.7}])
    assert refused(spec) == (
        "search.initial_points[0].momentum must be active in the point, got it where its "
        "condition (when optimizer = 'sgd') is not met (search.initial_points.0.momentum); "
        "leave it out, or give the values its condition asks for"
    )


def test_initial_points_must_not_outnumber_the_trials():
    spec = data(initial_points=[{"lr": 0.01}] * 5)
    assert refused(spec) == (
        "search.initial_points must be at most search.trials (4) points, got 5 "
        "(search.initial_points); initial points are the first of the trials: raise trials "
        "or list fewer"
    )


def test_skip_evaluated_is_for_grid_and_random():
    assert refused(data(skip_evaluated=True)) == (
        "search.skip_evaluated must not be set for method optuna, got true "
        "(search.skip_evaluated); Optuna's sampler sees the seeding sweeps' trials and moves "
        "on from them"
    )


def test_warm_start_takes_one_name_or_a_list():
    assert parse(data(warm_start="digits")).search.warm_start == ["digits"]
    assert parse(data(warm_start=["a", "b"])).search.warm_start == ["a", "b"]


def test_a_warm_start_entry_must_name_a_sweep():
    assert refused(data(warm_start=["a", " "])) == (
        "search.warm_start entries must name a sweep, got ' ' (search.warm_start.1); give a "
        "sweep's id, folder, id prefix or spec name"
    )


# -- which earlier values fit ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "inside", "outside"),
    [
        (Choice((1, "a", True)), [1, 1.0, "a", True], [2, "b", False]),
        (Uniform(0.0, 1.0), [0, 0.5, 1.0], [-0.1, 1.5, "x", True]),
        (Uniform(0.0, 1.0, 0.25), [0.25, 0.75], [0.3]),
        (LogUniform(1e-3, 1.0), [1e-3, 0.5], [0.0, 2.0]),
        (IntRange(2, 10, 2), [2, 4, 10, 6.0], [3, 12, 4.5]),
        (Constant(5), [5, 5.0], [6]),
    ],
)
def test_contains(param, inside, outside):
    assert all(contains(param, v) for v in inside)
    assert not any(contains(param, v) for v in outside)


def test_fit_keeps_the_active_dimensions_of_values_in_the_space():
    space = parse(data()).conditional_space
    values = {"epochs": 3, "lr": 0.01, "hidden": 64, "optimizer": "adam", "momentum": 0.7}
    assert space.fit(values) == {"lr": 0.01, "hidden": 64, "optimizer": "adam"}


def test_fit_refuses_a_value_outside_the_space():
    space = parse(data()).conditional_space
    assert space.fit({"lr": 0.5, "hidden": 64, "optimizer": "adam"}) is None


def test_fit_refuses_another_constant():
    space = parse(data()).conditional_space
    assert space.fit({"epochs": 9, "lr": 0.01, "hidden": 64, "optimizer": "adam"}) is None


def test_fit_takes_a_missing_dimension_from_the_defaults_only():
    space = parse(data()).conditional_space
    values = {"lr": 0.01, "optimizer": "adam"}
    assert space.fit(values) is None
    assert space.fit(values, {"hidden": 32}) == {"lr": 0.01, "hidden": 32, "optimizer": "adam"}


def test_fit_ignores_parameters_the_space_lacks():
    space = parse(data()).conditional_space
    values = {"lr": 0.01, "hidden": 64, "optimizer": "adam", "layers": 4}
    assert space.fit(values) == {"lr": 0.01, "hidden": 64, "optimizer": "adam"}


# -- what an extension may change --------------------------------------------------------------


def changed(edit, base: dict[str, Any] | None = None) -> list[str]:
    old = base or data()
    new = copy.deepcopy(old)
    edit(new)
    return check_extension(parse(old), parse(new, "new.yml"), "iterate-1")


def refusal(edit, base: dict[str, Any] | None = None) -> str:
    with pytest.raises(SpecError) as info:
        changed(edit, base)
    return str(info.value)


def test_more_trials_limits_and_a_wider_range_may_change():
    def edit(spec):
        spec["search"]["trials"] = 8
        spec["limits"] = {"max_gpu_hours": 2}
        spec["parameters"]["lr"] = {"loguniform": [1.0e-5, 1.0]}

    assert changed(edit) == [
        "search.trials: 4 -> 8",
        "limits.max_gpu_hours: None -> 2.0",
        "parameters.lr: loguniform(0.0001, 0.1) -> loguniform(1e-05, 1)",
    ]


def test_a_constant_may_become_a_dimension():
    def edit(spec):
        spec["parameters"]["epochs"] = {"int": [3, 9]}

    assert changed(edit) == ["parameters.epochs: 3 -> int(3, 9)"]


def test_a_new_dimension_needs_a_default():
    def edit(spec):
        spec["parameters"]["dropout"] = {"uniform": [0.0, 0.5]}

    assert refusal(edit) == (
        "parameters.dropout must have a default to extend sweep iterate-1 (the value earlier "
        "trials ran with), got none (new.yml: parameters.dropout.default); add default: "
        "<value> to it, or start a new sweep with --warm-start iterate-1"
    )


def test_a_new_dimension_with_a_default_may_be_added():
    def edit(spec):
        spec["parameters"]["dropout"] = {"uniform": [0.0, 0.5], "default": 0.0}

    assert changed(edit) == ["parameters.dropout: new, uniform(0, 0.5) (earlier trials: 0.0)"]


def test_a_new_constant_is_refused():
    def edit(spec):
        spec["parameters"]["batch"] = 128

    assert refusal(edit).startswith(
        "parameters.batch must not be a new constant to extend sweep iterate-1 (earlier trials "
        "ran without it), got 128 (new.yml: parameters.batch)"
    )


def test_a_changed_constant_is_refused():
    def edit(spec):
        spec["parameters"]["epochs"] = 5

    assert refusal(edit) == (
        "parameters.epochs must stay 3 to extend sweep iterate-1 (a constant is part of every "
        "trial), got 5 (new.yml: parameters.epochs); make it a dimension to search over it, or "
        "start a new sweep with --warm-start iterate-1"
    )


def test_a_removed_parameter_is_refused():
    def edit(spec):
        del spec["parameters"]["hidden"]

    assert refusal(edit).startswith(
        "parameters.hidden must stay in the spec to extend sweep iterate-1 (earlier trials ran "
        "with it), got it removed (new.yml: parameters.hidden)"
    )


def test_a_framework_change_is_refused():
    def edit(spec):
        spec["framework"] = "pytorch"

    assert refusal(edit) == (
        "framework must stay 'python' to extend sweep iterate-1 (an extension changes only the "
        "search space, trials and limits), got 'pytorch' (new.yml: framework); start a new "
        "sweep with --warm-start iterate-1"
    )


def test_a_data_change_is_refused():
    def edit(spec):
        spec["data"] = "tests"

    assert refusal(edit).startswith("data must stay None to extend sweep iterate-1")


def test_fewer_trials_are_refused():
    def edit(spec):
        spec["search"]["trials"] = 3

    assert refusal(edit) == (
        "search.trials must be at least the sweep's 4 trials to extend sweep iterate-1, got 3 "
        "(new.yml: search.trials); give the new total there, or --trials +N"
    )


def test_the_same_entrypoint_written_absolute_is_no_change():
    def edit(spec):
        spec["entrypoint"] = f"{ROOT / 'tests/_code/trainables.py'}:quadratic"
        spec["search"]["trials"] = 5

    assert changed(edit) == ["search.trials: 4 -> 5"]


def test_a_grid_may_gain_values():
    def edit(spec):
        spec["parameters"]["lr"] = {"choice": [0.1, 0.01, 0.001]}
        spec["parameters"]["hidden"] = {"int": [1, 4]}

    assert changed(edit, grid()) == [
        "parameters.lr: choice(0.1, 0.01) -> choice(0.1, 0.01, 0.001)",
        "parameters.hidden: int(1, 3) -> int(1, 4)",
    ]


def test_a_grid_must_keep_its_values():
    def edit(spec):
        spec["parameters"]["hidden"] = {"int": [2, 4]}

    assert refusal(edit, grid()) == (
        "parameters.hidden must keep the grid's values to extend sweep iterate-1 (a grid grows "
        "only by adding values), got int(2, 4) without 1 (new.yml: parameters.hidden); add "
        "values and keep the old ones, or start a new sweep with --warm-start iterate-1"
    )


def test_the_wider_example_extends_the_digits_example():
    from sweeper.spec import load_spec

    old = load_spec(ROOT / "configs/digits-pytorch.yml")
    new = load_spec(ROOT / "configs/digits-pytorch-wider.yml")
    assert check_extension(old, new, "digits-pytorch-1") == [
        "description: 'MLP on the 8x8 digits, 20 Optuna trials of 15 epochs' -> 'MLP on the 8x8 "
        "digits, a wider lr range and the batch size searched'",
        "search.trials: 20 -> 40",
        "parameters.lr: loguniform(0.0001, 0.1) -> loguniform(1e-05, 0.3)",
        "parameters.batch_size: new, choice(32, 64, 128) (earlier trials: 64)",
    ]
