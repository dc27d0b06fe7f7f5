"""metrics.tensorboard: scalars from TensorBoard event files, both encodings (``simple_value``
and TF 2's scalar tensors), named by run folder and tag, read as a writer appends them, and
reported per step during a ``command`` trial, where early stopping acts on them."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest

# tensorboardX (Ray Tune depends on it) writes simple_value, as TF 1.x and torch do.
from tensorboardX import SummaryWriter

from sweeper.errors import SpecError, TrialError
from sweeper.execution._sweep import run
from sweeper.frameworks._tensorboard import TensorBoardFollower, scalar_name
from sweeper.frameworks.command import CommandAdapter
from sweeper.frameworks.testing import trial_context
from sweeper.spec import parse_spec

# A command trial's program: test/accuracy and train/loss per epoch under $JOB_STATE_DIR's
# logs/tb, as FfDL's examples wrote them. It writes records with TensorBoard's RecordWriter,
# which torch's SummaryWriter writes through, each on disk at once (tensorboardX's writer
# writes its queue every flush_secs; TensorBoard's EventFileWriter imports TensorFlow).
TRAINER = """\
import argparse, os, time
from pathlib import Path
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()
Path(os.environ["RESULT_DIR"], "pid").write_text(str(os.getpid()))
tb = Path(os.environ["JOB_STATE_DIR"], "logs", "tb")
writers = {}
for run in ("test", "train"):
    (tb / run).mkdir(parents=True)
    path = tb / run / f"events.out.tfevents.{int(time.time())}.trainer"
    writers[run] = RecordWriter(open(path, "ab", buffering=0))


def scalar(run, tag, value, step):
    summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
    writers[run].write(Event(step=step, wall_time=time.time(), summary=summary).SerializeToString())


for epoch in range(1, args.epochs + 1):
    time.sleep(args.sleep)
    with open(Path(os.environ["RESULT_DIR"], "epochs.log"), "a") as ran:
        ran.write(f"{epoch}\\n")
    scalar("test", "accuracy", args.x * epoch / 4, epoch)
    scalar("train", "loss", 0.5**epoch, epoch)
for writer in writers.values():
    writer.close()
"""


def follow(folder: Path) -> tuple[TensorBoardFollower, list[tuple[int | None, dict]]]:
    seen: list[tuple[int | None, dict]] = []
    return TensorBoardFollower(folder, lambda step, values: seen.append((step, values))), seen


class Writer:
    """Event files as TensorBoard's RecordWriter writes them (torch's SummaryWriter writes
    through it), each record on disk at once."""

    def __init__(self, folder: Path) -> None:
        from tensorboard.summary.writer.record_writer import RecordWriter

        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"events.out.tfevents.{int(time.time())}.{len(list(folder.iterdir()))}"
        self.records = RecordWriter(open(self.path, "ab", buffering=0))  # noqa: SIM115

    def event(self, step: int, summary: Any) -> None:
        from tensorboard.compat.proto import event_pb2

        event = event_pb2.Event(step=step, wall_time=time.time(), summary=summary)
        self.records.write(event.SerializeToString())

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.event(step, simple_value(tag, value))

    def close(self) -> None:
        self.records.close()


def simple_value(tag: str, value: float) -> Any:
    from tensorboard.compat.proto import summary_pb2

    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])


def record(step: int, tag: str, value: float) -> bytes:
    """One event as a record of an event file: length, CRCs and all."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    event = event_pb2.Event(step=step, summary=simple_value(tag, value))
    RecordWriter(buffer).write(event.SerializeToString())
    return buffer.getvalue()


def test_a_scalar_is_named_by_its_run_folder_and_tag():
    assert scalar_name("", "accuracy") == "accuracy"
    assert scalar_name("test", "accuracy") == "test_accuracy"
    assert scalar_name("validation", "epoch_accuracy") == "validation_epoch_accuracy"
    assert scalar_name("a/b", "loss/total") == "a_b_loss_total"


