"""``sweeper plot``: a sweep's plots as PNG and HTML files, logged to its MLflow run."""

from __future__ import annotations

from pathlib import Path

import click

from sweeper.cli._options import CONFIG, SWEEP, locate

__all__ = ["plot"]


@click.command()
@SWEEP
@CONFIG
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the files (default: the sweep's plots/ folder).",
)
@click.option("--no-mlflow", is_flag=True, help="Do not log the plots to the sweep's MLflow run.")
def plot(sweep: str | None, config: Path | None, output: Path | None, no_mlflow: bool) -> None:
    """Plot SWEEP (its folder or id): optimization history, parallel coordinates, parameter
    importance and learning curves, each as PNG and HTML.

    The files are also logged as artifacts of the sweep's MLflow parent run, under plots/, so
    the MLflow UI shows them. A plot the sweep has too few trials for is skipped with a note.
    Exits 1 if the plots could not be logged to MLflow (they are written all the same).
    """
    from sweeper.plots import plot_sweep
    from sweeper.settings import load_settings

    settings = load_settings(config)
    folder = locate(sweep, config)
    written = plot_sweep(
        folder, output, log_to_mlflow=not no_mlflow, settings=settings, echo=click.echo
    )
    if not written:
        click.echo(f"no plots written: sweep {folder.name} has nothing to plot yet")
