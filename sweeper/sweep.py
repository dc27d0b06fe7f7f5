"""Running a sweep: the spec's trials on Ray Tune, tracked in MLflow, results on disk."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sweeper._console import TrialPrinter, best_table
from sweeper._recorder import SweepRecorder
from sweeper._space import grid_points, searcher_for, tune_space
from sweeper._store import SweepStore
from sweeper._trial import TrialNamer, TrialPlan, run_trial
from sweeper.errors import SweeperError, SweepError
from sweeper.results import best_trials, results_frame, write_results
from sweeper.settings import Settings, load_settings
from sweeper.spec import Spec, load_spec
from sweeper.storage import is_s3_uri, pending_uploads

__all__ = ["SweepResult", "run"]

SPEC_FILE = "spec.yml"


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
    """

    sweep: str
    sweep_dir: Path
    spec: Spec
    results: pd.DataFrame
    parent_run_id: str | None
    tracking_uri: str
    unsynced: list[str] = field(default_factory=list)

    @property
    def best(self) -> pd.Series | None:
        """The best completed trial's row, or ``None``."""
        ranked = best_trials(self.spec, self.results, 1)
        return None if ranked.empty else ranked.iloc[0]

    @property
    def failed(self) -> int:
        """How many trials failed."""
        return int((self.results["state"] == "failed").sum()) if not self.results.empty else 0


def _sweep_dir(root: Path, name: str) -> tuple[str, Path]:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    sweep, n = f"{name}-{stamp}", 1
    while (root / sweep).exists():
        n += 1
        sweep = f"{name}-{stamp}-{n}"
    path = root / sweep
    path.mkdir(parents=True)
    return sweep, path


@contextmanager
def _ray(settings: Settings, address: str | None) -> Iterator[str]:
    """Connect to the configured cluster, start a local Ray, or reuse one already up."""
    import ray

    if ray.is_initialized():
        yield "the Ray instance already running in this process"
        return
    address = address or settings.ray.address or None
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **options)
            where = f"Ray cluster at {address}"
        else:
            # "local" always starts a fresh instance, never one found on the machine.
            ray.init(
                address="local",
                num_cpus=settings.ray.num_cpus,
                num_gpus=settings.ray.num_gpus,
                include_dashboard=False,
                **options,
            )
            where = "a local Ray"
    except Exception as exc:
        raise SweepError(
            f"Ray must start or be reachable, got {type(exc).__name__}: {exc} "
            f"(sweeper.toml: ray.address = {address or ''!r})"
        ) from None
    try:
        yield where
    finally:
        ray.shutdown()


# Read by Tune on the driver when the Tuner is built and run.
_TUNE_ENVIRONMENT = {
    # Tune's default per-trial loggers write JSON, CSV and TensorBoard files for every result;
    # sweeper records results itself, so they only cost time.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # sweeper prints its own progress; Tune's new console output ignores verbose=0.
    "RAY_AIR_NEW_OUTPUT": "0",
    # Reports may hold other metrics before the sweep's first appears (see TrialContext).
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
}


@contextmanager
def _tune_settings() -> Iterator[None]:
    """Tune's settings for a sweep, restored afterwards so the calling process is left as it was.

    Tune's and Optuna's log lines are held back too: sweeper reports each trial itself, and
    Tune's end-of-run lines would repeat failures with tracebacks and warn about the per-trial
    result files turned off above.
    """
    import optuna

    saved_env = {name: os.environ.get(name) for name in _TUNE_ENVIRONMENT}
    os.environ.update(_TUNE_ENVIRONMENT)
    tune_logger = logging.getLogger("ray.tune")
    tune_level, optuna_level = tune_logger.level, optuna.logging.get_verbosity()
    tune_logger.setLevel(logging.CRITICAL)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        tune_logger.setLevel(tune_level)
        optuna.logging.set_verbosity(optuna_level)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _spec_text(spec: Spec) -> str:
    # A manifest may hold credentials: keep the converted spec, which has none.
    if spec.source and spec.source.is_file() and not spec.from_manifest:
        return spec.source.read_text(encoding="utf-8")
    return yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)


def _concurrency(spec: Spec, settings: Settings) -> int | None:
    caps = [c for c in (spec.search.concurrency, settings.limits.max_concurrency) if c]
    return min(caps) if caps else None


