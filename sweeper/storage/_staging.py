"""Training data from an object store, downloaded once per machine and data version.

The objects under a prefix are listed (keys, sizes, ETags); that listing names a version of
the node's cache (see :mod:`._cache`). Callers that find no complete copy of it take the
version's lock in turn: the first downloads (objects unchanged since an older version are
linked from it instead), the others wait and then find its copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.errors import StorageError
from sweeper.storage._cache import (
    CachedObject,
    clean_partials,
    flock,
    fsync_dir,
    fsync_tree,
    link_unchanged,
    partial_dir,
    version_of,
    write_listing,
)
from sweeper.storage._client import StoreConfig, describe_error, make_client
from sweeper.storage._uri import S3Uri, UnsafeKeyError, parse_s3_uri, relative_path

__all__ = ["StageResult", "stage", "stage_dataset"]

log = logging.getLogger(__name__)

_ATTEMPTS = 3  # listings to try when objects change while they are being downloaded


@dataclass(frozen=True)
class StageResult:
    """What :func:`stage_dataset` did.

    Attributes:
        path: The complete local copy, ``<cache_root>/<bucket>/<version>/``.
        version: The hash naming that copy.
        objects: How many objects it holds.
        bytes: Their total size.
        downloaded: Bytes this call downloaded (0 when the copy was already there).
        reused: Bytes this call linked from an older version instead of downloading.
        waited: Seconds spent waiting for another process's download of the same version.
    """

    path: Path
    version: str
    objects: int
    bytes: int
    downloaded: int = 0
    reused: int = 0
    waited: float = 0.0


def stage(uri: str | S3Uri, cache_root: str | Path, config: StoreConfig | None = None) -> Path:
    """Make the objects under ``uri`` present on this machine and return their folder.

    Args:
        uri: ``s3://bucket/prefix`` (every object under ``prefix/``, or the one object named
            ``prefix`` when nothing is under it).
        cache_root: This node's cache folder (local disk).
        config: The store; default: AWS with boto3's credential chain.

    Returns:
        ``<cache_root>/<bucket>/<version>/``, mirroring the objects' keys relative to the
        prefix. Treat it as read-only: every trial of the node shares it.

    Raises:
        SpecError: If ``uri`` is not a valid ``s3://`` URI.
        StorageError: If the store cannot be listed or read, nothing is under ``uri``, or a key
            would escape the folder.
    """
    return stage_dataset(uri, cache_root, config).path


def stage_dataset(
    uri: str | S3Uri, cache_root: str | Path, config: StoreConfig | None = None
) -> StageResult:
    """:func:`stage`, returning what it did (bytes downloaded, reused, time waited)."""
    target = uri if isinstance(uri, S3Uri) else parse_s3_uri(uri)
    config = config or StoreConfig()
    client = make_client(config)
    for attempt in range(_ATTEMPTS):
        objects = _list(client, target, config)
        try:
            return _materialise(client, target, objects, Path(cache_root), config)
        except _ChangedError:
            log.info("%s changed while it was staged; listing it again", target)
            time.sleep(0.2 * (attempt + 1))
    raise StorageError(
        f"data must stay unchanged while it is staged, got objects under {target} changing "
        f"during {_ATTEMPTS} downloads; stage it again once its upload has finished"
    )


class _ChangedError(Exception):
    """An object's ETag no longer matches its listing (the server answered 412)."""


# -- listing -----------------------------------------------------------------------------------


