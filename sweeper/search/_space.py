"""The points of grid and random search, drawn up front, and the space as Ray Tune's.

Only :func:`tune_space` imports Ray (when called): drawing and reading points is Ray-free.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeper._layout import POINT_KEY, POINTS_FILE
from sweeper.search._seeds import point_key
from sweeper.spec import (
    Choice,
    IntRange,
    LogUniform,
    Parameter,
    Uniform,
    grid_count,
    grid_value,
    grid_values,
    same_value,
)

if TYPE_CHECKING:
    from sweeper.spec import Spec

__all__ = [
    "grid_points",
    "grown_points",
    "random_points",
    "read_points",
    "sweep_points",
    "trial_params",
    "tune_space",
    "write_points",
]


def tune_space(
    spec: Spec, indexes: list[int] | None = None, points: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Tune's ``param_space``: for grid and random search, one dimension over point indexes.

    sweeper, not Tune, decides which point is ``trial-0001``: ``sweeper plan`` and the sweep
    agree, and a resumed sweep runs exactly the points still missing (``indexes``). An Optuna
    search draws its configurations from the searcher instead.

    With a population-based ``schedule``, the parameters it mutates are in the config too
    (Tune's PBT changes config keys), each the value of the trial's point in ``points`` (a
    resumed trial's: its latest, after the exploits of earlier sessions).
    """
    from ray import tune

    if spec.search.method == "optuna":
        return {}
    if indexes is None:
        indexes = list(range(spec.trial_count()))
    space: dict[str, Any] = {POINT_KEY: tune.grid_search(list(indexes))}
    if spec.schedule is not None:
        assert points is not None
        for name in spec.mutations:
            space[name] = tune.sample_from(_PointValue(points, spec.constants, name))
    return space


class _PointValue:
    """``tune.sample_from``'s function: the value of ``name`` at the config's point (a class:
    Tune pickles its space)."""

    def __init__(self, points: list[dict[str, Any]], constants: dict[str, Any], name: str):
        self.points = points
        self.constants = constants
        self.name = name

    def __call__(self, spec: Any) -> Any:
        point = self.points[spec.config[POINT_KEY]]
        return point.get(self.name, self.constants.get(self.name))


def grid_points(spec: Spec) -> list[dict[str, Any]]:
    """Every point of a grid search in the order trials run: like nested loops over the
    parameters in the order the spec declares them (the last one varies fastest). With
    conditions, only the valid combinations, each without its inactive parameters."""
    dims = spec.dimensions
    conditional = spec.conditional_space
    if conditional.conditions:
        return [
            {k: v for k, v in point.items() if k in dims} for point in conditional.grid_points()
        ]
    values = [grid_values(param) or [] for param in dims.values()]
    return [dict(zip(dims, combo, strict=True)) for combo in itertools.product(*values)]