def test_simple_values_are_read_from_the_folder_and_its_runs_one_report_per_step(tmp_path):
    root, test = SummaryWriter(str(tmp_path)), SummaryWriter(str(tmp_path / "test"))
    validation = SummaryWriter(str(tmp_path / "validation"))
    for step in (2, 1):  # written out of order: reported in step order
        root.add_scalar("loss/total", 1.0 / step, step)
        test.add_scalar("accuracy", step / 4, step)
        validation.add_scalar("epoch_accuracy", step / 8, step)
    root.add_text("note", "not a number", 1)
    root.add_histogram("weights", [0.1, 0.2, 0.3], 1)
    for writer in (root, test, validation):
        writer.close()
    follower, seen = follow(tmp_path)
    follower.poll()
    assert seen == [
        (1, {"loss_total": 1.0, "test_accuracy": 0.25, "validation_epoch_accuracy": 0.125}),
        (2, {"loss_total": 0.5, "test_accuracy": 0.5, "validation_epoch_accuracy": 0.25}),
    ]


def test_scalar_tensors_are_read_with_metadata_on_the_first_value_only(tmp_path):
    # TF 2's encoding, through TensorBoard's own writer: a tensor whose metadata names the
    # scalars plugin, which a writer may leave out after a tag's first value.
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb
    from tensorboard.plugins.text.summary_v2 import text_pb

    writer = Writer(tmp_path / "test")
    for step in (1, 2, 3):
        summary = scalar_pb("accuracy", step / 4)
        summary.value.extend(text_pb("note", "not a number").value)
        if step > 1:
            for value in summary.value:
                value.ClearField("metadata")
        writer.event(step, summary)
    writer.close()
    follower, seen = follow(tmp_path)
    follower.poll()
    assert seen == [
        (1, {"test_accuracy": 0.25}),
        (2, {"test_accuracy": 0.5}),
        (3, {"test_accuracy": 0.75}),
    ]


