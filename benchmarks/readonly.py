"""How long sweeper's read-only commands take on a big sweep: 1,000 trials.

What it measures: whole processes, start-up included, as a user at a terminal sees them --
``sweeper list``, ``status``, ``show``, ``show --top 1000``, ``export`` and ``logs <trial>`` on
a synthetic finished sweep of 1,000 trials, and ``python -c "import sweeper.cli"`` as the floor
every command pays. Three commands also run beside the same read done by hand at its fastest
(the journal parsed with ``json``, ``results.csv`` through pandas, ``cat`` of the log), with the
ratio of the medians. Each command runs once untimed (a warm-up: the file cache), then ``--runs``
times (default 5); the table gives the minimum and the median wall-clock seconds.

The sweep is written with sweeper's own writers: :class:`sweeper._journal.Journal` (queued,
starting, running, one result line per reported step, storing and a final state per trial,
about 16,000 journal lines), :class:`sweeper._journal.SweepState`,
:func:`sweeper.results.write_results` and the trials' ``params.json`` and ``trial.log``. It is
a random search over four parameters; 70% of the trials complete (20 steps), 20% are stopped
early and 10% fail.

Run it from the repository root::

    python benchmarks/readonly.py                 # ~1 min on 2 cores
    python benchmarks/readonly.py --trials 200 --runs 3 --keep

It exits 0, or 1 if a command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SWEEP = "bench-20261202-101500"
FLOOR = "import sweeper.cli"
SPEC = """\
name: bench
framework: python
entrypoint: train.py:train
parameters:
  lr: {{loguniform: [0.0001, 0.1]}}
  batch: {{choice: [16, 32, 64, 128]}}
  layers: {{int: [1, 8]}}
  dropout: {{uniform: [0.0, 0.5]}}
  epochs: 20
