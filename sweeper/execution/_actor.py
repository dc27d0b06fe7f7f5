"""The code that runs in each trial's Ray actor: Tune's trainable, and one trial from start to end.

:func:`run_trial` is the function Tune runs for each trial: its folder, log, data staging, the
adapter, checkpoints and the upload of its results. :func:`trainable_class` wraps it as Tune's
function trainable, so that a stopped trial can end before its actor is reused or torn down.

When Tune stops a trial (early stopping, a halted sweep), the trial's ``tune.report`` raises
``SystemExit`` and the adapter ends its training program: a TensorFlow child finishes its epoch,
Caffe its iteration and snapshot, a command its SIGTERM handler. That takes seconds. Tune's
function trainable waits only ``TUNE_FUNCTION_THREAD_TIMEOUT_S`` (2 s) for the training thread
before it reuses the actor for the next trial, and fails that reset when the thread is still
alive; and its ``cleanup`` does not wait at all, so the actor exits (and its child is killed)
mid-epoch. :func:`trainable_class` waits longer in both places (Tune has no setting for
cleanup's wait), for :data:`~sweeper.frameworks.STOP_GRACE_S`, part of the adapters' contract.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper._format import duration, format_params
from sweeper._layout import (
    ATTEMPT_FILE,
    CHECKPOINT_DIR,
    ERROR_FILE,
    LOG_FILE,
    OUTPUT_DIR,
    PARAMS_FILE,
    SAVED_DIR,
    trial_number,
)
from sweeper.errors import TrialError
from sweeper.execution._trial import (
    CheckpointSync,
    context_for,
    data_dir_for,
    localize,
    log_to,
    restore,
    restored_process,
    tail,
    view_dir,
)
from sweeper.frameworks.base import STOP_GRACE_S
from sweeper.frameworks.context import CHECKPOINT_KEY, REPORTED_KEY

if TYPE_CHECKING:
    from sweeper.execution._plan import TrialPlan
    from sweeper.spec import Spec

__all__ = ["run_trial", "trainable_class"]


def trainable_class(plan: TrialPlan, board: Any) -> type:
    """``run_trial`` for ``plan`` as Tune's function trainable, waiting for stopped trials.

    Args:
        plan: What every trial of the sweep shares (sent to the actors once, through Ray's
            object store, by ``tune.with_parameters``).
        board: The sweep's phase board actor (see :mod:`sweeper.execution._phases`).
    """
    from ray import tune

    from sweeper import _compat

    base: Any = _compat.function_trainable(tune.with_parameters(run_trial, plan=plan, board=board))

    class SweeperTrainable(base):
        _name = "sweeper"

        def __repr__(self) -> str:
            # Ray's dashboard shows an actor's repr as it is once the actor started (Ray 2.60
            # does not read it again): the sweep, and the first trial of the actor, which Tune
            # reuses for later ones (`sweeper status` names the actor of each trial).
            return f"sweeper {plan.sweep}, from {self.trial_name}"

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


class _Seen:
    """Wraps ``tune.report``: which metrics the trial reported (the constraints need them),
    and a line per report in the trial's log (``sweeper: step 3 loss=0.41``), so that
    ``sweeper logs`` shows the progress of code that prints nothing."""

    def __init__(self, report: Any) -> None:
        self.report = report
        self.names: set[str] = set()

    def __call__(self, result: dict[str, Any], **kwargs: Any) -> None:
        reported = list(result.get(REPORTED_KEY) or ())
        self.names.update(reported)
        values = {name: result[name] for name in reported if name in result}
        # Into the process's stdout, which is the trial's log (see log_to).
        print(f"sweeper: step {result.get('step', '?')} {format_params(values)}", flush=True)
        saved = result.pop(CHECKPOINT_KEY, None)
        # A learner of a trial of several may have saved on another node: that state stays in
        # the trial's folder there (Tune could not read it from here).
        if saved is not None and "checkpoint" not in kwargs and Path(saved).is_dir():
            from ray import tune

            # Tune copies the folder into its storage now: the next save may overwrite it.
            kwargs["checkpoint"] = tune.Checkpoint.from_directory(saved)
        self.report(result, **kwargs)


def _take_checkpoint(checkpoint: Any, state_dir: Path) -> None:
    """Put Tune's checkpoint for this run (another trial's, after a population-based exploit)
    where ``ctx.load`` reads it."""
    with checkpoint.as_directory() as folder:
        if Path(folder).resolve() == state_dir.resolve():
            return
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.copytree(folder, state_dir)


def _check_constraints(spec: Spec, name: str, seen: set[str]) -> None:
    """A trial that returned without reporting a metric a constraint names is an error: it
    could be neither feasible nor infeasible."""
    for constraint in spec.search.parsed_constraints:
        if constraint.metric not in seen:
            raise TrialError(
                f"search.constraints needs metric {constraint.metric!r} "
                f"({constraint.text!r}), which {name} never reported; report it with "
                f"ctx.report({constraint.metric}=...) or fix the constraint"
            )


def _seed(spec: Spec, name: str) -> int | None:
    base = spec.search.seed
    return None if base is None else base + trial_number(name)


def _next_attempt(trial_dir: Path) -> int:
    """Count this run of the trial (retries and resumed runs start it again)."""
    path = trial_dir / ATTEMPT_FILE
    try:
        attempt = int(path.read_text(encoding="utf-8").strip() or 0) + 1
    except (OSError, ValueError):
        attempt = 1
    path.write_text(f"{attempt}\n", encoding="utf-8")
    (trial_dir / ERROR_FILE).unlink(missing_ok=True)  # an earlier attempt's
    return attempt


def run_trial(config: dict[str, Any], plan: TrialPlan, board: Any = None) -> None:
    """Run one trial: build its context and directories, then hand over to the adapter.

    Tells ``board`` (see :mod:`sweeper.execution._phases`) when the trial starts staging data,
    running and storing results.
    """
    import json

    import ray
    from ray import tune

    from sweeper.execution._phases import mark_phase

    runtime = ray.get_runtime_context()
    plan = localize(plan, runtime.get_node_id())
    spec = plan.spec
    name = tune.get_context().get_trial_name()
    trial_dir = plan.trial_dir(name)
    output_dir = trial_dir / OUTPUT_DIR
    checkpoint_dir = trial_dir / CHECKPOINT_DIR
    for directory in (output_dir, checkpoint_dir):
        directory.mkdir(parents=True, exist_ok=True)
    restore(plan, name)
    if (checkpoint := tune.get_checkpoint()) is not None:
        _take_checkpoint(checkpoint, checkpoint_dir / SAVED_DIR)
    attempt = _next_attempt(trial_dir)
    params = plan.params(config)
    (trial_dir / PARAMS_FILE).write_text(json.dumps(params, indent=2, default=str) + "\n")
    log_path = trial_dir / LOG_FILE
    outcome = "failed"
    stored_elsewhere: list[str] | None = None  # learner 1 stored the folder on its node
    seen = _Seen(tune.report)
    # Into the actor's own log, which Ray's dashboard shows beside the actor (its repr names
    # only its first trial, as Tune reuses actors): the trial it runs now.
    print(
        f"sweeper: {name} of sweep {plan.sweep} starts (attempt {attempt}): {log_path}", flush=True
    )
    try:
        with log_to(log_path):
            started = time.time()
            try:
                print(
                    f"sweeper: {name} attempt {attempt} starts: {format_params(params)}",
                    flush=True,
                )
                if spec.resources.learners > 1:
                    from sweeper.execution._gang import run_gang

                    stored_elsewhere = run_gang(
                        plan,
                        name,
                        params,
                        attempt=attempt,
                        seed=_seed(spec, name),
                        board=board,
                        reporter=seen,  # rank 0 syncs the checkpoints it writes
                    )
                else:
                    if spec.data:
                        mark_phase(board, name, "staging")
                    data_dir = data_dir_for(plan, name, params)
                    node = runtime.get_node_id()
                    mark_phase(board, name, "running", node=node, pid=os.getpid())
                    ctx = context_for(
                        plan,
                        name,
                        params,
                        log_path=log_path,
                        data_dir=data_dir,
                        seed=_seed(spec, name),
                        reporter=CheckpointSync(plan, name, seen),
                        attempt=attempt,
                    )
                    assert plan.adapter is not None  # resolved when the plan was made
                    with restored_process():
                        plan.adapter(spec).run(ctx.params, ctx)
                _check_constraints(spec, name, seen.names)
                outcome = "returned"
            except SystemExit:
                # Tune ends a trial it stops (early stopping, a halted sweep) with SystemExit
                # raised from inside ctx.report.
                outcome = "stopped"
                print(f"sweeper: {name} stopped by sweeper", flush=True)
                raise
            except BaseException:
                traceback.print_exc()
                raise
            finally:
                ended = {"returned": "ended", "stopped": "stopped", "failed": "failed"}[outcome]
                print(
                    f"sweeper: {name} attempt {attempt} {ended} after "
                    f"{duration(time.time() - started)}",
                    flush=True,
                )
    except Exception as exc:
        # The last log lines travel with the error, so the driver can show why without the log.
        error = TrialError(
            f"{name} failed: {type(exc).__name__}: {exc}\n--- last lines of {log_path} ---\n"
            f"{tail(log_path)}"
        )
        # On a full disk the error still reaches the driver through Ray.
        with contextlib.suppress(OSError):
            (trial_dir / ERROR_FILE).write_text(str(error) + "\n", encoding="utf-8")
        raise error from None
    finally:
        # Whatever the trial's end, its folder goes to the results store; if the store is
        # unreachable the upload stays pending (sync-pending.json) for `sweeper sync`. (A
        # trial's first learner that ran on another node stored it from there.)
        mark_phase(board, name, "storing")
        if plan.store is not None and plan.store.results_uri and stored_elsewhere is not None:
            with contextlib.suppress(Exception):  # logs; the outcome is the trial's own
                plan.store.upload_trial_files(plan.sweep_dir, plan.sweep, name, stored_elsewhere)
        elif plan.store is not None and plan.store.results_uri:
            report = plan.store.sync_trial(plan.sweep_dir, plan.sweep, name)
            if plan.scratch and report.ok:
                # A node's scratch copy, now safely in the store (a retry fetches it again).
                shutil.rmtree(trial_dir, ignore_errors=True)
        mark_phase(board, name, "stored", outcome=outcome)
        shutil.rmtree(view_dir(plan, name), ignore_errors=True)
