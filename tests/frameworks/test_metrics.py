"""Metric channels: EMetrics records, prefixed JSON lines, regexes and followed files."""

from __future__ import annotations

import json
from pathlib import Path

from sweeper.frameworks._metrics import (
    FileFollower,
    LineParser,
    emetrics_record,
    json_line_record,
    numeric_metrics,
)


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
