"""Trials of several learners (sweeper.execution._gang): PyTorch DDP through Ray Train, a
command in FfDL's c10d shape from a manifest, and a learner killed mid-trial."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sweeper.execution._sweep import run
from sweeper.settings import load_settings
from sweeper.spec import load_spec, parse_spec

pytestmark = [pytest.mark.slow, pytest.mark.pytorch]

ROOT = Path(__file__).resolve().parents[2]
C10D = ROOT / "tests" / "_code" / "c10d_train.py"
_CHECKSUM = re.compile(r"learner (\d): epoch (\d+) steps (\d+) checksum (\S+)")


def _settings(tmp_path: Path):
    return load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
        }
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for good but still answers; its state says so.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_ddp_sweep_trains_every_trial_on_two_learners_that_stay_equal(ray_session, tmp_path):
    import mlflow

    spec = load_spec(ROOT / "configs" / "digits-pytorch-ddp.yml").model_copy(deep=True)
    # The example, on one fake GPU per learner (the session's Ray has 2): one trial at a time.
    spec.resources.gpus = 1
    result = run(spec, _settings(tmp_path), echo=None)
    rows = result.results
    epochs = spec.constants["epochs"]
    assert len(rows) == 4 and set(rows["state"]) == {"completed"}
    assert rows["val_accuracy"].max() >= 0.9
    for row in rows.itertuples():
        folder = result.sweep_dir / "trials" / row.trial
        seen: dict[str, list[tuple[str, ...]]] = {}
        for log in ("trial.log", "learner-2.log"):
            seen[log] = _CHECKSUM.findall((folder / log).read_text())
        # Both ranks ran the same steps, and DDP's all-reduce kept their weights equal.
        assert [m[0] for m in seen["trial.log"]] == ["0"] * epochs
        assert [m[0] for m in seen["learner-2.log"]] == ["1"] * epochs
        assert [m[1:] for m in seen["trial.log"]] == [m[1:] for m in seen["learner-2.log"]]
        assert (folder / "output" / "model.pt").stat().st_size > 0  # rank 0's
        # 2 learners x 1 GPU: the trial's GPU time is twice its time.
        assert row.gpus == 2
        assert row.gpu_seconds == pytest.approx(2 * row.duration_s, rel=0.02)
    # Only rank 0's reports reached MLflow: one value per epoch.
    client = mlflow.MlflowClient(result.tracking_uri)
    for run_id in rows["mlflow_run_id"]:
        history = client.get_metric_history(run_id, "val_accuracy")
        assert sorted(m.step for m in history) == list(range(1, epochs + 1))


MANIFEST = """\
name: c10d digits
description: torch.distributed with two learners, in the shape of FfDL's c10d examples
version: "1.0"
gpus: 0
cpus: 1
learners: 2
memory: 1Gb
framework:
  name: pytorch
  version: "2.13"
  command: python3 -u c10d_train.py --epochs 4 --lr 0.5
