"""The ``validate`` and ``plan`` commands, their one-line errors, and ``--help`` everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sweeper.cli import main

TRAIN = "def train(params, ctx):\n    return {'loss': 1.0}\n"

GRID = """\
name: grid-demo
framework: python
entrypoint: train.py:train
search: {method: grid, metric: loss, mode: min}
resources: {cpus: 2, gpus: 0.5, memory: 1GiB}
parameters:
  lr: {choice: [0.1, 0.01]}
  layers: {int: [1, 3]}
  epochs: 5
"""

OPTUNA = """\
name: optuna-demo
framework: python
entrypoint: train.py:train
search: {method: optuna, sampler: cmaes, metric: acc, mode: max, trials: 12, concurrency: 3}
parameters:
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  dropout: {uniform: [0.0, 0.5], step: 0.1}
  hidden: {choice: [32, 64]}
  batch: {int: [16, 256], log: true}
  epochs: 10
"""


@pytest.fixture
def project(in_tmp: Path) -> Path:
    (in_tmp / "train.py").write_text(TRAIN, encoding="utf-8")
    return in_tmp


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result: Result, message: str) -> None:
    """Exit 2, nothing on stdout, exactly ``error: <message>`` on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert result.stderr == f"error: {message}\n"
    assert "Traceback" not in result.output


# --- validate ----------------------------------------------------------------------------------


def test_validate_grid(project: Path, write_spec) -> None:
    write_spec(GRID)
    result = invoke("validate", "experiment.yml")
    assert result.exit_code == 0, result.output
    assert result.stdout == "experiment.yml: valid (6 trials, python)\n"
    assert result.stderr == ""


def test_validate_optuna(project: Path, write_spec) -> None:
    write_spec(OPTUNA, "optuna.yml")
    result = invoke("validate", "optuna.yml")
    assert result.exit_code == 0, result.output
    assert result.stdout == "optuna.yml: valid (12 trials, python)\n"


def test_validate_absolute_path(project: Path, write_spec) -> None:
    path = write_spec(GRID)
    result = invoke("validate", str(path))
    assert result.exit_code == 0
    assert result.stdout == f"{path}: valid (6 trials, python)\n"


def test_validate_bad_mode(project: Path, write_spec) -> None:
    write_spec(GRID.replace("mode: min", "mode: minimise"))
    result = invoke("validate", "experiment.yml")
    assert_one_line_error(
        result,
        "search.mode must be one of min, max, got 'minimise' (experiment.yml: search.mode)",
    )


def test_validate_a_condition_on_an_unknown_parameter(project: Path, write_spec) -> None:
    write_spec(GRID + "  width: {choice: [8, 16], when: {layer: 2}}\n")
    result = invoke("validate", "experiment.yml")
    assert_one_line_error(
        result,
        "parameters.width.when must name parameters of the spec, got 'layer' "
        "(experiment.yml: parameters.width.when.layer); did you mean 'layers'?",
    )


def test_validate_a_constraint_without_an_operator(project: Path, write_spec) -> None:
    write_spec(GRID.replace("mode: min", "mode: min, constraints: ['latency 20']"))
    result = invoke("validate", "experiment.yml")
    assert_one_line_error(
        result,
        "search.constraints[0] must be '<metric> <op> <number>' with op one of <=, <, >=, >, "
        "got 'latency 20' (experiment.yml: search.constraints.0); write e.g. 'params_m <= 5' "
        "or 'latency_ms < 20'",
    )


def test_validate_unknown_key(project: Path, write_spec) -> None:
    write_spec(GRID.replace("metric: loss", "metric: loss, trails: 3"))
    result = invoke("validate", "experiment.yml")
    assert_one_line_error(
        result,
        "search keys must be one of method, sampler, metrics, metric, mode, constraints, trials, "
        "concurrency, seed, warm_start, skip_evaluated, initial_points, got 'trails' "
        "(experiment.yml: search.trails); did you mean 'trials'?",
    )


def test_validate_grid_over_continuous(project: Path, write_spec) -> None:
    write_spec(GRID.replace("{int: [1, 3]}", "{uniform: [0, 1]}"))
    result = invoke("validate", "experiment.yml")
    assert_one_line_error(
        result,
        "parameters.layers must have grid values for method grid, got uniform(0, 1) "
        "(experiment.yml: parameters.layers); list them with {choice: [...]} or add a step",
    )


