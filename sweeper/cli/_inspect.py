"""``sweeper list``, ``status``, ``show``, ``export`` and ``logs``: sweeps on disk, from any
terminal, also while another process runs them.

Only click is imported up front: ``sweeper --help`` must not wait for pandas.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sweeper._format import duration, format_params, is_missing, short
from sweeper._journal import FINAL_STATES, PHASES, SweepState
from sweeper._layout import JOURNAL_FILE, trial_dir
from sweeper.cli._options import CONFIG as _CONFIG
from sweeper.cli._options import SWEEP, locate
from sweeper.errors import SweeperError

if TYPE_CHECKING:
    from sweeper.history import Sweep

__all__ = ["COMMANDS", "export", "list_", "logs", "show", "status"]

_ORDER = (*PHASES, *FINAL_STATES)  # states are listed in the order of a trial's life
_POLL = 0.5  # seconds between reads of a followed log


def _load(sweep: str | None, config: Path | None) -> Sweep:
    from sweeper.history import Sweep

    return Sweep(locate(sweep, config))


def _table(rows: list[list[str]]) -> list[str]:
    """Rows as lines of left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _params(row: dict[str, Any], names: list[str] | None) -> str:
    """A row's parameters: the search's dimensions (``names``), or all of them if unknown."""
    values = {
        column.removeprefix("params."): value
        for column, value in row.items()
        if column.startswith("params.") and not is_missing(value)
    }
    return format_params(values, names)


@click.command("list")
@_CONFIG
def list_(config: Path | None) -> None:
    """List the sweeps under [results] dir, newest first."""
    from sweeper.history import list_sweeps
    from sweeper.settings import load_settings

    settings = load_settings(config)
    skipped: list[tuple[Path, str]] = []
    sweeps = list_sweeps(settings, skipped=skipped)
    for folder, why in skipped:  # one damaged sweep must not hide the others
        click.echo(f"skipped {folder}: {why}", err=True)
    if not sweeps:
        click.echo(f"no sweeps under {settings.results.dir}")
        return
    rows = [["sweep", "status", "trials", "best", "started"]]
    for sweep in sweeps:
        several = len(sweep.objectives) > 1
        best = sweep.top_rows(None if several else 1)
        if several:  # no single best: the size of the Pareto front
            shown = f"Pareto front of {len(best)}" if best else "-"
        else:
            shown = f"{sweep.metric}={short(best[0][sweep.metric])}" if best else "-"
        rows.append(
            [
                sweep.sweep,
                sweep.status,
                f"{sweep.trials_done}/{sweep.trials_total}",
                shown,
                datetime.fromtimestamp(sweep.state.created).strftime("%Y-%m-%d %H:%M"),
            ]
        )
    for line in _table(rows):
        click.echo(line)


@click.command()
@SWEEP
@_CONFIG
def status(sweep: str | None, config: Path | None) -> None:
    """Show SWEEP (its folder or id) and each of its trials; also while it runs."""
    found = _load(sweep, config)
    state = found.state
    shown = found.status
    if shown == "running":
        shown += f" (driver pid {state.pid} on {state.host})"
    elif shown == "interrupted":
        shown += (
            f": its driver (pid {state.pid} on {state.host}) is gone; "
            f"resume it with: sweeper resume {found.sweep}"
        )
    elif found.reason:
        shown += f": {found.reason}"
    counts = found.counts()
    states = ", ".join(f"{counts[s]} {s}" for s in sorted(counts, key=_rank))
    total = found.trials_total
    if total > sum(counts.values()):
        states += (", " if states else "") + f"{total - sum(counts.values())} not started"
    click.echo(f"sweep:    {found.sweep}")
    click.echo(f"status:   {shown}")
    click.echo(f"sessions: {state.sessions}")
    click.echo(f"trials:   {found.trials_done}/{total} done ({states or 'none yet'})")
    click.echo(f"GPU time: {found.gpu_hours:.4g} GPU-hours")
    click.echo(f"elapsed:  {duration(found.elapsed)}")
    if not found.rows:
        return
    metric = found.metric
    names = found.dimensions or None
    others = [o.name for o in found.objectives[1:]]
    marks = (["pareto"] if others else []) + (["feasible"] if found.constraints else [])
    head = ["trial", "state", "step", metric, "peak", *others, *marks]
    # The Ray actor that runs (or last ran) each trial, as Ray's dashboard lists actors: a
    # reused actor runs one trial after another, and its repr there is fixed when it starts.
    rows = [[*head, "attempts", "duration", "gpu_s", "actor", "pid", "params"]]
    for row in found.rows:
        rows.append(
            [
                str(row["trial"]),
                str(row["state"]),
                str(row["steps"]),
                short(row.get(metric)),
                short(row.get(f"peak_{metric}")),
                *[short(row.get(name)) for name in others],
                *[_mark(row.get(mark)) for mark in marks],
                str(row["attempts"]),
                duration(float(row["duration_s"])),
                f"{float(row['gpu_seconds']):.1f}",
                _cell(row.get("actor_id"), 12),
                _cell(row.get("pid")),
                _params(row, names),
            ]
        )
    click.echo("")
    for line in _table(rows):
        click.echo(line)


