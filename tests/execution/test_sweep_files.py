"""A sweep's own files when they cannot be written: one error naming the folder, nothing
half-written, the sweep resumable. None of these tests starts Ray."""

from __future__ import annotations

import errno
import json
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


def test_a_trial_no_node_can_hold_is_refused_not_left_waiting(
    project: Path, ray_session, monkeypatch
) -> None:
    """A local Ray never grows: a trial larger than every node would wait in silence forever."""
    text = SPEC + "resources: {cpus: 64}\n"
    (project / "experiment.yml").write_text(text, encoding="utf-8")
    with pytest.raises(SweepError) as caught:
        _sweep.run(
            load_spec("experiment.yml"), settings_for(project, project / "results"), echo=None
        )
    assert str(caught.value) == (
        "a trial's resources must fit on one Ray node, got more than fits (resources.cpus: the "
        "largest of 1 node(s) has 4) (experiment.yml: resources); ask for less per trial, or "
        "run on a cluster that has it"
    )
    (sweep_dir,) = (project / "results").iterdir()
    assert SweepState.load(sweep_dir).status == "halted"  # resumable once it can be placed
