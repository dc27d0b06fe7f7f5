"""The command adapter: the conformance kit, parameters in three ways, four metrics channels,
failures, stopping."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import mlflow
import pytest

from sweeper.errors import SpecError, TrialError
from sweeper.execution._sweep import run
from sweeper.frameworks import STOP_GRACE_S
from sweeper.frameworks.command import CommandAdapter
from sweeper.frameworks.testing import (
    FAILURE,
    AdapterTestSuite,
    Project,
    trial_context,
)
from sweeper.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "tests/_code/train_cmd.py"


class TestCommandAdapter(AdapterTestSuite):
    failure = "command exited with status 1"

    @pytest.fixture(scope="class")
    def adapter_class(self) -> type[CommandAdapter]:
        return CommandAdapter

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory: pytest.TempPathFactory) -> Project:
        folder = tmp_path_factory.mktemp("command")
        return Project.python_program(folder, command=[sys.executable, "kit_train.py"])

    @pytest.fixture(scope="session")
    def ray_cluster(self, ray_session: object) -> None:
        """The test session's Ray (tests/conftest.py)."""

    @pytest.mark.slow
    def test_a_raised_error_fails_the_trial_with_its_message(self, kit_sweep) -> None:
        super().test_a_raised_error_fails_the_trial_with_its_message(kit_sweep)
        assert FAILURE in kit_sweep.row("fail")["error"]  # the log's last lines come with it


def command_spec(parameters: dict, metric: str = "score", **extra) -> object:
    data = {
        "name": "command-test",
        "framework": "command",
        "command": [sys.executable, PROGRAM],
        "search": {"method": "grid", "metric": metric, "mode": "max", "concurrency": 2},
        "parameters": parameters,
        **extra,
    }
    return parse_spec(data, base_dir=ROOT)


@pytest.mark.usefixtures("ray_session")
def test_every_metrics_channel_reaches_mlflow_per_step(settings):
    spec = command_spec(
        {"channel": {"choice": ["stdout", "file", "emetrics", "regex"]}, "x": 2.0},
        metrics={
            "file": "metrics.jsonl",
            "regex": [r"epoch (?P<step>\d+): loss=(?P<loss>[0-9.]+) score=(?P<score>[0-9.]+)"],
        },
    )
    # EMetrics values of group "test" are named test_<name>; the others report score itself.
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("params.channel")
    assert set(frame["state"]) == {"completed"}
    client = mlflow.MlflowClient(result.tracking_uri)
    for channel in ("stdout", "file", "regex"):
        assert frame.loc[channel, "score"] == 6.0
        history = client.get_metric_history(frame.loc[channel, "mlflow_run_id"], "score")
        assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 4.0), (3, 6.0)]
        loss = client.get_metric_history(frame.loc[channel, "mlflow_run_id"], "loss")
        assert sorted(m.step for m in loss) == [1, 2, 3]
    emetrics = frame.loc["emetrics", "mlflow_run_id"]
    history = client.get_metric_history(emetrics, "test_score")
    assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 4.0), (3, 6.0)]


