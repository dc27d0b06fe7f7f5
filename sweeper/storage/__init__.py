"""Object storage: training data staged in from ``s3://`` URIs, results synced out.

Works with AWS S3 and S3-compatible stores (MinIO, IBM COS) through boto3; endpoints, regions
and addressing styles come from :class:`StoreConfig`, credentials from boto3's standard chain
(or, for legacy manifests only, explicit values that are redacted from every message).

- :func:`stage` downloads a dataset once per node and data version into a shared cache.
- :func:`upload_dir` uploads and verifies a folder; :func:`sync_dir` does so with a durable
  record of what is pending, and :func:`sync_pending` finishes what an outage left.
"""

from __future__ import annotations

from sweeper.errors import StorageError
from sweeper.storage._client import (
    RedactingFilter,
    StoreConfig,
    is_transient,
    make_client,
    redact,
    register_secrets,
)
from sweeper.storage._fetch import download_prefix, read_object
from sweeper.storage._pending import (
    PENDING_FILE,
    PendingUpload,
    mark_confirmed,
    mark_pending,
    pending_uploads,
    sync_dir,
    sync_pending,
)
from sweeper.storage._staging import StageResult, stage, stage_dataset
from sweeper.storage._sync import SyncReport, upload_dir
from sweeper.storage._uri import (
    S3Uri,
    UnsafeKeyError,
    is_s3_uri,
    legacy_note,
    parse_s3_uri,
    relative_path,
    safe_key,
)
from sweeper.storage._verify import local_etag

__all__ = [
    "PENDING_FILE",
    "PendingUpload",
    "RedactingFilter",
    "S3Uri",
    "StageResult",
    "StorageError",
    "StoreConfig",
    "SyncReport",
    "UnsafeKeyError",
    "download_prefix",
    "is_s3_uri",
    "is_transient",
    "legacy_note",
    "local_etag",
    "make_client",
    "mark_confirmed",
    "mark_pending",
    "parse_s3_uri",
    "pending_uploads",
    "read_object",
    "redact",
    "register_secrets",
    "relative_path",
    "safe_key",
    "stage",
    "stage_dataset",
    "sync_dir",
    "sync_pending",
    "upload_dir",
]
