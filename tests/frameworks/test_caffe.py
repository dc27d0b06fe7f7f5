"""The Caffe adapter with real Caffe 1.0: the conformance kit, the digits example end to end,
rendering, log parsing, validation errors, GPU flags, clean stop and a missing ``caffe``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

import sweeper.frameworks._process as process_module
from sweeper.errors import SpecError, TrialError
from sweeper.frameworks.caffe import INSTALL_HINT, CaffeAdapter, CaffeLog, CaffeSpec, caffe_argv
from sweeper.frameworks.context import TrialContext
from sweeper.frameworks.registry import get_adapter_class
from sweeper.frameworks.testing import AdapterTestSuite, Project, trial_context
from sweeper.spec import load_spec

pytestmark = pytest.mark.caffe

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "configs/digits-caffe.yml"
EXAMPLE_DIR = ROOT / "examples" / "digits" / "caffe"

SOLVER = """\
# a comment with ${nothing} in it
net: "net.prototxt"
test_iter: 1
test_interval: 50
base_lr: 0.05
lr_policy: "fixed"
display: 50
max_iter: 200
snapshot_prefix: "models/mlp"
"""
NET = (EXAMPLE_DIR / "net.prototxt").read_text()
SPEC = """\
name: t
framework: caffe
caffe: {solver: model/solver.prototxt}
search: {method: random, metric: test_accuracy, mode: max, trials: 1, seed: 0}
parameters:
  base_lr: {loguniform: [0.01, 0.1]}
  hidden: {choice: [32, 64]}
  dropout: 0.1
  batch_size: 64
"""


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """The example's data written once into a temporary folder."""
    folder = tmp_path_factory.mktemp("digits")
    subprocess.run(
        [sys.executable, str(EXAMPLE_DIR / "make_data.py"), "--out", str(folder)],
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture
def model(tmp_path: Path, digits: Path) -> Path:
    """``tmp_path/model`` with the test solver, the example's net and its data."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "solver.prototxt").write_text(SOLVER)
    (folder / "net.prototxt").write_text(NET)
    shutil.copytree(digits, folder / "data")
    return folder


def make_ctx(tmp_path: Path, reports: list | None = None, gpu_ids=(), seed=None) -> TrialContext:
    """A trial context outside Ray; the trial's log is ``tmp_path/trial-0001/trial.log``."""
    return trial_context(
        tmp_path,
        reporter=(reports.append if reports is not None else lambda result: None),
        metric="test_accuracy",
        seed=seed,
        gpu_ids=gpu_ids,
    )


class TestCaffeAdapter(AdapterTestSuite):
    """The kit's scenarios are values of ``max_iter``: a short run, a very long one, and one
    Caffe cannot parse (it aborts)."""

    metric = "test_accuracy"
    failure = "caffe train was killed by SIGABRT"
    output = ("Optimization Done.",)
    unsupported = {
        name: "caffe trains in a process of its own: it leaves nothing in the actor"
        for name in ("dirty", "check")
    }

    def scenario(self, name: str) -> object:
        return {"report": 100, "fail": "bogus", "run": 100_000_000}[name]

    @pytest.fixture(scope="class")
    def adapter_class(self) -> type[CaffeAdapter]:
        return CaffeAdapter

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory: pytest.TempPathFactory, digits: Path) -> Project:
        folder = tmp_path_factory.mktemp("caffe")
        (folder / "solver.prototxt").write_text(
            SOLVER.replace("max_iter: 200", "max_iter: ${scenario}")
        )
        (folder / "net.prototxt").write_text(NET)
        shutil.copytree(digits, folder / "data")
        return Project(
            folder,
            {"caffe": {"solver": "solver.prototxt"}},
            {"base_lr": 0.05, "hidden": 32, "dropout": 0.1, "batch_size": 64},
        )

    @pytest.fixture(scope="session")
    def ray_cluster(self, ray_session: object) -> None:
        """The test session's Ray (tests/conftest.py)."""


