"""Absolute paths a training program names that stand for its trial's data or results folder.

FfDL mounted a job's data bucket at ``/mnt/data/<bucket>``, its results bucket at
``/mnt/results/<bucket>`` and a volume its learners shared at ``/job`` (``$JOB_STATE_DIR``),
and its users' code and prototxt files name those paths. A spec's ``mounts`` maps such a path
to the trial's data folder (``data``), results folder (``results``, the trial's
``$RESULT_DIR``) or the folder its learners share (``job``, the trial's ``$JOB_STATE_DIR``);
manifests get FfDL's three. Nothing is mounted: the
paths are rewritten where a trial reads them, never in the user's files and never in the
machine's ``/mnt`` (no root needed):

- in the command line (on the Ray actor, as the trial starts);
- in the prototxt files the Caffe adapter renders for each trial;
- in the trial's working view of the code folder, where each text file that names one is a
  rewritten copy instead of a link (:func:`link_code`).

The driver scans the same files at load, so ``sweeper validate`` says what is mapped where.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "FFDL_DATA_MOUNT",
    "FFDL_JOB_MOUNT",
    "FFDL_RESULTS_MOUNT",
    "find_mentions",
    "link_code",
    "mentioned",
    "mount_note",
    "mount_path",
    "rewrite",
    "trial_folders",
]

# FfDL's mount points (its lifecycle manager's learner/envvars.go).
FFDL_DATA_MOUNT = "/mnt/data"
FFDL_RESULTS_MOUNT = "/mnt/results"
FFDL_JOB_MOUNT = "/job"  # learner_deployment_helpers.go: PodLevelJobDir
# The scan is bounded: a code folder is source and small configuration files, not datasets.
_MAX_FILE = 1 << 20
_MAX_FILES = 5000
_WHAT = {
    "data": "the trial's data folder ($DATA_DIR)",
    "results": "the trial's results folder ($RESULT_DIR)",
    "job": "the folder the trial's learners share ($JOB_STATE_DIR)",
}


def _pattern(mounts: Iterable[str]) -> re.Pattern[str] | None:
    return _compiled(frozenset(mounts))


@functools.lru_cache(maxsize=32)
def _compiled(paths: frozenset[str]) -> re.Pattern[str] | None:
    # Built once per set of mounts: a trial rewrites every variable of its environment.
    # Longest first, and only whole path components: /mnt/data/a must not rewrite /mnt/data/ab,
    # nor /job a path that merely ends in it (/home/me/job); file:///job/x is still one.
    if not paths:
        return None
    ordered = sorted(paths, key=len, reverse=True)
    return re.compile(
        r"(?<![\w.~-])(" + "|".join(re.escape(p) for p in ordered) + r")(?=/|$|[^\w.-])"
    )


def rewrite(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with each mount path of ``mapping`` replaced by its folder."""
    pattern = _pattern(mapping)
    return text if pattern is None else pattern.sub(lambda m: mapping[m.group(1)], text)


def mentioned(text: str, mounts: Iterable[str]) -> set[str]:
    """The mount paths ``text`` names."""
    pattern = _pattern(mounts)
    return set() if pattern is None else set(pattern.findall(text))


def mount_path(path: str, mounts: Mapping[str, str]) -> tuple[str, str] | None:
    """What ``path`` stands for (``data`` or ``results``) and its rest below the mount path,
    or ``None`` when it is under none of ``mounts``."""
    pattern = _pattern(mounts)
    match = pattern.match(path) if pattern is not None else None
    rest = path[match.end() :] if match is not None else ""
    if match is None or (rest and not rest.startswith("/")):
        return None
    return mounts[match.group(1)], rest.lstrip("/")


def trial_folders(
    mounts: Mapping[str, str],
    data_dir: Path | str,
    results_dir: Path | str,
    job_dir: Path | str | None = None,
) -> dict[str, str]:
    """Each mount path of a spec and the folder it stands for in one trial (on its learner).

    Without ``job_dir`` (an adapter that has no such folder), ``job`` paths stay as they are.
    """
    folders = {"data": str(data_dir), "results": str(results_dir)}
    if job_dir is not None:
        folders["job"] = str(job_dir)
    return {path: folders[target] for path, target in mounts.items() if target in folders}


def _code_files(root: Path, skip: set[str]) -> list[Path]:
    """The files of a code folder worth scanning (relative paths), links followed once."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        top = Path(folder) == root
        dirs[:] = sorted(d for d in dirs if not (top and d in skip) and not d.startswith("."))
        for name in sorted(names):
            if top and name in skip:
                continue
            path = Path(folder, name)
            try:
                if path.stat().st_size > _MAX_FILE:
                    continue
            except OSError:
                continue
            found.append(path.relative_to(root))
            if len(found) >= _MAX_FILES:
                return found
    return found


def find_mentions(root: Path, mounts: Iterable[str], skip: set[str]) -> dict[Path, set[str]]:
    """The text files under ``root`` (relative paths) that name a mount path, and which ones."""
    pattern = _pattern(mounts)
    if pattern is None:
        return {}
    mentions: dict[Path, set[str]] = {}
    for rel in _code_files(root, skip):
        try:
            data = (root / rel).read_bytes()
        except OSError:
            continue
        if b"\0" in data:
            continue  # binary: a model, an archive
        found = set(pattern.findall(data.decode("utf-8", errors="replace")))
        if found:
            mentions[rel] = found
    return mentions


def link_code(
    source: Path, dest: Path, mapping: Mapping[str, str], skip: set[str], mentions: set[Path]
) -> None:
    """Fill ``dest`` with links to ``source``'s entries, except the files in ``mentions``
    (relative to ``source``), which are written rewritten, and the folders holding them,
    which are made for real so their other entries can be links."""
    for entry in sorted(source.iterdir()):
        if entry.name in skip:
            continue
        target = dest / entry.name
        if target.exists() or target.is_symlink():
            continue
        rel = entry.relative_to(source)
        if rel in mentions:
            text = entry.read_text(encoding="utf-8", errors="surrogateescape")
            target.write_text(rewrite(text, mapping), encoding="utf-8", errors="surrogateescape")
            target.chmod(entry.stat().st_mode & 0o777)  # a script stays executable
        elif entry.is_dir() and any(m.parts[: len(rel.parts)] == rel.parts for m in mentions):
            target.mkdir()
            inner = {m.relative_to(rel) for m in mentions if m.parts[: len(rel.parts)] == rel.parts}
            link_code(entry, target, mapping, set(), inner)
        else:
            target.symlink_to(entry)


def mount_note(mounts: Mapping[str, str], where: Mapping[str, list[str]]) -> str | None:
    """What ``validate`` says: each mount path, what it stands for and where it is named."""
    parts = []
    for path, target in mounts.items():
        named = where.get(path)
        if not named:
            continue
        shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
        parts.append(f"{path} is {_WHAT[target]} (named in {shown})")
    if not parts:
        return None
    return "paths mapped for each trial, without touching the machine: " + "; ".join(parts)
