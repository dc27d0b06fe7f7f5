"""Training functions the sweep tests run (framework ``python``)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def quadratic(params, ctx):
    """Maximum 0 at x=2, y=-1."""
    ctx.report(step=1, score=-((params["x"] - 2.0) ** 2) - (params["y"] + 1.0) ** 2)


def record(params, ctx):
    """Note the GPUs and the time window this trial held them, then report.

    With ``meet`` (a folder) and ``expect``, the trial first waits, up to 60 s, until
    ``expect`` trials have arrived there, and notes whether they did (``met``): they then
    ran at the same time, whatever the machine's load.
    """
    started = time.time()
    met = None
    if params.get("meet"):
        folder = Path(params["meet"])
        (folder / ctx.trial).write_text("")
        deadline = time.time() + 60
        while len(list(folder.iterdir())) < params["expect"] and time.time() < deadline:
            time.sleep(0.05)
        met = len(list(folder.iterdir())) >= params["expect"]
    time.sleep(params.get("sleep", 0.5))
    note = {
        "trial": ctx.trial,
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpu_ids": ctx.gpu_ids,
        "start": started,
        "end": time.time(),
        "met": met,
        "params": params,
    }
    (ctx.output_dir / "note.json").write_text(json.dumps(note))
    ctx.report(step=1, score=float(params.get("x", 0)))


def epochs(params, ctx):
    """Report a curve over ``epochs`` steps, with the objective only every other step."""
    for step in range(1, params["epochs"] + 1):
        metrics = {"loss": 1.0 / step}
        if step % 2 == 0 or step == params["epochs"]:
            metrics["score"] = params["x"] * step
        ctx.report(step=step, **metrics)


def fails(params, ctx):
    """Fail when x is 2, after printing something worth seeing in the error."""
    ctx.report(step=1, score=float(params["x"]))
    if params["x"] == 2:
        print("about to fail: x is 2")
        raise RuntimeError("x must not be 2")


def reads_data(params, ctx):
    """List the staged data and copy its size into the output; optionally stop the S3 server."""
    data = ctx.data_dir
    files = (
        sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
        if (data)
        else []
    )
    (ctx.output_dir / "seen.json").write_text(
        json.dumps({"files": files, "data": str(ctx.data_dir)})
    )
    (ctx.output_dir / "model.bin").write_bytes(os.urandom(int(params.get("size", 1000))))
    if params.get("kill_pid"):
        import signal

        try:
            os.kill(int(params["kill_pid"]), signal.SIGTERM)  # the store goes away mid-sweep
            time.sleep(1.0)
        except ProcessLookupError:
            pass  # an earlier trial stopped it
    ctx.report(step=1, score=float(params.get("x", 0)))


def dies(params, ctx):
    """Write a file, then take the whole process down (as the OOM killer would)."""
    (ctx.output_dir / "partial.txt").write_text("written before the process died")
    sys.stdout.flush()
    os._exit(137)


def steps(params, ctx):
    """Report ``epochs`` steps of ``sleep`` seconds each, saving the step as a checkpoint.

    A later attempt continues after the checkpoint's step; ``die_at`` kills the first attempt's
    process at that step (``signal``: SIGKILL to itself, else ``os._exit``). Every step run is
    appended to ``output/steps.log`` as ``<attempt> <step>``.
    """
    checkpoint = ctx.checkpoint_dir / "step.json"
    start = json.loads(checkpoint.read_text())["step"] if checkpoint.exists() else 0
    with open(ctx.output_dir / "steps.log", "a") as log:
        for step in range(start + 1, int(params.get("epochs", 5)) + 1):
            time.sleep(float(params.get("sleep", 0.1)))
            log.write(f"{ctx.attempt} {step}\n")
            log.flush()
            if params.get("die_at") == step and ctx.attempt == 1:
                if params.get("signal"):
                    import signal

                    os.kill(os.getpid(), signal.SIGKILL)
                os._exit(3)
            partial = checkpoint.with_suffix(".partial")
            partial.write_text(json.dumps({"step": step}))
            partial.replace(checkpoint)
            # A curve that rises with x: higher x is better at every step.
            ctx.report(step=step, score=float(params["x"]) * step / (step + 1))


def broken(params, ctx):
    """Always fail, after one report."""
    ctx.report(step=1, score=float(params.get("x", 0)))
    raise RuntimeError("this trial always fails")


def learners(params, ctx):
    """Every learner of a trial: ``epochs`` steps of ``sleep`` seconds from rank 0's checkpoint.

    Each appends ``<attempt> <rank> <step> <pid>`` to ``output/learners.log``; rank 0 saves the
    step; every rank reports (only rank 0's reach the sweep).
    """
    checkpoint = ctx.checkpoint_dir / "step.json"
    start = json.loads(checkpoint.read_text())["step"] if checkpoint.exists() else 0
    for step in range(start + 1, int(params.get("epochs", 5)) + 1):
        time.sleep(float(params.get("sleep", 0.1)))
        with open(ctx.output_dir / "learners.log", "a") as log:
            log.write(f"{ctx.attempt} {ctx.rank} {step} {os.getpid()}\n")
        if ctx.rank == 0:
            partial = checkpoint.with_suffix(".partial")
            partial.write_text(json.dumps({"step": step}))
            partial.replace(checkpoint)
        ctx.report(step=step, score=float(step + ctx.rank * 100))


def conditional(params, ctx):
    """Write the params the trial got; the score rewards sgd with high momentum and nesterov."""
    (ctx.output_dir / "seen.json").write_text(json.dumps(sorted(params)))
    score = 0.5 if params["optimizer"] == "adam" else params["momentum"]
    score += 0.25 if params.get("nesterov") else 0.0
    ctx.report(step=1, score=score - abs(params["lr"] - 0.01))


def two_objectives(params, ctx):
    """Accuracy rises with width, size too: a trade-off along x in [0, 1].

    ``accuracy`` is reported at the first step and ``size_m`` at the last, so the sweep must
    carry each forward; ``latency`` grows with ``y``, for constraints.
    """
    x, y = params["x"], params["y"]
    ctx.report(step=1, accuracy=1.0 - (1.0 - x) ** 2 - 0.3 * y)
    ctx.report(step=2, size_m=10.0 * x + y, latency=20.0 * y)


def forgets_a_metric(params, ctx):
    """Reports the objective but never the metric the constraint names."""
    ctx.report(step=1, score=params["x"])


def which_data(params, ctx):
    """Note the dataset the trial got and what its data folder holds; score by the version."""
    data = ctx.data_dir
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    version = (data / "version.txt").read_text().strip()
    note = {"params": sorted(params), "dataset": ctx.dataset, "files": files, "version": version}
    (ctx.output_dir / "seen.json").write_text(json.dumps(note))
    ctx.report(step=1, score=float(version) + params["x"] / 10)


def population(params, ctx):
    """A trial whose score grows by ``lr`` each step from the state it continues: a high lr
    wins, so PBT copies high-lr trials into low-lr ones. Notes every step it ran with its lr
    and where the state came from."""
    state = ctx.load() or {"total": 0.0, "history": []}
    start = ctx.step
    with open(ctx.output_dir / "starts.jsonl", "a") as starts:  # each run of the function
        starts.write(json.dumps({"attempt": ctx.attempt, "step": start, "lr": params["lr"]}))
        starts.write("\n")
    for step in range(start + 1, params["steps"] + 1):
        state["total"] += params["lr"]
        state["history"].append([ctx.trial, step, params["lr"]])
        ctx.save(state)
        ctx.report(step=step, score=state["total"])
        if step == params.get("halt_at") and ctx.trial == "trial-0001":
            from sweeper._layout import STOP_FILE

            (ctx.trial_dir.parent.parent / STOP_FILE).write_text("")  # as `sweeper stop`
        time.sleep(params.get("sleep", 0.05))
    (ctx.output_dir / "history.json").write_text(json.dumps(state["history"]))


def curves(params, ctx):
    """Four steps of a score and a size that both rise with x (a trade-off: score is better
    high, size low)."""
    for step in range(1, 5):
        ctx.report(step=step, score=params["x"] * step / (step + 1), size=params["x"])
        time.sleep(0.05)
