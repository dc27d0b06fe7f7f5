"""Connections to an S3-compatible store: settings, boto3 clients, and secrets kept out of text.

Credentials come from boto3's standard chain (environment, shared files, instance roles) unless
a legacy manifest supplies them; those explicit values are registered for redaction as soon as a
client is made, so they never reach a log line (any logger of the process), and every message
this package builds passes through :meth:`StoreConfig.redact`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from sweeper.errors import ConfigError

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig

    from sweeper.manifest import ManifestStore
    from sweeper.settings import S3Settings

__all__ = [
    "RedactingFilter",
    "StoreConfig",
    "describe_error",
    "is_transient",
    "make_client",
    "redact",
    "register_secrets",
]

MiB = 1024 * 1024
REDACTED = "***"
_ADDRESSING = ("auto", "path", "virtual")
_RETRY_MODES = ("standard", "adaptive")
_CHECKSUMS = ("when_supported", "when_required")
# Error codes a store returns when it is overloaded or briefly unavailable; worth a retry.
_TRANSIENT_CODES = {
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "PriorRequestNotComplete",
}


@dataclass(frozen=True)
class StoreConfig:
    """How to reach one S3-compatible store (AWS S3, MinIO, IBM COS, ...) and move data.

    Attributes:
        endpoint_url: The store's URL (``http(s)://host:port``); ``None``: AWS.
        region: The signing region; ``None``: boto3's chain (``AWS_DEFAULT_REGION``...).
        addressing_style: ``auto``, ``path`` (MinIO, most on-premises stores) or ``virtual``.
        access_key: Explicit credentials (legacy manifests only); ``None``: boto3's chain.
        secret_key: See ``access_key``.
        session_token: Optional, with explicit credentials.
        retry_mode: botocore's retry mode per request: ``standard`` or ``adaptive``.
        max_attempts: botocore's attempts per request (1 = no retry).
        connect_timeout: Seconds to open a connection.
        read_timeout: Seconds to wait for data on an open connection.
        max_concurrency: Requests in flight per transfer (across files and parts).
        multipart_threshold: Objects of this many bytes or more move in parts.
        multipart_chunksize: The size of those parts (the multipart ETag depends on it).
        upload_attempts: Passes over the files of an upload that failed or did not verify.
        backoff_base: Seconds before the second pass; doubles per pass (with jitter).
        backoff_cap: The longest wait between passes.
        request_checksums: botocore's ``request_checksum_calculation``: ``when_supported`` (a
            CRC32 with every upload, checked by the store) or ``when_required``, for stores
            that refuse those checksums (uploads are still verified by their ETags).
    """

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    retry_mode: str = "standard"
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_concurrency: int = 10
    multipart_threshold: int = 8 * MiB
    multipart_chunksize: int = 8 * MiB
    upload_attempts: int = 4
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    request_checksums: str = "when_supported"

    def __post_init__(self) -> None:
        def fail(name: str, constraint: str, value: Any) -> ConfigError:
            return ConfigError(f"s3.{name} must be {constraint}, got {value!r}", field=f"s3.{name}")

        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise fail("endpoint_url", "an http:// or https:// URL", self.endpoint_url)
        if self.addressing_style not in _ADDRESSING:
            raise fail(
                "addressing_style", "one of " + ", ".join(_ADDRESSING), self.addressing_style
            )
        if self.retry_mode not in _RETRY_MODES:
            raise fail("retry_mode", "one of " + ", ".join(_RETRY_MODES), self.retry_mode)
        if self.request_checksums not in _CHECKSUMS:
            raise fail(
                "request_checksums", "one of " + ", ".join(_CHECKSUMS), self.request_checksums
            )
        if bool(self.access_key) != bool(self.secret_key):
            # The values themselves are never shown.
            raise ConfigError(
                "s3 credentials must give both an access key and a secret key, got only one",
                field="s3.credentials",
            )
        for name in ("max_attempts", "max_concurrency", "upload_attempts"):
            if getattr(self, name) < 1:
                raise fail(name, "at least 1", getattr(self, name))
        if self.multipart_chunksize < 5 * MiB:
            # S3 refuses parts below 5 MiB (except the last).
            raise fail("multipart_chunksize", "at least 5 MiB", self.multipart_chunksize)

    @classmethod
    def from_settings(
        cls, s3: S3Settings | None = None, store: ManifestStore | None = None, **overrides: Any
    ) -> StoreConfig:
        """The store of ``sweeper.toml``'s ``[s3]``, or of a legacy manifest's connection block.

        Args:
            s3: ``settings.s3``; ``None``: AWS with boto3's defaults.
            store: A manifest's object store; its endpoint, region and credentials win.
            **overrides: Any other field (timeouts, concurrency, ...).
        """
        values: dict[str, Any] = {}
        if s3 is not None:
            values.update(
                endpoint_url=s3.endpoint_url or None,
                region=s3.region or None,
                addressing_style=s3.addressing_style,
            )
        if store is not None:
            values.update(
                {
                    key: value
                    for key, value in (
                        ("endpoint_url", store.endpoint_url),
                        ("region", store.region),
                        ("access_key", store.access_key),
                        ("secret_key", store.secret_key),
                    )
                    if value
                }
            )
        values.update(overrides)
        return cls(**values)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The explicit credential values, which no message or file may hold."""
        return tuple(s for s in (self.access_key, self.secret_key, self.session_token) if s)

    def redact(self, text: str) -> str:
        """``text`` with this store's secrets replaced by ``***``."""
        return redact(text, self.secrets)

    def where(self) -> str:
        """The endpoint, for messages: ``http://host:9000`` or ``AWS``."""
        return self.endpoint_url or "AWS"

    def transfer_config(self) -> TransferConfig:
        """boto3's transfer settings for this store (multipart, concurrency)."""
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
            # Bigger reads per write on downloads: fewer system calls for large objects.
            io_chunksize=1 * MiB,
            use_threads=True,
        )


