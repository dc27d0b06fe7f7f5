"""``s3://bucket/prefix`` URIs, and object keys that can never leave their prefix.

Keys are built from trial and sweep names and from the paths of files a trial wrote, so each
part is checked segment by segment: ``..`` and absolute paths are refused (they would name
objects outside the prefix, or files outside a local folder when a key is mapped back to a
path), and so are backslashes (a second path separator on some systems) and control
characters. Empty and ``.`` segments are dropped, so ``a//./b`` and ``a/b`` name the same key.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

from sweeper.errors import SpecError, StorageError

__all__ = [
    "S3Uri",
    "UnsafeKeyError",
    "is_legacy_bucket",
    "is_s3_uri",
    "legacy_note",
    "parse_s3_uri",
    "relative_path",
    "safe_key",
]

SCHEME = "s3://"
MAX_KEY_BYTES = 1024  # S3's limit on a key's UTF-8 length
# S3's bucket naming rules (IBM COS and MinIO follow them): 3-63 characters, lowercase letters,
# digits, dots and hyphens, starting and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# The legacy names AWS allowed in us-east-1, and FfDL's stores, IBM COS and MinIO still serve:
# up to 255 letters of either case, digits, '.', '-' and '_' (FfDL's own `tf_training_data`).
# They are not DNS names, so only path-style requests reach them.
_LEGACY_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
# Line and paragraph separators break logs and listings as control characters do.
_ODD = {"\u2028", "\u2029"}


class UnsafeKeyError(StorageError, ValueError):
    """A key part would escape its prefix or holds characters keys must not hold."""


@dataclass(frozen=True)
class S3Uri:
    """A parsed ``s3://bucket/prefix``.

    Attributes:
        bucket: The bucket name.
        prefix: The key prefix without leading or trailing ``/`` (``""``: the whole bucket).
    """

    bucket: str
    prefix: str = ""

    @property
    def legacy(self) -> bool:
        """Whether the bucket has a legacy name (``_``, capitals, over 63 characters), which
        only path-style addressing reaches."""
        return is_legacy_bucket(self.bucket)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    @property
    def dir_prefix(self) -> str:
        """The prefix as a folder for listings: ``"a/b/"``, or ``""`` for the whole bucket."""
        return f"{self.prefix}/" if self.prefix else ""

    def key(self, *parts: str) -> str:
        """The key of ``parts`` under this URI's prefix (see :func:`safe_key`)."""
        return safe_key(self.prefix, *parts)

    def child(self, *parts: str) -> S3Uri:
        """This URI with ``parts`` appended to its prefix (see :func:`safe_key`)."""
        return S3Uri(self.bucket, safe_key(self.prefix, *parts))


def is_s3_uri(text: object) -> bool:
    """Whether ``text`` is a string that starts with ``s3://`` (valid or not)."""
    return isinstance(text, str) and text.lower().startswith(SCHEME)


def _bad_char(text: str) -> str | None:
    for char in text:
        if char == "\\" or char in _ODD or unicodedata.category(char) in ("Cc", "Cs"):
            return char
    return None


def _segments(text: str, what: str) -> list[str]:
    """The path segments of ``text``, without empty and ``.`` ones; unsafe ones raise."""
    char = _bad_char(text)
    if char is not None:
        raise UnsafeKeyError(
            f"{what} must not hold backslashes or control characters, got {text!r} "
            f"(character {char!r})"
        )
    segments = [segment for segment in text.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise UnsafeKeyError(f"{what} must not hold '..' segments, got {text!r}")
    return segments


def safe_key(prefix: str, *parts: str) -> str:
    """Join ``parts`` under ``prefix`` into an object key that stays under that prefix.

    Each part may hold ``/`` (a relative path such as ``output/model.pt``).

    Args:
        prefix: The key prefix (``""`` for the bucket's root); checked like the parts.
        *parts: Names and relative paths to append.

    Returns:
        ``prefix/part/...`` with empty and ``.`` segments dropped, or the normalised prefix
        when no parts are given.

    Raises:
        UnsafeKeyError: If a part is absolute, holds ``..``, a backslash or a control
            character, if the parts name nothing (``""``, ``"."``), or if the key would be
            longer than S3 allows.
    """
    segments = _segments(prefix, "the key prefix")
    named = False
    for part in parts:
        if not isinstance(part, str):
            raise UnsafeKeyError(f"a key part must be a string, got {type(part).__name__}")
        if part.startswith("/"):
            raise UnsafeKeyError(f"a key part must be a relative path, got {part!r}")
        found = _segments(part, "a key part")
        named = named or bool(found)
        segments.extend(found)
    if parts and not named:
        raise UnsafeKeyError(f"key parts must name something under the prefix, got {parts!r}")
    key = "/".join(segments)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise UnsafeKeyError(
            f"an object key must be at most {MAX_KEY_BYTES} bytes, got {len(key.encode())} "
            f"({key[:60]!r}...)"
        )
    return key


def relative_path(key: str, prefix: str) -> PurePosixPath:
    """The path of object ``key`` relative to ``prefix``, safe to join to a local folder.

    Raises:
        UnsafeKeyError: If the key is not under the prefix, or its rest would escape a folder
            it is joined to (``..``, backslashes, control characters) or names nothing.
    """
    base = prefix.strip("/")
    if base and not key.startswith(base + "/"):
        raise UnsafeKeyError(f"object key must be under {base + '/'!r}, got {key!r}")
    rest = key[len(base) + 1 :] if base else key
    segments = _segments(rest, "an object key")
    if not segments:
        raise UnsafeKeyError(f"object key must name a file under its prefix, got {key!r}")
    return PurePosixPath(*segments)


def is_legacy_bucket(bucket: str) -> bool:
    """Whether ``bucket`` is a legacy name that is not a DNS name (path-style only)."""
    return not _BUCKET.fullmatch(bucket)


def legacy_note(bucket: str) -> str:
    """What sweeper says, once, about reaching a legacy-named bucket."""
    return (
        f"bucket {bucket!r} has a legacy name (not a DNS name): it is reached with path-style "
        "addressing"
    )


def parse_s3_uri(uri: str, *, file: str | None = None, field: str | None = None) -> S3Uri:
    """Parse and check ``s3://bucket[/prefix]``.

    Args:
        uri: The URI.
        file: The file it came from, for the error message.
        field: The field it came from, for the error message.

    Raises:
        SpecError: If it is not an ``s3://`` URI, the bucket name breaks S3's naming rules, or
            the prefix holds ``..``, backslashes or control characters.
    """
    if not is_s3_uri(uri):
        raise SpecError(
            f"an object store URI must start with s3://, got {uri!r}", file=file, field=field
        )
    rest = uri[len(SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    named = _BUCKET.fullmatch(bucket) or _LEGACY_BUCKET.fullmatch(bucket)
    if not named or ".." in bucket or _IPV4.fullmatch(bucket):
        raise SpecError(
            f"bucket must be a valid S3 bucket name, got {bucket!r} in {uri!r}",
            file=file,
            field=field,
            hint="3-63 lowercase letters, digits, '.' and '-', starting and ending with a "
            "letter or digit (or a legacy name: up to 255, with '_' and capitals too)",
        )
    try:
        prefix = "/".join(_segments(prefix, f"the prefix of {uri!r}"))
    except UnsafeKeyError as exc:
        raise SpecError(str(exc), file=file, field=field) from None
    return S3Uri(bucket, prefix)
