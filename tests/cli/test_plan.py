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
