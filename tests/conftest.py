"""Shared fixtures: one Ray instance per test session, isolated MLflow stores and results."""

from __future__ import annotations

import os
from pathlib import Path

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