def test_validate_with_early_stopping_and_limits(project: Path, write_spec) -> None:
    text = OPTUNA + (
        "early_stopping: {method: hyperband, max_steps: 27}\n"
        "limits: {max_failures: 1, max_failed_trials: 3, max_duration: 1h30m, max_gpu_hours: 2}\n"
    )
    write_spec(text)
    result = invoke("validate", "experiment.yml")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("experiment.yml: valid (12 trials, python)")


def test_validate_max_steps_missing(project: Path, write_spec) -> None:
    write_spec(GRID + "early_stopping: {method: asha}\n")
    assert_one_line_error(
        invoke("validate", "experiment.yml"),
        "early_stopping.max_steps must be set for method asha, got nothing "
        "(experiment.yml: early_stopping.max_steps); set it to the number of steps (epochs) a "
        "trial reports",
    )


def test_validate_key_of_another_stopping_method(project: Path, write_spec) -> None:
    write_spec(GRID + "early_stopping: {method: median, reduction_factor: 3}\n")
    assert_one_line_error(
        invoke("validate", "experiment.yml"),
        "early_stopping.reduction_factor must not be set for method median, got 3 "
        "(experiment.yml: early_stopping.reduction_factor); reduction_factor belongs to methods "
        "asha and hyperband",
    )


def test_validate_grace_period_not_below_max_steps(project: Path, write_spec) -> None:
    write_spec(GRID + "early_stopping: {method: asha, max_steps: 10, grace_period: 10}\n")
    assert_one_line_error(
        invoke("validate", "experiment.yml"),
        "early_stopping.grace_period must be less than max_steps 10, got 10 "
        "(experiment.yml: early_stopping.grace_period); trials run grace_period steps before "
        "they may be stopped; leave room below max_steps",
    )


def test_validate_bad_max_duration(project: Path, write_spec) -> None:
    write_spec(GRID + "limits: {max_duration: soon}\n")
    assert_one_line_error(
        invoke("validate", "experiment.yml"),
        "limits.max_duration must be seconds or a duration such as 90s, 30m, 2h, got 'soon' "
        "(experiment.yml: limits.max_duration); combine d, h, m and s, e.g. 1h30m",
    )


def test_validate_negative_max_failures(project: Path, write_spec) -> None:
    write_spec(GRID + "limits: {max_failures: -1}\n")
    assert_one_line_error(
        invoke("validate", "experiment.yml"),
        "limits.max_failures must be >= 0, got -1 (experiment.yml: limits.max_failures)",
    )


def test_validate_yaml_error(project: Path, write_spec) -> None:
    write_spec("name: demo\n  framework: python\n")
    result = invoke("validate", "experiment.yml")
    assert_one_line_error(
        result,
        "spec must be valid YAML, got mapping values are not allowed here at line 2, column 12 "
        "(experiment.yml)",
    )


def test_validate_entrypoint_error(project: Path, write_spec) -> None:
    write_spec(GRID.replace("train.py:train", "train.py:trian"))
    result = invoke("validate", "experiment.yml")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: entrypoint function must be defined in train.py")
    assert lines[0].endswith("did you mean 'train'?")


def test_validate_missing_file(project: Path) -> None:
    result = invoke("validate", "nope.yml")
    assert_one_line_error(result, "spec file must exist, got 'nope.yml'")


def test_validate_without_argument_is_a_usage_error(project: Path) -> None:
    result = invoke("validate")
    assert result.exit_code == 2
    assert "Missing argument 'SPEC'" in result.stderr


def test_validate_a_directory_is_an_error(project: Path) -> None:
    (project / "specs").mkdir()
    result = invoke("validate", "specs")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# --- plan --------------------------------------------------------------------------------------


