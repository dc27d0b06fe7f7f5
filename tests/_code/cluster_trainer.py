"""The training function of the cluster tests: copied into the test's project folder, so it
reaches the workers only through Ray's runtime environment (working_dir)."""

from __future__ import annotations

import json
import os
import time


def train(params, ctx):
    """Report ``steps`` steps of ``sleep`` seconds, checkpointing each; note where it ran.

    A later attempt continues after the checkpointed step. ``output/attempt-<n>.json`` records
    each attempt's Ray node, GPUs, first step and the data file it read through ``data_dir``.
    """
    import ray

    checkpoint = ctx.checkpoint_dir / "step.json"
    start = json.loads(checkpoint.read_text())["step"] if checkpoint.exists() else 0
    note = {
        "trial": ctx.trial,
        "attempt": ctx.attempt,
        "node": ray.get_runtime_context().get_node_id(),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "first_step": start + 1,
        "data_dir": str(ctx.data_dir),
        "data": (ctx.data_dir / "hello.txt").read_text().strip(),
        "started": time.time(),
    }
    (ctx.output_dir / f"attempt-{ctx.attempt}.json").write_text(json.dumps(note))
    for step in range(start + 1, int(params["steps"]) + 1):
        time.sleep(float(params["sleep"]))
        partial = checkpoint.with_suffix(".partial")
        partial.write_text(json.dumps({"step": step}))
        partial.replace(checkpoint)
        ctx.report(step=step, score=float(params["x"]) * step)
    note["ended"] = time.time()
    (ctx.output_dir / f"attempt-{ctx.attempt}.json").write_text(json.dumps(note))


def learners(params, ctx):
    """A learner of a trial of several: say in its log which node and GPU it has, report."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    print(f"learner {ctx.rank} of {ctx.world_size} on node {node} cuda {cuda}", flush=True)
    for step in range(1, int(params.get("steps", 2)) + 1):
        time.sleep(float(params.get("sleep", 0.3)))
        ctx.report(step=step, score=float(step))
