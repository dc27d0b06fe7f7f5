"""Reading back what a sweep synced: one small object, or the files under a prefix.

Retries and resumed trials use it to continue from checkpoints another node uploaded; the
driver uses it to log a trial's files to MLflow when the trial ran on another machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sweeper.errors import StorageError
from sweeper.storage._client import StoreConfig, describe_error, make_client
from sweeper.storage._uri import S3Uri, parse_s3_uri

__all__ = ["download_prefix", "read_object"]

_MISSING = ("404", "NoSuchKey", "NotFound")


def read_object(uri: str | S3Uri, config: StoreConfig | None = None) -> bytes | None:
    """The bytes of one object, or ``None`` if it does not exist.

    Raises:
        StorageError: If the store cannot be read.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    target = uri if isinstance(uri, S3Uri) else parse_s3_uri(uri)
    config = config or StoreConfig()
    try:
        answer = make_client(config).get_object(Bucket=target.bucket, Key=target.prefix)
        return answer["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise StorageError(
            f"results must be readable at {target}, got {describe_error(exc, config)}"
        ) from None
    except BotoCoreError as exc:
        raise StorageError(
            f"results must be readable at {target}, got {describe_error(exc, config)}"
        ) from None


def download_prefix(
    uri: str | S3Uri,
    dest: str | Path,
    config: StoreConfig | None = None,
    *,
    select: Callable[[str], bool] | None = None,
) -> list[str]:
    """Download the objects under ``uri`` into ``dest`` (keys relative to the prefix).

    Args:
        uri: ``s3://bucket/prefix``.
        dest: The local folder; files there are replaced.
        config: The store.
        select: Which relative paths to fetch (default: every one).

    Returns:
        The relative paths downloaded (none when nothing is under ``uri``).

    Raises:
        StorageError: If the store cannot be listed or read, or a key would leave ``dest``.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from sweeper.storage._staging import _download, list_prefix

    target = uri if isinstance(uri, S3Uri) else parse_s3_uri(uri)
    config = config or StoreConfig()
    client = make_client(config)
    try:
        objects = [
            o for o in list_prefix(client, target, "results") if select is None or select(o.rel)
        ]
    except (BotoCoreError, ClientError) as exc:
        raise StorageError(
            f"results must be readable at {target}, got {describe_error(exc, config)}"
        ) from None
    if objects:
        Path(dest).mkdir(parents=True, exist_ok=True)
        _download(client, target, objects, Path(dest), set(), config)
    return [o.rel for o in objects]
