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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sweeper.spec._parameters import (
    Choice,
    Constant,
    IntRange,
    Parameter,
    ParameterError,
    grid_count,
    grid_values,
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


def _same(a: Any, b: Any) -> bool:
    # YAML's true is not 1 here: a choice of [1, true] has two values.
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


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

        Walks the parents' values only (they are discrete), skipped past ``limit``
        combinations: then a never-active parameter is simply absent from every trial.
        """
        if not self.conditions:
            return
        parents = [name for name in self.order if name in self._parents()]
        combos = 1
        for name in parents:
            combos *= grid_count(self.space[name]) or 0
        if combos > limit:
            return
        unseen = set(self.conditions)

        def walk(i: int, assigned: dict[str, Any]) -> None:
            for name in list(unseen):
                if self._could_be_active(name, assigned, set(parents[i:])):
                    unseen.discard(name)
            if i == len(parents) or not unseen:
                return
            name = parents[i]
            if not self.is_active(name, assigned):
                walk(i + 1, assigned)
                return
            for value in grid_values(self.space[name]) or []:
                walk(i + 1, {**assigned, name: value})

        walk(0, {})
        for name in self.space:  # the first in the spec's order
            if name in unseen:
                raise ParameterError(
                    f"parameters.{name}.when must be met by some combination of values, "
                    f"got {self.describe(name)}, which no trial can meet",
                    f"parameters.{name}.when",
                    "a parent it names is itself active only for other values",
                )

    def _could_be_active(self, name: str, assigned: dict[str, Any], pending: set[str]) -> bool:
        # Decided only once every parent it names is assigned or known inactive.
        condition = self.conditions[name]
        if any(parent in pending for parent in condition):
            return False
        return self.is_active(name, assigned)

    @cached_property
    def order(self) -> list[str]:
        """Parents before children; the spec's order where conditions leave it free."""
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                cycle = [*path[path.index(name) :], name]
                raise ParameterError(
                    "parameters' when conditions must not form a cycle, got " + " -> ".join(cycle),
                    f"parameters.{cycle[0]}.when",
                    "a parameter cannot depend, even through others, on itself",
                )
            state[name] = "visiting"
            for parent in self.conditions.get(name, {}):
                visit(parent, [*path, name])
            state[name] = "done"
            order.append(name)

        for name in self.space:
            visit(name, [])
        return order

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

    def _parents(self) -> set[str]:
        return {parent for condition in self.conditions.values() for parent in condition}

    def grid_count(self) -> int:
        """How many valid combinations a grid has, counted without listing them.

        Unconditional spaces multiply. Otherwise a walk over the parameters in :attr:`order`
        memoized on the values of the parents still to be consulted, which keeps it as cheap
        as the conditions are shallow.
        """
        if not self.conditions:
            size = 1
            for param in self.space.values():
                size *= grid_count(param) or 0
            return size
        order = self.order
        parents = self._parents()
        # For each position, which parents are still read at or after it.
        needed = [
            {p for name in order[i:] for p in self.conditions.get(name, {})}
            for i in range(len(order))
        ]
        memo: dict[tuple[int, tuple[tuple[str, str], ...]], int] = {}

        def count(i: int, assigned: dict[str, Any]) -> int:
            if i == len(order):
                return 1
            key = (i, tuple(sorted((p, repr(assigned[p])) for p in needed[i] if p in assigned)))
            if key in memo:
                return memo[key]
            name = order[i]
            param = self.space[name]
            if not self.is_active(name, assigned):
                total = count(i + 1, assigned)
            elif name in parents:
                total = sum(count(i + 1, {**assigned, name: v}) for v in grid_values(param) or [])
            else:  # nobody reads it: its values multiply what follows
                total = (grid_count(param) or 0) * count(i + 1, assigned)
            memo[key] = total
            return total

        return count(0, {})

    def grid_points(self) -> Iterator[dict[str, Any]]:
        """Every valid combination, like nested loops over the parameters in the spec's order
        (the last varies fastest); an inactive parameter is skipped, not looped over."""
        names = list(self.space)
        if self.order != names:
            # A child declared before its parent: loop in dependency order instead.
            names = self.order

        def walk(i: int, assigned: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(names):
                yield {name: assigned[name] for name in self.space if name in assigned}
                return
            name = names[i]
            if not self.is_active(name, assigned):
                yield from walk(i + 1, assigned)
                return
            for value in grid_values(self.space[name]) or []:
                yield from walk(i + 1, {**assigned, name: value})

        yield from walk(0, {})

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