def _tuner(spec: Spec, plan: TrialPlan, recorder: SweepRecorder, concurrency: int | None) -> Any:
    from ray import tune

    resources: dict[str, float] = {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus}
    if spec.resources.memory_bytes:
        resources["memory"] = spec.resources.memory_bytes
    trainable = tune.with_resources(tune.with_parameters(run_trial, plan=plan), resources)
    method = spec.search.method
    namer = TrialNamer(first=1 if method == "optuna" else 0)
    return tune.Tuner(
        trainable,
        param_space=tune_space(spec),
        tune_config=tune.TuneConfig(
            metric=spec.search.metric,
            mode=spec.search.mode,
            search_alg=searcher_for(spec, concurrency),
            num_samples=1 if method == "grid" else spec.trial_count(),
            max_concurrent_trials=concurrency if method == "optuna" else None,
            # A new actor per trial costs a process start; trials of a sweep share resources,
            # so reuse them (adapters reset framework state per trial).
            reuse_actors=True,
            trial_name_creator=namer,
            trial_dirname_creator=namer,
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(plan.sweep_dir),
            callbacks=[recorder],
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )


def run(
    spec: Spec | str | Path,
    settings: Settings | None = None,
    *,
    address: str | None = None,
    echo: Callable[[str], None] | None = print,
) -> SweepResult:
    """Run a sweep to its end and return its results.

    Args:
        spec: A validated spec or the path of an ``experiment.yml``.
        settings: Project settings; by default ``./sweeper.toml`` and ``SWEEPER_*``.
        address: A Ray cluster to use instead of ``settings.ray.address``.
        echo: Where progress lines go (``None``: silent).

    Raises:
        SpecError: If the spec is invalid (nothing is started).
        SweepError: If Ray or MLflow cannot be used.
    """
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    settings = settings or load_settings()
    say = echo or (lambda line: None)
    from sweeper.tracking import Tracker

    store = SweepStore.for_sweep(spec, settings)
    # With s3:// results the sweep's folder is still written locally first, then synced.
    local_results = spec.results if spec.results and not is_s3_uri(spec.results) else None
    root = spec.resolve(local_results or settings.results.dir)
    tracker = Tracker(settings.mlflow.tracking_uri, settings.mlflow.experiment or spec.name)
    sweep, sweep_dir = _sweep_dir(root, spec.name)
    if store is not None:
        store.record(sweep_dir)
    (sweep_dir / SPEC_FILE).write_text(_spec_text(spec), encoding="utf-8")
    tags = {"sweeper.sweep": sweep, "sweeper.spec": spec.name}
    if store is not None and store.results_uri:
        tags["sweeper.results"] = store.target(sweep)
    parent = tracker.start_sweep(
        sweep,
        params=_sweep_params(spec),
        tags={**tags, "sweeper.dir": str(sweep_dir), "mlflow.note.content": spec.description},
    )
    concurrency = _concurrency(spec, settings)
    grid = grid_points(spec) if spec.search.method == "grid" else None
    plan = TrialPlan(spec=spec, sweep=sweep, sweep_dir=sweep_dir, grid=grid, store=store)
    recorder = SweepRecorder(plan, tracker, tags, TrialPrinter(spec, say))
    started = time.time()
    status = "FAILED"
    try:
        with _ray(settings, address) as where:
            say(
                f"sweep {sweep}: {spec.trial_count()} trials, {_method(spec)}, "
                f"concurrency {concurrency or 'as resources allow'}, on {where}"
            )
            say(f"results: {sweep_dir}")
            if store is not None:
                store.share_secrets()
            say(
                f"MLflow: {settings.mlflow.tracking_uri} experiment {tracker.experiment!r} "
                f"run {parent}"
            )
            try:
                with _tune_settings():
                    _tuner(spec, plan, recorder, concurrency).fit()
            except SweeperError:
                raise
            except Exception as exc:
                raise SweepError(
                    f"Ray Tune stopped the sweep: {type(exc).__name__}: {exc}"
                ) from exc
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.flush()
        recorder.finish()
        frame = results_frame(spec, recorder.records.values())
        if frame.empty or not (frame["state"] == "completed").any():
            status = "FAILED" if status == "FINISHED" else status
        csv = write_results(frame, sweep_dir)
        tracker.end_sweep(
            status,
            metrics=_sweep_metrics(spec, frame, time.time() - started),
            tags=_best_tags(spec, frame),
            artifacts=[csv, sweep_dir / SPEC_FILE],
        )
    unsynced: list[str] = []
    if store is not None and store.results_uri:
        # A trial killed with its process (out of memory, a lost node) could not upload its
        # folder itself: whatever it left goes up from here.
        for record in recorder.records.values():
            if record.state != "completed" and plan.trial_dir(record.name).is_dir():
                store.sync_trial(sweep_dir, sweep, record.name, skip_existing=True)
        store.sync_summary(sweep_dir, sweep)
        unsynced = [entry.local for entry in pending_uploads(sweep_dir)]
        if unsynced:
            say(f"{len(unsynced)} uploads to {store.target(sweep)} are pending (store unreachable)")
        else:
            say(f"results synced to {store.target(sweep)}")
    result = SweepResult(
        sweep, sweep_dir, spec, frame, parent, settings.mlflow.tracking_uri, unsynced
    )
    say("")
    say("best trials:")
    say(best_table(spec, best_trials(spec, frame)))
    say(f"results table: {sweep_dir / 'results.csv'}")
    return result


def _method(spec: Spec) -> str:
    return f"optuna ({spec.sampler})" if spec.search.method == "optuna" else spec.search.method


def _sweep_params(spec: Spec) -> dict[str, Any]:
    search = spec.search.model_dump(exclude_none=True)
    params = {f"search.{k}": v for k, v in search.items()}
    params.update(
        framework=spec.framework,
        entrypoint=spec.entrypoint,
        **{f"resources.{k}": v for k, v in spec.resources.model_dump(exclude_none=True).items()},
        **{f"space.{k}": p.describe() for k, p in spec.space.items()},
    )
    if spec.search.method == "optuna":
        params["search.sampler"] = spec.sampler
    return params


def _sweep_metrics(spec: Spec, frame: pd.DataFrame, wall: float) -> dict[str, float]:
    states = frame["state"].value_counts().to_dict() if not frame.empty else {}
    metrics = {
        "trials_completed": float(states.get("completed", 0)),
        "trials_failed": float(states.get("failed", 0)),
        "wall_time_s": wall,
    }
    best = best_trials(spec, frame, 1)
    if not best.empty:
        metrics[f"best_{spec.search.metric}"] = float(best.iloc[0][spec.search.metric])
    return metrics


def _best_tags(spec: Spec, frame: pd.DataFrame) -> dict[str, str]:
    best = best_trials(spec, frame, 1)
    return {} if best.empty else {"sweeper.best_trial": str(best.iloc[0]["trial"])}