search: {{method: random, metric: accuracy, mode: max, trials: {trials}, seed: 0}}
"""
TRAIN = "def train(params, ctx):\n    ctx.report(step=1, accuracy=0.5)\n"


def build_sweep(root: Path, trials: int = 1000, seed: int = 0) -> Path:
    """Write a finished random-search sweep of ``trials`` trials under ``root / "results"``.

    ``root`` also gets the spec's code (``train.py``) and ``experiment.yml``. Trials are
    deterministic for a ``seed``: ``trial-0007``'s parameters and metrics are the same on every
    call.

    Returns:
        The sweep's folder, ``root / "results" / SWEEP``.
    """
    from sweeper._journal import FINAL_STATES, Journal, SweepState, TrialRecord
    from sweeper._layout import LOG_FILE, PARAMS_FILE, POINTS_FILE, SPEC_FILE, trial_dir
    from sweeper._layout import trial_name as name_of
    from sweeper.results import results_frame, write_results
    from sweeper.spec import Search, Spec

    rng = random.Random(seed)
    sweep_dir = root / "results" / SWEEP
    sweep_dir.mkdir(parents=True)
    spec_text = SPEC.format(trials=trials)
    (root / "train.py").write_text(TRAIN, encoding="utf-8")
    (root / "experiment.yml").write_text(spec_text, encoding="utf-8")
    (sweep_dir / SPEC_FILE).write_text(spec_text, encoding="utf-8")
    created = time.time() - 3 * 3600
    state = SweepState(
        sweep=SWEEP,
        spec="bench",
        base_dir=str(root),
        created=created,
        sessions=1,
        host="bench-host",
        pid=None,
        parent_run_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        experiment="bench",
    )
    points = [
        {
            "lr": 10 ** rng.uniform(-4, -1),
            "batch": rng.choice([16, 32, 64, 128]),
            "layers": rng.randint(1, 8),
            "dropout": rng.uniform(0.0, 0.5),
        }
        for _ in range(trials)
    ]
    (sweep_dir / POINTS_FILE).write_text(json.dumps(points) + "\n", encoding="utf-8")
    journal = Journal(sweep_dir)
    records: dict[str, TrialRecord] = {}
    clock = created
    try:
        for index, point in enumerate(points):
            name = name_of(index)
            records[name] = record = TrialRecord(name=name, params={**point, "epochs": 20})
            record.enter("queued", clock)
            journal.write(record, "queued")
        for index, record in enumerate(records.values()):
            clock = created + 10 * index  # two at a time, ~20 s each
            fate = rng.random()
            final = "completed" if fate < 0.7 else "stopped" if fate < 0.9 else "failed"
            steps = 20 if final == "completed" else rng.randint(1, 8)
            record.attempts, record.gpus = 1, 1.0
            record.node, record.actor_id, record.pid = "node-1", uuid.uuid4().hex, 10_000 + index
            record.attempt_started = clock
            record.enter("starting", clock)
            journal.write(record, "start")
            record.enter("running", clock + 0.5)
            journal.write(record, "running")
            quality = rng.random()
            for step in range(1, steps + 1):
                accuracy = round(quality * (1 - 0.5 ** (step / 4)), 6)
                record.steps = step
                record.metrics = {"accuracy": accuracy, "loss": round(1 - accuracy, 6)}
                record.best = max(record.best or 0.0, accuracy)
                journal.write(record, "result")
            end = clock + 1 + steps
            record.enter("storing", end - 0.2)
            journal.write(record, "storing")
            if final == "failed":
                record.error = f"{record.name} failed: RuntimeError: diverged at step {steps}"
            record.end_attempt(end)
            record.enter(final, end)
            assert record.state in FINAL_STATES
            journal.write(record, final)
            folder = trial_dir(sweep_dir, record.name)
            folder.mkdir(parents=True)
            (folder / PARAMS_FILE).write_text(
                json.dumps(record.params, indent=2) + "\n", encoding="utf-8"
            )
            lines = [f"{record.name} epoch {s}: accuracy ..." for s in range(1, steps + 1)]
            (folder / LOG_FILE).write_text("\n".join(["start", *lines, "end"]) + "\n")
    finally:
        journal.close()
    # The driver adds MLflow's run ids at the end of a session, then writes results.csv.
    for record in records.values():
        record.run_id = uuid.UUID(int=rng.getrandbits(128)).hex
    ranking = Spec.model_construct(search=Search.model_construct(metric="accuracy", mode="max"))
    write_results(results_frame(ranking, records.values()), sweep_dir)
    state.status = "completed"
    state.gpu_seconds = sum(r.gpu_seconds for r in records.values())
    state.save(sweep_dir)
    return sweep_dir


def _time(command: list[str], env: dict[str, str], cwd: Path, runs: int) -> list[float]:
    """Wall-clock seconds of ``runs`` runs of ``command``, after one untimed run."""
    seconds = []
    for attempt in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {tail}")
        if attempt:
            seconds.append(elapsed)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials in the sweep")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command")
    parser.add_argument("--keep", action="store_true", help="keep the sweep's folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sweeper-readonly-"))
    print(f"writing a sweep of {args.trials} trials under {root} ...", file=sys.stderr)
    sweep_dir = build_sweep(root, args.trials)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPER_")}
    env.update(
        SWEEPER_RESULTS_DIR=str(root / "results"),
        SWEEPER_MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
    )
    sweeper = [sys.executable, "-m", "sweeper"]
    last, every = f"{args.trials:04d}", str(args.trials)
    commands = {
        f'python -c "{FLOOR}"': [sys.executable, "-c", FLOOR],
        "sweeper list": [*sweeper, "list"],
        "sweeper status SWEEP": [*sweeper, "status", SWEEP],
        "sweeper show SWEEP": [*sweeper, "show", SWEEP],
        f"sweeper show SWEEP --top {every}": [*sweeper, "show", SWEEP, "--top", every],
        "sweeper export SWEEP": [*sweeper, "export", SWEEP, "-o", str(root / "out.csv")],
        f"sweeper logs SWEEP {last}": [*sweeper, "logs", SWEEP, last],
    }
    # The same reads done by hand, at their fastest: the journal parsed with json (what list and
    # status must read), results.csv through pandas (what export writes), the log with cat.
    journal = str(sweep_dir / "trials.jsonl")
    journal_read = f"import json; [json.loads(line) for line in open({journal!r})]"
    source, copy = str(sweep_dir / "results.csv"), str(root / "anchor.csv")
    csv_copy = f"import pandas; pandas.read_csv({source!r}).to_csv({copy!r}, index=False)"
    anchors = {
        "sweeper status SWEEP": (
            "json.loads of trials.jsonl",
            [sys.executable, "-c", journal_read],
        ),
        "sweeper export SWEEP": ("pandas read_csv + to_csv", [sys.executable, "-c", csv_copy]),
        f"sweeper logs SWEEP {last}": (
            "cat trial.log",
            ["cat", str(sweep_dir / "trials" / f"trial-{last}" / "trial.log")],
        ),
    }
    for anchor, command in anchors.values():
        commands[f"  anchor: {anchor}"] = command
    rows = []
    failed = False
    for label, command in commands.items():
        print(f"timing {label} ...", file=sys.stderr, flush=True)
        try:
            seconds = _time(command, env, root, args.runs)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            failed = True
            continue
        rows.append((label, min(seconds), statistics.median(seconds)))
    width = max(len(label) for label, _, _ in rows) if rows else 0
    size = (sweep_dir / "trials.jsonl").stat().st_size / 1e6
    print(f"{args.trials} trials, journal {size:.1f} MB, {args.runs} runs each (seconds)")
    print(f"{'command':<{width}}  {'min':>6}  {'median':>6}  ratio to its anchor (medians)")
    medians = {label: middle for label, _, middle in rows}
    for label, low, middle in rows:
        anchor = anchors.get(label)
        base = medians.get(f"  anchor: {anchor[0]}") if anchor else None
        ratio = f"  {middle / base:.2f}x" if base else ""
        print(f"{label:<{width}}  {low:6.3f}  {middle:6.3f}{ratio}")
    if args.keep:
        print(f"kept {root}", file=sys.stderr)
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
