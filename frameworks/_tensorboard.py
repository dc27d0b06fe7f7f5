"""Scalars from TensorBoard event files: the ``metrics.tensorboard`` channel of ``command``.

A program that logs TensorBoard summaries (``tf.summary``, Keras' ``TensorBoard`` callback,
``torch.utils.tensorboard``, tensorboardX, TF 1.x's ``FileWriter``) reports through them: the
event files (``events.out.tfevents.*``) in a folder and its subfolders are read as they grow.
A scalar tagged ``accuracy`` in the folder itself is the metric ``accuracy``; in the subfolder
``test`` (a TensorBoard "run") it is ``test_accuracy``, as EMetrics' group ``test`` names it;
``/`` in run folders and tags becomes ``_`` (Keras' ``validation/epoch_accuracy`` is
``validation_epoch_accuracy``).

Records are read with TensorBoard's own record reader, the one it falls back to without
TensorFlow, and its ``data_compat`` turns TF 1.x's ``simple_value`` scalars into the scalar
tensors TF 2 writes. Not ``EventFileLoader``: where TensorFlow is installed it reads through
TensorFlow, whose import costs each trial's actor seconds and hundreds of MB. TensorBoard is
imported when the trial first reads, never by the driver.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from sweeper.frameworks._metrics import Report

__all__ = ["EVENT_FILES", "TensorBoardFollower", "scalar_name"]

# The names TensorBoard's writers give event files (TF 2 adds ``.<pid>.<n>.v2``).
EVENT_FILES = "events.out.tfevents.*"
_SCALARS = "scalars"  # the plugin name of scalar summaries
_NUMBERS = "fiu"  # numpy dtype kinds a scalar may have


def scalar_name(run: str, tag: str) -> str:
    """The metric name of scalar ``tag`` in ``run``.

    Args:
        run: The run's folder relative to the followed one, ``/``-separated; ``""`` for the
            followed folder itself.
        tag: The summary's tag.
    """
    return (f"{run}/{tag}" if run else tag).replace("/", "_")


class _EventFile:
    """One event file, each read going on from where the previous one stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: Any = None

    def records(self) -> Iterator[bytes]:
        """The records written since the last call: whole ones only."""
        # tensorboard has no type information (no py.typed, no stubs).
        from tensorboard.compat.tensorflow_stub import (  # type: ignore[import-untyped]
            errors,
            pywrap_tensorflow,
        )

        try:
            if self._reader is None:
                self._reader = pywrap_tensorflow.PyRecordReader_New(str(self.path))
            while True:
                self._reader.GetNext()
                yield self._reader.record()
        except errors.OutOfRangeError:
            return  # the end of what is written so far
        except errors.DataLossError:
            # A record still being written: the reader keeps its bytes and reads it again, whole,
            # next time. (A corrupt one stops the file here, as it stops TensorBoard.)
            return
        except (errors.OpError, OSError):
            return  # the file went away between listing and reading


class TensorBoardFollower:
    """Reads the scalar summaries a program writes under a folder, as it writes them.

    Like :class:`~sweeper.frameworks._metrics.FileFollower`, :meth:`poll` is called
    periodically while the program runs and once after it ends; files that appear later, in
    new subfolders too, are read from their start.

    Args:
        folder: The folder whose event files, its subfolders' included, are read (it need not
            exist yet).
        report: Gets ``(step, metrics)``: each poll's values, one call per step, in step order.
    """

    def __init__(self, folder: Path, report: Report) -> None:
        self.folder = folder
        self.report = report
        self._files: dict[Path, _EventFile] = {}
        # The plugin of each (run, tag): TF 2 may write a summary's metadata only with its
        # first value, as TensorBoard reads it.
        self._plugins: dict[tuple[str, str], str] = {}

    def poll(self) -> None:
        """Report what the event files gained since the last poll."""
        steps: dict[int, dict[str, float]] = {}
        for path in self._event_files():
            source = self._files.get(path)
            if source is None:
                source = self._files[path] = _EventFile(path)
            run = path.parent.relative_to(self.folder).as_posix()
            run = "" if run == "." else run
            for step, tag, value in self._scalars(run, source):
                steps.setdefault(step, {})[scalar_name(run, tag)] = value
        for step in sorted(steps):
            self.report(step, steps[step])

    def _event_files(self) -> list[Path]:
        found = []
        for folder, dirs, files in os.walk(self.folder):
            dirs.sort()
            found += [Path(folder, name) for name in sorted(files) if fnmatch(name, EVENT_FILES)]
        return found

    def _scalars(self, run: str, source: _EventFile) -> Iterator[tuple[int, str, float]]:
        """``(step, tag, value)`` of each scalar in the records ``source`` gained."""
        from tensorboard import data_compat  # type: ignore[import-untyped]
        from tensorboard.compat.proto import event_pb2  # type: ignore[import-untyped]
        from tensorboard.util import tensor_util  # type: ignore[import-untyped]

        for record in source.records():
            try:
                event = event_pb2.Event.FromString(record)
            except Exception:  # protobuf's DecodeError: a whole record that holds no event
                continue
            # A negative step is no step sweeper can report (TensorBoard's are int64).
            if not event.HasField("summary") or event.step < 0:
                continue
            # simple_value (TF 1.x, tensorboardX, torch) becomes a scalar tensor, as TF 2 writes.
            event = data_compat.migrate_event(event)
            for value in event.summary.value:
                key = (run, value.tag)
                plugin = value.metadata.plugin_data.plugin_name
                if plugin:
                    self._plugins.setdefault(key, plugin)
                if self._plugins.get(key) != _SCALARS or value.WhichOneof("value") != "tensor":
                    continue
                try:
                    array = tensor_util.make_ndarray(value.tensor)
                except (TypeError, ValueError):
                    continue
                if array.size == 1 and array.dtype.kind in _NUMBERS:
                    yield event.step, value.tag, _decimal(array.reshape(())[()])


def _decimal(number: Any) -> float:
    """A numpy number as a float: a float32 (how summaries keep scalars) by its shortest
    decimal, ``0.1`` rather than ``0.10000000149011612``."""
    return float(str(number)) if number.dtype.kind == "f" else float(number)
