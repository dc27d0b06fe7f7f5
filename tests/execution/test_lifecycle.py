"""A trial's life in-process on the session's Ray: early stopping, retries, failures, budgets,
GPU queueing and GPU-time accounting, states and their timestamps."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pandas as pd
import pytest

from sweeper._journal import SweepState
from sweeper._layout import STOP_FILE
from sweeper.execution._sweep import resume, run, unfinished_sweep
from sweeper.settings import load_settings
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
CODE = "tests/_code/trainables.py"

pytestmark = pytest.mark.usefixtures("ray_session")


def make_spec(function: str, search: dict[str, Any], parameters: dict[str, Any], **extra: Any):
    data = {
        "name": "lifecycle",
        "framework": "python",
        "entrypoint": f"{CODE}:{function}",
        "search": {"metric": "score", "mode": "max", **search},
        "parameters": parameters,
        **extra,
    }
    return parse_spec(data, base_dir=ROOT)


def runs_of(result) -> pd.DataFrame:
    """The sweep's MLflow child runs."""
    mlflow.set_tracking_uri(result.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["lifecycle"])
    if "tags.mlflow.parentRunId" not in runs:  # only the parent: no trial had started
        return runs.iloc[0:0]
    return runs[runs["tags.mlflow.parentRunId"] == result.parent_run_id]


def steps_log(result, trial: str) -> list[tuple[int, int]]:
    """(attempt, step) for every step the trial's code ran (see trainables.steps)."""
    text = (result.sweep_dir / "trials" / trial / "output" / "steps.log").read_text()
    return [tuple(int(v) for v in line.split()) for line in text.splitlines()]


# --- early stopping ----------------------------------------------------------------------------

# Grid trials run in order and the score rises with x: listing x downwards makes each new trial
# worse than those before it, which is what an early-stopping rule is there to catch.
DESCENDING = {"x": {"choice": [8, 7, 6, 5, 4, 3, 2, 1]}, "epochs": 9, "sleep": 0.02}


def test_asha_stops_trials_early_and_records_them_as_stopped(settings):
    spec = make_spec(
        "steps",
        {"method": "grid", "concurrency": 2},
        DESCENDING,
        early_stopping={"method": "asha", "max_steps": 9, "grace_period": 1, "reduction_factor": 3},
    )
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("trial")
    stopped = frame[frame["state"] == "stopped"]
    assert len(stopped) >= 4
    assert set(frame["state"]) == {"completed", "stopped"}
    assert (stopped["steps"] < 9).all()
    assert (frame.loc[frame["state"] == "completed", "steps"] == 9).all()
    # The stopped trials' code really stopped: no step ran beyond the last one reported.
    for trial, row in stopped.iterrows():
        assert steps_log(result, trial)[-1][1] == row["steps"]
    assert frame["steps"].sum() < 0.6 * 8 * 9
    assert result.best["params.x"] == 8  # the best configuration is never stopped
    runs = runs_of(result).set_index("tags.mlflow.runName")
    assert set(runs.loc[stopped.index, "tags.sweeper.state"]) == {"stopped"}
    assert set(runs["status"]) == {"FINISHED"}  # stopped early is not a failure
    assert result.status == "completed" and result.failed == 0


def test_median_rule_stops_trials_below_the_median(settings):
    spec = make_spec(
        "steps",
        {"method": "grid", "concurrency": 2},
        DESCENDING,
        early_stopping={"method": "median", "grace_period": 2, "min_trials": 2},
    )
    result = run(spec, settings, echo=None)
    frame = result.results
    stopped = frame[frame["state"] == "stopped"]
    assert len(stopped) >= 3
    assert (stopped["steps"] < 9).all() and (stopped["steps"] >= 2).all()
    assert result.best["params.x"] == 8


def test_hyperband_runs_asha_brackets(settings):
    spec = make_spec(
        "steps",
        {"method": "grid", "concurrency": 2},
        DESCENDING,
        early_stopping={"method": "hyperband", "max_steps": 9, "reduction_factor": 3},
    )
    result = run(spec, settings, echo=None)
    assert (result.results["state"] == "stopped").any()
    assert result.best["params.x"] == 8


