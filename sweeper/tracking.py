"""MLflow tracking: one parent run per sweep, one child run per trial, written in batches.

Ray ships an ``MLflowLoggerCallback``, but it makes one blocking MLflow call per metric on Tune's
event loop, which makes tracking the slowest part of a sweep of short trials. This tracker queues
every write and a single background thread sends them with ``log_batch``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sweeper._format import describe_error
from sweeper.errors import SweepError

__all__ = ["LOCAL_UI", "Tracker", "ui_base", "ui_link"]

logger = logging.getLogger(__name__)

_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_PARAM_LENGTH = 6000  # MLflow's limit of a param value's length
# What sweeper puts in one tag at most (MLflow keeps 8,000 characters of a tag since 2.x; the
# smaller bound is safe on older servers): a list longer than this is cut where it makes sense.
TAG_LENGTH = 5000
_STOP = object()


_SQLITE = "sqlite:///"
# Where `sweeper ui` serves a local store's MLflow UI by default.
LOCAL_UI = "http://127.0.0.1:5000"


def ui_base(tracking_uri: str) -> str:
    """The MLflow UI's address for a tracking store: a server's own, else `sweeper ui`'s."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return LOCAL_UI


def ui_link(base: str, experiment_id: str, run_id: str | None = None) -> str:
    """A deep link into the MLflow UI: an experiment's runs in the model-training view (MLflow
    3 opens its GenAI view otherwise), or one run."""
    if run_id:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def _sqlite_path(tracking_uri: str) -> Path | None:
    """The file of a local SQLite store (``sqlite:///mlflow.db``), or ``None`` for others."""
    if not tracking_uri.startswith(_SQLITE) or len(tracking_uri) == len(_SQLITE):
        return None
    return Path(tracking_uri[len(_SQLITE) :]).expanduser()


def absolute_uri(tracking_uri: str, base: Path | None = None) -> str:
    """``sqlite:///mlflow.db`` as an absolute ``sqlite:////.../mlflow.db`` (against ``base``,
    by default the working folder); other URIs as they are.

    A sweep records its store this way, so commands run from another folder read that store
    rather than create an empty ``mlflow.db`` where they run.
    """
    path = _sqlite_path(tracking_uri)
    if path is None or tracking_uri.startswith(_SQLITE + "/"):
        return tracking_uri
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return _SQLITE + str(path.resolve())