@pytest.mark.usefixtures("ray_session")
def test_parameters_arrive_as_flags_environment_and_config_json(settings, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    spec = command_spec({"x": {"choice": [1.5]}, "channel": "stdout"}, data=str(data))
    result = run(spec, settings, echo=None)
    (trial,) = result.results["trial"]
    trial_dir = result.sweep_dir / "trials" / trial
    seen = json.loads((trial_dir / "output" / "seen.json").read_text())
    assert seen["argv"] == ["--x=1.5", "--channel=stdout"]
    assert seen["config"] == {"x": 1.5, "channel": "stdout"}
    assert seen["env"] == {"SWEEPER_PARAM_X": "1.5", "SWEEPER_PARAM_CHANNEL": "stdout"}
    service = seen["service"]
    assert service["DATA_DIR"] == str(data)
    assert service["RESULT_DIR"] == str(trial_dir / "output")
    assert service["CHECKPOINT_DIR"] == str(trial_dir / "checkpoints")
    assert service["LOG_DIR"] == str(trial_dir / "logs")
    assert service["MODEL_DIR"] == seen["cwd"] == str(trial_dir / "work")
    assert service["TRAINING_ID"] == result.sweep
    assert (service["SUBID"], service["GPU_COUNT"]) == ("0001", "0")
    assert (service["NUM_LEARNERS"], service["LEARNER_ID"]) == ("1", "1")
    # The working directory shows the code folder, and the log is where the service kept it.
    assert (trial_dir / "work" / "tests" / "_code" / "train_cmd.py").is_file()
    latest = trial_dir / "job-state" / "latest-log"
    assert "SWEEPER_METRICS" in latest.read_text()


@pytest.mark.usefixtures("ray_session")
def test_a_non_zero_exit_fails_the_trial_with_the_last_log_lines(settings):
    spec = command_spec({"x": {"choice": [-1.0, 1.0]}, "channel": "stdout"})
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("params.x")
    assert frame.loc[1.0, "state"] == "completed"
    assert frame.loc[-1.0, "state"] == "failed"
    error = frame.loc[-1.0, "error"]
    assert "command exited with status 3" in error
    assert "x is negative (-1.0), giving up" in error


def make_adapter(tmp_path: Path, write_spec, command: str) -> CommandAdapter:
    path = write_spec(
        f"name: c\nframework: command\ncommand: {command}\n"
        "search: {method: grid, metric: score, mode: max}\n"
        "parameters:\n  lr: {choice: [0.1]}\n  layers: 2\n"
    )
    return CommandAdapter(load_spec(path.name))  # the tests run in tmp_path


def test_placeholders_and_args_macro_place_the_flags(tmp_path, write_spec, in_tmp):
    adapter = make_adapter(tmp_path, write_spec, "'python -u ${args} --lr2 ${lr} $DATA_DIR/f'")
    argv = adapter.argv({"lr": 0.1, "layers": 2}, {"DATA_DIR": "/data"})
    assert argv == ["python", "-u", "--lr=0.1", "--layers=2", "--lr2", "0.1", "/data/f"]


def test_flags_are_appended_when_the_command_places_none(tmp_path, write_spec, in_tmp):
    adapter = make_adapter(tmp_path, write_spec, "'python train.py --verbose'")
    argv = adapter.argv({"lr": 0.1, "layers": 2, "flag": True, "sizes": [1, 2]}, {})
    assert argv == [
        "python",
        "train.py",
        "--verbose",
        "--lr=0.1",
        "--layers=2",
        "--flag=true",
        "--sizes=[1, 2]",
    ]


def test_an_unknown_placeholder_is_a_spec_error(tmp_path, write_spec, in_tmp):
    with pytest.raises(SpecError) as caught:
        make_adapter(tmp_path, write_spec, "'python t.py --lr ${lrr}'")
    assert str(caught.value) == (
        "command placeholders must name a parameter, got '${lrr}' "
        "(experiment.yml: command); did you mean '${lr}'?"
    )


def test_a_missing_program_is_a_spec_error(tmp_path, write_spec, in_tmp):
    with pytest.raises(SpecError) as caught:
        make_adapter(tmp_path, write_spec, "'no-such-trainer --fast'")
    assert str(caught.value) == (
        "command program must be on PATH or a file, got 'no-such-trainer' (experiment.yml: command)"
    )


def test_an_unbalanced_quote_is_a_spec_error(tmp_path, write_spec, in_tmp):
    with pytest.raises(SpecError) as caught:
        make_adapter(tmp_path, write_spec, "'python \"train.py'")
    assert str(caught.value).startswith("command must be a command line, got 'python \"train.py'")


def test_metrics_belong_to_the_command_framework(tmp_path, write_spec, in_tmp):
    (tmp_path / "train.py").write_text("def train(params, ctx):\n    pass\n")
    write_spec(
        "name: c\nframework: python\nentrypoint: train.py:train\n"
        "search: {method: grid, metric: score, mode: max}\nmetrics: {emetrics: false}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec("experiment.yml")
    assert str(caught.value) == (
        "metrics must not be set for framework python, got 'a metrics block' "
        "(experiment.yml: metrics); metrics belongs to framework command"
    )


def test_a_stop_from_a_followed_file_ends_the_program(tmp_path, write_spec, in_tmp):
    # Reports from metrics.file come from a second thread: SystemExit must still end the trial.
    (tmp_path / "forever.py").write_text(
        "import json, time\n"
        "for step in range(1, 601):\n"
        "    with open('metrics.jsonl', 'a') as out:\n"
        "        out.write(json.dumps({'step': step, 'score': 1.0}) + '\\n')\n"
        "    time.sleep(0.1)\n"
    )
    path = write_spec(
        f"name: c\nframework: command\ncommand: {sys.executable} forever.py\n"
        "metrics: {file: metrics.jsonl, emetrics: false}\n"
        "search: {method: grid, metric: score, mode: max}\n"
    )
    adapter = CommandAdapter(load_spec(path.name))
    reports: list[dict] = []

    def report(result: dict) -> None:
        reports.append(result)
        if len(reports) == 2:
            raise SystemExit(0)

    started = time.monotonic()
    with pytest.raises(SystemExit):
        adapter.run({}, trial_context(tmp_path, reporter=report))
    assert len(reports) == 2
    assert time.monotonic() - started < STOP_GRACE_S


def failing_adapter(tmp_path: Path, write_spec, command: str) -> CommandAdapter:
    path = write_spec(
        f"name: c\nframework: command\ncommand: {command}\nmetrics: {{emetrics: false}}\n"
        "search: {method: grid, metric: score, mode: max}\n"
    )
    return CommandAdapter(load_spec(path.name))


def test_a_python_error_leads_the_failed_trials_error(tmp_path, write_spec, in_tmp):
    # A TF 1.x script under TF 2: the cause is in the log, the console shows the first line.
    (tmp_path / "train.py").write_text(
        "print('epoch 1: loss=0.5', flush=True)\n"
        "def build():\n"
        "    raise AttributeError(\"module 'tensorflow' has no attribute 'placeholder'\")\n"
        "build()\n"
    )
    adapter = failing_adapter(tmp_path, write_spec, f"[{sys.executable}, train.py]")
    with pytest.raises(TrialError) as caught:
        adapter.run({}, trial_context(tmp_path / "trials"))
    assert str(caught.value) == (
        "AttributeError: module 'tensorflow' has no attribute 'placeholder' "
        f"(command exited with status 1: {sys.executable} train.py)"
    )


def test_a_silent_failure_is_its_exit_status_alone(tmp_path, write_spec, in_tmp):
    adapter = failing_adapter(tmp_path, write_spec, "[sh, -c, 'exit 3']")
    ctx = trial_context(tmp_path / "trials")
    # What an earlier attempt of the trial wrote to its log is not this run's error.
    ctx.log_path.write_text("Traceback (most recent call last):\nValueError: attempt 1\n")
    with pytest.raises(TrialError) as caught:
        adapter.run({}, ctx)
    assert str(caught.value) == "command exited with status 3: sh -c 'exit 3'"


@pytest.mark.usefixtures("ray_session")
def test_early_stopping_ends_the_program_of_a_stopped_trial(settings):
    # Trials run in grid order and x falls: each new trial is worse than those before it.
    spec = command_spec(
        {"x": {"choice": [6, 5, 4, 3, 2, 1]}, "channel": "stdout", "epochs": 9, "sleep": 0.2},
        early_stopping={"method": "asha", "max_steps": 9, "reduction_factor": 3},
    )
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("trial")
    stopped = frame[frame["state"] == "stopped"]
    assert len(stopped) >= 3
    time.sleep(1.0)
    for trial, row in stopped.iterrows():
        output = result.sweep_dir / "trials" / trial / "output"
        pid = json.loads((output / "seen.json").read_text())["pid"]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the program is gone
        ran = [int(epoch) for epoch in (output / "epochs.log").read_text().split()]
        # It stopped within moments of the decision (a step or two in flight), not at the end.
        assert ran[-1] <= row["steps"] + 2 < 9 + 2
        assert ran[-1] < 9
    assert set(frame.loc[frame["state"] != "stopped", "steps"]) == {9}
