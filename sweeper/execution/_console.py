"""What ``sweeper run`` prints: one line per finished trial, then the best trials."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sweeper._format import first_line, format_value
from sweeper._format import format_params as _params

if TYPE_CHECKING:
    import pandas as pd

    from sweeper._journal import TrialRecord
    from sweeper.spec import Spec

__all__ = ["TrialPrinter", "best_table"]


class TrialPrinter:
    """Prints a line as each trial ends, with the best metric so far."""

    def __init__(self, spec: Spec, echo: Callable[[str], None], done: int = 0) -> None:
        self.spec = spec
        self.echo = echo
        self.total = spec.trial_count()
        self.done = done
        self.best: float | None = None
        self.started = time.time()
        self._names = list(spec.dimensions)

    def __call__(self, kind: str, record: TrialRecord) -> None:
        if kind == "retry":
            error = (record.error or "").splitlines()[:1]
            self.echo(
                f"    {record.name} failed (attempt {record.attempts}), retrying"
                + (f": {error[0]}" if error else "")
            )
            return
        if kind != "end":
            return
        self.done += 1
        metric = self.spec.search.metric
        value = record.metrics.get(metric)
        if (
            record.state == "completed"
            and value is not None
            and (
                self.best is None
                or (value > self.best if self.spec.search.mode == "max" else value < self.best)
            )
        ):
            self.best = value
        shown = f"{metric}={format_value(value)}" if value is not None else f"{metric}=-"
        best = f"best={format_value(self.best)}" if self.best is not None else "best=-"
        line = (
            f"[{self.done}/{self.total}] {record.name} {record.state:<9} {shown} {best} "
            f"({_params(record.params, self._names)}) {record.duration:.1f}s"
        )
        if record.error:
            line += f"\n    {first_line(record.error)}"
        self.echo(line)


def best_table(spec: Spec, best: pd.DataFrame) -> str:
    """The best trials as an aligned text table: trial, metric, params, duration."""
    metric = spec.search.metric
    if best.empty:
        return "no trial completed with a value for " + metric
    columns = ["trial", metric, *[f"params.{n}" for n in spec.dimensions], "duration_s"]
    table = best[[c for c in columns if c in best]].copy()
    table.columns = [c.removeprefix("params.") for c in table.columns]
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}")
