"""Whether sweeper's Optuna searcher finds results as good as plain Optuna's, on test functions.

What it compares: the same optimisation run two ways, for each seed, in one process:

(a) ``sweeper``: sweeper's real searcher, driven in-process as Ray Tune drives it -- a spec
    through :func:`sweeper.spec.parse_spec` (``method: optuna`` with the sampler, the seed and
    the budget), :func:`sweeper.search._searcher.searcher_for` (a ``SweepOptunaSearch`` on
    in-memory Optuna storage), then per trial ``suggest(trial_id)``, ``on_trial_result`` with
    the reported metrics plus ``training_iteration: 1``, and ``on_trial_complete`` with the
    same result. No Ray cluster and no trial process: the test function is evaluated in place.
(b) ``optuna``: plain Optuna as an expert writes it -- ``optuna.create_study`` with the
    direction(s) and the seeded sampler (``TPESampler(seed=seed)``, ``NSGAIISampler(seed=seed)``
    ...), and the ask/tell loop with the same ``FloatDistribution`` per variable.

With ``--concurrency K`` both keep K trials pending: sweeper suggests K trial ids before it
completes the oldest, Optuna asks K times before it tells the oldest; so it also shows whether
pending trials are handled alike.

The test functions (minimised, their standard definitions):

- ``branin``: 2-d, x1 in [-5, 10], x2 in [0, 15]; global minimum 0.397887.
- ``hartmann6``: 6-d in [0, 1]^6; global minimum -3.32237.
- ``zdt1``: two objectives, 6 variables in [0, 1]; the Pareto front is f2 = 1 - sqrt(f1).
- ``dtlz2``: two objectives, 6 variables in [0, 1]; the front is the quarter circle
  f1^2 + f2^2 = 1.

The figure of a run: for one objective, the best value found (lower is better); for two, the
hypervolume of the non-dominated points found (higher is better), exact in 2-D, with a fixed
reference point. For ``zdt1`` it is (1.1, 11): f1 is at most 1 and f2 at most 10 (g <= 10), so
every point counts and a short run's hypervolume is never 0 (with (1.1, 1.1), 190 of 200
random 25-trial fronts get 0); the true front's is 12.1 - 1/3 = 11.7667. For ``dtlz2`` it is
(1.1, 1.1), the usual one for a front inside [0, 1]^2 (3 of 200 random 25-trial fronts get 0);
the true front's is 1.21 - pi/4 = 0.4246.

Two things of Optuna's own to bear in mind when reading the table: NSGA-II and NSGA-III draw
their first generation (``population_size`` 50) at random, so up to 50 trials they are random
search with the same draws as ``random``; and ``qmc`` (unscrambled Sobol) ignores the seed
after its first, random, trial, so its spread over seeds is mostly 0.

The table gives, per function, sampler and budget, the mean ± sample standard deviation of the
figure over the seeds (0, 1, ...) for each side, their difference (sweeper - optuna), the
p-value of Welch's t-test (``-`` when both sides have no spread: nothing to test), and on how
many seeds the two figures are bit-identical: sweeper wraps Optuna with the same seed, so a
sweeper that changes nothing of the search gives ``16/16``.

Run it from the repository root::

    python benchmarks/search_quality.py                      # 25 and 100 trials, 16 seeds,
                                                             # ~1 min on 2 cores
    python benchmarks/search_quality.py --quick              # a few seconds
    python benchmarks/search_quality.py --samplers tpe,random,cmaes --mo-samplers nsgaii,tpe \\
        --concurrency 4 --json quality.json

Below the table: how many runs gave the same objective values trial by trial on both sides,
and the seconds spent in each side (sweeper's includes ``parse_spec`` and Ray's wrapper);
imports happen before the clock starts. ``--json FILE`` writes every seed's figures.

It exits 0, or 1 if a side failed for a row (e.g. a spec sweeper rejects).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common  # benchmarks/_common.py: the scripts run from this folder

PACKAGES = ("optuna", "ray", "scipy", "numpy")  # whose versions the report names
SO_SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
MO_SAMPLERS = ("nsgaii", "nsgaiii", "tpe", "random", "gp", "qmc")
TRAIN = "def main(params, ctx):\n    pass\n"  # the spec's entry point: parsed, never run


# -- the test functions ------------------------------------------------------------------------


def branin(x1: float, x2: float) -> float:
    """The Branin-Hoo function; its minimum 0.397887 is at (-pi, 12.275), (pi, 2.275) and
    (9.42478, 2.475)."""
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


HARTMANN6_ALPHA = (1.0, 1.2, 3.0, 3.2)
HARTMANN6_A = (
    (10.0, 3.0, 17.0, 3.5, 1.7, 8.0),
    (0.05, 10.0, 17.0, 0.1, 8.0, 14.0),
    (3.0, 3.5, 1.7, 10.0, 17.0, 8.0),
    (17.0, 8.0, 0.05, 10.0, 0.1, 14.0),
)
HARTMANN6_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)
HARTMANN6_ARGMIN = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)


def hartmann6(*x: float) -> float:
    """The 6-d Hartmann function on [0, 1]^6; its minimum -3.32237 is at
    :data:`HARTMANN6_ARGMIN`."""
    return -sum(
        alpha * math.exp(-sum(a * (xj - p) ** 2 for a, xj, p in zip(row, x, centre, strict=True)))
        for alpha, row, centre in zip(HARTMANN6_ALPHA, HARTMANN6_A, HARTMANN6_P, strict=True)
    )


def zdt1(*x: float) -> tuple[float, float]:
    """ZDT1 (Zitzler, Deb and Thiele 2000) on [0, 1]^n: f1 = x1, g = 1 + 9 * mean(x2..xn),
    f2 = g * (1 - sqrt(f1 / g)). The front (g = 1: x2..xn = 0) is f2 = 1 - sqrt(f1)."""
    f1 = x[0]
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return f1, g * (1 - math.sqrt(f1 / g))


def dtlz2(*x: float) -> tuple[float, float]:
    """DTLZ2 (Deb, Thiele, Laumanns and Zitzler 2002) with two objectives on [0, 1]^n:
    g = sum((xi - 0.5)^2 for x2..xn), f1 = (1 + g) cos(x1 pi / 2), f2 = (1 + g) sin(x1 pi / 2).
    The front (g = 0: x2..xn = 0.5) is the quarter circle f1^2 + f2^2 = 1."""
    g = sum((xi - 0.5) ** 2 for xi in x[1:])
    angle = x[0] * math.pi / 2
    return (1 + g) * math.cos(angle), (1 + g) * math.sin(angle)


@dataclass(frozen=True)
class Problem:
    """A test function with its box, its objectives and how a run's figure is judged.

    Attributes:
        name: The function's name on the command line and in the table.
        function: Takes the variables in order; returns a float, or a tuple of objectives.
        bounds: ``(low, high)`` of each variable, ``x1``, ``x2``, ... in order.
        objectives: 1, or 2 (both minimised).
        reference: The hypervolume's reference point (two objectives only).
        optimum: The best figure there is: the global minimum, or the true front's hypervolume.
    """

    name: str
    function: Callable[..., float | tuple[float, float]]
    bounds: tuple[tuple[float, float], ...]
    objectives: int
    reference: tuple[float, float] | None
    optimum: float

    @property
    def names(self) -> list[str]:
        """The variables' names: ``x1``, ``x2``, ..."""
        return [f"x{i}" for i in range(1, len(self.bounds) + 1)]

    @property
    def box(self) -> dict[str, tuple[float, float]]:
        """Each variable's name and ``(low, high)``."""
        return dict(zip(self.names, self.bounds, strict=True))

    @property
    def metrics(self) -> list[str]:
        """The metric keys a trial reports: ``value``, or ``f1`` and ``f2``."""
        return ["value"] if self.objectives == 1 else [f"f{i + 1}" for i in range(self.objectives)]

    def evaluate(self, x: Sequence[float]) -> tuple[float, ...]:
        """The objectives at ``x``, always as a tuple."""
        value = self.function(*x)
        return value if isinstance(value, tuple) else (value,)

    def figure(self, values: list[tuple[float, ...]]) -> float:
        """A run's figure: the best value found, or the hypervolume of the points found."""
        if self.objectives == 1:
            return min(v[0] for v in values)
        assert self.reference is not None
        return hypervolume_2d([(v[0], v[1]) for v in values], self.reference)