def test_plan_grid_lists_every_point(project: Path, write_spec) -> None:
    write_spec(GRID)
    result = invoke("plan", "experiment.yml")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "sweep grid-demo: grid, min loss"
    assert lines[1] == "trials: 6, concurrency: as resources allow"
    assert lines[2] == "per trial: 2 cpus, 0.5 gpus, memory 1GiB"
    assert lines[3] == "parameters:"
    assert lines[4:7] == ["  lr      choice(0.1, 0.01)", "  layers  int(1, 3)", "  epochs  5"]
    assert lines[7] == "grid:"
    trials = lines[8:]
    assert [line.split()[0] for line in trials] == [f"trial-{i:04d}" for i in range(1, 7)]
    points = set()
    for line in trials:
        _, values = line.strip().split("  ", 1)
        point = dict(item.split("=") for item in values.split(", "))
        assert set(point) == {"lr", "layers"}  # constants are not grid dimensions
        points.add((point["lr"], point["layers"]))
    assert points == {(lr, n) for lr in ("0.1", "0.01") for n in ("1", "2", "3")}


def test_plan_grid_first_and_last_trial(project: Path, write_spec) -> None:
    write_spec(GRID)
    trials = invoke("plan", "experiment.yml").stdout.split("grid:\n", 1)[1].splitlines()
    assert trials[0] == "  trial-0001  lr=0.1, layers=1"
    assert trials[1] == "  trial-0002  lr=0.1, layers=2"
    assert trials[5] == "  trial-0006  lr=0.01, layers=3"


def test_plan_grid_with_uniform_step(project: Path, write_spec) -> None:
    text = GRID.replace("lr: {choice: [0.1, 0.01]}", "dropout: {uniform: [0.0, 0.5], step: 0.1}")
    write_spec(text)
    result = invoke("plan", "experiment.yml")
    assert result.exit_code == 0, result.output
    assert "trials: 18, " in result.stdout
    assert "trial-0018" in result.stdout
    assert "trial-0019" not in result.stdout
    assert "dropout=0.30000000000000004" not in result.stdout
    assert re.search(r"dropout=0\.3(,|$)", result.stdout, re.MULTILINE)


def test_plan_optuna_prints_parameters(project: Path, write_spec) -> None:
    write_spec(OPTUNA)
    result = invoke("plan", "experiment.yml")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "sweep optuna-demo: optuna (cmaes), max acc\n"
        "trials: 12, concurrency: 3\n"
        "per trial: 1 cpus, 0 gpus\n"
        "parameters:\n"
        "  lr       loguniform(0.0001, 0.1)\n"
        "  dropout  uniform(0, 0.5, step=0.1)\n"
        "  hidden   choice(32, 64)\n"
        "  batch    int(16, 256, log)\n"
        "  epochs   10\n"
    )
    assert "grid:" not in result.stdout


def test_plan_optuna_default_sampler(project: Path, write_spec) -> None:
    write_spec(OPTUNA.replace("sampler: cmaes, ", ""))
    result = invoke("plan", "experiment.yml")
    assert result.stdout.splitlines()[0] == "sweep optuna-demo: optuna (tpe), max acc"


def test_plan_random(project: Path, write_spec) -> None:
    write_spec(OPTUNA.replace("method: optuna, sampler: cmaes", "method: random"))
    result = invoke("plan", "experiment.yml")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "sweep optuna-demo: random, max acc"
    assert "grid:" not in result.stdout


def test_plan_bad_spec(project: Path, write_spec) -> None:
    write_spec(GRID.replace("method: grid", "method: bayes"))
    result = invoke("plan", "experiment.yml")
    assert_one_line_error(
        result,
        "search.method must be one of grid, random, optuna, got 'bayes' "
        "(experiment.yml: search.method)",
    )


def test_plan_missing_file(project: Path) -> None:
    assert_one_line_error(invoke("plan", "nope.yml"), "spec file must exist, got 'nope.yml'")


# --- help --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "validate", "plan", "ui"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command(command: str, flag: str) -> None:
    result = invoke(command, flag)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: main {command} [OPTIONS]")
    assert result.stderr == ""


def test_main_help_lists_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "validate", "plan", "ui"):
        assert f"  {command} " in result.stdout


def test_run_help_describes_exit_codes() -> None:
    text = invoke("run", "--help").stdout
    assert "--config" in text and "--address" in text and "--quiet" in text


def test_ui_help_shows_defaults() -> None:
    text = invoke("ui", "--help").stdout
    assert "127.0.0.1" in text and "5000" in text


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert "0.1.0" in result.stdout


