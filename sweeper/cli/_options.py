"""Options several ``sweeper`` commands share."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["CONFIG"]

CONFIG = click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings file (default: ./sweeper.toml).",
)
