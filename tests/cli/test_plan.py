"""``sweeper plan`` prints a seeded random search's points, without Ray: exactly those the
sweep runs (``sweeper.search._space.random_points``, which ``tests/search/test_space.py`` holds
to Tune's draws)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.search._space import random_points
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]


def test_plan_prints_the_points_the_sweep_will_run(tmp_path):
    text = (
        "name: plan\nframework: python\n"
        f"entrypoint: {ROOT / 'tests' / '_code' / 'talking.py'}:talks\n"
        "search: {method: random, metric: m, mode: max, trials: 12, seed: 4}\n"
        "parameters:\n"
        "  opt: {choice: [adam, sgd, rmsprop]}\n"
        "  x: {uniform: [-1.5, 3.0]}\n"
        "  lr: {loguniform: [1.0e-5, 1.0]}\n"
        "  batch: {int: [1, 1024], log: true}\n"
    )
    (tmp_path / "experiment.yml").write_text(text, encoding="utf-8")
    done = CliRunner().invoke(main, ["plan", str(tmp_path / "experiment.yml")])
    assert done.exit_code == 0, done.output
    spec = parse_spec(yaml.safe_load(text), base_dir=tmp_path)  # as the sweep loads it
    lines = done.stdout.split("points (seed 4):\n", 1)[1].splitlines()
    expected = [
        f"  trial-{i:04d}  "
        + ", ".join(f"{k}={f'{v:.6g}' if isinstance(v, float) else v}" for k, v in point.items())
        for i, point in enumerate(random_points(spec), start=1)
    ]
    assert lines == expected


CONDITIONAL = (
    "name: cond\nframework: python\n"
    f"entrypoint: {ROOT / 'tests' / '_code' / 'talking.py'}:talks\n"
    "search:\n  method: grid\n"
    "  metrics: [{name: acc, mode: max}, {name: size_m, mode: min}]\n"
    "  constraints: ['latency_ms < 20']\n"
    "parameters:\n"
    "  optimizer: {choice: [adam, sgd]}\n"
    "  momentum: {choice: [0.5, 0.9], when: {optimizer: sgd}}\n"
    "  lr: {choice: [0.1, 0.01]}\n"
)


def test_plan_explains_a_conditional_space_with_two_objectives(tmp_path):
    (tmp_path / "experiment.yml").write_text(CONDITIONAL, encoding="utf-8")
    done = CliRunner().invoke(main, ["plan", str(tmp_path / "experiment.yml")])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        "sweep cond: grid, max acc, min size_m",
        "objectives: max acc, min size_m (a Pareto front, not one best)",
        "constraints: latency_ms < 20 (infeasible trials are never best; trials are marked "
        "feasible or not)",
        "conditional: momentum when optimizer = 'sgd' (absent from a trial otherwise)",
        "grid: 6 valid combinations of 8 without conditions",
        "trials: 6, concurrency: as resources allow",
        "per trial: 1 cpus, 0 gpus",
        "parameters:",
        "  optimizer  choice('adam', 'sgd')",
        "  momentum   choice(0.5, 0.9)  when optimizer = 'sgd'",
        "  lr         choice(0.1, 0.01)",
        "grid:",
        "  trial-0001  optimizer=adam, lr=0.1",
        "  trial-0002  optimizer=adam, lr=0.01",
        "  trial-0003  optimizer=sgd, momentum=0.5, lr=0.1",
        "  trial-0004  optimizer=sgd, momentum=0.5, lr=0.01",
        "  trial-0005  optimizer=sgd, momentum=0.9, lr=0.1",
        "  trial-0006  optimizer=sgd, momentum=0.9, lr=0.01",
    ]


def test_validate_explains_objectives_and_constraints(tmp_path):
    text = CONDITIONAL.replace("method: grid", "method: optuna\n  sampler: nsgaii\n  trials: 9")
    (tmp_path / "experiment.yml").write_text(text, encoding="utf-8")
    done = CliRunner().invoke(main, ["validate", str(tmp_path / "experiment.yml")])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[1:] == [
        "  objectives: max acc, min size_m (a Pareto front, not one best)",
        "  constraints: latency_ms < 20 (infeasible trials are never best; Optuna's nsgaii "
        "sampler steers away from infeasible trials)",
        "  conditional: momentum when optimizer = 'sgd' (absent from a trial otherwise)",
    ]
