"""The end of a sweep's session, on the driver: ``results.csv``, ``state.json``, the MLflow
parent run's summary, and the uploads trials could not make themselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper._format import first_line
from sweeper._layout import SPEC_FILE, trial_dir
from sweeper.errors import SweepError
from sweeper.execution._summary import best_tags, sweep_metrics
from sweeper.results import results_frame, write_results
from sweeper.storage import pending_uploads

if TYPE_CHECKING:
    import pandas as pd

    from sweeper._journal import SweepState, TrialRecord
    from sweeper.spec import Spec
    from sweeper.storage._sweep import SweepStore
    from sweeper.tracking import Tracker

__all__ = ["finalize", "stopped_by", "sync_leftovers"]


def stopped_by(error: BaseException | None) -> str:
    """The reason a session that ended on ``error`` records."""
    first = first_line(error)
    return f"stopped on an error: {first or type(error).__name__}"


def finalize(
    spec: Spec,
    state: SweepState,
    sweep_dir: Path,
    tracker: Tracker,
    final: dict[str, TrialRecord],
    status: str,
    reason: str | None,
    started: float,
) -> pd.DataFrame:
    """Write a session's end: ``results.csv``, ``state.json`` and the MLflow parent run."""
    tracker.flush()
    for record in final.values():
        record.run_id = tracker.run_id(record.name) or record.run_id
    frame = results_frame(spec, final.values())
    try:
        csv = write_results(frame, sweep_dir)
        state.status, state.reason, state.pid = status, reason, None
        state.gpu_seconds = float(frame["gpu_seconds"].sum()) if not frame.empty else 0.0
        state.save(sweep_dir)
    except OSError as exc:
        # The journal holds every trial: `sweeper resume` rebuilds both files once it can.
        # Trials that failed meanwhile most likely failed on the same disk.
        retry = any(r.state == "failed" for r in final.values())
        raise SweepError(
            f"the sweep folder must be writable, got {exc.strerror or exc} writing "
            f"{exc.filename or sweep_dir}",
            hint="free space or fix permissions, then: sweeper resume "
            + ("--retry-failed " if retry else "")
            + str(sweep_dir),
        ) from None
    tracker.end_sweep(
        {"completed": "FINISHED", "halted": "KILLED"}.get(status, "FAILED"),
        metrics=sweep_metrics(spec, frame, time.time() - started),
        tags={
            **best_tags(spec, frame),
            "sweeper.status": status,
            "sweeper.reason": reason or "",  # an earlier session's reason must not linger
        },
        artifacts=[csv, sweep_dir / SPEC_FILE],
    )
    return frame


def sync_leftovers(
    store: SweepStore | None,
    sweep_dir: Path,
    sweep: str,
    final: dict[str, TrialRecord],
    driver_node: str | None,
    say: Callable[[str], None],
) -> list[str]:
    """Upload from the driver what trials could not, then the sweep's summary files.

    Returns:
        The local folders whose upload is still pending (the store was unreachable).
    """
    if store is None or not store.results_uri:
        return []
    # A trial killed with its process (out of memory, a lost node) or stopped while it stored
    # could not upload its folder itself: whatever it left goes up from here. Only folders of
    # trials that last ran on this node: another node's copy here (an earlier attempt's) is
    # older than what that node uploaded.
    here = (None, driver_node)
    for record in final.values():
        if (
            record.state != "completed"
            and record.node in here
            and trial_dir(sweep_dir, record.name).is_dir()
        ):
            store.sync_trial(sweep_dir, sweep, record.name, skip_existing=True)
    store.sync_summary(sweep_dir, sweep)
    unsynced = [entry.local for entry in pending_uploads(sweep_dir)]
    if unsynced:
        say(f"{len(unsynced)} uploads to {store.target(sweep)} are pending (store unreachable)")
    else:
        say(f"results synced to {store.target(sweep)}")
    return unsynced
