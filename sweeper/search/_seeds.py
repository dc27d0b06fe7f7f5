"""Earlier trials as a new search space takes them: what extends a sweep and warm-starts one.

A trial carries over when it ended with the objectives' values (completed) or was stopped
early with the one objective's (stopped: Optuna's pruned), and its parameters fit the new
space (:meth:`sweeper.spec._conditions.ConditionalSpace.fit`, with the spec's defaults for the
dimensions it lacks). Optuna's study takes carried trials as finished ones
(:func:`sweeper.search._optuna.seed_study`); grid and random search skip points already
evaluated (``search.skip_evaluated``). Ray-free.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from sweeper._journal import TrialRecord
    from sweeper.settings import Settings
    from sweeper.spec import Spec

__all__ = [
    "Carried",
    "Seed",
    "carry",
    "point_key",
    "seed_lines",
    "seed_tags",
    "warm_start",
    "warm_start_seeds",
]


class Carried(NamedTuple):
    """An earlier trial in a new space.

    Attributes:
        source: ``<sweep>/<trial>``: where it ran.
        name: Its name in the sweep it joins: its own, when it is that sweep's trial (an
            extension); ``None`` for a trial of another sweep (a warm start).
        params: Its values of the new space's active dimensions.
        state: ``completed`` or ``stopped`` (stopped early: Optuna's pruned).
        values: The objectives' values, in the spec's order (completed trials).
        step: Its last reported step.
        last: The first objective's last value (what a stopped trial is judged by).
        metrics: Everything it reported last (for constraints).
    """

    source: str
    name: str | None
    params: dict[str, Any]
    state: str
    values: list[float] | None
    step: int
    last: float | None
    metrics: dict[str, float]


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def carry(
    spec: Spec, records: Iterable[TrialRecord], sweep: str, *, own: bool = False
) -> tuple[list[Carried], int]:
    """The ended trials of sweep ``sweep`` that ``spec``'s space takes.

    Args:
        spec: The spec of the sweep they join.
        records: The earlier sweep's journal records.
        sweep: The earlier sweep's id.
        own: Whether they are the joined sweep's own trials (they keep their names).

    Returns:
        The carried trials, in trial order, and how many ended trials were left out (their
        values do not fit the space, or they lack the objectives' values).
    """
    names = [o.name for o in spec.search.objectives]
    several = len(names) > 1
    carried: list[Carried] = []
    left_out = 0
    for record in sorted(records, key=lambda r: r.name):
        if record.state not in ("completed", "stopped"):
            continue
        params = spec.conditional_space.fit(record.params, spec.defaults)
        values = [_number(record.metrics.get(name)) for name in names]
        last = values[0]
        if record.state == "completed" and all(v is not None for v in values):
            state, kept = "completed", [v for v in values if v is not None]
        elif record.state == "stopped" and not several and last is not None:
            state, kept = "stopped", None  # judged by its last value
        else:
            params = None
        if params is None:
            left_out += 1
            continue
        metrics = {k: v for k, v in record.metrics.items() if _number(v) is not None}
        carried.append(
            Carried(
                f"{sweep}/{record.name}",
                record.name if own else None,
                params,
                state,
                kept,
                record.steps,
                last,
                metrics,
            )
        )
    return carried, left_out


def point_key(params: Mapping[str, Any]) -> str:
    """A point's identity for ``skip_evaluated``: ``1`` and ``1.0`` are one value."""

    def plain(value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return value

    return json.dumps({k: plain(v) for k, v in sorted(params.items())}, default=str)


class Seed(NamedTuple):
    """An earlier sweep that warm-starts a new one.

    Attributes:
        sweep: Its id.
        folder: Its folder.
        picked: How it was found, when it was not named exactly (see ``resolve_sweep``).
        carried: Its trials in the new space.
        left_out: Its ended trials that do not fit the new space or lack its objectives.
    """

    sweep: str
    folder: Path
    picked: str | None
    carried: list[Carried]
    left_out: int


def warm_start(
    spec: Spec, names: Sequence[tuple[str, str, str | None]], settings: Settings
) -> list[Seed]:
    """The earlier sweeps ``names`` name, each with its trials that ``spec``'s space takes.

    Args:
        spec: The new sweep's spec.
        names: Each sweep as the user named it, with where (a field, ``--warm-start``) and in
            which file (``None``: the command line).
        settings: Project settings (``[results] dir`` is where ids are looked up).

    Raises:
        SpecError: If a name matches no sweep, or several (the message says which field).
    """
    from sweeper._journal import read_journal
    from sweeper._layout import resolve_sweep
    from sweeper.errors import NotFoundError, SpecError

    seeds: list[Seed] = []
    for ref, field, file in names:
        try:
            found = resolve_sweep(ref, settings)
        except NotFoundError as error:
            message = error.message.removeprefix("sweep ")
            raise SpecError(
                f"{field} {message}", file=file or "command line", field=field, hint=error.hint
            ) from None
        if any(seed.folder == found.folder for seed in seeds):
            continue
        carried, left_out = carry(spec, read_journal(found.folder).values(), found.sweep)
        seeds.append(Seed(found.sweep, found.folder, found.picked, carried, left_out))
    return seeds


def warm_start_seeds(spec: Spec, settings: Settings, named: Sequence[str]) -> list[Seed]:
    """The sweeps ``search.warm_start`` and ``--warm-start`` name, with their trials that fit
    the spec's space; looked up where this spec's sweeps go."""
    file = spec.label or "experiment.yml"
    names: list[tuple[str, str, str | None]] = [
        (n, f"search.warm_start.{i}", file) for i, n in enumerate(spec.search.warm_start)
    ]
    names += [(n, "--warm-start", None) for n in named]
    if not names:
        return []
    root = spec.results_folder(settings.results.dir)
    here = settings.model_copy(
        update={"results": settings.results.model_copy(update={"dir": str(root)})}
    )
    return warm_start(spec, names, here)


def seed_tags(seeds: list[Seed]) -> dict[str, str]:
    """The parent run's tags that say which sweeps seeded it, and with how many trials."""
    if not seeds:
        return {}
    return {
        "sweeper.warm_start": ", ".join(seed.sweep for seed in seeds),
        "sweeper.warm_start.trials": str(sum(len(seed.carried) for seed in seeds)),
    }


def seed_lines(spec: Spec, seeds: list[Seed]) -> list[str]:
    """What the terminal says about a warm start, before the sweep's first line."""
    lines = []
    for seed in seeds:
        how = f" ({seed.picked})" if seed.picked else ""
        unfit = f"; {seed.left_out} did not fit the space" if seed.left_out else ""
        lines.append(f"warm start: {len(seed.carried)} trials of sweep {seed.sweep}{how}{unfit}")
    if seeds and spec.search.method != "optuna" and not spec.search.skip_evaluated:
        lines.append(
            f"note: a {spec.search.method} search uses earlier trials only to skip their "
            "points: set search.skip_evaluated: true"
        )
    return lines
