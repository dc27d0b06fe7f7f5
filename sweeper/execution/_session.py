"""One session of a sweep: the Tune run that ``sweeper run`` or ``sweeper resume`` drives.

A new sweep and a resumed one differ only in what is left to run: a session gets the trials of
earlier sessions from the journal and runs the grid or random points still missing, or the
Optuna trials still owed, on a fresh Tune run. (Tune's own restore repeats trials that ended
after its last periodic save, does not rerun errored trials, and can silently fall back to a
new search state; see :mod:`sweeper._journal` and :mod:`sweeper.search._optuna`.)
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper._journal import FINAL_STATES, Journal, SweepState, TrialRecord
from sweeper._layout import POINT_KEY, STOP_FILE, trial_name
from sweeper.errors import SweeperError, SweepError
from sweeper.execution._actor import trainable_class
from sweeper.execution._placement import PlacementWatch
from sweeper.execution._plan import TrialNamer, TrialPlan
from sweeper.execution._progress import SweepProgress
from sweeper.execution._ray import node_count, on_node, ray_session, tune_settings, unplaceable
from sweeper.execution._recorder import SweepRecorder
from sweeper.execution._stopping import (
    SweepControl,
    SweepStopper,
    halt_on_signal,
    on_interrupt,
    scheduler_for,
)
from sweeper.search import tune_space
from sweeper.search._searcher import searcher_for

if TYPE_CHECKING:
    from sweeper.settings import Settings
    from sweeper.spec import Spec
    from sweeper.storage._sweep import SweepStore
    from sweeper.tracking import Tracker

__all__ = ["Session", "SessionOutcome"]


# What a trial of several learners' own actor holds (bytes): see Session._tuner.
_GANG_ACTOR_MEMORY = 64 * 2**20


@dataclass
class SessionOutcome:
    """How a session ended: ``completed``, ``halted`` (resumable) or ``failed``."""

    status: str
    reason: str | None
    records: dict[str, TrialRecord]
    signal: int | None = None


@dataclass
class Session:
    """Everything one session needs; :meth:`run` drives it to its end."""

    spec: Spec
    settings: Settings
    sweep: str
    sweep_dir: Path
    state: SweepState
    tracker: Tracker
    store: SweepStore | None
    tags: dict[str, str]
    points: list[dict[str, Any]] | None
    records: dict[str, TrialRecord] = field(default_factory=dict)
    retry_failed: bool = False
    concurrency: int | None = None
    address: str | None = None
    say: Callable[[str], None] = lambda line: None
    live: bool = False
    # This session's records as they stand (the recorder's), for a session that ends on an
    # error before it can return them.
    recorded: dict[str, TrialRecord] = field(default_factory=dict)
    driver_node: str | None = None  # the driver's Ray node, once Ray is up

    # -- what is left ----------------------------------------------------------------------------

    def _rerun(self, record: TrialRecord) -> bool:
        return (
            record.state not in FINAL_STATES
            or record.state == "halted"
            or (self.retry_failed and record.state == "failed")
        )

    def remaining_indexes(self) -> list[int]:
        """Grid or random points whose trial has not ended for good."""
        assert self.points is not None
        indexes = []
        for i in range(len(self.points)):
            record = self.records.get(trial_name(i))
            if record is None or self._rerun(record):
                indexes.append(i)
        return indexes

    def remaining_count(self) -> int:
        if self.points is not None:
            return len(self.remaining_indexes())
        done = sum(1 for r in self.records.values() if not self._rerun(r))
        return max(0, self.spec.trial_count() - done)

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> SessionOutcome:
        spec = self.spec
        (self.sweep_dir / STOP_FILE).unlink(missing_ok=True)
        journal = Journal(self.sweep_dir)
        control = SweepControl(spec, self.sweep_dir)
        plan = TrialPlan(spec, self.sweep, self.sweep_dir, self.points, self.store)
        done_before = sum(1 for r in self.records.values() if not self._rerun(r))
        recorder = SweepRecorder(
            plan, self.tracker, self.tags, journal=journal, control=control, records=self.records
        )
        progress = SweepProgress(
            spec,
            self.sweep,
            self.say,
            lambda: list(recorder.records.values()),
            lambda: recorder.usage()[1],
            live=self.live,
            interval=self.settings.console.progress_interval,
            done=done_before,
        )
        self.recorded = recorder.records
        recorder.on_event = progress
        recorder.log_artifacts = self.settings.mlflow.log_artifacts
        control.usage = recorder.usage
        try:
            # A signal before or after Tune's loop halts the session as one inside it does.
            with (
                halt_on_signal(control),
                ray_session(self.settings, self.address, self._runtime_env) as where,
            ):
                from sweeper.execution._phases import PhaseBoard

                remaining = self.remaining_count()
                plan = self._start(plan, where, remaining, progress)
                recorder.plan = plan
                recorder.board = on_node(PhaseBoard, self.driver_node).remote()
                if self.points is not None:
                    for i in self.remaining_indexes():
                        recorder.queue(trial_name(i), plan.params({POINT_KEY: i}))
                if remaining and not control.stopping:
                    with tune_settings():  # Optuna's study is loaded here: its lines too
                        tuner = self._tuner(plan, recorder, control)
                    with tune_settings(), on_interrupt(control), progress:
                        control.started = time.time()  # max_duration counts from here
                        _fit(tuner)
                recorder.finish()
                _release(recorder.board)
        except KeyboardInterrupt:
            control.halt("interrupted (Ctrl-C)")
            control.signal = control.signal or signal.SIGINT
            recorder.finish()
        except SweeperError:
            recorder.finish()
            raise
        finally:
            journal.close()
        if control.failure:
            status, reason = "failed", control.failure
        elif control.halt_reason:
            status, reason = "halted", control.halt_reason
        elif recorder.records and all(r.state == "failed" for r in recorder.records.values()):
            # Nothing came of the sweep: it did not complete, whatever Tune says (and its
            # MLflow parent run says FAILED). `sweeper resume --retry-failed` runs them again.
            status, reason = "failed", f"every trial failed ({len(recorder.records)})"
        else:
            status, reason = "completed", None
        return SessionOutcome(status, reason, recorder.records, control.signal)

    def _start(
        self, plan: TrialPlan, where: str, remaining: int, progress: SweepProgress
    ) -> TrialPlan:
        """Say what the session runs and where, once Ray is up; the plan placed on Ray.

        On a cluster, ``progress`` gets the watch that warns while no node can hold a trial.
        """
        spec = self.spec
        res = spec.resources
        if res.learners > 1:
            # A trial's own actor holds (almost) nothing, so Tune alone would start every
            # trial at once, each waiting for its learners: start only the gangs that fit.
            from sweeper.execution._placement import gangs_that_fit, live_nodes

            fit = gangs_that_fit(live_nodes(), res.cpus, res.gpus, res.memory_bytes, res.learners)
            self.concurrency = max(1, min(self.concurrency or fit, fit))
        self.say(
            f"sweep {self.sweep}: {remaining} of {spec.trial_count()} trials to run, "
            f"{_method(spec)}, concurrency {self.concurrency or 'as resources allow'}, "
            f"on {where}"
        )
        self.say(f"results: {self.sweep_dir}")
        plan = self._placed(plan)
        self.driver_node = plan.driver_node
        if self.address or self.settings.ray.address:
            # An autoscaler may add a node that fits: warn now and while trials wait, not
            # refuse. Watched all along, as a lost node can take the only one that fit.
            watch = PlacementWatch(
                res.cpus,
                res.gpus,
                res.memory_bytes,
                learners=res.learners,
                pack=res.placement == "pack",
            )
            if (line := watch(remaining)) is not None:
                self.say(line)
            progress.watch = watch
        elif (
            why := unplaceable(
                res.cpus, res.gpus, res.memory_bytes, res.learners, res.placement == "pack"
            )
        ) is not None:
            raise SweepError(
                f"a trial's resources must fit on one Ray node, got more than fits ({why})",
                file=spec.label,
                field="resources",
                hint="ask for less per trial, or run on a cluster that has it",
            )
        if node_count() > 1 and (self.store is None or not self.store.results_uri):
            self.say(
                "note: trials on other nodes write their folders there, at the same "
                "path; set results: s3://... to collect them without a shared filesystem"
            )
        if self.store is not None:
            self.store.share_secrets()
        self.say(
            f"MLflow: {self.tracker.tracking_uri} experiment "
            f"{self.tracker.experiment!r} run {self.tracker.parent_run_id}"
        )
        return plan

    def _runtime_env(self) -> dict[str, Any]:
        """What ships the sweep's code to a cluster's workers (see :mod:`._cluster`)."""
        from sweeper.execution._cluster import runtime_env

        return runtime_env(self.spec, self.settings, self.sweep_dir.parent)

    def _placed(self, plan: TrialPlan) -> TrialPlan:
        """The plan once Ray is up: the driver's node, and where trials find the shipped code."""
        import dataclasses

        import ray

        shipped = bool((ray.get_runtime_context().runtime_env or {}).get("working_dir"))
        return dataclasses.replace(
            plan,
            driver_node=ray.get_runtime_context().get_node_id(),
            code_dir=str(self.spec.base_dir) if shipped else None,
            checkpoint_interval=self.settings.s3.checkpoint_interval,
        )

    def _tuner(self, plan: TrialPlan, recorder: SweepRecorder, control: SweepControl) -> Any:
        from ray import tune

        spec = self.spec
        resources: dict[str, float] = {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus}
        if spec.resources.memory_bytes:
            resources["memory"] = spec.resources.memory_bytes
        if spec.resources.learners > 1:
            # The trial's actor only waits for its learners, which Ray Train places, as one
            # placement group, with their resources (sweeper.execution._gang). Tune needs a
            # non-empty request: a token of memory, no CPU, so a 2-CPU machine holds a trial
            # of 2 one-CPU learners.
            resources = {"cpu": 0, "memory": _GANG_ACTOR_MEMORY}
        trainable = tune.with_resources(trainable_class(plan, recorder.board), resources)
        if self.points is not None:
            space = tune_space(spec, self.remaining_indexes(), self._latest_points())
            searcher = searcher_for(spec, self.concurrency)
            samples = 1
            from sweeper.search._optuna import StudyLog

            # Every sweep has a study for optuna-dashboard; an Optuna search's is its own.
            recorder.study_log = StudyLog(self.sweep_dir, self.sweep, spec)
        else:
            space, samples = {}, self.remaining_count()
            searcher = self._optuna_searcher(control, recorder)
        namer = TrialNamer()
        session = self.state.sessions
        return tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                # What the scheduler judges trials by (the searcher has its own objectives).
                metric=spec.stopping_objective.name,
                mode=spec.stopping_objective.mode,
                search_alg=searcher,
                scheduler=scheduler_for(spec, control.early_stopped, recorder.on_exploit),
                num_samples=samples,
                max_concurrent_trials=self.concurrency if self.points is None else None,
                # A new actor per trial costs a process start; trials of a sweep share
                # resources, so reuse them (adapters reset framework state per trial).
                reuse_actors=True,
                trial_name_creator=namer,
                trial_dirname_creator=namer,
            ),
            run_config=tune.RunConfig(
                name="tune" if session <= 1 else f"tune-{session}",
                storage_path=str(self.sweep_dir.resolve()),  # pyarrow: absolute or a URI
                callbacks=[recorder],
                stop=SweepStopper(control),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=spec.limits.max_failures),
            ),
        )

    def _latest_points(self) -> list[dict[str, Any]] | None:
        """The points, each with its trial's latest values of what a population-based
        schedule mutates (a trial resumed after exploits goes on with them)."""
        if self.points is None or self.spec.schedule is None:
            return self.points
        mutated = self.spec.mutations
        latest = []
        for i, point in enumerate(self.points):
            record = self.records.get(trial_name(i))
            moved = {k: v for k, v in (record.params if record else {}).items() if k in mutated}
            latest.append({**point, **moved})
        return latest

    def _optuna_searcher(self, control: SweepControl, recorder: SweepRecorder) -> Any:
        from sweeper.search import open_study, seed_study, study_name

        spec = self.spec
        # Trials to run again under their names, with their values: those the space (an
        # extension may have changed it) still takes.
        # The others are settled for good: never queued again.
        restart, finished = {}, set()
        for name, record in self.records.items():
            fitted = spec.conditional_space.fit(record.params, spec.defaults)
            if self._rerun(record) and fitted is not None:
                restart[name] = fitted
            else:
                finished.add(name)
        study = study_name(self.sweep_dir, self.sweep, spec)
        seed_study(self.sweep_dir, study, spec, [])  # made now, with its objectives' names
        storage, first, told = open_study(self.sweep_dir, study, restart, finished)
        return searcher_for(
            spec,
            self.concurrency,
            storage=storage,
            study_name=study,
            first_number=first,
            told=told,
            early_stopped=control.early_stopped,
            gpu_seconds=recorder.gpu_seconds_of,
        )