def spec_error(write_spec, text: str) -> str:
    """The error loading ``text`` gives, named as ``experiment.yml`` (the tests run in tmp)."""
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(text).name)
    return str(caught.value)


@pytest.mark.slow
def test_example_sweep_trains_with_caffe_and_mlflow_has_parent_and_children(run_example):
    subprocess.run(
        [sys.executable, str(EXAMPLE_DIR / "make_data.py")], check=True, capture_output=True
    )
    example = run_example(EXAMPLE, "test_accuracy")
    max_iter = example.spec.constants["max_iter"]
    for trial in example.results["trial"]:
        output = example.sweep_dir / "trials" / trial / "output"
        for suffix in ("caffemodel", "solverstate"):
            assert (output / f"digits_mlp_iter_{max_iter}.{suffix}").stat().st_size > 0
    every_test = list(range(0, max_iter + 1, 50))  # test_interval 50, and iteration 0
    for run_id in example.children["run_id"]:
        for metric in ("test_accuracy", "test_loss", "loss"):
            history = example.client.get_metric_history(run_id, metric)
            assert sorted(m.step for m in history) == every_test, metric


# -- validation ------------------------------------------------------------------------------


def test_caffe_is_a_builtin_framework():
    assert get_adapter_class("caffe") is CaffeAdapter


def test_a_parameter_that_lands_nowhere_is_an_error(model, write_spec, in_tmp):
    message = spec_error(write_spec, SPEC + "  hiden: 3\n")
    assert message == (
        "parameters.hiden must reach the solver or the net, got a name that is neither a solver "
        "field nor a placeholder (experiment.yml: parameters.hiden); did you mean 'hidden'? "
        "otherwise, a parameter reaches Caffe in one of two ways: named after a solver field "
        "(base_lr, momentum, weight_decay, max_iter, ...) it overrides that field, or written as "
        "${hiden} in model/solver.prototxt or model/net.prototxt it is substituted there"
    )


def test_a_constant_that_lands_nowhere_is_an_error_too(model, write_spec, in_tmp):
    message = spec_error(write_spec, SPEC + "  epochs: 3\n")
    assert message.startswith("parameters.epochs must reach the solver or the net, got ")
    assert message.endswith(
        "${epochs} in model/solver.prototxt or model/net.prototxt it is substituted there"
    )


def test_a_placeholder_without_a_parameter_is_an_error(model, write_spec, in_tmp):
    message = spec_error(write_spec, SPEC.replace("  hidden: {choice: [32, 64]}\n", ""))
    assert message == (
        "placeholder ${hidden} in model/net.prototxt line 27 must name a parameter, got no "
        "parameters.hidden (experiment.yml: caffe.solver); add hidden to parameters"
    )


def test_a_placeholder_in_a_net_the_spec_names_is_reported_on_caffe_net(model, write_spec, in_tmp):
    (model / "solver.prototxt").write_text(SOLVER.replace("base_lr: 0.05", "base_lr: ${lr}"))
    text = SPEC.replace(
        "{solver: model/solver.prototxt}",
        "{solver: model/solver.prototxt, net: model/net.prototxt}",
    ).replace("  dropout: 0.1\n", "  dropot: 0.1\n")
    message = spec_error(write_spec, text.replace("base_lr: {", "lr: {"))
    assert message == (
        "placeholder ${dropout} in model/net.prototxt line 38 must name a parameter, got no "
        "parameters.dropout (experiment.yml: caffe.net); did you mean 'dropot'?"
    )


def test_a_missing_solver_file_is_an_error(model, write_spec, in_tmp):
    message = spec_error(write_spec, SPEC.replace("model/solver.prototxt", "model/nope.prototxt"))
    assert message == (
        f"caffe.solver must be an existing file, got 'model/nope.prototxt' "
        f"({in_tmp / 'model' / 'nope.prototxt'} is missing) (experiment.yml: caffe.solver); "
        f"relative paths are relative to {in_tmp}"
    )


