"""Running a sweep: the spec's trials on Ray Tune, tracked in MLflow, results on disk."""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from sweeper._journal import Journal, SweepState, read_journal
from sweeper._layout import RESULTS_FILE, SPEC_FILE, find_sweep, is_sweep_dir
from sweeper.errors import ConfigError, SpecError, SweepError
from sweeper.execution._console import best_table
from sweeper.execution._ending import finalize, stopped_by, sync_leftovers
from sweeper.execution._session import Session, close_interrupted
from sweeper.execution._summary import sweep_params
from sweeper.results import best_trials, results_frame
from sweeper.search._space import read_points, sweep_points, write_points
from sweeper.settings import Settings, load_settings
from sweeper.spec import Spec, load_spec
from sweeper.storage import pending_uploads
from sweeper.storage._sweep import SweepStore

if TYPE_CHECKING:
    from sweeper._journal import TrialRecord
    from sweeper.tracking import Tracker

__all__ = [
    "SweepResult",
    "reopen_tracker",
    "results_root",
    "resume",
    "run",
    "settle",
    "spec_hash",
    "spec_text",
    "stopped_sweep",
    "unfinished_sweep",
]


@dataclass
class SweepResult:
    """A finished sweep.

    Attributes:
        sweep: The sweep's id (its folder's name and the MLflow parent run's name).
        sweep_dir: The sweep's folder: ``results.csv``, ``spec.yml`` and ``trials/<trial>/``.
        spec: The spec it ran.
        results: One row per trial (see :func:`sweeper.results.results_frame`).
        parent_run_id: The MLflow parent run.
        tracking_uri: The MLflow tracking store.
        unsynced: Local folders whose upload to the results store is pending.
        status: ``completed``, ``halted`` (stopped on purpose or by a budget; resumable) or
            ``failed`` (more failed trials than ``limits.max_failed_trials``).
        reason: Why the sweep halted or failed.
        signal: The signal (Ctrl-C's SIGINT, SIGTERM) that halted it, if one did.
    """

    sweep: str
    sweep_dir: Path
    spec: Spec
    results: pd.DataFrame
    parent_run_id: str | None
    tracking_uri: str
    unsynced: list[str] = field(default_factory=list)
    status: str = "completed"
    reason: str | None = None
    signal: int | None = None

    @property
    def best(self) -> pd.Series | None:
        """The best completed trial's row, or ``None``."""
        ranked = best_trials(self.spec, self.results, 1)
        return None if ranked.empty else ranked.iloc[0]

    @property
    def pareto(self) -> pd.DataFrame:
        """With several objectives, the Pareto front's rows (feasible, completed trials), by
        the first objective; with one, the best trial's."""
        return best_trials(self.spec, self.results, None if self.spec.search.multi_objective else 1)

    @property
    def failed(self) -> int:
        """How many trials failed."""
        return int((self.results["state"] == "failed").sum()) if not self.results.empty else 0

    @property
    def gpu_hours(self) -> float:
        """GPU-hours the sweep's trials held, over all sessions."""
        if self.results.empty:
            return 0.0
        return float(self.results["gpu_seconds"].sum()) / 3600


def _check_writable(root: Path) -> None:
    """The results folder, or the folder it will be made in, must be writable by this user."""
    import os

    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise SweepError(
            f"the results folder must be writable, got {str(root)!r}"
            + (f" ({existing} is not writable)" if existing != root else ""),
            hint="set [results] dir in sweeper.toml, SWEEPER_RESULTS_DIR or the spec's results",
        )


def _sweep_dir(root: Path, name: str) -> tuple[str, Path]:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    sweep, n = f"{name}-{stamp}", 1
    while (root / sweep).exists():
        n += 1
        sweep = f"{name}-{stamp}-{n}"
    path = root / sweep
    path.mkdir(parents=True)
    return sweep, path


def spec_text(spec: Spec) -> str:
    # A manifest may hold credentials: keep the converted spec, which has none.
    if spec.source and spec.source.is_file() and not spec.from_manifest:
        return spec.source.read_text(encoding="utf-8")
    return yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)


def spec_hash(spec: Spec) -> str:
    """A fingerprint of the spec's text: a sweep resumes only with the spec it started with."""
    return hashlib.sha256(spec_text(spec).encode("utf-8")).hexdigest()[:16]


