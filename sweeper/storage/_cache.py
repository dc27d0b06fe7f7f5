"""The node's cache of staged datasets: layout, locks, and copies that appear whole or not at all.

Layout (one cache per node, on local disk: ``flock`` is unreliable on network file systems)::

    <cache_root>/<bucket>/<version>/           a complete copy; it appears only by a rename
    <cache_root>/<bucket>/<version>.json       what it holds (keys, sizes, ETags)
    <cache_root>/<bucket>/.<version>.lock      taken by whoever downloads that version
    <cache_root>/<bucket>/.<version>.partial-* a download in progress, or one a crash left

``<version>`` hashes the endpoint, the bucket and every object's key, size and ETag, so a
changed object gives a new version, while an unchanged dataset is found where the first caller
left it. A download fills a partial folder and is renamed into place once every file is in and
flushed to disk: a crash leaves a partial folder (removed by the next caller), never a
complete-looking copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CachedObject",
    "clean_partials",
    "flock",
    "fsync_dir",
    "fsync_tree",
    "link_unchanged",
    "partial_dir",
    "version_of",
    "write_listing",
]

_LISTING_FORMAT = 1


@dataclass(frozen=True)
class CachedObject:
    """An object of a dataset: its key, its path under the prefix, size and ETag."""

    key: str
    rel: str  # the path under the prefix, checked by relative_path
    size: int
    etag: str


def version_of(objects: list[CachedObject], endpoint: str | None, bucket: str) -> str:
    """The hash naming a dataset's version: endpoint, bucket, and each key, size and ETag."""
    listing: list[Any] = [endpoint or "", bucket]
    listing += [[o.key, o.size, o.etag] for o in objects]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:24]


@contextlib.contextmanager
def flock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yields False if non-blocking and taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:
            if blocking or exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def partial_dir(bucket_dir: Path, version: str) -> Path:
    """A new partial folder for downloading ``version`` (hold its lock first)."""
    partial = bucket_dir / f".{version}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    partial.mkdir()
    return partial


def clean_partials(bucket_dir: Path, version: str) -> None:
    """Remove partial folders left by crashed downloads (ours, and idle versions' ones)."""
    for entry in bucket_dir.glob(f".{version}.json.*.tmp"):
        entry.unlink(missing_ok=True)  # a listing a crash left half written
    for entry in bucket_dir.glob(".*.partial-*"):
        other = entry.name[1:].split(".partial-", 1)[0]
        if other == version:
            shutil.rmtree(entry, ignore_errors=True)  # we hold its lock: nobody writes it
            continue
        # Another version's partial folder is stale unless someone holds that version's lock.
        with flock(bucket_dir / f".{other}.lock", blocking=False) as free:
            if free:
                shutil.rmtree(entry, ignore_errors=True)


def write_listing(path: Path, objects: list[CachedObject], endpoint: str | None, uri: str) -> None:
    """Write what a version holds, atomically (readers see all of it or none)."""
    data = {
        "format": _LISTING_FORMAT,
        "endpoint": endpoint or "",
        "uri": uri,
        "objects": [[o.key, o.rel, o.size, o.etag] for o in objects],
    }
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def link_unchanged(bucket_dir: Path, objects: list[CachedObject], partial: Path) -> set[str]:
    """Hard-link objects an older complete version already holds; return their paths."""
    wanted = {(o.key, o.size, o.etag): o for o in objects if o.etag}
    found: dict[str, Path] = {}
    for listing in bucket_dir.glob("*.json"):
        folder = bucket_dir / listing.stem
        if not folder.is_dir() or len(found) == len(wanted):
            continue
        try:
            held = [(k, r, s, e) for k, r, s, e in json.loads(listing.read_text())["objects"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable or foreign: download instead
        for key, rel, size, etag in held:
            obj = wanted.get((key, size, etag))
            if obj is None or obj.rel in found or not _inside(rel):
                continue
            source = folder / rel
            if source.is_file() and source.stat().st_size == size:
                found[obj.rel] = source
    for rel, source in found.items():
        destination = partial / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)  # another file system, or links not allowed
    return set(found)


def _inside(rel: str) -> bool:
    # A listing is ours, but a path read back from disk must still stay in its folder.
    path = Path(rel)
    return not path.is_absolute() and ".." not in path.parts


def fsync_tree(partial: Path, objects: list[CachedObject]) -> None:
    """Flush every file to disk before the rename makes the copy look complete."""

    def flush(rel: str) -> None:
        fd = os.open(partial / rel, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(flush, [o.rel for o in objects]))
    for folder in {(partial / o.rel).parent for o in objects}:
        fsync_dir(folder)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