def _list(client: Any, target: S3Uri, config: StoreConfig) -> list[CachedObject]:
    """The objects under ``target``, sorted by key; one object if ``target`` names a file."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        objects = list_prefix(client, target)
        if not objects and target.prefix:
            objects = _single(client, target)
    except (BotoCoreError, ClientError) as exc:
        raise StorageError(
            f"data must be readable at {target}, got {describe_error(exc, config)} "
            f"(endpoint: {config.where()})"
        ) from None
    if not objects:
        raise StorageError(
            f"data must name at least one object, got none under {target} "
            f"(endpoint: {config.where()})"
        )
    objects.sort(key=lambda o: o.key)
    _check_paths(objects, target)
    return objects


def list_prefix(client: Any, target: S3Uri, what: str = "data") -> list[CachedObject]:
    """The objects under ``target`` as a folder, keys relative to it.

    Raises:
        StorageError: If a key would leave the folder (``..``, absolute paths).
        botocore's errors: If the store cannot be listed.
    """
    objects: list[CachedObject] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=target.bucket, Prefix=target.dir_prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue  # a "folder" marker some tools create; folders follow from keys
            objects.append(_object(key, target.prefix, item["Size"], item.get("ETag", ""), what))
    return objects


def _object(key: str, prefix: str, size: int, etag: str, what: str = "data") -> CachedObject:
    try:
        rel = relative_path(key, prefix)
    except UnsafeKeyError as exc:
        raise StorageError(f"{what} objects must be safe to copy to disk: {exc}") from None
    return CachedObject(key=key, rel=rel.as_posix(), size=int(size), etag=etag)


def _single(client: Any, target: S3Uri) -> list[CachedObject]:
    """``target`` as one object (``s3://bucket/data.csv``), or nothing."""
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=target.bucket, Key=target.prefix)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return []
        raise
    name = target.prefix.rsplit("/", 1)[-1]
    parent = target.prefix[: -len(name)].rstrip("/")
    return [_object(target.prefix, parent, head["ContentLength"], head.get("ETag", ""))]


def _check_paths(objects: list[CachedObject], target: S3Uri) -> None:
    """Refuse keys that map to the same file, or to both a file and a folder."""
    files = {o.rel for o in objects}
    if len(files) != len(objects):
        raise StorageError(
            f"data object keys must map to distinct files, got keys under {target} that "
            "differ only in empty or '.' segments"
        )
    for obj in objects:
        parent = obj.rel.rsplit("/", 1)[0] if "/" in obj.rel else ""
        while parent:
            if parent in files:
                raise StorageError(
                    f"data object keys must not name both a file and a folder, got "
                    f"{target.dir_prefix + parent!r} and {obj.key!r}"
                )
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""


def _materialise(
    client: Any, target: S3Uri, objects: list[CachedObject], cache_root: Path, config: StoreConfig
) -> StageResult:
    version = version_of(objects, config.endpoint_url, target.bucket)
    total = sum(o.size for o in objects)
    bucket_dir = cache_root / target.bucket
    final = bucket_dir / version
    if final.is_dir() and _intact(final, objects):
        return StageResult(final, version, len(objects), total)
    bucket_dir.mkdir(parents=True, exist_ok=True)
    lock = bucket_dir / f".{version}.lock"
    started = time.monotonic()
    with flock(lock, blocking=False) as free:
        if not free:
            log.info("waiting for another process staging %s into %s", target, final)
    with flock(lock):
        waited = time.monotonic() - started
        if final.is_dir():
            if _intact(final, objects):
                return StageResult(final, version, len(objects), total, waited=waited)
            # Something changed the shared copy (a training program writing into it): it is
            # set aside as a partial folder, which clean_partials removes, and staged again.
            log.warning("the cached copy %s no longer matches %s; staging it again", final, target)
            os.rename(final, partial_dir(bucket_dir, version))
        clean_partials(bucket_dir, version)
        partial = partial_dir(bucket_dir, version)
        try:
            reused = link_unchanged(bucket_dir, objects, partial)
            downloaded = _download(client, target, objects, partial, reused, config)
            fsync_tree(partial, objects)
            _read_only(partial, objects)
            write_listing(bucket_dir / f"{version}.json", objects, config.endpoint_url, str(target))
            os.rename(partial, final)
            fsync_dir(bucket_dir)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    reused_bytes = sum(o.size for o in objects if o.rel in reused)
    log.info(
        "staged %s into %s: %d objects, %d bytes downloaded, %d reused",
        target,
        final,
        len(objects),
        downloaded,
        reused_bytes,
    )
    return StageResult(final, version, len(objects), total, downloaded, reused_bytes, waited)