UNIT6 = ((0.0, 1.0),) * 6
PROBLEMS = {
    p.name: p
    for p in (
        Problem("branin", branin, ((-5.0, 10.0), (0.0, 15.0)), 1, None, 0.397887),
        Problem("hartmann6", hartmann6, UNIT6, 1, None, -3.32237),
        Problem("zdt1", zdt1, UNIT6, 2, (1.1, 11.0), 12.1 - 1 / 3),
        Problem("dtlz2", dtlz2, UNIT6, 2, (1.1, 1.1), 1.21 - math.pi / 4),
    )
}


def hypervolume_2d(points: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """The exact area that ``points`` dominate (both objectives minimised) inside the box up to
    ``reference``: the points sorted by f1, each one's rectangle to the reference, less what the
    earlier ones already cover. Points not strictly better than the reference in both objectives
    add nothing."""
    r1, r2 = reference
    area = 0.0
    lowest = r2  # the smallest f2 seen so far: the staircase's height
    for f1, f2 in sorted(p for p in points if p[0] < r1 and p[1] < r2):
        if f2 < lowest:
            area += (r1 - f1) * (lowest - f2)
            lowest = f2
    return area


# -- the two sides -----------------------------------------------------------------------------


def sweeper_spec(problem: Problem, sampler: str, trials: int, seed: int, base_dir: Path) -> Any:
    """The spec of the sweep: the problem's box as ``uniform`` parameters, ``method: optuna``.

    ``base_dir`` must hold ``train.py`` (:data:`TRAIN`), which ``parse_spec`` checks.
    """
    from sweeper.spec import parse_spec

    search: dict[str, Any] = {"method": "optuna", "sampler": sampler, "trials": trials}
    if problem.objectives == 1:
        search.update(metric=problem.metrics[0], mode="min")
    else:
        search["metrics"] = [{"name": m, "mode": "min"} for m in problem.metrics]
    search["seed"] = seed
    parameters = {n: {"uniform": [lo, hi]} for n, (lo, hi) in problem.box.items()}
    return parse_spec(
        {
            "name": "bench",
            "framework": "python",
            "entrypoint": "train.py:main",
            "parameters": parameters,
            "search": search,
        },
        base_dir=base_dir,
    )


def run_sweeper(
    problem: Problem, sampler: str, trials: int, seed: int, concurrency: int, base_dir: Path
) -> list[tuple[float, ...]]:
    """One run through sweeper's searcher, called as Ray Tune calls it.

    Returns:
        Each trial's objectives, in the order the trials were completed.
    """
    from sweeper import _compat
    from sweeper.search._searcher import searcher_for

    searcher = searcher_for(sweeper_spec(problem, sampler, trials, seed, base_dir), concurrency)
    directions = len(_compat.searcher_study(searcher).directions)
    if directions != problem.objectives:
        # A spec whose metrics parse but whose searcher optimizes the first one alone.
        raise RuntimeError(
            f"sweeper's Optuna study has {directions} direction(s) for {problem.objectives} "
            "objectives"
        )
    pending: deque[tuple[str, dict[str, Any]]] = deque()
    values: list[tuple[float, ...]] = []
    asked = 0
    while len(values) < trials:
        while len(pending) < concurrency and asked < trials:
            trial_id = f"t{asked:05d}"
            config = searcher.suggest(trial_id)
            if config is None:
                raise RuntimeError(f"the searcher suggested nothing for trial {asked + 1}")
            pending.append((trial_id, config))
            asked += 1
        trial_id, config = pending.popleft()
        value = problem.evaluate([config[n] for n in problem.names])
        result = {**dict(zip(problem.metrics, value, strict=True)), "training_iteration": 1}
        searcher.on_trial_result(trial_id, result)  # what Tune does on the trial's report
        searcher.on_trial_complete(trial_id, result)
        values.append(value)
    return values


def optuna_sampler(name: str, seed: int) -> Any:
    """Optuna's own sampler of that name, seeded."""
    import optuna

    samplers = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
        "nsgaii": optuna.samplers.NSGAIISampler,
        "nsgaiii": optuna.samplers.NSGAIIISampler,
    }
    return samplers[name](seed=seed)


