"""Sweeps that grow, on the driver: ``sweeper extend`` and a new sweep's warm start.

An extension is one more session of the same sweep: its journal, its Optuna study (or, when
the space changed, a study of the new space holding the old trials that fit it), its MLflow
parent run and its folder, with more trials, other limits or a changed search space. What an
extension may change is :func:`sweeper.spec._iteration.check_extension`'s rule.

A driver killed while an extension is prepared leaves the sweep as it was or extended, never
in between: the new points and study are written first, then the spec (which is what puts the
extension in force: a resume reads it), then ``state.json``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sweeper._journal import read_journal
from sweeper._layout import SPEC_FILE, earlier_spec
from sweeper.errors import SpecError, UsageError
from sweeper.settings import Settings, load_settings
from sweeper.spec import Spec, load_spec, parse_spec
from sweeper.spec._search import MAX_TRIALS

if TYPE_CHECKING:
    from sweeper.execution._sweep import SweepResult

__all__ = ["extend", "extended_spec"]


def _trials_total(text: str | int, spec: Spec, sweep: str) -> int:
    """``--trials``: a new total, or ``+N`` more than the sweep (run with ``spec``) has."""
    raw = str(text).strip()
    try:
        total = spec.trial_count() + int(raw[1:]) if raw.startswith("+") else int(raw)
    except ValueError:
        total = -1
    if raw.startswith("+") and total <= spec.trial_count():
        total = -1
    if total > MAX_TRIALS:
        raise UsageError(
            f"--trials must make at most {MAX_TRIALS} trials in all, got {raw!r} ({total})",
            file="command line",
            field="--trials",
        )
    if total <= spec.trial_count():
        raise UsageError(
            f"--trials must be +N or a total above the sweep's {spec.trial_count()} trials, "
            f"got {raw!r}",
            file="command line",
            field="--trials",
            hint=f"e.g. sweeper extend {sweep} --trials +10",
        )
    return total


def extended_spec(
    old: Spec,
    sweep: str,
    spec: Spec | None = None,
    *,
    trials: str | int | None = None,
    max_gpu_hours: float | None = None,
    max_duration: str | float | None = None,
) -> tuple[Spec, str, list[str]]:
    """The spec an extension of sweep ``sweep`` (run with ``old``) runs with: ``spec`` (or
    ``old``) with ``trials`` and the limits given, checked against ``old``.

    Returns:
        The new spec, its text (for the sweep's ``spec.yml``), and one line per change.

    Raises:
        SpecError: If the new spec changes more than an extension may, or is invalid.
        UsageError: If ``trials`` is not more than the sweep has, or is given for a grid.
    """
    from sweeper.execution._sweep import spec_text
    from sweeper.spec._iteration import check_extension

    new = spec or old
    if trials is not None and new.search.method == "grid":
        raise UsageError(
            f"--trials must not be given for a grid (its trials are its points), got {trials}",
            file="command line",
            field="--trials",
            hint="add values to the grid's parameters in a new spec: sweeper extend "
            f"{sweep} --spec new.yml",
        )
    text = spec_text(new)
    if trials is not None or max_gpu_hours is not None or max_duration is not None:
        data: dict[str, Any] = yaml.safe_load(text)
        if trials is not None:
            data["search"]["trials"] = _trials_total(trials, old, sweep)
        limits = data.setdefault("limits", {}) or {}
        data["limits"] = limits
        for key, value in (("max_gpu_hours", max_gpu_hours), ("max_duration", max_duration)):
            if value is not None:
                limits[key] = value
        given = spec is not None and spec.label
        try:
            new = parse_spec(
                data, file=new.label if given else "command line", base_dir=new.base_dir
            )
        except SpecError as error:
            flag = {
                "search.trials": "--trials",
                "limits.max_gpu_hours": "--max-gpu-hours",
                "limits.max_duration": "--max-duration",
            }.get(error.field or "")
            if flag is None:
                raise
            raise SpecError(
                error.message.replace(error.field or "", flag, 1),
                file="command line",
                field=flag,
                hint=error.hint,
            ) from None
        text = yaml.safe_dump(data, sort_keys=False)
    changes = check_extension(old, new, sweep)
    if not changes:
        raise UsageError(
            f"an extension must change something, got the sweep's own spec ({sweep})",
            file="command line",
            hint="give --trials +N, --spec new.yml, --max-gpu-hours or --max-duration; "
            f"to continue it as it is: sweeper resume {sweep}",
        )
    return new, text, changes


def extend(
    sweep: str | Path,
    settings: Settings | None = None,
    *,
    spec: Spec | str | Path | None = None,
    trials: str | int | None = None,
    max_gpu_hours: float | None = None,
    max_duration: str | float | None = None,
    retry_failed: bool = False,
    address: str | None = None,
    echo: Callable[[str], None] | None = print,
    live: bool | None = None,
    dashboard: bool | None = None,
) -> SweepResult:
    """Continue a finished or halted sweep with more trials, other limits or a changed space.

    The sweep's own trials stay (they keep their names; new ones are numbered after them),
    its Optuna study goes on (with a changed space, the old trials that fit it are carried
    into a study of the new space), its MLflow parent run gets the new child runs, and its
    GPU budget counts every session.

    Args:
        sweep: The sweep's folder or id.
        settings: Project settings (the MLflow store must be the sweep's).
        spec: A changed spec (or its path): only its search space, ``trials`` and ``limits``
            may differ from the sweep's.
        trials: The new total, or ``"+N"`` for N more (not for a grid: add its values).
        max_gpu_hours: A new ``limits.max_gpu_hours`` (GPU-hours over all sessions).
        max_duration: A new ``limits.max_duration`` (wall time of each session).
        retry_failed: Run trials that failed for good again too.
        address: A Ray cluster to use instead of ``settings.ray.address``.
        echo: Where progress lines go (``None``: silent).
        live: As for :func:`sweeper.run`.
        dashboard: As for :func:`sweeper.run`.

    Raises:
        SpecError: If the changed spec changes more than an extension may (nothing runs).
        UsageError: If nothing is extended, or ``trials`` is not more than the sweep has.
        SweepError: If the sweep is running, or Ray or MLflow cannot be used.
    """
    from sweeper.execution._sweep import (
        _check_cluster,
        _check_limits,
        _drive,
        _sweep_tags,
        reopen_tracker,
        settle,
        spec_hash,
        stopped_sweep,
    )
    from sweeper.search import carry, grown_points, seed_study, study_name
    from sweeper.search._optuna import space_key
    from sweeper.search._space import read_points, write_points
    from sweeper.storage._sweep import SweepStore

    settings = settings or load_settings()
    sweep_dir, state = stopped_sweep(sweep, settings, "extend")
    old = load_spec(sweep_dir / SPEC_FILE, base_dir=Path(state.base_dir or "."))
    given = load_spec(spec) if isinstance(spec, (str, Path)) else spec
    new, text, changes = extended_spec(
        old,
        state.sweep,
        given,
        trials=trials,
        max_gpu_hours=max_gpu_hours,
        max_duration=max_duration,
    )
    _check_limits(new, settings)
    _check_cluster(new, settings, address)
    records = read_journal(sweep_dir)
    say = echo or (lambda line: None)
    initial = [p for p in new.search.initial_points if p not in old.search.initial_points]
    count = len(state.extensions) + 1
    tags = {"sweeper.extensions": str(count), "sweeper.trials": str(new.trial_count())}
    tracker = reopen_tracker(old, state, sweep_dir, settings, tags)
    settle(old, state, sweep_dir, records, tracker)
    # What the extension writes, the spec last: until it is replaced the sweep is as it was.
    points = read_points(sweep_dir)
    if points is not None:
        points = grown_points(new, points[: old.trial_count()], initial)
        write_points(sweep_dir, points)
    elif space_key(new) != space_key(old):
        carried, _ = carry(new, records.values(), state.sweep, own=True)
        name = f"{state.sweep}.{space_key(new)}"
        seed_study(sweep_dir, name, new, carried, initial, replace=True)
        changes.append(f"optuna study {name}: {len(carried)} earlier trials carried over")
    elif initial:
        seed_study(sweep_dir, study_name(sweep_dir, state.sweep, old), new, [], initial)
    before = earlier_spec(sweep_dir, count)
    before.parent.mkdir(exist_ok=True)
    shutil.copyfile(sweep_dir / SPEC_FILE, before)
    partial = sweep_dir / (SPEC_FILE + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(sweep_dir / SPEC_FILE)
    new = load_spec(sweep_dir / SPEC_FILE, base_dir=Path(state.base_dir or "."))
    state.spec_hash = spec_hash(new)
    state.extensions.append(
        {
            "at": time.time(),
            "session": state.sessions + 1,
            "trials": new.trial_count(),
            "changes": changes,
            "spec": str(before.relative_to(sweep_dir)),
        }
    )
    state.save(sweep_dir)
    say(f"extending sweep {state.sweep} (extension {count}, session {state.sessions + 1})")
    for line in changes:
        say(f"  {line}")
    store = SweepStore.for_sweep(new, settings)
    return _drive(
        new,
        settings,
        state,
        sweep_dir,
        tracker,
        store,
        _sweep_tags(new, state.sweep, store),
        points,
        records,
        retry_failed=retry_failed,
        address=address,
        echo=echo,
        live=live,
        dashboard=dashboard,
    )
