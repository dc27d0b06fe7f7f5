"""Conditional parameters: ``when:`` on a search dimension, and the spaces they make.

A dimension with ``when`` is active only when each parameter it names took one of the given
values (and was active itself, so conditions nest to any depth)::

    optimizer: {choice: [adam, sgd]}
    momentum: {uniform: [0.5, 0.99], when: {optimizer: sgd}}
    nesterov: {choice: [true, false], when: {momentum_kind: [nesterov, heavy], optimizer: sgd}}

An inactive parameter is absent from the trial's params (not ``None``). This module is the one
home of what a condition means: :class:`ConditionalSpace` orders the parameters (parents
first), says which are active for given values, counts and lists a grid's valid combinations.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sweeper.spec._parameters import (
    Choice,
    Constant,
    IntRange,
    Parameter,
    ParameterError,
    contains,
    grid_count,
    grid_values,
    same_value,
)

__all__ = ["ConditionalSpace", "parse_condition"]

# A condition: parent parameter -> the values for which the child is active.
Condition = dict[str, tuple[Any, ...]]


def parse_condition(name: str, raw: Any) -> Condition:
    """The ``when`` of parameter ``name`` as ``{parent: (values...)}``; checked for shape only
    (:class:`ConditionalSpace` checks the parents and their values).

    A list of values means any of them; write ``[[1, 2]]`` for a choice whose value is a list.
    """
    field_name = f"parameters.{name}.when"
    if not isinstance(raw, dict) or not raw:
        raise ParameterError(
            f"{field_name} must be a mapping of parameter to value(s), got {raw!r}",
            field_name,
            "write e.g. when: {optimizer: sgd} or when: {optimizer: [sgd, rmsprop]}",
        )
    condition: Condition = {}
    for parent, values in raw.items():
        if not isinstance(parent, str):
            raise ParameterError(
                f"{field_name} keys must be parameter names, got {parent!r}", field_name
            )
        options = tuple(values) if isinstance(values, list) else (values,)
        if not options:
            raise ParameterError(
                f"{field_name}.{parent} must name at least one value, got []",
                f"{field_name}.{parent}",
            )
        condition[parent] = options
    return condition


_same = same_value


def _can_take(param: Parameter, value: Any) -> bool:
    if isinstance(param, Constant):
        return _same(param.value, value)
    if isinstance(param, Choice):
        return any(_same(v, value) for v in param.values)
    if isinstance(param, IntRange):
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and param.low <= value <= param.high
            and (value - param.low) % param.step == 0
        )
    values = grid_values(param)
    return values is not None and any(_same(v, value) for v in values)


@dataclass(frozen=True)
class ConditionalSpace:
    """The parsed parameters with their conditions, checked.

    Args:
        space: Every parameter, in the spec's order.
        conditions: Each conditional parameter's condition.

    Raises:
        ParameterError: A condition names an unknown parameter, makes a cycle, names a value
            its parent can never take, or depends on a continuous parameter.
    """

    space: Mapping[str, Parameter]
    conditions: Mapping[str, Condition] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, condition in self.conditions.items():
            for parent, values in condition.items():
                where = f"parameters.{name}.when.{parent}"
                if parent not in self.space:
                    close = difflib.get_close_matches(parent, list(self.space), n=1)
                    raise ParameterError(
                        f"parameters.{name}.when must name parameters of the spec, got {parent!r}",
                        where,
                        f"did you mean {close[0]!r}?" if close else "declare it under parameters",
                    )
                param = self.space[parent]
                if grid_count(param) is None:
                    raise ParameterError(
                        f"parameters.{name}.when must name a parameter with distinct values "
                        f"(choice, int or constant), got {parent}: {param.describe()}",
                        where,
                        "a continuous value is never exactly equal to one number; "
                        f"make {parent} a choice",
                    )
                for value in values:
                    if not _can_take(param, value):
                        raise ParameterError(
                            f"parameters.{name}.when.{parent} must be a value {parent} can "
                            f"take, got {value!r} ({parent} is {param.describe()})",
                            where,
                            f"{name} would never be active; fix the value or {parent}'s list",
                        )
        _ = self.order  # a cycle is an error on load
        self._check_reachable()

    def _check_reachable(self, limit: int = 100_000) -> None:
        """Each conditional parameter must be active in some combination of its parents'
        values (``when: {a: 1, b: 2}`` where ``b`` exists only when ``a`` is 2 never is).

        One pass over :attr:`order` with the assignments trials can have of the parents still
        to be read (they are discrete), each parameter checked when reached; skipped past
        ``limit`` assignments: then a never-active parameter is simply absent from every
        trial.
        """
        if not self.conditions:
            return
        order = self.order
        read_from = self._read_from()
        states: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {(): {}}
        for i, name in enumerate(order):  # iteratively: a spec may chain thousands
            if name in self.conditions and not any(
                self.is_active(name, assigned) for assigned in states.values()
            ):
                raise ParameterError(
                    f"parameters.{name}.when must be met by some combination of values, "
                    f"got {self.describe(name)}, which no trial can meet",
                    f"parameters.{name}.when",
                    "a parent it names is itself active only for other values",
                )
            grown: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
            for assigned in states.values():
                options = [assigned]
                if name in read_from and self.is_active(name, assigned):
                    options = [{**assigned, name: v} for v in grid_values(self.space[name]) or []]
                for values in options:
                    kept = {k: v for k, v in values.items() if read_from[k] > i}
                    grown[tuple(sorted((k, repr(v)) for k, v in kept.items()))] = kept
            if len(grown) > limit:
                return
            states = grown

    def _read_from(self) -> dict[str, int]:
        """Each parent's position in :attr:`order` of the last parameter that reads it."""
        at = {name: i for i, name in enumerate(self.order)}
        read_from: dict[str, int] = {}
        for child, condition in self.conditions.items():
            for parent in condition:
                read_from[parent] = max(read_from.get(parent, -1), at[child])
        return read_from

    @cached_property
    def order(self) -> list[str]:
        """Parents before children; the spec's order where conditions leave it free."""
        # Kahn's algorithm, taking the first ready parameter in the spec's order each time
        # (no recursion: a spec may chain thousands of parameters).
        import heapq

        names = list(self.space)
        index = {name: i for i, name in enumerate(names)}
        waiting = {name: len(self.conditions.get(name, {})) for name in names}
        children: dict[str, list[str]] = {name: [] for name in names}
        for child, condition in self.conditions.items():
            for parent in condition:
                children[parent].append(child)
        ready = [index[name] for name in names if waiting[name] == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = names[heapq.heappop(ready)]
            order.append(name)
            for child in children[name]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, index[child])
        if len(order) < len(names):
            placed = set(order)
            raise self._cycle_error([n for n in names if n not in placed])
        return order

    def _cycle_error(self, left: list[str]) -> ParameterError:
        # Every parameter left waits on another one left: walk parents until one repeats.
        path = [left[0]]
        while True:
            parent = next(p for p in self.conditions[path[-1]] if p in left)
            if parent in path:
                cycle = [*path[path.index(parent) :], parent]
                break
            path.append(parent)
        return ParameterError(
            "parameters' when conditions must not form a cycle, got " + " -> ".join(cycle),
            f"parameters.{cycle[0]}.when",
            "a parameter cannot depend, even through others, on itself",
        )

    def is_active(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the (active) ``values`` of the others."""
        condition = self.conditions.get(name)
        if not condition:
            return True
        return all(
            parent in values and any(_same(values[parent], v) for v in options)
            for parent, options in condition.items()
        )

    def active(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` without the parameters their conditions leave inactive, in spec order."""
        kept: dict[str, Any] = {}
        for name in self.order:
            if name in values and self.is_active(name, kept):
                kept[name] = values[name]
        return {name: kept[name] for name in self.space if name in kept}

    def fit(
        self, values: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """An earlier trial's ``values`` as a point of this space, or ``None`` when they do not
        fit it: its active dimensions, each from ``values`` or else ``defaults`` (what trials
        that lack a parameter ran with), and each a value the dimension can take; a constant
        the trial had must have the constant's value. Parameters this space lacks are left
        out (a warm start's earlier sweep may have had more)."""
        defaults = defaults or {}
        kept: dict[str, Any] = {}
        for name in self.order:
            param = self.space[name]
            if not self.is_active(name, kept):
                continue
            if isinstance(param, Constant):
                if name in values and not contains(param, values[name]):
                    return None
                kept[name] = param.value
                continue
            if name in values:
                value = values[name]
            elif name in defaults:
                value = defaults[name]
            else:
                return None
            if not contains(param, value):
                return None
            kept[name] = value
        return {
            name: kept[name]
            for name in self.space
            if name in kept and not isinstance(self.space[name], Constant)
        }

    def sample(
        self, pick: Callable[[str, Parameter], Any], given: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A value from ``pick(name, parameter)`` for each parameter not ``given`` (the
        constants) that is active, parents first: an inactive one is never picked. In the
        spec's order when there are no conditions, so draws made this way do not move."""
        values = dict(given)
        for name in self.order:
            if name not in given and self.is_active(name, values):
                values[name] = pick(name, self.space[name])
        return {name: values[name] for name in self.space if name in values and name not in given}

    def _parents(self) -> set[str]:
        return {parent for condition in self.conditions.values() for parent in condition}

    def grid_count(self) -> int:
        """How many valid combinations a grid has, counted without listing them.

        Unconditional spaces multiply. Otherwise one pass over the parameters in
        :attr:`order`, keeping how many combinations share each assignment of the parents
        still to be read (a parameter nobody reads multiplies them): as cheap as the
        conditions are shallow, and without recursion.
        """
        if not self.conditions:
            size = 1
            for param in self.space.values():
                size *= grid_count(param) or 0
            return size
        order = self.order
        read_from = self._read_from()
        # assignment of the parents still needed -> how many combinations have it
        states: dict[tuple[tuple[str, str], ...], tuple[dict[str, Any], int]] = {(): ({}, 1)}
        for i, name in enumerate(order):
            param = self.space[name]
            grown: dict[tuple[tuple[str, str], ...], tuple[dict[str, Any], int]] = {}
            for assigned, count in states.values():
                if not self.is_active(name, assigned):
                    options = [(assigned, count)]
                elif name in read_from:
                    options = [({**assigned, name: v}, count) for v in grid_values(param) or []]
                else:  # nobody reads it: its values multiply the combinations
                    options = [(assigned, count * (grid_count(param) or 0))]
                for values, number in options:
                    kept = {k: v for k, v in values.items() if read_from[k] > i}
                    key = tuple(sorted((k, repr(v)) for k, v in kept.items()))
                    previous = grown.get(key, (kept, 0))[1]
                    grown[key] = (kept, previous + number)
            states = grown
        return sum(count for _, count in states.values())

    def grid_points(self) -> Iterator[dict[str, Any]]:
        """Every valid combination, like nested loops over the parameters in the spec's order
        (the last varies fastest); an inactive parameter is skipped, not looped over.

        A child declared before its parent loops in dependency order instead.
        """
        names = self.order
        # Depth-first with a stack of (next parameter, values so far), each parameter's
        # values pushed last-first so the first comes out first.
        stack: list[tuple[int, dict[str, Any]]] = [(0, {})]
        while stack:
            i, assigned = stack.pop()
            if i == len(names):
                yield {name: assigned[name] for name in self.space if name in assigned}
                continue
            name = names[i]
            if not self.is_active(name, assigned):
                stack.append((i + 1, assigned))
                continue
            values = grid_values(self.space[name]) or []
            stack.extend((i + 1, {**assigned, name: v}) for v in reversed(values))

    def describe(self, name: str) -> str:
        """``when optimizer = sgd, layers in (2, 3)``, or ``""`` for an unconditional one."""
        condition = self.conditions.get(name)
        if not condition:
            return ""
        parts = [
            f"{parent} = {options[0]!r}"
            if len(options) == 1
            else f"{parent} in ({', '.join(repr(v) for v in options)})"
            for parent, options in condition.items()
        ]
        return "when " + " and ".join(parts)
