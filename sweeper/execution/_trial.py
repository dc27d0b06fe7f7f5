"""A trial's files wherever it runs (its Ray actor, or a learner of a trial of several): the
log and environment of the process, the trial's folder on this node, its staged data, and its
checkpoints to and from the results store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper._layout import ATTEMPT_FILE, CHECKPOINT_DIR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sweeper.execution._plan import TrialPlan
    from sweeper.frameworks.context import TrialContext

__all__ = [
    "CheckpointSync",
    "context_for",
    "data_dir_for",
    "localize",
    "log_to",
    "restore",
    "restored_process",
    "tail",
    "view_dir",
]

_TAIL_LINES = 20


@contextmanager
def restored_process() -> Iterator[None]:
    """Undo what a trial changed of its process's environment variables and working directory.

    Ray reuses a trial's actor for the next trial: what one trial's code set there (``os.environ``,
    ``os.chdir``) must not be what the next one starts with.
    """
    environ = dict(os.environ)
    cwd = os.getcwd()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.chdir(cwd)
        for key in set(os.environ) - set(environ):
            del os.environ[key]
        for key, value in environ.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextmanager
def log_to(path: Path) -> Iterator[None]:
    """Send the process's stdout and stderr (Python and C level) to ``path`` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ('' if it is missing)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip()
    except OSError:
        return ""


def localize(plan: TrialPlan, node: str | None) -> TrialPlan:
    """The plan for a trial on ``node``: paths that hold on this machine.

    Where Ray shipped the spec's code (a cluster), relative paths of the spec resolve against
    the worker's copy of it. On a node other than the driver's, with an ``s3://`` results store,
    the trial's folder is node-local scratch space: its files outlive the node in the store,
    and the driver needs no shared filesystem.
    """
    import dataclasses
    import tempfile

    changes: dict[str, Any] = {}
    if plan.code_dir:
        here = Path(os.environ.get("TUNE_ORIG_WORKING_DIR") or os.getcwd()).resolve()
        if here != plan.spec.base_dir:
            spec = plan.spec.model_copy()
            spec._base_dir = here
            changes["spec"] = spec
    remote = plan.driver_node is not None and node is not None and node != plan.driver_node
    if remote and node and plan.store is not None and plan.store.results_uri:
        scratch = Path(tempfile.gettempdir(), "sweeper-trials", node[:16], plan.sweep)
        changes.update(sweep_dir=scratch, scratch=True)
    return dataclasses.replace(plan, **changes) if changes else plan


def _local_attempt(trial_dir: Path) -> int:
    try:
        return int((trial_dir / ATTEMPT_FILE).read_text(encoding="utf-8").strip() or 0)
    except (OSError, ValueError):
        return 0


def restore(plan: TrialPlan, name: str) -> int:
    """Bring a trial's checkpoints from the results store when it holds a later attempt's.

    A retry or a resumed trial may start on a node that never ran it, or ran an earlier
    attempt: its ``checkpoints/`` (with ``attempt`` and ``trial.log``) then come from the
    trial's synced folder. Returns how many files were fetched (0: none needed or none there).
    """
    store = plan.store
    if store is None or not store.results_uri:
        return 0
    trial_dir = plan.trial_dir(name)
    try:
        return store.fetch_trial(plan.sweep, name, trial_dir, _local_attempt(trial_dir))
    except Exception as exc:  # the trial can still start afresh
        print(f"sweeper: {name}: checkpoints not fetched from the store: {exc}", flush=True)
        return 0


