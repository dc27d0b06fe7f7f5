"""Makespan: how well sweeper keeps its trial slots busy, against plain Ray Tune.

What it measures: N trials (default 100) that each sleep S seconds (default 1), note their own
sleep window and report one metric, on a local Ray with 2 CPUs, 1 CPU per trial, at most 2 at
a time -- 2 slots. Done two ways:

(a) ``sweeper``: ``sweeper.run(spec, settings, echo=None)`` with framework ``python``
    (``benchmarks/_trainables.py:sleep_trial``), a grid over ``i: {int: [1, N]}``,
    ``concurrency: 2``, MLflow tracking on to a fresh sqlite store, results in a temporary
    folder; sweeper starts its own local Ray (``SWEEPER_RAY_NUM_CPUS=2``; its dashboard off
    unless ``--dashboard``, as for Tune).
(b) ``ray_tune``: plain ``tune.Tuner(sleep_tune, ...)`` over ``i: tune.grid_search(...)`` with
    ``max_concurrent_trials=2`` and ``reuse_actors=True`` (as sweeper sets it), Tune's defaults
    otherwise, on ``ray.init(address="local", num_cpus=2, include_dashboard=False)``.

Each trial writes ``time.time()`` before and after its sleep (``_trainables.py``); the script
reads those windows back. Figures:

- ideal = (sum of the trials' own sleep windows) / slots: the makespan if a slot never idled;
- makespan = last window end - first window start: the sweep's time once trials can start;
- **efficiency = ideal / makespan** -- the headline figure and the one the target (>= 0.95)
  applies to;
- total = the whole call, Ray's start and stop included (sweeper: ``run()``, which also opens
  the MLflow store and writes results; Tune: ``ray.init`` .. ``ray.shutdown``), and
  ideal / total, printed as well;
- the gap between a trial's end and the start of the next trial on the same actor (the trials'
  process ids tell the actors apart): what one slot idles per trial. For sweeper it is split
  at the timestamps of ``results.csv`` (see ``GAP_PARTS``): the driver recording the trial's
  end, the driver starting the next trial, and the next trial marking itself running.

The two variants alternate ``--repeat`` times (default 3), so that other work on the machine
weighs on both alike; for each variant the run with the median efficiency counts.

Each variant runs in its own Python process with a clean copy of the environment (as in
``overhead.py``: without ``SWEEPER_*`` and the Ray variables sweeper sets), so nothing sweeper
changes leaks into plain Tune; the child prints its figures as JSON on stdout.

Run it from the repository root::

    python benchmarks/makespan.py                  # 100 trials of 1 s, 3 runs each way: ~7 min
    python benchmarks/makespan.py --trials 20 --repeat 1 --only a

It exits 0 unless a variant crashed; a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import itertools
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
PACKAGES = ("ray", "mlflow")  # whose versions the report names
VARIANTS = {"a": "sweeper", "b": "ray_tune"}
TARGET = 0.95  # ideal / makespan (first trial start to last trial end)


def dashboard_setting(args: argparse.Namespace) -> dict[str, str]:
    """``SWEEPER_RAY_DASHBOARD`` for sweeper's local Ray: off unless ``--dashboard``, like the
    plain runs (``include_dashboard=False``); a fixed dashboard port also collides with any
    other local Ray on the machine. Nothing when this sweeper has no such setting."""
    from sweeper.settings import RaySettings

    if "dashboard" not in RaySettings.model_fields:
        return {}
    return {"SWEEPER_RAY_DASHBOARD": "true" if args.dashboard else "false"}


# -- the two variants (each runs in a child process) -------------------------------------------


def bench_sweeper(args: argparse.Namespace, tmp: Path, windows: Path) -> dict[str, Any]:
    from sweeper.execution._sweep import run
    from sweeper.settings import load_settings
    from sweeper.spec import parse_spec

    spec = parse_spec(
        {
            "name": "makespan",
            "framework": "python",
            "entrypoint": "_trainables.py:sleep_trial",
            "resources": {"cpus": 1, "gpus": 0},
            "parameters": {
                "i": {"int": [1, args.trials]},
                "seconds": args.seconds,
                "windows": str(windows),
            },
            "search": {
                "method": "grid",
                "metric": "slept",
                "mode": "max",
                "concurrency": args.concurrency,
            },
        },
        base_dir=HERE,
    )
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(tmp / "results"),
            "SWEEPER_RAY_NUM_CPUS": str(args.cpus),
            **dashboard_setting(args),
        }
    )
    start = time.time()
    result = run(spec, settings, echo=None)
    end = time.time()
    frame = result.results
    completed = int((frame["state"] == "completed").sum()) if not frame.empty else 0
    return {
        "call_start": start,
        "call_end": end,
        "trials": len(frame),
        "completed": completed,
        "times": _sweeper_times(frame),
    }


def _sweeper_times(frame: Any) -> dict[str, list[float]]:
    """Each trial's ``started_at``, ``running_at`` and ``ended_at`` from results.csv (epoch s):
    when the driver started it, when the trial said it runs, when the driver saw it end."""
    import pandas as pd

    columns = ("started_at", "running_at", "ended_at")
    return {
        str(row["trial"]): [pd.Timestamp(row[name]).timestamp() for name in columns]
        for _, row in frame.iterrows()
        if all(isinstance(row[name], str) for name in columns)
    }


# The parts of a gap between two trials on one actor, from sweeper's own timestamps: the end
# and the start are the driver's (the recorder's on_trial_complete and on_trial_start), the
# "running" mark the trial's (taken before its call to the phase board returns).
GAP_PARTS = {
    "end": "sleep end .. driver records the end (report, storing marks, Tune)",
    "next": "driver records the end .. starts the next trial (callbacks, Tune reuse)",
    "setup": "next trial started .. marks running (actor reset, run_trial, folders)",
    "enter": "marks running .. its sleep starts (board round trip, adapter)",
}


def bench_ray_tune(args: argparse.Namespace, tmp: Path, windows: Path) -> dict[str, Any]:
    import ray
    from ray import tune

    sys.path.insert(0, str(HERE))
    from _trainables import sleep_tune

    start = time.time()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False)
    try:
        tuner = tune.Tuner(
            sleep_tune,
            param_space={
                "i": tune.grid_search(list(range(1, args.trials + 1))),
                "seconds": args.seconds,
                "windows": str(windows),
            },
            tune_config=tune.TuneConfig(
                metric="slept",
                mode="max",
                max_concurrent_trials=args.concurrency,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=str(tmp / "ray_results")),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    end = time.time()
    return {
        "call_start": start,
        "call_end": end,
        "trials": len(grid),
        "completed": len(grid) - grid.num_errors,
    }


BENCHES = {"sweeper": bench_sweeper, "ray_tune": bench_ray_tune}


def summarize(figures: dict[str, Any], windows: Path, slots: int) -> dict[str, Any]:
    """Efficiency figures from the trials' sleep windows and the call's own times."""
    found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(windows.glob("*.json"))]
    busy = sum(w["end"] - w["start"] for w in found)
    first = min(w["start"] for w in found)
    last = max(w["end"] for w in found)
    ideal = busy / slots
    makespan = last - first
    total = figures["call_end"] - figures["call_start"]
    gaps = []
    parts: dict[str, list[float]] = {name: [] for name in GAP_PARTS}
    times = figures.pop("times", None) or {}
    by_actor: dict[int, list[dict[str, Any]]] = {}
    for window in found:
        by_actor.setdefault(window["pid"], []).append(window)
    for runs in by_actor.values():
        runs.sort(key=lambda w: w["start"])
        for done, then in itertools.pairwise(runs):
            gaps.append(then["start"] - done["end"])
            if done["trial"] in times and then["trial"] in times:
                ended = times[done["trial"]][2]
                started, running = times[then["trial"]][:2]
                parts["end"].append(ended - done["end"])
                parts["next"].append(started - ended)
                parts["setup"].append(running - started)
                parts["enter"].append(then["start"] - running)
    # Slot-seconds lost, besides the gaps: actors whose first trial started after the first
    # one, and actors that ended before the last one. With as many actors as slots,
    # busy + gaps + start + end = slots x makespan.
    starts = [min(w["start"] for w in runs) for runs in by_actor.values()]
    ends = [max(w["end"] for w in runs) for runs in by_actor.values()]
    return {
        **figures,
        "gaps_s": sum(gaps),
        "start_idle_s": sum(start - first for start in starts),
        "end_idle_s": sum(last - end for end in ends),
        "windows": len(found),
        "actors": len(by_actor),
        "busy_s": busy,
        "ideal_s": ideal,
        "makespan_s": makespan,
        "total_s": total,
        "before_first_s": first - figures["call_start"],
        "after_last_s": figures["call_end"] - last,
        "efficiency": ideal / makespan,
        "efficiency_total": ideal / total,
        "gap_median_s": statistics.median(gaps) if gaps else None,
        "gap_mean_s": statistics.fmean(gaps) if gaps else None,
        "gap_max_s": max(gaps) if gaps else None,
        "gap_parts_ms": {
            name: [statistics.fmean(values) * 1000, statistics.median(values) * 1000]
            for name, values in parts.items()
            if values
        },
    }


def child(args: argparse.Namespace) -> int:
    """Run one variant and write its figures as one JSON line on the real stdout."""
    # Ray and Tune print to stdout; keep fd 1 for the JSON and send the rest to stderr.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    tmp = Path(tempfile.mkdtemp(prefix=f"sweeper-makespan-{args.variant}-"))
    windows = tmp / "windows"
    windows.mkdir()
    try:
        os.chdir(tmp)  # no sweeper.toml from the caller's folder; Tune writes nothing here
        figures = BENCHES[args.variant](args, tmp, windows)
        figures = summarize(figures, windows, min(args.concurrency, args.cpus))
    finally:
        sys.stdout.flush()
        shutil.rmtree(tmp, ignore_errors=True)
    os.write(result_fd, (json.dumps({"variant": args.variant, **figures}) + "\n").encode())
    os.close(result_fd)
    return 0


# -- the parent: one child per variant, then the table --------------------------------------------


def run_child(variant: str, args: argparse.Namespace) -> dict[str, Any] | None:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--variant",
        variant,
        "--trials",
        str(args.trials),
        "--seconds",
        str(args.seconds),
        "--concurrency",
        str(args.concurrency),
        "--cpus",
        str(args.cpus),
        *(["--dashboard"] if args.dashboard else []),
    ]
    return _common.run_child(command, variant, args.verbose)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _median_run(runs: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The run with the median efficiency (the lower middle one of an even count)."""
    done = sorted((r for r in runs if r is not None), key=lambda r: r["efficiency"])
    return done[(len(done) - 1) // 2] if done else None


def report(results: dict[str, list[dict[str, Any] | None]], args: argparse.Namespace) -> None:
    slots = min(args.concurrency, args.cpus)
    print(
        f"makespan: {args.trials} trials of sleep({args.seconds:g}), {slots} slots "
        f"(concurrency {args.concurrency}, local Ray with {args.cpus} CPUs, 1 CPU per trial); "
        f"{args.repeat} run(s) of each variant, alternating; {os.cpu_count()} cores here; "
        f"{_common.versions(*PACKAGES)}"
    )
    print(
        "ideal = sum of the trials' own sleep windows / slots; makespan = first sleep start .. "
        "last sleep end; efficiency = ideal / makespan (the target's figure); total = the "
        "whole call, Ray start/stop included"
    )
    print(
        "gap = a trial's end to the next trial's start on the same actor; load = the 1-minute "
        "load average before and after the run (other work skews timings)"
    )
    print()
    header = (
        f"{'run':<16}{'done':>9}{'ideal s':>9}{'makespan':>10}{'effic.':>8}"
        f"{'total s':>9}{'ideal/tot':>10}{'gap mean':>10}{'gap max':>9}{'actors':>7}"
        f"{'load':>12}"
    )
    print(header)
    print("-" * len(header))
    for letter, name in VARIANTS.items():
        for i, figures in enumerate(results.get(name, []), 1):
            label = f"({letter}) {name} #{i}"
            if figures is None:
                print(f"{label:<16}{'crashed':>9}")
                continue
            done = f"{figures['completed']}/{args.trials}"
            load = f"{figures['load_before']:.2f}/{figures['load']:.2f}"
            print(
                f"{label:<16}{done:>9}{figures['ideal_s']:>9.2f}{figures['makespan_s']:>10.2f}"
                f"{figures['efficiency']:>8.3f}{figures['total_s']:>9.2f}"
                f"{figures['efficiency_total']:>10.3f}{_seconds(figures['gap_mean_s']):>10}"
                f"{_seconds(figures['gap_max_s']):>9}{figures['actors']:>7}{load:>12}"
            )
    print()
    for name, runs in results.items():
        for i, figures in enumerate(runs, 1):
            if figures is None:
                continue
            print(
                f"{name} #{i}: {figures['before_first_s']:.2f} s from the call to the first "
                f"trial's start, {figures['after_last_s']:.2f} s from the last trial's end to "
                f"the call's end; gap median {_seconds(figures['gap_median_s'])} s; "
                f"slot-seconds lost: {figures['gaps_s']:.2f} in gaps, "
                f"{figures['start_idle_s']:.2f} before an actor's first trial, "
                f"{figures['end_idle_s']:.2f} after its last"
            )
            for part, (mean, median) in (figures.get("gap_parts_ms") or {}).items():
                print(f"  {GAP_PARTS[part]:<74} mean {mean:6.1f} ms, median {median:6.1f} ms")
    print()
    medians = {name: _median_run(runs) for name, runs in results.items()}
    for name, figures in medians.items():
        if figures is None:
            continue
        all_runs = ", ".join(f"{r['efficiency']:.3f}" for r in results[name] if r is not None)
        if name == "sweeper":
            verdict = "PASS" if figures["efficiency"] >= TARGET else "FAIL"
            target = f"target >= {TARGET:.2f}: {verdict}"
        else:
            target = "no target"
        print(
            f"efficiency {name} = {figures['efficiency']:.3f} (median of runs: {all_runs}; "
            f"{target}); whole call {figures['efficiency_total']:.3f}"
        )
    ours = medians.get("sweeper")
    tune = medians.get("ray_tune")
    if ours and tune:
        print(
            f"ratio sweeper/ray_tune efficiency = {ours['efficiency'] / tune['efficiency']:.3f}"
            f" (first start .. last end, medians); whole call: "
            f"{ours['efficiency_total'] / tune['efficiency_total']:.3f}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Makespan of sleep trials on 2 slots: sweeper against plain Ray Tune."
    )
    parser.add_argument("--trials", type=int, default=100, help="trials per variant (100)")
    parser.add_argument("--seconds", type=float, default=1.0, help="each trial's sleep (1)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at a time (2)")
    parser.add_argument(
        "--cpus", type=int, default=None, help="CPUs of each local Ray (default: --concurrency)"
    )
    parser.add_argument(
        "--only", default="a,b", help="variants to run, comma-separated: a/sweeper, b/ray_tune"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each variant, alternating (3)"
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="leave sweeper's Ray dashboard on ([ray] dashboard; default: off, as for Tune)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show each variant's own output (Ray, Tune, ...)"
    )
    parser.add_argument("--variant", choices=sorted(BENCHES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.trials < 2 or args.concurrency < 1 or args.seconds <= 0 or args.repeat < 1:
        parser.error("--trials must be at least 2, --concurrency and --repeat 1, --seconds above 0")
    args.cpus = args.cpus or args.concurrency
    args.chosen = _common.chosen_variants(parser, args.only, VARIANTS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.variant:
        return child(args)
    results: dict[str, list[dict[str, Any] | None]] = {name: [] for name in args.chosen}
    for _ in range(args.repeat):
        for name in args.chosen:
            results[name].append(run_child(name, args))
    report(results, args)
    return 1 if any(figures is None for runs in results.values() for figures in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
