"""``parse_parameter`` and ``grid_values``: every dimension kind and every rejection rule."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from sweeper.spec._parameters import (
    Choice,
    Constant,
    IntRange,
    LogUniform,
    ParameterError,
    Uniform,
    grid_values,
    parse_parameter,
)

KEYS = "choice, uniform, loguniform, int, value, step, log, when, default"
KINDS = "choice, uniform, loguniform, int, value"


def reject(raw: Any, message: str, name: str = "x") -> ParameterError:
    """Parse ``raw``, expecting a :class:`ParameterError` whose text is exactly ``message``."""
    with pytest.raises(ParameterError, match=f"^{re.escape(message)}$") as info:
        parse_parameter(name, raw)
    assert info.value.message == message
    return info.value


# --- Constants ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [3, 0.5, "adam", True, None, [1, 2], ["a", "b"], []])
def test_scalar_and_list_are_constants(raw: Any) -> None:
    param = parse_parameter("x", raw)
    assert param == Constant(raw)
    assert grid_values(param) == [raw]


def test_value_wraps_a_constant_mapping() -> None:
    param = parse_parameter("opt", {"value": {"name": "adam", "betas": [0.9, 0.99]}})
    assert param == Constant({"name": "adam", "betas": [0.9, 0.99]})
    assert grid_values(param) == [{"name": "adam", "betas": [0.9, 0.99]}]


def test_value_wraps_a_constant_list() -> None:
    """A list under ``value`` is one constant, not a choice."""
    assert parse_parameter("x", {"value": [1, 2, 3]}) == Constant([1, 2, 3])


def test_constant_describe_is_its_repr() -> None:
    assert Constant("adam").describe() == "'adam'"
    assert Constant(5).describe() == "5"


# --- Dimensions --------------------------------------------------------------------------------


def test_choice() -> None:
    param = parse_parameter("hidden", {"choice": [32, 64, 128]})
    assert param == Choice((32, 64, 128))
    assert isinstance(param.values, tuple)
    assert grid_values(param) == [32, 64, 128]
    assert param.describe() == "choice(32, 64, 128)"


def test_choice_of_mixed_values_keeps_order_and_types() -> None:
    param = parse_parameter("x", {"choice": ["relu", 1, None, [1, 2]]})
    assert param == Choice(("relu", 1, None, [1, 2]))
    assert grid_values(param) == ["relu", 1, None, [1, 2]]


def test_uniform() -> None:
    param = parse_parameter("dropout", {"uniform": [0, 1]})
    assert param == Uniform(0.0, 1.0, None)
    assert isinstance(param.low, float) and isinstance(param.high, float)
    assert grid_values(param) is None
    assert param.describe() == "uniform(0, 1)"


def test_uniform_with_step() -> None:
    param = parse_parameter("dropout", {"uniform": [0.0, 0.5], "step": 0.1})
    assert param == Uniform(0.0, 0.5, 0.1)
    assert param.describe() == "uniform(0, 0.5, step=0.1)"


def test_uniform_with_integer_step_is_float() -> None:
    param = parse_parameter("x", {"uniform": [0, 10], "step": 5})
    assert param == Uniform(0.0, 10.0, 5.0)
    assert isinstance(param.step, float)
    assert grid_values(param) == [0.0, 5.0, 10.0]


def test_uniform_step_equal_to_the_range_is_allowed() -> None:
    param = parse_parameter("x", {"uniform": [0, 1], "step": 1})
    assert grid_values(param) == [0.0, 1.0]


def test_loguniform() -> None:
    param = parse_parameter("lr", {"loguniform": [1.0e-4, 1.0e-1]})
    assert param == LogUniform(1.0e-4, 1.0e-1)
    assert grid_values(param) is None
    assert param.describe() == "loguniform(0.0001, 0.1)"


def test_int() -> None:
    param = parse_parameter("layers", {"int": [1, 4]})
    assert param == IntRange(1, 4, 1, False)
    assert grid_values(param) == [1, 2, 3, 4]
    assert param.describe() == "int(1, 4)"


def test_int_with_step() -> None:
    param = parse_parameter("batch", {"int": [16, 128], "step": 16})
    assert param == IntRange(16, 128, 16, False)
    assert grid_values(param) == [16, 32, 48, 64, 80, 96, 112, 128]
    assert param.describe() == "int(16, 128, step=16)"


def test_int_with_log() -> None:
    param = parse_parameter("batch", {"int": [16, 256], "log": True})
    assert param == IntRange(16, 256, 1, True)
    assert param.describe() == "int(16, 256, log)"
    values = grid_values(param)
    assert values == list(range(16, 257))


def test_int_with_log_false_and_step() -> None:
    param = parse_parameter("x", {"int": [1, 9], "log": False, "step": 2})
    assert param == IntRange(1, 9, 2, False)


def test_int_with_explicit_step_one_and_log() -> None:
    assert parse_parameter("x", {"int": [1, 8], "log": True, "step": 1}) == IntRange(1, 8, 1, True)


def test_negative_bounds() -> None:
    assert parse_parameter("x", {"int": [-3, 3]}) == IntRange(-3, 3)
    assert parse_parameter("x", {"uniform": [-1.5, -0.5]}) == Uniform(-1.5, -0.5)


def test_bounds_may_be_a_tuple() -> None:
    assert parse_parameter("x", {"uniform": (0, 1)}) == Uniform(0.0, 1.0)


def test_dataclasses_are_frozen() -> None:
    param = parse_parameter("x", {"int": [1, 4]})
    with pytest.raises(AttributeError):
        param.low = 2  # type: ignore[misc]


# --- grid_values -------------------------------------------------------------------------------


def test_grid_values_uniform_step_has_no_float_noise() -> None:
    values = grid_values(Uniform(0.0, 0.5, 0.1))
    assert values == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert len(values) == 6
    assert all(repr(v) in ("0.0", "0.1", "0.2", "0.3", "0.4", "0.5") for v in values)


def test_grid_values_uniform_step_ten_points() -> None:
    values = grid_values(Uniform(0.0, 1.0, 0.1))
    assert values == [round(i / 10, 1) for i in range(11)]


def test_grid_values_uniform_step_reaches_high_despite_division_noise() -> None:
    """(0.3 - 0.0) / 0.1 is 2.9999999999999996; the 0.3 end point must still be a value."""
    assert grid_values(Uniform(0.0, 0.3, 0.1)) == [0.0, 0.1, 0.2, 0.3]
    assert grid_values(Uniform(0.1, 0.7, 0.2)) == [0.1, 0.3, 0.5, 0.7]


def test_grid_values_uniform_step_not_dividing_range_stops_below_high() -> None:
    assert grid_values(Uniform(0.0, 1.0, 0.3)) == [0.0, 0.3, 0.6, 0.9]


def test_grid_values_uniform_values_stay_within_bounds() -> None:
    param = Uniform(0.05, 0.55, 0.1)
    values = grid_values(param)
    assert values == [0.05, 0.15, 0.25, 0.35, 0.45, 0.55]
    assert all(param.low <= v <= param.high for v in values)


def test_grid_values_tiny_uniform_step_keeps_distinct_values_in_bounds() -> None:
    param = parse_parameter("eps", {"uniform": [1.0e-13, 5.0e-13], "step": 1.0e-13})
    values = grid_values(param)
    assert values is not None and len(values) == 5
    assert len(set(values)) == 5
    assert all(math.isclose(v, (i + 1) * 1.0e-13) for i, v in enumerate(values))


def test_grid_values_int_step_not_dividing_range() -> None:
    assert grid_values(IntRange(1, 10, 4)) == [1, 5, 9]


def test_grid_values_int_is_inclusive_of_high() -> None:
    assert grid_values(IntRange(0, 2)) == [0, 1, 2]
    assert grid_values(IntRange(0, 9, 3)) == [0, 3, 6, 9]


def test_grid_values_continuous_dimensions_are_none() -> None:
    assert grid_values(Uniform(0.0, 1.0)) is None
    assert grid_values(LogUniform(1e-3, 1.0)) is None


def test_grid_values_returns_a_fresh_list() -> None:
    param = Choice((1, 2))
    values = grid_values(param)
    values.append(3)
    assert grid_values(param) == [1, 2]


# --- Rejections --------------------------------------------------------------------------------


def test_unknown_key_suggests_a_close_kind() -> None:
    error = reject(
        {"choise": [1, 2]},
        f"parameters.hidden key must be one of {KEYS}, got 'choise'",
        "hidden",
    )
    assert str(error) == error.message
    assert error.field == "parameters.hidden.choise"
    assert error.hint == "did you mean 'choice'?"


def test_unknown_key_suggests_a_close_modifier() -> None:
    error = reject(
        {"uniform": [0, 1], "stpe": 0.1},
        f"parameters.x key must be one of {KEYS}, got 'stpe'",
    )
    assert error.field == "parameters.x.stpe"
    assert error.hint == "did you mean 'step'?"


def test_unknown_key_without_close_match_explains_constant_mappings() -> None:
    error = reject(
        {"name": "adam", "beta": 0.9},
        f"parameters.optimizer key must be one of {KEYS}, got 'name'",
        "optimizer",
    )
    assert error.field == "parameters.optimizer.name"
    assert error.hint == "for a constant mapping write {value: {...}}"


def test_unknown_non_string_key() -> None:
    error = reject(
        {1: 2},
        f"parameters.x key must be one of {KEYS}, got 1",
    )
    assert error.field == "parameters.x.1"


def test_empty_mapping_has_no_kind() -> None:
    error = reject(
        {},
        f"parameters.x must have exactly one of {KINDS}, got none",
    )
    assert error.field == "parameters.x"
    assert error.hint == "write e.g. {loguniform: [1.0e-4, 1.0e-1]} or {choice: [32, 64]}"


def test_modifier_without_kind() -> None:
    error = reject({"step": 1}, f"parameters.x must have exactly one of {KINDS}, got none")
    assert error.field == "parameters.x"


def test_two_kinds() -> None:
    error = reject(
        {"choice": [1], "uniform": [0, 1]},
        f"parameters.x must have exactly one of {KINDS}, got ['choice', 'uniform']",
    )
    assert error.field == "parameters.x"
    assert error.hint is not None


def test_log_with_uniform() -> None:
    error = reject(
        {"uniform": [0, 1], "log": True},
        "parameters.x.log must not be used with uniform, got True",
    )
    assert error.field == "parameters.x.log"
    assert error.hint == "use loguniform for a log-scaled float"


def test_step_with_loguniform() -> None:
    error = reject(
        {"loguniform": [1e-3, 1.0], "step": 0.1},
        "parameters.x.step must not be used with loguniform, got 0.1",
    )
    assert error.field == "parameters.x.step"
    assert error.hint == "a log scale has no step; list values with {choice: [...]}"


def test_log_with_loguniform() -> None:
    error = reject(
        {"loguniform": [1e-3, 1.0], "log": True},
        "parameters.x.log must not be used with loguniform, got True",
    )
    assert error.field == "parameters.x.log"
    assert error.hint is None


@pytest.mark.parametrize(
    ("raw", "mod", "kind"),
    [
        ({"choice": [1, 2], "step": 1}, "step", "choice"),
        ({"choice": [1, 2], "log": True}, "log", "choice"),
        ({"value": 3, "step": 1}, "step", "value"),
        ({"value": 3, "log": False}, "log", "value"),
    ],
)
def test_modifiers_not_allowed_on_choice_and_value(raw: dict, mod: str, kind: str) -> None:
    error = reject(
        raw,
        f"parameters.x.{mod} must not be used with {kind}, got {raw[mod]!r}",
    )
    assert error.field == f"parameters.x.{mod}"
    assert error.hint is None


@pytest.mark.parametrize("value", [[], "abc", 3, None, {"a": 1}])
def test_choice_must_be_a_non_empty_list(value: Any) -> None:
    error = reject(
        {"choice": value},
        f"parameters.x.choice must be a non-empty list, got {value!r}",
    )
    assert error.field == "parameters.x.choice"
    assert error.hint == "write e.g. {choice: [32, 64, 128]}"


@pytest.mark.parametrize("log", ["yes", 1, None])
def test_log_must_be_a_bool(log: Any) -> None:
    error = reject(
        {"int": [1, 4], "log": log},
        f"parameters.x.log must be true or false, got {log!r}",
    )
    assert error.field == "parameters.x.log"
    assert error.hint is None


@pytest.mark.parametrize("bounds", [5, [1], [1, 2, 3], "1,2", None])
def test_int_bounds_must_be_a_pair(bounds: Any) -> None:
    error = reject(
        {"int": bounds},
        f"parameters.x.int must be [low, high] with two integers, got {bounds!r}",
    )
    assert error.field == "parameters.x.int"
    assert error.hint == "write e.g. {int: [1, 10]}"


@pytest.mark.parametrize("bounds", [[1.0, 4], [1, 4.5], [True, 4], ["1", 4]])
def test_int_bounds_must_be_integers(bounds: list) -> None:
    error = reject(
        {"int": bounds},
        f"parameters.x.int must be [low, high] with two integers, got {bounds!r}",
    )
    assert error.field == "parameters.x.int"
    assert error.hint is None


@pytest.mark.parametrize("kind", ["uniform", "loguniform"])
def test_float_bounds_must_be_a_pair(kind: str) -> None:
    error = reject(
        {kind: [0.5]},
        f"parameters.x.{kind} must be [low, high] with two numbers, got [0.5]",
    )
    assert error.field == f"parameters.x.{kind}"
    assert error.hint == f"write e.g. {{{kind}: [1, 10]}}"


@pytest.mark.parametrize(
    "bounds", [["a", 1], [0, float("nan")], [0, float("inf")], [False, 1], [0, None]]
)
def test_float_bounds_must_be_finite_numbers(bounds: list) -> None:
    error = reject(
        {"uniform": bounds},
        f"parameters.x.uniform must be [low, high] with two numbers, got {bounds!r}",
    )
    assert error.field == "parameters.x.uniform"
    assert error.hint is None


@pytest.mark.parametrize(
    ("kind", "bounds"),
    [
        ("int", [4, 4]),
        ("int", [5, 1]),
        ("uniform", [1, 0]),
        ("uniform", [0.5, 0.5]),
        ("loguniform", [0.1, 0.01]),
    ],
)
def test_low_must_be_below_high(kind: str, bounds: list) -> None:
    error = reject(
        {kind: bounds},
        f"parameters.x.{kind} must have low < high, got {bounds!r}",
    )
    assert error.field == f"parameters.x.{kind}"
    assert error.hint == "swap the bounds or use a constant"


@pytest.mark.parametrize("step", [0, -2, 2.0, 1.5, True, "2"])
def test_int_step_must_be_a_positive_integer(step: Any) -> None:
    error = reject(
        {"int": [1, 10], "step": step},
        f"parameters.x.step must be a positive integer, got {step!r}",
    )
    assert error.field == "parameters.x.step"
    assert error.hint is None


def test_int_log_needs_low_of_at_least_one() -> None:
    error = reject(
        {"int": [0, 8], "log": True},
        "parameters.x.int must have low >= 1 when log is true, got [0, 8]",
    )
    assert error.field == "parameters.x.int"
    assert error.hint is None


def test_int_log_forbids_a_step() -> None:
    error = reject(
        {"int": [1, 8], "log": True, "step": 2},
        "parameters.x.step must be 1 when log is true, got 2",
    )
    assert error.field == "parameters.x.step"
    assert error.hint == "Optuna and Ray Tune cannot combine a step with a log scale"


@pytest.mark.parametrize("bounds", [[0, 1], [-1, 1], [0.0, 1e-3]])
def test_loguniform_needs_positive_low(bounds: list) -> None:
    error = reject(
        {"loguniform": bounds},
        f"parameters.x.loguniform must have low > 0, got {bounds!r}",
    )
    assert error.field == "parameters.x.loguniform"
    assert error.hint == "a log scale needs positive bounds; use uniform to include 0"


@pytest.mark.parametrize("step", [0, -0.1, 1.5, "x", True, float("nan"), None])
def test_uniform_step_must_be_within_the_range(step: Any) -> None:
    raw = {"uniform": [0, 1], "step": step}
    if step is None:
        # ``step: null`` means no step.
        assert parse_parameter("x", raw) == Uniform(0.0, 1.0, None)
        return
    error = reject(
        raw,
        f"parameters.x.step must be a number in (0, 1], got {step!r}",
    )
    assert error.field == "parameters.x.step"
    assert error.hint is None


def test_uniform_step_message_shows_the_range_width() -> None:
    error = reject(
        {"uniform": [0.0, 0.5], "step": 1},
        "parameters.d.step must be a number in (0, 0.5], got 1",
        "d",
    )
    assert error.field == "parameters.d.step"


def test_parameter_error_is_a_value_error() -> None:
    error = reject({"int": [2, 1]}, "parameters.x.int must have low < high, got [2, 1]")
    assert isinstance(error, ValueError)
