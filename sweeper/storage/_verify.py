"""Checking uploaded objects against their local files.

S3, and the stores that copy its API, give each object an ETag: the MD5 of a single-part
object, or for a multipart one the MD5 of its parts' binary MD5s followed by ``-<parts>``.
sweeper computes the same locally, with the part size it uploaded with, and compares it with
the ETag the store answered the upload with (the MD5 of what it stored: no extra request), or
where there is no such answer with the object's ETag and size from a listing (or HEAD).
Objects encrypted with KMS or customer keys have ETags that are no MD5: they are checked by
size only.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.storage._client import StoreConfig, describe_error
from sweeper.storage._uri import S3Uri

__all__ = ["local_etag"]

_HEAD_AT_MOST = 16  # look up at most this many objects one by one, more with a listing
_READ = 1024 * 1024
_OPAQUE_ETAG_SSE = ("aws:kms", "aws:kms:dsse")


@dataclass
class UploadFile:
    """A local file and the key it is uploaded to."""

    rel: str
    path: Path
    key: str
    size: int = 0
    etag: Future[str] | None = None  # its local ETag, computed in a thread pool


def local_etag(path: str | Path, threshold: int, chunksize: int) -> str:
    """The ETag S3 gives ``path`` uploaded by boto3 with this threshold and part size.

    A file smaller than ``threshold`` is one PUT: the ETag is its MD5. A larger one is a
    multipart upload in parts of ``chunksize`` (as s3transfer adjusts it for S3's limit of
    10,000 parts): the MD5 of the parts' binary MD5s, then ``-`` and the number of parts.
    """
    from s3transfer.utils import ChunksizeAdjuster

    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        if size < threshold:
            digest = hashlib.md5(usedforsecurity=False)
            for block in iter(lambda: handle.read(_READ), b""):
                digest.update(block)
            return digest.hexdigest()
        part = ChunksizeAdjuster().adjust_chunksize(chunksize, size)
        parts = []
        while True:
            digest = hashlib.md5(usedforsecurity=False)
            left = part
            while left:
                block = handle.read(min(_READ, left))
                if not block:
                    break
                digest.update(block)
                left -= len(block)
            if left == part:
                break
            parts.append(digest.digest())
            if left:
                break
    combined = hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest()
    return f"{combined}-{len(parts)}"


def hash_later(item: UploadFile, config: StoreConfig, hasher: ThreadPoolExecutor) -> None:
    """Start computing ``item``'s local ETag (hashlib releases the GIL: it runs alongside)."""
    item.etag = hasher.submit(
        local_etag, item.path, config.multipart_threshold, config.multipart_chunksize
    )


# -- the store's answers to uploads ------------------------------------------------------------


