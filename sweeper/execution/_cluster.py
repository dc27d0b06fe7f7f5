"""Running a sweep on an existing Ray cluster: the address, and the code shipped to the workers.

A sweep on a cluster connects to the cluster's GCS (``auto`` or ``HOST:PORT``) instead of
starting a local Ray. Its code travels in Ray's runtime environment: the spec's base folder as
``working_dir`` (what relative paths in the spec name), the ``sweeper`` package as
``py_modules`` (``sweeper.frameworks`` included, through its link; workers need no install of
sweeper), and the spec's ``requirements`` as ``pip``.

Ray Client (``ray://``) is refused: through it, Tune 2.x runs its whole control loop in an actor
on the head node (``TunerInternal`` as a remote actor), so sweeper's callbacks, journal and
MLflow writer would run there, away from the driver. ``ray job submit`` runs the driver on the
head instead, where everything works as with ``auto``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper import _compat
from sweeper.errors import ConfigError, SpecError
from sweeper.settings import address_problem

if TYPE_CHECKING:
    from sweeper.settings import Settings
    from sweeper.spec import Spec

__all__ = [
    "check_address",
    "check_installed",
    "runtime_env",
]

# Never shipped to the workers: version control, caches, virtual environments, MLflow stores.
_EXCLUDES = [
    ".git",
    "**/__pycache__",
    "**/*.pyc",
    ".venv",
    "venv",
    ".tox",
    ".pytest_cache",
    ".ruff_cache",
    "mlruns",
    "mlartifacts",
    "*.db",
]


def check_address(address: str | None, *, file: str | None, field: str) -> None:
    """Refuse an address sweeper cannot drive a sweep through.

    Raises:
        ConfigError: For ``ray://`` (Ray Client) and other URLs.
    """
    if not address:
        return
    found = address_problem(address)
    if found:
        problem, hint = found
        message = problem.replace("ray.address", field, 1)
        raise ConfigError(message, file=file, field=field, hint=hint)


def _package_dir(name: str) -> str:
    import importlib

    module = importlib.import_module(name)
    return str(Path(module.__file__ or "").resolve().parent)


def _inside(path: Path, base: Path) -> str | None:
    """``path`` relative to ``base`` (POSIX), if it lies inside it."""
    try:
        rel = path.resolve().relative_to(base)
    except ValueError:
        return None
    return rel.as_posix() or None


def _job_runtime_env() -> dict[str, Any]:
    """The runtime environment of the Ray job this driver runs in (``ray job submit``)."""
    raw = os.environ.get(_compat.job_config_env_var())
    if not raw:
        return {}
    try:
        return dict(json.loads(raw).get("runtime_env") or {})
    except (ValueError, AttributeError):
        return {}


def runtime_env(spec: Spec, settings: Settings, results_root: Path) -> dict[str, Any]:
    """The runtime environment that ships a sweep's code to a cluster's workers.

    Args:
        spec: The sweep's spec: its base folder becomes ``working_dir`` and its
            ``requirements`` ``pip``.
        settings: Project settings (a local MLflow store in the base folder is left out).
        results_root: Where sweep folders are written (left out when inside the base folder).

    Returns:
        Keys for ``ray.init(runtime_env=...)``, without those the Ray job this driver runs in
        already sets (``ray job submit --working-dir .``): Ray refuses to merge a key set twice.
    """
    base = spec.base_dir.resolve()
    excludes = list(_EXCLUDES)
    results = _inside(results_root, base)
    if results:
        excludes.append(f"/{results}")
    uri = settings.mlflow.tracking_uri
    if uri.startswith("sqlite:///"):
        store = _inside(Path(uri[len("sqlite:///") :]), base)
        if store:
            excludes.append(f"/{store}")
    env: dict[str, Any] = {
        "working_dir": str(base),
        "excludes": excludes,
        "py_modules": [_package_dir("sweeper")],
    }
    requirements = spec.pip_requirements()
    if requirements:
        env["pip"] = requirements
    job = _job_runtime_env()
    for key in list(env):
        if key in job or (key == "excludes" and "working_dir" in job):
            del env[key]
    return env


def check_installed(spec: Spec) -> None:
    """On a local Ray, the spec's ``requirements`` must already be installed: check them.

    A local Ray runs trials in this Python environment (Ray's ``pip`` runtime environment would
    build a virtual environment from PyPI for every sweep); on a cluster, Ray installs them.

    Raises:
        SpecError: Naming the first requirement that is missing or of another version.
    """
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    for line in spec.pip_requirements():
        if line.startswith("-"):
            continue  # a pip option (--index-url ...): nothing to check locally
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            found = version(requirement.name)
        except PackageNotFoundError:
            found = None
        if found is None or (
            requirement.specifier and not requirement.specifier.contains(found, prereleases=True)
        ):
            got = "not installed" if found is None else f"{found} installed"
            raise SpecError(
                f"requirements must be installed to run on a local Ray, got {line!r} ({got})",
                file=spec.label,
                field="requirements",
                hint=f"pip install {line!r}, or run on a cluster (--address), where Ray "
                "installs them",
            )
