"""The TensorFlow adapter: the conformance kit, a process per trial, Keras reports, stopping
(through SystemExit from the report, as Tune stops a trial), and its errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sweeper.errors import TrialError
from sweeper.frameworks.context import REPORTED_KEY, TrialContext
from sweeper.frameworks.tensorflow import MISSING_TENSORFLOW, StopTrial, TensorFlowAdapter
from sweeper.frameworks.testing import AdapterTestSuite, Project, trial_context
from sweeper.spec import load_spec

pytestmark = pytest.mark.tensorflow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "configs/digits-keras.yml"

ACTOR_LINE = re.compile(r"^sweeper: actor pid (\d+) starts", re.MULTILINE)
CHILD_LINE = re.compile(r"^sweeper: TensorFlow trial process pid (\d+) \(parent (\d+)\)", re.M)


class TestTensorFlowAdapter(AdapterTestSuite):
    framework_module = "tensorflow"

    @pytest.fixture(scope="class")
    def adapter_class(self) -> type[TensorFlowAdapter]:
        return TensorFlowAdapter

    @pytest.fixture(scope="class")
    def project(self, tmp_path_factory: pytest.TempPathFactory) -> Project:
        return Project.python_trainer(tmp_path_factory.mktemp("tensorflow"))

    @pytest.fixture(scope="session")
    def ray_cluster(self, ray_session: object) -> None:
        """The test session's Ray (tests/conftest.py)."""


def make_ctx(folder: Path, seed: int | None = None, reporter=lambda result: None) -> TrialContext:
    """A trial context laid out as sweeper lays trials out (``<trial>/output``), outside Ray."""
    return trial_context(folder, params={"epochs": 3}, seed=seed, metric="acc", reporter=reporter)


def stop_after(count: int, reports: list[dict]):
    """A reporter that records reports and raises SystemExit at the ``count``-th, as Tune's
    report does in a trial it stops; ``stopped`` is set then."""
    stopped = threading.Event()

    def report(result: dict) -> None:
        reports.append(result)
        if len(reports) == count:
            stopped.set()
            raise SystemExit(0)

    report.stopped = stopped  # type: ignore[attr-defined]
    return report


@pytest.fixture
def adapter_for(tmp_path, write_spec, in_tmp):
    """A TensorFlowAdapter whose entry point is ``train`` in ``tmp_path/train.py`` (code given)."""

    def make(code: str, cpus: int = 1) -> TensorFlowAdapter:
        (tmp_path / "train.py").write_text(code)
        spec = load_spec(
            write_spec(
                "name: t\nframework: tensorflow\nentrypoint: train.py:train\n"
                f"resources: {{cpus: {cpus}}}\n"
                "search: {method: grid, metric: acc, mode: max}\n"
            )
        )
        adapter = TensorFlowAdapter(spec)
        adapter.validate()
        return adapter

    return make


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_example_sweep_trains_each_trial_in_its_own_process(run_example):
    example = run_example(EXAMPLE, "val_accuracy")
    epochs = example.spec.constants["epochs"]
    actors, children = set(), []
    for trial in example.results["trial"]:
        trial_dir = example.sweep_dir / "trials" / trial
        assert (trial_dir / "output" / "model.keras").stat().st_size > 0
        log = (trial_dir / "trial.log").read_text()
        (actor,) = ACTOR_LINE.findall(log)
        ((child, parent),) = CHILD_LINE.findall(log)
        assert parent == actor != child  # a child of the trial's actor, not the actor itself
        actors.add(actor)
        children.append(child)
    assert len(set(children)) == example.spec.trial_count()  # a fresh process for every trial
    assert not actors & set(children)

    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert example.children[f"metrics.{name}"].notna().all()
    for run_id in example.children["run_id"]:
        history = example.client.get_metric_history(run_id, "val_accuracy")
        assert sorted(m.step for m in history) == list(range(1, epochs + 1))


def test_reports_reach_the_actor_from_a_seeded_child_with_sized_threads(tmp_path, adapter_for):
    adapter = adapter_for(
        "import os, random\n"
        "import numpy as np, keras, tensorflow as tf\n"
        "from sweeper.frameworks.tensorflow import ReportCallback\n"
        "def train(params, ctx):\n"
        "    ctx.report(step=0, pid=os.getpid(), rand=random.random(), np_rand=np.random.rand(),\n"
        "               intra=tf.config.threading.get_intra_op_parallelism_threads())\n"
        "    x = np.random.rand(64, 4).astype('float32'); y = (x.sum(1) > 2).astype('int64')\n"
        "    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, 'softmax')])\n"
        "    model.compile('sgd', 'sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        "    model.fit(x, y, validation_data=(x, y), epochs=params['epochs'], verbose=0,\n"
        "              callbacks=[ReportCallback(ctx)])\n"
        "    return {'acc': 0.5}\n",
        cpus=2,
    )
    tf_before = "tensorflow" in sys.modules
    reports: list[dict] = []
    adapter.run({"epochs": 3}, make_ctx(tmp_path, seed=7, reporter=reports.append))

    import random

    import numpy as np

    random.seed(7)
    np.random.seed(7)
    first = reports[0]
    assert first["pid"] != os.getpid()
    assert first["rand"] == random.random()
    assert first["np_rand"] == np.random.rand()
    assert first["intra"] == 2
    assert [r["step"] for r in reports] == [0, 1, 2, 3, 4]
    for epoch in reports[1:4]:
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} == set(epoch[REPORTED_KEY])
    assert reports[4][REPORTED_KEY] == ["acc"]
    assert ("tensorflow" in sys.modules) == tf_before  # TensorFlow stays out of the actor
    assert gone(int(first["pid"]))


