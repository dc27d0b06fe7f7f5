"""Running a trial's training program as a child process of the trial's Ray actor.

Adapters whose framework must not live in the actor (TensorFlow keeps GPU memory for the life of
its process), or that drive a program (Caffe's ``caffe``, any command), start it through
:class:`TrialProcess`: its output is streamed line by line into the trial's log and to a
callback that turns lines into metrics; it dies with the actor; and when the callback raises
(``SystemExit`` from ``ctx.report``: sweeper stops the trial) it is ended cleanly (SIGTERM, or
the program's own stop signal, then SIGKILL after :data:`KILL_AFTER_S`) before the exception
goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sweeper.frameworks.base import STOP_GRACE_S

__all__ = [
    "KILL_AFTER_S",
    "METRICS_PREFIX",
    "TrialProcess",
    "child_environment",
    "parse_metrics_line",
]

# A line of a child's output that starts with this prefix holds one JSON object of metrics.
METRICS_PREFIX = "SWEEPER_METRICS "
_PR_SET_PDEATHSIG = 1
_DRAIN_S = 2.0  # seconds to read a stopped program's output after it ended
# Seconds a program asked to stop has before it is killed: what is left of the trial's grace
# after that covers the drain and the unwinding of the actor's own code.
KILL_AFTER_S = STOP_GRACE_S - 5.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Ray's worker threads block SIGINT and other signals, and a blocked mask survives exec:
    # the program would never see the signal that asks it to stop (Caffe's SIGINT).
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    # Ray may kill a trial's actor with SIGKILL; the training program must not outlive it.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def parse_metrics_line(line: str, prefix: str = METRICS_PREFIX) -> dict[str, Any] | None:
    """The JSON object of a ``<prefix>{...}`` line, or ``None`` for any other line."""
    if not line.startswith(prefix):
        return None
    try:
        value = json.loads(line[len(prefix) :])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class TrialProcess:
    """One run of a training program, its stdout and stderr merged into the trial's log.

    Args:
        argv: The program and its arguments (never run through a shell).
        cwd: Its working directory.
        env: Its whole environment.
        log_path: The trial's log file; output is appended line by line.
        stop_signal: The signal that asks the program to end (Caffe stops cleanly on SIGINT).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.argv = list(argv)
        self.stop_signal = stop_signal
        self.cwd = cwd
        self.env = dict(env)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def run(self, on_line: Callable[[str], None] | None = None) -> int:
        """Start the program, stream its output until it exits, and return its exit status.

        ``on_line`` gets each line (without its newline) as it arrives; an exception it raises
        (``SystemExit`` when Tune stops the trial) stops the program and is raised here once
        the program has ended, its last words still written to the log.

        Raises:
            FileNotFoundError: If the program does not exist.
        """
        with open(self.log_path, "ab", buffering=0) as log:
            self._process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            stdout = self._process.stdout
            assert stdout is not None
            try:
                for raw in stdout:
                    log.write(raw)
                    if on_line is not None:
                        on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            except BaseException:
                # Keep reading while the program ends: what it prints then (a final epoch, a
                # snapshot) belongs in the log, and a full pipe would block its exit.
                drain = threading.Thread(target=_copy, args=(stdout, log), daemon=True)
                drain.start()
                self.stop()
                # A program's own children may hold the pipe open after it ended.
                drain.join(timeout=_DRAIN_S)
                raise
            else:
                stdout.close()
            return self._process.wait()

    def stop(self, grace: float = KILL_AFTER_S, signal: int | None = None) -> None:
        """Ask the program to end, and kill it if it has not after ``grace`` seconds.

        :meth:`run` calls it when its callback raises; call it from another thread to end the
        program from elsewhere (:meth:`run` then returns the program's exit status).

        Args:
            grace: Seconds to wait before SIGKILL.
            signal: The signal that asks (default: ``stop_signal``).
        """
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(self.stop_signal if signal is None else signal)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _copy(source: Any, log: Any) -> None:
    with contextlib.suppress(OSError, ValueError):
        for raw in source:
            log.write(raw)


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The actor's environment (``CUDA_VISIBLE_DEVICES`` included) plus ``extra``."""
    env = {**os.environ, **extra}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
