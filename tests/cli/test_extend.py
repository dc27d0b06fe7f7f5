"""``sweeper extend``, ``run --warm-start`` and ``plan --extend/--warm-start/--from`` as users
type them: names of sweeps, one-line errors with their exit codes, what plan prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from sweeper._journal import SweepState
from sweeper.cli._main import main
from sweeper.execution._sweep import SweepResult, run
from sweeper.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "tests" / "_code" / "trainables.py"

pytestmark = pytest.mark.usefixtures("ray_session")


def data(method: str = "optuna", **search: Any) -> dict[str, Any]:
    parameters = (
        {"x": {"choice": [1.0, 2.0]}, "y": {"choice": [-1.0, 0.0]}}
        if method == "grid"
        else {"x": {"uniform": [0.0, 4.0]}, "y": {"uniform": [-3.0, 1.0]}}
    )
    return {
        "name": "grow",
        "framework": "python",
        "entrypoint": f"{CODE}:quadratic",
        "parameters": parameters,
        "search": {"method": method, "metric": "score", "mode": "max", **search},
    }


class Project:
    def __init__(self, tmp_path: Path, settings) -> None:
        self.folder = tmp_path
        self.settings = settings
        self.env = {
            "SWEEPER_RESULTS_DIR": str(settings.results.dir),
            "SWEEPER_MLFLOW_TRACKING_URI": settings.mlflow.tracking_uri,
        }

    def sweep(self, spec: dict[str, Any]) -> SweepResult:
        return run(parse_spec(spec, base_dir=ROOT), self.settings, echo=None)

    def write(self, spec: dict[str, Any], name: str = "new.yml") -> Path:
        path = self.folder / name
        path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        return path

    def sweeper(self, *args: str) -> Result:
        return CliRunner(env=self.env).invoke(main, list(args))


@pytest.fixture
def project(tmp_path: Path, settings, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.chdir(tmp_path)
    return Project(tmp_path, settings)


@pytest.fixture(scope="module")
def two_trials(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, SweepResult]:
    """A finished 2-trial sweep the refused extensions below leave as it was."""
    from sweeper.settings import load_settings

    folder = tmp_path_factory.mktemp("two-trials")
    settings = load_settings(
        environ={
            "SWEEPER_MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "SWEEPER_RESULTS_DIR": str(folder / "results"),
        }
    )
    project = Project(folder, settings)
    return project, project.sweep(data(trials=2, seed=0))


def test_extend_by_spec_name_says_which_sweep_and_runs_the_new_trials(project):
    first = project.sweep(data(trials=2, seed=0))
    done = project.sweeper("extend", "grow", "--trials", "+2")
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"sweep {first.sweep} (the only sweep of spec grow)\n")
    assert f"extending sweep {first.sweep} (extension 1, session 2)" in done.output
    assert "  search.trials: 2 -> 4" in done.output
    assert f"sweep {first.sweep}: 2 of 4 trials to run" in done.output
    assert SweepState.load(first.sweep_dir).status == "completed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--trials", "+0"],
            "error: --trials must be +N or a total above the sweep's 2 trials, got '+0' "
            "(command line: --trials); e.g. sweeper extend {sweep} --trials +10",
        ),
        (
            ["--trials", "lots"],
            "error: --trials must be +N or a total above the sweep's 2 trials, got 'lots' "
            "(command line: --trials); e.g. sweeper extend {sweep} --trials +10",
        ),
        (
            ["--trials", "+999999"],
            "error: --trials must make at most 100000 trials in all, got '+999999' (1000001) "
            "(command line: --trials)",
        ),
        (
            ["--max-duration", "0"],
            "error: --max-duration must be > 0 seconds, got 0.0 (command line: --max-duration)",
        ),
        (
            [],
            "error: an extension must change something, got the sweep's own spec ({sweep}) "
            "(command line); give --trials +N, --spec new.yml, --max-gpu-hours or "
            "--max-duration; to continue it as it is: sweeper resume {sweep}",
        ),
        (
            ["--max-gpu-hours", "-1"],
            "error: --max-gpu-hours must be > 0, got -1.0 (command line: --max-gpu-hours)",
        ),
        (
            ["--max-duration", "soon"],
            "error: --max-duration must be seconds or a duration such as 90s, 30m, 2h, got "
            "'soon' (command line: --max-duration); combine d, h, m and s, e.g. 1h30m",
        ),
    ],
)
def test_extend_refuses_bad_arguments_in_one_line(two_trials, args, message):
    project, first = two_trials
    done = project.sweeper("extend", first.sweep, *args)
    assert done.exit_code == 2, done.output
    assert done.output.strip() == message.format(sweep=first.sweep)


def test_extend_refuses_a_changed_metric_pointing_to_a_warm_start(project):
    first = project.sweep(data(trials=2, seed=0))
    other = data(trials=4, seed=0)
    other["search"]["metric"] = "loss"
    project.write(other)
    done = project.sweeper("extend", first.sweep, "--spec", "new.yml")
    assert done.exit_code == 2
    assert done.output.strip() == (
        f"error: search.metric must stay 'score' to extend sweep {first.sweep} (an extension "
        f"changes only the search space, trials and limits), got 'loss' (new.yml: "
        f"search.metric); start a new sweep with --warm-start {first.sweep}"
    )


def test_extend_a_grid_with_trials_is_refused(project):
    first = project.sweep(data("grid"))
    done = project.sweeper("extend", first.sweep, "--trials", "+2")
    assert done.exit_code == 2
    assert done.output.strip() == (
        "error: --trials must not be given for a grid (its trials are its points), got +2 "
        f"(command line: --trials); add values to the grid's parameters in a new spec: "
        f"sweeper extend {first.sweep} --spec new.yml"
    )


def test_run_with_a_warm_start_that_names_no_sweep(project):
    path = project.write(data(trials=1), "experiment.yml")
    done = project.sweeper("run", str(path), "--warm-start", "nothing-like-it")
    assert done.exit_code == 2
    assert done.output.strip() == (
        "error: --warm-start must be a sweep folder, id, id prefix or spec name, got "
        f"'nothing-like-it' (command line: --warm-start); sweeps are folders under "
        f"{project.settings.results.dir}"
    )


def test_plan_shows_what_an_extension_carries_over_and_costs(project):
    first = project.sweep(data(trials=3, seed=0))
    xs = sorted(first.results["params.x"])
    narrow = data(trials=5, seed=0)
    narrow["parameters"]["x"] = {"uniform": [0.0, (xs[1] + xs[2]) / 2]}
    done = project.sweeper("plan", str(project.write(narrow)), "--extend", "grow")
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert f"extends sweep {first.sweep} (3 trials so far):" in lines
    assert "  search.trials: 3 -> 5" in lines
    assert any(line.startswith("  parameters.x: uniform(0, 4) -> uniform(0, ") for line in lines)
    assert (
        "carries over: 2 of 3 ended trials fit the new space (1 do not; they stay in the results)"
        in lines
    )
    (cost,) = [line for line in lines if line.startswith("cost of ")]
    assert cost.startswith(f"cost of 2 trials (from 3 trials of sweep {first.sweep}: ")
    assert "GPU-hours" in cost and "wall time" in cost


def test_plan_estimates_from_the_newest_sweep_of_the_spec_name(project):
    first = project.sweep(data(trials=2, seed=0))
    path = project.write(data(trials=10, seed=1), "experiment.yml")
    done = project.sweeper("plan", str(path))
    assert done.exit_code == 0, done.output
    (cost,) = [line for line in done.output.splitlines() if line.startswith("cost of ")]
    assert cost.startswith(f"cost of 10 trials (from 2 trials of sweep {first.sweep}: ")
    done = project.sweeper("plan", str(path), "--warm-start", first.sweep)
    assert f"warm start: 2 trials of sweep {first.sweep}" in done.output.splitlines()


def test_plan_of_a_grid_extension_lists_only_the_new_points(project):
    first = project.sweep(data("grid"))
    grown = data("grid")
    grown["parameters"]["x"] = {"choice": [1.0, 2.0, 3.0]}
    done = project.sweeper("plan", str(project.write(grown)), "--extend", first.sweep)
    assert done.exit_code == 0, done.output
    grid = done.output.split("grid:\n", 1)[1].splitlines()
    assert grid == ["  trial-0005  x=3, y=-1", "  trial-0006  x=3, y=0"]
