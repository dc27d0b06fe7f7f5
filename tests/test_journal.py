"""The sweep's journal on disk: torn lines from a kill or a full disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper._journal import Journal, TrialRecord, drop_torn_tail, read_journal


def test_a_torn_last_line_is_cut_before_more_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    drop_torn_tail(path)
    assert path.read_bytes() == b'{"a": 1}\n{"b": 2}\n'


def test_a_whole_file_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_bytes(b'{"a": 1}\n')
    drop_torn_tail(path)
    assert path.read_bytes() == b'{"a": 1}\n'


@pytest.mark.parametrize("content", [b"", b'{"only": "torn'])
def test_a_file_with_no_whole_line_ends_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_bytes(content)
    drop_torn_tail(path)
    assert path.read_bytes() == b""


def test_a_torn_line_longer_than_a_block_is_cut_whole(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"x" * 200_000)
    drop_torn_tail(path)
    assert path.read_bytes() == b'{"a": 1}\n'


def test_a_missing_file_is_no_error(tmp_path: Path) -> None:
    drop_torn_tail(tmp_path / "absent.jsonl")
    assert not (tmp_path / "absent.jsonl").exists()


def test_the_next_session_s_first_event_survives_a_torn_line(tmp_path: Path) -> None:
    """Without the cut, the new line would be glued onto the torn one and lost with it."""
    first = Journal(tmp_path)
    first.write(TrialRecord(name="trial-0001", params={}, state="completed"), "complete")
    first.close()
    with open(tmp_path / "trials.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"event": "running", "name": "trial-0002", "sta')  # the disk filled
    second = Journal(tmp_path)
    second.write(TrialRecord(name="trial-0002", params={}, state="queued"), "queued")
    second.close()
    assert {name: r.state for name, r in read_journal(tmp_path).items()} == {
        "trial-0001": "completed",
        "trial-0002": "queued",
    }
