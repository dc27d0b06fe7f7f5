"""``sweeper dashboard``: optuna-dashboard on every sweep's study, with sweeper's names."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweeper.execution._sweep import SweepResult, run
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "tests" / "_code" / "trainables.py"

pytestmark = pytest.mark.usefixtures("ray_session")


def sweep(settings, method: str) -> SweepResult:
    parameters = (
        {"x": {"choice": [1.0, 2.0]}, "y": {"choice": [-1.0, 0.0]}}
        if method != "optuna"
        else {"x": {"uniform": [0.0, 4.0]}, "y": {"uniform": [-3.0, 1.0]}}
    )
    search: dict[str, Any] = {"method": method, "metric": "score", "mode": "max", "seed": 0}
    if method != "grid":
        search["trials"] = 3
    data = {
        "name": f"dash-{method}",
        "framework": "python",
        "entrypoint": f"{CODE}:quadratic",
        "parameters": parameters,
        "search": search,
    }
    return run(parse_spec(data, base_dir=ROOT), settings, echo=None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(folder: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeper", "dashboard", str(folder), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def get(port: int, path: str, server: subprocess.Popen[str]) -> Any:
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as page:
                return json.loads(page.read())
        except OSError:
            assert server.poll() is None, server.communicate()
            assert time.time() < deadline, "optuna-dashboard did not answer in 60 s"
            time.sleep(0.5)


def attrs(trial: dict[str, Any]) -> dict[str, str]:
    return {a["key"]: a["value"] for a in trial["user_attrs"]}


# Grid and random search tell their trials into the study alike (StudyLog): grid stands for both.
@pytest.mark.parametrize("method", ["grid", "optuna"])
def test_the_dashboard_shows_the_sweeps_study_with_its_names_and_stops_on_sigterm(settings, method):
    result = sweep(settings, method)
    port = free_port()
    server = serve(result.sweep_dir, port)
    try:
        page = get(port, "/api/studies/0", server)
        assert page["objective_names"] == ["score"]  # not "Objective 0"
        trials = sorted(page["trials"], key=lambda t: attrs(t)["sweeper_trial"])
        assert [attrs(t)["sweeper_trial"] for t in trials] == list(result.results["trial"])
        assert {attrs(t)["sweeper_state"] for t in trials} == {"completed"}
        assert all("sweeper_gpu_seconds" in attrs(t) for t in trials)
        assert all(t["intermediate_values"] for t in trials)  # each trial's curve
        scores = dict(zip(result.results["trial"], result.results["score"], strict=True))
        for trial in trials:
            assert trial["values"] == [pytest.approx(scores[attrs(trial)["sweeper_trial"]])]
        started = time.time()
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=20)
        assert server.returncode == 0, err
        assert time.time() - started < 10
        assert out.splitlines()[-1] == (
            f"optuna-dashboard for sweep {result.sweep} (study {result.sweep}) on "
            f"http://127.0.0.1:{port}/dashboard/studies/0"
        )
        assert "Traceback" not in err
    finally:
        server.kill()
        server.communicate()


def test_a_grid_sweep_without_a_study_gets_one_from_its_journal(settings):
    result = sweep(settings, "grid")
    (result.sweep_dir / "optuna.journal").unlink()
    port = free_port()
    server = serve(result.sweep_dir, port)
    try:
        page = get(port, "/api/studies/0", server)
        assert len(page["trials"]) == 4
    finally:
        server.kill()
        server.communicate()
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.sweep_dir / "optuna.journal"))
    )
    assert len(optuna.load_study(study_name=result.sweep, storage=storage).trials) == 4


def test_a_taken_port_is_one_line(settings):
    result = sweep(settings, "grid")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "sweeper", "dashboard", str(result.sweep_dir), "--port",
             str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: --port must be free on 127.0.0.1, got {port} (Address already in use) "
        f"(command line: --port); pick another, e.g. --port {port + 1}"
    )