def test_optuna_is_told_a_stopped_trial_was_pruned(settings):
    spec = make_spec(
        "steps",
        {"method": "optuna", "sampler": "random", "trials": 8, "concurrency": 2, "seed": 3},
        {"x": {"uniform": [0, 10]}, "epochs": 9, "sleep": 0.02},
        early_stopping={"method": "asha", "max_steps": 9, "reduction_factor": 2},
    )
    result = run(spec, settings, echo=None)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.sweep_dir / "optuna.journal"))
    )
    study = optuna.load_study(study_name=result.sweep, storage=storage)
    states = {t.user_attrs["sweeper_trial"]: t.state.name for t in study.trials}
    frame = result.results.set_index("trial")
    assert set(states) == set(frame.index)
    for trial, row in frame.iterrows():
        assert states[trial] == {"stopped": "PRUNED", "completed": "COMPLETE"}[row["state"]]
    assert "PRUNED" in states.values()


# --- failures and retries ----------------------------------------------------------------------


@pytest.mark.parametrize("by_signal", [False, True], ids=["os._exit", "SIGKILL"])
def test_a_trial_whose_process_dies_is_retried_from_its_checkpoint(settings, by_signal):
    spec = make_spec(
        "steps",
        {"method": "grid", "concurrency": 2},
        {"x": {"choice": [1, 2]}, "epochs": 4, "sleep": 0.02, "die_at": 3, "signal": by_signal},
        limits={"max_failures": 1},
    )
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("trial")
    assert list(frame["state"]) == ["completed", "completed"]
    assert list(frame["attempts"]) == [2, 2]
    for trial in frame.index:
        # The first attempt died at step 3, before saving it; the second resumed there.
        assert steps_log(result, trial) == [(1, 1), (1, 2), (1, 3), (2, 3), (2, 4)]
        assert frame.loc[trial, "steps"] == 4
    runs = runs_of(result)
    assert len(runs) == 2  # one MLflow run per trial, however many attempts
    assert set(runs["status"]) == {"FINISHED"}
    assert set(runs["tags.sweeper.attempts"]) == {"2"}


def test_a_trial_failing_more_than_max_failures_is_failed_and_the_sweep_goes_on(settings):
    spec = make_spec(
        "fails",
        {"method": "grid", "concurrency": 2},
        {"x": {"choice": [1, 2, 3]}},
        limits={"max_failures": 2},
    )
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("trial")
    assert frame.loc["trial-0002", "state"] == "failed"
    assert frame.loc["trial-0002", "attempts"] == 3
    error = frame.loc["trial-0002", "error"]
    assert "x must not be 2" in error and "about to fail: x is 2" in error  # the log's tail
    assert list(frame.loc[["trial-0001", "trial-0003"], "state"]) == ["completed", "completed"]
    assert result.status == "completed" and result.failed == 1


def test_more_failed_trials_than_max_failed_trials_fails_the_sweep(settings):
    spec = make_spec(
        "broken",
        {"method": "grid", "concurrency": 1},
        {"x": {"choice": [1, 2, 3, 4, 5, 6]}},
        limits={"max_failed_trials": 1},
    )
    result = run(spec, settings, echo=None)
    assert result.status == "failed"
    assert result.reason == "2 trials failed, more than limits.max_failed_trials = 1"
    assert (result.results["state"] == "failed").sum() == 2
    assert len(result.results) < 6  # the rest never ran
    state = SweepState.load(result.sweep_dir)
    assert state.status == "failed" and state.reason == result.reason
    parent = mlflow.MlflowClient(result.tracking_uri).get_run(result.parent_run_id)
    assert parent.info.status == "FAILED"


# --- GPUs: queueing and accounting ---------------------------------------------------------------


def gpu_settings(tmp_path: Path, **extra: str):
    return load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
            **extra,
        }
    )


def notes(result) -> list[dict[str, Any]]:
    return [
        json.loads((result.sweep_dir / "trials" / t / "output" / "note.json").read_text())
        for t in result.results["trial"]
    ]


