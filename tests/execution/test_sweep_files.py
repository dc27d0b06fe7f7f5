"""A sweep's own files when they cannot be written: one error naming the folder, nothing
half-written, the sweep resumable. None of these tests starts Ray."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweeper._journal import SweepState
from sweeper.errors import SweepError
from sweeper.execution import _ending, _sweep
from sweeper.settings import load_settings
from sweeper.spec import load_spec
from sweeper.tracking import Tracker

SPEC = """\
name: files
framework: python
entrypoint: train.py:train
search: {method: grid, metric: loss, mode: min}
parameters:
  x: {choice: [1, 2]}
"""


@pytest.fixture
def project(in_tmp: Path) -> Path:
    (in_tmp / "train.py").write_text("def train(params, ctx):\n    pass\n", encoding="utf-8")
    (in_tmp / "experiment.yml").write_text(SPEC, encoding="utf-8")
    return in_tmp


def settings_for(folder: Path, results: Path):
    return load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(results),
        }
    )


def test_a_results_folder_that_cannot_be_made_is_refused_before_mlflow(project: Path) -> None:
    (project / "a-file").write_text("", encoding="utf-8")
    results = project / "a-file" / "results"
    with pytest.raises(SweepError) as caught:
        _sweep.run(load_spec("experiment.yml"), settings_for(project, results), echo=None)
    assert str(caught.value) == (
        f"the results folder must be writable, got {str(results)!r} ({project / 'a-file'} is "
        "not writable); set [results] dir in sweeper.toml, SWEEPER_RESULTS_DIR or the spec's "
        "results"
    )
    assert not (project / "mlflow.db").exists()


def test_a_sweep_that_could_not_start_leaves_no_folder(project: Path, monkeypatch) -> None:
    def refuse(self, *args, **kwargs):
        raise SweepError("MLflow tracking store must be reachable, got nothing")

    monkeypatch.setattr(Tracker, "start_sweep", refuse)
    results = project / "results"
    with pytest.raises(SweepError):
        _sweep.run(load_spec("experiment.yml"), settings_for(project, results), echo=None)
    assert list(results.iterdir()) == []


def test_a_results_file_that_cannot_be_written_is_one_error(project: Path, monkeypatch) -> None:
    spec = load_spec("experiment.yml")
    sweep_dir = project / "results" / "files-1"
    sweep_dir.mkdir(parents=True)
    state = SweepState(sweep="files-1", spec="files")
    state.save(sweep_dir)
    tracker = Tracker(f"sqlite:///{project / 'mlflow.db'}", "files")
    tracker.start_sweep("files-1", params={}, tags={})

    def read_only(frame, folder):
        raise OSError(errno.EROFS, "Read-only file system", str(folder / "results.csv"))

    monkeypatch.setattr(_ending, "write_results", read_only)
    with pytest.raises(SweepError) as caught:
        _ending.finalize(spec, state, sweep_dir, tracker, {}, "completed", None, 0.0)
    assert str(caught.value) == (
        f"the sweep folder must be writable, got Read-only file system writing "
        f"{sweep_dir / 'results.csv'}; free space or fix permissions, then: sweeper resume "
        f"{sweep_dir}"
    )
    # state.json still says what it said: the sweep resumes once the folder is writable.
    assert json.loads((sweep_dir / "state.json").read_text())["status"] == "running"


@pytest.mark.parametrize(
    ("resources", "has"),
    [
        ("{cpus: 3}", "it has 2 CPUs: environment: SWEEPER_RAY_NUM_CPUS"),
        ("{gpus: 1}", "it has 0 GPUs: environment: SWEEPER_RAY_NUM_GPUS"),
        ("{gpus: 1000}", "it has 0 GPUs: detected"),
    ],
)
def test_more_cpus_or_gpus_than_the_local_ray_has_is_refused_before_anything(
    project: Path, resources: str, has: str
) -> None:
    (project / "experiment.yml").write_text(SPEC + f"resources: {resources}\n", encoding="utf-8")
    environ = {
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "SWEEPER_RESULTS_DIR": str(project / "results"),
        "SWEEPER_RAY_NUM_CPUS": "2",
    }
    if "environment: SWEEPER_RAY_NUM_GPUS" in has:
        environ["SWEEPER_RAY_NUM_GPUS"] = "0"
    field = resources[1:5]
    # A process of its own: in this one the tests' shared Ray may be up, and a sweep uses it.
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "run", "experiment.yml"],
        cwd=project, env={**os.environ, **environ}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    want = resources.split()[1].rstrip("}")
    assert done.stderr == (
        f"error: resources.{field} must fit on this machine's local Ray, got {want} ({has}) "
        f"(experiment.yml: resources.{field}); ask for fewer, set [ray] num_{field} in "
        "sweeper.toml (it may exceed what the machine has, to try queueing), or run on a "
        "cluster with --address\n"
    )
    assert not (project / "results").exists() and not (project / "mlflow.db").exists()


def test_a_local_ray_must_hold_every_learner_of_a_trial(project: Path) -> None:
    (project / "experiment.yml").write_text(
        SPEC + "resources: {cpus: 1, learners: 3}\n", encoding="utf-8"
    )
    environ = {"SWEEPER_RESULTS_DIR": str(project / "results"), "SWEEPER_RAY_NUM_CPUS": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "run", "experiment.yml"],
        cwd=project, env={**os.environ, **environ}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        "error: resources.cpus must fit on this machine's local Ray, got 3 for 3 learners x 1 "
        "(it has 2 CPUs: environment: SWEEPER_RAY_NUM_CPUS) (experiment.yml: resources.cpus); "
    )
    assert not (project / "results").exists()


def test_a_manifest_asking_for_a_gpu_the_machine_lacks_is_refused_in_its_own_terms(
    project: Path,
) -> None:
    """FfDL's GPU examples (gpus: 1) on a machine without one: refused, naming the manifest's
    field, before anything is written."""
    (project / "manifest.yml").write_text(
        "name: needs-gpu\ngpus: 1\ncpus: 1\nframework:\n  name: caffe\n  version: gpu\n"
        "  command: caffe train -gpu all -solver solver.prototxt\n",
        encoding="utf-8",
    )
    (project / "solver.prototxt").write_text('net: "net.prototxt"\nmax_iter: 1\n')
    (project / "net.prototxt").write_text('name: "n"\n')
    environ = {
        "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "SWEEPER_RESULTS_DIR": str(project / "results"),
        "SWEEPER_RAY_NUM_GPUS": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "run", "manifest.yml"],
        cwd=project, env={**os.environ, **environ}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "error: gpus must fit on this machine's local Ray, got 1 (it has 0 GPUs: environment: "
        "SWEEPER_RAY_NUM_GPUS) (manifest.yml: gpus); ask for fewer, set [ray] num_gpus in "
        "sweeper.toml (it may exceed what the machine has, to try queueing), or run on a "
        "cluster with --address"
    )
    assert not (project / "results").exists() and not (project / "mlflow.db").exists()


def test_a_trial_no_node_can_hold_is_refused_not_left_waiting(
    project: Path, ray_session, monkeypatch
) -> None:
    """A local Ray never grows: a trial larger than every node would wait in silence forever.
    Memory, which Ray sizes as it starts, is checked once it is up."""
    text = SPEC + "resources: {memory: 900TiB}\n"
    (project / "experiment.yml").write_text(text, encoding="utf-8")
    with pytest.raises(SweepError) as caught:
        _sweep.run(
            load_spec("experiment.yml"), settings_for(project, project / "results"), echo=None
        )
    assert re.fullmatch(
        r"a trial's resources must fit on one Ray node, got more than fits \(resources.memory: "
        r"the largest of 1 node\(s\) has [\d.]+ GiB\) \(experiment.yml: resources\); ask for "
        r"less per trial, or run on a cluster that has it",
        str(caught.value),
    ), str(caught.value)
    (sweep_dir,) = (project / "results").iterdir()
    assert SweepState.load(sweep_dir).status == "halted"  # resumable once it can be placed
