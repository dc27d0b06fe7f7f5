"""Spec blocks that govern a sweep's course: ``early_stopping`` and ``limits``."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sweeper._validation import Block, invalid

__all__ = ["EarlyStopping", "Limits", "Schedule", "parse_duration"]

DEFAULT_REDUCTION_FACTOR = 3.0
DEFAULT_MIN_TRIALS = 3
# Which optional keys of ``early_stopping`` each method reads (``grace_period`` all of them).
_METHOD_KEYS = {
    "asha": ("max_steps", "reduction_factor", "brackets"),
    "hyperband": ("max_steps", "reduction_factor"),
    "median": ("min_trials",),
}
_KEY_HINTS = {
    "max_steps": "median compares trials at the same step; it needs no training length",
    "reduction_factor": "reduction_factor belongs to methods asha and hyperband",
    "brackets": "brackets belong to method asha",
    "min_trials": "min_trials belongs to method median",
}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(
    rf"^(?:{_NUMBER}\s*d)?\s*(?:{_NUMBER}\s*h)?\s*(?:{_NUMBER}\s*m)?\s*(?:{_NUMBER}\s*s)?$",
    re.IGNORECASE,
)
_UNIT_SECONDS = (86400, 3600, 60, 1)


def _number(value: float) -> str:
    return f"{value:g}"


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a string such as ``90s``, ``2h`` or ``1h30m``.

    Units are ``d``, ``h``, ``m`` and ``s``, each at most once and in that order, with optional
    whitespace; a string that is only a number is seconds.

    Raises:
        ValueError: If ``value`` is not a duration of more than zero seconds.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            match = _DURATION.match(text)
            if not match or not any(match.groups()):
                raise ValueError(value) from None
            seconds = sum(
                float(amount) * unit
                for amount, unit in zip(match.groups(), _UNIT_SECONDS, strict=True)
                if amount
            )
    else:
        raise ValueError(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(value)
    return seconds


# The most rungs (and brackets) a scheduler may have.
MAX_RUNGS = 64


class EarlyStopping(Block):
    """``early_stopping``: stop trials whose metric lags behind, step by step (Ray schedulers).

    Keys left out read ``None`` (``grace_period``: 1); the ``effective_*`` properties give the
    values that apply. A key that the method does not read is an error, not ignored.
    """

    method: Literal["asha", "hyperband", "median"]
    # Which of the search's objectives the rule judges (required with several; the spec checks).
    metric: str | None = Field(None, min_length=1)
    max_steps: int | None = Field(None, ge=1)
    grace_period: int = Field(1, ge=1)
    reduction_factor: float | None = Field(None, gt=1)
    brackets: int | None = Field(None, ge=1, le=MAX_RUNGS)
    min_trials: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _keys_of_the_method(self) -> EarlyStopping:
        method = self.method
        keys = _METHOD_KEYS[method]
        if "max_steps" in keys and self.max_steps is None:
            raise invalid(
                f"early_stopping.max_steps must be set for method {method}, got nothing",
                "early_stopping.max_steps",
                "set it to the number of steps (epochs) a trial reports",
            )
        for key in ("max_steps", "reduction_factor", "brackets", "min_trials"):
            value = getattr(self, key)
            if value is None or key in keys:
                continue
            hint = _KEY_HINTS[key]
            if key == "brackets" and method == "hyperband":
                hint = "sweeper computes hyperband's brackets from max_steps, grace_period and "
                hint += "reduction_factor; use method asha to choose them"
            raise invalid(
                f"early_stopping.{key} must not be set for method {method}, got {_number(value)}",
                f"early_stopping.{key}",
                hint,
            )
        if self.max_steps is not None and self.method != "median":
            # Each rung keeps 1/reduction_factor of the trials: a factor barely above 1 makes
            # more rungs (and hyperband brackets) than any sweep has trials.
            factor = self.effective_reduction_factor
            rungs = math.log(max(self.max_steps / self.grace_period, 1.0)) / math.log(factor)
            if rungs > MAX_RUNGS:
                raise invalid(
                    f"early_stopping.reduction_factor must give at most {MAX_RUNGS} rungs "
                    f"between grace_period and max_steps, got {factor!r} "
                    f"({math.floor(rungs)} rungs)",
                    "early_stopping.reduction_factor",
                    "2 to 4 is usual: each rung keeps 1/reduction_factor of the trials",
                )
        if self.max_steps is not None and self.grace_period >= self.max_steps:
            if "grace_period" not in self.model_fields_set:
                raise invalid(
                    f"early_stopping.max_steps must be greater than grace_period "
                    f"{self.grace_period}, got {self.max_steps}",
                    "early_stopping.max_steps",
                    "trials run grace_period steps (default 1) before they may be stopped",
                )
            raise invalid(
                f"early_stopping.grace_period must be less than max_steps {self.max_steps}, "
                f"got {self.grace_period}",
                "early_stopping.grace_period",
                "trials run grace_period steps before they may be stopped; leave room below "
                "max_steps",
            )
        return self

    @property
    def effective_reduction_factor(self) -> float:
        """The factor by which each rung keeps fewer trials (3 unless set)."""
        if self.reduction_factor is None:
            return DEFAULT_REDUCTION_FACTOR
        return float(self.reduction_factor)

    @property
    def effective_brackets(self) -> int:
        """ASHA: the brackets asked for (default 1). Hyperband: computed from the other keys.

        Hyperband has ``floor(log_rf(max_steps / grace_period)) + 1`` brackets, counted here by
        multiplication so that exact powers (27 = 3**3) are not lost to floating-point error.
        Median stopping has no brackets: 1.
        """
        if self.method == "asha":
            return self.brackets or 1
        if self.method != "hyperband" or self.max_steps is None:
            return 1
        factor = self.effective_reduction_factor
        limit = self.max_steps * (1 + 1e-9)
        brackets, resource = 1, float(self.grace_period)
        while resource * factor <= limit:
            resource *= factor
            brackets += 1
        return brackets

    @property
    def effective_min_trials(self) -> int:
        """Median stopping: trials that must have reached a step before it judges one (3)."""
        return DEFAULT_MIN_TRIALS if self.min_trials is None else self.min_trials

    def describe(self) -> str:
        """One line for the CLI: ``asha (max_steps 27, grace_period 1, reduction_factor 3)``."""
        parts = []
        if self.max_steps is not None:
            parts.append(f"max_steps {self.max_steps}")
        parts.append(f"grace_period {self.grace_period}")
        if self.method == "median":
            parts.append(f"min_trials {self.effective_min_trials}")
        else:
            parts.append(f"reduction_factor {_number(self.effective_reduction_factor)}")
            if self.method == "hyperband" or self.effective_brackets > 1:
                parts.append(f"brackets {self.effective_brackets}")
        return f"{self.method} ({', '.join(parts)})"


class Schedule(Block):
    """``schedule``: population-based training (Ray Tune's ``PopulationBasedTraining`` or
    ``PB2``). Every ``perturbation_interval`` steps, a trial in the bottom
    ``quantile_fraction`` copies the checkpoint and parameters of one in the top, then
    changes the ``mutations`` parameters (``pbt``: resampled or scaled by 0.8 / 1.2; ``pb2``:
    chosen by a Gaussian-process bandit within their bounds).

    ``mutations`` holds dimensions written as under ``parameters``; the spec checks them
    against its space (:meth:`Spec._schedule_rules`).
    """

    method: Literal["pbt", "pb2"]
    perturbation_interval: int = Field(ge=1)
    mutations: dict[str, Any] = Field(min_length=1)
    metric: str | None = Field(None, min_length=1)
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)
    resample_probability: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _pbt_only_keys(self) -> Schedule:
        if self.method == "pb2" and self.resample_probability is not None:
            raise invalid(
                f"schedule.resample_probability must not be set for method pb2, got "
                f"{_number(self.resample_probability)}",
                "schedule.resample_probability",
                "pb2 picks new values with its Gaussian-process bandit; resampling is pbt's",
            )
        return self

    @property
    def effective_resample_probability(self) -> float:
        """PBT's chance to resample a mutation rather than scale it (0.25 unless set)."""
        return 0.25 if self.resample_probability is None else self.resample_probability

    def describe(self) -> str:
        """One line for the CLI: ``pbt (every 4 steps, mutating lr, momentum; ...)``."""
        parts = [
            f"every {self.perturbation_interval} steps",
            f"mutating {', '.join(self.mutations)}",
            f"bottom/top {_number(self.quantile_fraction * 100)}%",
        ]
        if self.method == "pbt":
            parts.append(f"resample_probability {_number(self.effective_resample_probability)}")
        return f"{self.method} ({', '.join(parts)})"


