"""``sweeper.history``: a sweep's folder read back from disk, finished, interrupted or running."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from sweeper._journal import SweepState
from sweeper.errors import NotFoundError, SpecError, SweeperError, SweepError, UsageError
from sweeper.execution._sweep import SweepResult
from sweeper.history import Sweep, export, list_sweeps, load
from sweeper.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TALKING = ROOT / "tests" / "_code" / "talking.py"


@dataclass
class Finished:
    result: SweepResult
    settings: Settings
    folder: Path  # the test module's own folder, outside the results


@pytest.fixture(scope="module")
def finished(talking_sweep) -> Finished:
    """The session's finished sweep: trial-0002 fails, trial-0003 is the best."""
    return Finished(talking_sweep.result, talking_sweep.settings, talking_sweep.folder)


def copy_sweep(finished: Finished, root: Path, name: str | None = None) -> Path:
    target = root / (name or finished.result.sweep)
    shutil.copytree(finished.result.sweep_dir, target)
    return target


def edit_state(sweep_dir: Path, **changes: object) -> None:
    path = sweep_dir / "state.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_finished_sweep_reads_back_as_its_result(finished):
    result = finished.result
    sweep = load(result.sweep, finished.settings)
    assert isinstance(sweep, Sweep)
    assert (sweep.sweep, sweep.sweep_dir, sweep.status) == (
        result.sweep,
        result.sweep_dir,
        "completed",
    )
    assert load(result.sweep_dir).sweep == result.sweep  # a folder works without settings
    assert (sweep.metric, sweep.mode) == ("score", "max")
    assert sweep.spec is not None and sweep.spec.name == "talking"
    assert sweep.state.parent_run_id == result.parent_run_id
    # Built from the journal, the table is results.csv's, MLflow run ids included.
    pd.testing.assert_frame_equal(sweep.results, result.results)
    assert list(sweep.results["state"]) == ["completed", "failed", "completed"]
    assert sweep.results["mlflow_run_id"].notna().all()
    assert sweep.best is not None and sweep.best["trial"] == "trial-0003"
    assert sweep.best["score"] == pytest.approx(2.25)
    assert list(sweep.top(5)["trial"]) == ["trial-0003", "trial-0001"]
    # The same table as plain rows, for what must answer without pandas.
    assert pd.DataFrame(sweep.rows).equals(sweep.results)
    assert [row["trial"] for row in sweep.top_rows(5)] == ["trial-0003", "trial-0001"]
    assert (sweep.trials_done, sweep.trials_total) == (3, 3)
    assert sweep.counts() == {"completed": 2, "failed": 1}
    assert sweep.gpu_hours == pytest.approx(result.gpu_hours)
    assert sweep.results_uri is None
    assert sweep.trial_dir("trial-0001") == result.sweep_dir / "trials" / "trial-0001"
    assert sweep.log_path(3) == result.sweep_dir / "trials" / "trial-0003" / "trial.log"
    printed = sweep.log_path("0003").read_text().splitlines()
    assert [line for line in printed if not line.startswith("sweeper: ")] == [
        "trial-0003 step 1",
        "trial-0003 step 2",
        "trial-0003 step 3",
    ]


def test_an_unknown_trial_names_the_sweeps_trials(finished):
    sweep = load(finished.result.sweep_dir)
    with pytest.raises(NotFoundError) as caught:
        sweep.trial_dir("trial-0009")
    assert str(caught.value) == (
        f"trial must be one of trial-0001..trial-0003 of sweep {sweep.sweep}, got 'trial-0009'; "
        f"list them with: sweeper status {sweep.sweep}"
    )
    with pytest.raises(NotFoundError, match=r"got '\.\./state\.json'"):
        sweep.log_path("../state.json")


def test_an_unknown_sweep_is_not_found_and_a_damaged_one_an_error(finished, tmp_path):
    with pytest.raises(
        NotFoundError, match="sweep must be a sweep folder, id, id prefix or spec name, got 'nope'"
    ):
        load("nope", finished.settings)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "state.json").write_text("{not json")
    with pytest.raises(SweepError, match="sweep state must be readable JSON"):
        load(tmp_path / "broken")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "state.json must hold a JSON object, got list"),
        (
            '{"sweep": "s", "spec": "x", "created": "yesterday"}',
            "state.json field created must be int or float, got 'yesterday'",
        ),
        ('{"sweep": 5, "spec": "x"}', "state.json field sweep must be text, got 5"),
    ],
)
def test_a_damaged_state_is_skipped_and_named_by_list(finished, tmp_path, text, why):
    root = tmp_path / "results"
    shutil.copytree(finished.result.sweep_dir, root / "good")
    (root / "bad").mkdir()
    (root / "bad" / "state.json").write_text(text)
    skipped: list = []
    assert [s.sweep_dir.name for s in list_sweeps(root=root, skipped=skipped)] == ["good"]
    assert skipped == [
        (root / "bad", f"sweep state must be readable JSON, got {why} ({root / 'bad/state.json'})")
    ]


