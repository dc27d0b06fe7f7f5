"""benchmarks/search_quality.py: its test functions, its hypervolume, and a tiny run of both
sides (sweeper's searcher and plain Optuna) in-process.

What the benchmark's table says about sweeper is its own business; checked here is that the
figures it builds on are right (the functions' known optima, an exact 2-D hypervolume) and that
a run through sweeper's searcher yields sound ones. No timings are asserted.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = ROOT / "benchmarks" / "search_quality.py"
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(path.parent))  # it imports benchmarks/_common.py
        spec = importlib.util.spec_from_file_location("search_quality", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        patch.setitem(sys.modules, spec.name, module)  # @dataclass looks its module up
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, bench) -> Path:
    """A folder with the spec's entry point, which parse_spec checks."""
    folder = tmp_path_factory.mktemp("quality")
    (folder / "train.py").write_text(bench.TRAIN, encoding="utf-8")
    return folder


def test_branin_and_hartmann6_have_their_known_minima(bench):
    for x1, x2 in ((math.pi, 2.275), (-math.pi, 12.275), (9.42478, 2.475)):
        assert bench.branin(x1, x2) == pytest.approx(0.397887, abs=1e-6)
    assert bench.hartmann6(*bench.HARTMANN6_ARGMIN) == pytest.approx(-3.32237, abs=1e-5)
    rng = random.Random(0)
    for _ in range(200):  # nowhere in the box below the minimum
        assert bench.branin(rng.uniform(-5, 10), rng.uniform(0, 15)) >= 0.397887 - 1e-6
        assert bench.hartmann6(*(rng.random() for _ in range(6))) >= -3.32237 - 1e-5
    assert bench.branin(0.0, 0.0) == pytest.approx(55.602112642270264)


def test_zdt1_and_dtlz2_fronts(bench):
    for f1 in (0.0, 0.04, 0.25, 0.5, 1.0):
        assert bench.zdt1(f1, 0, 0, 0, 0, 0) == pytest.approx((f1, 1 - math.sqrt(f1)))
        f1_, f2 = bench.dtlz2(f1, 0.5, 0.5, 0.5, 0.5, 0.5)
        assert f1_**2 + f2**2 == pytest.approx(1.0)
    # Off the front: g = 1 + 9 * mean(x2..x6) = 10 at x2..x6 = 1, so f2 = 10 at f1 = 0.
    assert bench.zdt1(0, 1, 1, 1, 1, 1) == pytest.approx((0.0, 10.0))
    assert bench.dtlz2(0, 1, 1, 1, 1, 1) == pytest.approx((2.25, 0.0), abs=1e-12)


def test_hypervolume_of_a_hand_computed_front(bench):
    front = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)]
    # Slabs from below: (4 - 1) * (4 - 3) + (4 - 2) * (3 - 2) + (4 - 3) * (2 - 1).
    assert bench.hypervolume_2d(front, (4.0, 4.0)) == 6.0
    # Dominated points, a duplicate, and points not inside the reference add nothing.
    noisy = [*front, (3.0, 3.0), (2.0, 2.0), (5.0, 0.0), (0.0, 4.0), (2.5, 3.5)]
    assert bench.hypervolume_2d(noisy, (4.0, 4.0)) == 6.0
    assert bench.hypervolume_2d([], (4.0, 4.0)) == 0.0
    assert bench.hypervolume_2d([(0.0, 0.0)], (1.1, 11.0)) == pytest.approx(12.1)
    # A dense sample of each true front comes just under the optimum the report names.
    for name, points in (
        ("zdt1", [bench.zdt1(i / 2000, 0, 0, 0, 0, 0) for i in range(2001)]),
        ("dtlz2", [bench.dtlz2(i / 2000, 0.5, 0.5, 0.5, 0.5, 0.5) for i in range(2001)]),
    ):
        problem = bench.PROBLEMS[name]
        volume = bench.hypervolume_2d(points, problem.reference)
        assert problem.optimum - 1e-3 < volume <= problem.optimum


def test_a_tiny_branin_run_through_sweeper(bench, base_dir):
    branin = bench.PROBLEMS["branin"]
    row = bench.run_row(branin, "tpe", 8, [0, 1], 1, base_dir)
    assert "error" not in row
    assert len(row["sweeper"]) == len(row["optuna"]) == 2
    for seed, best in zip(row["seeds"], row["sweeper"], strict=True):
        worst_random = max(v[0] for v in bench.run_optuna(branin, "random", 8, seed, 1))
        assert math.isfinite(best)
        assert 0.397887 - 1e-6 <= best <= worst_random
    assert 0 <= row["identical"] <= 2
    assert "| branin (best ↓) | tpe | 8 |" in bench.table([row])
    # Three pending at once: every trial is still asked, evaluated in the box and told.
    values = bench.run_sweeper(branin, "tpe", 8, 0, 3, base_dir)
    assert len(values) == 8 and all(0.397887 - 1e-6 <= v[0] < 400 for v in values)


def test_a_tiny_zdt1_run_through_sweeper(bench, base_dir):
    zdt1 = bench.PROBLEMS["zdt1"]
    row = bench.run_row(zdt1, "nsgaii", 8, [0, 1], 1, base_dir)
    assert "error" not in row, row.get("error")
    for volume in (*row["sweeper"], *row["optuna"]):
        assert 0 < volume <= zdt1.optimum  # every point is inside the reference (1.1, 11)


def test_the_command_line_writes_its_table_and_json(bench, tmp_path, capsys):
    out = tmp_path / "quality.json"
    code = bench.main(["--quick", "--functions", "branin", "--trials", "6", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "| function | sampler | trials | sweeper mean ± sd | optuna mean ± sd |" in printed
    assert "| branin (best ↓) | tpe | 6 |" in printed
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert [(r["function"], r["trials"], len(r["sweeper"])) for r in rows] == [("branin", 6, 3)]