def test_a_missing_net_file_named_by_the_solver_is_an_error(model, write_spec, in_tmp):
    (model / "net.prototxt").unlink()
    message = spec_error(write_spec, SPEC)
    assert message == (
        f"caffe.solver's net must be an existing file, got 'net.prototxt' "
        f"({model / 'net.prototxt'} is missing) (experiment.yml: caffe.solver); the solver's "
        f"net: is relative to the solver's folder {model}; or set caffe.net"
    )


def test_a_missing_net_file_named_by_the_spec_is_an_error(model, write_spec, in_tmp):
    text = SPEC.replace(
        "{solver: model/solver.prototxt}",
        "{solver: model/solver.prototxt, net: model/other.prototxt}",
    )
    assert spec_error(write_spec, text) == (
        f"caffe.net must be an existing file, got 'model/other.prototxt' "
        f"({model / 'other.prototxt'} is missing) (experiment.yml: caffe.net); "
        f"relative paths are relative to {in_tmp}"
    )


def test_a_solver_with_separate_train_and_test_nets_is_an_error(model, write_spec, in_tmp):
    solver = SOLVER.replace('net: "net.prototxt"', 'train_net: "net.prototxt"')
    for text in (solver, solver.replace('train_net: "net.prototxt"', "net_param { }")):
        (model / "solver.prototxt").write_text(text)
        message = spec_error(write_spec, SPEC)
        assert message.startswith("caffe.solver must name its net with net: (or leave it to ")
        assert "(experiment.yml: caffe.solver); put the train and test layers in one " in message


def test_missing_input_data_and_a_wrongly_typed_solver_field_are_errors(model, write_spec, in_tmp):
    shutil.rmtree(model / "data")
    assert spec_error(write_spec, SPEC).startswith(
        "source in model/net.prototxt line 11 must be an existing path, got 'data/train.txt' "
    )
    (model / "data").mkdir()
    for name in ("train.txt", "test.txt"):
        (model / "data" / name).write_text("x.h5\n")
    assert spec_error(write_spec, SPEC + "  max_iter: {uniform: [10, 20]}\n") == (
        "parameters.max_iter must be an integer for the solver field max_iter, got "
        "uniform(10, 20) (experiment.yml: parameters.max_iter)"
    )


# -- rendering -------------------------------------------------------------------------------


def test_solver_fields_are_replaced_or_appended_and_strings_quoted(model, write_spec, in_tmp):
    spec = load_spec(write_spec(SPEC))
    params = {
        "base_lr": 0.02,
        "hidden": 64,
        "dropout": 0.1,
        "batch_size": 64,
    }
    adapter = CaffeAdapter(spec)
    out = in_tmp / "out"
    solver = adapter.render(
        {**params, "lr_policy": "step", "stepvalue": [100, 150], "snapshot_format": "HDF5"},
        out,
        seed=7,
    )
    text = solver.read_text()
    assert text == (
        "# a comment with ${nothing} in it\n"
        f'net: "{out / "net.prototxt"}"\n'
        "test_iter: 1\n"
        "test_interval: 50\n"
        "base_lr: 0.02\n"
        'lr_policy: "step"\n'
        "display: 50\n"
        "max_iter: 200\n"
        f'snapshot_prefix: "{out / "mlp"}"\n'
        "stepvalue: 100\n"
        "stepvalue: 150\n"
        "snapshot_format: HDF5\n"
        "solver_mode: CPU\n"
        "random_seed: 7\n"
    )
    gpu = adapter.render({**params, "type": "Adam", "max_iter": 300.0}, out, gpu=True).read_text()
    assert 'type: "Adam"\n' in gpu
    assert "max_iter: 300\n" in gpu  # an integral float is written as an integer
    assert "solver_mode: GPU\n" in gpu
    assert "random_seed" not in gpu


