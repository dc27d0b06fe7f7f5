"""Caffe's protobuf text format (``.prototxt``), read just far enough to fill in parameters.

A :class:`Prototxt` finds a file's ``${name}`` placeholders and its ``key: value`` fields (with
their nesting depth and where they are in the text), so that values can be substituted, top-level
solver fields replaced or appended, and relative input paths made absolute, while everything
else (comments, layout) is kept as written. It does not know Caffe's schema beyond
:data:`ENUM_KEYS`.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ENUM_KEYS", "Field", "Placeholder", "Prototxt", "format_text", "format_value"]

# Fields of caffe.proto whose type is an enum: their values are bare identifiers (`pool: MAX`),
# where every other string value is quoted (`lr_policy: "step"`, `type: "SGD"`).
ENUM_KEYS = frozenset(
    {
        "backend",
        "engine",
        "norm",
        "norm_region",
        "normalization",
        "operation",
        "phase",
        "pool",
        "round_mode",
        "share_mode",
        "snapshot_format",
        "solver_mode",
        "solver_type",
        "variance_norm",
    }
)

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<placeholder>\$\{[^}\n]*\})
    | (?P<open>[{<\[])
    | (?P<close>[}>\]])
    | (?P<colon>:)
    | (?P<word>[^\s{}<>\[\]:,;\#"'$]+|\$)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_IN_STRING = re.compile(r"\$\{([^}\n]*)\}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Placeholder:
    """One ``${name}`` in a prototxt.

    Attributes:
        name: What is between the braces (a parameter's name when valid).
        line: Its 1-based line number.
        start, end: Its span in the text.
        key: The field whose value it is in, or ``None``.
        quote: The quote character when it is inside a string, else ``None`` (a whole value).
    """

    name: str
    line: int
    start: int
    end: int
    key: str | None
    quote: str | None


@dataclass(frozen=True)
class Field:
    """One ``key: value`` (a scalar or ``[...]`` list, not a message) and where it is.

    Attributes:
        key: The field's name.
        depth: 0 at the top level, 1 inside one ``{ }`` block, and so on.
        start: Where the key begins.
        value_start, end: The value's span (several adjacent strings form one value).
        strings: The value's string tokens as written, quotes included (empty for non-strings).
    """

    key: str
    depth: int
    start: int
    value_start: int
    end: int
    strings: tuple[str, ...]

    def string_value(self) -> str | None:
        """The value as a Python string when it is a (concatenated) string, else ``None``."""
        if not self.strings:
            return None
        return "".join(_unquote(s) for s in self.strings)


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), token[1:-1])


def _quote(text: str, quote: str = '"') -> str:
    """``text`` escaped for the inside of a ``quote``-delimited prototxt string."""
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()  # numpy scalars from a searcher
    return value


def _number(value: numbers.Real) -> str:
    if isinstance(value, numbers.Integral):
        return str(int(value))
    number = float(value)
    # An integral float (64.0 from a searcher) must be written 64: integer fields reject "64.0",
    # and float fields accept "64".
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def format_value(value: Any, key: str | None = None) -> str:
    """``value`` as a prototxt value for the field ``key``.

    Booleans are ``true``/``false``, numbers are plain, and strings are quoted unless ``key`` is
    an enum field (:data:`ENUM_KEYS`) and the string is an identifier.

    Raises:
        TypeError: If ``value`` is not a boolean, number or string.
    """
    value = _plain(value)
    if isinstance(value, str):
        if key in ENUM_KEYS and value.isidentifier():
            return value
        return f'"{format_text(value)}"'
    return format_text(value)


def format_text(value: Any, quote: str = '"') -> str:
    """``value`` as text inside a ``quote``-delimited prototxt string.

    Raises:
        TypeError: If ``value`` is not a boolean, number or string.
    """
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Real):
        return _number(value)
    if isinstance(value, str):
        return _quote(value, quote)
    raise TypeError(f"a prototxt value must be a number, string or boolean, got {value!r}")


class Prototxt:
    """A prototxt's text with its placeholders and fields located.

    Args:
        text: The file's contents.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.top_messages: set[str] = set()  # keys of top-level `key { ... }` blocks
        tokens = [
            _Token(m.lastgroup or "other", m.group(), m.start(), m.end())
            for m in _TOKEN.finditer(text)
        ]
        self.fields = self._fields([t for t in tokens if t.kind not in ("space", "comment")])
        self.placeholders = self._placeholders(tokens)

    def _fields(self, tokens: list[_Token]) -> list[Field]:
        fields: list[Field] = []
        depth = 0
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token.kind == "open":
                # `key {` or `key: {`
                before = [t for t in tokens[max(0, i - 2) : i] if t.kind != "colon"]
                if depth == 0 and before and before[-1].kind == "word":
                    self.top_messages.add(before[-1].text)
                depth += 1
            elif token.kind == "close":
                depth = max(0, depth - 1)
            elif (
                token.kind == "word"
                and i + 2 < len(tokens)
                and tokens[i + 1].kind == "colon"
                and tokens[i + 2].text not in ("{", "<")  # `key: { ... }` is a message
            ):
                j = i + 2
                if tokens[j].text == "[":  # repeated field, short form `key: [1, 2]`
                    k = j
                    while k < len(tokens) and tokens[k].text != "]":
                        k += 1
                    end = min(k, len(tokens) - 1)
                elif tokens[j].kind == "string":
                    end = j
                    while end + 1 < len(tokens) and tokens[end + 1].kind == "string":
                        end += 1
                else:
                    end = j
                strings = tuple(t.text for t in tokens[j : end + 1] if t.kind == "string")
                fields.append(
                    Field(
                        token.text,
                        depth,
                        token.start,
                        tokens[j].start,
                        tokens[end].end,
                        strings if tokens[j].kind == "string" else (),
                    )
                )
                i = end + 1
                continue
            i += 1
        return fields

    def _placeholders(self, tokens: list[_Token]) -> list[Placeholder]:
        def key_at(offset: int) -> str | None:
            for field in self.fields:
                if field.value_start <= offset < field.end:
                    return field.key
            return None

        found: list[Placeholder] = []
        for token in tokens:
            if token.kind == "placeholder":
                found.append(
                    Placeholder(
                        token.text[2:-1],
                        self.line_of(token.start),
                        token.start,
                        token.end,
                        key_at(token.start),
                        None,
                    )
                )
            elif token.kind == "string":
                for match in _IN_STRING.finditer(token.text):
                    start = token.start + match.start()
                    found.append(
                        Placeholder(
                            match.group(1),
                            self.line_of(start),
                            start,
                            token.start + match.end(),
                            key_at(start),
                            token.text[0],
                        )
                    )
        return found

    def line_of(self, offset: int) -> int:
        """The 1-based line number of a position in the text."""
        return self.text.count("\n", 0, offset) + 1

    def names(self) -> set[str]:
        """The names of the placeholders."""
        return {p.name for p in self.placeholders}

    def top(self, key: str) -> list[Field]:
        """The top-level fields named ``key``, in order."""
        return [f for f in self.fields if f.depth == 0 and f.key == key]

    def substitute(self, values: Mapping[str, Any]) -> str:
        """The text with every placeholder replaced by its value from ``values``.

        A placeholder that is a whole value is written as a prototxt value
        (:func:`format_value`, so a string is quoted); one inside a string is replaced by the
        value's text.

        Raises:
            KeyError: If a placeholder has no value.
            TypeError: If a value is not a boolean, number or string.
        """
        parts: list[str] = []
        last = 0
        for placeholder in sorted(self.placeholders, key=lambda p: p.start):
            value = values[placeholder.name]
            if placeholder.quote is None:
                text = format_value(value, placeholder.key)
            else:
                text = format_text(value, placeholder.quote)
            parts += [self.text[last : placeholder.start], text]
            last = placeholder.end
        parts.append(self.text[last:])
        return "".join(parts)

    def set_top(self, key: str, values: Iterable[str]) -> str:
        """The text with the top-level ``key`` set to ``values`` (formatted prototxt values).

        The first occurrence is replaced by one ``key: value`` per value and any further ones
        are removed; without one, the lines are appended at the end.
        """
        lines = [f"{key}: {value}" for value in values]
        existing = self.top(key)
        if not existing:
            text = self.text if not self.text or self.text.endswith("\n") else self.text + "\n"
            return text + "".join(line + "\n" for line in lines)
        return self._replace(
            [(existing[0].start, existing[0].end, "\n".join(lines))]
            + [(f.start, f.end, "") for f in existing[1:]]
        )

    def replace_values(self, replacements: Mapping[Field, str]) -> str:
        """The text with the given fields' values replaced by the given prototxt values."""
        return self._replace([(f.value_start, f.end, v) for f, v in replacements.items()])

    def _replace(self, spans: list[tuple[int, int, str]]) -> str:
        parts: list[str] = []
        last = 0
        for start, end, text in sorted(spans):
            parts += [self.text[last:start], text]
            last = end
        parts.append(self.text[last:])
        return "".join(parts)

    def relative_paths(self, keys: Iterable[str]) -> dict[Field, str]:
        """The fields named one of ``keys`` (any depth) whose value is a relative path."""
        wanted = set(keys)
        found: dict[Field, str] = {}
        for field in self.fields:
            value = field.string_value() if field.key in wanted else None
            if value and not Path(value).is_absolute():
                found[field] = value
        return found
