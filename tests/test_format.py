"""How errors read in sweeper's one-line messages."""

from __future__ import annotations

import sqlite3

from sweeper._format import describe_error, first_line


def test_first_line_skips_leading_blank_lines() -> None:
    assert first_line(ValueError("\n  bad value\nmore")) == "bad value"


def test_first_line_of_nothing_is_empty() -> None:
    assert first_line(ValueError()) == ""
    assert first_line(None) == ""


def test_an_error_is_described_by_the_root_of_its_chain() -> None:
    """MLflow wraps SQLAlchemy, which wraps sqlite3: the wrappers' first lines say little."""
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as low:
            raise RuntimeError("(raised as a result of Query-invoked autoflush)\n...") from low
    except RuntimeError as high:
        assert describe_error(high) == "OperationalError: database or disk is full"


def test_an_error_without_a_message_is_described_by_its_type() -> None:
    assert describe_error(KeyError()) == "KeyError"


def test_a_cyclic_chain_ends() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert describe_error(a) in ("ValueError: a", "ValueError: b")
