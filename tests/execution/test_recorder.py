"""How the driver's recorder words a trial's error (sweeper/execution/_recorder.py)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from sweeper.execution._recorder import _error_text


def _trial(folder: Path) -> SimpleNamespace:
    # What _error_text reads of a Tune Trial: where Ray pickled its error (nothing here).
    return SimpleNamespace(
        local_path=str(folder), run_metadata=SimpleNamespace(pickled_error_filename=None)
    )


def test_the_trial_s_own_error_file_is_read(tmp_path: Path) -> None:
    error_file = tmp_path / "error.txt"
    error_file.write_text("trial-0001 failed: ValueError: no\n", encoding="utf-8")
    text = _error_text(_trial(tmp_path), error_file, since=time.time())  # type: ignore[arg-type]
    assert text == "trial-0001 failed: ValueError: no"


def test_an_empty_error_file_from_a_full_disk_is_not_the_error(tmp_path: Path) -> None:
    error_file = tmp_path / "error.txt"
    error_file.write_text("", encoding="utf-8")
    text = _error_text(_trial(tmp_path), error_file, since=time.time())  # type: ignore[arg-type]
    assert text == "the trial's process died without an error message"