@pytest.mark.tensorflow
def test_tf2_summaries_are_read(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import tensorflow as tf
        writer = tf.summary.create_file_writer(sys.argv[1] + "/validation")
        with writer.as_default():
            for step in (1, 2):
                tf.summary.scalar("epoch_accuracy", step / 4, step=step)
                tf.summary.text("note", "not a number", step=step)
                tf.summary.histogram("weights", [0.1, 0.2], step=step)
        writer.close()
        """
    )
    # In a process of its own: TensorFlow is slow to import and keeps its threads.
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=240)
    follower, seen = follow(tmp_path)
    follower.poll()
    assert seen == [
        (1, {"validation_epoch_accuracy": 0.25}),
        (2, {"validation_epoch_accuracy": 0.5}),
    ]


def test_reading_while_a_writer_appends_reports_only_what_is_new(tmp_path):
    follower, seen = follow(tmp_path / "tb")
    follower.poll()  # no folder yet
    writer = Writer(tmp_path / "tb" / "test")
    writer.scalar("accuracy", 0.25, 1)
    follower.poll()
    assert seen == [(1, {"test_accuracy": 0.25})]
    writer.scalar("accuracy", 0.5, 2)
    follower.poll()
    follower.poll()
    assert seen[1:] == [(2, {"test_accuracy": 0.5})]
    # A run that starts later is read from its start.
    later = Writer(tmp_path / "tb" / "train")
    later.scalar("loss", 0.75, 2)
    later.close()
    follower.poll()
    assert seen[2:] == [(2, {"train_loss": 0.75})]
    writer.close()
    # A record the writer is still writing is read once it is whole, at any cut.
    data = record(3, "accuracy", 0.75)
    for start, end in ((0, 5), (5, 14), (14, len(data) - 2), (len(data) - 2, len(data))):
        with open(writer.path, "ab") as out:
            out.write(data[start:end])
        follower.poll()
        assert len(seen) == (4 if end == len(data) else 3)
    assert seen[3] == (3, {"test_accuracy": 0.75})


def test_an_empty_folder_is_a_spec_error():
    data = {
        "name": "c",
        "framework": "command",
        "command": [sys.executable, "train.py"],
        "search": {"method": "grid", "metric": "test_accuracy", "mode": "max"},
        "metrics": {"tensorboard": ""},
    }
    with pytest.raises(SpecError) as caught:
        parse_spec(data, base_dir=Path.cwd())
    assert str(caught.value) == (
        "metrics.tensorboard must be a folder, got '' (metrics.tensorboard); "
        "e.g. tensorboard: $JOB_STATE_DIR/logs/tb, or leave it out"
    )


def test_a_variable_the_environment_lacks_fails_the_trial(tmp_path):
    (tmp_path / "train.py").write_text("print('never run')\n")
    spec = parse_spec(
        {
            "name": "c",
            "framework": "command",
            "command": [sys.executable, "train.py"],
            "search": {"method": "grid", "metric": "test_accuracy", "mode": "max"},
            "metrics": {"tensorboard": "${NO_SUCH_DIR}/tb", "emetrics": False},
        },
        base_dir=tmp_path,
    )
    with pytest.raises(TrialError) as caught:
        CommandAdapter(spec).run({}, trial_context(tmp_path / "trials"))
    assert str(caught.value) == (
        "metrics.tensorboard must name variables the trial's environment sets, got "
        "$NO_SUCH_DIR in '${NO_SUCH_DIR}/tb'; e.g. $JOB_STATE_DIR, $LOG_DIR or $RESULT_DIR"
    )


def test_tensorboard_is_imported_by_the_first_read_and_tensorflow_never(tmp_path):
    writer = Writer(tmp_path / "test")
    writer.scalar("accuracy", 0.5, 1)
    writer.close()
    probe = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from sweeper.frameworks.command import CommandAdapter
        from sweeper.frameworks._tensorboard import TensorBoardFollower
        print("tensorboard" in sys.modules)  # the driver imports the adapter, never tensorboard
        TensorBoardFollower(Path(sys.argv[1]), lambda step, values: print(step, values)).poll()
        print("tensorboard" in sys.modules, "tensorflow" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["False", "1 {'test_accuracy': 0.5}", "True False"]


def tensorboard_spec(code: Path, parameters: dict, **extra) -> object:
    (code / "tb_train.py").write_text(TRAINER)
    data = {
        "name": "tensorboard-test",
        "framework": "command",
        "command": [sys.executable, "tb_train.py"],
        "metrics": {"tensorboard": "$JOB_STATE_DIR/logs/tb", "emetrics": False},
        "search": {"method": "grid", "metric": "test_accuracy", "mode": "max", "concurrency": 2},
        "parameters": parameters,
        **extra,
    }
    return parse_spec(data, base_dir=code)


@pytest.mark.usefixtures("ray_session")
def test_a_command_trials_event_files_reach_mlflow_per_step(settings, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    result = run(tensorboard_spec(code, {"x": {"choice": [1.0]}}), settings, echo=None)
    (row,) = result.results.to_dict("records")
    assert row["state"] == "completed"
    assert row["test_accuracy"] == 0.75
    client = mlflow.MlflowClient(result.tracking_uri)
    history = client.get_metric_history(row["mlflow_run_id"], "test_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.25), (2, 0.5), (3, 0.75)]
    loss = client.get_metric_history(row["mlflow_run_id"], "train_loss")
    assert sorted((m.step, m.value) for m in loss) == [(1, 0.5), (2, 0.25), (3, 0.125)]


@pytest.mark.usefixtures("ray_session")
def test_early_stopping_acts_on_event_files_during_the_trial(settings, tmp_path):
    # Trials run in grid order and x falls: each new trial is worse than those before it.
    code = tmp_path / "code"
    code.mkdir()
    spec = tensorboard_spec(
        code,
        # Epochs long enough that a stop lands mid-trial on a loaded machine too: a trial
        # stopped at step 3 has 6 s to go (at 0.5 s, two loaded CI runs stopped it too late).
        {"x": {"choice": [6, 5, 4, 3, 2, 1]}, "epochs": 9, "sleep": 1.0},
        early_stopping={"method": "asha", "max_steps": 9, "reduction_factor": 3},
    )
    result = run(spec, settings, echo=None)
    frame = result.results.set_index("trial")
    stopped = frame[frame["state"] == "stopped"]
    assert len(stopped) >= 3
    time.sleep(1.0)
    for trial in stopped.index:
        output = result.sweep_dir / "trials" / trial / "output"
        with pytest.raises(ProcessLookupError):
            os.kill(int((output / "pid").read_text()), 0)  # the program is gone
        ran = [int(epoch) for epoch in (output / "epochs.log").read_text().split()]
        assert ran[-1] < 9  # stopped while it ran, not at its end
    assert set(frame.loc[frame["state"] != "stopped", "steps"]) == {9}
