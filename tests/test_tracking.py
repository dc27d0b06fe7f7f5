"""MLflow tracking: the embedded SQLite store is created safely by sweeps started at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sweeper.tracking import Tracker

START = """\
import sys
from sweeper.tracking import Tracker

tracker = Tracker(sys.argv[1], "together")
tracker.start_sweep(sys.argv[2], params={}, tags={})
tracker.end_sweep("FINISHED", metrics={}, tags={}, artifacts=[])
print("ok")
"""


def test_sweeps_started_at_once_in_a_fresh_folder_share_one_good_store(tmp_path: Path) -> None:
    """MLflow creates and migrates a new SQLite store on first use; sweeps that start at the
    same moment must not do it twice (sweeper locks the store's folder meanwhile)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", START, uri, f"sweep-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outcomes = [start.communicate(timeout=240) for start in starts]
    assert [out.strip() for out, _ in outcomes] == ["ok"] * 4, [err[-800:] for _, err in outcomes]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "together"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.run_name for run in runs) == [f"sweep-{i}" for i in range(4)]


def test_a_relative_sqlite_store_is_recorded_absolute(tmp_path: Path) -> None:
    from sweeper.tracking import absolute_uri, store_missing

    assert absolute_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert absolute_uri(f"sqlite:///{tmp_path}/x.db") == f"sqlite:///{tmp_path}/x.db"
    assert absolute_uri("http://mlflow:5000") == "http://mlflow:5000"
    assert store_missing(f"sqlite:///{tmp_path / 'none.db'}")
    assert not store_missing("http://mlflow:5000")


def test_an_unusable_store_names_where_its_uri_came_from(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from sweeper.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("def train(params, ctx):\n    pass\n")
    (tmp_path / "experiment.yml").write_text(
        "name: store\nframework: python\nentrypoint: train.py:train\n"
        "search: {method: grid, metric: m, mode: max}\nparameters:\n  x: {choice: [1]}\n"
    )
    uri = "sqlite:////proc/nowhere/mlflow.db"
    done = CliRunner().invoke(
        main, ["run", "experiment.yml"], env={"SWEEPER_MLFLOW_TRACKING_URI": uri}
    )
    assert done.exit_code == 1
    assert done.stderr == (
        "error: MLflow tracking store must be reachable, got FileNotFoundError: [Errno 2] No "
        f"such file or directory: '/proc/nowhere' (environment: SWEEPER_MLFLOW_TRACKING_URI = "
        f"{uri!r})\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.yml", "train.py"]


def test_ui_links_open_the_model_training_view(tmp_path):
    from sweeper.cli._main import _experiments
    from sweeper.tracking import LOCAL_UI, ui_base, ui_link

    assert ui_base("sqlite:///mlflow.db") == LOCAL_UI == "http://127.0.0.1:5000"
    assert ui_base("https://mlflow.example.com/") == "https://mlflow.example.com"
    assert ui_link(LOCAL_UI, "7") == (
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert ui_link(LOCAL_UI, "7", "abc") == "http://127.0.0.1:5000/#/experiments/7/runs/abc"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "digits")
    Tracker(uri, "empty")
    tracker.start_sweep("digits-1", {}, {})
    tracker.end_sweep("FINISHED", metrics={}, tags={}, artifacts=[])
    assert _experiments(uri) == [("digits", tracker.experiment_id)]  # those with runs
