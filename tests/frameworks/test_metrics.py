"""Metric channels: EMetrics records, prefixed JSON lines, regexes and followed files; and a
failed program's own error, from its log."""

from __future__ import annotations

import json
from pathlib import Path

from sweeper.frameworks._metrics import (
    FileFollower,
    LineParser,
    emetrics_record,
    json_line_record,
    numeric_metrics,
    program_error,
)

CHAINED = """\
Traceback (most recent call last):
  File "train.py", line 3, in <module>
    import tensorflow.contrib
ModuleNotFoundError: No module named 'tensorflow.contrib'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "train.py", line 5, in <module>
    x = tf.placeholder(tf.float32)
        ^^^^^^^^^^^^^^
AttributeError: module 'tensorflow' has no attribute 'placeholder'
E0000 00:00:1796302320.600091 6196 cuda.cc:47] a line TensorFlow writes as it exits
"""


def test_emetrics_record_of_the_original_service():
    line = json.dumps(
        {
            "meta": {"training_id": "training-abc", "time": 1530000000000, "rindex": 1},
            "grouplabel": "test",
            "etimes": {"iteration": {"type": 2, "value": "40"}},
            "values": {"accuracy": {"type": 3, "value": "0.6"}, "note": {"type": 0, "value": "x"}},
        }
    )
    assert emetrics_record(line) == (40, {"test_accuracy": 0.6})


def test_emetrics_train_group_keeps_names_and_falls_back_to_rindex():
    line = json.dumps({"meta": {"rindex": 7}, "grouplabel": "train", "values": {"loss": 0.5}})
    assert emetrics_record(line) == (7, {"loss": 0.5})


def test_emetrics_rejects_other_lines():
    assert emetrics_record("not json") is None
    assert emetrics_record('{"no": "values"}') is None


def test_numeric_metrics_drop_non_numbers():
    record = {"step": 3, "loss": 0.1, "name": "x", "ok": True, "count": 2}
    assert numeric_metrics(record) == (3, {"loss": 0.1, "count": 2.0})


def test_line_parser_reads_prefixed_json_and_regex_groups():
    seen: list[tuple] = []
    parse = LineParser(
        "SWEEPER_METRICS ",
        [r"Iteration (?P<step>\d+).*loss = (?P<loss>[0-9.e+-]+)"],
        lambda step, metrics: seen.append((step, metrics)),
    )
    parse('SWEEPER_METRICS {"step": 2, "acc": 0.5}')
    parse("I1122 02:32:24.749037 10988 solver.cpp:239] Iteration 450 (3125 iter/s), loss = 0.021")
    parse("unrelated line")
    parse("SWEEPER_METRICS not json")
    assert seen == [(2, {"acc": 0.5}), (450, {"loss": 0.021})]


def test_file_follower_reads_only_complete_new_lines(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    seen: list[tuple] = []
    follower = FileFollower(path, json_line_record, lambda s, m: seen.append((s, m)))
    follower.poll()  # no file yet
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    follower.poll()
    assert seen == [(1, {"loss": 1.0})]
    with open(path, "a") as out:
        out.write('ss": 0.5}\n')
    follower.poll()
    assert seen == [(1, {"loss": 1.0}), (2, {"loss": 0.5})]


def test_program_error_is_the_end_of_the_last_traceback(tmp_path: Path):
    log = tmp_path / "trial.log"
    log.write_text("epoch 1: loss=0.5\n" + CHAINED)
    assert (
        program_error(log) == "AttributeError: module 'tensorflow' has no attribute 'placeholder'"
    )
    log.write_text('Traceback (most recent call last):\n  File "t.py", line 1\nKeyboardInterrupt\n')
    assert program_error(log) == "KeyboardInterrupt"


def test_program_error_without_a_traceback_is_the_last_error_line(tmp_path: Path):
    log = tmp_path / "trial.log"
    caffe = "F1203 12:34:56.789012  4242 net.cpp:90] Check failed: bottom_size == 1 (2 vs. 1)"
    log.write_text(
        f"I1203 12:34:55.000001  4242 solver.cpp:239] Iteration 0, loss = 2.3\n{caffe}\n"
        "*** Check failure stack trace: ***\n    @     0x7f3 google::LogMessage::Fail()\n"
    )
    assert program_error(log) == caffe
    log.write_text(
        "usage: train.py [-h] [--lr LR]\ntrain.py: error: unrecognized arguments: --x=1\n"
    )
    assert program_error(log) == "train.py: error: unrecognized arguments: --x=1"
    log.write_text("\x1b[31mERROR\x1b[0m: out of memory\nepoch 2\n")
    assert program_error(log) == "ERROR: out of memory"
    log.write_text("epoch 1: val error: 0.12\ntrain_error=0.3\nerror 0.5\nNo errors found\n")
    assert program_error(log) is None
    assert program_error(tmp_path / "missing.log") is None


def test_program_error_reads_this_runs_last_64_kb_and_cuts_long_lines(tmp_path: Path):
    log = tmp_path / "trial.log"
    log.write_text(f"ValueError: {'x' * 400}\n")
    error = program_error(log)
    assert error is not None and len(error) == 300 and error.startswith("ValueError: xxx")
    log.write_text("Traceback (most recent call last):\nValueError: old\n" + "step\n" * 20_000)
    assert program_error(log) is None  # beyond the last 64 KB
    # A retried trial's log: the first attempt's error is not the second's.
    log.write_text("RuntimeError: attempt 1\n")
    start = log.stat().st_size
    with open(log, "a") as out:
        out.write("attempt 2 ends quietly\n")
    assert program_error(log, start) is None
