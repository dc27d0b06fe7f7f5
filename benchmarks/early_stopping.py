"""Early stopping: epochs saved and accuracy kept by ASHA and the median rule on a digits sweep.

What it measures: one sweep -- the PyTorch MLP of ``examples/digits/torch_mlp.py:train`` on
scikit-learn's 8x8 digits, framework ``pytorch``, ``epochs: 27``, metric ``val_accuracy``
(max), ``search.seed: 0``, ``concurrency: 2``, 1 CPU per trial on a local Ray with 2 CPUs --
run three times through ``sweeper.run(spec, settings, echo=None)``:

(a) ``full``: no early stopping; every trial trains all its epochs. This is the anchor: the
    work early stopping is meant to save, and the accuracy it must keep.
(b) ``asha``: ``early_stopping: {method: asha, max_steps: 27, grace_period: 1,
    reduction_factor: 3}`` (rungs at epochs 1, 3 and 9).
(c) ``median``: ``early_stopping: {method: median, grace_period: 3, min_trials: 3}``.

The search: ``method: random``, 27 trials, ``seed: 0``, over the space of a 3 x 3 x 3 grid:
``lr: {choice: [0.0001, 0.001, 0.01]}``, ``hidden: {choice: [16, 64, 256]}``,
``dropout: {choice: [0.0, 0.25, 0.5]}``; final validation accuracies run from about 0.3 to
0.98. Why random search and not the grid: asynchronous early stopping judges a trial only
against the trials that reached the same rung (step) before it, and the first trial at a rung
always goes on, so the order of the trials decides what is stopped. A grid runs its
configurations in a fixed order, nested loops over the lists as written. Best first makes
early stopping look better than it is; written ascending, as a user would (lr, hidden and
dropout from small to large), quality mostly rises along the grid, each trial tends to beat
the ones before it, and hardly anything is stopped -- the worst case, not a typical one. A
seeded random search runs the same space in an order unrelated to quality, as a real random
or Optuna search does. The seeded draw repeats some configurations (27 draws of 27 points
hit 17 distinct ones), which a random search does too. ``--search grid`` runs the ascending
grid instead, to see that worst case.

Either way, the three runs train exactly the same trials: sweeper draws random points up
front from ``search.seed``, and ``trial-0007`` has the same values and the same seed
(``ctx.seed`` = 7, which the ``pytorch`` adapter gives ``torch.manual_seed``; one thread per
trial) in all three, so a completed trial reaches the same accuracy in each, and a difference
in the best accuracy comes only from which trials early stopping stopped. Which trials those
are depends on the order in which the two running trials' results reach the driver, so ASHA's
and the median rule's figures vary a little from run to run.

Figures per run: epochs trained (the sum of the ``steps`` column of ``result.results``: a Tune
function trial reports synchronously, so a stopped trial trained exactly the steps it
reported), trials completed and stopped, wall time of the ``run()`` call (Ray's start and stop
included), the time from the first trial's start to the last trial's end (``started_at`` ..
``ended_at`` of ``results.csv``), and the best completed trial (``result.best``). Targets:
ASHA's epochs at most 0.35 of the full sweep's, and ASHA's best validation accuracy within
0.005 (half a point) of the full sweep's. The median rule is reported without a target.

Each run is its own Python process with a clean copy of the environment (no ``SWEEPER_*``),
a temporary MLflow store (sqlite) and results folder, and the Ray dashboard off (unless
``--dashboard``); the child prints its figures as JSON.

Run it from the repository root::

    python benchmarks/early_stopping.py                # 27 trials x 27 epochs, 3 runs: ~3 min
    python benchmarks/early_stopping.py --quick        # 12 trials x 9 epochs: ~1.5 min
    python benchmarks/early_stopping.py --search grid  # the ascending grid (the worst case)

It exits 0 unless a run crashed; a missed target is reported (FAIL), not an error.
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
PACKAGES = ("ray", "torch", "mlflow")  # whose versions the report names
ROOT = HERE.parent
ENTRYPOINT = "examples/digits/torch_mlp.py:train"
VARIANTS = {"a": "full", "b": "asha", "c": "median"}
EPOCHS_TARGET = 0.35  # ASHA's epochs at most this share of the full sweep's
ACCURACY_TARGET = 0.005  # ASHA's best validation accuracy within this of the full sweep's
SPACE = {
    "lr": [0.0001, 0.001, 0.01],
    "hidden": [16, 64, 256],
    "dropout": [0.0, 0.25, 0.5],
}
DEFAULTS = {"epochs": 27, "search": "random", "trials": 27}
QUICK = {"epochs": 9, "search": "random", "trials": 12}


def early_stopping(variant: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """The spec's ``early_stopping`` block for a variant (``None``: none)."""
    if variant == "asha":
        return {
            "method": "asha",
            "max_steps": args.epochs,
            "grace_period": args.asha_grace,
            "reduction_factor": args.reduction_factor,
        }
    if variant == "median":
        return {
            "method": "median",
            "grace_period": args.median_grace,
            "min_trials": args.median_min_trials,
        }
    return None


