"""Shared fixtures: one Ray instance per test session, isolated MLflow stores and results."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Ray can be told about GPUs it does not have: trials then get their own CUDA_VISIBLE_DEVICES.
FAKE_GPUS = 2
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray shared by every in-process sweep of the session (sweeper reuses it)."""
    import ray

    ray.init(
        address="local",
        num_cpus=4,
        num_gpus=FAKE_GPUS,
        include_dashboard=False,
        log_to_driver=False,
        # Trials reach the tests' S3 server (moto) with boto3's standard credential chain, as
        # on a real node: give the workers moto's dummy keys.
        runtime_env={"env_vars": {**MOTO_CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def settings(tmp_path: Path):
    """Settings that keep MLflow and results inside the test's temporary folder."""
    from sweeper.settings import load_settings

    return load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
        }
    )


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec (text) as ``tmp_path/experiment.yml`` and return its path."""

    def write(text: str, name: str = "experiment.yml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from ``tmp_path`` (relative paths in specs resolve there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@dataclass
class ExampleRun:
    """An example sweep run through the CLI, with what it left in results and MLflow."""

    spec: Any
    sweep_dir: Path
    results: Any  # the results.csv DataFrame
    children: Any  # mlflow.search_runs rows of the child runs
    parent_id: str
    client: Any  # an MlflowClient on the run's store
    stdout: str


@pytest.fixture
def run_example(tmp_path: Path):
    """``run_example(config, metric)``: ``sweeper run configs/<config>`` in a subprocess.

    Checks what every example must show: exit 0 without a traceback, every trial completed,
    the best ``metric`` at least 0.95, and in MLflow one parent with one finished child per
    trial and the parent's ``best_<metric>``.
    """
    import mlflow
    import pandas as pd

    from sweeper.spec import load_spec

    def run(config: str, metric: str) -> ExampleRun:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        env = {
            **os.environ,
            "SWEEPER_MLFLOW_TRACKING_URI": uri,
            "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
            "SWEEPER_RAY_NUM_CPUS": "2",
        }
        done = subprocess.run(
            [sys.executable, "-m", "sweeper", "run", config],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "best trials:" in done.stdout
        assert "Traceback" not in done.stderr
        spec = load_spec(ROOT / config)
        (sweep_dir,) = (tmp_path / "results").iterdir()
        results = pd.read_csv(sweep_dir / "results.csv")
        assert len(results) == spec.trial_count()
        assert set(results["state"]) == {"completed"}
        assert results[metric].max() >= 0.95
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(experiment_names=[spec.name])
        parents = runs[runs["tags.mlflow.parentRunId"].isna()]
        assert len(parents) == 1
        parent_id = parents["run_id"].iloc[0]
        children = runs[runs["tags.mlflow.parentRunId"] == parent_id]
        assert len(children) == spec.trial_count()
        assert set(children["status"]) == {"FINISHED"}
        assert children[f"metrics.{metric}"].max() >= 0.95
        client = mlflow.MlflowClient(uri)
        best = client.get_run(parent_id).data.metrics[f"best_{metric}"]
        assert best == pytest.approx(results[metric].max())
        return ExampleRun(spec, sweep_dir, results, children, parent_id, client, done.stdout)

    return run
