"""Search dimensions and constants of an experiment spec's ``parameters`` block.

A parameter is either a constant (any YAML scalar or list, or ``{value: ...}`` for a mapping) or a
search dimension written as a one-key mapping::

    lr: {loguniform: [1.0e-4, 1.0e-1]}
    hidden: {choice: [32, 64, 128]}
    dropout: {uniform: [0.0, 0.5], step: 0.1}
    layers: {int: [1, 4]}
    batch: {int: [16, 256], log: true}
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Union

__all__ = [
    "Choice",
    "Constant",
    "IntRange",
    "LogUniform",
    "Parameter",
    "ParameterError",
    "Uniform",
    "contains",
    "grid_count",
    "grid_value",
    "grid_values",
    "parse_parameter",
    "same_value",
]

_KINDS = ("choice", "uniform", "loguniform", "int", "value")
_MODIFIERS = ("step", "log")
# A parameter's condition (see sweeper.spec._conditions): read there, allowed on any dimension.
_CONDITION = "when"
# The value trials of earlier sweeps ran with where they lack this dimension (an extended or
# warm-started sweep carries them with it); read by the spec, allowed on any dimension.
DEFAULT = "default"


class ParameterError(ValueError):
    """A parameter entry is malformed; ``field`` is relative to the spec's root."""

    def __init__(self, message: str, field: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint


@dataclass(frozen=True)
class Constant:
    """A value passed unchanged to every trial."""

    value: Any

    def describe(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Choice:
    """One of a list of values (categorical)."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "choice(" + ", ".join(repr(v) for v in self.values) + ")"


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]``, optionally on a ``step`` grid."""

    low: float
    high: float
    step: float | None = None

    def describe(self) -> str:
        step = f", step={self.step:g}" if self.step else ""
        return f"uniform({self.low:g}, {self.high:g}{step})"


@dataclass(frozen=True)
class LogUniform:
    """A positive float drawn uniformly in log space from ``[low, high]``."""

    low: float
    high: float

    def describe(self) -> str:
        return f"loguniform({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class IntRange:
    """An integer from ``low`` to ``high`` inclusive, every ``step``, optionally log-scaled."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def describe(self) -> str:
        extra = f", step={self.step}" if self.step != 1 else ""
        extra += ", log" if self.log else ""
        return f"int({self.low}, {self.high}{extra})"


Parameter = Union[Constant, Choice, Uniform, LogUniform, IntRange]  # noqa: UP007 (a runtime alias)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, int)) or (
        isinstance(value, float) and math.isfinite(value)
    )


def same_value(a: Any, b: Any) -> bool:
    """Whether two parameter values are the same: ``1`` and ``1.0`` are, YAML's ``true`` and
    ``1`` are not (a choice of ``[1, true]`` has two values)."""
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def contains(param: Parameter, value: Any) -> bool:
    """Whether ``param`` can take ``value``: a choice's value, a number in a range (on its step
    grid, to Optuna's tolerance), or a constant's own value."""
    if isinstance(param, Constant):
        return same_value(param.value, value)
    if isinstance(param, Choice):
        return any(same_value(v, value) for v in param.values)
    if not _is_number(value):
        return False
    if isinstance(param, IntRange):
        return (
            float(value).is_integer()
            and param.low <= value <= param.high
            and (int(value) - param.low) % param.step == 0
        )
    if not param.low <= value <= param.high:
        return False
    if isinstance(param, Uniform) and param.step:
        k = (value - param.low) / param.step
        return abs(k - round(k)) < 1e-8
    return True


def _bounds(name: str, kind: str, raw: Any, *, integer: bool) -> tuple[float, float]:
    field = f"parameters.{name}.{kind}"
    what = "two integers" if integer else "two numbers"
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise ParameterError(
            f"{field} must be [low, high] with {what}, got {raw!r}",
            field,
            f"write e.g. {{{kind}: [1, 10]}}",
        )
    ok = (lambda v: isinstance(v, int) and not isinstance(v, bool)) if integer else _is_number
    if not all(ok(v) for v in raw):
        raise ParameterError(f"{field} must be [low, high] with {what}, got {raw!r}", field)
    low, high = raw
    if low >= high:
        raise ParameterError(
            f"{field} must have low < high, got {raw!r}", field, "swap the bounds or use a constant"
        )
    return low, high


def parse_parameter(name: str, raw: Any) -> Parameter:
    """Turn one ``parameters`` entry of a spec into a :data:`Parameter`.

    Raises:
        ParameterError: If the entry is malformed.
    """
    if not isinstance(raw, dict):
        return Constant(raw)
    field = f"parameters.{name}"
    keys = (*_KINDS, *_MODIFIERS, _CONDITION, DEFAULT)
    for key in raw:
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1)
            hint: str | None = (
                f"did you mean {close[0]!r}?"
                if close
                else ("for a constant mapping write {value: {...}}")
            )
            raise ParameterError(
                f"{field} key must be one of {', '.join(keys)}, got {key!r}",
                f"{field}.{key}",
                hint,
            )
    kinds = [k for k in raw if k in _KINDS]
    if len(kinds) != 1:
        raise ParameterError(
            f"{field} must have exactly one of {', '.join(_KINDS)}, got {kinds or 'none'}",
            field,
            "write e.g. {loguniform: [1.0e-4, 1.0e-1]} or {choice: [32, 64]}",
        )
    kind = kinds[0]
    value = raw[kind]
    step = raw.get("step")
    log = raw.get("log", False)
    allowed_mods = {
        "choice": (),
        "value": (),
        "uniform": ("step",),
        "loguniform": (),
        "int": ("step", "log"),
    }[kind]
    for mod in _MODIFIERS:
        if mod in raw and mod not in allowed_mods:
            hint = {
                ("log", "uniform"): "use loguniform for a log-scaled float",
                ("step", "loguniform"): "a log scale has no step; list values with {choice: [...]}",
            }.get((mod, kind))
            raise ParameterError(
                f"{field}.{mod} must not be used with {kind}, got {raw[mod]!r}",
                f"{field}.{mod}",
                hint,
            )
    if DEFAULT in raw and (kind == "value" or not _is_scalar(raw[DEFAULT])):
        raise ParameterError(
            f"{field}.default must be a number, text or true/false on a search dimension, "
            f"got {raw[DEFAULT]!r}",
            f"{field}.default",
            "a default is the value earlier trials ran with, where they lack the parameter",
        )
    if kind == "value":
        if _CONDITION in raw:
            raise ParameterError(
                f"{field}.when must not be used with value, got {raw[_CONDITION]!r}",
                f"{field}.when",
                f"a constant is in every trial; for a conditional one write "
                f"{{choice: [{value!r}], when: ...}}",
            )
        return Constant(value)
    if kind == "choice":
        if not isinstance(value, (list, tuple)) or not value:
            raise ParameterError(
                f"{field}.choice must be a non-empty list, got {value!r}",
                f"{field}.choice",
                "write e.g. {choice: [32, 64, 128]}",
            )
        return Choice(tuple(value))
    if not isinstance(log, bool):
        raise ParameterError(f"{field}.log must be true or false, got {log!r}", f"{field}.log")
    if kind == "int":
        low, high = _bounds(name, kind, value, integer=True)
        if step is None:
            step = 1
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise ParameterError(
                f"{field}.step must be a positive integer, got {step!r}", f"{field}.step"
            )
        if log and low < 1:
            raise ParameterError(
                f"{field}.int must have low >= 1 when log is true, got {value!r}", f"{field}.int"
            )
        if log and step != 1:
            raise ParameterError(
                f"{field}.step must be 1 when log is true, got {step!r}",
                f"{field}.step",
                "Optuna and Ray Tune cannot combine a step with a log scale",
            )
        return IntRange(int(low), int(high), step, log)
    low, high = _bounds(name, kind, value, integer=False)
    if kind == "loguniform" and low <= 0:
        raise ParameterError(
            f"{field}.loguniform must have low > 0, got {value!r}",
            f"{field}.loguniform",
            "a log scale needs positive bounds; use uniform to include 0",
        )
    if step is not None and (not _is_number(step) or step <= 0 or step > high - low):
        raise ParameterError(
            f"{field}.step must be a number in (0, {high - low:g}], got {step!r}", f"{field}.step"
        )
    if kind == "loguniform":
        return LogUniform(float(low), float(high))
    return Uniform(float(low), float(high), None if step is None else float(step))


def grid_count(param: Parameter) -> int | None:
    """How many values :func:`grid_values` gives for ``param``, counted without listing them
    (``None`` if it is continuous)."""
    if isinstance(param, Constant):
        return 1
    if isinstance(param, Choice):
        return len(param.values)
    if isinstance(param, IntRange):
        return (param.high - param.low) // param.step + 1
    if isinstance(param, LogUniform) or param.step is None:
        return None
    return math.floor((param.high - param.low) / param.step + 1e-9) + 1


def grid_value(param: Parameter, index: int) -> Any:
    """The ``index``-th of :func:`grid_values` for a dimension with grid values."""
    if isinstance(param, Constant):
        return param.value
    if isinstance(param, Choice):
        return param.values[index]
    if isinstance(param, IntRange):
        return param.low + index * param.step
    if isinstance(param, LogUniform) or param.step is None:
        raise TypeError(f"{param.describe()} has no grid values")
    # Round away float noise such as 0.30000000000000004 (to 12 significant digits, whatever
    # the scale) so values print and log cleanly.
    return float(f"{param.low + index * param.step:.12g}")


def grid_values(param: Parameter) -> list[Any] | None:
    """The values a grid search visits for ``param``, or ``None`` if it is continuous.

    Constants are not dimensions of the grid and return a one-element list. Lists them all:
    count them with :func:`grid_count` first.
    """
    count = grid_count(param)
    if count is None:
        return None
    return [grid_value(param, i) for i in range(count)]
