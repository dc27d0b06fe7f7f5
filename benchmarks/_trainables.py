"""Training functions for ``makespan.py``: sleep a fixed time, note when, report one metric.

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
