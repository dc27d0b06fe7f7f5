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


TALKING_SPEC = f"""\
name: talking
framework: python
entrypoint: {ROOT / "tests" / "_code" / "talking.py"}:talks
parameters:
  x: {{choice: [1, 2, 3]}}
  epochs: 3
  sleep: 0.05
search: {{method: grid, metric: score, mode: max, concurrency: 2}}
"""


@dataclass
class FinishedSweep:
    """A real sweep that ran to its end: trial-0002 failed after a step, trial-0003 is best."""

    result: Any  # the SweepResult
    settings: Any
    folder: Path  # holds experiment.yml, mlflow.db and results/


@pytest.fixture(scope="session")
def talking_sweep(ray_session, tmp_path_factory) -> FinishedSweep:
    """One finished sweep shared by the tests that only read sweeps on disk."""
    from sweeper.execution._sweep import run
    from sweeper.settings import load_settings

    folder = tmp_path_factory.mktemp("talking")
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(folder / "results"),
        }
    )
    (folder / "experiment.yml").write_text(TALKING_SPEC, encoding="utf-8")
    result = run(folder / "experiment.yml", settings, echo=None)
    assert result.status == "completed"
    return FinishedSweep(result, settings, folder)


class SweeperCli:
    """Runs ``python -m sweeper ...`` in a test's folder, with its own MLflow store and results,
    as a user would in a terminal."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.uri = f"sqlite:///{folder / 'mlflow.db'}"
        self.env = {
            **os.environ,
            "SWEEPER_MLFLOW_TRACKING_URI": self.uri,
            "SWEEPER_RESULTS_DIR": str(folder / "results"),
            "SWEEPER_RAY_NUM_CPUS": "2",
        }

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start a command in the background (stdout and stderr piped)."""
        return subprocess.Popen(
            [sys.executable, "-m", "sweeper", *args],
            cwd=self.folder, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command to its end."""
        return subprocess.run(
            [sys.executable, "-m", "sweeper", *args],
            cwd=self.folder, env=self.env, text=True, capture_output=True, timeout=timeout,
        )  # fmt: skip

    def sweep_dir(self) -> Path:
        """The one sweep folder under ``results/``."""
        (folder,) = (self.folder / "results").iterdir()
        return folder

    def children(self, parent: str, experiment: str) -> Any:
        """The MLflow child runs of ``parent``."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        runs = mlflow.search_runs(experiment_names=[experiment])
        return runs[runs["tags.mlflow.parentRunId"] == parent]

    @staticmethod
    def wait_for(check: Any, driver: Any = None, timeout: float = 180) -> None:
        """Poll ``check()`` until it is true; fail after ``timeout`` seconds, or at once with
        its output if ``driver`` (a process from :meth:`start`) ended first."""
        import time

        deadline = time.time() + timeout
        while time.time() < deadline:
            if check():
                return
            if driver is not None and driver.poll() is not None:
                out, err = driver.communicate()
                raise AssertionError(f"sweeper exited {driver.returncode}:\n{out}\n{err}")
            time.sleep(0.1)
        raise AssertionError("timed out")


@pytest.fixture
def cli(tmp_path: Path) -> SweeperCli:
    """``sweeper`` run in subprocesses from the test's temporary folder."""
    return SweeperCli(tmp_path)
