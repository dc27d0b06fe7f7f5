"""Reading a training program's output: its metrics (the channels of the ``command`` adapter)
and, when it fails, its own error.

A program may report through any mix of: ``SWEEPER_METRICS {json}`` lines on stdout or stderr,
a JSON-lines file, the original service's EMetrics file (``$LOG_DIR/evaluation-metrics.txt``),
regular expressions with named groups over its log, and TensorBoard event files
(:mod:`sweeper.frameworks._tensorboard`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sweeper.frameworks._process import parse_metrics_line

__all__ = [
    "FileFollower",
    "LineParser",
    "emetrics_record",
    "json_line_record",
    "numeric_metrics",
    "program_error",
]

Report = Callable[[int | None, dict[str, float]], None]

# EMetrics value type codes: 0 string, 1 JSON string, 2 int, 3 float.
_EMETRICS_NUMBERS = {2, 3, "INT", "FLOAT"}
# How much of a failed program's log is searched for its error: its last words, not all of it.
_ERROR_TAIL_BYTES = 64 * 1024
_ERROR_LINE_CHARS = 300
_TRACEBACK = "Traceback (most recent call last):"
# Colours and other control characters a program writes for a terminal: not for the console line.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")
# The line a Python traceback ends with: `pkg.SomeError: message`, or a bare `KeyboardInterrupt`.
_EXCEPTION_LINE = re.compile(
    r"(?:[A-Za-z_]\w*\.)*"
    r"(?:[A-Za-z_]\w*:(?:\s.*)?|\w*(?:Error|Exception|Interrupt|Exit|Iteration|Warning))"
)
_ERROR_LINE = re.compile(
    # glog's error and fatal lines (Caffe's `F1203 12:34:56.789012 1234 net.cpp:90] Check failed`)
    r"^[EF]\d{4} \d\d:\d\d:\d\d"
    # `SyntaxError: ...`, `[rank0]: RuntimeError: ...`, `FATAL ...`, argparse's `train.py:
    # error: ...`; not a metric (`val error: 0.12`, `val_error: nan`).
    r"|^\s*[\w.]*(?:Error|Exception)\b"
    r"|^\s*(?i:error|fatal)\b(?!\s*[:=]?\s*[-+]?\.?\d)"
    r"|(?<![_\d])(?i:error|exception|fatal)\s*:(?![:\d]|\s*[-+]?\.?\d)"  # not C++'s Fatal::
)
# glog's fatal line: what killed the program, whatever its stack trace prints after it.
_GLOG_FATAL = re.compile(r"^F\d{4} \d\d:\d\d:\d\d")


def numeric_metrics(record: dict[str, Any]) -> tuple[int | None, dict[str, float]]:
    """Split a metrics record into its step (``step`` key, if an integer) and its numbers."""
    step = record.get("step")
    step = int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None
    metrics = {}
    for name, value in record.items():
        if name == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        metrics[str(name)] = float(value)
    return step, metrics


def _number(entry: Any) -> float | None:
    if isinstance(entry, dict):
        if entry.get("type", 3) not in _EMETRICS_NUMBERS:
            return None
        entry = entry.get("value")
    try:
        return float(entry)
    except (TypeError, ValueError):
        return None


def emetrics_record(line: str) -> tuple[int | None, dict[str, float]] | None:
    """One EMetrics line as ``(step, metrics)``, or ``None`` if it is not one.

    Values of group ``test`` become ``test_<name>``, of group ``train`` plain ``<name>``, of any
    other group ``<group>_<name>``; the step is the first of ``etimes`` (the iteration or epoch),
    else the record's ``rindex``.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("values"), dict):
        return None
    group = str(record.get("grouplabel") or "train")
    prefix = "" if group == "train" else f"{group}_"
    metrics = {}
    for name, entry in record["values"].items():
        value = _number(entry)
        if value is not None:
            metrics[f"{prefix}{name}"] = value
    step = None
    for entry in (record.get("etimes") or {}).values():
        value = _number(entry)
        if value is not None:
            step = int(value)
            break
    if step is None:
        rindex = (record.get("meta") or {}).get("rindex")
        step = int(rindex) if isinstance(rindex, int) else None
    return step, metrics


class LineParser:
    """Finds metrics in a program's log lines: prefixed JSON lines and regular expressions."""

    def __init__(self, prefix: str, patterns: Iterable[str], report: Report) -> None:
        self.prefix = prefix
        self.patterns = [re.compile(p) for p in patterns]
        self.report = report

    def __call__(self, line: str) -> None:
        record = parse_metrics_line(line.lstrip(), self.prefix)
        if record is not None:
            step, metrics = numeric_metrics(record)
            if metrics:
                self.report(step, metrics)
            return
        for pattern in self.patterns:
            match = pattern.search(line)
            if not match:
                continue
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            step = int(groups.pop("step")) if "step" in groups else None
            metrics = {}
            for name, text in groups.items():
                try:
                    metrics[name] = float(text)
                except ValueError:
                    continue
            if metrics:
                self.report(step, metrics)


class FileFollower:
    """Reads the lines a program appends to a file, as it appends them.

    Only complete lines are read; :meth:`poll` is called periodically while the program runs and
    once after it ends.
    """

    def __init__(self, path: Path, parse: Callable[[str], Any], report: Report) -> None:
        self.path = path
        self.parse = parse
        self.report = report
        self._offset = 0

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self._offset += end
        for raw in data[:end].splitlines():
            parsed = self.parse(raw.decode("utf-8", errors="replace"))
            if parsed is not None and parsed[1]:
                self.report(*parsed)


def json_line_record(line: str) -> tuple[int | None, dict[str, float]] | None:
    """A JSON-lines metrics file's line as ``(step, metrics)``."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return numeric_metrics(record) if isinstance(record, dict) else None


def program_error(log_path: Path, start: int = 0) -> str | None:
    """A failed program's own error, from the end of its log: ``None`` if it shows none.

    That is the last line of the last Python traceback (``AttributeError: module 'tensorflow'
    has no attribute 'placeholder'``), else the last line that reads as an error (``error:``,
    ``fatal``, glog's ``E``/``F`` lines), without terminal colours and cut to 300 characters.
    Only the last 64 KB are read.

    Args:
        log_path: The log the program's output went to.
        start: Where in the log this run of the program began (earlier runs wrote above it).
    """
    try:
        with open(log_path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            offset = max(start, size - _ERROR_TAIL_BYTES)
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return None
    lines = [_CONTROL.sub("", line) for line in data.decode("utf-8", "replace").splitlines()]
    if offset > start and lines:
        lines.pop(0)  # begun mid-line
    found = _traceback_end(lines)
    for pattern in (_GLOG_FATAL, _ERROR_LINE):
        if found is None:
            found = next((line for line in reversed(lines) if pattern.search(line)), None)
    line = (found or "").strip()
    if not line:
        return None
    return line if len(line) <= _ERROR_LINE_CHARS else line[: _ERROR_LINE_CHARS - 3] + "..."


def _traceback_end(lines: list[str]) -> str | None:
    """The exception line that ends the last Python traceback in ``lines``, if any."""
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if not starts:
        return None
    for line in lines[starts[-1] + 1 :]:
        # The frames are indented; the first line that is not ends the traceback.
        if not line.strip() or line[:1].isspace():
            continue
        return line if _EXCEPTION_LINE.fullmatch(line.rstrip()) else None
    return None
