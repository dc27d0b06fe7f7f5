"""``sweeper run`` and ``sweeper ui``: exit codes, one-line errors, and the MLflow UI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRAINABLES = ROOT / "tests" / "_code" / "trainables.py"


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
    }


def grid_spec(function: str) -> str:
    return (
        f"name: cli-test\nframework: python\nentrypoint: {TRAINABLES}:{function}\n"
        "search: {method: grid, metric: score, mode: max, concurrency: 2}\n"
        "parameters:\n  x: {choice: [1, 2, 3]}\n"
    )


def test_run_with_a_bad_spec_exits_2_with_one_line_and_starts_nothing(write_spec, in_tmp):
    spec = write_spec(grid_spec("quadratic").replace("mode: max", "mode: maximum"))
    result = CliRunner().invoke(main, ["run", str(spec)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: search.mode must be one of min, max, got 'maximum' ({spec}: search.mode); "
        "did you mean 'max'?\n"
    )
    assert not (in_tmp / "results").exists()
    assert not (in_tmp / "mlflow.db").exists()


def test_run_with_a_bad_setting_exits_2(write_spec, in_tmp):
    spec = write_spec(grid_spec("quadratic"))
    result = CliRunner(env={"SWEEPER_RAY_NUM_CPUS": "many"}).invoke(main, ["run", str(spec)])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: ray.num_cpus must be an integer, got 'many' (environment: SWEEPER_RAY_NUM_CPUS)\n"
    )


def test_run_with_a_missing_spec_exits_2(in_tmp):
    result = CliRunner().invoke(main, ["run", "nope.yml"])
    assert result.exit_code == 2
    assert result.stderr == "error: spec file must exist, got 'nope.yml'\n"


@pytest.mark.usefixtures("ray_session")
def test_run_succeeds_and_prints_the_best_trials(write_spec, cli_env):
    spec = write_spec(
        grid_spec("epochs").replace("x: {choice: [1, 2, 3]}", "x: {choice: [1, 2, 3]}\n  epochs: 2")
    )
    result = CliRunner(env=cli_env).invoke(main, ["run", str(spec)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sweep cli-test-")
    assert "3 of 3 trials to run, grid, concurrency 2" in lines[0]
    assert sum(line.startswith("[") and "completed" in line for line in lines) == 3
    best = lines.index("best trials:")
    assert lines[best + 1].split() == ["trial", "score", "x", "duration_s"]
    assert lines[best + 2].split()[1:3] == ["6", "3"]


@pytest.mark.usefixtures("ray_session")
def test_run_with_a_failed_trial_exits_1_after_recording_the_rest(write_spec, cli_env):
    spec = write_spec(grid_spec("fails"))
    result = CliRunner(env=cli_env).invoke(main, ["run", "--quiet", str(spec)])
    assert result.exit_code == 1
    (sweep_dir,) = Path(cli_env["SWEEPER_RESULTS_DIR"]).iterdir()
    assert result.stderr == (
        f"error: 1 of 3 trials failed; their logs are in {sweep_dir / 'trials'}\n"
    )
    assert result.stdout == "best trial-0003: score=3.0\n"
    assert (sweep_dir / "results.csv").is_file()


@pytest.mark.usefixtures("ray_session")
def test_a_sweep_whose_every_trial_failed_is_failed_not_completed(write_spec, cli_env):
    import mlflow

    spec = write_spec(grid_spec("fails").replace("{choice: [1, 2, 3]}", "{choice: [2]}"))
    result = CliRunner(env=cli_env).invoke(main, ["run", "--quiet", str(spec)])
    assert result.exit_code == 1
    (sweep_dir,) = Path(cli_env["SWEEPER_RESULTS_DIR"]).iterdir()
    assert result.stderr == (
        f"error: sweep failed: every trial failed (1); their logs are in {sweep_dir / 'trials'}\n"
    )
    state = json.loads((sweep_dir / "state.json").read_text())
    assert (state["status"], state["reason"]) == ("failed", "every trial failed (1)")
    client = mlflow.MlflowClient(cli_env["SWEEPER_MLFLOW_TRACKING_URI"])
    (parent,) = [
        run
        for run in client.search_runs([client.get_experiment_by_name("cli-test").experiment_id])
        if "mlflow.parentRunId" not in run.data.tags
    ]
    assert parent.info.status == "FAILED"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_the_configured_store_on_localhost(tmp_path: Path):
    config = tmp_path / "sweeper.toml"
    config.write_text(f'[mlflow]\ntracking_uri = "sqlite:///{tmp_path / "ui.db"}"\n')
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sweeper", "ui", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as page:
                    assert page.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.time() < deadline, "the MLflow UI did not answer in 90 s"
                time.sleep(1)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10",
            timeout=60,  # its first query may set the store up, slowly on a loaded machine
        ) as page:
            assert b"Default" in page.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The UI's own servers and workers went with it: nothing answers on the port any more.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