class Limits(Block):
    """``limits``: retries, and when a sweep stops for failures, time or GPU use."""

    max_failures: int = Field(0, ge=0)
    max_failed_trials: int | None = Field(None, ge=0)
    max_duration: Any = None
    max_gpu_hours: float | None = Field(None, gt=0)

    @field_validator("max_duration")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is not None:
            try:
                parse_duration(value)
            except ValueError:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    raise invalid(
                        f"limits.max_duration must be > 0 seconds, got {value!r}",
                        "limits.max_duration",
                    ) from None
                raise invalid(
                    "limits.max_duration must be seconds or a duration such as 90s, 30m, 2h, "
                    f"got {value!r}",
                    "limits.max_duration",
                    "combine d, h, m and s, e.g. 1h30m",
                ) from None
        return value

    @property
    def max_duration_s(self) -> float | None:
        """``max_duration`` in seconds, or ``None`` when unset."""
        return None if self.max_duration is None else parse_duration(self.max_duration)

    def describe(self) -> str:
        """One line for the CLI, e.g. ``max_failures 1, max_duration 2h``; ``none`` if no limit."""
        parts = [f"max_failures {self.max_failures}"] if self.max_failures else []
        if self.max_failed_trials is not None:
            parts.append(f"max_failed_trials {self.max_failed_trials}")
        if self.max_duration is not None:
            parts.append(f"max_duration {self.max_duration}")
        if self.max_gpu_hours is not None:
            parts.append(f"max_gpu_hours {_number(self.max_gpu_hours)}")
        return ", ".join(parts) or "none"
