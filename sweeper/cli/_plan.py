"""``sweeper plan``: a spec's search space, trial count and points, without Ray.

A seeded random search's points are known before the sweep runs: they are drawn up front
(:func:`sweeper.search._space.random_points`, which imports no Ray), so the plan prints exactly
the points the sweep will run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from sweeper._format import format_params

if TYPE_CHECKING:
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
def plan(spec: Path) -> None:
    """Print SPEC's search space and trial count (and a grid's trials) without training."""
    from sweeper._layout import trial_name
    from sweeper.spec import load_spec

    loaded = load_spec(spec)
    search = loaded.search
    method = f"optuna ({loaded.sampler})" if search.method == "optuna" else search.method
    objectives = ", ".join(f"{o.mode} {o.name}" for o in search.objectives)
    click.echo(f"sweep {loaded.name}: {method}, {objectives}")
    for line in search_lines(loaded):
        click.echo(line)
    click.echo(
        f"trials: {loaded.trial_count()}, concurrency: {search.concurrency or 'as resources allow'}"
    )
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
    from sweeper.search import sweep_points

    points = sweep_points(loaded) or []
    for i, point in enumerate(points):
        click.echo(f"  {trial_name(i)}  {format_params(point, digits=6)}")