def test_run_bad_spec_fails_before_starting_anything(project: Path, write_spec) -> None:
    """``run`` validates first: a bad spec is the same one-line error, and Ray never starts."""
    write_spec(GRID.replace("mode: min", "mode: minimise"))
    result = invoke("run", "experiment.yml")
    assert_one_line_error(
        result,
        "search.mode must be one of min, max, got 'minimise' (experiment.yml: search.mode)",
    )


def test_ui_missing_config(project: Path) -> None:
    result = invoke("ui", "--config", "nope.toml")
    assert_one_line_error(result, "config file must exist, got 'nope.toml' (--config)")


def test_plan_shows_early_stopping_and_limits(project: Path, write_spec) -> None:
    write_spec(
        GRID
        + "early_stopping: {method: asha, max_steps: 27}\n"
        + "limits: {max_failures: 2, max_duration: 2h}\n"
    )
    lines = invoke("plan", "experiment.yml").stdout.splitlines()
    assert lines[3] == "early stopping: asha (max_steps 27, grace_period 1, reduction_factor 3)"
    assert lines[4] == "limits: max_failures 2, max_duration 2h"
    assert lines[5] == "parameters:"


def test_plan_random_with_a_seed_lists_the_points_the_sweep_will_run(
    project: Path, write_spec
) -> None:
    write_spec(OPTUNA.replace("method: optuna, sampler: cmaes", "method: random, seed: 4"))
    first = invoke("plan", "experiment.yml").stdout
    assert first == invoke("plan", "experiment.yml").stdout  # the seed fixes them
    points = first.split("points (seed 4):\n", 1)[1].splitlines()
    assert [line.split()[0] for line in points] == [f"trial-{i:04d}" for i in range(1, 13)]
    assert all("lr=" in line and "batch=" in line for line in points)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["validate"], "error: Missing argument 'SPEC' (main validate); see main validate --help"),
        (["nope"], "error: No such command 'nope' (main); see main --help"),
        (
            ["run", "--bogus", "x"],
            "error: No such option '--bogus' (main run); see main run --help",
        ),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(args: list[str], line: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr == line + "\n"


def test_a_bare_sweeper_prints_its_help() -> None:
    result = CliRunner().invoke(main, [])
    assert "Usage:" in result.output and "Commands:" in result.output


# --- a manifest's model definition folder (MODEL_DIR) -------------------------------------------

MODEL_MANIFEST = """\
name: split-definition
cpus: 1
framework:
  name: tensorflow
  version: latest
  command: python3 digits-fit/fit.py --out $RESULT_DIR
"""


def test_validate_reads_a_manifest_against_its_model_dir(in_tmp: Path) -> None:
    (in_tmp / "manifests").mkdir()
    (in_tmp / "manifests" / "manifest.yml").write_text(MODEL_MANIFEST)
    (in_tmp / "definition" / "digits-fit").mkdir(parents=True)
    (in_tmp / "definition" / "digits-fit" / "fit.py").write_text("print('fit')\n")
    done = invoke("validate", "manifests/manifest.yml", "definition")
    assert done.exit_code == 0, done.output
    assert done.stdout == "manifests/manifest.yml: valid (1 trials, command)\n"


def test_model_dir_must_be_a_folder(in_tmp: Path) -> None:
    (in_tmp / "manifest.yml").write_text(MODEL_MANIFEST)
    assert_one_line_error(
        invoke("validate", "manifest.yml", "nowhere"),
        "MODEL_DIR must be an existing folder, got 'nowhere' (command line); the folder with "
        "the manifest's code, as ffdl train MANIFEST MODEL_DIR took it",
    )


def test_model_dir_is_for_manifests_only(project: Path, write_spec) -> None:
    write_spec(GRID)
    assert_one_line_error(
        invoke("run", "experiment.yml", "."),
        "MODEL_DIR must be left out for a sweeper spec, got '.' (command line); it is a "
        "manifest's model definition folder; a spec's paths are relative to where sweeper runs",
    )


def test_plan_shows_the_learners_and_what_one_trial_holds(project: Path, write_spec) -> None:
    spread = "resources: {gpus: 1, cpus: 2, learners: 2, placement: spread}"
    write_spec(GRID.replace("resources: {cpus: 2, gpus: 0.5, memory: 1GiB}", spread))
    result = invoke("plan", "experiment.yml")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2] == (
        "per trial: 2 learners (spread), each 2 cpus, 1 gpus; the trial holds 4 cpus, 2 gpus"
    )