# -- clients -----------------------------------------------------------------------------------

_clients: dict[tuple[int, StoreConfig], Any] = {}
_clients_lock = threading.Lock()


def make_client(config: StoreConfig) -> Any:
    """A boto3 S3 client for ``config``, shared by the threads of this process.

    Clients are thread-safe and cost ~0.1 s to build, so one is kept per config and process
    (the process id is part of the key: a forked child must not reuse its parent's
    connections). Explicit credentials are registered for redaction first.
    """
    register_secrets(config.secrets)
    key = (os.getpid(), config)
    with _clients_lock:  # boto3 sessions are not thread-safe
        client = _clients.get(key)
        if client is None:
            client = _build_client(config)
            _clients[key] = client
    return client


def _build_client(config: StoreConfig) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        aws_session_token=config.session_token,
        region_name=config.region,
    )
    botocore_config = Config(
        retries={"mode": config.retry_mode, "max_attempts": config.max_attempts},
        s3={"addressing_style": config.addressing_style},
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        # One connection per concurrent request, plus listings and verification alongside.
        max_pool_connections=config.max_concurrency + 4,
        tcp_keepalive=True,
        request_checksum_calculation=config.request_checksums,
    )
    return session.client("s3", endpoint_url=config.endpoint_url, config=botocore_config)


# -- errors ------------------------------------------------------------------------------------


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away on its own: the store unreachable, overloaded or slow."""
    from botocore import exceptions as boto
    from s3transfer.exceptions import RetriesExceededError

    # botocore's own ConnectionError (refused, DNS, connect timeout) is not the builtin one.
    network = (
        boto.ConnectionError,
        boto.HTTPClientError,
        boto.IncompleteReadError,
        boto.ChecksumError,
        RetriesExceededError,
        ConnectionError,
        TimeoutError,
    )
    if isinstance(exc, network):
        return True
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in _TRANSIENT_CODES or int(status) >= 500
    return False


def describe_error(exc: BaseException, config: StoreConfig) -> str:
    """``Type: message`` for ``exc``, without ``config``'s secrets."""
    return config.redact(f"{type(exc).__name__}: {exc}")


# -- redaction ---------------------------------------------------------------------------------


def _variants(secret: str) -> set[str]:
    # A secret may reach a message URL-encoded (query strings) or escaped (reprs, JSON).
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret (also URL-encoded or escaped) as ``***``."""
    found = {variant for secret in secrets if secret for variant in _variants(secret)}
    # Longest first, so a secret that contains another is replaced whole.
    for variant in sorted(found, key=len, reverse=True):
        text = text.replace(variant, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes secrets from each record's message and traceback.

    Attach it to a handler (a handler's filters see records of every logger it handles). The
    records of this process are already cleaned once a secret is registered (see
    :func:`register_secrets`); this filter is for handlers in code that does not register.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record, self.secrets)
        return True


def _scrub(record: logging.LogRecord, secrets: Iterable[str]) -> None:
    secrets = tuple(secrets)
    if not secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is logging's to report, not ours
        return
    clean = redact(message, secrets)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact(text, secrets)
        if clean != text:
            record.exc_text = clean
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)


_registered: set[str] = set()
_factory_lock = threading.Lock()
_previous_factory: Any = None


def register_secrets(secrets: Iterable[str]) -> None:
    """Keep ``secrets`` out of every log record this process creates from now on.

    Installs (once) a log record factory that redacts each record's message and traceback, so
    botocore's debug lines, ours and the caller's are all covered whatever handler or capture
    (pytest's ``caplog`` included) receives them.
    """
    global _previous_factory
    new = {s for s in secrets if s} - _registered
    if not new:
        return
    with _factory_lock:
        _registered.update(new)
        if _previous_factory is None:
            _previous_factory = logging.getLogRecordFactory()
            previous = _previous_factory

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                _scrub(record, _registered)
                return record

            logging.setLogRecordFactory(factory)
