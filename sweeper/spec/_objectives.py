"""What a sweep optimizes: its objectives (``search.metric``/``mode`` or ``search.metrics``)
and its constraints (``search.constraints``), and what they make of a trial's metrics.

The one home of what "better", "feasible" and "on the Pareto front" mean: the results table,
the console, MLflow's parent run and Optuna's ``constraints_func`` all ask here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from sweeper._validation import Block, invalid

__all__ = [
    "Constraint",
    "Objective",
    "check_metric_name",
    "dominates",
    "metric_value",
    "pareto_front",
    "parse_constraint",
]

_CONSTRAINT = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_./-]*)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<bound>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


def check_metric_name(where: str, what: str, value: str, hint: str) -> str:
    """``value`` if it can be a reported metric's name (no surrounding blanks, one line)."""
    if value != value.strip() or "\n" in value:
        raise invalid(
            f"{where} must be {what} without surrounding blanks or line breaks, got {value!r}",
            hint=hint,
        )
    return value


class Objective(Block):
    """One of ``search.metrics``: a reported metric and whether to minimize or maximize it."""

    name: str = Field(min_length=1)
    mode: Literal["min", "max"]

    @field_validator("name")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        return check_metric_name(
            "search.metrics names",
            "metric names",
            value,
            "they are the keys training code reports: ctx.report(loss=...)",
        )

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.mode == "max" else a < b


@dataclass(frozen=True)
class Constraint:
    """``metric <op> bound`` on a trial's last reported value of ``metric``."""

    metric: str
    op: Literal["<=", "<", ">=", ">"]
    bound: float
    text: str

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the constraint (NaN never does)."""
        if math.isnan(value):
            return False
        return {
            "<=": value <= self.bound,
            "<": value < self.bound,
            ">=": value >= self.bound,
            ">": value > self.bound,
        }[self.op]

    def violation(self, value: float | None) -> float:
        """Optuna's constraint value: at most 0 when it holds, more the further it is broken.

        A strict bound met exactly counts as broken by the smallest float above 0; a missing
        or NaN value as broken by 1.
        """
        if value is None or math.isnan(value):
            return 1.0
        gap = value - self.bound if self.op in ("<=", "<") else self.bound - value
        if gap == 0 and self.op in ("<", ">"):
            return math.ulp(0.0)
        return gap


def parse_constraint(index: int, text: Any) -> Constraint:
    """``search.constraints[index]`` as a :class:`Constraint`.

    Raises:
        pydantic_core.PydanticCustomError: If it is not ``<metric> <op> <number>``.
    """
    match = _CONSTRAINT.match(text) if isinstance(text, str) else None
    if match is None:
        raise invalid(
            f"search.constraints[{index}] must be '<metric> <op> <number>' with op one of "
            f"<=, <, >=, >, got {text!r}",
            f"search.constraints.{index}",
            "write e.g. 'params_m <= 5' or 'latency_ms < 20'",
        )
    bound = float(match["bound"])
    if not math.isfinite(bound):
        raise invalid(
            f"search.constraints[{index}] must have a finite bound, got {text!r}",
            f"search.constraints.{index}",
        )
    op: Any = match["op"]
    return Constraint(match["metric"], op, bound, f"{match['metric']} {op} {match['bound']}")


def dominates(a: Sequence[float], b: Sequence[float], objectives: Sequence[Objective]) -> bool:
    """Whether ``a`` Pareto-dominates ``b``: no worse in every objective, better in one."""
    no_worse = all(not o.better(y, x) for o, x, y in zip(objectives, a, b, strict=True))
    return no_worse and any(o.better(x, y) for o, x, y in zip(objectives, a, b, strict=True))


def pareto_front(points: Sequence[Sequence[float]], objectives: Sequence[Objective]) -> list[int]:
    """The indexes of the non-dominated points, in their order (equal points all stay).

    Pairwise, O(n^2): a sweep has at most 100,000 trials and its front is read by people; for
    the sweeps people run (hundreds of trials) this takes milliseconds, and it needs no numpy.
    """
    # Sorted best-first by the objectives in turn, a point can only be dominated by one
    # before it, which halves the comparisons.
    keys = [
        tuple(-x if o.mode == "max" else x for o, x in zip(objectives, p, strict=True))
        for p in points
    ]
    ranked = sorted(range(len(points)), key=lambda i: keys[i])
    front: list[int] = []
    for i in ranked:
        if not any(dominates(points[j], points[i], objectives) for j in front):
            front.append(i)
    return sorted(front)


def metric_value(metrics: Mapping[str, Any], name: str) -> float | None:
    """A trial's value of ``name`` as a float, or ``None`` when missing or not a number."""
    value = metrics.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
