"""``sweeper plan``: a spec's search space, trial count and points, without Ray.

A seeded random search's points are known before the sweep runs: they are drawn up front
(:func:`sweeper.search._space.random_points`, which imports no Ray), so the plan prints exactly
the points the sweep will run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sweeper._format import duration, format_params
from sweeper.cli._options import CONFIG

if TYPE_CHECKING:
    from sweeper._journal import SweepState, TrialRecord
    from sweeper.search._seeds import Seed
    from sweeper.settings import Settings
    from sweeper.spec import Spec

__all__ = ["plan", "search_lines"]


def search_lines(spec: Spec) -> list[str]:
    """What a spec's search optimizes, under which constraints, over which conditional
    parameters: the lines ``sweeper plan`` and ``sweeper validate`` print."""
    from sweeper.search._optuna import CONSTRAINED_SAMPLERS
    from sweeper.spec import grid_count

    search = spec.search
    objectives = ", ".join(f"{o.mode} {o.name}" for o in search.objectives)
    if search.multi_objective:
        stopping = ""
        if spec.early_stopping is not None:
            stopping = f"; early stopping judges {spec.stopping_objective.name}"
        lines = [f"objectives: {objectives} (a Pareto front, not one best{stopping})"]
    else:
        lines = []  # the one objective is on plan's first line
    if search.constraints:
        texts = ", ".join(c.text for c in search.parsed_constraints)
        if search.method == "optuna" and (spec.sampler or "tpe") in CONSTRAINED_SAMPLERS:
            how = f"Optuna's {spec.sampler} sampler steers away from infeasible trials"
        elif search.method == "optuna":
            how = f"Optuna's {spec.sampler} sampler cannot use them: trials are only marked"
        else:
            how = "trials are marked feasible or not"
        lines.append(f"constraints: {texts} (infeasible trials are never best; {how})")
    conditional = spec.conditional_space
    if conditional.conditions:
        parts = [f"{name} {conditional.describe(name)}" for name in conditional.conditions]
        lines.append("conditional: " + "; ".join(parts) + " (absent from a trial otherwise)")
        if search.method == "grid":
            full = 1
            for param in spec.dimensions.values():
                full *= grid_count(param) or 0
            lines.append(
                f"grid: {spec.trial_count()} valid combinations of {full} without conditions"
            )
    return lines


@click.command()
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@CONFIG
@click.option(
    "--extend",
    "extends",
    metavar="SWEEP",
    help="Plan SPEC as an extension of SWEEP: what changes, which earlier trials carry over.",
)
@click.option(
    "--warm-start",
    "warm_start",
    multiple=True,
    metavar="SWEEP",
    help="Plan a warm start from SWEEP (repeatable): which of its trials fit SPEC's space.",
)
@click.option(
    "--from",
    "basis",
    metavar="SWEEP",
    help="Estimate the cost from SWEEP's trial durations (default: the extended sweep, else "
    "the newest sweep of SPEC's name, if any).",
)
def plan(
    spec: Path,
    config: Path | None,
    extends: str | None,
    warm_start: tuple[str, ...],
    basis: str | None,
) -> None:
    """Print SPEC's search space and trial count (and a grid's trials) without training, and
    what the trials will cost when earlier sweeps measured it."""
    from sweeper._layout import trial_name
    from sweeper.settings import load_settings
    from sweeper.spec import load_spec

    loaded = load_spec(spec)
    settings = load_settings(config)
    earlier = _Earlier.find(loaded, settings, extends, warm_start, basis)
    search = loaded.search
    method = f"optuna ({loaded.sampler})" if search.method == "optuna" else search.method
    objectives = ", ".join(f"{o.mode} {o.name}" for o in search.objectives)
    click.echo(f"sweep {loaded.name}: {method}, {objectives}")
    for line in search_lines(loaded):
        click.echo(line)
    click.echo(
        f"trials: {loaded.trial_count()}, concurrency: {search.concurrency or 'as resources allow'}"
    )
    for line in earlier.lines():
        click.echo(line)
    res = loaded.resources
    memory = f", memory {res.memory}" if res.memory else ""
    if res.learners > 1:
        click.echo(
            f"per trial: {res.learners} learners ({res.placement}), each {res.cpus:g} cpus, "
            f"{res.gpus:g} gpus{memory}; the trial holds {res.trial_cpus:g} cpus, "
            f"{res.trial_gpus:g} gpus"
        )
    else:
        click.echo(f"per trial: {res.cpus:g} cpus, {res.gpus:g} gpus{memory}")
    if loaded.early_stopping is not None:
        click.echo(f"early stopping: {loaded.early_stopping.describe()}")
    if loaded.schedule is not None:
        ranked = loaded.stopping_objective
        click.echo(f"schedule: {loaded.schedule.describe()}, ranked by {ranked.mode} {ranked.name}")
        for name, param in loaded.mutations.items():
            click.echo(f"  mutates {name}: {param.describe()}")
    if loaded.limits.describe() != "none":
        click.echo(f"limits: {loaded.limits.describe()}")
    click.echo("parameters:")
    width = max((len(n) for n in loaded.space), default=0)
    for name, param in loaded.space.items():
        condition = loaded.conditional_space.describe(name)
        click.echo(
            f"  {name:<{width}}  {param.describe()}" + (f"  {condition}" if condition else "")
        )
    # Grid and random points are drawn up front, without Ray: with a seed, a random search's
    # are known before the sweep runs.
    if search.method == "grid":
        click.echo("grid:")
    elif search.method == "random" and search.seed is not None:
        click.echo(f"points (seed {search.seed}):")
    else:
        return
    points = earlier.points()
    for i, point in enumerate(points):
        if i >= earlier.first:
            click.echo(f"  {trial_name(i)}  {format_params(point, digits=6)}")


class _Earlier:
    """The earlier sweeps a plan reads: the one it extends, those that warm-start it, and
    the one whose durations estimate the cost."""

    def __init__(self, spec: Spec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.extended: tuple[Path, SweepState, Spec, dict[str, TrialRecord]] | None = None
        self.changes: list[str] = []
        self.seeds: list[Seed] = []
        self.basis: tuple[str, dict[str, TrialRecord]] | None = None
        self.first = 0  # the first point a plan prints (an extension's first new one)

    @classmethod
    def find(
        cls,
        spec: Spec,
        settings: Settings,
        extends: str | None,
        warm_start: tuple[str, ...],
        basis: str | None,
    ) -> _Earlier:
        from sweeper._journal import SweepState, read_journal
        from sweeper._layout import SPEC_FILE, resolve_sweep
        from sweeper.search._seeds import warm_start_seeds
        from sweeper.spec import load_spec
        from sweeper.spec._iteration import check_extension

        found = cls(spec, settings)
        if extends is not None:
            folder = resolve_sweep(extends, settings).folder
            state = SweepState.load(folder)
            assert state is not None
            old = load_spec(folder / SPEC_FILE, base_dir=Path(state.base_dir or "."))
            found.changes = check_extension(old, spec, state.sweep)
            found.extended = (folder, state, old, read_journal(folder))
        if not found.extended:
            found.seeds = warm_start_seeds(spec, settings, warm_start)
        if basis is not None:
            folder = resolve_sweep(basis, settings).folder
            found.basis = (folder.name, read_journal(folder))
        elif found.extended is not None:
            found.basis = (found.extended[1].sweep, found.extended[3])
        else:
            found.basis = _newest_of(spec, settings)
        return found

    def planned(self) -> int:
        """How many trials the plan runs: all, or an extension's new ones (and unfinished)."""
        if self.extended is None:
            return (
                len(self.points())
                if self.spec.search.method != "optuna"
                else (self.spec.trial_count())
            )
        records = self.extended[3]
        done = sum(1 for r in records.values() if r.state in ("completed", "stopped", "failed"))
        return max(0, self.spec.trial_count() - done)

    def points(self) -> list[dict[str, Any]]:
        from sweeper.search import grown_points, sweep_points
        from sweeper.search._space import read_points

        if self.extended is None:
            evaluated = [trial.params for seed in self.seeds for trial in seed.carried]
            return sweep_points(self.spec, evaluated) or []
        folder, _, old, _ = self.extended
        had = read_points(folder)
        if had is None:
            return []
        had = had[: old.trial_count()]
        self.first = len(had)
        initial = [p for p in self.spec.search.initial_points if p not in old.search.initial_points]
        return grown_points(self.spec, had, initial)

    def lines(self) -> list[str]:
        from sweeper._cost import estimate, local_concurrency
        from sweeper.search import carry

        lines = []
        if self.extended is not None:
            _, state, _, records = self.extended
            lines.append(f"extends sweep {state.sweep} ({len(records)} trials so far):")
            lines += [f"  {change}" for change in self.changes] or ["  nothing but this plan"]
            carried, left_out = carry(self.spec, records.values(), state.sweep, own=True)
            ended = len(carried) + left_out
            lines.append(
                f"carries over: {len(carried)} of {ended} ended trials fit the new space"
                + (f" ({left_out} do not; they stay in the results)" if left_out else "")
            )
        for seed in self.seeds:
            unfit = f"; {seed.left_out} do not fit the space" if seed.left_out else ""
            lines.append(f"warm start: {len(seed.carried)} trials of sweep {seed.sweep}{unfit}")
        if self.basis is not None:
            sweep, records = self.basis
            concurrency = local_concurrency(self.spec, self.settings)
            cost = estimate(self.spec, self.planned(), records.values(), concurrency)
            if cost is not None:
                lines.append(
                    f"cost of {cost.trials} trials (from {cost.measured} trials of sweep {sweep}: "
                    f"{duration(cost.seconds)} each, {duration(cost.low)} to "
                    f"{duration(cost.high)}): "
                    f"{cost.gpu_hours(cost.seconds):.3g} GPU-hours "
                    f"({cost.gpu_hours(cost.low):.3g} to {cost.gpu_hours(cost.high):.3g}), "
                    f"wall time {duration(cost.wall_seconds(cost.seconds))} "
                    f"({duration(cost.wall_seconds(cost.low))} to "
                    f"{duration(cost.wall_seconds(cost.high))}) at concurrency {concurrency}"
                )
        return lines


def _newest_of(spec: Spec, settings: Settings) -> tuple[str, dict[str, TrialRecord]] | None:
    """The newest sweep of ``spec``'s name that has ended trials, with its records."""
    from sweeper._journal import SweepState, read_journal
    from sweeper._layout import is_sweep_dir

    root = spec.results_folder(settings.results.dir)
    found = []
    for folder in root.glob(f"{spec.name}-*") if root.is_dir() else []:
        try:
            state = SweepState.load(folder) if is_sweep_dir(folder) else None
        except Exception:
            continue  # a damaged sweep: `sweeper list` says so
        if state is not None and state.spec == spec.name:
            found.append((state.created, folder))
    for _, folder in sorted(found, reverse=True):
        records = read_journal(folder)
        if any(r.state in ("completed", "stopped") for r in records.values()):
            return folder.name, records
    return None
