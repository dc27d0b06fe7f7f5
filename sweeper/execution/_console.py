"""What ``sweeper run`` prints: one line per finished trial, then the best trials."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sweeper._format import first_line, format_value
from sweeper._format import format_params as _params
from sweeper.results import feasible

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
        if kind == "exploit" and record.lineage:
            last = record.lineage[-1]
            self.echo(
                f"    {record.name} copied {last['from']} at step {last['step']}: "
                f"{_params(last['params'], list(last['params']))}"
            )
            return
        if kind != "end":
            return
        self.done += 1
        search = self.spec.search
        metric = search.metric
        value = record.metrics.get(metric)
        ok = feasible(self.spec, record.metrics) is not False
        if search.multi_objective:
            # No single best: each objective's value, and the front once the sweep ends.
            shown = " ".join(
                f"{o.name}={format_value(record.metrics.get(o.name))}"
                if record.metrics.get(o.name) is not None
                else f"{o.name}=-"
                for o in search.objectives
            )
            best = "" if ok else "infeasible"
        else:
            if (
                record.state == "completed"
                and value is not None
                and ok
                and (self.best is None or search.objectives[0].better(value, self.best))
            ):
                self.best = value
            shown = f"{metric}={format_value(value)}" if value is not None else f"{metric}=-"
            best = f"best={format_value(self.best)}" if self.best is not None else "best=-"
            if not ok:
                best += " infeasible"
        line = (
            f"[{self.done}/{self.total}] {record.name} {record.state:<9} {shown}"
            + (f" {best} " if best else " ")
            + f"({_params(record.params, self._names)}) {record.duration:.1f}s"
        )
        if record.error:
            line += f"\n    {first_line(record.error)}"
        self.echo(line)


def best_table(spec: Spec, best: pd.DataFrame) -> str:
    """The best trials (with several objectives, the Pareto front) as an aligned text table:
    trial, the objectives, params, duration."""
    names = [o.name for o in spec.search.objectives]
    if best.empty:
        what = "every objective (" + ", ".join(names) + ")" if len(names) > 1 else names[0]
        feasibly = " that meets the constraints" if spec.search.constraints else ""
        return f"no trial completed{feasibly} with a value for {what}"
    columns = ["trial", *names, *[f"params.{n}" for n in spec.dimensions], "duration_s"]
    table = best[[c for c in columns if c in best]].copy()
    table.columns = [c.removeprefix("params.") for c in table.columns]
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
