"""Watson Machine Learning training definitions, read as the FfDL manifests they describe.

WML's format (``model_definition`` with ``framework`` and ``execution``, and
``training_data_reference`` / ``training_results_reference``) says what an FfDL manifest says
with other names; IBM's own converter (FfDL's ``etc/converter``) maps one onto the other. This
module does that mapping on the driver, so :mod:`sweeper.manifest` has one format to read, and
names the definition's own fields in errors about it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from sweeper.errors import SpecError

__all__ = ["definition_field", "is_training_definition", "to_manifest"]

_TOP_KEYS = ("model_definition", "training_data_reference", "training_results_reference")
_DEFINITION_KEYS = ("name", "author", "description", "framework", "execution")
_FRAMEWORK_KEYS = ("name", "version", "runtimes")
_EXECUTION_KEYS = ("command", "compute_configuration")
_COMPUTE_KEYS = ("name", "nodes")
_REFERENCE_KEYS = ("connection", "name", "source", "target", "type")
_CONNECTION_KEYS = ("access_key_id", "endpoint_url", "secret_access_key", "region")
# WML's compute configurations: a GPU model and a count (k80, k80x2, p100x2, v100x4, ...).
_COMPUTE = re.compile(r"(?P<model>k80|p100|v100)(?:x(?P<count>[1-9]))?", re.IGNORECASE)
# Where each manifest field the conversion writes came from in the definition.
_FIELDS = {
    "name": "model_definition.name",
    "description": "model_definition.description",
    "framework": "model_definition.framework",
    "framework.name": "model_definition.framework.name",
    "framework.version": "model_definition.framework.version",
    "framework.command": "model_definition.execution.command",
    "gpus": "model_definition.execution.compute_configuration.name",
    "learners": "model_definition.execution.compute_configuration.nodes",
    "data_stores.0.training_data.container": "training_data_reference.source.bucket",
    "data_stores.0.training_results.container": "training_results_reference.target.bucket",
    "data_stores.0.connection.auth_url": "training_data_reference.connection.endpoint_url",
    "data_stores.0.connection.user_name": "training_data_reference.connection.access_key_id",
    "data_stores.0.connection.password": "training_data_reference.connection.secret_access_key",
}


def is_training_definition(data: Any) -> bool:
    """Whether a parsed YAML document is a WML training definition (``model_definition:``)."""
    return isinstance(data, dict) and isinstance(data.get("model_definition"), dict)


def definition_field(field: str) -> str:
    """The definition's own name for a field of the manifest :func:`to_manifest` made."""
    return _FIELDS.get(field, field)


def _keys(block: Any, allowed: tuple[str, ...], where: str, file: str | None) -> dict[str, Any]:
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise SpecError(f"{where} must be a mapping, got {block!r}", file=file, field=where)
    for key in block:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            raise SpecError(
                f"{where} keys must be one of {', '.join(allowed)}, got {key!r}",
                file=file,
                field=f"{where}.{key}" if where else str(key),
                hint=f"did you mean {close[0]!r}?" if close else "remove it",
            )
    return block


def _gpus(compute: dict[str, Any], file: str | None) -> int | None:
    """The GPU count a compute configuration's name stands for (``None``: no name)."""
    name = compute.get("name")
    if name is None:
        return None
    match = _COMPUTE.fullmatch(str(name))
    if match is None:
        raise SpecError(
            f"model_definition.execution.compute_configuration.name must be a WML compute "
            f"configuration such as k80, k80x2, p100, v100x2, got {name!r}",
            file=file,
            field="model_definition.execution.compute_configuration.name",
            hint="the name sets the GPU count (x2: two); Ray gives trials any free GPU",
        )
    return int(match.group("count") or 1)


def _reference(data: dict[str, Any], key: str, bucket_key: str, file: str | None) -> dict:
    block = _keys(data.get(key), _REFERENCE_KEYS, key, file)
    kind = block.get("type")
    if block and kind not in (None, "s3"):
        raise SpecError(
            f"{key}.type must be s3, got {kind!r}",
            file=file,
            field=f"{key}.type",
            hint="sweeper reads training data from S3-compatible stores",
        )
    _keys(block.get("connection"), _CONNECTION_KEYS, f"{key}.connection", file)
    _keys(block.get(bucket_key), ("bucket",), f"{key}.{bucket_key}", file)
    return block


def to_manifest(data: dict[str, Any], *, file: str | None = None) -> dict[str, Any]:
    """The FfDL manifest a WML training definition describes.

    Raises:
        SpecError: For keys the format does not have, a compute configuration that is no WML
            name, references of another type than ``s3``, or data and results in two stores.
    """
    _keys(data, _TOP_KEYS, "", file)
    definition = _keys(data["model_definition"], _DEFINITION_KEYS, "model_definition", file)
    framework = _keys(
        definition.get("framework"), _FRAMEWORK_KEYS, "model_definition.framework", file
    )
    execution = _keys(
        definition.get("execution"), _EXECUTION_KEYS, "model_definition.execution", file
    )
    compute = _keys(
        execution.get("compute_configuration"),
        _COMPUTE_KEYS,
        "model_definition.execution.compute_configuration",
        file,
    )
    manifest: dict[str, Any] = {
        "name": definition.get("name"),
        "description": definition.get("description"),
        "framework": {
            "name": framework.get("name"),
            "version": framework.get("version"),
            "command": execution.get("command"),
        },
    }
    gpus = _gpus(compute, file)
    if gpus is not None:
        manifest["gpus"] = gpus
    if compute.get("nodes") is not None:
        manifest["learners"] = compute["nodes"]
    source = _reference(data, "training_data_reference", "source", file)
    target = _reference(data, "training_results_reference", "target", file)
    if source or target:
        connection = dict(source.get("connection") or target.get("connection") or {})
        other = target.get("connection")
        if source.get("connection") and other and other != source["connection"]:
            raise SpecError(
                "training_results_reference.connection must be the training data's "
                "connection, got another one",
                file=file,
                field="training_results_reference.connection",
                hint="sweeper reaches one object store per sweep; copy the data there",
            )
        store: dict[str, Any] = {
            "id": source.get("name") or target.get("name") or "wml",
            "type": "s3_datastore",
            "connection": {
                "auth_url": connection.get("endpoint_url"),
                "user_name": connection.get("access_key_id"),
                "password": connection.get("secret_access_key"),
                "region": connection.get("region"),
            },
        }
        if (source.get("source") or {}).get("bucket"):
            store["training_data"] = {"container": source["source"]["bucket"]}
        if (target.get("target") or {}).get("bucket"):
            store["training_results"] = {"container": target["target"]["bucket"]}
        manifest["data_stores"] = [store]
    return manifest
