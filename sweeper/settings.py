"""Project settings: ``sweeper.toml``, built-in defaults and ``SWEEPER_*`` overrides.

Lookup order: the ``--config`` file, else ``./sweeper.toml``, else the built-in defaults. An
environment variable ``SWEEPER_<SECTION>_<KEY>`` (e.g. ``SWEEPER_MLFLOW_TRACKING_URI``) then
overrides that single key.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from sweeper.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as the `tomli` package (a dependency there)
    import tomli as tomllib

__all__ = ["Settings", "address_problem", "load_settings"]

DEFAULT_FILE = "sweeper.toml"
ENV_PREFIX = "SWEEPER_"
# Variables sweeper sets for trials (and its tests read) that are not settings.
_NOT_SETTINGS = frozenset({"SWEEPER_TRIAL", "SWEEPER_SWEEP"})
_NOT_SETTINGS_PREFIXES = ("SWEEPER_PARAM_", "SWEEPER_TESTS_", "SWEEPER_KIT_")


_CLIENT_HINT = (
    "Ray Client runs Tune's control loop on the head, away from sweeper's journal and MLflow "
    "writer; submit the sweep instead: ray job submit --address http://HOST:8265 "
    "--working-dir . -- sweeper run experiment.yml"
)


def address_problem(address: str) -> tuple[str, str] | None:
    """Why ``address`` cannot be used, and what to do instead (``None``: it can).

    ``auto`` and ``HOST:PORT`` (a cluster's GCS) are accepted; ``ray://`` and other URLs are not.
    """
    if "://" not in address:
        return None
    hint = _CLIENT_HINT if address.startswith("ray://") else "e.g. auto or 10.0.0.1:6379"
    return f"ray.address must be auto or HOST:PORT (Ray's GCS), got {address!r}", hint


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RaySettings(_Section):
    """``[ray]``: where trials run."""

    address: str = ""
    num_cpus: int | None = Field(None, ge=1)
    num_gpus: int | None = Field(None, ge=0)
    dashboard: bool = True
    dashboard_port: int = Field(8265, ge=0, le=65535)

    @field_validator("address")
    @classmethod
    def _gcs_address(cls, value: str) -> str:
        from sweeper._validation import invalid

        found = address_problem(value)
        if found:
            raise invalid(found[0], "ray.address", found[1])
        return value


class MlflowSettings(_Section):
    """``[mlflow]``: where params and metrics are recorded."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = ""
    # Log each trial's files (params.json, trial.log, error.txt, output/) to its child run.
    log_artifacts: bool = True


class ResultsSettings(_Section):
    """``[results]``: where each sweep's folder is written."""

    dir: str = "results"


class S3Settings(_Section):
    """``[s3]``: the S3-compatible endpoint for ``s3://`` URIs."""

    endpoint_url: str = ""
    region: str = ""
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    cache_dir: str = "~/.cache/sweeper/data"
    max_attempts: int = Field(5, ge=1)
    upload_attempts: int = Field(4, ge=1)
    # Seconds between uploads of a running trial's checkpoints to an s3:// results store
    # (at a report, changed files only), so a retry on another node continues from them.
    checkpoint_interval: float = Field(30.0, ge=0)


class LimitsSettings(_Section):
    """``[limits]``: caps that apply to every sweep."""

    max_concurrency: int | None = Field(None, ge=1)
    # GPUs a sweep may hold at once, across its trials; trials beyond it queue.
    max_gpus: int | None = Field(None, ge=1)


class ConsoleSettings(_Section):
    """``[console]``: what ``sweeper run`` shows while a sweep runs."""

    progress_interval: float = Field(30.0, ge=0)


class Settings(_Section):
    """All of ``sweeper.toml``; every key has a default."""

    ray: RaySettings = Field(default_factory=RaySettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    _source: str | None = PrivateAttr(default=None)
    _origins: dict[tuple[str, str], str] = PrivateAttr(default_factory=dict)

    def origin(self, section: str, key: str) -> str:
        """Where a key's value came from, as errors name it: ``environment:
        SWEEPER_RAY_ADDRESS``, ``sweeper.toml: ray.address`` or ``default: ray.address``."""
        variable = self._origins.get((section, key))
        if variable:
            return f"environment: {variable}"
        if self._source is not None:
            return f"{self._source}: {section}.{key}"
        return f"default: {section}.{key}"

    @property
    def source(self) -> str | None:
        """The settings file that was read, or ``None`` for defaults only."""
        return self._source


def _env_overrides(
    data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    """Apply ``SWEEPER_*`` variables to ``data``; also return which keys came from which."""
    origins: dict[tuple[str, str], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section, model in Settings.model_fields.items():
            annotation = model.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, _Section)):
                continue
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                if key not in annotation.model_fields:
                    raise ConfigError(
                        f"{name} must name a key of [{section}] "
                        f"({', '.join(annotation.model_fields)}), got {key!r}",
                        file="environment",
                        field=name,
                    )
                # An empty value unsets a key whose default is unset (the optional numbers).
                unset = value == "" and annotation.model_fields[key].default is None
                data.setdefault(section, {})[key] = None if unset else value
                origins[(section, key)] = name
                break
        else:
            if name in _NOT_SETTINGS or name.startswith(_NOT_SETTINGS_PREFIXES):
                continue
            sections = [
                section
                for section, model in Settings.model_fields.items()
                if isinstance(model.annotation, type) and issubclass(model.annotation, _Section)
            ]
            close = difflib.get_close_matches(rest, [f"{s}_" for s in sections], n=1, cutoff=0.5)
            raise ConfigError(
                f"{name} must name a setting SWEEPER_<SECTION>_<KEY> of a section "
                f"{', '.join(sections)}, got {rest!r}",
                file="environment",
                field=name,
                hint=f"did you mean SWEEPER_{close[0].upper()}...?" if close else "unset it",
            )
    return data, origins


def load_settings(
    config: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load settings from ``config`` (or ``./sweeper.toml``), defaults and the environment.

    Raises:
        ConfigError: If the file is unreadable or a key or value is invalid.
    """
    environ = os.environ if environ is None else environ
    path = Path(config) if config is not None else Path(DEFAULT_FILE)
    data: dict[str, Any] = {}
    file = None
    if config is not None and not path.is_file():
        raise ConfigError(f"config file must exist, got {str(path)!r}", field="--config")
    if path.is_file():
        file = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config must be valid TOML, got {exc}", file=file) from None
    data, origins = _env_overrides(data, environ)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        from sweeper._validation import translate_error

        loc = tuple(str(part) for part in exc.errors()[0]["loc"][:2])
        variable = origins.get(loc) if len(loc) == 2 else None
        error = translate_error(
            exc, file=file or "environment", root=Settings, error_cls=ConfigError
        )
        if variable:
            error = ConfigError(error.message, file="environment", field=variable, hint=error.hint)
        raise error from None
    settings._source = file
    settings._origins = origins
    return settings