def run_optuna(
    problem: Problem, sampler: str, trials: int, seed: int, concurrency: int
) -> list[tuple[float, ...]]:
    """One run through plain Optuna's ask and tell.

    Returns:
        Each trial's objectives, in the order the trials were told.
    """
    import optuna
    from optuna.distributions import FloatDistribution

    if problem.objectives == 1:
        study = optuna.create_study(direction="minimize", sampler=optuna_sampler(sampler, seed))
    else:
        study = optuna.create_study(
            directions=["minimize"] * problem.objectives, sampler=optuna_sampler(sampler, seed)
        )
    space = {
        n: FloatDistribution(lo, hi)
        for n, (lo, hi) in zip(problem.names, problem.bounds, strict=True)
    }
    pending: deque[optuna.Trial] = deque()
    values: list[tuple[float, ...]] = []
    asked = 0
    while len(values) < trials:
        while len(pending) < concurrency and asked < trials:
            pending.append(study.ask(space))
            asked += 1
        trial = pending.popleft()
        value = problem.evaluate([trial.params[n] for n in problem.names])
        study.tell(trial, value[0] if problem.objectives == 1 else list(value))
        values.append(value)
    return values


# -- one row of the table: a function, a sampler, a budget, over the seeds ---------------------


def bit_identical(a: float, b: float) -> bool:
    """Whether two floats are the same bits (``0.0`` and ``-0.0`` are not)."""
    return a.hex() == b.hex()


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The two-sided p-value of Welch's t-test; ``None`` when both samples have no spread."""
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return None
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def run_row(
    problem: Problem,
    sampler: str,
    trials: int,
    seeds: Sequence[int],
    concurrency: int,
    base_dir: Path,
) -> dict[str, Any]:
    """Both sides on every seed, alternating (sweeper, then Optuna, seed by seed), so load
    on the machine falls on both alike.

    Returns:
        The row's raw figures: per seed each side's figure, whether each side's trials gave the
        same objective values in the same order (``same_trials``), and the seconds each took;
        ``error`` instead of the sweeper figures if sweeper failed.
    """
    row: dict[str, Any] = {
        "function": problem.name,
        "sampler": sampler,
        "trials": trials,
        "concurrency": concurrency,
        "seeds": list(seeds),
        "optimum": problem.optimum,
        "sweeper": [],
        "optuna": [],
        "same_trials": [],
        "sweeper_s": 0.0,
        "optuna_s": 0.0,
    }
    for seed in seeds:
        start = time.perf_counter()
        try:
            ours = run_sweeper(problem, sampler, trials, seed, concurrency, base_dir)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            return row
        middle = time.perf_counter()
        theirs = run_optuna(problem, sampler, trials, seed, concurrency)
        row["sweeper_s"] += middle - start
        row["optuna_s"] += time.perf_counter() - middle
        row["sweeper"].append(problem.figure(ours))
        row["optuna"].append(problem.figure(theirs))
        row["same_trials"].append(ours == theirs)
    a, b = row["sweeper"], row["optuna"]
    row["identical"] = sum(bit_identical(x, y) for x, y in zip(a, b, strict=True))
    row["p"] = welch_p(a, b)
    return row


