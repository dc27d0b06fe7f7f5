"""Distributed trials: the same DDP training with 1 and 2 learners, and what the gang costs.

What it measures: ``examples/digits/torch_ddp.py:train`` (the digits MLP under PyTorch's
DistributedDataParallel, gloo on CPUs), ``--trials`` trials of ``--epochs`` epochs one at a
time, on a local Ray with ``--cpus`` CPUs (1 per learner), three ways:

(a) ``sweeper-1``: sweeper, ``resources.learners: 1`` (a plain trial: no Ray Train).
(b) ``sweeper-2``: sweeper, ``resources.learners: 2`` (a Ray Train gang per trial).
(c) ``ray-train-2``: the anchor, plain Ray Tune with Ray Train V2 as Ray's docs put it: a Tune
    function trial that builds a ``TorchTrainer`` of 2 workers (1 CPU each) and reports rank 0's
    results through ``TuneReportCallback``; ``reuse_actors=True``,
    ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``, no checkpoints, ``max_concurrent_trials=1``.

The training function is the same in all three: each epoch's report carries ``t``, the time
it was made (``time.time()`` in rank 0). Figures per run: wall time of the whole child
process's run call (Ray's start and stop included); per trial, the *start-up* (from the moment
Tune started the trial to its first epoch's report: for a gang, placing and starting the
learners and the process group) and the *time per epoch* (from the first report to the last,
over ``epochs - 1``); medians over the trials. No speed-up is expected on 2 shared cores: the
2 learners split each epoch's data, but every step also all-reduces the gradients.

Run it from the repository root::

    python benchmarks/gang.py                     # 3 trials x 8 epochs, 3 runs: ~4 min
    python benchmarks/gang.py --only b,c --trials 2

It exits 0 unless a run crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # benchmarks/_common.py: the scripts run from this folder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VARIANTS = {"a": "sweeper-1", "b": "sweeper-2", "c": "ray-train-2"}


def bench_sweeper(learners: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import mlflow
    import pandas as pd

    from sweeper.execution._sweep import run
    from sweeper.settings import load_settings
    from sweeper.spec import parse_spec

    spec = parse_spec(
        {
            "name": f"gang-{learners}",
            "framework": "pytorch",
            "entrypoint": f"{HERE / '_trainables.py'}:timed_ddp",
            "resources": {"cpus": 1, "learners": learners},
            "search": {
                "method": "grid",
                "metric": "val_accuracy",
                "mode": "max",
                "concurrency": 1,
            },
            "parameters": {
                "n": {"choice": list(range(args.trials))},
                "lr": 0.05,
                "hidden": 64,
                "epochs": args.epochs,
            },
        },
        base_dir=ROOT,
    )
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": uri,
            "SWEEPER_RESULTS_DIR": str(tmp / "results"),
            "SWEEPER_RAY_NUM_CPUS": str(args.cpus),
            "SWEEPER_RAY_DASHBOARD": "false",
        }
    )
    start = time.perf_counter()
    result = run(spec, settings, echo=None)
    wall = time.perf_counter() - start
    client = mlflow.MlflowClient(uri)
    trials = []
    for row in result.results.itertuples():
        times = sorted(m.value for m in client.get_metric_history(row.mlflow_run_id, "t"))
        started = pd.Timestamp(row.started_at).timestamp()
        trials.append((times[0] - started, (times[-1] - times[0]) / (len(times) - 1)))
    return _figures(wall, trials, result.results["val_accuracy"].max(), result.status)


def bench_ray_train(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    import ray
    from ray import tune
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    sys.path[:0] = [str(ROOT / "examples" / "digits"), str(HERE)]
    # The workers import them too: Ray ships this process's sys.path to none of them.
    os.environ["PYTHONPATH"] = os.pathsep.join([*sys.path[:2], os.environ.get("PYTHONPATH", "")])

    class Ctx:  # what the example reads of sweeper's ctx
        def __init__(self) -> None:
            context = ray.train.get_context()
            self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
            self.output_dir = Path(tempfile.mkdtemp())

        def report(self, step: int | None = None, **metrics: Any) -> None:
            ray.train.report({"step": step, **metrics})  # every rank: V2's report is collective

    def worker(config: dict[str, Any]) -> None:
        from _trainables import Timed
        from torch_ddp import train

        ctx = Ctx()
        train(config, Timed(ctx))

    def trial(config: dict[str, Any]) -> None:
        started = time.time()
        trainer = TorchTrainer(
            worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
            run_config=RunConfig(
                name=f"t{time.time_ns()}",
                storage_path=str(tmp / "train"),
                callbacks=[TuneReportCallback()],
            ),
        )
        trainer.fit()
        tune.report({"started": started})

    seen: dict[str, list[dict[str, Any]]] = {}

    class Collect(tune.Callback):  # the result files are off (as an expert runs Tune)
        def on_trial_result(self, iteration, trials, trial, result, **info):  # type: ignore[no-untyped-def]
            seen.setdefault(trial.trial_id, []).append(dict(result))

    start = time.perf_counter()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": 0, "memory": 64 * 2**20}),
        param_space={
            "n": tune.grid_search(list(range(args.trials))),
            "lr": 0.05,
            "hidden": 64,
            "epochs": args.epochs,
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp / "tune"), verbose=0, callbacks=[Collect()]),
    )
    tuner.fit()
    ray.shutdown()
    wall = time.perf_counter() - start
    trials, best = [], 0.0
    for results in seen.values():
        times = sorted(r["t"] for r in results if "t" in r)
        started = next(r["started"] for r in results if "started" in r)
        trials.append((times[0] - started, (times[-1] - times[0]) / (len(times) - 1)))
        best = max(best, max(r["val_accuracy"] for r in results if "val_accuracy" in r))
    return _figures(wall, trials, best, "completed")


def _figures(wall: float, trials: list[tuple[float, float]], best: float, status: str) -> dict:
    return {
        "status": status,
        "wall_s": wall,
        "startup_s": statistics.median(t[0] for t in trials),
        "epoch_s": statistics.median(t[1] for t in trials),
        "best": float(best),
    }


def child(args: argparse.Namespace) -> int:
    result_fd = os.dup(1)
    os.dup2(2, 1)  # Ray and PyTorch print to stdout; keep fd 1 for the JSON
    tmp = Path(tempfile.mkdtemp(prefix=f"sweeper-gang-{args.variant}-"))
    try:
        os.chdir(tmp)
        if args.variant == "ray-train-2":
            figures = bench_ray_train(args, tmp)
        else:
            figures = bench_sweeper(int(args.variant[-1]), args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    os.write(result_fd, (json.dumps(figures) + "\n").encode())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument(
        "--only", default="a,b,c", help="variants: a/sweeper-1, b/sweeper-2, c/ray-train-2"
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        return child(args)
    print(_common.versions("ray", "torch", "mlflow"))
    print(f"{args.trials} trials x {args.epochs} epochs, one at a time, {args.cpus} CPUs")
    rows = {}
    for variant in _common.chosen_variants(parser, args.only, VARIANTS):
        command = [
            sys.executable,
            __file__,
            "--variant",
            variant,
            "--trials",
            str(args.trials),
            "--epochs",
            str(args.epochs),
            "--cpus",
            str(args.cpus),
        ]
        figures = _common.run_child(command, variant, args.verbose)
        if figures is None:
            return 1
        rows[variant] = figures
    print(f"{'run':<12} {'wall s':>7} {'start-up s':>10} {'s/epoch':>8} {'best':>6} {'load':>5}")
    for name, f in rows.items():
        print(
            f"{name:<12} {f['wall_s']:7.1f} {f['startup_s']:10.2f} {f['epoch_s']:8.3f} "
            f"{f['best']:6.3f} {f['load']:5.1f}"
        )
    if "sweeper-1" in rows and "sweeper-2" in rows:
        one, two = rows["sweeper-1"], rows["sweeper-2"]
        print(
            f"2 learners / 1 learner: wall {two['wall_s'] / one['wall_s']:.2f}, "
            f"start-up +{two['startup_s'] - one['startup_s']:.1f} s a trial, "
            f"per epoch {two['epoch_s'] / one['epoch_s']:.2f}"
        )
    if "sweeper-2" in rows and "ray-train-2" in rows:
        two, anchor = rows["sweeper-2"], rows["ray-train-2"]
        print(
            f"sweeper / Ray Train, 2 learners: wall {two['wall_s'] / anchor['wall_s']:.2f}, "
            f"start-up {two['startup_s'] / anchor['startup_s']:.2f}, "
            f"per epoch {two['epoch_s'] / anchor['epoch_s']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
