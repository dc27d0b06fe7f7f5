"""Training functions for the benchmarks.

``makespan.py``: sleep a fixed time, note when, report one metric.

Each trial writes its own sleep window -- ``{"trial", "pid", "start", "end"}``, wall-clock
seconds from ``time.time()`` -- as one JSON file in the folder named by the ``windows``
parameter, before it reports (a report may be where the trial ends). The same code runs under
sweeper (``sleep_trial(params, ctx)``) and under plain Ray Tune (``sleep_tune(config)``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def _sleep(params: dict[str, Any], name: str) -> float:
    start = time.time()
    time.sleep(float(params["seconds"]))
    end = time.time()
    window = {"trial": name, "pid": os.getpid(), "start": start, "end": end}
    folder = Path(params["windows"])
    (folder / f"{name}.json").write_text(json.dumps(window), encoding="utf-8")
    return end - start


def sleep_trial(params: dict[str, Any], ctx: Any) -> None:
    """sweeper's entry point (framework ``python``)."""
    slept = _sleep(params, ctx.trial)
    ctx.report(step=1, slept=slept)


def sleep_tune(config: dict[str, Any]) -> None:
    """A plain Ray Tune function trainable."""
    from ray import tune

    name = f"{tune.get_context().get_trial_id()}-{config['i']:04d}"
    slept = _sleep(config, name)
    tune.report({"slept": slept})


class Timed:
    """``gang.py``'s ``ctx``: adds ``t`` (when rank 0 reported) to each report."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def report(self, step: int | None = None, **metrics: Any) -> None:
        self._ctx.report(step=step, t=time.time(), **metrics)


def timed_ddp(params: dict[str, Any], ctx: Any) -> None:
    """``gang.py``'s entry point: ``examples/digits/torch_ddp.py:train``, timed."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "digits"))
    from torch_ddp import train

    train(params, Timed(ctx))