def test_without_a_journal_the_results_come_from_results_csv(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path)
    (sweep_dir / "trials.jsonl").unlink()
    sweep = load(sweep_dir)
    pd.testing.assert_frame_equal(sweep.results, pd.read_csv(sweep_dir / "results.csv"))
    assert sweep.best["trial"] == "trial-0003"
    assert sweep.trials_done == 3
    assert pd.DataFrame(sweep.rows).equals(sweep.results)  # NaN for a gap, as pandas reads it
    assert [row["trial"] for row in sweep.top_rows()] == ["trial-0003", "trial-0001"]
    assert sweep.gpu_hours == pytest.approx(finished.result.gpu_hours)


def test_a_spec_whose_files_moved_still_gives_metric_results_and_best(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path)
    spec = sweep_dir / "spec.yml"
    spec.write_text(spec.read_text().replace(str(TALKING), str(tmp_path / "gone.py")))
    sweep = load(sweep_dir)
    assert sweep.spec is None
    assert (sweep.metric, sweep.mode) == ("score", "max")
    assert sweep.best["trial"] == "trial-0003"
    assert sweep.trials_total == 3  # from the grid's points.json
    # Its own fields need no files: the search's dimensions are still known (not the constants).
    assert sweep.spec_fields.name == "talking"
    assert sweep.dimensions == ["x"]
    (sweep_dir / "points.json").unlink()
    assert load(sweep_dir).trials_total == 3  # the grid's size, from the spec's fields


def test_a_spec_that_is_not_valid_is_a_spec_error_of_spec_fields(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path)
    spec = sweep_dir / "spec.yml"
    spec.write_text(spec.read_text().replace("mode: max", "mode: most"))
    sweep = load(sweep_dir)
    with pytest.raises(SpecError) as caught:
        sweep.spec_fields  # noqa: B018 - a property that raises
    assert str(caught.value).startswith(
        "the sweep's spec must be valid, got ValidationError: 1 validation error for Spec"
    )
    assert caught.value.file == str(spec)
    assert sweep.dimensions is None
    assert sweep.trials_done == 3  # the rest reads on


def test_mlflow_run_ids_are_read_from_results_csv_as_text(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path)
    table = pd.read_csv(sweep_dir / "results.csv")
    table.loc[0, "mlflow_run_id"] = "0123456789"  # all digits: still an id, not a number
    table.to_csv(sweep_dir / "results.csv", index=False)
    rows = load(sweep_dir).rows
    assert [row["mlflow_run_id"] for row in rows] == ["0123456789", *table["mlflow_run_id"][1:]]
    (sweep_dir / "results.csv").unlink()
    assert [row["mlflow_run_id"] for row in load(sweep_dir).rows] == [None, None, None]


def test_a_trial_with_a_folder_is_found_without_reading_the_journal(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path)
    sweep = load(sweep_dir)
    assert sweep.log_path(2) == sweep_dir / "trials" / "trial-0002" / "trial.log"
    assert "rows" not in sweep.__dict__ and "records" not in sweep.__dict__


def test_a_sweep_synced_to_an_object_store_says_where(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path)
    (sweep_dir / "sweep.json").write_text(json.dumps({"results": "s3://bucket/team/sweeps"}))
    assert load(sweep_dir).results_uri == f"s3://bucket/team/sweeps/{sweep_dir.name}"


def test_list_sweeps_is_newest_first_and_skips_unreadable_folders(finished, tmp_path):
    older = copy_sweep(finished, tmp_path, "history-older")
    newer = copy_sweep(finished, tmp_path, "history-newer")
    edit_state(older, sweep="history-older", created=1_000.0)
    edit_state(newer, sweep="history-newer", created=2_000.0)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "state.json").write_text("{")
    (tmp_path / "not-a-sweep").mkdir()
    (tmp_path / "notes.txt").write_text("")
    assert [s.sweep for s in list_sweeps(root=tmp_path)] == ["history-newer", "history-older"]
    assert list_sweeps(root=tmp_path / "missing") == []
    assert [s.sweep for s in list_sweeps(finished.settings)] == [finished.result.sweep]


