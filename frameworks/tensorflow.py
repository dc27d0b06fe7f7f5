"""The ``tensorflow`` adapter: a TensorFlow/Keras training function, in a fresh process per trial.

TensorFlow keeps GPU memory, its thread pools and Keras's global state for the life of its
process, and Ray reuses a trial's actor for the next trial. So the actor never imports
TensorFlow: :meth:`TensorFlowAdapter.run` writes the trial's job file and starts
``python -m sweeper.frameworks._tf_child JOB`` through
:class:`~sweeper.frameworks._process.TrialProcess`. The child prints each report as a
``SWEEPER_METRICS {json}`` line, which the actor forwards to ``ctx.report``.

When sweeper stops the trial (``SystemExit`` from the actor's ``ctx.report``), the child gets
SIGTERM: :class:`ReportCallback` (a Keras callback, which reports every epoch's logs) ends
``model.fit`` after the current epoch and the training function goes on, to save the model say;
outside a fit the function is interrupted at once (:class:`StopTrial`). A child that has not
ended 10 s later is killed.
"""

from __future__ import annotations

import importlib.util
import json
import numbers
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from sweeper.errors import TrialError
from sweeper.frameworks._entrypoint import check_entrypoint
from sweeper.frameworks._process import TrialProcess, child_environment, parse_metrics_line
from sweeper.frameworks.base import FrameworkAdapter
from sweeper.frameworks.context import REPORTED_KEY

if TYPE_CHECKING:
    from types import FrameType

    from sweeper.frameworks.context import TrialContext

# ReportCallback is built on first access by the module's __getattr__ (it needs Keras).
__all__ = ["ReportCallback", "TensorFlowAdapter"]  # noqa: F822

MISSING_TENSORFLOW = (
    'framework tensorflow needs TensorFlow; install it with: pip install "sweeper[tensorflow]"'
)
JOB_FILE = "tensorflow-job.json"
_CHILD_MODULE = "sweeper.frameworks._tf_child"
# Exit status of a child whose own environment lacks TensorFlow (the message is in the log).
EXIT_MISSING_TENSORFLOW = 2


def require_tensorflow() -> None:
    """Check that TensorFlow can be found, without importing it into this process.

    Raises:
        TrialError: Naming the extra to install, if it is missing.
    """
    try:
        found = importlib.util.find_spec("tensorflow")
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise TrialError(MISSING_TENSORFLOW)


class TensorFlowAdapter(FrameworkAdapter):
    """Calls ``entrypoint(params, ctx)`` in a new Python process for each trial.

    The child process imports TensorFlow, sizes its thread pools to the trial's CPUs, lets it
    grow GPU memory rather than take all of it (trials may share a GPU), seeds Python, NumPy,
    TensorFlow and Keras with ``ctx.seed``, and calls the function. Its output goes to the
    trial's log. A non-zero exit fails the trial.
    """

    name: ClassVar[str] = "tensorflow"
    extra: ClassVar[str | None] = "tensorflow"
    uses: ClassVar[frozenset[str]] = frozenset({"entrypoint"})
    requires: ClassVar[frozenset[str]] = frozenset({"entrypoint"})

    def validate(self) -> None:
        check_entrypoint(self.spec)

    def run(self, params: dict[str, Any], ctx: TrialContext) -> None:
        """Train in a child process; its reports reach ``ctx.report`` as they come.

        Raises:
            TrialError: If TensorFlow is missing, or the child exits with a non-zero status.
        """
        require_tensorflow()
        job_path = ctx.trial_dir / JOB_FILE
        job_path.write_text(json.dumps(self._job(params, ctx), indent=2, default=_plain) + "\n")
        cpus = self._cpus()
        env = child_environment(
            {
                "OMP_NUM_THREADS": str(cpus),
                # TensorFlow's C++ start-up chatter (CPU features, oneDNN) is not worth a log.
                "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1"),
            }
        )
        process = TrialProcess(
            [sys.executable, "-m", _CHILD_MODULE, str(job_path)],
            cwd=ctx.output_dir,
            env=env,
            log_path=ctx.log_path,
        )
        print(f"sweeper: actor pid {os.getpid()} starts the trial's TensorFlow process", flush=True)

        def on_line(line: str) -> None:
            # A report is forwarded only after the child's first line, printed once its SIGTERM
            # handler is installed: a SystemExit raised here always finds the handler.
            result = parse_metrics_line(line)
            if result is not None:
                _forward(result, ctx)

        status = process.run(on_line)
        if status != 0:
            raise TrialError(_exit_message(status))

    def _cpus(self) -> int:
        return max(1, int(self.spec.resources.cpus))

    def _job(self, params: dict[str, Any], ctx: TrialContext) -> dict[str, Any]:
        entrypoint = self.spec.entrypoint or ""  # required: the loader saw to it
        target, sep, function = entrypoint.rpartition(":")
        if target.endswith(".py") or "/" in target or "\\" in target:
            # The child does not read the spec: give it the file as an absolute path.
            entrypoint = f"{self.spec.resolve(target)}{sep}{function}"
        return {
            "entrypoint": entrypoint,
            "base_dir": str(self.spec.base_dir),
            "label": self.spec.label,
            "params": params,
            "trial": ctx.trial,
            "sweep": ctx.sweep,
            "trial_dir": str(ctx.trial_dir),
            "log_path": str(ctx.log_path),
            "output_dir": str(ctx.output_dir),
            "checkpoint_dir": str(ctx.checkpoint_dir),
            "data_dir": None if ctx.data_dir is None else str(ctx.data_dir),
            "dataset": ctx.dataset,
            "gpu_ids": ctx.gpu_ids,
            "seed": ctx.seed,
            "metric": list(self.spec.search.watched_metrics),
            "cpus": self._cpus(),
        }


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()  # numpy scalars and arrays
    raise TypeError(
        f"parameter value {value!r} ({type(value).__name__}) cannot be passed to the "
        "TensorFlow trial process as JSON"
    )


