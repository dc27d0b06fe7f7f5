"""Sweeps that grow, through real sweeps (the session's Ray, MLflow in the test's folder):
``extend`` with more trials or a changed space, warm starts, initial points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pytest
import yaml
from click.testing import CliRunner

from sweeper._journal import SweepState
from sweeper._layout import SPEC_FILE, earlier_spec
from sweeper.cli._main import main
from sweeper.errors import SpecError, UsageError
from sweeper.execution._extend import extend
from sweeper.execution._sweep import run
from sweeper.search._optuna import SEED_ATTR, TRIAL_ATTR
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "tests" / "_code" / "trainables.py"

pytestmark = pytest.mark.usefixtures("ray_session")

SPACE = {"x": {"uniform": [0.0, 4.0]}, "y": {"uniform": [-3.0, 1.0]}}


def spec_data(method: str = "optuna", parameters: dict[str, Any] | None = None, **search: Any):
    return {
        "name": "grow",
        "framework": "python",
        "entrypoint": f"{CODE}:quadratic",
        "parameters": parameters or SPACE,
        "search": {"method": method, "metric": "score", "mode": "max", **search},
    }


def make(data: dict[str, Any]):
    return parse_spec(data, base_dir=ROOT)


def write(tmp_path: Path, data: dict[str, Any], name: str = "new.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def study(sweep_dir: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep_dir / "optuna.journal"))
    )
    return optuna.load_study(study_name=name, storage=storage)


def children(settings, parent: str) -> Any:
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    return mlflow.search_runs(
        experiment_names=["grow"], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )


def test_extending_an_optuna_sweep_continues_its_study_parent_run_and_numbering(settings):
    first = run(make(spec_data(trials=6, seed=0, concurrency=2)), settings, echo=None)
    more = extend(first.sweep_dir, settings, trials="+6", echo=None)
    assert more.status == "completed" and more.sweep_dir == first.sweep_dir
    names = list(more.results["trial"])
    assert names == [f"trial-{i:04d}" for i in range(1, 13)]
    assert list(more.results["attempts"]) == [1] * 12  # the first six did not run again
    # One study of 12 trials, named in order: the same study went on.
    trials = study(first.sweep_dir, first.sweep).trials
    assert [t.user_attrs[TRIAL_ATTR] for t in trials] == names
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # The sampler went on from its history: the new trials are not the first six drawn again.
    fresh = run(make(spec_data(trials=6, seed=0, concurrency=2)), settings, echo=None)
    again = sorted(round(x, 9) for x in fresh.results["params.x"])
    new = sorted(round(x, 9) for x in more.results["params.x"][6:])
    assert again == sorted(round(x, 9) for x in first.results["params.x"])  # seeded alike
    assert not set(new) & set(again)
    # One MLflow parent run with 12 child runs, and the state says what happened.
    runs = children(settings, first.parent_run_id)
    assert sorted(runs["tags.mlflow.runName"]) == names
    state = SweepState.load(first.sweep_dir)
    assert state.sessions == 2 and len(state.extensions) == 1
    assert state.extensions[0]["changes"] == ["search.trials: 6 -> 12"]
    assert yaml.safe_load((first.sweep_dir / SPEC_FILE).read_text())["search"]["trials"] == 12
    assert yaml.safe_load(earlier_spec(first.sweep_dir, 1).read_text())["search"]["trials"] == 6
    parent = mlflow.get_run(first.parent_run_id)
    assert parent.data.tags["sweeper.extensions"] == "1"
    assert parent.data.tags["sweeper.trials"] == "12"


def test_a_wider_range_carries_the_old_trials_into_a_study_of_the_new_space(settings, tmp_path):
    narrow = {"x": {"uniform": [0.0, 4.0]}, "y": {"uniform": [-3.0, 1.0]}}
    first = run(make(spec_data(parameters=narrow, trials=6, seed=1)), settings, echo=None)
    wider = {
        "x": {"uniform": [0.0, 8.0]},
        "y": {"uniform": [-3.0, 1.0]},
        "z": {"choice": [1, 2], "default": 1},
    }
    path = write(tmp_path, spec_data(parameters=wider, trials=6, seed=1))
    more = extend(first.sweep_dir, settings, spec=path, trials="+3", echo=None)
    assert list(more.results["trial"]) == [f"trial-{i:04d}" for i in range(1, 10)]
    state = SweepState.load(first.sweep_dir)
    (extension,) = state.extensions
    assert "parameters.x: uniform(0, 4) -> uniform(0, 8)" in extension["changes"]
    assert "parameters.z: new, choice(1, 2) (earlier trials: 1)" in extension["changes"]
    names = {s.study_name for s in optuna.get_all_study_summaries(study_storage(first))}
    (new_name,) = names - {first.sweep}
    trials = study(first.sweep_dir, new_name).trials
    # The six old trials first, told with the new distributions (z at its default), then
    # three new ones numbered after them.
    carried = trials[:6]
    assert [t.user_attrs[TRIAL_ATTR] for t in carried] == [f"trial-{i:04d}" for i in range(1, 7)]
    assert all(t.params["z"] == 1 for t in carried)
    assert all(t.distributions["x"].high == 8.0 for t in carried)
    old_x = list(first.results["params.x"])
    assert [t.params["x"] for t in carried] == pytest.approx(old_x)
    new = [t.user_attrs[TRIAL_ATTR] for t in trials[6:]]
    assert new == ["trial-0007", "trial-0008", "trial-0009"]


def study_storage(result) -> Any:
    return optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.sweep_dir / "optuna.journal"))
    )


def test_a_narrower_range_carries_only_the_trials_that_fit_and_keeps_all(settings, tmp_path):
    first = run(make(spec_data(trials=6, seed=2)), settings, echo=None)
    xs = list(first.results["params.x"])
    cut = sorted(xs)[3]  # keeps the three smallest x below the new high
    narrow = {"x": {"uniform": [0.0, cut - 1e-9]}, "y": {"uniform": [-3.0, 1.0]}}
    path = write(tmp_path, spec_data(parameters=narrow, trials=8, seed=2))
    more = extend(first.sweep_dir, settings, spec=path, echo=None)
    assert len(more.results) == 8  # the six old trials stay in the results either way
    names = {s.study_name for s in optuna.get_all_study_summaries(study_storage(first))}
    (new_name,) = names - {first.sweep}
    trials = study(first.sweep_dir, new_name).trials
    carried = [t for t in trials if t.user_attrs[TRIAL_ATTR] <= "trial-0006"]
    assert len(carried) == 3
    assert all(t.params["x"] < cut for t in carried)


def test_a_framework_change_is_refused_and_leaves_the_sweep_as_it_was(settings, tmp_path):
    first = run(make(spec_data(trials=2, seed=0)), settings, echo=None)
    before = (first.sweep_dir / SPEC_FILE).read_text()
    state_before = (first.sweep_dir / "state.json").read_text()
    other = {**spec_data(trials=4, seed=0), "framework": "command", "command": "python train.py"}
    del other["entrypoint"]
    path = write(tmp_path, other)
    with pytest.raises(SpecError) as info:
        extend(first.sweep_dir, settings, spec=path, echo=None)
    assert str(info.value) == (
        f"framework must stay 'python' to extend sweep {first.sweep} (an extension changes "
        f"only the search space, trials and limits), got 'command' ({path}: framework); "
        f"start a new sweep with --warm-start {first.sweep}"
    )
    assert (first.sweep_dir / SPEC_FILE).read_text() == before
    assert (first.sweep_dir / "state.json").read_text() == state_before


def test_extending_needs_more_trials_than_the_sweep_has(settings):
    first = run(make(spec_data(trials=2, seed=0)), settings, echo=None)
    with pytest.raises(UsageError, match=r"^--trials must be \+N or a total above the sweep's 2"):
        extend(first.sweep_dir, settings, trials="2", echo=None)
    with pytest.raises(UsageError, match=r"^an extension must change something"):
        extend(first.sweep_dir, settings, echo=None)


def test_a_grid_grows_by_its_values_only(settings, tmp_path):
    grid = {"x": {"choice": [1.0, 2.0]}, "y": {"choice": [-1.0, 0.0]}}
    first = run(make(spec_data("grid", parameters=grid)), settings, echo=None)
    with pytest.raises(UsageError, match=r"^--trials must not be given for a grid"):
        extend(first.sweep_dir, settings, trials="+2", echo=None)
    fewer = {"x": {"choice": [2.0, 3.0]}, "y": {"choice": [-1.0, 0.0]}}
    path = write(tmp_path, spec_data("grid", fewer))
    with pytest.raises(SpecError, match=r"^parameters.x must keep the grid's .* without 1.0"):
        extend(first.sweep_dir, settings, spec=path, echo=None)
    more = {"x": {"choice": [1.0, 2.0, 3.0]}, "y": {"choice": [-1.0, 0.0]}}
    grown = extend(
        first.sweep_dir, settings, spec=write(tmp_path, spec_data("grid", more)), echo=None
    )
    points = list(zip(grown.results["params.x"], grown.results["params.y"], strict=True))
    # The old four points keep their trials; the new value's two points come after them.
    assert points == [(1, -1), (1, 0), (2, -1), (2, 0), (3, -1), (3, 0)]
    assert list(grown.results["attempts"]) == [1] * 6


def test_a_random_sweep_extended_runs_the_points_a_longer_sweep_would_have(settings):
    first = run(make(spec_data("random", trials=3, seed=5)), settings, echo=None)
    grown = extend(first.sweep_dir, settings, trials=6, echo=None)
    longer = run(make(spec_data("random", trials=6, seed=5)), settings, echo=None)
    assert list(grown.results["params.x"]) == list(longer.results["params.x"])


def test_a_warm_start_from_two_sweeps_seeds_the_study_before_its_first_trial(settings):
    a = run(make(spec_data(trials=3, seed=0)), settings, echo=None)
    b = run(make(spec_data(trials=2, seed=9)), settings, echo=None)
    lines: list[str] = []
    new = run(
        make(spec_data(trials=3, seed=4, warm_start=[a.sweep])),
        settings,
        echo=lines.append,
        warm_start=[b.sweep],
    )
    assert f"warm start: 3 trials of sweep {a.sweep}" in lines
    assert f"warm start: 2 trials of sweep {b.sweep}" in lines
    trials = study(new.sweep_dir, new.sweep).trials
    seeded = [t.user_attrs.get(SEED_ATTR) for t in trials[:5]]
    assert seeded == [f"{a.sweep}/trial-000{i}" for i in (1, 2, 3)] + [
        f"{b.sweep}/trial-000{i}" for i in (1, 2)
    ]
    assert [t.value for t in trials[:3]] == pytest.approx(list(a.results["score"]))
    assert [t.user_attrs.get(TRIAL_ATTR) for t in trials[5:]] == [
        "trial-0001",
        "trial-0002",
        "trial-0003",
    ]
    assert list(new.results["trial"]) == ["trial-0001", "trial-0002", "trial-0003"]
    state = SweepState.load(new.sweep_dir)
    assert state.seeded_from == [
        {"sweep": a.sweep, "trials": 3, "left_out": 0},
        {"sweep": b.sweep, "trials": 2, "left_out": 0},
    ]
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    tags = mlflow.get_run(new.parent_run_id).data.tags
    assert tags["sweeper.warm_start"] == f"{a.sweep}, {b.sweep}"
    assert tags["sweeper.warm_start.trials"] == "5"
    shown = CliRunner(env={"SWEEPER_RESULTS_DIR": str(new.sweep_dir.parent)}).invoke(
        main, ["show", new.sweep]
    )
    assert f"seeded:  3 trials of sweep {a.sweep}" in shown.output


def test_a_warm_start_leaves_out_trials_outside_the_new_space(settings):
    a = run(make(spec_data(trials=4, seed=3)), settings, echo=None)
    xs = sorted(a.results["params.x"])
    narrow = {"x": {"uniform": [0.0, (xs[1] + xs[2]) / 2]}, "y": {"uniform": [-3.0, 1.0]}}
    lines: list[str] = []
    new = run(
        make(spec_data(parameters=narrow, trials=1, seed=4)),
        settings,
        echo=lines.append,
        warm_start=[a.sweep],
    )
    assert f"warm start: 2 trials of sweep {a.sweep}; 2 did not fit the space" in lines
    assert len(study(new.sweep_dir, new.sweep).trials) == 3


def test_a_warm_start_names_a_missing_sweep_in_one_line(settings):
    with pytest.raises(SpecError) as info:
        run(make(spec_data(trials=1, warm_start=["no-such"])), settings, echo=None)
    assert str(info.value).startswith(
        "search.warm_start.0 must be a sweep folder, id, id prefix or spec name, got "
        "'no-such' (experiment.yml: search.warm_start.0)"
    )
    assert not (Path(settings.results.dir)).exists() or not any(
        Path(settings.results.dir).iterdir()
    )


def test_initial_points_run_first(settings):
    points = [{"x": 2.0, "y": -1.0}, {"x": 0.5}]
    new = run(make(spec_data(trials=3, seed=0, initial_points=points)), settings, echo=None)
    frame = new.results.set_index("trial")
    assert (frame.loc["trial-0001", "params.x"], frame.loc["trial-0001", "params.y"]) == (2, -1)
    assert frame.loc["trial-0002", "params.x"] == 0.5
    random = run(
        make(spec_data("random", trials=3, seed=0, initial_points=points)), settings, echo=None
    )
    assert list(random.results["params.x"])[:2] == [2.0, 0.5]
    grid = {"x": {"choice": [1.0, 2.0, 3.0]}, "y": {"choice": [-1.0, 0.0]}}
    ordered = run(
        make(spec_data("grid", parameters=grid, initial_points=[{"x": 3.0, "y": 0.0}])),
        settings,
        echo=None,
    )
    assert (ordered.results["params.x"][0], ordered.results["params.y"][0]) == (3.0, 0.0)
    assert len(ordered.results) == 6


def test_skip_evaluated_leaves_out_the_grid_points_an_earlier_sweep_ran(settings):
    grid = {"x": {"choice": [1.0, 2.0]}, "y": {"choice": [-1.0, 0.0]}}
    first = run(make(spec_data("grid", parameters=grid)), settings, echo=None)
    wider = {"x": {"choice": [1.0, 2.0, 3.0]}, "y": {"choice": [-1.0, 0.0]}}
    new = run(
        make(spec_data("grid", parameters=wider, skip_evaluated=True)),
        settings,
        echo=None,
        warm_start=[first.sweep],
    )
    assert list(new.results["params.x"]) == [3.0, 3.0]
    points = json.loads((new.sweep_dir / "points.json").read_text())
    assert points == [{"x": 3.0, "y": -1.0}, {"x": 3.0, "y": 0.0}]
