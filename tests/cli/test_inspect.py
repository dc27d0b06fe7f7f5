"""``sweeper list``, ``status``, ``show``, ``export`` and ``logs`` on finished and running sweeps.

The commands run through a throwaway group of the CLI's own kind (one-line errors, exit codes).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from sweeper._journal import FINAL_STATES, SweepState, read_journal
from sweeper.cli._inspect import COMMANDS
from sweeper.cli._main import _Group
from sweeper.execution._sweep import SweepResult

ROOT = Path(__file__).resolve().parents[2]
TALKING = ROOT / "tests" / "_code" / "talking.py"
GROUP = _Group("sweeper", commands=list(COMMANDS))


@dataclass
class Finished:
    result: SweepResult
    results_dir: Path

    def sweeper(self, *args: str) -> Result:
        runner = CliRunner(env={"SWEEPER_RESULTS_DIR": str(self.results_dir)})
        return runner.invoke(GROUP, list(args))


@pytest.fixture(scope="module")
def finished(talking_sweep) -> Finished:
    """The session's finished sweep: trial-0002 fails after a step, trial-0003 is the best."""
    return Finished(talking_sweep.result, talking_sweep.folder / "results")


def test_list_prints_one_aligned_line_per_sweep(finished, tmp_path):
    done = finished.sweeper("list")
    assert done.exit_code == 0, done.output
    header, line = done.output.splitlines()
    started = datetime.fromtimestamp(SweepState.load(finished.result.sweep_dir).created)
    assert header.split() == ["sweep", "status", "trials", "best", "started"]
    assert line.split() == [
        finished.result.sweep,
        "completed",
        "3/3",
        "score=2.25",
        *started.strftime("%Y-%m-%d %H:%M").split(),
    ]
    day = started.strftime("%Y-%m-%d")
    for column, value in [("status", "completed"), ("best", "score="), ("started", day)]:
        assert header.index(column) == line.index(value)  # aligned

    empty = CliRunner(env={"SWEEPER_RESULTS_DIR": str(tmp_path)}).invoke(GROUP, ["list"])
    assert (empty.exit_code, empty.output) == (0, f"no sweeps under {tmp_path}\n")


def test_status_prints_the_sweep_then_each_trial(finished):
    sweep = finished.result.sweep
    done = finished.sweeper("status", sweep)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[:5] == [
        f"sweep:    {sweep}",
        "status:   completed",
        "sessions: 1",
        "trials:   3/3 done (2 completed, 1 failed)",
        "GPU time: 0 GPU-hours",
    ]
    assert re.fullmatch(r"elapsed:  \d+(\.\d)?s|elapsed:  \d+m\d\ds", lines[5])
    assert lines[6] == ""
    assert lines[7].split() == [
        "trial", "state", "step", "score", "peak", "attempts", "duration", "gpu_s", "actor", "pid",
        "params",
    ]  # fmt: skip
    rows = [line.split() for line in lines[8:]]
    assert [row[:6] + row[7:8] + row[10:] for row in rows] == [
        ["trial-0001", "completed", "3", "0.75", "0.75", "1", "0.0", "x=1"],
        ["trial-0002", "failed", "1", "1", "1", "1", "0.0", "x=2"],
        ["trial-0003", "completed", "3", "2.25", "2.25", "1", "0.0", "x=3"],
    ]
    assert all(re.fullmatch(r"\d+\.\ds", row[6]) for row in rows)  # durations
    # The Ray actor of each trial, as Ray's dashboard lists it: the start of its id, its pid.
    frame = finished.result.results.set_index("trial")
    for row in rows:
        assert row[8] == frame.loc[row[0], "actor_id"][:12]
        assert row[9] == str(int(frame.loc[row[0], "pid"]))


def test_status_says_why_a_sweep_ended(finished, tmp_path):
    sweep_dir = tmp_path / finished.result.sweep
    shutil.copytree(finished.result.sweep_dir, sweep_dir)
    state = json.loads((sweep_dir / "state.json").read_text())
    state.update(status="halted", reason="stop requested (sweeper stop)")
    (sweep_dir / "state.json").write_text(json.dumps(state))
    done = CliRunner().invoke(GROUP, ["status", str(sweep_dir)])
    assert done.output.splitlines()[1] == "status:   halted: stop requested (sweeper stop)"


def test_show_prints_the_best_trials_and_where_their_results_are(finished):
    result = finished.result
    state = SweepState.load(result.sweep_dir)
    runs = result.results.set_index("trial")["mlflow_run_id"]
    done = finished.sweeper("show", result.sweep_dir.name, "--top", "2")
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    ui = f"http://127.0.0.1:5000/#/experiments/{state.experiment_id}"
    assert lines[:6] == [
        f"sweep {result.sweep}: completed, 3/3 trials, max score",
        f"folder:  {result.sweep_dir}",
        f"mlflow:  run {state.parent_run_id} (experiment talking) in {state.tracking_uri}",
        f"runs:    {ui}/runs?workflowType=machine_learning (start it with: sweeper ui)",
        "",
        "best 2 of 3 trials:",
    ]
    assert re.fullmatch(r"1\. trial-0003  score=2\.25  \(x=3\)  GPU 0\.0s, \d+\.\ds", lines[6])
    assert lines[7:10] == [
        f"   folder: {result.sweep_dir / 'trials' / 'trial-0003'}",
        f"   mlflow: run {runs['trial-0003']} in {state.tracking_uri}",
        f"           {ui}/runs/{runs['trial-0003']}",
    ]
    assert lines[10].startswith("2. trial-0001  score=0.75  (x=1)  GPU 0.0s, ")
    assert len(lines) == 14