def test_placeholders_are_substituted_and_input_paths_made_absolute(model, write_spec, in_tmp):
    (model / "solver.prototxt").write_text(
        SOLVER.replace('lr_policy: "fixed"', "lr_policy: ${policy}")
    )
    (model / "net.prototxt").write_text(
        NET.replace('source: "data/test.txt"', 'source: "${split}/test.txt"').replace(
            "include { phase: TEST }", "include { phase: ${phase} }"
        )
    )
    shutil.copytree(model / "data", model / "eval")
    spec = load_spec(
        write_spec(SPEC + "  policy: step\n  split: eval\n  phase: {choice: [TEST]}\n")
    )
    params = {"base_lr": 0.1, "hidden": 128, "dropout": 0.25, "batch_size": 32}
    params |= {"policy": "step", "split": "eval", "phase": "TEST"}
    out = in_tmp / "out"
    solver = CaffeAdapter(spec).render(params, out).read_text()
    assert 'lr_policy: "step"\n' in solver  # a string is quoted
    assert "policy" not in solver.replace("lr_policy", "")  # a placeholder is not also a field
    net = (out / "net.prototxt").read_text()
    assert "num_output: 128\n" in net
    assert "dropout_ratio: 0.25 }" in net
    assert "batch_size: 32 shuffle: true" in net
    assert "include { phase: TEST }" in net  # an enum field's value stays bare
    assert f'source: "{model / "data" / "train.txt"}"' in net
    assert f'source: "{model / "eval" / "test.txt"}"' in net
    assert "${" not in net.split("\n", 2)[2]  # only the comments keep theirs


# -- the log and the command line ------------------------------------------------------------

REFERENCE_LOG = """\
I1122 02:32:24.749037 10988 solver.cpp:239] Iteration 450 (3125 iter/s, 0.016s/50 iters), loss = 0.0210039
I1122 02:32:24.749100 10988 solver.cpp:258]     Train net output #0: loss = 0.0210039 (* 1 = 0.0210039 loss)
I1122 02:32:24.749200 10988 sgd_solver.cpp:112] Iteration 450, lr = 0.1
I1122 02:32:24.765416 10988 solver.cpp:347] Iteration 500, Testing net (#0)
I1122 02:32:24.766136 10988 solver.cpp:414]     Test net output #0: accuracy = 0.986532
I1122 02:32:24.766144 10988 solver.cpp:414]     Test net output #1: loss = 0.0516383 (* 1 = 0.0516383 loss)
I1122 02:32:24.766200 10988 solver.cpp:347] Iteration 500, Testing net (#1)
I1122 02:32:24.766300 10988 solver.cpp:414]     Test net output #0: accuracy = 0.5
I1122 02:32:24.766400 10988 solver.cpp:327] Iteration 500, loss = 0.02
I1122 02:32:24.766500 10988 caffe.cpp:250] Optimization Done.
"""  # noqa: E501


def test_log_lines_become_one_report_per_iteration():
    log = CaffeLog()
    reports = [r for line in REFERENCE_LOG.splitlines() for r in log.feed(line)] + log.close()
    assert reports == [
        (450, {"loss": 0.0210039, "lr": 0.1}),
        (
            500,
            {
                "test_accuracy": 0.986532,
                "test_loss": 0.0516383,
                "test1_accuracy": 0.5,
                "loss": 0.02,
            },
        ),
    ]


def test_gpu_ids_become_the_gpu_flag():
    solver = Path("/o/solver.prototxt")
    start = ["caffe", "train", "-solver", "/o/solver.prototxt", "-sigint_effect", "stop"]
    start += ["-sighup_effect", "snapshot"]
    assert caffe_argv("caffe", solver, []) == start
    assert caffe_argv("caffe", solver, ["0", "1"]) == [*start, "-gpu", "0,1"]
    # CUDA_VISIBLE_DEVICES holds Ray's ids, so the child numbers them from 0.
    assert caffe_argv("caffe", solver, ["2", "3"]) == [*start, "-gpu", "0,1"]