def _cell(value: Any, width: int | None = None) -> str:
    """A plain cell: ``-`` when missing, cut to ``width`` characters (an actor id's start,
    which Ray's dashboard finds it by)."""
    if value is None or is_missing(value):
        return "-"
    text = str(int(value)) if isinstance(value, float) else str(value)
    return text[:width] if width else text


def _mark(value: Any) -> str:
    """A ``pareto`` or ``feasible`` cell: yes, no, or - while it is not known."""
    if value is None or is_missing(value):
        return "-"
    return "yes" if str(value) == "True" else "no"


def _rank(state: str) -> int:
    return _ORDER.index(state) if state in _ORDER else len(_ORDER)


@click.command()
@SWEEP
@_CONFIG
@click.option(
    "--top",
    "-n",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many of the best trials (with several objectives: of the Pareto front).",
)
def show(sweep: str | None, config: Path | None, top: int) -> None:
    """Show SWEEP's best trials (with several objectives, its Pareto front): parameters,
    metrics, GPU time and where their results are."""
    found = _load(sweep, config)
    state = found.state
    objectives = found.objectives
    several = len(objectives) > 1
    front = found.top_rows(None) if several else []
    best = front[:top] if several else found.top_rows(top)
    aims = ", ".join(f"{o.mode} {o.name}" for o in objectives)
    click.echo(
        f"sweep {found.sweep}: {found.status}, {found.trials_done}/{found.trials_total} trials, "
        f"{aims}"
    )
    click.echo(f"folder:  {found.sweep_dir}")
    store = found.results_uri
    if store:
        click.echo(f"store:   {store}")
    from sweeper.tracking import LOCAL_UI, ui_base, ui_link

    base = ui_base(state.tracking_uri or "")
    if state.parent_run_id:
        click.echo(
            f"mlflow:  run {state.parent_run_id} (experiment {state.experiment}) "
            f"in {state.tracking_uri}"
        )
    if state.experiment_id:
        how = "" if base != LOCAL_UI else " (start it with: sweeper ui)"
        click.echo(f"runs:    {ui_link(base, state.experiment_id)}{how}")
    for seed in state.seeded_from:
        left = f", {seed.get('left_out')} did not fit" if seed.get("left_out") else ""
        click.echo(f"seeded:  {seed.get('trials')} trials of sweep {seed.get('sweep')}{left}")
    for i, extension in enumerate(state.extensions, start=1):
        changes = "; ".join(str(c) for c in extension.get("changes") or [])
        click.echo(
            f"extended: {i}. session {extension.get('session')}, "
            f"{extension.get('trials')} trials: {changes}"
        )
    click.echo("")
    if not best:
        what = ", ".join(o.name for o in objectives)
        feasibly = " that meets the constraints" if found.constraints else ""
        click.echo(f"no trial completed{feasibly} with a value for {what}")
        return
    names = found.dimensions or None
    if several:
        shown = "" if len(best) == len(front) else f" (the first {len(best)}; --top for more)"
        click.echo(
            f"Pareto front: {len(front)} of {len(found.rows)} trials, by {objectives[0].name}"
            f"{shown}:"
        )
    else:
        click.echo(f"best {len(best)} of {len(found.rows)} trials:")
    for rank, row in enumerate(best, start=1):
        name = str(row["trial"])
        values = "  ".join(f"{o.name}={short(row[o.name])}" for o in objectives)
        click.echo(
            f"{rank}. {name}  {values}  ({_params(row, names)})  "
            f"GPU {float(row['gpu_seconds']):.1f}s, {duration(float(row['duration_s']))}"
        )
        click.echo(f"   folder: {trial_dir(found.sweep_dir, name)}")
        if store:
            click.echo(f"   store:  {store}/{name}")
        run_id = row.get("mlflow_run_id")
        if not is_missing(run_id):
            click.echo(f"   mlflow: run {run_id} in {state.tracking_uri}")
            if state.experiment_id:
                click.echo(f"           {ui_link(base, state.experiment_id, str(run_id))}")


