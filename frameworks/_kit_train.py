"""Training code for sweeper's AdapterTestSuite: plays the scenario ``params["scenario"]``.

:meth:`sweeper.frameworks.testing.Project.python_trainer` and ``python_program`` copy this file
into a project as ``kit_train.py``; it needs nothing but the standard library, wherever it is
copied. As a function, :func:`train` is an entry point. As a program (``python kit_train.py``)
it reads the trial's parameters from ``config.json`` in its working directory (arguments are
ignored: an adapter may pass the parameters as flags too), takes ``$RESULT_DIR`` as its output
folder, prints its reports as ``SWEEPER_METRICS {json}`` lines and exits 1 on failure.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

STDOUT_LINE = "kit: a line on stdout"
STDERR_LINE = "kit: a line on stderr"
FAILURE = "kit: failing on purpose"
LEFTOVER_VARIABLE = "SWEEPER_KIT_LEFTOVER"
LEFTOVER_FILE = "kit-leftover"
RUN_S = 120.0


def train(params: dict[str, Any], ctx: Any) -> None:
    """Play ``params["scenario"]`` (see :data:`sweeper.frameworks.testing.SCENARIOS`)."""
    scenario = params["scenario"]
    if scenario == "dirty":
        os.environ[LEFTOVER_VARIABLE] = "1"
        (ctx.output_dir / LEFTOVER_FILE).write_text("left by the trial before")
        os.chdir(ctx.output_dir)
        ctx.report(step=1, score=1.0)
    elif scenario == "check":
        ctx.report(
            step=1,
            score=1.0,
            leftover_env=float(LEFTOVER_VARIABLE in os.environ),
            leftover_cwd=float(Path(LEFTOVER_FILE).exists()),
        )
    elif scenario == "report":
        print(STDOUT_LINE, flush=True)
        print(STDERR_LINE, file=sys.stderr, flush=True)
        for step in (1, 2, 3):
            ctx.report(step=step, score=float(step))
    elif scenario == "fail":
        ctx.report(step=1, score=1.0)
        raise RuntimeError(FAILURE)
    elif scenario == "run":
        for step in range(1, int(RUN_S * 10) + 1):
            ctx.report(step=step, score=0.0)
            time.sleep(0.1)
    else:
        raise ValueError(f"unknown scenario {scenario!r}")


class _ProgramContext:
    """The little of ``ctx`` the scenarios use, when this file runs as a program."""

    def __init__(self) -> None:
        self.output_dir = Path(os.environ.get("RESULT_DIR", "."))

    def report(self, step: int | None = None, **metrics: float) -> None:
        print("SWEEPER_METRICS " + json.dumps({"step": step, **metrics}), flush=True)


if __name__ == "__main__":
    train(json.loads(Path("config.json").read_text(encoding="utf-8")), _ProgramContext())