def store_missing(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` names a local SQLite file that does not exist."""
    path = _sqlite_path(tracking_uri)
    return path is not None and not path.is_file()


@contextlib.contextmanager
def _store_lock(tracking_uri: str) -> Iterator[None]:
    """Hold an exclusive lock on the folder of a local SQLite store (nothing for others).

    The folder, not a lock file beside the store: a lock leaves nothing behind. (The storage
    cache's ``flock`` opens a file for writing, which a folder cannot be.)
    """
    path = _sqlite_path(tracking_uri)
    if path is None:
        yield
        return
    try:
        fd = os.open(path.resolve().parent, os.O_RDONLY)
    except OSError:
        yield  # MLflow says why the store cannot be used
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _artifact_root(tracking_uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a SQLite store (``<its folder>/mlruns``)
    rather than MLflow's ``./mlruns`` of whatever folder sweeper runs in; a tracking server
    decides for itself (``None``)."""
    path = _sqlite_path(tracking_uri)
    return None if path is None else (path.resolve().parent / "mlruns").as_uri()


def _param(value: Any) -> str:
    return str(value)[:_PARAM_LENGTH]


class Tracker:
    """Records a sweep in MLflow from the driver, off Tune's event loop.

    Args:
        tracking_uri: Any MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``).
        experiment: The MLflow experiment's name; created if missing.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        origin: str = "sweeper.toml: mlflow.tracking_uri",
    ) -> None:
        from mlflow.tracking import MlflowClient

        # A new SQLite store announces its schema migration at INFO on stderr; that is noise
        # in a sweep's output. The same logger prints a full traceback for each failed write
        # (a full disk); _guard already says so once, in one line.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        try:
            # MLflow creates and migrates a new SQLite store on first use, and two processes
            # doing it at once break it: one at a time per store.
            with _store_lock(tracking_uri):
                self._client = MlflowClient(tracking_uri=tracking_uri)
                found = self._client.get_experiment_by_name(experiment)
                self.experiment_id = (
                    found.experiment_id
                    if found
                    else self._client.create_experiment(
                        experiment, artifact_location=_artifact_root(tracking_uri)
                    )
                )
        except Exception as exc:
            raise SweepError(
                f"MLflow tracking store must be reachable, got {type(exc).__name__}: {exc} "
                f"({origin} = {tracking_uri!r})"
            ) from None
        self.parent_run_id: str | None = None
        self._runs: dict[str, str] = {}  # trial name -> MLflow run id
        self._known: set[str] = set()  # trials with a child run, created or queued
        self._statuses: dict[str, str] = {}  # child run statuses found by resume_sweep
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="sweeper-mlflow", daemon=True)
        self._failed = False

    def start_sweep(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        """Create the parent run (synchronously, so its id is known) and start the writer."""
        run = self._client.create_run(self.experiment_id, run_name=name, tags=tags)
        self.parent_run_id = run.info.run_id
        self._log_params(self.parent_run_id, params)
        self._thread.start()
        return self.parent_run_id

    def resume_sweep(self, parent_run_id: str, tags: dict[str, str]) -> str:
        """Continue an earlier session's parent run and its child runs (``sweeper resume``).

        Raises:
            SweepError: If the parent run is gone from the tracking store.
        """
        try:
            self._client.get_run(parent_run_id)
            children = self._client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
                max_results=50000,
            )
        except Exception as exc:
            raise SweepError(
                f"the sweep's MLflow run must exist in {self.tracking_uri}, got "
                f"{type(exc).__name__}: {exc}",
                hint="resume with the sweeper.toml the sweep started with",
            ) from None
        self.parent_run_id = parent_run_id
        for run in children:
            name = run.data.tags.get("sweeper.trial")
            if name:
                self._runs[name] = run.info.run_id
                self._known.add(name)
                self._statuses[name] = run.info.status
        self._client.update_run(parent_run_id, status="RUNNING")
        self._guard(
            self._client.log_batch,
            parent_run_id,
            tags=[self._tag(k, v) for k, v in tags.items()],
        )
        self._thread.start()
        return parent_run_id

    def has_trial(self, trial: str) -> bool:
        """Whether the trial has a child run (or one is queued for creation)."""
        return trial in self._known

    def status(self, trial: str) -> str | None:
        """A child run's status when :meth:`resume_sweep` found it (``None``: no run)."""
        return self._statuses.get(trial)

    def start_trial(self, trial: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        """Queue the creation of a trial's child run with its params."""
        self._known.add(trial)
        self._put(self._create_child, trial, params, tags)

    def log_metrics(self, trial: str, metrics: dict[str, float], step: int) -> None:
        """Queue one step's metrics of a trial."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        entries = [Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        self._queue.put(("metrics", trial, entries))

    def tag_trial(self, trial: str, tags: dict[str, str]) -> None:
        """Queue setting tags of a trial's child run while it runs."""
        self._put(self._tag_child, trial, tags)

    def reopen_trial(self, trial: str, tags: dict[str, str] | None = None) -> None:
        """Queue setting a trial's child run back to running (a retry or a resumed trial)."""
        self._put(self._reopen_child, trial, tags or {})

    def log_trial_artifacts(
        self, trial: str, gather: Callable[[Path], list[tuple[Path, str | None]]]
    ) -> None:
        """Queue logging a trial's files to its child run.

        ``gather(scratch)`` runs on the writer thread and returns ``(file, artifact folder)``
        pairs; it may download them into ``scratch``, a temporary folder removed afterwards.
        """
        self._put(self._log_child_artifacts, trial, gather)

    def end_trial(
        self,
        trial: str,
        status: str,
        tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Queue the end of a trial's child run (``FINISHED``, ``FAILED`` or ``KILLED``),
        with final ``metrics`` (logged at step 0) and ``tags``."""
        self._put(self._end_child, trial, status, tags or {}, metrics or {})

    def end_sweep(
        self,
        status: str,
        metrics: dict[str, float],
        tags: dict[str, str],
        artifacts: list[Path],
    ) -> None:
        """Flush every queued write, then close the parent run with a summary."""
        self.flush()
        if self.parent_run_id is None:
            return
        run_id = self.parent_run_id
        self._guard(
            self._client.log_batch,
            run_id,
            metrics=[self._metric(k, v) for k, v in metrics.items()],
            tags=[self._tag(k, v) for k, v in tags.items()],
        )
        for path in artifacts:
            if path.exists():
                self._guard(self._client.log_artifact, run_id, str(path))
        self._guard(self._client.set_terminated, run_id, status)

    def flush(self) -> None:
        """Send every queued write and stop the writer thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def run_id(self, trial: str) -> str | None:
        """The child run id of a trial, once the writer created it."""
        return self._runs.get(trial)

    # -- writer thread -------------------------------------------------------------------------

    def _put(self, function: Callable[..., None], *args: Any) -> None:
        self._queue.put(("call", function, args))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            pending: dict[str, list[Any]] = {}
            stop = False
            # Drain what is queued now: consecutive metrics of a run go out in one request.
            while True:
                if item is _STOP:
                    stop = True
                elif item[0] == "metrics":
                    pending.setdefault(item[1], []).extend(item[2])
                else:
                    self._flush(pending)
                    item[1](*item[2])
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._flush(pending)
            if stop:
                return

    def _flush(self, pending: dict[str, list[Any]]) -> None:
        for trial, metrics in pending.items():
            run_id = self._runs.get(trial)
            if run_id is None:
                continue
            for i in range(0, len(metrics), _BATCH):
                self._guard(self._client.log_batch, run_id, metrics=metrics[i : i + _BATCH])
        pending.clear()

    def _create_child(self, trial: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        tags = {**tags, "mlflow.parentRunId": self.parent_run_id or ""}
        run = self._guard(self._client.create_run, self.experiment_id, run_name=trial, tags=tags)
        if run is not None:
            self._runs[trial] = run.info.run_id
            self._log_params(run.info.run_id, params)

    def _end_child(
        self, trial: str, status: str, tags: dict[str, str], metrics: dict[str, float]
    ) -> None:
        run_id = self._runs.get(trial)
        if run_id is None:
            return
        if tags or metrics:
            self._guard(
                self._client.log_batch,
                run_id,
                metrics=[self._metric(k, v) for k, v in metrics.items()],
                tags=[self._tag(k, v) for k, v in tags.items()],
            )
        self._guard(self._client.set_terminated, run_id, status)

    def _log_child_artifacts(
        self, trial: str, gather: Callable[[Path], list[tuple[Path, str | None]]]
    ) -> None:
        import tempfile

        run_id = self._runs.get(trial)
        if run_id is None:
            return
        with tempfile.TemporaryDirectory(prefix="sweeper-artifacts-") as scratch:
            for path, folder in self._guard(gather, Path(scratch)) or []:
                self._guard(self._client.log_artifact, run_id, str(path), folder)

    def _tag_child(self, trial: str, tags: dict[str, str]) -> None:
        run_id = self._runs.get(trial)
        if run_id is not None:
            self._guard(
                self._client.log_batch, run_id, tags=[self._tag(k, v) for k, v in tags.items()]
            )

    def _reopen_child(self, trial: str, tags: dict[str, str]) -> None:
        run_id = self._runs.get(trial)
        if run_id is None:
            return
        self._guard(self._client.update_run, run_id, status="RUNNING")
        if tags:
            self._guard(
                self._client.log_batch, run_id, tags=[self._tag(k, v) for k, v in tags.items()]
            )

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        entries = [Param(k, _param(v)) for k, v in params.items()]
        for i in range(0, len(entries), 100):
            self._guard(self._client.log_batch, run_id, params=entries[i : i + 100])

    @staticmethod
    def _metric(key: str, value: float) -> Any:
        from mlflow.entities import Metric

        return Metric(key, float(value), int(time.time() * 1000), 0)

    @staticmethod
    def _tag(key: str, value: str) -> Any:
        from mlflow.entities import RunTag

        return RunTag(key, _param(value))

    def _guard(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # A tracking hiccup must not end a sweep whose trials are fine: warn once, go on.
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            if not self._failed:
                logger.warning("MLflow write failed (%s); the sweep goes on", describe_error(exc))
                self._failed = True
            return None