# -- the report --------------------------------------------------------------------------------


def _mean_sd(values: Sequence[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the rows."""
    lines = [
        "| function | sampler | trials | sweeper mean ± sd | optuna mean ± sd | diff | p "
        "| identical |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        problem = PROBLEMS[row["function"]]
        label = f"{problem.name} ({'best ↓' if problem.objectives == 1 else 'HV ↑'})"
        head = f"| {label} | {row['sampler']} | {row['trials']} |"
        if "error" in row:
            lines.append(f"{head} sweeper failed: {row['error']} | | | | |")
            continue
        a, b = row["sweeper"], row["optuna"]
        diff = statistics.mean(a) - statistics.mean(b)
        p = "-" if row["p"] is None else f"{row['p']:.2g}"
        lines.append(
            f"{head} {_mean_sd(a)} | {_mean_sd(b)} | {diff:+.4f} | {p} "
            f"| {row['identical']}/{len(a)} |"
        )
    return "\n".join(lines)


def report(rows: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> None:
    print(
        f"search quality: sweeper's Optuna searcher against plain Optuna, {len(args.seeds)} "
        f"seeds ({args.seeds[0]}..{args.seeds[-1]}), concurrency {args.concurrency}; "
        f"{os.cpu_count()} cores here; {_common.versions(*PACKAGES)}"
    )
    references = ", ".join(
        f"{p.name} {p.reference}" for p in PROBLEMS.values() if p.reference is not None
    )
    optima = ", ".join(f"{p.name} {p.optimum:.6g}" for p in PROBLEMS.values())
    print(
        "figure: best value found (best, lower is better) or hypervolume of the points found "
        f"(HV, higher is better; reference points {references}); best possible: {optima}"
    )
    print(
        "diff = sweeper mean - optuna mean; p = Welch's t-test (- : no spread on either side); "
        "identical = seeds whose two figures are bit-identical"
    )
    print()
    print(table(rows))
    print()
    same = [r for r in rows if "error" not in r]
    if same:
        trials = sum(sum(r["same_trials"]) for r in same)
        runs = sum(len(r["same_trials"]) for r in same)
        ours = sum(r["sweeper_s"] for r in same)
        theirs = sum(r["optuna_s"] for r in same)
        ratio = f" (ratio {ours / theirs:.2f})" if theirs > 0 else ""
        print(
            f"runs whose every trial gave the same values in the same order on both sides: "
            f"{trials}/{runs}; time in the sweeper side {ours:.1f} s, in plain Optuna "
            f"{theirs:.1f} s{ratio}"
        )
    print(f"wall time: {wall:.1f} s")


# -- the command line --------------------------------------------------------------------------


def _names(
    parser: argparse.ArgumentParser, option: str, value: str, allowed: Sequence[str]
) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    for name in names:
        if name not in allowed:
            parser.error(f"{option} takes {', '.join(allowed)}, got {name!r}")
    return list(dict.fromkeys(names))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Search quality on test functions: sweeper's Optuna searcher against "
        "plain Optuna, seed by seed."
    )
    parser.add_argument(
        "--functions",
        default=",".join(PROBLEMS),
        help=f"test functions, comma-separated ({','.join(PROBLEMS)})",
    )
    parser.add_argument(
        "--samplers",
        default="tpe",
        help=f"single-objective samplers, comma-separated: {', '.join(SO_SAMPLERS)} (tpe; "
        "gp is slow)",
    )
    parser.add_argument(
        "--mo-samplers",
        default="nsgaii,tpe",
        help=f"two-objective samplers, comma-separated: {', '.join(MO_SAMPLERS)} (nsgaii,tpe)",
    )
    parser.add_argument("--trials", help="budgets, comma-separated (25,100)")
    parser.add_argument("--seeds", type=int, help="seeds per row: 0, 1, ... (16)")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="trials pending at once on both sides (1)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny run: 12 trials, 3 seeds, unless --trials or --seeds say otherwise",
    )
    parser.add_argument("--json", type=Path, help="write the per-seed figures to this file")
    args = parser.parse_args(argv)
    args.functions = _names(parser, "--functions", args.functions, list(PROBLEMS))
    args.samplers = _names(parser, "--samplers", args.samplers, SO_SAMPLERS)
    args.mo_samplers = _names(parser, "--mo-samplers", args.mo_samplers, MO_SAMPLERS)
    trials = args.trials or ("12" if args.quick else "25,100")
    try:
        args.trials = [int(part) for part in trials.split(",")]
    except ValueError:
        parser.error(f"--trials takes whole numbers, comma-separated, got {trials!r}")
    if args.seeds is None:
        args.seeds = 3 if args.quick else 16
    if min(args.trials) < 1 or args.seeds < 2 or args.concurrency < 1:
        parser.error("--trials must be at least 1, --seeds 2 (for a spread), --concurrency 1")
    args.seeds = list(range(args.seeds))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import optuna

    importlib.import_module("sweeper.search._searcher")  # Ray Tune's: before the clock starts

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # both sides: the same Optuna
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="search-quality-") as tmp:
        base_dir = Path(tmp)
        (base_dir / "train.py").write_text(TRAIN, encoding="utf-8")
        for name in args.functions:
            problem = PROBLEMS[name]
            samplers = args.samplers if problem.objectives == 1 else args.mo_samplers
            for sampler in samplers:
                for trials in args.trials:
                    print(f"{name} {sampler} {trials} trials ...", file=sys.stderr, flush=True)
                    rows.append(
                        run_row(problem, sampler, trials, args.seeds, args.concurrency, base_dir)
                    )
    wall = time.perf_counter() - start
    report(rows, args, wall)
    if args.json:
        figures = {"concurrency": args.concurrency, "wall_s": wall, "rows": rows}
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
