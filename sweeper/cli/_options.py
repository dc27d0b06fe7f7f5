"""Options several ``sweeper`` commands share."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["CONFIG", "SWEEP", "locate"]

CONFIG = click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings file (default: ./sweeper.toml).",
)

# A sweep as users name it: its folder, id, an id prefix, a spec's name, or nothing (the newest).
SWEEP = click.argument("sweep", required=False)


def locate(sweep: str | None, config: Path | None) -> Path:
    """The folder of the sweep ``sweep`` names (see ``sweeper._layout.resolve_sweep``); when
    it was not named exactly, says first, on stderr, which sweep was taken and why."""
    from sweeper._layout import resolve_sweep
    from sweeper.settings import load_settings

    found = resolve_sweep(sweep, load_settings(config))
    if found.picked:
        click.echo(f"sweep {found.sweep} ({found.picked})", err=True)
    return found.folder