class CheckpointSync:
    """Wraps ``report``: before a report, uploads the trial's changed checkpoints to the
    results store (at most every ``plan.checkpoint_interval`` seconds), so a node lost
    mid-trial leaves them where a retry on another node finds them."""

    def __init__(self, plan: TrialPlan, name: str, report: Any) -> None:
        self.plan = plan
        self.name = name
        self.report = report
        self._last = 0.0
        self._seen: tuple[Any, ...] = ()

    def _signature(self) -> tuple[Any, ...]:
        folder = self.plan.trial_dir(self.name) / CHECKPOINT_DIR
        entries = []
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                stat = path.stat()
                entries.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime))
        return tuple(entries)

    def sync(self) -> None:
        """Upload the checkpoints if they changed since the last upload."""
        import time

        store = self.plan.store
        if store is None or not store.results_uri:
            return
        now = time.monotonic()
        if self._last and now - self._last < self.plan.checkpoint_interval:
            return
        signature = self._signature()
        if not signature or signature == self._seen:
            return
        self._last = now
        files = [ATTEMPT_FILE] + [f"checkpoints/{entry[0]}" for entry in signature]
        try:
            report = store.upload_trial_files(
                self.plan.sweep_dir, self.plan.sweep, self.name, files
            )
        except Exception as exc:
            print(f"sweeper: checkpoints not uploaded: {exc}", flush=True)
            return
        if report.ok:
            self._seen = signature

    def __call__(self, result: dict[str, Any]) -> None:
        self.sync()
        self.report(result)


def data_dir_for(
    plan: TrialPlan, name: str, params: dict[str, Any], view: str | None = None
) -> Path | None:
    """The trial's data (its own choice of a data choice): staged from the store, once per
    machine and version, when the trial is about to run; or local.

    ``view`` names the trial's own view of staged data (a learner's own, beside the trial's).
    """
    spec = plan.spec
    dataset = spec.dataset_for(params)
    if not dataset:
        return None
    if plan.store is not None and dataset in (*plan.store.datasets, plan.store.data_uri):
        print(f"sweeper: staging {dataset}", flush=True)
        return _private_view(plan.store.stage_data(dataset), plan, view or name)
    return spec.resolve(dataset)


def view_dir(plan: TrialPlan, view: str) -> Path:
    """Where a trial's (or one learner's) view of the staged data is made."""
    import tempfile

    return Path(tempfile.gettempdir(), "sweeper-data", plan.sweep, view)


def _private_view(cached: Path, plan: TrialPlan, name: str) -> Path:
    """The trial's own view of the node's shared copy: a folder of links to its files.

    What a trial writes there (IBM's examples unpack archives into ``$DATA_DIR``) stays its
    own: the shared copy, which other trials and later sweeps read, is not touched, and two
    trials unpacking at once do not race. The view is removed when the trial ends.
    """
    view = view_dir(plan, name)
    shutil.rmtree(view, ignore_errors=True)  # an earlier attempt's
    for path in sorted(cached.rglob("*")):
        target = view / path.relative_to(cached)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    view.mkdir(parents=True, exist_ok=True)
    return view


def context_for(
    plan: TrialPlan,
    name: str,
    params: dict[str, Any],
    *,
    log_path: Path,
    data_dir: Path | None,
    seed: int | None,
    reporter: Callable[[dict[str, Any]], None],
    attempt: int,
    **learner: int,
) -> TrialContext:
    """The ``ctx`` of trial ``name`` in this process (``learner``: its rank and world size).

    Its ``params`` are what the training code gets: a data choice is not among them (it is
    ``ctx.dataset``, staged at ``ctx.data_dir``), though the trial's record shows it.
    """
    import ray

    from sweeper._layout import OUTPUT_DIR
    from sweeper.frameworks.context import TrialContext

    trial_dir = plan.trial_dir(name)
    spec = plan.spec
    return TrialContext(
        params=spec.training_params(params),
        dataset=spec.dataset_for(params),
        trial=name,
        sweep=plan.sweep,
        trial_dir=trial_dir,
        log_path=log_path,
        output_dir=trial_dir / OUTPUT_DIR,
        checkpoint_dir=trial_dir / CHECKPOINT_DIR,
        data_dir=data_dir,
        gpu_ids=[str(g) for g in ray.get_gpu_ids()],
        seed=seed,
        metric=plan.spec.search.watched_metrics,
        reporter=reporter,
        attempt=attempt,
        **learner,
    )
