"""What may end trials or the sweep early: early-stopping schedulers, budgets, stop requests.

Early stopping uses Ray Tune's schedulers for every search method, Optuna's included: they
judge trials on the driver from the results trials already report, so training code needs
nothing more than ``ctx.report``, and they work for grid and random search too. Optuna's
pruners would need ``trial.should_prune()`` inside the training process, which Ray's Optuna
searcher does not provide. A trial a scheduler stops is told to Optuna as pruned.

``hyperband`` is Tune's asynchronous HyperBand (ASHA with several brackets): Tune's synchronous
``HyperBandScheduler`` pauses trials at each rung and restarts them from a checkpoint, which
holds GPUs idle and needs every training function to checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ray.tune.schedulers import TrialScheduler
from ray.tune.stopper import Stopper

from sweeper._layout import STOP_FILE

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from sweeper.execution._pbt import Exploit
    from sweeper.spec import Spec

__all__ = ["SweepControl", "SweepStopper", "on_interrupt", "scheduler_for"]

# `sweeper stop` writes this file into the sweep's folder; the driver halts when it appears.
_CHECK_EVERY = 0.25  # seconds between looks at the stop file and the budgets


@dataclass
class SweepControl:
    """Shared by the scheduler, the searcher, the stopper and the recorder of one session.

    Attributes:
        early_stopped: Tune trial ids a scheduler stopped.
        halt_reason: Why the sweep is halting (stop request, Ctrl-C, a budget), once it is.
        failure: Why the sweep failed (too many failed trials), once it did.
        signal: The signal that halted it, if one did.
    """

    spec: Spec
    sweep_dir: Path
    usage: Callable[[], tuple[int, float]] = lambda: (0, 0.0)
    started: float = field(default_factory=time.time)
    early_stopped: set[str] = field(default_factory=set)
    halt_reason: str | None = None
    failure: str | None = None
    signal: int | None = None  # the signal (SIGINT, SIGTERM) that halted the sweep
    _checked: float = 0.0

    @property
    def stopping(self) -> bool:
        return self.halt_reason is not None or self.failure is not None

    def halt(self, reason: str) -> None:
        if not self.stopping:
            self.halt_reason = reason

    def check(self) -> bool:
        """Whether the sweep must stop now; looks at most every quarter second."""
        now = time.time()
        if self.stopping or now - self._checked < _CHECK_EVERY:
            return self.stopping
        self._checked = now
        limits = self.spec.limits
        failed, gpu_seconds = self.usage()
        if (self.sweep_dir / STOP_FILE).exists():
            self.halt("stop requested (sweeper stop)")
        elif limits.max_failed_trials is not None and failed > limits.max_failed_trials:
            self.failure = (
                f"{failed} trials failed, more than limits.max_failed_trials "
                f"= {limits.max_failed_trials}"
            )
        elif limits.max_duration_s is not None and now - self.started >= limits.max_duration_s:
            self.halt(f"limits.max_duration {limits.max_duration} reached")
        elif limits.max_gpu_hours is not None and gpu_seconds >= limits.max_gpu_hours * 3600:
            self.halt(f"limits.max_gpu_hours {limits.max_gpu_hours:g} reached")
        return self.stopping


class SweepStopper(Stopper):
    """Ends the whole Tune run when the sweep's control says so."""

    def __init__(self, control: SweepControl) -> None:
        self.control = control

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.control.check()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its stopper into the experiment state; the usage callback stays behind.
        return {"control": None}


_Scheduler = TypeVar("_Scheduler", bound=TrialScheduler)


def _recording(base: type[_Scheduler], early_stopped: set[str]) -> type[_Scheduler]:
    """``base`` that also notes which trials it stopped: Tune reports a stopped trial to
    callbacks as complete, like one whose training function returned."""

    class Recording(base):  # type: ignore[valid-type, misc]
        def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP:
                early_stopped.add(trial.trial_id)
            return decision

    Recording.__name__ = Recording.__qualname__ = base.__name__
    return Recording


def scheduler_for(
    spec: Spec, early_stopped: set[str], on_exploit: Exploit | None = None
) -> TrialScheduler | None:
    """Tune's scheduler for the spec's ``early_stopping`` or ``schedule`` (``None``: every
    trial runs out; ``on_exploit``: told of a population-based schedule's exploits).

    Trials that reach ``max_steps`` are left to finish on their own (``stop_last_trials``
    off), so code after a training loop (saving the model) still runs.
    """
    if spec.schedule is not None:
        from sweeper.execution._pbt import pbt_scheduler

        return pbt_scheduler(spec, on_exploit)
    rule = spec.early_stopping
    if rule is None:
        return None
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule

    if rule.method == "median":
        return _recording(MedianStoppingRule, early_stopped)(
            time_attr="step",
            grace_period=rule.grace_period,
            min_samples_required=rule.effective_min_trials,
            hard_stop=True,
        )
    assert rule.max_steps is not None  # validation requires it for asha and hyperband
    return _recording(ASHAScheduler, early_stopped)(
        time_attr="step",
        max_t=rule.max_steps,
        grace_period=rule.grace_period,
        reduction_factor=rule.effective_reduction_factor,
        brackets=rule.effective_brackets,
        stop_last_trials=False,
    )


@contextmanager
def _on_halt_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM in the block (main thread only: elsewhere, nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def _record_halt(control: SweepControl, signum: int) -> None:
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    control.halt(f"interrupted ({name})")
    control.signal = signum


@contextmanager
def on_interrupt(control: SweepControl) -> Iterator[None]:
    """A first Ctrl-C (or SIGTERM) halts the sweep gracefully; a second one stops at once.

    Tune's own SIGINT handler is turned off (``TUNE_DISABLE_SIGINT_HANDLER``) so that a halt
    by signal goes through the same path as ``sweeper stop`` and the budgets.
    """

    def handler(signum: int, frame: Any) -> None:
        if control.stopping:
            raise KeyboardInterrupt
        _record_halt(control, signum)
        os.write(
            2,
            b"\nsweeper: halting the sweep (running trials stop, results are kept); "
            b"press Ctrl-C again to stop at once\n",
        )

    with _on_halt_signals(handler):
        yield


@contextmanager
def halt_on_signal(control: SweepControl) -> Iterator[None]:
    """Outside Tune's loop (Ray starting, results being written), SIGINT or SIGTERM asks the
    session to halt, as inside it: the request is recorded, and the session stops at its next
    step (no trial starts). A second signal stops at once.

    Recording only, not raising: an exception raised at an arbitrary point of Ray's start-up
    can leave a lock held (see :func:`sweeper._compat.keep_sigterm_handler`).
    """

    def handler(signum: int, frame: Any) -> None:
        if control.signal is not None:
            raise KeyboardInterrupt
        _record_halt(control, signum)

    with _on_halt_signals(handler):
        yield
