"""The read-only commands on a 1,000-trial sweep: the synthetic sweep ``benchmarks/readonly.py``
times, written with sweeper's own journal and results writers.

What is checked is what they print, against ``results.csv`` read with pandas; how long they
take is the benchmark's business (tests never assert timings).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from sweeper.cli import main
from sweeper.history import load

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 1000


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readonly", ROOT / "benchmarks" / "readonly.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """The sweep's folder; results.csv is the driver's table of it."""
    return _benchmark().build_sweep(tmp_path_factory.mktemp("big"), TRIALS)


@pytest.fixture(scope="module")
def table(big: Path) -> pd.DataFrame:
    return pd.read_csv(big / "results.csv")


def sweeper(big: Path, *args: str) -> Result:
    runner = CliRunner(env={"SWEEPER_RESULTS_DIR": str(big.parent)})
    done = runner.invoke(main, list(args))
    assert done.exit_code == 0, done.output
    return done


def best(table: pd.DataFrame, count: int) -> pd.DataFrame:
    completed = table[table["state"] == "completed"]
    return completed.sort_values("accuracy", ascending=False, kind="stable").head(count)


def test_status_counts_every_trial_and_lists_each(big, table):
    lines = sweeper(big, "status", big.name).stdout.splitlines()
    states = table["state"].value_counts()
    assert states.sum() == TRIALS and set(states.index) == {"completed", "stopped", "failed"}
    assert lines[1] == "status:   completed"
    assert lines[3] == (
        f"trials:   {TRIALS}/{TRIALS} done ({states['completed']} completed, "
        f"{states['stopped']} stopped, {states['failed']} failed)"
    )
    gpu_hours = table["gpu_seconds"].sum() / 3600
    assert lines[4] == f"GPU time: {gpu_hours:.4g} GPU-hours"
    rows = [line.split() for line in lines[8:]]
    assert len(rows) == TRIALS
    assert [row[0] for row in rows] == list(table["trial"])
    assert [row[1] for row in rows] == list(table["state"])
    assert [int(row[2]) for row in rows] == list(table["steps"])
    # The dimensions only (epochs is a constant), in the spec's order.
    first = table.iloc[0]
    assert lines[8].endswith(
        f"lr={first['params.lr']:.4g}, batch={first['params.batch']}, "
        f"layers={first['params.layers']}, dropout={first['params.dropout']:.4g}"
    )


def test_show_lists_the_best_trials(big, table):
    lines = sweeper(big, "show", big.name, "--top", "7").stdout.splitlines()
    top = best(table, 7)
    assert lines[0] == f"sweep {big.name}: completed, {TRIALS}/{TRIALS} trials, max accuracy"
    assert lines[4] == f"best 7 of {TRIALS} trials:"
    ranked = [line for line in lines if re.match(r"\d+\. trial-", line)]
    assert [line.split()[1] for line in ranked] == list(top["trial"])
    for line, (_, row) in zip(ranked, top.iterrows(), strict=True):
        assert f"  accuracy={row['accuracy']:.4g}  (lr=" in line
    folders = [line.split("folder: ")[1] for line in lines if "   folder: " in line]
    assert folders == [str(big / "trials" / name) for name in top["trial"]]
    runs = [line.split()[2] for line in lines if line.startswith("   mlflow: run ")]
    assert runs == list(top["mlflow_run_id"])


def test_list_shows_the_best_value(big, table):
    line = sweeper(big, "list").stdout.splitlines()[1].split()
    top = best(table, 1).iloc[0]
    assert line[:4] == [big.name, "completed", f"{TRIALS}/{TRIALS}", f"accuracy={top.accuracy:.4g}"]


def test_export_is_results_csv(big, table, tmp_path):
    out = tmp_path / "big.csv"
    assert sweeper(big, "export", big.name, "-o", str(out)).stdout == f"{out}\n"
    pd.testing.assert_frame_equal(pd.read_csv(out), table)


def test_logs_of_the_last_trial(big):
    name = f"trial-{TRIALS:04d}"
    log = (big / "trials" / name / "trial.log").read_text()
    assert sweeper(big, "logs", big.name, str(TRIALS)).stdout == log
    assert sweeper(big, "logs", big.name, name, "-n", "1").stdout == "end\n"


def test_the_plain_rows_and_the_dataframes_agree(big, table):
    sweep = load(big)
    assert len(sweep.rows) == TRIALS
    pd.testing.assert_frame_equal(sweep.results, pd.DataFrame(sweep.rows))
    assert list(sweep.top(20)["trial"]) == [row["trial"] for row in sweep.top_rows(20)]
    assert list(sweep.top(20)["trial"]) == list(best(table, 20)["trial"])
    assert sweep.best is not None and sweep.best["trial"] == sweep.top_rows(1)[0]["trial"]
    assert sweep.counts() == table["state"].value_counts().to_dict()
    assert sweep.gpu_hours == pytest.approx(table["gpu_seconds"].sum() / 3600)