def running_trial(sweep_dir: Path, pid: int, host: str) -> None:
    """Make the copied sweep look as if a driver ran it, with trial-0003 running for 10 s."""
    edit_state(sweep_dir, status="running", pid=pid, host=host, reason=None)
    lines = (sweep_dir / "trials.jsonl").read_text().splitlines()
    last = json.loads([line for line in lines if '"trial-0003"' in line][-1])
    started = time.time() - 10
    last.update(
        state="running",
        attempt_started=started,
        held_seconds=0.0,
        gpus=1.0,
        gpu_seconds=0.0,
        times={"queued": started - 1, "starting": started, "running": started},
    )
    with open(sweep_dir / "trials.jsonl", "a") as journal:
        journal.write(json.dumps(last) + "\n")
        journal.write('{"event": "res')  # a line cut short: skipped


def test_a_running_sweep_is_read_live(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path)
    running_trial(sweep_dir, os.getpid(), socket.gethostname())
    sweep = load(sweep_dir)
    assert sweep.status == "running"
    row = sweep.results.set_index("trial").loc["trial-0003"]
    assert row["state"] == "running"
    assert pd.isna(row["ended_at"])
    assert 10 <= row["duration_s"] < 60
    assert row["gpu_seconds"] == pytest.approx(row["duration_s"])  # 1 GPU, held until now
    assert sweep.trials_done == 2
    time.sleep(0.2)
    later = sweep.refresh().results.set_index("trial").loc["trial-0003"]
    assert later["duration_s"] > row["duration_s"]  # the clock runs while the driver does


def test_a_sweep_whose_driver_died_is_interrupted_with_its_clock_stopped(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path)
    running_trial(sweep_dir, dead_pid(), socket.gethostname())
    sweep = load(sweep_dir)
    assert sweep.status == "interrupted"
    assert SweepState.load(sweep_dir).status == "running"
    row = sweep.results.set_index("trial").loc["trial-0003"]
    assert row["state"] == "running"  # as the journal last saw it
    assert row["duration_s"] == pytest.approx(0.0)  # counted until the journal last saw it
    time.sleep(0.2)
    assert (
        sweep.refresh().results.set_index("trial").loc["trial-0003", "duration_s"]
        == (row["duration_s"])
    )


def missing_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    # CSV and JSON have one "missing": None and NaN both come back as one of them.
    return frame.astype(object).where(frame.notna(), None)


READERS = {
    "csv": pd.read_csv,
    "parquet": pd.read_parquet,
    "json": lambda path: pd.read_json(path, orient="records", dtype=False),
}


@pytest.mark.parametrize("format", ["csv", "parquet", "json"])
def test_export_round_trips_through_pandas(finished, tmp_path, format):
    sweep = load(finished.result.sweep_dir)
    path = export(sweep, tmp_path / f"out.{format}", format)
    assert path == tmp_path / f"out.{format}"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left
    back = READERS[format](path)
    if format == "parquet":
        pd.testing.assert_frame_equal(back, sweep.results)  # types and all
    else:
        pd.testing.assert_frame_equal(
            missing_as_none(back), missing_as_none(sweep.results), check_dtype=False
        )


def test_export_takes_the_format_from_the_suffix_and_refuses_others(finished, tmp_path):
    path = export(finished.result.sweep_dir, tmp_path / "table.parquet")
    assert len(pd.read_parquet(path)) == 3
    with pytest.raises(UsageError) as caught:
        export(finished.result.sweep_dir, tmp_path / "table.xlsx")
    assert str(caught.value) == (
        "export format must be one of csv, parquet, json, got 'xlsx'; "
        "name it with --format or the output file's suffix"
    )
    assert not (tmp_path / "table.xlsx").exists()


def test_export_writes_mixed_parameter_types_to_parquet(finished, tmp_path):
    sweep_dir = copy_sweep(finished, tmp_path / "sweeps")
    lines = (sweep_dir / "trials.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    last["params"]["x"] = "three"  # a choice of [1, "three"]
    (sweep_dir / "trials.jsonl").write_text("\n".join([*lines, json.dumps(last)]) + "\n")
    back = pd.read_parquet(export(sweep_dir, tmp_path / "mixed.parquet"))
    assert sorted(back["params.x"]) == ["1", "2", "three"]


def test_export_to_a_path_that_cannot_be_written_is_one_error(finished):
    with pytest.raises(SweeperError) as caught:
        export(finished.result.sweep_dir, "/proc/table.csv")
    assert str(caught.value) == (
        "export path must be writable, got '/proc/table.csv' (No such file or directory)"
    )
