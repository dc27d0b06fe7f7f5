"""A sweep's object storage: where its data is staged from and its results are synced to.

The storage library (:mod:`sweeper.storage`) moves bytes; this module decides, for one sweep,
which store, which keys and when: data before a trial trains, a trial's folder when it ends
(whatever its end), the sweep's summary when the sweep ends.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper._layout import (
    ATTEMPT_FILE,
    FFDL_FOLDERS,
    FFDL_LOG_FOLDER,
    LOG_FILE,
    STORE_FILE,
    SUMMARY_FILES,
    training_id,
    trial_dir,
)
from sweeper.storage._client import StoreConfig, register_secrets
from sweeper.storage._fetch import download_prefix, read_object
from sweeper.storage._pending import sync_dir
from sweeper.storage._staging import stage
from sweeper.storage._sync import SyncReport, upload_dir
from sweeper.storage._uri import is_s3_uri, parse_s3_uri, safe_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from ray import ObjectRef

    from sweeper.settings import Settings
    from sweeper.spec import Spec

__all__ = ["SweepStore", "load_sweep_store"]


def _store_config(spec: Spec, settings: Settings) -> StoreConfig:
    s3 = settings.s3
    options: dict[str, Any] = {
        "endpoint_url": s3.endpoint_url or None,
        "region": s3.region or None,
        "addressing_style": s3.addressing_style,
        "max_attempts": s3.max_attempts,
        "upload_attempts": s3.upload_attempts,
    }
    if spec.storage is not None:
        options.update(spec.storage.model_dump(exclude_none=True))
    if spec.uses_legacy_bucket:
        # Such a name is no DNS name: a virtual-hosted request cannot reach it (spec.notes
        # says so once).
        options["addressing_style"] = "path"
    manifest = spec.manifest_store
    if manifest:
        # A legacy manifest's connection block: its endpoint, and its keys (used, never shown).
        options["endpoint_url"] = manifest.endpoint_url or options["endpoint_url"]
        options["region"] = manifest.region or options["region"]
        options["access_key"] = manifest.access_key
        options["secret_key"] = manifest.secret_key
    elif os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        # Keys in the driver's environment reach the trials as a manifest's do, through Ray's
        # object store: a trial's environment is written to Ray's logs (see _compat).
        options["access_key"] = os.environ["AWS_ACCESS_KEY_ID"]
        options["secret_key"] = os.environ["AWS_SECRET_ACCESS_KEY"]
        token = os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN")
        options["session_token"] = token or None
    return StoreConfig(**options)


@dataclass
class SweepStore:
    """The object store of one sweep (``None`` URIs: that side is local).

    Explicit credentials (legacy manifests) never travel inside this object when Ray or Tune
    pickles it (Tune writes its trainable into the sweep's folder): they go to Ray's object
    store once, and trials fetch them from there.
    """

    config: StoreConfig
    cache_dir: str
    data_uri: str | None
    results_uri: str | None
    # (access_key, secret_key, session_token) in Ray's object store.
    secrets_ref: ObjectRef[tuple[str | None, str | None, str | None]] | None = None
    # The spec's results_layout, and its trial count (which names FfDL's training folders).
    layout: str = "sweeper"
    trials: int = 1
    # Every s3:// dataset the trials may stage: data_uri's, or a data choice's.
    datasets: tuple[str, ...] = ()

    @classmethod
    def for_sweep(cls, spec: Spec, settings: Settings) -> SweepStore | None:
        """The sweep's store, or ``None`` when neither data nor results are ``s3://``."""
        datasets = tuple(d for d in spec.datasets if is_s3_uri(d))
        data = None if spec.data_choice or not datasets else datasets[0]
        results = spec.results if spec.results and is_s3_uri(spec.results) else None
        if not datasets and results is None:
            return None
        config = _store_config(spec, settings)
        register_secrets(config.secrets)
        cache = str(Path(settings.s3.cache_dir).expanduser())
        layout = spec.results_layout if results else "sweeper"
        return cls(
            config,
            cache,
            data,
            results,
            layout=layout,
            trials=spec.trial_count(),
            datasets=datasets,
        )

    def share_secrets(self) -> None:
        """Put the explicit credentials in Ray's object store for the trials (Ray is up)."""
        if self.config.secrets and self.secrets_ref is None:
            import ray

            self.secrets_ref = ray.put(
                (self.config.access_key, self.config.secret_key, self.config.session_token)
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["config"] = replace(self.config, access_key=None, secret_key=None, session_token=None)
        return state

    def _config(self) -> StoreConfig:
        if self.config.secrets or self.secrets_ref is None:
            return self.config
        import ray

        access, secret, token = ray.get(self.secrets_ref)
        self.config = replace(
            self.config, access_key=access, secret_key=secret, session_token=token
        )
        register_secrets(self.config.secrets)  # in the trial's process too
        return self.config

    def stage_data(self, uri: str | None = None) -> Path:
        """The staged folder of ``uri`` (default ``data_uri``) on this machine, downloaded
        once per node and version."""
        uri = uri or self.data_uri
        assert uri is not None and uri in (*self.datasets, self.data_uri)
        return stage(uri, self.cache_dir, self._config())

    def target(self, sweep: str, *parts: str) -> str:
        """``s3://bucket/<prefix>/<sweep>/<parts>``; user input cannot leave the prefix."""
        assert self.results_uri is not None
        uri = parse_s3_uri(self.results_uri)
        return f"s3://{uri.bucket}/{safe_key(uri.prefix, sweep, *parts)}"

    def training_target(self, sweep: str, trial: str, *parts: str) -> str:
        """``s3://bucket/<prefix>/<training id>/<parts>``: the trial's folder in FfDL's layout."""
        assert self.results_uri is not None
        uri = parse_s3_uri(self.results_uri)
        folder = training_id(sweep, trial, self.trials)
        return f"s3://{uri.bucket}/{safe_key(uri.prefix, folder, *parts)}"

    def _moved(self) -> dict[str, str]:
        """The trial's folders that go to its training folder instead (ffdl layout)."""
        return dict(FFDL_FOLDERS) if self.layout == "ffdl" else {}

    def _uploads(self, local: Path, sweep: str, trial: str) -> list[tuple[Path, str, list[str]]]:
        """What of a trial's folder ``local`` goes where: (folder, target, its files)."""
        moved = self._moved()
        own = [f for f in _own_files(local) if f.split("/")[0] not in moved]
        uploads = [(local, self.target(sweep, trial), own)]
        if moved and (local / LOG_FILE).is_file():
            uploads.append((local, self.training_target(sweep, trial, FFDL_LOG_FOLDER), [LOG_FILE]))
        for folder, under in moved.items():
            parts = (under,) if under else ()
            target = self.training_target(sweep, trial, *parts)
            uploads.append((local / folder, target, _own_files(local / folder)))
        return uploads

    def sync_trial(
        self, sweep_dir: Path, sweep: str, trial: str, *, skip_existing: bool = False
    ) -> SyncReport:
        """Upload a trial's folder to ``<prefix>/<sweep>/<trial>/`` (pending until verified);
        in the ffdl layout its ``output/`` and ``logs/`` to its training folder instead.

        ``skip_existing`` keeps objects already there that match: the driver's second pass over
        trials whose process may have died before it could upload.
        """
        local = trial_dir(sweep_dir, trial)
        report = SyncReport()
        for folder, target, files in self._uploads(local, sweep, trial):
            if folder != local and not files:
                continue
            done = sync_dir(
                sweep_dir, folder, target, self._config(), files=files, skip_existing=skip_existing
            )
            where = folder.relative_to(local).as_posix()
            report.merge(done, "" if where == "." else where)
        return report

    def upload_trial_files(
        self, sweep_dir: Path, sweep: str, trial: str, files: list[str]
    ) -> SyncReport:
        """Upload some files of a running trial (its checkpoints), changed ones only."""
        local = trial_dir(sweep_dir, trial)
        present = [name for name in files if (local / name).is_file()]
        return upload_dir(
            local, self.target(sweep, trial), self._config(), files=present, skip_existing=True
        )

    def fetch_trial(self, sweep: str, trial: str, dest: Path, local_attempt: int) -> int:
        """Download a trial's checkpoints, ``attempt`` and ``trial.log`` from its synced folder
        into ``dest``, when the store holds a later attempt than ``local_attempt``.

        Returns:
            How many files were downloaded.
        """
        config = self._config()
        raw = read_object(self.target(sweep, trial, ATTEMPT_FILE), config)
        try:
            remote = int((raw or b"0").decode("utf-8").strip() or 0)
        except ValueError:
            remote = 0
        if remote <= local_attempt:
            return 0
        wanted = (ATTEMPT_FILE, LOG_FILE)
        fetched = download_prefix(
            self.target(sweep, trial),
            dest,
            config,
            select=lambda rel: rel in wanted or rel.startswith("checkpoints/"),
        )
        return len(fetched)

    def fetch_files(
        self, sweep: str, trial: str, dest: Path, select: Callable[[str], bool]
    ) -> list[str]:
        """Download the files of a trial's synced folder that ``select(rel)`` picks (``rel``
        relative to the trial's folder, wherever the layout put them)."""
        fetched = download_prefix(self.target(sweep, trial), dest, self._config(), select=select)
        for folder, under in self._moved().items():
            parts = (under,) if under else ()

            def pick(rel: str, folder: str = folder, under: str = under) -> bool:
                # The training folder's top is output/; its learner-1/ within it is logs/.
                nested = not under and rel.startswith(f"{FFDL_LOG_FOLDER}/")
                return not nested and select(f"{folder}/{rel}")

            found = download_prefix(
                self.training_target(sweep, trial, *parts), dest / folder, self._config(),
                select=pick,
            )  # fmt: skip
            fetched += [f"{folder}/{rel}" for rel in found]
        return fetched

    def sync_summary(self, sweep_dir: Path, sweep: str) -> SyncReport:
        """Upload the sweep's results table, spec and store record to ``<prefix>/<sweep>/``."""
        files = [name for name in SUMMARY_FILES if (sweep_dir / name).is_file()]
        return sync_dir(sweep_dir, sweep_dir, self.target(sweep), self._config(), files=files)

    def record(self, sweep_dir: Path) -> None:
        """Write what ``sweeper sync`` needs (endpoint, region, style, URIs; no secrets)."""
        data = {
            "endpoint_url": self.config.endpoint_url,
            "region": self.config.region,
            "addressing_style": self.config.addressing_style,
            "data": self.data_uri if self.data_uri or not self.datasets else list(self.datasets),
            "results": self.results_uri,
        }
        (sweep_dir / STORE_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _own_files(folder: Path) -> list[str]:
    """The files a trial wrote, not the links to the code folder its working view holds."""
    files = []
    for root, _, names in os.walk(folder):  # does not descend into linked folders
        for name in names:
            path = Path(root, name)
            if not path.is_symlink():
                files.append(path.relative_to(folder).as_posix())
    return sorted(files)


def load_sweep_store(sweep_dir: Path) -> StoreConfig | None:
    """The store a finished sweep synced to, from its ``sweep.json`` (credentials: boto3's)."""
    path = sweep_dir / STORE_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return StoreConfig(
        endpoint_url=data.get("endpoint_url"),
        region=data.get("region"),
        addressing_style=data.get("addressing_style") or "auto",
    )
