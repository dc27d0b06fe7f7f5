"""What the benchmark scripts share: each variant runs in a child process of its own, with a
clean environment, and prints its figures as one JSON line on stdout."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from typing import Any

# Set by sweeper.run for the sweep; a plain Tune or Optuna run must not see them.
SWEEPER_RAY_ENV = ("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "RAY_AIR_NEW_OUTPUT")


def clean_environ() -> dict[str, str]:
    """The caller's environment without anything that would change how a variant runs."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SWEEPER_") and k not in SWEEPER_RAY_ENV
    }


def run_child(command: list[str], variant: str, verbose: bool) -> dict[str, Any] | None:
    """Run one variant's child and return its figures (``None`` if it crashed), with the
    1-minute load average before (``load_before``) and after (``load``) it: other work on the
    machine skews timings."""
    print(f"running {variant} ...", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    done = subprocess.run(
        command,
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=None if verbose else subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        print(f"{variant} crashed (exit status {done.returncode})", file=sys.stderr)
        if done.stderr:
            tail = "\n".join(done.stderr.rstrip().splitlines()[-40:])
            print(f"--- last lines of its output ---\n{tail}", file=sys.stderr)
        return None
    return {**json.loads(lines[-1]), "load_before": load_before, "load": os.getloadavg()[0]}


def versions(*packages: str) -> str:
    """``Python 3.11.7, ray 2.60.0, ...`` for the packages named."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in packages:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} missing")
    return f"Python {platform.python_version()}, " + ", ".join(found)


def chosen_variants(
    parser: argparse.ArgumentParser, only: str, variants: dict[str, str]
) -> list[str]:
    """The variants ``--only`` names (by letter or name, comma-separated), in the order given."""
    chosen: list[str] = []
    for item in (part.strip() for part in only.split(",")):
        name = variants.get(item, item)
        if name not in variants.values():
            names = ", ".join([*variants, *variants.values()])
            parser.error(f"--only takes {names}, got {item!r}")
        if name not in chosen:
            chosen.append(name)
    return chosen
