"""Per-trial overhead of sweeper against plain Ray Tune and plain Optuna.

What it measures: the same work -- N trials (default 200) that do nothing but report one metric,
``score = x`` with ``x ~ uniform(0, 1)``, at most 2 at a time -- done three ways:

(a) ``sweeper``: ``sweeper.run(spec, settings, echo=None)`` with framework ``python``
    (``benchmarks/_noop.py:train``), ``search: {method: random, metric: score, mode: max,
    trials: N, concurrency: 2, seed: 0}``, MLflow tracking on to a fresh sqlite store and
    results in a temporary folder; sweeper starts its own local Ray (``SWEEPER_RAY_NUM_CPUS``).
(b) ``ray_tune``: plain ``tune.Tuner(...).fit()`` with Tune's defaults (no ``reuse_actors``,
    default loggers and console output) on a local Ray started with
    ``ray.init(address="local", num_cpus=2, include_dashboard=False)``.
(c) ``optuna``: plain in-process ``study.optimize(objective, n_trials=N, n_jobs=2)`` with a
    seeded ``RandomSampler``.

Timed region: the whole call, local Ray start and stop included -- for (a) the ``run()`` call
(which also opens the MLflow store and writes results), for (b) from ``ray.init`` to
``ray.shutdown``, also timed from Tuner creation to the end of ``fit()`` alone, for (c)
``create_study`` and ``optimize``. Imports of sweeper, Ray and Optuna happen before the clock
starts.

Each variant runs in its own Python process with a clean copy of the environment (without
``SWEEPER_*`` and the Ray variables sweeper sets with ``os.environ.setdefault``), so nothing
sweeper changes leaks into plain Tune; the child prints its figures as JSON on stdout.

Run it from the repository root::

    python benchmarks/overhead.py                      # 200 trials, all three, ~5 min on 2 cores
    python benchmarks/overhead.py --trials 20 --only a,c

It exits 0 unless a variant crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # benchmarks/_common.py: the scripts run from this folder

HERE = Path(__file__).resolve().parent
PACKAGES = ("ray", "optuna", "mlflow")  # whose versions the report names
VARIANTS = {"a": "sweeper", "b": "ray_tune", "c": "optuna"}
TARGET = 0.80  # sweeper should take at most this share of plain Tune's time
# Set by sweeper.run with os.environ.setdefault; a plain Tune run must not see them.


# -- the three variants (each runs in a child process) -----------------------------------------


def bench_sweeper(trials: int, concurrency: int, cpus: int, tmp: Path) -> dict[str, Any]:
    from sweeper.execution._sweep import run
    from sweeper.settings import load_settings
    from sweeper.spec import parse_spec

    spec = parse_spec(
        {
            "name": "overhead",
            "framework": "python",
            "entrypoint": "_noop.py:train",
            "parameters": {"x": {"uniform": [0, 1]}},
            "search": {
                "method": "random",
                "metric": "score",
                "mode": "max",
                "trials": trials,
                "concurrency": concurrency,
                "seed": 0,
            },
        },
        base_dir=HERE,
    )
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(tmp / "results"),
            "SWEEPER_RAY_NUM_CPUS": str(cpus),
        }
    )
    start = time.perf_counter()
    result = run(spec, settings, echo=None)
    wall = time.perf_counter() - start
    frame = result.results
    completed = int((frame["state"] == "completed").sum()) if not frame.empty else 0
    best = result.best
    return {
        "wall_s": wall,
        "trials": len(frame),
        "completed": completed,
        "best": None if best is None else float(best["score"]),
    }


def _tune_trial(config: dict[str, Any]) -> None:
    from ray import tune

    tune.report({"score": config["x"]})


def bench_ray_tune(trials: int, concurrency: int, cpus: int, tmp: Path) -> dict[str, Any]:
    import ray
    from ray import tune

    start = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False)
    try:
        fit_start = time.perf_counter()
        tuner = tune.Tuner(
            _tune_trial,
            param_space={"x": tune.uniform(0, 1)},
            tune_config=tune.TuneConfig(
                num_samples=trials, max_concurrent_trials=concurrency, metric="score", mode="max"
            ),
            run_config=tune.RunConfig(storage_path=str(tmp / "ray_results")),
        )
        grid = tuner.fit()
        fit = time.perf_counter() - fit_start
    finally:
        ray.shutdown()
    wall = time.perf_counter() - start
    best = grid.get_best_result() if len(grid) > grid.num_errors else None
    return {
        "wall_s": wall,
        "fit_s": fit,
        "trials": len(grid),
        "completed": len(grid) - grid.num_errors,
        "best": None if best is None else float(best.metrics["score"]),
    }


def bench_optuna(trials: int, concurrency: int, cpus: int, tmp: Path) -> dict[str, Any]:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0.0, 1.0)

    start = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=trials, n_jobs=concurrency)
    wall = time.perf_counter() - start
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {
        "wall_s": wall,
        "trials": len(study.trials),
        "completed": len(done),
        "best": float(study.best_value) if done else None,
    }


BENCHES = {"sweeper": bench_sweeper, "ray_tune": bench_ray_tune, "optuna": bench_optuna}


def child(variant: str, trials: int, concurrency: int, cpus: int) -> int:
    """Run one variant and write its figures as one JSON line on the real stdout."""
    # Ray, Tune and Optuna print to stdout; keep fd 1 for the JSON and send the rest to stderr.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    tmp = Path(tempfile.mkdtemp(prefix=f"sweeper-overhead-{variant}-"))
    try:
        os.chdir(tmp)  # no sweeper.toml from the caller's folder; Tune writes nothing here
        figures = BENCHES[variant](trials, concurrency, cpus, tmp)
    finally:
        sys.stdout.flush()
        shutil.rmtree(tmp, ignore_errors=True)
    os.write(result_fd, (json.dumps({"variant": variant, **figures}) + "\n").encode())
    os.close(result_fd)
    return 0


# -- the parent: one child per variant, then the table --------------------------------------------


def run_child(
    variant: str, trials: int, concurrency: int, cpus: int, verbose: bool
) -> dict[str, Any] | None:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--variant",
        variant,
        "--trials",
        str(trials),
        "--concurrency",
        str(concurrency),
        "--cpus",
        str(cpus),
    ]
    return _common.run_child(command, variant, verbose)


def report(
    results: dict[str, dict[str, Any] | None], trials: int, args: argparse.Namespace
) -> None:
    print(
        f"overhead: {trials} no-op trials (report score=x once), concurrency {args.concurrency}, "
        f"local Ray with {args.cpus} CPUs; {os.cpu_count()} cores here; "
        f"{_common.versions(*PACKAGES)}"
    )
    print(
        "timed: the whole call, local Ray start/stop included (sweeper: run() with MLflow on "
        "sqlite; ray_tune: ray.init .. ray.shutdown; optuna: create_study + optimize); "
        "each variant in its own process"
    )
    print("load: the 1-minute load average when the variant ended (other work skews timings)")
    print()
    header = f"{'variant':<26}{'wall s':>9}{'ms/trial':>11}{'completed':>12}{'best':>8}{'load':>7}"
    print(header)
    print("-" * len(header))
    for letter, name in VARIANTS.items():
        if name not in results:
            continue
        figures = results[name]
        label = f"({letter}) {name}"
        if figures is None:
            print(f"{label:<26}{'crashed':>9}")
            continue
        best = "-" if figures["best"] is None else f"{figures['best']:.3f}"
        done = f"{figures['completed']}/{trials}"
        wall = figures["wall_s"]
        print(
            f"{label:<26}{wall:>9.2f}{wall / trials * 1000:>11.1f}{done:>12}{best:>8}"
            f"{figures['load']:>7.2f}"
        )
        if "fit_s" in figures:
            fit = figures["fit_s"]
            print(f"{'    ray_tune fit only':<26}{fit:>9.2f}{fit / trials * 1000:>11.1f}")
    print()
    ours = results.get("sweeper")
    tune = results.get("ray_tune")
    plain = results.get("optuna")
    if ours and tune:
        ratio = ours["wall_s"] / tune["wall_s"]
        verdict = "met" if ratio <= TARGET else "missed"
        print(f"ratio sweeper/ray_tune = {ratio:.2f} (target <= {TARGET:.2f}: {verdict})")
        print(
            f"ratio sweeper/ray_tune fit only = {ours['wall_s'] / tune['fit_s']:.2f} "
            "(sweeper's whole call against Tuner creation .. fit end)"
        )
    if ours and plain:
        print(f"ratio sweeper/optuna = {ours['wall_s'] / plain['wall_s']:.2f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Per-trial overhead of sweeper against plain Ray Tune and plain Optuna."
    )
    parser.add_argument("--trials", type=int, default=200, help="trials per variant (200)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at a time (2)")
    parser.add_argument(
        "--cpus", type=int, default=None, help="CPUs of each local Ray (default: --concurrency)"
    )
    parser.add_argument(
        "--only",
        default="a,b,c",
        help="variants to run, comma-separated: a/sweeper, b/ray_tune, c/optuna (all)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show each variant's own output (Ray, Tune, ...)"
    )
    parser.add_argument("--variant", choices=sorted(BENCHES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.trials < 1 or args.concurrency < 1:
        parser.error("--trials and --concurrency must be at least 1")
    args.cpus = args.cpus or args.concurrency
    args.chosen = _common.chosen_variants(parser, args.only, VARIANTS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.variant:
        return child(args.variant, args.trials, args.concurrency, args.cpus)
    results: dict[str, dict[str, Any] | None] = {}
    for name in VARIANTS.values():
        if name in args.chosen:
            results[name] = run_child(name, args.trials, args.concurrency, args.cpus, args.verbose)
    report(results, args.trials, args)
    return 1 if any(figures is None for figures in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