def test_max_gpus_queues_trials_and_gpu_seconds_are_counted(tmp_path):
    """The session's Ray has 2 (fake) GPUs; max_gpus = 1 lets one 1-GPU trial run at a time."""
    spec = make_spec(
        "record",
        {"method": "grid"},
        {"x": {"choice": [1, 2, 3]}, "sleep": 0.6},
        resources={"gpus": 1},
    )
    result = run(spec, gpu_settings(tmp_path, SWEEPER_LIMITS_MAX_GPUS="1"), echo=None)
    windows = sorted((n["start"], n["end"]) for n in notes(result))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(windows))  # one at a time
    frame = result.results.set_index("trial")
    assert set(frame["gpus"]) == {1.0}
    for _, row in frame.iterrows():
        # GPU time runs from holding the GPU to results stored: at least the training's sleep,
        # and no more than the trial's own time.
        assert 0.6 <= row["gpu_seconds"] <= row["duration_s"] + 0.01
    stamps = frame[["queued_at", "started_at", "running_at", "storing_at", "ended_at"]]
    for _, row in stamps.iterrows():
        assert list(row) == sorted(row)  # each state entered in order
    # The last trial waited in the queue while the others held the GPU.
    last = pd.to_datetime(frame.loc["trial-0003", ["queued_at", "started_at"]])
    assert (last.iloc[1] - last.iloc[0]).total_seconds() >= 1.0
    runs = runs_of(result).set_index("tags.mlflow.runName")
    assert runs["metrics.gpu_seconds"].to_dict() == pytest.approx(
        frame["gpu_seconds"].to_dict(), abs=1e-3
    )
    parent = mlflow.MlflowClient(result.tracking_uri).get_run(result.parent_run_id)
    total = frame["gpu_seconds"].sum()
    assert parent.data.metrics["sweep/gpu_seconds"] == pytest.approx(total, abs=1e-2)
    assert parent.data.metrics["sweep/gpu_hours"] == pytest.approx(total / 3600, abs=1e-5)


def test_without_max_gpus_trials_share_the_gpus(tmp_path):
    meet = tmp_path / "meet"
    meet.mkdir()
    spec = make_spec(
        "record",
        {"method": "grid"},
        {"x": {"choice": [1, 2]}, "sleep": 0.1, "meet": str(meet), "expect": 2},
        resources={"gpus": 1},
    )
    result = run(spec, gpu_settings(tmp_path), echo=None)
    assert [n["met"] for n in notes(result)] == [True, True]  # both ran at once...
    assert sorted(n["cuda"] for n in notes(result)) == ["0", "1"]  # ...each on its own GPU


def test_max_gpus_below_one_trials_gpus_is_a_config_error(tmp_path):
    from sweeper.errors import ConfigError

    spec = make_spec("record", {"method": "grid"}, {"x": 1}, resources={"gpus": 2})
    with pytest.raises(ConfigError, match=r"limits\.max_gpus must be at least the GPUs one trial"):
        run(spec, gpu_settings(tmp_path, SWEEPER_LIMITS_MAX_GPUS="1"), echo=None)
    assert not (tmp_path / "results").exists()  # nothing started


def test_max_gpus_counts_every_learner_of_a_trial(tmp_path):
    from sweeper.errors import ConfigError

    spec = make_spec("record", {"method": "grid"}, {"x": 1}, resources={"gpus": 1, "learners": 2})
    with pytest.raises(ConfigError) as info:
        run(spec, gpu_settings(tmp_path, SWEEPER_LIMITS_MAX_GPUS="1"), echo=None)
    assert str(info.value) == (
        "limits.max_gpus must be at least the GPUs one trial holds (2, resources.gpus x "
        "resources.learners (1 x 2) of lifecycle), got 1 (sweeper.toml: limits.max_gpus)"
    )
    assert not (tmp_path / "results").exists()  # nothing started


# --- budgets, halting and resuming in-process ----------------------------------------------------