@click.command()
@SWEEP
@_CONFIG
@click.option(
    "--format",
    "-f",
    "format_",
    type=click.Choice(["csv", "parquet", "json"]),
    help="File format (default: the output's suffix, else csv).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write here (default: ./<sweep>.<format>).",
)
def export(
    sweep: str | None, config: Path | None, format_: str | None, output: Path | None
) -> None:
    """Write SWEEP's results table (one row per trial) as CSV, Parquet or JSON records."""
    from sweeper.history import EXPORT_FORMATS
    from sweeper.history import export as export_sweep

    found = _load(sweep, config)
    if format_ is None:
        suffix = output.suffix.lstrip(".").lower() if output is not None else ""
        format_ = suffix if suffix in EXPORT_FORMATS else "csv"
    path = export_sweep(found, output or Path(f"{found.sweep}.{format_}"), format_)
    click.echo(str(path))


@click.command()
@click.argument("sweep")
@click.argument("trial")
@_CONFIG
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new lines until the trial ends or the sweep stops.",
)
@click.option(
    "--lines", "-n", type=click.IntRange(min=0), help="Print only the last N lines (default: all)."
)
def logs(sweep: str, trial: str, config: Path | None, follow: bool, lines: int | None) -> None:
    """Print TRIAL's log (trials/<TRIAL>/trial.log) of SWEEP; TRIAL may be its number."""
    found = _load(sweep, config)
    name = found.trial_name(trial)
    path = found.log_path(name)
    position = 0
    if path.is_file():
        text, position = _tail(path, lines)
        click.echo(text, nl=bool(text) and not text.endswith("\n") and not follow)
    elif not follow:
        click.echo(f"{name} has no log yet", err=True)
        return
    if not follow:
        return
    journal = _TrialWatch(found.sweep_dir, name)
    pending = b""
    while True:
        over = journal.over()
        if path.is_file():
            with open(path, "rb") as handle:
                if handle.seek(0, 2) < position:
                    position = 0  # the log was replaced: read it from the start
                handle.seek(position)
                chunk = handle.read()
                position = handle.tell()
            complete, newline, pending = (pending + chunk).rpartition(b"\n")
            if newline:
                click.echo((complete + b"\n").decode("utf-8", "replace"), nl=False)
        if over:
            if pending:
                click.echo(pending.decode("utf-8", "replace"))
            return
        time.sleep(_POLL)


def _tail(path: Path, lines: int | None) -> tuple[str, int]:
    """The file's last ``lines`` lines (all of it for ``None``) and the offset of its end."""
    with open(path, "rb") as handle:
        end = handle.seek(0, 2)
        if lines is None:
            handle.seek(0)
            data = handle.read(end)
        else:
            # Read back from the end in blocks until enough line breaks are in.
            start, data = end, b""
            while start > 0 and data.count(b"\n") <= lines:
                start = max(0, start - 65536)
                handle.seek(start)
                data = handle.read(end - start)
            kept = data.splitlines(keepends=True)
            data = b"".join(kept[max(0, len(kept) - lines) :])
    return data.decode("utf-8", "replace"), end


class _TrialWatch:
    """Reads the journal as it grows: has the trial reached a final state, or the sweep's
    driver gone?"""

    def __init__(self, sweep_dir: Path, trial: str) -> None:
        self.sweep_dir = sweep_dir
        self.trial = trial
        self.offset = 0
        self.state: str | None = None

    def over(self) -> bool:
        path = self.sweep_dir / JOURNAL_FILE
        if path.is_file():
            with open(path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line being written waits
            self.offset += len(complete)
            for line in complete.splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("name") == self.trial:
                    self.state = entry.get("state")
        if self.state in FINAL_STATES:
            return True
        try:
            state = SweepState.load(self.sweep_dir)
        except SweeperError:
            return False
        return state is None or not state.driver_alive


COMMANDS = (list_, status, show, export, logs)