def _grid_order(
    spec: Spec,
    points: list[dict[str, Any]],
    initial: list[dict[str, Any]],
    evaluated: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """A grid's ``points``: those matching ``initial`` first (in its order), then the others
    in grid order without the ``evaluated`` ones when ``search.skip_evaluated`` is set."""
    first: list[dict[str, Any]] = []
    taken: set[int] = set()
    for fixed in initial:
        for i, point in enumerate(points):
            if i not in taken and all(
                k in point and same_value(point[k], v) for k, v in fixed.items()
            ):
                first.append(point)
                taken.add(i)
    skip = {point_key(p) for p in evaluated} if spec.search.skip_evaluated else set()
    rest = [p for i, p in enumerate(points) if i not in taken and point_key(p) not in skip]
    return first + rest


def random_points(spec: Spec, evaluated: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The random search's ``trials`` points, drawn up front with ``search.seed``: its
    ``initial_points`` first (the dimensions they leave out drawn), then random draws, without
    the ``evaluated`` ones when ``search.skip_evaluated`` is set.

    Drawing them before the sweep makes the points part of the sweep's record, so a resumed
    sweep restarts an interrupted trial with its own values, and ``sweeper plan`` prints them.
    """
    return _random_points(spec, spec.trial_count(), [], spec.search.initial_points, evaluated)


def _random_points(
    spec: Spec,
    total: int,
    old: list[dict[str, Any]],
    initial: list[dict[str, Any]],
    evaluated: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """``old`` and new points up to ``total``: ``initial`` ones, then draws. The draws of
    ``old`` are made again first, so a sweep of 6 points extended to 12 gets the points a
    sweep of 12 would have had."""
    rng = np.random.default_rng(spec.search.seed)
    conditional, constants = spec.conditional_space, spec.constants

    def draw(fixed: dict[str, Any]) -> dict[str, Any]:
        # Parents are drawn before their children, and an inactive parameter draws nothing.
        return conditional.sample(
            lambda name, param: fixed[name] if name in fixed else _plain(_draw(param, rng)),
            constants,
        )

    for _ in old:
        draw({})
    points = list(old)
    for fixed in initial[: max(0, total - len(points))]:
        points.append(draw(fixed))
    skip = {point_key(p) for p in evaluated} if spec.search.skip_evaluated else set()
    skip |= {point_key(p) for p in points} if skip else set()
    # A small discrete space may hold fewer unseen points than asked for: stop looking then.
    tries = 100 * max(0, total - len(points)) + 1000
    while len(points) < total and tries > 0:
        tries -= 1
        point = draw({})
        if skip:
            key = point_key(point)
            if key in skip:
                continue
            skip.add(key)
        points.append(point)
    return points


def _draw(param: Parameter, rng: np.random.Generator) -> Any:
    """One value of ``param``: the numpy calls Ray Tune's domain for it makes, in its order.

    Written out rather than taken from ``ray.tune`` so that ``sweeper plan`` prints the points
    without importing Ray; ``tests/search/test_space.py`` holds these draws equal to Tune's
    (``tune.choice`` over the declared values for a choice or a range with a step, since Tune's
    quantized domains round from 0 rather than from ``low``; ``uniform``, ``loguniform``, and
    ``randint``/``lograndint`` with the spec's inclusive upper bound + 1).
    """
    if isinstance(param, Choice):
        return param.values[_index(len(param.values), rng)]
    if isinstance(param, Uniform):
        if param.step:
            return grid_value(param, _index(grid_count(param) or 0, rng))
        return float(rng.uniform(param.low, param.high, size=1)[0])
    if isinstance(param, LogUniform):
        logs = rng.uniform(np.log(param.low), np.log(param.high), size=1)
        return float(np.exp(logs)[0])
    if isinstance(param, IntRange):
        if param.log:
            logs = rng.uniform(np.log(param.low), np.log(param.high + 1), size=1)
            return int(np.floor(np.exp(logs)).astype(int)[0])
        if param.step != 1:
            return grid_value(param, _index(grid_count(param) or 0, rng))
        return int(rng.integers(param.low, param.high + 1, size=1)[0])
    raise TypeError(param)


def _index(count: int, rng: np.random.Generator) -> int:
    # Tune's choice draws an index (numpy would coerce the values to one dtype), with
    # rng.choice(np.arange(count)): the same draw as this, without listing every index.
    return int(rng.integers(0, count, size=1)[0])


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value  # numpy scalars to Python's


def sweep_points(
    spec: Spec, evaluated: Iterable[dict[str, Any]] = ()
) -> list[dict[str, Any]] | None:
    """Every trial's values for grid and random search (``initial_points`` first; without
    the ``evaluated`` points of seeding sweeps when ``skip_evaluated``); ``None`` for Optuna's."""
    evaluated = list(evaluated)
    if spec.search.method == "grid":
        return _grid_order(spec, grid_points(spec), spec.search.initial_points, evaluated)
    if spec.search.method == "random":
        return random_points(spec, evaluated)
    return None


def grown_points(
    spec: Spec,
    old: list[dict[str, Any]],
    initial: list[dict[str, Any]],
    evaluated: Iterable[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The points of a grid or random sweep extended with ``spec``: its ``old`` points first,
    unchanged (their trials keep their names), then the new ones: a grid's points that
    ``old`` lacks, or random draws up to ``trials``, the new ``initial`` points first.

    ``evaluated`` (with ``old``) is skipped when ``search.skip_evaluated`` is set.
    """
    evaluated = [*old, *evaluated]
    if spec.search.method == "grid":
        had = {point_key(p) for p in old}
        new = [p for p in grid_points(spec) if point_key(p) not in had]
        return old + _grid_order(spec, new, initial, evaluated)
    return _random_points(spec, spec.trial_count(), old, initial, evaluated)


def trial_params(
    spec: Spec, config: dict[str, Any], points: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A trial's parameters from Tune's config: constants, then its point or Optuna's values."""
    values = points[config[POINT_KEY]] if points is not None and POINT_KEY in config else config
    # A population-based schedule changes the values in the config (see tune_space).
    moved = {k: config[k] for k in spec.mutations if k in config}
    merged = {**spec.constants, **values, **moved}
    # In the order the spec declares them: flags, config.json and MLflow show them that way;
    # without the ones a condition leaves inactive.
    return spec.conditional_space.active(merged)


def write_points(sweep_dir: Path, points: list[dict[str, Any]] | None) -> None:
    """Write the points, whole or not at all (an extension rewrites them)."""
    if points is not None:
        path = sweep_dir / POINTS_FILE
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(points, default=str) + "\n", encoding="utf-8")
        partial.replace(path)


def read_points(sweep_dir: Path) -> list[dict[str, Any]] | None:
    path = sweep_dir / POINTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
