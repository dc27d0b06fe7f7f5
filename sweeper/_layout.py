"""The sweep folder's layout: every file name in it, how trials are named, finding a sweep.

The one statement of what a sweep leaves on disk; every other module (the driver, the code in
the trials' Ray actors, the read-only commands, the adapters through ``TrialContext``) takes its
names from here. It imports nothing heavier than the standard library, so ``sweeper list``,
``status``, ``show``, ``logs`` and the rest never pay for Ray::

    <results>/<sweep>/            a sweep's folder; its name is the sweep's id
      spec.yml                    the spec as loaded (the sweep's own copy)
      specs/spec-1.yml            the spec before extension 1 (`sweeper extend`), and so on
      state.json                  status, sessions, driver, MLflow parent run
      trials.jsonl                the journal: one line per trial state change
      points.json                 grid and random points, drawn up front
      optuna.journal              the Optuna study (Optuna's journal storage)
      sweep.json                  where the results store is (never credentials)
      results.csv                 one row per trial, written at the end of a session
      stop-requested              present while `sweeper stop` asks the sweep to halt
      sync-pending.json           uploads still owed to the results store
      trials/trial-0001/
        params.json  trial.log  error.txt  attempt  output/  checkpoints/

A command trial's folder also holds ``logs/`` and ``job-state/`` (the original service's
``$LOG_DIR`` and ``$JOB_STATE_DIR``) and ``work/``, its view of the code folder.

A trial of several learners (``resources.learners``) is learner 1's folder as above; learner
N (2, 3, ...) logs to ``learner-N.log`` beside ``trial.log`` and, for a command, has its own
``work-learner-N/`` and ``logs/learner-N/``; ``job-state/`` is the one folder they share.

In an ``s3://`` results store a trial's folder goes to ``<prefix>/<sweep>/<trial>/``; with
``results_layout: ffdl`` (manifests) its ``output/`` goes to ``<prefix>/<training id>/`` and its
``logs/`` (and a copy of ``trial.log``) to ``<prefix>/<training id>/learner-1/`` instead, as
FfDL laid out a training's results.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from sweeper.settings import Settings

__all__ = [
    "ATTEMPT_FILE",
    "CHECKPOINT_DIR",
    "ERROR_FILE",
    "FFDL_FOLDERS",
    "FFDL_LOG_FOLDER",
    "JOB_STATE_DIR",
    "JOURNAL_FILE",
    "LOGS_DIR",
    "LOG_FILE",
    "NAME_KEY",
    "NOT_CODE",
    "OUTPUT_DIR",
    "PARAMS_FILE",
    "PENDING_FILE",
    "POINTS_FILE",
    "POINT_KEY",
    "RESULTS_FILE",
    "SAVED_DIR",
    "SAVED_FILE",
    "SPECS_DIR",
    "SPEC_FILE",
    "STATE_FILE",
    "STOP_FILE",
    "STORE_FILE",
    "STUDY_FILE",
    "SUMMARY_FILES",
    "TRIALS_DIR",
    "WORK_DIR",
    "FoundSweep",
    "earlier_spec",
    "find_sweep",
    "is_sweep_dir",
    "is_trial_name",
    "learner_log",
    "learner_logs_dir",
    "learner_work_dir",
    "resolve_sweep",
    "training_id",
    "trial_dir",
    "trial_name",
    "trial_number",
]

# The sweep's own files.
SPEC_FILE = "spec.yml"
# The specs an extended sweep ran with before each extension.
SPECS_DIR = "specs"
STATE_FILE = "state.json"
JOURNAL_FILE = "trials.jsonl"
POINTS_FILE = "points.json"
STUDY_FILE = "optuna.journal"
STORE_FILE = "sweep.json"
RESULTS_FILE = "results.csv"
STOP_FILE = "stop-requested"
PENDING_FILE = "sync-pending.json"
TRIALS_DIR = "trials"
# What goes to the results store as the sweep's summary; trials' folders are synced one by one.
SUMMARY_FILES = (
    RESULTS_FILE,
    SPEC_FILE,
    STORE_FILE,
    STATE_FILE,
    JOURNAL_FILE,
    POINTS_FILE,
    STUDY_FILE,
)

# A trial's folder.
PARAMS_FILE = "params.json"
LOG_FILE = "trial.log"
ERROR_FILE = "error.txt"
ATTEMPT_FILE = "attempt"
OUTPUT_DIR = "output"
CHECKPOINT_DIR = "checkpoints"
# Under a trial's checkpoints/: what ctx.save wrote (the checkpoint Tune copies between
# trials of a population-based schedule), and its file.
SAVED_DIR = "sweeper-state"
SAVED_FILE = "state.pkl"
# A command trial's: the original service's $LOG_DIR and $JOB_STATE_DIR, and its code view.
LOGS_DIR = "logs"
JOB_STATE_DIR = "job-state"
WORK_DIR = "work"


def learner_log(learner: int) -> str:
    """The log of learner ``learner`` (1, 2, ...) of a trial: learner 1's is the trial's."""
    return LOG_FILE if learner == 1 else f"learner-{learner}.log"


def learner_work_dir(learner: int) -> str:
    """A command learner's view of the code folder: each has its own (its config.json)."""
    return WORK_DIR if learner == 1 else f"{WORK_DIR}-learner-{learner}"


