"""The bad-input contract, over a corpus of hostile inputs (``tests/cli/_hostile.py``): every
command exits 0, or 2 (1 for a sweep that is not there) with exactly one line on stderr, never a
traceback, and creates no file while it refuses."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from _hostile import Case, cases

# Not a timing test: a case that takes this long has hung (a grid enumerated, aliases expanded).
HANG_S = 20


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    new_files: list[str]
    seconds: float
    exception: BaseException | None


class _Hung(Exception):
    pass


@contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def hang(signum: int, frame: object) -> None:
        raise _Hung(f"still running after {seconds} s")

    # pytest-timeout's own limit runs on the same timer: it is put back afterwards.
    outer, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.01))


def run_case(case: Case, folder: Path) -> Outcome:
    for name, text in case.files.items():
        (folder / name).write_text(text, encoding="utf-8")
    before = {p for p in folder.rglob("*")}
    env = dict(case.env)
    runner = CliRunner()
    cwd = os.getcwd()
    start = time.monotonic()
    os.chdir(folder)
    try:
        with _alarm(HANG_S):
            result = runner.invoke(main, case.args, env=env, catch_exceptions=True)
    finally:
        os.chdir(cwd)
    seconds = time.monotonic() - start
    after = {p for p in folder.rglob("*")}
    return Outcome(
        result.exit_code,
        result.stdout,
        result.stderr,
        sorted(str(p.relative_to(folder)) for p in after - before),
        seconds,
        result.exception if not isinstance(result.exception, SystemExit) else None,
    )


def problems(case: Case, outcome: Outcome) -> list[str]:
    """How ``outcome`` breaks the contract for ``case`` (nothing: it keeps it)."""
    found = []
    if outcome.exception is not None:
        found.append(f"raised {type(outcome.exception).__name__}: {outcome.exception}")
    elif outcome.exit_code not in case.exit_codes:
        found.append(f"exit {outcome.exit_code}")
    elif case.expect == "error" and outcome.exit_code == 0:
        found.append("accepted")
    if "Traceback" in outcome.stdout + outcome.stderr:
        found.append("traceback")
    if outcome.exit_code != 0:
        lines = outcome.stderr.strip().splitlines()
        if len(lines) != 1:
            found.append(f"{len(lines)} lines on stderr")
        for garbled in _GARBLED:
            if garbled in outcome.stderr:
                found.append(f"garbled: {garbled!r}")
        if outcome.new_files:
            found.append(f"wrote {', '.join(outcome.new_files)}")
    return found


# Pieces of messages that lie or garble: an empty list of choices, pydantic's union members
# in a field's path, a line number that is not one.
_GARBLED = ("one of ,", "list[", "dict[", "line None", "function-", ".str)", ".str ")

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_keeps_the_contract(case: Case, tmp_path: Path) -> None:
    outcome = run_case(case, tmp_path)
    assert not problems(case, outcome), (problems(case, outcome), outcome.stderr[-500:])


if __name__ == "__main__":
    # python tests/cli/test_hostile.py: the unclean cases, by class, and the slowest.
    import tempfile
    from collections import Counter

    unclean: Counter[str] = Counter()
    total: Counter[str] = Counter()
    slow = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            outcome = run_case(case, Path(folder))
        found = problems(case, outcome)
        total[case.klass] += 1
        slow.append((outcome.seconds, case.name))
        if found:
            unclean[case.klass] += 1
            print(
                f"UNCLEAN [{case.klass}] {case.name}: {'; '.join(found)} | "
                f"{outcome.stderr.strip()[:160]!r}"
            )
    print({k: f"{unclean[k]}/{total[k]}" for k in total}, sum(unclean.values()), len(CASES))
    print("slowest:", sorted(slow, reverse=True)[:5])
