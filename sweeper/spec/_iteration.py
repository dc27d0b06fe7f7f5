"""What a spec says about earlier trials: its initial points, and which changes an extended
sweep accepts.

An extended sweep (``sweeper extend SWEEP --spec new.yml``) is the same experiment with more
trials, other limits or another search space: its earlier trials keep their meaning. Anything
else (the framework, the entrypoint, a constant, the metric, the data) makes a new experiment,
which is a new sweep warm-started from the old one. This module is the one statement of that
rule; :meth:`ConditionalSpace.fit` says which earlier trials a new space takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper._validation import invalid
from sweeper.errors import SpecError
from sweeper.spec._parameters import Constant, contains, grid_values, same_value

if TYPE_CHECKING:
    from sweeper.spec._model import Spec

__all__ = ["EXTENDABLE", "check_extension", "check_initial_points"]

# What an extension may change besides the parameters: fields of the spec (dotted) that do
# not change what a trial is (how many run, at once, in which order, for how long).
EXTENDABLE = (
    "description",
    "search.trials",
    "search.concurrency",
    "search.seed",
    "search.initial_points",
    "search.skip_evaluated",
    "limits",
)


def check_initial_points(spec: Spec) -> None:
    """Each of ``search.initial_points`` names dimensions only, with values they can take (for
    a grid, values of its points: a grid runs those points first), and none that its
    condition leaves inactive in the point."""
    space = spec.space
    dims = spec.dimensions_of(space)
    conditional = spec.conditional_space
    grid = spec.search.method == "grid"
    for i, point in enumerate(spec.search.initial_points):
        where = f"search.initial_points.{i}"
        if not point:
            raise invalid(
                f"search.initial_points[{i}] must name at least one parameter, got {{}}",
                where,
                "write e.g. initial_points: [{lr: 0.01, hidden: 64}]",
            )
        for name, value in point.items():
            param = space.get(name)
            if param is None or name not in dims:
                what = "a constant" if param is not None else "no parameter"
                raise invalid(
                    f"search.initial_points[{i}] must name search dimensions, got "
                    f"{name!r} ({what})",
                    f"{where}.{name}",
                    f"the dimensions are {', '.join(dims)}",
                )
            ok = contains(param, value)
            if ok and grid:
                ok = any(same_value(v, value) for v in grid_values(param) or [])
            if not ok:
                raise invalid(
                    f"search.initial_points[{i}].{name} must be a value of "
                    f"{param.describe()}, got {value!r}",
                    f"{where}.{name}",
                    "a grid runs points of its own first"
                    if grid
                    else "widen the parameter's range, or change the point",
                )
        for name in point:
            condition = conditional.conditions.get(name, {})
            if all(p in point for p in condition) and not conditional.is_active(name, point):
                raise invalid(
                    f"search.initial_points[{i}].{name} must be active in the point, got "
                    f"it where its condition ({conditional.describe(name)}) is not met",
                    f"{where}.{name}",
                    "leave it out, or give the values its condition asks for",
                )


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """A dumped spec as ``{dotted.field: value}`` down to the leaves (lists are leaves)."""
    if not isinstance(data, dict) or not data:
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _dumped(spec: Spec) -> dict[str, Any]:
    """The spec's fields but its parameters, with paths resolved: two spellings of one file
    (relative to the spec, or absolute) are the same entrypoint."""
    data = spec.model_dump(mode="json", exclude={"parameters"})
    entrypoint = data.get("entrypoint")
    if isinstance(entrypoint, str) and ".py:" in entrypoint:
        path, _, function = entrypoint.rpartition(":")
        data["entrypoint"] = f"{spec.resolve(path)}:{function}"
    for key in ("data", "results", "requirements"):
        value = data.get(key)
        if isinstance(value, str) and "://" not in value:
            data[key] = str(spec.resolve(value))
    return data


def _extendable(field: str) -> bool:
    return any(field == f or field.startswith(f + ".") for f in EXTENDABLE)


def check_extension(old: Spec, new: Spec, sweep: str) -> list[str]:
    """Check that ``new`` changes only what an extension of sweep ``sweep`` (run with ``old``)
    may change, and say what it changes.

    Returns:
        One line per change (``parameters.lr: loguniform(...) -> loguniform(...)``).

    Raises:
        SpecError: On the first change that makes another experiment, naming the field.
    """
    hint = f"start a new sweep with --warm-start {sweep}"
    file = new.label
    if old.search.method == new.search.method != "grid" and new.trial_count() < old.trial_count():
        raise SpecError(
            f"search.trials must be at least the sweep's {old.trial_count()} trials to extend "
            f"sweep {sweep}, got {new.trial_count()}",
            file=file,
            field="search.trials",
            hint="give the new total there, or --trials +N",
        )
    before, after = _flat(_dumped(old)), _flat(_dumped(new))
    changes: list[str] = []
    for field in dict.fromkeys([*before, *after]):
        was, now = before.get(field), after.get(field)
        if was == now:
            continue
        if not _extendable(field):
            shown = field or "the spec"
            raise SpecError(
                f"{shown} must stay {was!r} to extend sweep {sweep} (an extension changes only "
                f"the search space, trials and limits), got {now!r}",
                file=file,
                field=shown,
                hint=hint,
            )
        changes.append(f"{field}: {was!r} -> {now!r}")
    old_space, new_space = old.space, new.space
    old_raw, new_raw = old.parameters, new.parameters
    for name in dict.fromkeys([*old_space, *new_space]):
        was, now = old_space.get(name), new_space.get(name)
        field = f"parameters.{name}"
        if was is None:
            assert now is not None
            if isinstance(now, Constant):
                raise SpecError(
                    f"{field} must not be a new constant to extend sweep {sweep} (earlier "
                    f"trials ran without it), got {now.value!r}",
                    file=file,
                    field=field,
                    hint=f"make it a dimension with a default (the value earlier trials ran "
                    f"with), or {hint}",
                )
            if name not in new.defaults:
                raise SpecError(
                    f"{field} must have a default to extend sweep {sweep} (the value earlier "
                    f"trials ran with), got none",
                    file=file,
                    field=f"{field}.default",
                    hint=f"add default: <value> to it, or {hint}",
                )
            changes.append(
                f"{field}: new, {now.describe()} (earlier trials: {new.defaults[name]!r})"
            )
            continue
        if now is None:
            keep = repr(old.constants[name]) if isinstance(was, Constant) else "<value>"
            raise SpecError(
                f"{field} must stay in the spec to extend sweep {sweep} (earlier trials ran "
                f"with it), got it removed",
                file=file,
                field=field,
                hint=f"fix it as a constant ({name}: {keep}) instead, or {hint}",
            )
        if isinstance(was, Constant) and isinstance(now, Constant):
            if not same_value(was.value, now.value) and was.value != now.value:
                raise SpecError(
                    f"{field} must stay {was.value!r} to extend sweep {sweep} (a constant is "
                    f"part of every trial), got {now.value!r}",
                    file=file,
                    field=field,
                    hint=f"make it a dimension to search over it, or {hint}",
                )
            continue
        if was != now or old_raw.get(name) != new_raw.get(name):
            changes.append(f"{field}: {was.describe()} -> {now.describe()}")
    if old.search.method == "grid":
        _check_grid_grows(old, new, sweep, file)
    return changes


def _check_grid_grows(old: Spec, new: Spec, sweep: str, file: str | None) -> None:
    """A grid grows only by values: every value of the old grid stays in the new one."""
    for name, param in old.space.items():
        now = new.space[name]
        if isinstance(param, Constant) and isinstance(now, Constant):
            continue  # unchanged (check_extension)
        values = grid_values(now) or []
        for value in grid_values(param) or []:
            if not any(same_value(value, v) for v in values):
                raise SpecError(
                    f"parameters.{name} must keep the grid's values to extend sweep {sweep} "
                    f"(a grid grows only by adding values), got {now.describe()} without "
                    f"{value!r}",
                    file=file,
                    field=f"parameters.{name}",
                    hint=f"add values and keep the old ones, or start a new sweep with "
                    f"--warm-start {sweep}",
                )