def test_weights_start_a_first_attempt_and_a_snapshot_wins_over_them():
    solver = Path("/o/solver.prototxt")
    weights = [Path("/m/a.caffemodel"), Path("/m/b.caffemodel")]
    argv = caffe_argv("caffe", solver, [], weights=weights)
    assert argv[-2:] == ["-weights", "/m/a.caffemodel,/m/b.caffemodel"]
    # Caffe refuses -snapshot with -weights; the snapshot holds the weights.
    argv = caffe_argv("caffe", solver, [], Path("/o/x.solverstate"), weights)
    assert "-weights" not in argv and argv[-2:] == ["-snapshot", "/o/x.solverstate"]


def fake_caffe(folder: Path, body: str) -> Path:
    """A ``caffe`` on PATH that records its argv and CUDA_VISIBLE_DEVICES, then runs ``body``."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "caffe"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {folder / "argv"}\necho "$CUDA_VISIBLE_DEVICES" > {folder / "cuda"}\n' + body
    )
    script.chmod(0o755)
    return bin_dir


def test_a_trial_with_gpus_runs_caffe_on_them(model, write_spec, in_tmp, monkeypatch):
    lines = REFERENCE_LOG.splitlines()[3:6]
    body = "".join(f"echo '{line}' >&2\n" for line in lines)
    monkeypatch.setenv("PATH", f"{fake_caffe(in_tmp, body)}:{os.environ['PATH']}")
    spec = load_spec(write_spec(SPEC))
    reports: list[dict] = []
    params = {"base_lr": 0.1, "hidden": 32, "dropout": 0.1, "batch_size": 64}
    CaffeAdapter(spec).run(params, make_ctx(in_tmp, reports, gpu_ids=["2", "3"]))
    argv = (in_tmp / "argv").read_text().split()
    assert argv[argv.index("-gpu") + 1] == "0,1"
    assert (in_tmp / "cuda").read_text().strip() == "2,3"
    assert [(r["step"], r["test_accuracy"]) for r in reports] == [(500, 0.986532)]
    assert "Test net output #0" in (in_tmp / "trial-0001" / "trial.log").read_text()


def test_a_failing_caffe_raises_with_its_exit_status(model, write_spec, in_tmp, monkeypatch):
    bin_dir = fake_caffe(in_tmp, "exit 3\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    spec = load_spec(write_spec(SPEC))
    params = {"base_lr": 0.1, "hidden": 32, "dropout": 0.1, "batch_size": 64}
    with pytest.raises(TrialError, match=r"^caffe train exited with status 3$"):
        CaffeAdapter(spec).run(params, make_ctx(in_tmp))


def test_a_missing_caffe_says_how_to_install_it(model, write_spec, in_tmp, monkeypatch):
    spec = load_spec(write_spec(SPEC))
    monkeypatch.setenv("PATH", str(in_tmp))
    with pytest.raises(TrialError) as caught:
        CaffeAdapter(spec).run({}, make_ctx(in_tmp))
    assert str(caught.value) == INSTALL_HINT
    assert "\n" not in INSTALL_HINT and ".ci/install-caffe.sh" in INSTALL_HINT


# -- real Caffe ------------------------------------------------------------------------------


def test_a_real_run_reports_and_snapshots(model, write_spec, in_tmp):
    spec = load_spec(write_spec(SPEC))
    reports: list[dict] = []
    params = {"base_lr": 0.1, "hidden": 64, "dropout": 0.1, "batch_size": 64}
    ctx = make_ctx(in_tmp, reports, seed=3)
    CaffeAdapter(spec).run(params, ctx)
    assert [r["step"] for r in reports] == [0, 50, 100, 150, 200]
    assert reports[-1]["test_accuracy"] > 0.9
    assert {"loss", "lr", "test_loss"} <= set(reports[1])
    assert (ctx.output_dir / "mlp_iter_200.caffemodel").is_file()


def test_a_run_starts_from_the_spec_s_weights_or_snapshot(model, write_spec, in_tmp):
    """``caffe.weights`` fine-tunes a trained model; ``caffe.snapshot`` continues a solver
    state: Caffe's own log says which it did."""
    params = {"base_lr": 0.1, "hidden": 64, "dropout": 0.1, "batch_size": 64}
    first = make_ctx(in_tmp / "first", seed=3)
    CaffeAdapter(load_spec(write_spec(SPEC))).run(params, first)
    trained = first.output_dir / "mlp_iter_200.caffemodel"
    state = first.output_dir / "mlp_iter_200.solverstate"
    for key, path, said in (
        ("weights", trained, "Finetuning from"),
        ("snapshot", state, "Resuming from"),
    ):
        text = SPEC.replace(
            "caffe: {solver: model/solver.prototxt}",
            f"caffe: {{solver: model/solver.prototxt, {key}: '{path}'}}",
        )
        if key == "snapshot":  # it continues from iteration 200: train on to 250
            text = text.replace("  batch_size: 64\n", "  batch_size: 64\n  max_iter: 250\n")
        reports: list[dict] = []
        ctx = make_ctx(in_tmp / key, reports, seed=3)
        CaffeAdapter(load_spec(write_spec(text))).run(
            {**params, **({"max_iter": 250} if key == "snapshot" else {})}, ctx
        )
        log = ctx.log_path.read_text()
        assert f"{said} {path}" in log, log[-2000:]
        if key == "snapshot":
            assert [r["step"] for r in reports][-1] == 250
        else:
            assert reports[0]["test_accuracy"] > 0.9  # a trained model from its first test


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "weights: missing.caffemodel",
            "caffe.weights must be an existing file, got 'missing.caffemodel'",
        ),
        (
            "weights: a.caffemodel, snapshot: b.solverstate",
            "caffe.weights and caffe.snapshot must not both be set, got both",
        ),
    ],
)
def test_start_files_are_checked_on_load(model, write_spec, in_tmp, extra, message):
    (in_tmp / "a.caffemodel").write_bytes(b"")
    (in_tmp / "b.solverstate").write_bytes(b"")
    text = SPEC.replace(
        "{solver: model/solver.prototxt}", f"{{solver: model/solver.prototxt, {extra}}}"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(text))
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_stop_ends_a_long_caffe_run_cleanly(model, write_spec, in_tmp, monkeypatch):
    started: list[subprocess.Popen] = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(process_module.subprocess, "Popen", Recorded)
    spec = load_spec(write_spec(SPEC))
    stopped_at: list[float] = []

    def report(result: dict) -> None:
        stopped_at.append(time.monotonic())
        raise SystemExit(0)  # as Tune's report does in a trial it stops

    ctx = make_ctx(in_tmp, seed=0)
    ctx._reporter = report
    params = {"base_lr": 0.05, "hidden": 32, "dropout": 0.1, "batch_size": 64}
    with pytest.raises(SystemExit):
        CaffeAdapter(spec).run({**params, "max_iter": 100_000_000}, ctx)
    assert time.monotonic() - stopped_at[0] < 5
    (process,) = started
    assert process.returncode == 0  # SIGINT: Caffe stopped after the current iteration
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    assert "Optimization stopped early." in ctx.log_path.read_text()
    assert list(ctx.output_dir.glob("mlp_iter_*.caffemodel"))