def _concurrency(spec: Spec, settings: Settings) -> int | None:
    caps = [c for c in (spec.search.concurrency, settings.limits.max_concurrency) if c]
    max_gpus = settings.limits.max_gpus
    gpus = spec.resources.trial_gpus  # every learner's
    if max_gpus and gpus:
        # The GPUs a sweep may hold at once: trials beyond them wait in Tune's queue.
        caps.append(int(max_gpus // gpus))
    return min(caps) if caps else None


def _check_limits(spec: Spec, settings: Settings) -> None:
    max_gpus = settings.limits.max_gpus
    res = spec.resources
    if max_gpus and res.trial_gpus > max_gpus:
        held = (
            f"resources.gpus x resources.learners ({res.gpus:g} x {res.learners})"
            if res.learners > 1
            else "resources.gpus"
        )
        raise ConfigError(
            f"limits.max_gpus must be at least the GPUs one trial holds "
            f"({res.trial_gpus:g}, {held} of {spec.label or spec.name}), "
            f"got {max_gpus}",
            file=settings.source or "sweeper.toml",
            field="limits.max_gpus",
        )


def _check_cluster(spec: Spec, settings: Settings, address: str | None) -> None:
    """Before anything starts: a cluster address sweeper can drive, and on a local Ray the
    spec's ``requirements`` installed (on a cluster Ray installs them for the trials)."""
    from sweeper.execution._cluster import check_address, check_installed
    from sweeper.execution._ray import address_origin, check_token

    check_address(address, file="command line", field="--address")
    if not (address or settings.ray.address):
        check_installed(spec)
        _check_fits_locally(spec, settings)
    else:
        check_token(address or settings.ray.address, address_origin(settings, address))


def _check_fits_locally(spec: Spec, settings: Settings) -> None:
    """Before anything starts: a local Ray never grows, so a trial that asks for more CPUs or
    GPUs than it will have could only wait forever. (Memory, which Ray sizes when it starts,
    is checked once it is up.)"""
    import os
    import sys

    from sweeper import _compat

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return  # this process's own Ray (a library user's, the tests'): the one the sweep uses
    asked = spec.resources
    # A local Ray is one node: every learner of a trial is on it.
    for name, want, key, what in (
        ("cpus", asked.trial_cpus, "num_cpus", "CPUs"),
        ("gpus", asked.trial_gpus, "num_gpus", "GPUs"),
    ):
        if not want:
            continue
        set_to = getattr(settings.ray, key)
        if set_to is not None:
            has, source = float(set_to), settings.origin("ray", key)
        elif name == "cpus":
            has, source = float(os.cpu_count() or 1), "detected"
        else:
            has, source = float(_compat.local_gpu_count()), "detected"
        if want > has:
            field = name if spec.from_manifest else f"resources.{name}"  # a manifest's own
            many = (
                f" for {asked.learners} learners x {want / asked.learners:g}"
                if asked.learners > 1
                else ""
            )
            raise ConfigError(
                f"{field} must fit on this machine's local Ray, got {want:g}{many} "
                f"(it has {has:g} {what}: {source})",
                file=spec.label,
                field=field,
                hint=f"ask for fewer, set [ray] {key} in sweeper.toml (it may exceed what the "
                "machine has, to try queueing), or run on a cluster with --address",
            )


def results_root(spec: Spec, settings: Settings) -> Path:
    """Where the spec's sweep folders go (with ``s3://`` results, still a local folder first)."""
    return spec.results_folder(settings.results.dir)


def run(
    spec: Spec | str | Path,
    settings: Settings | None = None,
    *,
    address: str | None = None,
    echo: Callable[[str], None] | None = print,
    live: bool | None = None,
    dashboard: bool | None = None,
    warm_start: Sequence[str] = (),
) -> SweepResult:
    """Run a new sweep to its end (or until it is halted) and return its results.

    Args:
        spec: A validated spec or the path of an ``experiment.yml``.
        settings: Project settings; by default ``./sweeper.toml`` and ``SWEEPER_*``.
        address: A Ray cluster to use instead of ``settings.ray.address``.
        echo: Where progress lines go (``None``: silent).
        live: Draw a live display instead of periodic status lines (default: when ``echo``
            is set and standard output is a terminal).
        dashboard: Start the local Ray's dashboard (default: ``[ray] dashboard``).
        warm_start: Earlier sweeps (as users name them) whose trials seed this one, besides
            the spec's ``search.warm_start``.

    Raises:
        SpecError: If the spec is invalid, or a sweep to warm-start from is not found
            (nothing is started).
        ConfigError: If the settings do not fit the spec (nothing is started).
        SweepError: If Ray or MLflow cannot be used.
    """
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    settings = settings or load_settings()
    _check_limits(spec, settings)
    _check_cluster(spec, settings, address)
    from sweeper.search._seeds import seed_lines, seed_tags, warm_start_seeds

    seeds = warm_start_seeds(spec, settings, warm_start)
    from sweeper.tracking import Tracker, absolute_uri

    store = SweepStore.for_sweep(spec, settings)
    root = results_root(spec, settings)
    _check_writable(root)  # before MLflow's store or any folder is created
    tracking_uri = absolute_uri(settings.mlflow.tracking_uri)
    tracker = Tracker(
        tracking_uri,
        settings.mlflow.experiment or spec.name,
        origin=settings.origin("mlflow", "tracking_uri"),
    )
    sweep, sweep_dir = _sweep_dir(root, spec.name)
    try:
        if store is not None:
            store.record(sweep_dir)
        (sweep_dir / SPEC_FILE).write_text(spec_text(spec), encoding="utf-8")
        carried = [trial for seed in seeds for trial in seed.carried]
        points = sweep_points(spec, [trial.params for trial in carried])
        write_points(sweep_dir, points)
        if spec.search.method == "optuna" and (carried or spec.search.initial_points):
            from sweeper.search import seed_study

            seed_study(sweep_dir, sweep, spec, carried, spec.search.initial_points)
        tags = _sweep_tags(spec, sweep, store)
        seeded = seed_tags(seeds)
        parent = tracker.start_sweep(
            sweep,
            params=sweep_params(spec),
            tags={
                **tags,
                **seeded,
                "sweeper.dir": str(sweep_dir),
                "mlflow.note.content": spec.description,
            },
        )
    except BaseException as exc:
        # Nothing ran: a sweep folder with a spec and no state would only mislead.
        shutil.rmtree(sweep_dir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise SweepError(
                f"the sweep folder must be writable, got {exc.strerror or exc} ({sweep_dir})"
            ) from None
        raise
    state = SweepState(
        sweep=sweep,
        spec=spec.name,
        base_dir=str(spec.base_dir),
        spec_hash=spec_hash(spec),
        parent_run_id=parent,
        tracking_uri=tracking_uri,
        experiment=tracker.experiment,
        experiment_id=str(tracker.experiment_id),
        seeded_from=[
            {"sweep": seed.sweep, "trials": len(seed.carried), "left_out": seed.left_out}
            for seed in seeds
        ],
    )
    if echo is not None:
        for line in seed_lines(spec, seeds):
            echo(line)
    return _drive(
        spec,
        settings,
        state,
        sweep_dir,
        tracker,
        store,
        tags,
        points,
        {},
        address=address,
        echo=echo,
        live=live,
        dashboard=dashboard,
    )


def unfinished_sweep(spec: Spec, settings: Settings) -> Path | None:
    """The latest sweep of this very spec that was halted or interrupted, if any."""
    root = results_root(spec, settings)
    if not root.is_dir():
        return None
    digest = spec_hash(spec)
    found = []
    for folder in root.glob(f"{spec.name}-*"):
        state = SweepState.load(folder) if is_sweep_dir(folder) else None
        if state is None or state.spec_hash != digest:
            continue
        if state.shown_status in ("halted", "interrupted"):
            found.append((state.updated, folder))
    return max(found)[1] if found else None


def resume(
    sweep: str | Path,
    settings: Settings | None = None,
    *,
    spec: Spec | None = None,
    retry_failed: bool = False,
    address: str | None = None,
    echo: Callable[[str], None] | None = print,
    live: bool | None = None,
    dashboard: bool | None = None,
) -> SweepResult:
    """Continue a halted or interrupted sweep: finished trials stay, the rest run.

    Interrupted trials run again under their names (from their checkpoints, which their
    folders keep); a grid or random search runs exactly its missing points; an Optuna search
    continues its study.

    Args:
        sweep: The sweep's folder or id.
        settings: Project settings (the MLflow store must be the sweep's).
        spec: The spec, when the caller loaded it (a manifest's, with its credentials); by
            default the sweep's ``spec.yml``.
        retry_failed: Run trials that failed for good again too.
        address: A Ray cluster to use instead of ``settings.ray.address``.
        echo: Where progress lines go (``None``: silent).
        live: As for :func:`run`.
        dashboard: As for :func:`run`.

    Raises:
        SpecError: If ``sweep`` is not a sweep, or ``spec`` is not the one it ran.
        SweepError: If the sweep is running, or Ray or MLflow cannot be used.
    """
    settings = settings or load_settings()
    sweep_dir, state = stopped_sweep(sweep, settings, "resume")
    if spec is None:
        spec = load_spec(sweep_dir / SPEC_FILE, base_dir=Path(state.base_dir or "."))
    elif spec_hash(spec) != state.spec_hash:
        raise SpecError(
            f"spec must be the one sweep {state.sweep} started with, got a changed spec",
            file=spec.label,
            hint="run it as a new sweep, or resume with: sweeper resume " + state.sweep,
        )
    _check_limits(spec, settings)
    _check_cluster(spec, settings, address)
    records = read_journal(sweep_dir)
    say = echo or (lambda line: None)
    failed = [name for name, record in records.items() if record.state == "failed"]
    if state.status == "completed" and not (retry_failed and failed):
        # Nothing is left to run: no Ray, no MLflow session, no new entry in the record.
        say(
            f"sweep {state.sweep} is complete: nothing to resume"
            + (f" ({len(failed)} failed trials: add --retry-failed)" if failed else "")
        )
        return SweepResult(
            sweep=state.sweep,
            sweep_dir=sweep_dir,
            spec=spec,
            results=results_frame(spec, records.values()),
            parent_run_id=state.parent_run_id,
            tracking_uri=state.tracking_uri or settings.mlflow.tracking_uri,
            unsynced=[entry.local for entry in pending_uploads(sweep_dir)],
            status="completed",
            reason=state.reason,
        )
    tracker = reopen_tracker(spec, state, sweep_dir, settings)
    settle(spec, state, sweep_dir, records, tracker)
    store = SweepStore.for_sweep(spec, settings)
    tags = _sweep_tags(spec, state.sweep, store)
    say(f"resuming sweep {state.sweep} (session {state.sessions + 1})")
    return _drive(
        spec,
        settings,
        state,
        sweep_dir,
        tracker,
        store,
        tags,
        _points(sweep_dir, spec),
        records,
        retry_failed=retry_failed,
        address=address,
        echo=echo,
        live=live,
        dashboard=dashboard,
    )


def _points(sweep_dir: Path, spec: Spec) -> list[dict[str, Any]] | None:
    """The sweep's grid or random points, as many as its spec runs (an extension
    interrupted before its spec was written leaves more)."""
    points = read_points(sweep_dir)
    return None if points is None else points[: spec.trial_count()]


def stopped_sweep(sweep: str | Path, settings: Settings, doing: str) -> tuple[Path, SweepState]:
    """The folder and state of a sweep no driver runs, for ``doing`` (resume, extend) to it.

    Raises:
        NotFoundError: If ``sweep`` names no sweep.
        SweepError: If a driver runs it.
    """
    sweep_dir = find_sweep(sweep, settings)
    state = SweepState.load(sweep_dir)
    assert state is not None
    if state.driver_alive:
        raise SweepError(
            f"sweep {state.sweep} must not be running to {doing} it, got a driver alive "
            f"(pid {state.pid} on {state.host})",
            hint=f"stop it first: sweeper stop {state.sweep}",
        )
    return sweep_dir, state


def reopen_tracker(
    spec: Spec,
    state: SweepState,
    sweep_dir: Path,
    settings: Settings,
    tags: dict[str, str] | None = None,
) -> Tracker:
    """The MLflow store and parent run of a sweep that continues, reopened for its next
    session (with ``tags`` on the parent run)."""
    from sweeper.tracking import Tracker, absolute_uri

    base = Path(state.base_dir) if state.base_dir else None
    tracking_uri = absolute_uri(state.tracking_uri or settings.mlflow.tracking_uri, base)
    origin = (
        f"{sweep_dir / 'state.json'}: tracking_uri"
        if state.tracking_uri
        else settings.origin("mlflow", "tracking_uri")
    )
    tracker = Tracker(tracking_uri, state.experiment or spec.name, origin=origin)
    state.sessions = max(state.sessions, 1)
    tracker.resume_sweep(
        state.parent_run_id or "", {"sweeper.sessions": str(state.sessions + 1), **(tags or {})}
    )
    return tracker


def settle(
    spec: Spec,
    state: SweepState,
    sweep_dir: Path,
    records: dict[str, TrialRecord],
    tracker: Tracker,
) -> None:
    """Before a session continues a sweep: take what the study knows of trials the journal
    does not show ended, and close what a crashed session left open (in the journal too)."""
    settled: list[str] = []
    if spec.search.method == "optuna":
        from sweeper.search import adopt_finished, study_name

        study = study_name(sweep_dir, state.sweep, spec)
        settled += adopt_finished(
            sweep_dir, study, records, [o.name for o in spec.search.objectives]
        )
    settled += close_interrupted(records, tracker)
    journal = Journal(sweep_dir)
    for name in settled:  # the journal must say what was decided about them
        journal.write(records[name], "settled")
    journal.close()


def _sweep_tags(spec: Spec, sweep: str, store: SweepStore | None) -> dict[str, str]:
    """The MLflow tags of the sweep's parent run and of every trial's child run."""
    tags = {"sweeper.sweep": sweep, "sweeper.spec": spec.name}
    if store is not None and store.results_uri:
        tags["sweeper.results"] = store.target(sweep)
    return tags


def _drive(
    spec: Spec,
    settings: Settings,
    state: SweepState,
    sweep_dir: Path,
    tracker: Tracker,
    store: SweepStore | None,
    tags: dict[str, str],
    points: list[dict[str, Any]] | None,
    records: dict[str, TrialRecord],
    *,
    retry_failed: bool = False,
    address: str | None,
    echo: Callable[[str], None] | None,
    live: bool | None = None,
    dashboard: bool | None = None,
) -> SweepResult:
    """Run one session of the sweep, then write its results, MLflow summary and state."""
    say = echo or (lambda line: None)
    if live is None:
        live = echo is not None and sys.stdout.isatty()
    if dashboard is not None:
        ray_settings = settings.ray.model_copy(update={"dashboard": dashboard})
        settings = settings.model_copy(update={"ray": ray_settings})
    state.claim()
    state.save(sweep_dir)
    session = Session(
        spec=spec,
        settings=settings,
        sweep=state.sweep,
        sweep_dir=sweep_dir,
        state=state,
        tracker=tracker,
        store=store,
        tags=tags,
        points=points,
        records=records,
        retry_failed=retry_failed,
        concurrency=_concurrency(spec, settings),
        address=address,
        say=say,
        live=live,
    )
    started = time.time()
    outcome = None
    error: BaseException | None = None
    try:
        outcome = session.run()
    except BaseException as exc:
        error = exc
        raise
    finally:
        # Whatever ended the session (even an error), its results and state are written. An
        # error (Ray would not start, a resume's first step) leaves the sweep resumable.
        # results.csv from the journal, whatever the session got to (it may not have read it).
        final = outcome.records if outcome is not None else {**records, **session.recorded}
        status = outcome.status if outcome is not None else "halted"
        reason = outcome.reason if outcome is not None else stopped_by(error)
        frame = finalize(spec, state, sweep_dir, tracker, final, status, reason, started)
    unsynced = sync_leftovers(store, sweep_dir, state.sweep, final, session.driver_node, say)
    result = SweepResult(
        state.sweep,
        sweep_dir,
        spec,
        frame,
        state.parent_run_id,
        tracker.tracking_uri,
        unsynced,
        status=status,
        reason=reason,
        signal=outcome.signal if outcome is not None else None,
    )
    say("")
    if spec.search.multi_objective:
        front = best_trials(spec, frame, None)
        objectives = ", ".join(f"{o.mode} {o.name}" for o in spec.search.objectives)
        say(f"Pareto front ({len(front)} trials; {objectives}):")
        say(best_table(spec, front))
    else:
        say("best trials:")
        say(best_table(spec, best_trials(spec, frame)))
    say(f"GPU time: {result.gpu_hours:.4g} GPU-hours")
    say(f"results table: {sweep_dir / RESULTS_FILE}")
    if status == "halted":
        say(f"sweep halted: {reason}; resume it with: sweeper resume {sweep_dir}")
    elif status == "failed":
        say(f"sweep failed: {reason}")
    return result