def test_max_duration_halts_the_sweep(settings):
    spec = make_spec(
        "steps",
        {"method": "grid", "concurrency": 2},
        {"x": {"choice": [1, 2, 3]}, "epochs": 120, "sleep": 0.25},
        limits={"max_duration": "8s"},
    )
    started = time.time()
    result = run(spec, settings, echo=None)
    assert time.time() - started < 50  # not the 90 s the trials would take
    assert result.status == "halted" and result.reason == "limits.max_duration 8s reached"
    # Trials running when the budget ran out are halted (resumable), never completed.
    assert set(result.results["state"]) <= {"halted"}
    assert SweepState.load(result.sweep_dir).status == "halted"
    runs = runs_of(result)
    assert set(runs["status"]) <= {"KILLED"}


def stop_when(sweep_root: Path, steps: int) -> threading.Thread:
    """``sweeper stop``, in-process: request a halt once some trial has run ``steps`` steps."""

    def watch() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            for log in sweep_root.glob("*/trials/*/output/steps.log"):
                if len(log.read_text().splitlines()) >= steps:
                    (log.parents[3] / STOP_FILE).write_text("now\n")
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_halted_sweep_resumes_from_its_checkpoints(settings):
    spec = make_spec(
        "steps",
        {"method": "grid", "concurrency": 2},
        {"x": {"choice": [1, 2, 3, 4]}, "epochs": 8, "sleep": 0.25},
    )
    watcher = stop_when(Path(settings.results.dir), steps=3)
    first = run(spec, settings, echo=None)
    watcher.join()
    assert first.status == "halted" and first.reason == "stop requested (sweeper stop)"
    halted = list(first.results.loc[first.results["state"] == "halted", "trial"])
    assert halted
    runs = runs_of(first).set_index("tags.mlflow.runName")
    assert set(runs.loc[halted, "status"]) == {"KILLED"}
    assert unfinished_sweep(spec, settings) == first.sweep_dir  # `sweeper run` would offer it

    second = resume(first.sweep_dir, settings, echo=None)
    assert second.status == "completed"
    frame = second.results.set_index("trial")
    assert list(frame.index) == ["trial-0001", "trial-0002", "trial-0003", "trial-0004"]
    assert set(frame["state"]) == {"completed"}
    assert set(frame.loc[halted, "attempts"]) == {2}
    for trial in frame.index:
        ran = [step for _, step in steps_log(second, trial)]
        assert ran == sorted(set(ran)) == list(range(1, 9))  # no step ran twice: checkpoints
    runs = runs_of(second)
    assert sorted(runs["tags.mlflow.runName"]) == list(frame.index)  # one run per trial
    assert set(runs["status"]) == {"FINISHED"}
    assert unfinished_sweep(spec, settings) is None


def test_max_gpu_hours_halts_the_sweep(settings):
    spec = make_spec(
        "record",
        {"method": "grid", "concurrency": 1},
        {"x": {"choice": [1, 2, 3, 4, 5]}, "sleep": 1.0},
        resources={"gpus": 1},
        limits={"max_gpu_hours": 1.5 / 3600},  # 1.5 GPU-seconds
    )
    result = run(spec, settings, echo=None)
    assert result.status == "halted"
    assert result.reason.startswith("limits.max_gpu_hours")
    assert (result.results["state"] == "completed").sum() <= 2
    assert len(result.results) < 5  # the rest never started


def test_a_trial_killed_on_its_last_attempt_gets_its_error_and_log_tail(settings):
    spec = make_spec(
        "steps",
        {"method": "grid", "concurrency": 1},
        {"x": {"choice": [1]}, "epochs": 4, "sleep": 0.02, "die_at": 2, "signal": True},
    )
    result = run(spec, settings, echo=None)
    row = result.results.set_index("trial").loc["trial-0001"]
    assert row["state"] == "failed"
    error_file = result.sweep_dir / "trials" / "trial-0001" / "error.txt"
    log = error_file.with_name("trial.log")
    text = error_file.read_text()
    assert text.startswith("The actor died unexpectedly")  # Ray's account of the death
    assert text.rstrip().endswith(f"--- last lines of {log} ---\n{log.read_text()}".rstrip())
    assert text.splitlines()[0] in row["error"]
