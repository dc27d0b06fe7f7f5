"""A training function that prints as it goes, for the tests of ``sweeper logs``."""

from __future__ import annotations

import time


def talks(params, ctx):
    """Print and report ``epochs`` steps of ``sleep`` seconds; fail after step 1 if x is 2."""
    for step in range(1, int(params.get("epochs", 3)) + 1):
        time.sleep(float(params.get("sleep", 0.05)))
        print(f"{ctx.trial} step {step}", flush=True)
        ctx.report(step=step, score=float(params["x"]) * step / (step + 1))
        if params["x"] == 2 and params.get("fail", True):
            raise RuntimeError("x must not be 2")
