"""``sweeper plan``: a spec's search space, trial count and points, without Ray.

A seeded random search's points are known before the sweep runs: they are drawn up front
(:func:`sweeper.search._space.random_points`, which imports no Ray), so the plan prints exactly
the points the sweep will run.
"""

from __future__ import annotations

from pathlib import Path

import click

from sweeper._format import format_params

__all__ = ["plan"]


@click.command()
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
def plan(spec: Path) -> None:
    """Print SPEC's search space and trial count (and a grid's trials) without training."""
    from sweeper._layout import trial_name
    from sweeper.spec import load_spec

    loaded = load_spec(spec)
    search = loaded.search
    method = f"optuna ({loaded.sampler})" if search.method == "optuna" else search.method
    click.echo(f"sweep {loaded.name}: {method}, {search.mode} {search.metric}")
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
    if loaded.limits.describe() != "none":
        click.echo(f"limits: {loaded.limits.describe()}")
    click.echo("parameters:")
    width = max((len(n) for n in loaded.space), default=0)
    for name, param in loaded.space.items():
        click.echo(f"  {name:<{width}}  {param.describe()}")
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
