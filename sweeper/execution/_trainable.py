"""The Tune trainable of a sweep, in each trial's Ray actor: :func:`._trial.run_trial` as a
function trainable that lets a stopped trial end before its actor is reused or torn down.

When Tune stops a trial (early stopping, a halted sweep), the trial's ``tune.report`` raises
``SystemExit`` and the adapter ends its training program: a TensorFlow child finishes its epoch,
Caffe its iteration and snapshot, a command its SIGTERM handler. That takes seconds. Tune's
function trainable waits only ``TUNE_FUNCTION_THREAD_TIMEOUT_S`` (2 s) for the training thread
before it reuses the actor for the next trial, and fails that reset when the thread is still
alive; and its ``cleanup`` does not wait at all, so the actor exits (and its child is killed)
mid-epoch. This class waits longer in both places, which Tune has no setting for in cleanup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeper.execution._trial import TrialPlan

__all__ = ["STOP_GRACE_S", "trainable_class"]

# How long a stopped trial may take to end: an adapter's TrialProcess kills its program 10 s
# after asking it to stop (see sweeper.frameworks._process), so the thread ends within this.
STOP_GRACE_S = 15.0


def trainable_class(plan: TrialPlan, board: Any) -> type:
    """``run_trial`` for ``plan`` as Tune's function trainable, waiting for stopped trials.

    Args:
        plan: What every trial of the sweep shares (sent to the actors once, through Ray's
            object store, by ``tune.with_parameters``).
        board: The sweep's phase board actor (see :mod:`sweeper.execution._phases`).
    """
    from ray import tune

    from sweeper import _compat
    from sweeper.execution._trial import run_trial

    base: Any = _compat.function_trainable(tune.with_parameters(run_trial, plan=plan, board=board))

    class SweeperTrainable(base):
        _name = "sweeper"

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            # Tune's own reset calls the same with TUNE_FUNCTION_THREAD_TIMEOUT_S (2 s).
            _compat.wait_for_training(STOP_GRACE_S)
            return super().reset_config(new_config)

        def cleanup(self) -> None:
            thread = _compat.training_thread()
            try:
                super().cleanup()
            finally:
                if thread is not None and thread.is_alive():
                    thread.join(timeout=STOP_GRACE_S)

    return SweeperTrainable
