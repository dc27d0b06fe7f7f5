"""Uploading a folder to an object store, verified object by object.

Every file goes through boto3's transfer manager (files side by side, large ones in parts),
then each object is checked against its file (ETag and size, see :mod:`._verify`). Files that
failed, or whose object does not match, are uploaded again after an exponential backoff; an
unreachable store ends the attempt early. Nothing local is ever deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.storage._client import StoreConfig, describe_error, is_transient, make_client
from sweeper.storage._uri import S3Uri, UnsafeKeyError, parse_s3_uri, safe_key
from sweeper.storage._verify import UploadFile, hash_later, receipts_for, verify

__all__ = ["SyncReport", "upload_dir"]

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """The outcome of an upload.

    Attributes:
        uploaded: The keys uploaded and verified.
        failed: Each local file (relative path) that is not confirmed, with the last reason.
        bytes: The bytes uploaded and verified.
        seconds: Wall time.
        unreachable: Whether the store could not be reached at the end.
        pending: For :func:`sweeper.storage.sync_pending`: the local folders still pending.
    """

    uploaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0
    unreachable: bool = False
    pending: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every file was uploaded and verified."""
        return not self.failed

    def merge(self, other: SyncReport, where: str = "") -> None:
        """Add ``other``'s figures (its failures prefixed with ``where/``)."""
        self.uploaded.extend(other.uploaded)
        prefix = f"{where}/" if where else ""
        self.failed.update({prefix + name: reason for name, reason in other.failed.items()})
        self.bytes += other.bytes
        self.seconds += other.seconds
        self.unreachable = self.unreachable or other.unreachable
        self.pending.extend(other.pending)

    def summary(self) -> str:
        """One line: what was uploaded and what was not."""
        text = f"{len(self.uploaded)} files ({self.bytes / 1e6:.1f} MB) uploaded"
        if self.failed:
            first = next(iter(self.failed.items()))
            text += f", {len(self.failed)} not: {first[0]}: {first[1]}"
        return text


def _collect(root: Path, target: S3Uri, files: list[str] | None) -> tuple[list[UploadFile], dict]:
    """The files to upload and their keys; files whose names cannot be keys fail at once."""
    failed: dict[str, str] = {}
    if files is None:
        names = []
        for folder, dirs, found in os.walk(root):
            dirs.sort()
            for name in sorted(found):
                names.append(Path(folder, name).relative_to(root).as_posix())
    else:
        names = [Path(name).as_posix() for name in files]
    chosen = []
    for rel in names:
        path = root / rel
        try:
            key = safe_key(target.prefix, rel)
        except UnsafeKeyError as exc:
            failed[rel] = f"{exc}; rename the file"
            continue
        if not path.is_file():
            if files is not None:
                failed[rel] = f"file must exist, got nothing at {path}"
            continue  # a broken link or a socket: nothing to keep
        chosen.append(UploadFile(rel, path, key, path.stat().st_size))
    return chosen, failed


def upload_dir(
    local_dir: str | Path,
    uri_prefix: str | S3Uri,
    config: StoreConfig | None = None,
    *,
    files: list[str] | None = None,
    skip_existing: bool = False,
) -> SyncReport:
    """Upload every file under ``local_dir`` to ``uri_prefix/<relative path>`` and verify it.

    It never raises for the store's sake: an unreachable or refusing store shows as failures
    in the report, and the files stay where they are. Once a store has proved unreachable,
    later calls in the process try one quick request first for a minute, instead of going
    through every retry again (so many trials ending during an outage do not each wait).

    Args:
        local_dir: The folder to upload.
        uri_prefix: ``s3://bucket/prefix`` the folder maps to.
        config: The store; default: AWS with boto3's credential chain.
        files: Only these paths, relative to ``local_dir`` (default: every file under it).
        skip_existing: Do not upload files whose object is already there and matches (size
            and ETag): for finishing an upload an outage interrupted.

    Returns:
        Which keys were uploaded and verified, and which files were not (with why).

    Raises:
        SpecError: If ``uri_prefix`` is not a valid ``s3://`` URI.
    """
    started = time.monotonic()
    target = uri_prefix if isinstance(uri_prefix, S3Uri) else parse_s3_uri(uri_prefix)
    config = config or StoreConfig()
    todo, permanent = _collect(Path(local_dir), target, files)
    report = SyncReport(failed=dict(permanent))
    client = make_client(config)
    down = _still_down(config, target.bucket)
    if down is not None:
        reason = f"store unreachable: {describe_error(down, config)}"
        report.failed.update(dict.fromkeys((item.rel for item in todo), reason))
        report.unreachable = True
    elif todo:
        todo = _passes(client, target, todo, config, report, skip_existing)
    report.seconds = time.monotonic() - started
    return report