def _forward(result: dict[str, Any], ctx: TrialContext) -> None:
    """Report a child's result again in the actor, as the child's ``ctx.report`` got it."""
    step = result.pop("step", None)
    reported = result.pop(REPORTED_KEY, None)
    if isinstance(reported, list):
        # The child's context carried the objective forward; the actor's does so itself.
        metrics = {name: result[name] for name in reported if name in result}
    else:
        metrics = result  # a line the training code printed itself
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    ctx.report(step=step, **metrics)


def _exit_message(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"the TensorFlow trial process was killed by {name} (exit status {status})"
    if status == EXIT_MISSING_TENSORFLOW:
        return f"the TensorFlow trial process exited with status {status}: {MISSING_TENSORFLOW}"
    return f"the TensorFlow trial process exited with status {status}"


# --- In the trial's child process ------------------------------------------------------------

_stop = threading.Event()
_watching_fits = 0  # ReportCallbacks inside a model.fit: they end it between epochs


class StopTrial(BaseException):
    """Raised in the child's training function when sweeper stops a trial outside a fit.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that ``except Exception`` in training
    code does not swallow it; ``finally`` blocks and ``with`` statements still run.
    """


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _stop.is_set():
        # One request to stop, one effect: a repeated SIGTERM must not interrupt the code that
        # runs after a fit that the first one ended (saving the model, say).
        return
    _stop.set()
    if _watching_fits == 0:
        # Nothing will look at the flag before the next epoch ends: end the function now.
        raise StopTrial


def install_stop_handler() -> None:
    """Make SIGTERM end the trial between epochs (in the child, before the function runs)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def _make_report_callback() -> type:
    import keras

    class ReportCallback(keras.callbacks.Callback):
        """A Keras callback that reports every epoch's logs through ``ctx.report``.

        ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` and every other number Keras logs
        are reported at step ``epoch + 1``. When sweeper stops the trial, the fit ends after the
        current epoch (``model.stop_training``) and the training function goes on.

        Args:
            ctx: The trial's context, the function's second argument.
        """

        def __init__(self, ctx: TrialContext) -> None:
            super().__init__()
            self.ctx = ctx
            self._watching = False

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            global _watching_fits
            if not self._watching:
                self._watching = True
                _watching_fits += 1

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            global _watching_fits
            if self._watching:
                self._watching = False
                _watching_fits -= 1

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            metrics = {name: value for name, value in (logs or {}).items() if _is_number(value)}
            if metrics:
                self.ctx.report(step=epoch + 1, **metrics)
            if _stop.is_set():
                self.model.stop_training = True

    ReportCallback.__module__ = __name__
    return ReportCallback


def _is_number(value: Any) -> bool:
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()  # numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            return False
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def __getattr__(name: str) -> Any:
    # ReportCallback subclasses a Keras class: build it on first use so that importing this
    # module (the driver does, to validate a spec) never imports Keras or TensorFlow.
    if name == "ReportCallback":
        cls = _make_report_callback()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