def learner_logs_dir(learner: int) -> str:
    """A command learner's ``$LOG_DIR``."""
    return LOGS_DIR if learner == 1 else f"{LOGS_DIR}/learner-{learner}"


# What a trial's working view of the code folder leaves out (sweeper's own files there), and
# what the scan for mount paths skips.
NOT_CODE = frozenset({"results", "mlruns", "mlartifacts", "mlflow.db", ".git"})

# Keys sweeper adds to Tune's trial config: the index of a grid or random point, and the name
# an Optuna trial was given. Both decide the trial's name (see sweeper.execution._plan.TrialNamer).
POINT_KEY = "point"
NAME_KEY = "trial_name"

_TRIAL_NAME = re.compile(r"trial-(\d{4,})")


def trial_name(index: int) -> str:
    """The name of the trial that runs point ``index`` (0-based): ``trial-0001`` for 0."""
    return f"trial-{index + 1:04d}"


def trial_number(name: str) -> int:
    """The number in a trial's name: 7 for ``trial-0007``.

    Raises:
        ValueError: If ``name`` is not a trial's name.
    """
    match = _TRIAL_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"trial name must look like trial-0001, got {name!r}")
    return int(match.group(1))


def training_id(sweep: str, trial: str, trials: int) -> str:
    """A trial's FfDL training id, its folder in the ``ffdl`` results layout (and its
    ``$TRAINING_ID``): ``training-<sweep>`` when the sweep is one trial (a manifest's usual
    run), else ``training-<sweep>-0007``."""
    return f"training-{sweep}" if trials == 1 else f"training-{sweep}-{trial_number(trial):04d}"


# In the ffdl results layout: what of a trial's folder goes to its training folder, and where
# (FfDL's own: $RESULT_DIR at the top, $LOG_DIR moved into learner-1/), and the trial's log,
# which also stays in the trial's own folder (resume reads it there).
FFDL_LOG_FOLDER = "learner-1"
FFDL_FOLDERS = {OUTPUT_DIR: "", LOGS_DIR: FFDL_LOG_FOLDER}


def is_trial_name(name: str) -> bool:
    """Whether ``name`` has the shape of a trial's name (``trial-`` and four or more digits)."""
    return _TRIAL_NAME.fullmatch(name) is not None


def trial_dir(sweep_dir: Path, name: str) -> Path:
    """The folder of trial ``name`` in the sweep folder ``sweep_dir``."""
    return sweep_dir / TRIALS_DIR / name