def test_a_stop_ends_a_fit_between_epochs_and_the_function_goes_on(tmp_path, adapter_for):
    adapter = adapter_for(
        "import json, os, time\n"
        "import numpy as np, keras\n"
        "from sweeper.frameworks.tensorflow import ReportCallback\n"
        "class Slow(keras.callbacks.Callback):\n"
        "    def on_epoch_end(self, epoch, logs=None):\n"
        "        time.sleep(0.1)\n"
        "def train(params, ctx):\n"
        "    (ctx.output_dir / 'pid').write_text(str(os.getpid()))\n"
        "    x = np.random.rand(64, 4).astype('float32'); y = (x.sum(1) > 2).astype('int64')\n"
        "    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, 'softmax')])\n"
        "    model.compile('sgd', 'sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        "    history = model.fit(x, y, epochs=1000, verbose=0,\n"
        "                        callbacks=[Slow(), ReportCallback(ctx)])\n"
        "    (ctx.output_dir / 'fit_done').write_text('yes')\n"
        "    time.sleep(1)  # the test sends SIGTERM again meanwhile\n"
        "    (ctx.output_dir / 'after_fit.json').write_text(json.dumps(len(history.epoch)))\n"
    )
    reports: list[dict] = []
    ctx = make_ctx(tmp_path, reporter=stop_after(3, reports))
    errors: list[BaseException] = []

    def train() -> None:
        try:
            adapter.run({}, ctx)
        except BaseException as exc:
            errors.append(exc)

    runner = threading.Thread(target=train)
    runner.start()
    fit_done = ctx.output_dir / "fit_done"
    while not fit_done.exists() and runner.is_alive():
        time.sleep(0.02)
    # A repeated stop (another SIGTERM) must not interrupt what follows the ended fit.
    if runner.is_alive():
        os.kill(int((ctx.output_dir / "pid").read_text()), signal.SIGTERM)
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert [type(e) for e in errors] == [SystemExit]  # it reaches the trial, which ends
    assert [r["step"] for r in reports] == [1, 2, 3]
    # The fit ended after an epoch, and the training function ran on to its end.
    epochs = json.loads((ctx.output_dir / "after_fit.json").read_text())
    assert 3 <= epochs < 1000
    assert gone(int((ctx.output_dir / "pid").read_text()))


def test_a_stop_outside_a_fit_interrupts_the_function_at_once(tmp_path, adapter_for):
    adapter = adapter_for(
        "import os, time\n"
        "def train(params, ctx):\n"
        "    (ctx.output_dir / 'pid').write_text(str(os.getpid()))\n"
        "    ctx.report(step=1, acc=0.5)\n"
        "    try:\n"
        "        time.sleep(120)\n"
        "    finally:\n"
        "        (ctx.output_dir / 'unwound').write_text('yes')\n"
    )
    reporter = stop_after(1, [])
    ctx = make_ctx(tmp_path, reporter=reporter)
    with pytest.raises(SystemExit):
        adapter.run({}, ctx)
    assert (ctx.output_dir / "unwound").read_text() == "yes"
    assert gone(int((ctx.output_dir / "pid").read_text()))
    assert "sweeper: trial stopped on request" in ctx.log_path.read_text()


def test_sigterm_in_the_child_stops_once_and_waits_for_the_epoch_in_a_fit(monkeypatch):
    import sweeper.frameworks.tensorflow as tf_adapter

    monkeypatch.setattr(tf_adapter, "_stop", threading.Event())
    with pytest.raises(StopTrial):
        tf_adapter._on_sigterm(signal.SIGTERM, None)
    assert tf_adapter._stop.is_set()
    tf_adapter._on_sigterm(signal.SIGTERM, None)  # a repeated stop is ignored

    monkeypatch.setattr(tf_adapter, "_stop", threading.Event())
    monkeypatch.setattr(tf_adapter, "_watching_fits", 1)  # a ReportCallback is in model.fit
    tf_adapter._on_sigterm(signal.SIGTERM, None)  # sets the flag, raises nothing
    assert tf_adapter._stop.is_set()


def test_a_failing_function_fails_the_trial_with_the_exit_status(tmp_path, adapter_for):
    adapter = adapter_for(
        "import sys\ndef train(params, ctx):\n    print('about to fail')\n    sys.exit(3)\n"
    )
    with pytest.raises(TrialError) as caught:
        adapter.run({}, make_ctx(tmp_path))
    assert str(caught.value) == "the TensorFlow trial process exited with status 3"
    assert "about to fail" in (tmp_path / "trial-0001" / "trial.log").read_text()


def test_missing_tensorflow_names_the_extra_to_install(tmp_path, monkeypatch, adapter_for):
    adapter = adapter_for("def train(params, ctx):\n    pass\n")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    with pytest.raises(TrialError) as caught:
        adapter.run({}, make_ctx(tmp_path))
    assert str(caught.value) == (
        'framework tensorflow needs TensorFlow; install it with: pip install "sweeper[tensorflow]"'
    )
    assert not (tmp_path / "trial-0001" / "trial.log").exists()  # checked before the child


def test_missing_tensorflow_in_the_child_names_the_extra(tmp_path, monkeypatch, adapter_for):
    adapter = adapter_for("def train(params, ctx):\n    pass\n")
    fake = tmp_path / "no_tf" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named tensorflow')\n")
    path = os.pathsep.join(p for p in (str(fake.parent), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    with pytest.raises(TrialError) as caught:
        adapter.run({}, make_ctx(tmp_path))
    assert (
        str(caught.value)
        == f"the TensorFlow trial process exited with status 2: {MISSING_TENSORFLOW}"
    )
    assert MISSING_TENSORFLOW in (tmp_path / "trial-0001" / "trial.log").read_text()


def test_validating_a_spec_imports_neither_tensorflow_nor_keras(tmp_path):
    code = (
        "import sys\n"
        "from sweeper.frameworks.registry import get_adapter_class\n"
        "from sweeper.spec import load_spec\n"
        f"spec = load_spec({str(ROOT / EXAMPLE)!r})\n"
        "get_adapter_class(spec.framework)(spec).validate()\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# A trial whose score is x (plus a little per epoch), and whose function saves for a while after
# its fit ends: a stopped trial takes seconds to end, as a real one writing its model does.
SLOW_TO_END = """\
import os, time
import numpy as np, keras
from sweeper.frameworks.tensorflow import ReportCallback

class Score(keras.callbacks.Callback):
    def __init__(self, x):
        super().__init__()
        self.x = x
    def on_epoch_end(self, epoch, logs=None):
        logs['score'] = self.x + 0.01 * epoch
        time.sleep(0.2)

def train(params, ctx):
    (ctx.output_dir / 'pid').write_text(str(os.getpid()))
    x = np.random.rand(64, 4).astype('float32'); y = (x.sum(1) > 2).astype('int64')
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, 'softmax')])
    model.compile('sgd', 'sparse_categorical_crossentropy')
    model.fit(x, y, epochs=params['epochs'], verbose=0,
              callbacks=[Score(params['x']), ReportCallback(ctx)])
    print('saving the model', flush=True)
    time.sleep(4)
    (ctx.output_dir / 'saved').write_text('yes')
    print('model saved', flush=True)
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_early_stopped_trials_end_cleanly_and_their_actor_runs_the_next(tmp_path, settings):
    from sweeper.execution._sweep import run
    from sweeper.spec import parse_spec

    (tmp_path / "slow_end.py").write_text(SLOW_TO_END)
    # One trial at a time in grid order, each worse than those before: ASHA stops every trial
    # after the first at its first rung, and the next trial reuses the stopped one's actor.
    spec = parse_spec(
        {
            "name": "tf-stop",
            "framework": "tensorflow",
            "entrypoint": "slow_end.py:train",
            "search": {"method": "grid", "metric": "score", "mode": "max", "concurrency": 1},
            "parameters": {"x": {"choice": [4, 3, 2, 1]}, "epochs": 6},
            "early_stopping": {"method": "asha", "max_steps": 6, "reduction_factor": 3},
        },
        base_dir=tmp_path,
    )
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("trial")
    assert len(frame) == 4  # no trial lost to a failed actor reset
    assert frame.loc["trial-0001", "state"] == "completed"
    stopped = frame[frame["state"] == "stopped"]
    assert len(stopped) == 3
    assert (stopped["steps"] < 6).all()
    for trial in frame.index:
        trial_dir = result.sweep_dir / "trials" / trial
        # Every trial, the last stopped one too (its actor then ends), ran on to its end.
        assert (trial_dir / "output" / "saved").read_text() == "yes"
        assert gone(int((trial_dir / "output" / "pid").read_text()))
        log = (trial_dir / "trial.log").read_text()
        assert "model saved" in log  # the log holds what the program said after the stop
    actors = {
        ACTOR_LINE.search((result.sweep_dir / "trials" / t / "trial.log").read_text()).group(1)
        for t in frame.index
    }
    assert len(actors) == 1  # the stopped trials' actor was reused, not replaced