MANIFEST = """\
name: caffe_digits_mlp
description: An MLP on the digits, written for the original service
version: "1.0"
gpus: 0
cpus: 1
memory: 1Gb
learners: 1
framework:
  name: caffe
  version: "1.0-py2"
  command: caffe train -solver solver.prototxt
evaluation_metrics:
  type: emetrics_file
hyper_parameters_optimization:
  method:
    name: random
    parameters:
      - {name: objective, string_value: test_accuracy}
      - {name: maximize_or_minimize, string_value: maximize}
      - {name: num_optimizer_steps, int_value: 2}
  hyper_parameters:
    - {name: base_lr, double_values: [0.05, 0.1]}
    - {name: hidden, int_values: [32, 64]}
    - {name: dropout, double_values: [0.1]}
    - {name: batch_size, int_values: [64]}
"""


@pytest.mark.usefixtures("ray_session")
def test_a_caffe_manifest_runs_unchanged(model: Path, settings) -> None:
    from sweeper.execution._sweep import run

    (model / "manifest.yml").write_text(MANIFEST)
    spec = load_spec(model / "manifest.yml")
    assert spec.framework == "caffe"
    assert spec.framework_options == CaffeSpec(solver="solver.prototxt")
    result = run(spec, settings, echo=None)
    assert set(result.results["state"]) == {"completed"}
    assert len(result.results) == 2
    assert result.best["test_accuracy"] > 0.8
    client = mlflow.MlflowClient(result.tracking_uri)
    history = client.get_metric_history(result.best["mlflow_run_id"], "test_accuracy")
    assert len(history) >= 2  # test net results at several iterations


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_early_stopped_caffe_trials_stop_on_sigint_and_the_sweep_goes_on(model, settings):
    from sweeper.execution._sweep import run
    from sweeper.spec import parse_spec

    # One trial at a time, learning rates falling in grid order: the later trials are behind
    # the first at the first rung (iteration 50) and ASHA stops them there.
    spec = parse_spec(
        {
            "name": "caffe-stop",
            "framework": "caffe",
            "caffe": {"solver": "solver.prototxt"},
            "search": {
                "method": "grid",
                "metric": "test_accuracy",
                "mode": "max",
                "concurrency": 1,
            },
            "parameters": {
                "base_lr": {"choice": [0.2, 0.0005, 0.0002]},
                "hidden": 32,
                "dropout": 0.1,
                "batch_size": 64,
                "max_iter": 20000,
            },
            "early_stopping": {
                "method": "asha",
                "max_steps": 20000,
                "grace_period": 50,
                "reduction_factor": 3,
            },
        },
        base_dir=model,
    )
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("trial")
    assert len(frame) == 3
    assert frame.loc["trial-0001", "state"] == "completed"
    stopped = frame[frame["state"] == "stopped"]
    assert len(stopped) == 2
    for trial in stopped.index:
        trial_dir = result.sweep_dir / "trials" / trial
        log = (trial_dir / "trial.log").read_text()
        # Caffe got its SIGINT (which Ray's worker threads block) and stopped by itself, after
        # the current iteration and with a snapshot, rather than being killed.
        assert "Optimization stopped early." in log
        assert list((trial_dir / "output").glob("mlp_iter_*.caffemodel"))
        assert "killed" not in log


def test_a_failing_caffe_shows_its_own_fatal_line_first(model, write_spec, in_tmp):
    """FfDL's GPU manifest on a CPU-only Caffe: the trial's error begins with Caffe's F line,
    which is what the console's line for the failed trial shows."""
    spec = load_spec(write_spec(SPEC))
    params = {"base_lr": 0.1, "hidden": 32, "dropout": 0.1, "batch_size": 64}
    with pytest.raises(TrialError) as caught:
        CaffeAdapter(spec).run(params, make_ctx(in_tmp, gpu_ids=["0"]))
    assert re.fullmatch(
        r"F\d{4} [\d:.]+ +\d+ \S+\] Cannot use GPU in CPU-only Caffe: check mode\. "
        r"\(caffe train was killed by SIGABRT\)",
        str(caught.value),
    ), str(caught.value)
