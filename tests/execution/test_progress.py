"""What a user watching a sweep sees: status lines off a terminal, the live display on one, and
the Ray dashboard."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from sweeper._journal import TrialRecord
from sweeper.execution._placement import (
    PlacementWatch,
    cluster_totals,
    gangs_that_fit,
    waiting_warning,
    why_unplaceable,
)
from sweeper.execution._progress import SweepProgress
from sweeper.execution._sweep import run
from sweeper.settings import load_settings
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
TRAINABLES = ROOT / "tests" / "_code" / "trainables.py"


def make_spec(**search):
    return parse_spec(
        {
            "name": "progress",
            "framework": "python",
            "entrypoint": f"{TRAINABLES}:steps",
            "search": {"method": "grid", "metric": "score", "mode": "max", **search},
            "parameters": {"x": {"choice": [1, 2, 3, 4]}, "epochs": 4, "sleep": 0.3},
            "resources": {"gpus": 0.5},
        },
        base_dir=ROOT,
    )


def record(name, state, step=0, score=None, x=1, gpu_seconds=0.0):
    rec = TrialRecord(name, {"x": x, "epochs": 4}, state=state, steps=step, gpus=0.5)
    if score is not None:
        rec.metrics["score"] = score
    rec.gpu_seconds = gpu_seconds
    return rec


RECORDS = [
    record("trial-0001", "completed", 4, 1.5, x=1, gpu_seconds=1800.0),
    record("trial-0002", "stopped", 1, 0.2, x=2, gpu_seconds=360.0),
    record("trial-0003", "running", 2, 0.9, x=3),
    record("trial-0004", "queued", x=4),
]


def progress(**options) -> SweepProgress:
    return SweepProgress(
        make_spec(),
        "progress-1",
        print,
        lambda: RECORDS,
        lambda: sum(r.gpu_seconds for r in RECORDS),
        **options,
    )


def test_summary_counts_states_and_shows_the_best_and_gpu_hours():
    line = progress().summary()
    assert re.fullmatch(
        r"2/4 done \(1 completed, 1 stopped\); 1 running, 1 queued; "
        r"best score=1\.5 \(trial-0001\); 0\.6 GPU-h; elapsed 0:00:0\d",
        line,
    ), line


def test_the_live_display_lists_the_running_trials():
    console = Console(record=True, width=120)
    console.print(progress(live=True)._renderable())
    text = console.export_text()
    assert text.splitlines()[0].startswith("sweep progress-1: 2/4 done")
    assert "best trial-0001: x=1" in text
    (row,) = [line for line in text.splitlines() if line.startswith("trial-0003")]
    assert row.split() == ["trial-0003", "running", "2", "0.9", "x=3"]
    assert "trial-0004" not in text  # queued trials are counted, not listed


def test_the_live_display_fits_an_80_by_24_terminal():
    many = [record(f"trial-{i:04d}", "running", 0, x=123456.789012 + i) for i in range(1, 31)]
    view = SweepProgress(make_spec(), "progress-1", print, lambda: many, lambda: 0.0, live=True)
    console = Console(record=True, width=80, height=24)
    view._display = SimpleNamespace(console=console)  # the live display's terminal
    console.print(view._renderable())
    lines = console.export_text().splitlines()
    rows = [line for line in lines if line.startswith("trial-")]
    assert len(rows) == 12 and lines[-1] == "... and 18 more running"
    assert all(len(line) <= 80 for line in lines)
    assert rows[0].split()[:3] == ["trial-0001", "running", "-"]  # no report yet: no step 0


@pytest.mark.usefixtures("ray_session")
def test_off_a_terminal_the_sweep_prints_periodic_status_lines(tmp_path):
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
            "SWEEPER_CONSOLE_PROGRESS_INTERVAL": "1",
        }
    )
    lines: list[str] = []
    started = time.time()
    run(make_spec(concurrency=2), settings, echo=lines.append)
    elapsed = time.time() - started
    status = [line for line in lines if line.startswith("[progress] ")]
    assert status
    assert len(status) <= elapsed + 1  # one a second at most: the log is never flooded
    pattern = (
        r"\[progress\] \d/4 done( \(\d completed\))?; \d running, \d queued; "
        r"(best score=[0-9.]+ \(trial-\d{4}\); )?[0-9.e-]+ GPU-h; elapsed 0:00:\d\d"
    )
    for line in status:
        assert re.fullmatch(pattern, line), line
    assert any(
        "running" in line and not line.startswith("[progress] 0/4 done; 0 running")
        for line in status
    )
    assert sum(1 for line in lines if re.match(r"\[\d/4\] trial-\d{4} completed", line)) == 4


# --- the Ray dashboard ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    """Whether an HTTP server answers at ``url`` (Ray's token authentication may say 401)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as error:
        return error.code == 401
    except OSError:
        return False


def sweep_while_polling(
    tmp_path: Path, port: int, *flags: str
) -> tuple[str, list[bool], list[bool]]:
    """Run a sweep through the CLI; poll the dashboard's port on 127.0.0.1 and on this
    machine's other address while trials run."""
    (tmp_path / "experiment.yml").write_text(
        f"name: dash\nframework: python\nentrypoint: {TRAINABLES}:steps\n"
        "parameters: {x: {choice: [1, 2]}, epochs: 10, sleep: 0.4}\n"
        "search: {method: grid, metric: score, mode: max, concurrency: 2}\n"
    )
    env = {
        **os.environ,
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
        "SWEEPER_RAY_NUM_CPUS": "2",
        "SWEEPER_RAY_DASHBOARD_PORT": str(port),
    }
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweeper", "run", "experiment.yml", *flags],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    other = socket.gethostbyname(socket.gethostname())
    local, remote = [], []
    journal = None
    deadline = time.time() + 120
    while driver.poll() is None and time.time() < deadline:
        results = tmp_path / "results"
        if journal is None and results.is_dir() and any(results.iterdir()):
            journal = next(results.iterdir()) / "trials.jsonl"
        if journal is not None and journal.is_file() and '"running"' in journal.read_text():
            local.append(answers(f"http://127.0.0.1:{port}/api/version"))
            if other != "127.0.0.1":
                remote.append(answers(f"http://{other}:{port}/api/version"))
        time.sleep(0.5)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, out + err
    return out, local, remote


@pytest.mark.slow
def test_the_dashboard_answers_on_127_0_0_1_while_the_sweep_runs(tmp_path):
    port = free_port()
    out, local, remote = sweep_while_polling(tmp_path, port)
    assert f"on a local Ray (dashboard: http://127.0.0.1:{port}" in out.splitlines()[0]
    assert local and any(local)
    assert not any(remote)  # not on the machine's other interfaces


@pytest.mark.slow
def test_no_dashboard_starts_none(tmp_path):
    port = free_port()
    out, local, _ = sweep_while_polling(tmp_path, port, "--no-dashboard")
    assert out.splitlines()[0].endswith("on a local Ray")
    assert local and not any(local)


# --- trials no node can hold (on a cluster) ------------------------------------------------------

GIB = 2**30
NO_GPU = {"CPU": 2.0, "memory": 3.2 * GIB}
ONE_GPU = {"CPU": 2.0, "GPU": 1.0, "memory": 4.0 * GIB}


def test_the_warning_names_the_resource_and_the_cluster_s_totals():
    why = why_unplaceable([NO_GPU], cpus=1, gpus=1, memory=None)
    assert why == "resources.gpus: the largest of 1 node(s) has 0"
    assert waiting_warning(why, cluster_totals([NO_GPU]), 3) == (
        "warning: 3 trials waiting: no node can hold a trial (resources.gpus: the largest of "
        "1 node(s) has 0); cluster has 1 node, 2 CPUs, 0 GPUs, 3.2 GiB memory; add a node that "
        "has it or ask for less"
    )
    assert waiting_warning(why, "1 node", 1).startswith("warning: 1 trial waiting: no node")
    assert waiting_warning(why, "1 node").startswith("warning: trials waiting: no node")
    assert cluster_totals([NO_GPU, ONE_GPU]) == "2 nodes, 4 CPUs, 1 GPU, 7.2 GiB memory"


def test_a_trial_fits_only_on_one_node_that_has_all_it_asks_for():
    nodes = [NO_GPU, ONE_GPU]
    assert why_unplaceable(nodes, cpus=2, gpus=1, memory=4 * GIB) is None
    # Two GPUs in all, one a node: a 2-GPU trial fits on none.
    assert why_unplaceable([ONE_GPU, ONE_GPU], 1, 2, None) == (
        "resources.gpus: the largest of 2 node(s) has 1"
    )
    assert why_unplaceable(nodes, 3, 0, None) == "resources.cpus: the largest of 2 node(s) has 2"
    assert why_unplaceable(nodes, 1, 0, 5 * GIB) == (
        "resources.memory: the largest of 2 node(s) has 4 GiB"
    )
    assert why_unplaceable([], 64, 8, None) is None  # no nodes known: nothing to say


def test_the_watch_warns_while_trials_wait_and_notes_once_a_node_that_fits_joins():
    clusters = iter([[NO_GPU], [NO_GPU], [NO_GPU, ONE_GPU], [NO_GPU, ONE_GPU], [NO_GPU]])
    watch = PlacementWatch(1, 1, None, nodes=lambda: next(clusters))
    assert watch(4).startswith("warning: 4 trials waiting: no node can hold a trial")
    assert watch(4).startswith("warning: 4 trials waiting")
    assert watch(4) == (
        "note: a node that can hold a trial has joined (cluster has 2 nodes, 4 CPUs, 1 GPU, "
        "7.2 GiB memory); waiting trials can start"
    )
    assert watch(2) is None  # it fits: nothing more to say
    assert watch(0) is None  # the node left, but nothing waits any more


def test_the_watch_says_nothing_when_ray_cannot_answer():
    def gone():
        raise RuntimeError("Ray is not initialized")

    watch = PlacementWatch(1, 1, None, nodes=gone)
    assert watch(3) is None


@pytest.mark.parametrize("interval", [0.05, 0.0])
def test_the_watch_is_asked_every_interval_with_the_trials_waiting(
    interval: float, monkeypatch: pytest.MonkeyPatch
):
    import sweeper.execution._progress as progress_module

    monkeypatch.setattr(progress_module, "_WATCH_EVERY", 0.05)  # interval 0: status lines off
    lines: list[str] = []
    asked: list[int] = []
    shown = SweepProgress(
        make_spec(), "progress-1", lines.append, lambda: RECORDS, lambda: 0.0, interval=interval
    )
    shown.watch = lambda waiting: asked.append(waiting) or f"warning: {waiting} waiting"
    with shown:
        time.sleep(0.5)
    assert asked and set(asked) == {1}  # of 4 trials: 2 ended, 1 running, 1 queued
    assert "warning: 1 waiting" in lines
    status = [line for line in lines if line.startswith("[progress] ")]
    assert bool(status) == (interval > 0)


def test_a_packed_gang_needs_one_node_that_holds_every_learner():
    # Two 1-GPU nodes: a trial of 2 one-GPU learners fits spread, never packed.
    nodes = [ONE_GPU, ONE_GPU]
    assert why_unplaceable(nodes, 1, 1, None, learners=2, pack=True) == (
        "resources.gpus for the trial's 2 learners on one node: the largest of 2 node(s) has 1"
    )
    assert why_unplaceable(nodes, 1, 1, None, learners=2, pack=False) is None
    assert why_unplaceable(nodes, 1, 1, None, learners=3, pack=False) == (
        "resources.learners: the 2 node(s) hold 2 of the trial's 3 learners"
    )


def test_gangs_that_fit_counts_whole_trials_of_learners():
    nodes = [NO_GPU, ONE_GPU]  # 2 + 2 CPUs, 1 GPU
    assert gangs_that_fit(nodes, cpus=1, gpus=0, memory=None, learners=2) == 2
    assert gangs_that_fit(nodes, cpus=1, gpus=1, memory=None, learners=2) == 0
    assert gangs_that_fit(nodes, cpus=2, gpus=0, memory=None, learners=2) == 1