class Receipts:
    """The ETag the store answered each PutObject and CompleteMultipartUpload of a client with.

    botocore's documented events carry them: the request's bucket and key are noted in the
    request context before its parameters are built, and the answer read after the call.
    """

    _OPERATIONS = ("PutObject", "CompleteMultipartUpload")

    def __init__(self, client: Any) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], dict[str, Any]] = {}
        for operation in self._OPERATIONS:
            client.meta.events.register(f"before-parameter-build.s3.{operation}", self._before)
            client.meta.events.register(f"after-call.s3.{operation}", self._after)

    def _before(self, params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context["sweeper_object"] = (params.get("Bucket"), params.get("Key"))

    def _after(
        self, http_response: Any, parsed: Any, context: dict[str, Any], **kwargs: Any
    ) -> None:
        where = context.get("sweeper_object")
        status = getattr(http_response, "status_code", 500)
        if where is None or status >= 300 or not isinstance(parsed, dict):
            return
        if "Error" in parsed or not parsed.get("ETag"):
            return
        opaque = parsed.get("ServerSideEncryption") in _OPAQUE_ETAG_SSE or bool(
            parsed.get("SSECustomerAlgorithm")
        )
        with self._lock:
            self._answers[where] = {"size": None, "etag": parsed["ETag"], "opaque": opaque}

    def forget(self, bucket: str, keys: list[str]) -> None:
        """Drop any answers for ``keys`` (before they are uploaded again)."""
        with self._lock:
            for key in keys:
                self._answers.pop((bucket, key), None)

    def take(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The answer to the last upload of ``bucket/key``, once."""
        with self._lock:
            return self._answers.pop((bucket, key), None)


_receipts: weakref.WeakKeyDictionary[Any, Receipts] = weakref.WeakKeyDictionary()
_receipts_lock = threading.Lock()


def receipts_for(client: Any) -> Receipts:
    """The :class:`Receipts` of ``client`` (set up on first use)."""
    with _receipts_lock:
        receipts = _receipts.get(client)
        if receipts is None:
            receipts = _receipts[client] = Receipts(client)
        return receipts


# -- verification ------------------------------------------------------------------------------


def verify(
    client: Any,
    target: S3Uri,
    items: list[UploadFile],
    config: StoreConfig,
    hasher: ThreadPoolExecutor,
    *,
    receipts: Receipts | None = None,
) -> dict[str, str]:
    """Compare each item's object with its file; return why those that differ do.

    Args:
        client: The store's client.
        target: Where the items went (its bucket).
        items: The files.
        config: The store (for the part size and messages).
        hasher: Runs the local ETags not computed yet.
        receipts: The store's answers to the uploads just made; ``None``: the items were not
            just uploaded (a check of what is already there), so a listing decides.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    problems: dict[str, str] = {}
    unanswered = []
    for item in items:
        answer = receipts.take(target.bucket, item.key) if receipts else None
        if answer is None or answer["opaque"]:
            unanswered.append(item)  # the size is needed, or there was no answer to read
            continue
        problem = _compare(client, target.bucket, item, answer, config, hasher)
        if problem:
            problems[item.rel] = problem
    if not unanswered:
        return problems
    found: Mapping[str, dict[str, Any] | None]  # None: no such object
    try:
        if len(unanswered) <= _HEAD_AT_MOST:
            found = {item.key: _head(client, target.bucket, item.key) for item in unanswered}
        else:
            found = _listing(client, target, unanswered)
        for item in unanswered:
            seen = found.get(item.key)
            if seen is None and receipts is not None and item.key not in found:
                seen = _head(client, target.bucket, item.key)  # listed before it landed?
            problem = _compare(client, target.bucket, item, seen, config, hasher)
            if problem:
                problems[item.rel] = problem
    except (BotoCoreError, ClientError) as exc:
        reason = f"not verified: {describe_error(exc, config)}"
        problems.update(dict.fromkeys((item.rel for item in unanswered), reason))
    return problems


def _head(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    opaque = head.get("ServerSideEncryption") in _OPAQUE_ETAG_SSE or bool(
        head.get("SSECustomerAlgorithm")
    )
    return {"size": head["ContentLength"], "etag": head.get("ETag", ""), "opaque": opaque}


def _listing(client: Any, target: S3Uri, items: list[UploadFile]) -> dict[str, dict[str, Any]]:
    """The objects under the keys' common folder, from a listing (1,000 per request)."""
    common = items[0].key.split("/")[:-1]
    for item in items[1:]:
        folder = item.key.split("/")[:-1]
        same = 0
        while same < min(len(common), len(folder)) and common[same] == folder[same]:
            same += 1
        common = common[:same]
    prefix = "".join(segment + "/" for segment in common)
    found: dict[str, dict[str, Any]] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=target.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = {"size": obj["Size"], "etag": obj.get("ETag", ""), "opaque": None}
    return found


def _compare(
    client: Any,
    bucket: str,
    item: UploadFile,
    found: dict[str, Any] | None,
    config: StoreConfig,
    hasher: ThreadPoolExecutor,
) -> str | None:
    if found is None:
        return f"not verified: {item.key} is missing after its upload"
    if found["size"] is not None and found["size"] != item.size:
        return f"not verified: {item.key} holds {found['size']} bytes, the file {item.size}"
    if item.etag is None:
        hash_later(item, config, hasher)
    assert item.etag is not None
    try:
        expected = item.etag.result()
    except OSError as exc:
        return f"not verified: the file must be readable, got {type(exc).__name__}: {exc}"
    etag = str(found["etag"]).strip('"')
    if etag == expected:
        return None
    if found["opaque"] is None:
        found = _head(client, bucket, item.key) or found  # a listing shows no encryption
    if found["opaque"]:
        return None  # the ETag is no MD5 here; the size matched
    return f"not verified: {item.key} has ETag {etag}, the file {expected}"
