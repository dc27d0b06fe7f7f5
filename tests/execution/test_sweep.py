"""Sweeps run in-process on the session's Ray: search, trial naming, results and MLflow."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from sweeper.execution._sweep import run
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
CODE = "tests/_code/trainables.py"

pytestmark = pytest.mark.usefixtures("ray_session")


def make_spec(function: str, search: dict[str, Any], parameters: dict[str, Any], **extra: Any):
    data = {
        "name": "test-sweep",
        "framework": "python",
        "entrypoint": f"{CODE}:{function}",
        "search": {"metric": "score", "mode": "max", **search},
        "parameters": parameters,
        **extra,
    }
    return parse_spec(data, base_dir=ROOT)


def child_runs(result) -> pd.DataFrame:
    mlflow.set_tracking_uri(result.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["test-sweep"])
    return runs[runs["tags.mlflow.parentRunId"] == result.parent_run_id]


def test_optuna_finds_the_optimum_of_a_cheap_function(settings):
    spec = make_spec(
        "quadratic",
        {"method": "optuna", "sampler": "tpe", "trials": 40, "concurrency": 2, "seed": 1},
        {"x": {"uniform": [-5, 5]}, "y": {"uniform": [-5, 5]}},
    )
    result = run(spec, settings, echo=None)
    assert len(result.results) == 40
    assert set(result.results["state"]) == {"completed"}
    best = result.best
    # Random search over the square has a 1-in-40 chance per trial to get within 1 of the top.
    assert best["score"] > -0.5
    assert abs(best["params.x"] - 2) < 0.7 and abs(best["params.y"] + 1) < 0.7


def test_grid_runs_every_point_once_with_constants(settings):
    spec = make_spec(
        "record",
        {"method": "grid", "concurrency": 4},
        {"x": {"choice": [1, 2, 3]}, "b": {"int": [0, 1]}, "sleep": 0.0},
    )
    result = run(spec, settings, echo=None)
    frame = result.results
    assert len(frame) == 6
    # Trials are numbered in `sweeper plan`'s order: nested loops, the last parameter fastest.
    assert list(frame["trial"]) == [f"trial-{i:04d}" for i in range(1, 7)]
    points = list(zip(frame["params.x"], frame["params.b"], strict=True))
    assert points == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert set(frame["params.sleep"]) == {0.0}
    for trial in frame["trial"]:
        trial_dir = result.sweep_dir / "trials" / trial
        note = json.loads((trial_dir / "output" / "note.json").read_text())
        assert note["trial"] == trial
        params = json.loads((trial_dir / "params.json").read_text())
        assert params == note["params"]


def test_run_leaves_the_process_environment_as_it_found_it(settings, monkeypatch):
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    spec = make_spec("quadratic", {"method": "random", "trials": 1}, {"x": 1.0, "y": 2.0})
    run(spec, settings, echo=None)
    assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1"


def test_random_search_is_reproducible_with_a_seed(settings):
    search = {"method": "random", "trials": 5, "concurrency": 2, "seed": 7}
    params = {"x": {"uniform": [0, 1]}, "y": {"choice": ["a", "b", "c"]}}
    first = run(make_spec("quadratic", search, {**params}), settings, echo=None).results
    second = run(make_spec("quadratic", search, {**params}), settings, echo=None).results
    assert list(first["params.x"]) == list(second["params.x"])
    assert list(first["params.y"]) == list(second["params.y"])


def test_results_csv_and_mlflow_hold_every_trial_with_params_and_step_metrics(
    settings, capsys, tmp_path, monkeypatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # artifacts go beside the SQLite store, not to ./mlruns here
    spec = make_spec(
        "epochs",
        {"method": "grid", "concurrency": 2},
        {"x": {"choice": [1.0, 2.0, 3.0]}, "epochs": 5},
    )
    result = run(spec, settings)
    out = capsys.readouterr().out
    assert "[3/3]" in out and "best trials:" in out and "trial-0003" in out

    csv = pd.read_csv(result.sweep_dir / "results.csv")
    assert len(csv) == 3
    assert list(csv.sort_values("score", ascending=False)["params.x"]) == [3.0, 2.0, 1.0]
    assert set(csv["steps"]) == {5}
    assert csv["mlflow_run_id"].notna().all()
    assert (result.sweep_dir / "spec.yml").is_file()

    children = child_runs(result)
    assert len(children) == 3
    assert set(children["status"]) == {"FINISHED"}
    assert set(children["params.epochs"]) == {"5"}
    assert set(children["tags.sweeper.trial"]) == {"trial-0001", "trial-0002", "trial-0003"}
    client = mlflow.MlflowClient(result.tracking_uri)
    run_id = children.loc[children["params.x"] == "3.0", "run_id"].iloc[0]
    loss = client.get_metric_history(run_id, "loss")
    assert [m.step for m in sorted(loss, key=lambda m: m.step)] == [1, 2, 3, 4, 5]
    # score was reported at steps 2, 4 and 5 only: the carried value is not logged again.
    score = client.get_metric_history(run_id, "score")
    assert sorted((m.step, m.value) for m in score) == [(2, 6.0), (4, 12.0), (5, 15.0)]

    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["sweep/best_score"] == 15.0
    assert parent.data.metrics["sweep/trials_completed"] == 3
    # No GPU held: no GPU figures; the sweep's own figures apart from a trial's peak.
    assert not [k for k in parent.data.metrics if "gpu" in k]
    trial_metrics = client.get_run(run_id).data.metrics
    assert trial_metrics["peak_score"] == 15.0 and "gpu_seconds" not in trial_metrics
    assert parent.data.tags["sweeper.best_trial"] == csv.loc[csv["score"].idxmax(), "trial"]
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"results.csv", "spec.yml"} <= artifacts
    # Each trial's files are in its run, kept beside the store (settings: tmp_path/mlflow.db).
    assert {a.path for a in client.list_artifacts(run_id)} >= {"params.json", "trial.log"}
    assert list((tmp_path / "mlruns").rglob("params.json"))
    assert not (elsewhere / "mlruns").exists()


def test_a_failing_trial_is_recorded_with_its_log_and_the_sweep_goes_on(settings):
    spec = make_spec("fails", {"method": "grid", "concurrency": 2}, {"x": {"choice": [1, 2, 3]}})
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("params.x")
    assert result.failed == 1
    assert frame.loc[2, "state"] == "failed"
    assert "RuntimeError: x must not be 2" in frame.loc[2, "error"]
    assert "about to fail: x is 2" in frame.loc[2, "error"]
    assert list(frame.loc[[1, 3], "state"]) == ["completed", "completed"]
    log = result.sweep_dir / "trials" / frame.loc[2, "trial"] / "trial.log"
    assert "Traceback" in log.read_text()
    children = child_runs(result).set_index("params.x")
    assert children.loc["2", "status"] == "FAILED"
    assert "x must not be 2" in children.loc["2", "tags.sweeper.error"]


def test_gpu_trials_queue_for_the_gpus_and_see_distinct_devices(settings, tmp_path):
    """Two fake GPUs, one per trial, six trials allowed to run four at a time."""
    meet = tmp_path / "meet"
    meet.mkdir()
    spec = make_spec(
        "record",
        {"method": "grid", "concurrency": 4},
        # The first two trials wait for each other, so two run at once however busy the machine.
        {"x": {"choice": [1, 2, 3, 4, 5, 6]}, "sleep": 0.5, "meet": str(meet), "expect": 2},
        resources={"gpus": 1, "cpus": 0.5},
    )
    result = run(spec, settings, echo=None)
    assert set(result.results["state"]) == {"completed"}
    notes = [
        json.loads((result.sweep_dir / "trials" / t / "output" / "note.json").read_text())
        for t in result.results["trial"]
    ]
    assert {n["cuda"] for n in notes} <= {"0", "1"}
    for note in notes:
        assert note["gpu_ids"] == [note["cuda"]]
    events = sorted(
        [(n["start"], 1, n) for n in notes] + [(n["end"], -1, n) for n in notes],
        key=lambda e: (e[0], e[1]),
    )
    running: list[dict] = []
    peak = 0
    for _, kind, note in events:
        if kind == 1:
            assert note["cuda"] not in {r["cuda"] for r in running}, "two trials shared a GPU"
            running.append(note)
        else:
            running.remove(note)
        peak = max(peak, len(running))
    assert peak == 2
    assert all(n["met"] for n in notes)


def test_trial_log_shows_progress_of_code_that_prints_nothing(settings):
    spec = make_spec("quadratic", {"method": "grid"}, {"x": {"choice": [1.0, 3.0]}, "y": -1.0})
    result = run(spec, settings, echo=None)
    log = (result.sweep_dir / "trials" / "trial-0002" / "trial.log").read_text().splitlines()
    assert log[0] == "sweeper: trial-0002 attempt 1 starts: x=3, y=-1"
    assert log[1] == "sweeper: step 1 score=-1"
    assert re.fullmatch(r"sweeper: trial-0002 attempt 1 ended after \d+\.\ds", log[2])
    assert len(log) == 3


def test_rays_dashboard_names_the_sweep_and_first_trial_of_each_actor(tmp_path):
    # Ray reads an actor's repr once it started, for its dashboard's Actors page (its state
    # API, which needs the dashboard this session's Ray runs without): the repr of a trainable.
    from types import SimpleNamespace

    from sweeper.execution._actor import trainable_class
    from sweeper.execution._plan import TrialPlan

    spec = make_spec("quadratic", {"method": "grid"}, {"x": {"choice": [1.0]}})
    cls = trainable_class(TrialPlan(spec, "grow-20261206-101500", tmp_path, None, None), None)
    actor = cls.__new__(cls)
    actor._trial_info = SimpleNamespace(trial_name="trial-0007")
    assert repr(actor) == "sweeper grow-20261206-101500, from trial-0007"


def test_an_actors_own_log_names_each_trial_it_runs(settings):
    # What Ray's dashboard shows as the actor's log: a line per trial, actors reused or not.
    import ray

    spec = make_spec(
        "quadratic", {"method": "grid", "concurrency": 1}, {"x": {"choice": [1.0, 2.0, 3.0]}}
    )
    result = run(spec, settings, echo=None)
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    text = "".join(p.read_text(errors="replace") for p in (session / "logs").glob("worker-*.out"))
    for trial in result.results["trial"]:
        assert f"sweeper: {trial} of sweep {result.sweep} starts (attempt 1): " in text