"""


def test_a_c10d_manifest_of_two_learners_runs_unchanged(tmp_path):
    model = tmp_path / "model-files"
    model.mkdir()
    shutil.copy(C10D, model / "c10d_train.py")
    (tmp_path / "manifest.yml").write_text(MANIFEST, encoding="utf-8")
    env = {
        **os.environ,
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "SWEEPER_RESULTS_DIR": str(tmp_path / "results"),
        "SWEEPER_RAY_NUM_CPUS": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "run", "manifest.yml", "model-files"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (sweep,) = (tmp_path / "results").iterdir()
    trial = sweep / "trials" / "trial-0001"
    records = {
        n: [json.loads(line) for line in (trial / "output" / f"learner-{n}.jsonl").open()]
        for n in (1, 2)
    }
    assert [r["epoch"] for r in records[1]] == [1, 2, 3, 4] == [r["epoch"] for r in records[2]]
    assert [r["checksum"] for r in records[1]] == [r["checksum"] for r in records[2]]
    first, second = records[1][0]["env"], records[2][0]["env"]
    assert (first["RANK"], second["RANK"]) == ("0", "1")
    assert first["WORLD_SIZE"] == second["WORLD_SIZE"] == "2"
    assert first["MASTER_ADDR"] == second["MASTER_ADDR"] and first["MASTER_PORT"]
    assert first["GPU_COUNT"] == "0"
    # The program's file:///job/<training id> rendezvous met in the trial's shared folder.
    assert "learner 2 epoch 4" in (trial / "learner-2.log").read_text()
    assert "learner 1 epoch 4" in (trial / "trial.log").read_text()
    assert "accuracy" in done.stdout  # learner 1's EMetrics reached the sweep
    assert (model / "c10d_train.py").read_text() == C10D.read_text()  # the user's file as it was


def test_a_killed_learner_fails_the_trial_which_retries_as_a_gang(ray_session, tmp_path):
    model = tmp_path / "code"
    model.mkdir()
    shutil.copy(C10D, model / "c10d_train.py")
    spec = parse_spec(
        {
            "name": "gang-kill",
            "framework": "command",
            "command": f"{sys.executable} -u c10d_train.py",
            "parameters": {"epochs": 6, "sleep": 1.5, "lr": 0.5},
            "search": {"method": "grid", "metric": "test_accuracy", "mode": "max"},
            "resources": {"cpus": 1, "learners": 2},
            "limits": {"max_failures": 1},
            "mounts": {"/job": "job"},
        },
        base_dir=model,
    )
    killed: list[int] = []
    results = tmp_path / "results"

    def kill_learner_2() -> None:
        deadline = time.time() + 180
        while time.time() < deadline and not killed:
            for record in results.glob("*/trials/trial-0001/output/learner-2.jsonl"):
                lines = record.read_text().splitlines()
                if len(lines) >= 2:  # mid-trial: two epochs done
                    pid = json.loads(lines[-1])["pid"]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_learner_2, daemon=True)
    killer.start()
    result = run(spec, _settings(tmp_path), echo=None)
    killer.join(5)
    assert killed, "learner 2 never reached its second epoch"
    row = result.results.iloc[0]
    assert (row.state, row.attempts) == ("completed", 2)
    output = result.sweep_dir / "trials" / "trial-0001" / "output"
    records = {n: [json.loads(x) for x in (output / f"learner-{n}.jsonl").open()] for n in (1, 2)}
    # The retry started both learners again, from learner 1's last checkpoint, to the end.
    for n in (1, 2):
        pids = list(dict.fromkeys(r["pid"] for r in records[n]))
        assert len(pids) == 2, records[n]
        assert records[n][-1]["epoch"] == 6
        resumed = [r["epoch"] for r in records[n] if r["pid"] == pids[1]]
        assert resumed[0] > 1 and resumed == list(range(resumed[0], 7))
        # No learner of either attempt is left behind.
        assert not [pid for pid in pids if _alive(pid)]


def test_a_halted_gang_stops_every_learner_and_resumes_from_its_checkpoint(ray_session, tmp_path):
    from sweeper._layout import STOP_FILE
    from sweeper.execution._sweep import resume

    spec = parse_spec(
        {
            "name": "gang-halt",
            "framework": "python",
            "entrypoint": f"{ROOT / 'tests' / '_code' / 'trainables.py'}:learners",
            "parameters": {"epochs": 8, "sleep": 0.5},
            "search": {"method": "grid", "metric": "score", "mode": "max"},
            "resources": {"cpus": 1, "learners": 2},
        }
    )
    settings = _settings(tmp_path)
    results = tmp_path / "results"

    def stop_after_step_3() -> None:  # `sweeper stop`, in-process
        deadline = time.time() + 180
        while time.time() < deadline:
            for log in results.glob("*/trials/trial-0001/output/learners.log"):
                if any(line.split()[1:3] == ["0", "3"] for line in log.read_text().splitlines()):
                    (log.parents[3] / STOP_FILE).write_text("now\n")
                    return
            time.sleep(0.1)

    watcher = threading.Thread(target=stop_after_step_3, daemon=True)
    watcher.start()
    first = run(spec, settings, echo=None)
    watcher.join(5)
    assert first.status == "halted" and first.results["state"].tolist() == ["halted"]
    log = first.sweep_dir / "trials" / "trial-0001" / "output" / "learners.log"
    lines = [line.split() for line in log.read_text().splitlines()]
    pids = {int(pid) for *_, pid in lines}
    assert len(pids) == 2 and not [pid for pid in pids if _alive(pid)]  # both learners ended
    halted_at = max(int(step) for _, rank, step, _ in lines if rank == "0")
    assert halted_at < 8

    second = resume(first.sweep_dir, settings, echo=None)
    assert second.status == "completed"
    row = second.results.iloc[0]
    assert (row.state, row.score) == ("completed", 8.0)  # rank 0's, never rank 1's 108
    again = [line.split() for line in log.read_text().splitlines()][len(lines) :]
    for rank in ("0", "1"):
        steps = [int(step) for attempt, r, step, _ in again if r == rank and attempt == "2"]
        assert steps == list(range(steps[0], 9)) and steps[0] <= halted_at + 1