def test_show_names_the_object_store_of_a_synced_sweep(finished, tmp_path):
    sweep_dir = tmp_path / finished.result.sweep
    shutil.copytree(finished.result.sweep_dir, sweep_dir)
    (sweep_dir / "sweep.json").write_text(json.dumps({"results": "s3://bucket/team"}))
    done = CliRunner().invoke(GROUP, ["show", str(sweep_dir), "--top", "1"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[2] == f"store:   s3://bucket/team/{sweep_dir.name}"
    assert lines[8:10] == [
        f"   folder: {sweep_dir / 'trials' / 'trial-0003'}",
        f"   store:  s3://bucket/team/{sweep_dir.name}/trial-0003",
    ]


def test_export_writes_the_table_and_prints_its_path(finished, in_tmp):
    sweep = finished.result.sweep
    done = finished.sweeper("export", sweep)
    assert (done.exit_code, done.output) == (0, f"{sweep}.csv\n")
    table = pd.read_csv(in_tmp / f"{sweep}.csv")
    assert list(table["trial"]) == ["trial-0001", "trial-0002", "trial-0003"]
    assert list(table.columns) == list(pd.read_csv(finished.result.sweep_dir / "results.csv"))

    done = finished.sweeper("export", sweep, "--format", "parquet", "-o", "out/table.data")
    assert (done.exit_code, done.stderr) == (
        2,
        "error: export path must be in an existing folder, got 'out/table.data'; "
        "create out first\n",
    )
    (in_tmp / "out").mkdir()
    done = finished.sweeper("export", sweep, "--format", "parquet", "-o", "out/table.data")
    assert (done.exit_code, done.output) == (0, "out/table.data\n")
    parquet = pd.read_parquet(in_tmp / "out" / "table.data")
    assert list(parquet["trial"]) == list(table["trial"])
    assert list(parquet.columns) == list(table.columns)


def test_export_takes_the_format_from_the_output_suffix(finished, in_tmp):
    done = finished.sweeper("export", finished.result.sweep, "-o", "table.json")
    assert (done.exit_code, done.output) == (0, "table.json\n")
    records = json.loads((in_tmp / "table.json").read_text())
    assert [r["trial"] for r in records] == ["trial-0001", "trial-0002", "trial-0003"]
    assert records[2]["score"] == 2.25


def test_an_unknown_sweep_is_a_one_line_error(finished):
    for command in (["status"], ["show"], ["export"], ["logs"]):
        done = finished.sweeper(*command, "nope", *(["trial-0001"] if command == ["logs"] else []))
        assert done.exit_code == 1
        assert done.stderr == (
            "error: sweep must be a sweep folder, id, id prefix or spec name, got 'nope'; "
            f"sweeps are folders under {finished.results_dir}\n"
        )


def test_logs_prints_a_trials_log(finished):
    sweep = finished.result.sweep
    done = finished.sweeper("logs", sweep, "trial-0003")
    assert done.exit_code == 0
    lines = done.output.splitlines()
    # What the program printed, with sweeper's lines: the start, each report, the end.
    assert lines[0] == "sweeper: trial-0003 attempt 1 starts: x=3, epochs=3, sleep=0.05"
    assert lines[1:7] == [
        "trial-0003 step 1",
        "sweeper: step 1 score=1.5",
        "trial-0003 step 2",
        "sweeper: step 2 score=2",
        "trial-0003 step 3",
        "sweeper: step 3 score=2.25",
    ]
    assert re.fullmatch(ENDED.format(trial="trial-0003"), lines[7])
    assert len(lines) == 8
    done = finished.sweeper("logs", sweep, "3", "--lines", "2")
    assert (done.exit_code, done.output.splitlines()) == (0, lines[-2:])
    done = finished.sweeper("logs", sweep, "trial-0002", "-n", "0")
    assert (done.exit_code, done.output) == (0, "")
    # The trial ended: --follow prints the log and returns.
    done = finished.sweeper("logs", sweep, "trial-0001", "--follow", "-n", "1")
    assert done.exit_code == 0
    assert re.fullmatch(ENDED.format(trial="trial-0001"), done.output.strip())


# sweeper's last line of a trial's log.
ENDED = r"sweeper: {trial} attempt 1 ended after \d+\.\ds"


def test_logs_of_an_unknown_trial_names_the_sweeps_trials(finished):
    sweep = finished.result.sweep
    done = finished.sweeper("logs", sweep, "trial-0042")
    assert done.exit_code == 1
    assert done.stderr == (
        f"error: trial must be one of trial-0001..trial-0003 of sweep {sweep}, "
        f"got 'trial-0042'; list them with: sweeper status {sweep}\n"
    )


def test_logs_follow_returns_when_the_driver_is_gone(finished, tmp_path):
    sweep_dir = tmp_path / finished.result.sweep
    shutil.copytree(finished.result.sweep_dir, sweep_dir)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    state = json.loads((sweep_dir / "state.json").read_text())
    state.update(status="running", pid=process.pid)  # a driver that died
    (sweep_dir / "state.json").write_text(json.dumps(state))
    lines = (sweep_dir / "trials.jsonl").read_text().splitlines()
    entry = json.loads([line for line in lines if '"trial-0003"' in line][-1])
    entry.update(state="running", attempt_started=time.time())
    with open(sweep_dir / "trials.jsonl", "a") as journal:
        journal.write(json.dumps(entry) + "\n")
    done = CliRunner().invoke(GROUP, ["status", str(sweep_dir)])
    assert f"status:   interrupted: its driver (pid {process.pid} on " in done.output
    assert re.search(r"^trial-0003  running ", done.output, re.MULTILINE)
    started = time.time()
    done = CliRunner().invoke(GROUP, ["logs", str(sweep_dir), "3", "-f", "-n", "1"])
    assert done.exit_code == 0
    assert re.fullmatch(ENDED.format(trial="trial-0003"), done.output.strip())
    assert time.time() - started < 5


RUNNING_SPEC = f"""\
name: running
framework: python
entrypoint: {TALKING}:talks
parameters:
  x: {{choice: [1, 3]}}
  epochs: 8
  sleep: 0.4
search: {{method: grid, metric: score, mode: max, concurrency: 1}}
"""


@pytest.mark.slow
def test_status_and_logs_follow_a_running_sweep(tmp_path, cli):
    (tmp_path / "experiment.yml").write_text(RUNNING_SPEC, encoding="utf-8")
    driver = cli.start("run", "experiment.yml", "--quiet")
    runner = CliRunner(env={"SWEEPER_RESULTS_DIR": str(tmp_path / "results")})
    try:

        def trial_running() -> bool:
            sweeps = list((tmp_path / "results").glob("running-*"))
            records = read_journal(sweeps[0]) if sweeps else {}
            return "trial-0001" in records and records["trial-0001"].state == "running"

        cli.wait_for(trial_running, driver)
        (sweep_dir,) = (tmp_path / "results").iterdir()
        log = sweep_dir / "trials" / "trial-0001" / "trial.log"
        status = runner.invoke(GROUP, ["status", sweep_dir.name])
        listed = runner.invoke(GROUP, ["list"])
        shown = runner.invoke(GROUP, ["show", sweep_dir.name])
        exported = runner.invoke(GROUP, ["export", sweep_dir.name, "-o", str(tmp_path / "t.csv")])
        before = log.read_text()
        follow = runner.invoke(GROUP, ["logs", sweep_dir.name, "trial-0001", "--follow"])
        ended = read_journal(sweep_dir)["trial-0001"].state
    finally:
        out, err = driver.communicate(timeout=300)
    assert status.exit_code == 0, status.output
    # Every command reads a sweep while it runs.
    assert listed.exit_code == 0 and listed.output.splitlines()[1].split()[:3] == [
        sweep_dir.name,
        "running",
        "0/2",
    ]
    assert shown.exit_code == 0, shown.output
    assert exported.exit_code == 0, exported.output
    table = pd.read_csv(tmp_path / "t.csv")
    assert table.set_index("trial").loc["trial-0001", "state"] == "running"
    lines = status.output.splitlines()
    assert lines[1] == f"status:   running (driver pid {driver.pid} on {socket.gethostname()})"
    assert lines[3] == "trials:   0/2 done (1 queued, 1 running)"
    assert lines[4].startswith("GPU time: 0 GPU-hours")
    rows = {line.split()[0]: line.split() for line in lines[8:]}
    assert rows["trial-0001"][1] == "running"
    assert rows["trial-0002"][1] == "queued"
    # --follow printed the whole log, then what the trial wrote until it ended, and returned.
    assert follow.exit_code == 0, follow.output
    printed = [line for line in follow.output.splitlines() if not line.startswith("sweeper: ")]
    assert printed == [f"trial-0001 step {i}" for i in range(1, 9)]
    assert sum(1 for line in follow.output.splitlines() if "sweeper: step " in line) == 8
    assert "trial-0001 step 8" not in before
    assert ended in FINAL_STATES
    assert driver.returncode == 0, out + err
    assert "Traceback" not in err
    done = runner.invoke(GROUP, ["status", sweep_dir.name])
    assert done.output.splitlines()[1:4] == [
        "status:   completed",
        "sessions: 1",
        "trials:   2/2 done (2 completed)",
    ]
