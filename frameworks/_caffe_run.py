"""What a ``caffe`` trial runs and reads: the ``caffe train`` command line, its log, snapshots."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

__all__ = ["CaffeLog", "caffe_argv", "latest_snapshot"]

_LOSS = re.compile(r"\bIteration (\d+)(?: \([^)]*\))?, loss = (\S+)")
_LR = re.compile(r"\bIteration (\d+), lr = (\S+)")
_TESTING = re.compile(r"\bIteration (\d+), Testing net \(#(\d+)\)")
_TEST_OUTPUT = re.compile(r"\bTest net output #\d+: (\S+) = (\S+)")


class CaffeLog:
    """Turns ``caffe train``'s log (glog) into one report of metrics per iteration.

    - ``Iteration N (...), loss = x`` gives ``loss`` at step N (Caffe's smoothed training loss).
    - ``Iteration N, lr = x`` gives ``lr`` at step N.
    - ``Test net output #k: name = v`` after ``Iteration N, Testing net (#j)`` gives
      ``test_<name>`` at step N for test net 0 and ``test<j>_<name>`` for test net j > 0.

    Metrics of one iteration are gathered into a single report, released when a line of another
    iteration arrives or at :meth:`close`.
    """

    def __init__(self) -> None:
        self._step: int | None = None
        self._metrics: dict[str, float] = {}
        self._test_net: int | None = None

    def feed(self, line: str) -> list[tuple[int, dict[str, float]]]:
        """Read one log line; return the reports it completes (usually none)."""
        if match := _TEST_OUTPUT.search(line):
            if self._test_net is None:
                return []
            prefix = "test_" if self._test_net == 0 else f"test{self._test_net}_"
            return self._add(self._step, prefix + match.group(1), match.group(2))
        if match := _TESTING.search(line):
            done = self._add(int(match.group(1)))
            self._test_net = int(match.group(2))
            return done
        for pattern, name in ((_LOSS, "loss"), (_LR, "lr")):
            if match := pattern.search(line):
                self._test_net = None
                return self._add(int(match.group(1)), name, match.group(2))
        return []

    def close(self) -> list[tuple[int, dict[str, float]]]:
        """The last report, if metrics are pending."""
        done = self._flush()
        self._step = None
        return done

    def _add(
        self, step: int | None, name: str | None = None, text: str | None = None
    ) -> list[tuple[int, dict[str, float]]]:
        done = self._flush() if step != self._step else []
        self._step = step
        if name is not None and text is not None:
            with contextlib.suppress(ValueError):  # not a number: not a metric line after all
                self._metrics[name] = float(text)
        return done

    def _flush(self) -> list[tuple[int, dict[str, float]]]:
        if self._step is None or not self._metrics:
            return []
        done = [(self._step, self._metrics)]
        self._metrics = {}
        return done


def latest_snapshot(output_dir: Path) -> Path | None:
    """The solver state of the highest iteration Caffe saved in ``output_dir``, if any."""
    found = []
    for path in output_dir.glob("*_iter_*.solverstate*"):
        match = re.search(r"_iter_(\d+)\.solverstate(\.h5)?$", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def caffe_argv(
    caffe: str,
    solver: Path,
    gpu_ids: list[str],
    snapshot: Path | None = None,
    weights: list[Path] | None = None,
) -> list[str]:
    """The ``caffe train`` command line for a rendered solver.

    SIGINT stops training after the current iteration, with a snapshot (how sweeper stops a
    trial), and SIGHUP saves a snapshot and goes on. With GPUs, ``-gpu``
    lists the trial's devices as the child sees them: ``CUDA_VISIBLE_DEVICES`` holds the
    trial's GPUs, so they are devices ``0..n-1``. ``weights`` start a first attempt from a
    model; a ``snapshot`` (an earlier attempt's, or the spec's) continues a solver state.
    """
    argv = [caffe, "train", "-solver", str(solver), "-sigint_effect", "stop"]
    argv += ["-sighup_effect", "snapshot"]
    if snapshot is not None:
        argv += ["-snapshot", str(snapshot)]
    elif weights:  # Caffe refuses both at once; a snapshot holds the weights too
        argv += ["-weights", ",".join(str(path) for path in weights)]
    if gpu_ids:
        argv += ["-gpu", ",".join(str(i) for i in range(len(gpu_ids)))]
    return argv
