"""The sweep's record of uploads not yet confirmed, and finishing them later.

``<sweep_dir>/sync-pending.json`` lists each local folder (relative to the sweep folder when
inside it) with the ``s3://`` prefix it goes to, optionally only some of its files. An entry is
written before its upload starts and removed once every file is verified, so a crash or an
unreachable store leaves it listed, and ``sweeper sync SWEEP`` (:func:`sync_pending`) uploads
it later. Trials of a node finish concurrently: every change takes an ``flock`` on a lock file
next to the record and replaces the record atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sweeper._layout import PENDING_FILE
from sweeper.errors import StorageError
from sweeper.storage._client import StoreConfig
from sweeper.storage._sync import SyncReport, upload_dir
from sweeper.storage._uri import parse_s3_uri

__all__ = [
    "PENDING_FILE",
    "PendingUpload",
    "mark_confirmed",
    "mark_pending",
    "pending_uploads",
    "sync_dir",
    "sync_pending",
]

_LOCK_FILE = ".sync-pending.lock"
_FORMAT = 1


@dataclass(frozen=True)
class PendingUpload:
    """One upload not yet confirmed.

    Attributes:
        local: The folder, relative to the sweep folder if inside it (POSIX separators).
        target: The ``s3://bucket/prefix`` it goes to.
        files: Only these files of it (relative paths), or ``None`` for all.
        since: When it was first recorded (UTC, ISO 8601).
        attempts: Uploads of it that failed so far.
        error: Why the last one failed (no secrets), or ``""``.
    """

    local: str
    target: str
    files: tuple[str, ...] | None = None
    since: str = ""
    attempts: int = 0
    error: str = ""

    def path(self, sweep_dir: str | Path) -> Path:
        """The local folder as a path."""
        return Path(sweep_dir) / self.local  # an absolute `local` wins over the sweep folder


def _local_name(sweep_dir: Path, local: str | Path) -> str:
    local = Path(local)
    if not local.is_absolute():
        return local.as_posix()
    try:
        return local.resolve().relative_to(sweep_dir.resolve()).as_posix()
    except ValueError:
        return local.as_posix()


@contextlib.contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
    fd = os.open(sweep_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(sweep_dir: Path) -> list[PendingUpload]:
    path = sweep_dir / PENDING_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise StorageError(
            f"{PENDING_FILE} must be readable JSON, got {type(exc).__name__}: {exc} ({path})"
        ) from None
    entries = []
    for raw in data.get("uploads", []):
        files = raw.get("files")
        entries.append(
            PendingUpload(
                local=raw["local"],
                target=raw["target"],
                files=tuple(files) if files is not None else None,
                since=raw.get("since", ""),
                attempts=int(raw.get("attempts", 0)),
                error=raw.get("error", ""),
            )
        )
    return entries


def _write(sweep_dir: Path, entries: list[PendingUpload]) -> None:
    path = sweep_dir / PENDING_FILE
    if not entries:
        path.unlink(missing_ok=True)
        return
    uploads = []
    for entry in entries:
        raw: dict[str, Any] = asdict(entry)
        if entry.files is None:
            del raw["files"]
        else:
            raw["files"] = list(entry.files)
        uploads.append(raw)
    tmp = path.with_name(f".{PENDING_FILE}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"format": _FORMAT, "uploads": uploads}, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)  # readers see the old record or the new one, never half of one
    fd = os.open(sweep_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _update(sweep_dir: str | Path, change: Callable[[list[PendingUpload]], None]) -> None:
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir):
        entries = _read(sweep_dir)
        change(entries)
        _write(sweep_dir, entries)


def pending_uploads(sweep_dir: str | Path) -> list[PendingUpload]:
    """The sweep's uploads not yet confirmed, oldest first (``[]`` if none)."""
    return _read(Path(sweep_dir))


def mark_pending(
    sweep_dir: str | Path,
    local: str | Path,
    target: str,
    *,
    files: list[str] | None = None,
    error: str = "",
) -> None:
    """Record that ``local`` (or ``files`` of it) must be uploaded to ``target``.

    Recording the same folder and target again keeps its first date and counts a failed
    attempt when ``error`` is given.
    """
    parse_s3_uri(target)
    name = _local_name(Path(sweep_dir), local)
    chosen = tuple(files) if files is not None else None

    def change(entries: list[PendingUpload]) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for i, entry in enumerate(entries):
            if (entry.local, entry.target) == (name, target):
                entries[i] = PendingUpload(
                    name,
                    target,
                    chosen,
                    entry.since,
                    entry.attempts + (1 if error else 0),
                    error or entry.error,
                )
                return
        entries.append(PendingUpload(name, target, chosen, now, 1 if error else 0, error))

    _update(sweep_dir, change)


def mark_confirmed(sweep_dir: str | Path, local: str | Path, target: str) -> None:
    """Remove ``local``'s upload to ``target`` from the record (its files are all verified)."""
    name = _local_name(Path(sweep_dir), local)

    def change(entries: list[PendingUpload]) -> None:
        entries[:] = [e for e in entries if (e.local, e.target) != (name, target)]

    _update(sweep_dir, change)


def sync_dir(
    sweep_dir: str | Path,
    local: str | Path,
    target: str,
    config: StoreConfig | None = None,
    *,
    files: list[str] | None = None,
    skip_existing: bool = False,
) -> SyncReport:
    """Upload ``local`` to ``target`` with a durable record: what a trial's end calls.

    The upload is recorded as pending first, then run with :func:`upload_dir`; it is removed
    from the record once every file is verified, else its failure is recorded for
    :func:`sync_pending`. Local files are never deleted.

    Args:
        sweep_dir: The sweep's folder, which holds the record.
        local: The folder to upload (relative to ``sweep_dir``, or absolute).
        target: ``s3://bucket/prefix`` it maps to.
        config: The store.
        files: Only these files of it (relative paths).
        skip_existing: Keep objects already there that match their file.
    """
    sweep_dir = Path(sweep_dir)
    folder = Path(local) if Path(local).is_absolute() else sweep_dir / local
    mark_pending(sweep_dir, local, target, files=files)
    report = upload_dir(folder, target, config, files=files, skip_existing=skip_existing)
    if report.ok:
        mark_confirmed(sweep_dir, local, target)
    else:
        mark_pending(sweep_dir, local, target, files=files, error=report.summary())
        report.pending.append(_local_name(sweep_dir, local))
    return report


def sync_pending(sweep_dir: str | Path, config: StoreConfig | None = None) -> SyncReport:
    """Upload everything the sweep's record lists as pending (``sweeper sync SWEEP``).

    Entries are tried oldest first; once the store proves unreachable the rest are left for
    the next run. Entries whose folder is gone locally are reported as failed and kept.

    Returns:
        The combined report; ``pending`` lists the folders still not confirmed.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise StorageError(f"sweep folder must exist, got nothing at {sweep_dir}")
    total = SyncReport()
    for entry in pending_uploads(sweep_dir):
        folder = entry.path(sweep_dir)
        if total.unreachable:
            total.pending.append(entry.local)
            continue
        if not folder.is_dir():
            total.failed[entry.local] = f"local folder must exist, got nothing at {folder}"
            total.pending.append(entry.local)
            continue
        files = list(entry.files) if entry.files is not None else None
        # What an interrupted upload already sent and verifies is not sent again.
        report = sync_dir(
            sweep_dir, entry.local, entry.target, config, files=files, skip_existing=True
        )
        total.merge(report, entry.local)
    return total
