"""``search``: how a sweep chooses its trials and judges them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sweeper._validation import Block, invalid
from sweeper.spec._objectives import Constraint, Objective, check_metric_name, parse_constraint

__all__ = ["MAX_TRIALS", "SAMPLERS", "Search"]

SAMPLERS = ("tpe", "cmaes", "random", "gp", "qmc", "nsgaii", "nsgaiii")
# The most trials a sweep may have: each is a Tune trial, a journal entry and an MLflow run.
MAX_TRIALS = 100_000


class Search(Block):
    """How trials are chosen and judged."""

    method: Literal["grid", "random", "optuna"]
    sampler: Literal["tpe", "cmaes", "random", "gp", "qmc", "nsgaii", "nsgaiii"] | None = None
    # Several objectives; validated before metric and mode, which _first_objective fills from
    # the first of them (every single-metric reader keeps working).
    metrics: list[Objective] | None = Field(None, min_length=1)
    metric: str = Field(min_length=1)
    mode: Literal["min", "max"]
    constraints: list[str] = Field(default_factory=list)
    trials: int | None = Field(None, ge=1, le=MAX_TRIALS)
    concurrency: int | None = Field(None, ge=1)
    # Optuna's samplers (numpy's RandomState) take seeds in [0, 2**32 - 1].
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    # Earlier sweeps (as users name them) whose completed trials seed this one.
    warm_start: list[str] = Field(default_factory=list)
    # Grid and random search: leave out points a seeding sweep (or this one) already ran.
    skip_evaluated: bool = False
    # Configurations to run first (Ray Tune's points_to_evaluate, Optuna's enqueue_trial).
    initial_points: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _first_objective(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
            return data
        first = data["metrics"][0] if data["metrics"] else None
        if not isinstance(first, dict):
            return data  # the field's own error
        # A sweep's saved spec.yml holds both forms, consistent; a user's spec holds one.
        for key, field_name in (("metric", "name"), ("mode", "mode")):
            if key in data and data[key] != first.get(field_name):
                raise invalid(
                    f"search.{key} must not be set with search.metrics, got {data[key]!r}",
                    f"search.{key}",
                    "list every objective under metrics, or use metric and mode alone",
                )
        return {**data, "metric": first.get("name"), "mode": first.get("mode")}

    @field_validator("constraints", "warm_start", mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]  # one constraint, or one sweep, written without a list
        return value

    @field_validator("warm_start")
    @classmethod
    def _sweep_names(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            if not name.strip():
                raise invalid(
                    f"search.warm_start entries must name a sweep, got {name!r}",
                    f"search.warm_start.{i}",
                    "give a sweep's id, folder, id prefix or spec name",
                )
        return value

    @field_validator("constraints")
    @classmethod
    def _constraint_syntax(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            parse_constraint(i, text)
        return value

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        return check_metric_name(
            "search.metric",
            "a metric name",
            value,
            "it is the key training code reports: ctx.report(loss=...)",
        )

    @property
    def objectives(self) -> list[Objective]:
        """What the search optimizes: ``metrics``, or the one ``metric`` and ``mode``."""
        if self.metrics:
            return list(self.metrics)
        return [Objective(name=self.metric, mode=self.mode)]

    @property
    def multi_objective(self) -> bool:
        """Whether the search has several objectives (a Pareto front, not one best)."""
        return len(self.objectives) > 1

    @property
    def watched_metrics(self) -> tuple[str, ...]:
        """The metrics the sweep reads from every result: the objectives, then those the
        constraints name."""
        names = [o.name for o in self.objectives]
        names += [c.metric for c in self.parsed_constraints]
        return tuple(dict.fromkeys(names))

    @property
    def parsed_constraints(self) -> list[Constraint]:
        """``constraints``, parsed."""
        return [parse_constraint(i, text) for i, text in enumerate(self.constraints)]

    @model_validator(mode="after")
    def _objectives_and_constraints(self) -> Search:
        names = [o.name for o in self.objectives]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise invalid(
                    f"search.metrics names must be distinct, got {name!r} twice",
                    f"search.metrics.{i}.name",
                    "each objective is one reported metric",
                )
        sampler = self.sampler or "tpe"
        if self.multi_objective and self.method == "optuna" and sampler == "cmaes":
            raise invalid(
                f"search.sampler must support several objectives, got cmaes for "
                f"{len(names)} metrics",
                "search.sampler",
                "use nsgaii, nsgaiii, tpe, gp, qmc or random, or a single metric",
            )
        return self

    @model_validator(mode="after")
    def _sampler_only_for_optuna(self) -> Search:
        if self.sampler is not None and self.method != "optuna":
            raise invalid(
                f"search.sampler must not be set for method {self.method}, got {self.sampler!r}",
                "search.sampler",
                "samplers belong to method: optuna",
            )
        if self.trials is None and self.method != "grid":
            raise invalid(
                f"search.trials must be set for method {self.method}, got nothing",
                "search.trials",
                "add e.g. trials: 20",
            )
        if self.skip_evaluated and self.method == "optuna":
            raise invalid(
                "search.skip_evaluated must not be set for method optuna, got true",
                "search.skip_evaluated",
                "Optuna's sampler sees the seeding sweeps' trials and moves on from them",
            )
        if self.method != "grid" and len(self.initial_points) > (self.trials or 0):
            raise invalid(
                f"search.initial_points must be at most search.trials ({self.trials}) "
                f"points, got {len(self.initial_points)}",
                "search.initial_points",
                "initial points are the first of the trials: raise trials or list fewer",
            )
        return self