def _intact(folder: Path, objects: list[CachedObject]) -> bool:
    """Whether ``folder`` holds exactly the listed files, each of its listed size.

    Sizes, not ETags: checking an ETag means reading every byte on every use.
    """
    expected = {o.rel: o.size for o in objects}
    found = 0
    for path in folder.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(folder).as_posix()
        try:
            if expected.get(rel) != path.lstat().st_size or path.is_symlink():
                return False
        except OSError:
            return False
        found += 1
    return found == len(expected)


def _read_only(folder: Path, objects: list[CachedObject]) -> None:
    """Take write permission off the copy's files: every trial of the node shares them."""
    for o in objects:
        path = folder / o.rel
        path.chmod(path.stat().st_mode & ~0o222)


class _Listed:
    """Gives s3transfer an object's size and ETag from the listing.

    With both known it sends no HEAD request per object, and every GET, whole or ranged,
    carries ``If-Match: <ETag>``: the copy must hold the listed version of each object, never
    a newer one that the version hash does not name (the store answers 412 instead). The
    transfer manager only lets ranged GETs carry it, so it is added to the call's arguments
    here, after the manager's check of them and before the download is submitted.
    """

    def __init__(self, size: int, etag: str) -> None:
        self.size = size
        self.etag = etag

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self.size)
        if self.etag:
            future.meta.provide_object_etag(self.etag)
            future.meta.call_args.extra_args["IfMatch"] = self.etag

    def on_progress(self, **kwargs: Any) -> None:
        pass

    def on_done(self, **kwargs: Any) -> None:
        pass


def _download(
    client: Any,
    target: S3Uri,
    objects: list[CachedObject],
    partial: Path,
    skip: set[str],
    config: StoreConfig,
) -> int:
    """Download every object not in ``skip`` into ``partial``; return the bytes fetched."""
    from s3transfer.manager import TransferManager

    todo = [o for o in objects if o.rel not in skip]
    for obj in todo:
        (partial / obj.rel).parent.mkdir(parents=True, exist_ok=True)
    # One manager for all objects: small ones download side by side, large ones in ranges.
    with TransferManager(client, config.transfer_config()) as manager:
        futures = []
        for obj in todo:
            path = partial / obj.rel
            if obj.size == 0:
                path.touch()  # nothing to fetch
                continue
            future = manager.download(
                target.bucket, obj.key, str(path), {}, [_Listed(obj.size, obj.etag)]
            )
            futures.append((obj, future))
        for obj, future in futures:
            try:
                future.result()
            except Exception as exc:
                # Raised inside the manager's block, so it cancels the other downloads.
                raise _download_error(exc, obj, target, config) from None
    for obj in todo:
        size = (partial / obj.rel).stat().st_size
        if size != obj.size:
            raise StorageError(
                f"downloaded data must match its listing, got {size} bytes for {obj.key} "
                f"instead of {obj.size}"
            )
    return sum(o.size for o in todo)


def _download_error(
    exc: Exception, obj: CachedObject, target: S3Uri, config: StoreConfig
) -> Exception:
    from botocore.exceptions import ClientError

    # s3transfer turns the store's 412 into its own error, raised while handling the original.
    for error in (exc, exc.__context__):
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "PreconditionFailed" or status == 412:
                return _ChangedError(obj.key)
    log.debug("download of %s/%s failed", target.bucket, obj.key, exc_info=exc)
    return StorageError(
        f"data object must download, got {describe_error(exc, config)} for "
        f"{target.bucket}/{obj.key} (endpoint: {config.where()})"
    )
