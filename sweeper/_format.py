"""How values, parameters and durations read in what sweeper prints.

One place for ``sweeper run``'s trial lines and live display, and for ``sweeper status``,
``show``, ``list`` and ``plan``, so a value reads the same everywhere. Standard library only:
the read-only commands import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "clock",
    "describe_error",
    "duration",
    "first_line",
    "format_params",
    "format_value",
    "is_missing",
    "short",
]


def is_missing(value: Any) -> bool:
    """Whether ``value`` is no value: ``None`` or NaN (how pandas and CSV write a gap)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def first_line(text: object) -> str:
    """The first non-empty line of ``text`` (an exception, a message), or ``""``."""
    lines = str(text).strip().splitlines() if text is not None else []
    return lines[0].strip() if lines else ""


def describe_error(exc: BaseException) -> str:
    """``Type: first line`` of the exception at the root of ``exc``'s chain.

    Libraries wrap the error that matters (MLflow wraps SQLAlchemy, which wraps sqlite3's
    ``database or disk is full``), and the wrappers' first lines say little; the root says why.
    """
    root, seen = exc, {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        root = nxt
        seen.add(id(nxt))
    line = first_line(root)
    return f"{type(root).__name__}: {line}" if line else type(root).__name__


def format_value(value: Any, digits: int = 4) -> str:
    """A float to ``digits`` significant digits, anything else as ``str`` gives it."""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def short(value: Any) -> str:
    """A table cell: :func:`format_value`, and ``-`` for a missing value."""
    return "-" if is_missing(value) else format_value(value)


def format_params(
    values: Mapping[str, Any], names: Iterable[str] | None = None, digits: int = 4
) -> str:
    """``name=value, ...`` of ``values``: only ``names``, in their order, when given."""
    keys = values if names is None else [name for name in names if name in values]
    return ", ".join(f"{key}={format_value(values[key], digits)}" for key in keys)


def duration(seconds: float) -> str:
    """A duration in its two largest units: ``12.3s``, ``4m05s``, ``2h07m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def clock(seconds: float) -> str:
    """A duration as a clock reads it: ``0:04:05``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