def earlier_spec(sweep_dir: Path, extension: int) -> Path:
    """The spec a sweep ran with before its ``extension``-th extension (1, 2, ...)."""
    return sweep_dir / SPECS_DIR / f"spec-{extension}.yml"


def is_sweep_dir(folder: Path) -> bool:
    """Whether ``folder`` is a sweep's folder (it holds ``state.json``)."""
    return (folder / STATE_FILE).is_file()


def find_sweep(ref: str | Path | None, settings: Settings | None = None) -> Path:
    """A sweep's folder from what a user types for it (see :func:`resolve_sweep`)."""
    return resolve_sweep(ref, settings).folder


class FoundSweep(NamedTuple):
    """The sweep a reference named, and how (``picked``: ``None`` when named exactly)."""

    folder: Path
    picked: str | None = None

    @property
    def sweep(self) -> str:
        return self.folder.name


def resolve_sweep(ref: str | Path | None, settings: Settings | None = None) -> FoundSweep:
    """The one lookup rule of every command that names a sweep.

    In order: a sweep's folder; its id (a folder under ``[results] dir``); a spec's ``name``
    (its newest sweep); a unique prefix of an id; nothing (the newest sweep of all). Only the
    first two are exact: for the others, ``picked`` says which sweep was taken and why, for the
    command to say so first.

    Raises:
        NotFoundError: If no sweep matches, or a prefix matches several (they are listed).
    """
    from sweeper.errors import NotFoundError
    from sweeper.settings import load_settings

    settings = settings or load_settings()
    root = Path(settings.results.dir).expanduser()
    if ref is not None and str(ref) != "":
        for folder in (Path(ref), root / str(ref)):
            if is_sweep_dir(folder):
                # Absolute, whatever the user typed: Ray and pyarrow refuse a relative path.
                return FoundSweep(folder.resolve())
    sweeps = _sweeps_under(root)
    if ref is None or str(ref) == "":
        if not sweeps:
            raise NotFoundError(
                f"sweep must be named, got nothing, and there is no sweep under {root}",
                hint="run one first: sweeper run experiment.yml",
            )
        newest = max(sweeps, key=lambda s: s[2])
        return FoundSweep(newest[0].resolve(), f"the newest sweep under {root}")
    text = str(ref)
    named = [s for s in sweeps if s[1] == text]
    if named:
        newest = max(named, key=lambda s: s[2])
        how = f"the newest of {len(named)} sweeps of spec {text}" if len(named) > 1 else None
        return FoundSweep(newest[0].resolve(), how or f"the only sweep of spec {text}")
    prefixed = sorted(s[0].name for s in sweeps if s[0].name.startswith(text))
    if len(prefixed) == 1:
        return FoundSweep((root / prefixed[0]).resolve(), f"the only id that starts {text!r}")
    if prefixed:
        shown = ", ".join(prefixed[:5]) + (
            f" and {len(prefixed) - 5} more" if len(prefixed) > 5 else ""
        )
        raise NotFoundError(
            f"sweep must name one sweep, got {text!r}, which starts {len(prefixed)} ids: {shown}",
            hint="type more of the id, or a spec's name for its newest sweep",
        )
    raise NotFoundError(
        f"sweep must be a sweep folder, id, id prefix or spec name, got {text!r}",
        hint=f"sweeps are folders under {root}",
    )


def _sweeps_under(root: Path) -> list[tuple[Path, str, float]]:
    """(folder, spec name, created) of each sweep under ``root``, from its ``state.json``
    (read directly: naming a sweep must not cost an import of the journal's readers)."""
    import json

    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a sweep, or one whose state is damaged: `sweeper list` says so
        if isinstance(state, dict):
            created = state.get("created")
            stamp = float(created) if isinstance(created, (int, float)) else 0.0
            found.append((folder, str(state.get("spec") or ""), stamp))
    return found