def _fit(tuner: Any) -> None:
    """Run Tune; its own failures become one :class:`SweepError` (sweeper's pass through)."""
    try:
        tuner.fit()
    except (SweeperError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise SweepError(f"Ray Tune stopped the sweep: {type(exc).__name__}: {exc}") from exc


def _release(board: Any) -> None:
    """End the phase board: a Ray instance the caller keeps must not collect them."""
    import ray

    if board is not None:
        with contextlib.suppress(Exception):
            ray.kill(board)


def _method(spec: Spec) -> str:
    return f"optuna ({spec.sampler})" if spec.search.method == "optuna" else spec.search.method


def close_interrupted(records: dict[str, TrialRecord], tracker: Tracker) -> list[str]:
    """Settle what a crashed session left open, in the journal's records and in MLflow.

    Trials the journal does not show ended were interrupted: they become halted (their GPU time
    counts until the journal last saw them) and their MLflow runs are marked killed, with
    ``sweeper.interrupted``. Trials that ended but whose MLflow run was still open (the driver
    died before writing it) get their run closed.

    Returns:
        The names of the interrupted trials.
    """
    from sweeper.execution._recorder import MLFLOW_STATUS

    closed = []
    for name, record in sorted(records.items()):
        if record.attempts == 0 and record.state not in FINAL_STATES:
            del records[name]  # queued, never started: simply still to run
            continue
        if record.state not in FINAL_STATES:
            last = max(record.times.values(), default=time.time())
            record.end_attempt(last)
            record.enter("halted", last)
            closed.append(name)
            tags = {"sweeper.state": "halted", "sweeper.interrupted": "true"}
        elif tracker.status(name) == "RUNNING":
            tags = {"sweeper.state": record.state}
        else:
            continue
        if tracker.has_trial(name):
            status = MLFLOW_STATUS[record.state]
            tracker.end_trial(name, status, tags, metrics={"gpu_seconds": record.gpu_seconds})
    return closed