def build_spec(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    search: dict[str, Any] = {
        "method": args.search,
        "metric": "val_accuracy",
        "mode": "max",
        "concurrency": args.concurrency,
        "seed": args.seed,
    }
    if args.search == "random":
        search["trials"] = args.trials
    spec: dict[str, Any] = {
        "name": f"early-stopping-{variant}",
        "framework": "pytorch",
        "entrypoint": ENTRYPOINT,
        "resources": {"gpus": 0, "cpus": 1},
        "search": search,
        "parameters": {
            **{name: {"choice": values} for name, values in SPACE.items()},
            "epochs": args.epochs,
        },
    }
    rule = early_stopping(variant, args)
    if rule is not None:
        spec["early_stopping"] = rule
    return spec


def dashboard_setting(args: argparse.Namespace) -> dict[str, str]:
    """``SWEEPER_RAY_DASHBOARD`` for sweeper's local Ray: off unless ``--dashboard``, like the
    plain runs (``include_dashboard=False``); a fixed dashboard port also collides with any
    other local Ray on the machine. Nothing when this sweeper has no such setting."""
    from sweeper.settings import RaySettings

    if "dashboard" not in RaySettings.model_fields:
        return {}
    return {"SWEEPER_RAY_DASHBOARD": "true" if args.dashboard else "false"}


# -- one run (in a child process) ----------------------------------------------------------------


def bench(variant: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import pandas as pd

    from sweeper.execution._sweep import run
    from sweeper.settings import load_settings
    from sweeper.spec import parse_spec

    spec = parse_spec(build_spec(variant, args), base_dir=ROOT)
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(tmp / "results"),
            "SWEEPER_RAY_NUM_CPUS": str(args.cpus),
            **dashboard_setting(args),
        }
    )
    start = time.perf_counter()
    result = run(spec, settings, echo=None)
    wall = time.perf_counter() - start
    frame = result.results
    states = frame["state"].value_counts().to_dict()
    started = pd.to_datetime(frame["started_at"]).min()
    ended = pd.to_datetime(frame["ended_at"]).max()
    best = result.best
    return {
        "status": result.status,
        "wall_s": wall,
        "trials_s": (ended - started).total_seconds(),
        "trials": len(frame),
        "completed": int(states.get("completed", 0)),
        "stopped": int(states.get("stopped", 0)),
        "failed": int(states.get("failed", 0)),
        "epochs": int(frame["steps"].sum()),
        "steps": {row.trial: int(row.steps) for row in frame.itertuples(index=False)},
        "best": None if best is None else float(best["val_accuracy"]),
        "best_trial": None if best is None else str(best["trial"]),
        "best_params": None
        if best is None
        else {name: _plain(best[f"params.{name}"]) for name in SPACE if f"params.{name}" in best},
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value  # numpy scalars to Python's


def child(args: argparse.Namespace) -> int:
    """Run one variant and write its figures as one JSON line on the real stdout."""
    # Ray and PyTorch print to stdout; keep fd 1 for the JSON and send the rest to stderr.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    tmp = Path(tempfile.mkdtemp(prefix=f"sweeper-early-stopping-{args.variant}-"))
    try:
        os.chdir(tmp)  # no sweeper.toml from the caller's folder
        figures = bench(args.variant, args, tmp)
    finally:
        sys.stdout.flush()
        shutil.rmtree(tmp, ignore_errors=True)
    line = json.dumps({"variant": args.variant, **figures}, default=str) + "\n"
    os.write(result_fd, line.encode())
    os.close(result_fd)
    return 0


# -- the parent: one child per variant, then the table --------------------------------------------


def child_command(variant: str, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--variant", variant]
    for option in (
        "epochs",
        "search",
        "trials",
        "seed",
        "concurrency",
        "cpus",
        "asha_grace",
        "reduction_factor",
        "median_grace",
        "median_min_trials",
    ):
        command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    if args.dashboard:
        command.append("--dashboard")
    return command


def run_child(variant: str, args: argparse.Namespace) -> dict[str, Any] | None:
    return _common.run_child(child_command(variant, args), variant, args.verbose)


def _trial_count(args: argparse.Namespace) -> int:
    if args.search == "random":
        return args.trials
    count = 1
    for values in SPACE.values():
        count *= len(values)
    return count


def _rule_text(variant: str, args: argparse.Namespace) -> str:
    rule = early_stopping(variant, args)
    if rule is None:
        return "no early stopping"
    return "{" + ", ".join(f"{k}: {v:g}" if k != "method" else v for k, v in rule.items()) + "}"


def report(results: dict[str, dict[str, Any] | None], args: argparse.Namespace) -> None:
    trials = _trial_count(args)
    search = "grid" if args.search == "grid" else f"random (seed {args.seed})"
    space = ", ".join(f"{name} {values}" for name, values in SPACE.items())
    print(
        f"early stopping: digits MLP ({ENTRYPOINT}), {search} search, {trials} trials x "
        f"{args.epochs} epochs over {space}; concurrency {args.concurrency}, local Ray with "
        f"{args.cpus} CPUs; {os.cpu_count()} cores here; {_common.versions(*PACKAGES)}"
    )
    for name in results:
        print(f"  {name}: {_rule_text(name, args)}")
    print(
        "epochs = sum of results.csv's steps; wall = the run() call, Ray start/stop included; "
        "trials s = first trial start .. last trial end; best = result.best (completed trials)"
    )
    print()
    header = (
        f"{'run':<12}{'epochs':>8}{'share':>7}{'completed':>11}{'stopped':>9}{'wall s':>8}"
        f"{'trials s':>10}{'best':>8}  {'best trial':<34}{'load':>11}"
    )
    print(header)
    print("-" * len(header))
    full = results.get("full")
    for letter, name in VARIANTS.items():
        if name not in results:
            continue
        figures = results[name]
        label = f"({letter}) {name}"
        if figures is None:
            print(f"{label:<12}{'crashed':>8}")
            continue
        share = f"{figures['epochs'] / full['epochs']:.3f}" if full else "-"
        best = "-" if figures["best"] is None else f"{figures['best']:.4f}"
        where = "-"
        if figures["best_trial"]:
            values = ", ".join(f"{k}={v:g}" for k, v in (figures["best_params"] or {}).items())
            where = f"{figures['best_trial']} ({values})"
        load = f"{figures['load_before']:.2f}/{figures['load']:.2f}"
        print(
            f"{label:<12}{figures['epochs']:>8}{share:>7}{figures['completed']:>11}"
            f"{figures['stopped']:>9}{figures['wall_s']:>8.1f}{figures['trials_s']:>10.1f}"
            f"{best:>8}  {where:<34}{load:>11}"
        )
        if figures["failed"]:
            print(f"{'':<12}{figures['failed']} trials FAILED")
    print()
    for name, figures in results.items():
        if figures is None or name == "full":
            continue
        runs = " ".join(str(steps) for _, steps in sorted(figures["steps"].items()))
        print(f"{name}: epochs per trial, trial-0001 onwards: {runs}")
    print()
    asha = results.get("asha")
    median = results.get("median")
    if full and asha:
        share = asha["epochs"] / full["epochs"]
        verdict = "PASS" if share <= EPOCHS_TARGET else "FAIL"
        print(f"ratio asha/full epochs = {share:.3f} (target <= {EPOCHS_TARGET:.2f}: {verdict})")
        if asha["best"] is not None and full["best"] is not None:
            gap = asha["best"] - full["best"]
            verdict = "PASS" if abs(gap) <= ACCURACY_TARGET else "FAIL"
            print(
                f"best accuracy asha - full = {gap:+.4f} (target within "
                f"{ACCURACY_TARGET:.3f}: {verdict})"
            )
        print(
            f"ratio asha/full wall = {asha['wall_s'] / full['wall_s']:.3f}, "
            f"trials only = {asha['trials_s'] / full['trials_s']:.3f}"
        )
    if full and median:
        print(
            f"ratio median/full epochs = {median['epochs'] / full['epochs']:.3f}, best accuracy "
            f"median - full = "
            + (
                f"{median['best'] - full['best']:+.4f}"
                if median["best"] is not None and full["best"] is not None
                else "-"
            )
            + f", wall = {median['wall_s'] / full['wall_s']:.3f}, trials only = "
            f"{median['trials_s'] / full['trials_s']:.3f} (no target)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Epochs saved and accuracy kept by early stopping on a digits sweep."
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (27)")
    parser.add_argument(
        "--search",
        choices=("grid", "random"),
        default=None,
        help="random: --trials seeded points of the space (default); grid: its 27 points in "
        "ascending order",
    )
    parser.add_argument("--trials", type=int, default=None, help="trials of a random search (27)")
    parser.add_argument("--seed", type=int, default=0, help="search.seed (0)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run: --epochs 9 --trials 12 (unless given)",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="trials at a time (2)")
    parser.add_argument(
        "--cpus", type=int, default=None, help="CPUs of each local Ray (default: --concurrency)"
    )
    parser.add_argument("--asha-grace", type=int, default=1, help="ASHA grace_period (1)")
    parser.add_argument(
        "--reduction-factor", type=float, default=3.0, help="ASHA reduction_factor (3)"
    )
    parser.add_argument("--median-grace", type=int, default=3, help="median grace_period (3)")
    parser.add_argument("--median-min-trials", type=int, default=3, help="median min_trials (3)")
    parser.add_argument(
        "--only",
        default="a,b,c",
        help="runs, comma-separated: a/full, b/asha, c/median (all)",
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="leave sweeper's Ray dashboard on ([ray] dashboard; default: off, as for Tune)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show each run's own output (Ray, Tune, ...)"
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS.values()), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.epochs < 2 or args.trials < 1 or args.concurrency < 1:
        parser.error("--epochs must be at least 2, --trials and --concurrency at least 1")
    if not 1 <= args.asha_grace < args.epochs or not 1 <= args.median_grace < args.epochs:
        parser.error("--asha-grace and --median-grace must be at least 1 and below --epochs")
    args.cpus = args.cpus or args.concurrency
    args.chosen = _common.chosen_variants(parser, args.only, VARIANTS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.variant:
        return child(args)
    results: dict[str, dict[str, Any] | None] = {}
    for name in VARIANTS.values():
        if name in args.chosen:
            results[name] = run_child(name, args)
    report(results, args)
    return 1 if any(figures is None for figures in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
