"""Sweeps on an existing Ray cluster: the runtime environment and the address, then real
two-node sweeps with a remote MLflow server and S3 (``tests/execution/_cluster_scenarios.py``),
run in a network namespace of their own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweeper.errors import SpecError
from sweeper.execution._cluster import check_installed, runtime_env
from sweeper.settings import load_settings
from sweeper.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "execution" / "_cluster_scenarios.py"
TRAIN = "def train(params, ctx):\n    ctx.report(step=1, score=1.0)\n"


# --- the runtime environment and the address, without a cluster --------------------------------


@pytest.fixture
def project(in_tmp: Path) -> Path:
    (in_tmp / "train.py").write_text(TRAIN, encoding="utf-8")
    return in_tmp


def _spec_text(extra: str = "") -> str:
    return (
        "name: small\nframework: python\nentrypoint: train.py:train\n"
        "search: {method: grid, metric: score, mode: max}\nparameters: {x: {choice: [1]}}\n" + extra
    )


def test_runtime_env_ships_the_code_and_leaves_results_out(project: Path, write_spec) -> None:
    spec = load_spec(write_spec(_spec_text("requirements: [six==1.16.0]\n")))
    settings = load_settings(
        environ={"SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{project / 'store' / 'm.sqlite'}"}
    )
    env = runtime_env(spec, settings, project / "results")
    assert env["working_dir"] == str(project.resolve())
    assert "/results" in env["excludes"] and "/store/m.sqlite" in env["excludes"]
    assert ".git" in env["excludes"]
    # One package: the adapters travel inside it as sweeper.frameworks.
    assert env["py_modules"] == [str(ROOT / "sweeper")]
    assert (ROOT / "sweeper" / "frameworks" / "base.py").is_file()
    assert env["pip"] == ["six==1.16.0"]


def test_runtime_env_leaves_to_a_submitted_job_what_it_sets(
    project: Path, write_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps({"runtime_env": {"working_dir": "gcs://x.zip"}})
    )
    spec = load_spec(write_spec(_spec_text()))
    env = runtime_env(spec, load_settings(environ={}), project / "results")
    assert set(env) == {"py_modules"}


def test_missing_requirement_on_a_local_ray(project: Path, write_spec) -> None:
    path = write_spec(_spec_text("requirements: ['no-such-package-sweeper-test==1.0']\n"))
    with pytest.raises(SpecError) as info:
        check_installed(load_spec(path))
    assert str(info.value) == (
        "requirements must be installed to run on a local Ray, got "
        f"'no-such-package-sweeper-test==1.0' (not installed) ({path}: requirements); "
        "pip install 'no-such-package-sweeper-test==1.0', or run on a cluster (--address), "
        "where Ray installs them"
    )


def test_requirement_of_another_version_on_a_local_ray(project: Path, write_spec) -> None:
    path = write_spec(_spec_text("requirements: ['pyyaml<1']\n"))
    with pytest.raises(SpecError, match=r"got 'pyyaml<1' \(\d[^ ]* installed\)"):
        check_installed(load_spec(path))


def test_installed_requirements_pass_on_a_local_ray(project: Path, write_spec) -> None:
    check_installed(load_spec(write_spec(_spec_text("requirements: ['pyyaml>=5', 'click']\n"))))


def test_ray_client_address_is_refused_before_anything_starts(project: Path, write_spec) -> None:
    write_spec(_spec_text())
    env = {**os.environ, "SWEEPER_RESULTS_DIR": str(project / "results")}
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "run", "experiment.yml", "--address", "ray://h:10001"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: --address must be auto or HOST:PORT (Ray's GCS), got 'ray://h:10001' "
        "(command line: --address); Ray Client runs Tune's control loop on the head"
    )
    assert len(done.stderr.splitlines()) == 1
    assert not (project / "results").exists()
    assert not (project / "mlflow.db").exists()


# --- a real cluster -----------------------------------------------------------------------------


# cluster: the namespace (tests/conftest.py); s3: the scenarios' moto server. The limit is above
# the scenarios' own 1,200 s, which come with their output.
@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.s3
@pytest.mark.timeout(1500)
def test_cluster_sweeps_in_a_network_of_their_own(
    tmp_path: Path, isolated_network: list[str]
) -> None:
    """Two ``ray start`` nodes, ``mlflow server`` and S3: a sweep on both nodes, then a sweep
    that loses a node (see ``tests/execution/_cluster_scenarios.py``), in a namespace whose only
    interface is the loopback, so nothing they start can be reached from another machine."""
    pytest_run = [
        sys.executable, "-m", "pytest", str(SCENARIOS), "-q", "-rA", "-p", "no:cacheprovider",
        f"--basetemp={tmp_path / 'scenarios'}",
    ]  # fmt: skip
    loopback = ROOT / "tests" / "_code" / "loopback_only.py"
    done = subprocess.run(
        [*isolated_network, sys.executable, str(loopback), *pytest_run],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    output = done.stdout[-20000:] + done.stderr[-5000:]
    assert done.returncode == 0, output
    assert re.search(r"^PASSED .*test_sweep_on_two_nodes", done.stdout, re.M), output
    assert re.search(r"^PASSED .*test_a_node_lost_mid_sweep", done.stdout, re.M), output
    for held in ("none", "token-only", "wrong"):
        assert re.search(
            rf"^PASSED .*test_joining_with_no_or_a_wrong_token.*{held}", done.stdout, re.M
        ), output
    assert re.search(r"^PASSED .*test_trials_no_node_can_hold_warn", done.stdout, re.M), output
    assert re.search(r"^PASSED .*test_a_trial_of_two_learners_spread", done.stdout, re.M), output
    assert re.search(r"\b7 passed\b", done.stdout), output


def test_the_cluster_example_loads_and_ships_the_repository(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(ROOT)  # README runs it from the repository's root
    spec = load_spec("examples/cluster/experiment.yml")
    settings = load_settings("examples/cluster/sweeper.toml", environ={})
    assert (settings.ray.address, settings.s3.addressing_style) == ("auto", "path")
    assert settings.mlflow.tracking_uri.startswith("http://")
    env = runtime_env(spec, settings, ROOT / settings.results.dir)
    assert env["working_dir"] == str(ROOT)
    assert "/results" in env["excludes"]
    assert env["pip"] == ["scikit-learn>=1.3"]
    assert (ROOT / spec.entrypoint.split(":")[0]).is_file()