def _passes(
    client: Any,
    target: S3Uri,
    todo: list[UploadFile],
    config: StoreConfig,
    report: SyncReport,
    skip_existing: bool,
) -> list[UploadFile]:
    """Upload and verify ``todo`` until done or out of attempts; return what is left."""
    reasons: dict[str, str] = {}
    receipts = receipts_for(client)
    # MD5s are computed alongside the uploads (hashlib releases the GIL), once per file.
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweeper-md5") as hasher:
        if skip_existing:
            there = verify(client, target, todo, config, hasher)
            for item in todo:
                if item.rel not in there:
                    report.uploaded.append(item.key)
                    report.bytes += item.size
            todo = [item for item in todo if item.rel in there]
        for attempt in range(config.upload_attempts):
            if not todo:
                break
            if attempt:
                log.info(
                    "%d files for %s not uploaded yet (%s)", len(todo), target, reasons[todo[0].rel]
                )
                time.sleep(_backoff(attempt, config))
            receipts.forget(target.bucket, [item.key for item in todo])  # earlier answers
            errors, report.unreachable = _upload(client, target, todo, config, hasher)
            sent = [item for item in todo if item.rel not in errors]
            if report.unreachable:  # a listing would fail too; the next pass sends them again
                mismatched = dict.fromkeys((i.rel for i in sent), "not verified: store unreachable")
            else:
                mismatched = verify(client, target, sent, config, hasher, receipts=receipts)
            retry = []
            for item in todo:
                error = errors.get(item.rel)
                if error is not None and not is_transient(error):
                    report.failed[item.rel] = describe_error(error, config)
                elif error is not None or item.rel in mismatched:
                    reasons[item.rel] = (
                        mismatched[item.rel] if error is None else describe_error(error, config)
                    )
                    item.etag = None  # the file may have changed: hash it again
                    retry.append(item)
                else:
                    report.uploaded.append(item.key)
                    report.bytes += item.size
            todo = retry
    report.failed.update({item.rel: reasons[item.rel] for item in todo})
    if report.unreachable and todo:
        _down_since[config.endpoint_url] = time.monotonic()
    else:
        _down_since.pop(config.endpoint_url, None)
    return todo


# When each store was last found unreachable (by endpoint), for this process's later calls.
_down_since: dict[str | None, float] = {}
_DOWN_MEMORY = 60.0


def _still_down(config: StoreConfig, bucket: str) -> BaseException | None:
    """If the store was unreachable a moment ago, whether one quick request still fails."""
    since = _down_since.get(config.endpoint_url)
    if since is None or time.monotonic() - since > _DOWN_MEMORY:
        return None
    from botocore.exceptions import ClientError

    probe = make_client(dataclasses.replace(config, max_attempts=1))
    try:
        probe.head_bucket(Bucket=bucket)
    except ClientError:
        pass  # it answered
    except Exception as exc:
        if _unreachable(exc) or is_transient(exc):
            return exc
    _down_since.pop(config.endpoint_url, None)
    return None


def _backoff(attempt: int, config: StoreConfig) -> float:
    # Full jitter: concurrent trials that failed together do not retry together.
    ceiling = min(config.backoff_cap, config.backoff_base * 2 ** (attempt - 1))
    return ceiling * (0.5 + random.random() / 2)


def _unreachable(error: BaseException) -> bool:
    """Whether the store cannot be connected to at all (botocore already retried)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError

    return isinstance(error, BotoConnectionError | ConnectionRefusedError)


def _upload(
    client: Any,
    target: S3Uri,
    todo: list[UploadFile],
    config: StoreConfig,
    hasher: ThreadPoolExecutor,
) -> tuple[dict[str, BaseException], bool]:
    """Upload ``todo``; return the error of each file that failed, and if the store is down."""
    from s3transfer.exceptions import CancelledError
    from s3transfer.manager import TransferManager

    errors: dict[str, BaseException] = {}
    down: Exception | None = None
    futures = []
    with TransferManager(client, config.transfer_config()) as manager:
        for item in todo:
            try:
                item.size = item.path.stat().st_size
            except OSError as exc:
                errors[item.rel] = exc
                continue
            if item.etag is None:
                hash_later(item, config, hasher)
            futures.append((item, manager.upload(str(item.path), target.bucket, item.key)))
        for item, future in futures:
            try:
                future.result()
            except Exception as exc:
                if down is not None and isinstance(exc, CancelledError):
                    exc = down  # cancelled below: it failed for the same reason
                errors[item.rel] = exc
                if down is None and _unreachable(exc):
                    # The store is down: fail the files still queued now rather than wait
                    # through botocore's retries for each; the next pass tries them again.
                    down = exc
                    log.info("%s unreachable: %s", config.where(), describe_error(exc, config))
                    for _, other in futures:
                        other.cancel()
    return errors, down is not None
