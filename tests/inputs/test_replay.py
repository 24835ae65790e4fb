"""Pins the replay provider: existing labels read, checked line by line, and parsed like output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.errors import UserError
from harness.core.records import GoldItem, GoldSet
from harness.inputs.replay import read_replay, replay_records

LABELS = ["positive", "negative", "neutral"]


def write(path: Path, *lines: object) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        encoding="utf-8",
    )
    return path


def gold_set(set_id: str, *ids: str) -> GoldSet:
    items = tuple(GoldItem(i, {"text": f"review {i}"}, {"a": "positive"}) for i in ids)
    return GoldSet(set_id, f"{set_id}.jsonl", items, ("a",), "0" * 64)


# --- read_replay -------------------------------------------------------------------------------


def test_read_replay(tmp_path):
    path = write(
        tmp_path / "labels.jsonl",
        "# exported from the old tool",
        "",
        {"id": "r1", "label": "positive", "confidence": 0.75},
        {"id": 2, "label": "Negative"},
        {"id": "r3", "label": "neutral", "confidence": 1},
        {"id": "r4", "label": "neutral", "confidence": None, "extra": "ignored"},
        {"id": "r5", "label": {"label": "positive"}, "confidence": 0},
    )
    assert read_replay(path) == {
        "r1": ("positive", 0.75),
        "2": ("Negative", None),
        "r3": ("neutral", 1.0),
        "r4": ("neutral", None),
        "r5": ({"label": "positive"}, 0.0),
    }
    assert isinstance(read_replay(path)["r3"][1], float)


# (line, message fragment); each is written between good lines of one file.
BAD_LINES = [
    ('{"id": "x1", "label": "positive"', "invalid JSON"),
    ("not json at all", "invalid JSON"),
    ('["x2", "positive"]', "needs 'id' and 'label'"),
    ({"label": "positive"}, "needs 'id' and 'label'"),
    ({"id": "x3"}, "needs 'id' and 'label'"),
    ({"id": "ok1", "label": "negative"}, "duplicate id 'ok1'"),
    (
        {"id": "x4", "label": "positive", "confidence": 1.5},
        "confidence 1.5 must be a number in [0, 1]",
    ),
    ({"id": "x5", "label": "positive", "confidence": -0.1}, "confidence -0.1"),
    ({"id": "x6", "label": "positive", "confidence": "0.9"}, "confidence '0.9'"),
    ({"id": "x7", "label": "positive", "confidence": True}, "confidence True"),
    ({"id": "x8", "label": "positive", "confidence": [0.5]}, "confidence [0.5]"),
    ('{"id": "x9", "label": "positive", "confidence": NaN}', "confidence nan"),
    ('{"id": "x10", "label": "positive", "confidence": Infinity}', "confidence inf"),
    ({"id": "x11", "label": "positive", "confidence": 80}, "confidence 80"),
]


def test_every_bad_line_is_reported_with_its_line_number(tmp_path):
    lines: list[object] = [{"id": "ok1", "label": "positive"}]
    expected = {}
    for content, fragment in BAD_LINES:
        lines.append(content)
        expected[len(lines)] = fragment
        lines.append({"id": f"ok{len(lines)}", "label": "neutral"})
    path = write(tmp_path / "labels.jsonl", *lines)
    with pytest.raises(UserError) as info:
        read_replay(path)
    problems = info.value.problems
    assert sorted(p.line for p in problems) == sorted(expected)
    for problem in problems:
        assert problem.file == path
        assert expected[problem.line] in problem.message, (problem.line, problem.message)
    assert info.value.hint


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "not found"), ("", "empty"), (b"\xff\xfe", "UTF-8")],
    ids=["missing", "empty", "not_utf8"],
)
def test_file_level_problems(tmp_path, content, fragment):
    path = tmp_path / "labels.jsonl"
    if content is not None:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(UserError, match=fragment):
        read_replay(path)


# --- replay_records ----------------------------------------------------------------------------


def records_by_item(tmp_path, *lines, gold_sets=None):
    path = write(tmp_path / "labels.jsonl", *lines)
    gold_sets = gold_sets or [gold_set("g", "r1", "r2", "r3", "r4", "r5")]
    records = replay_records("old-tool", path, gold_sets, LABELS)
    return path, records, {(r.gold_set, r.item): r for r in records}


def test_labels_are_normalised_by_the_parser(tmp_path):
    _, _, by_item = records_by_item(
        tmp_path,
        {"id": "r1", "label": "Positive", "confidence": 0.8},
        {"id": "r2", "label": " NEGATIVE. "},
        {"id": "r3", "label": "neutral", "confidence": 0.6},
        {"id": "r4", "label": {"label": "negative"}, "confidence": 0.9},
        {"id": "r5", "label": "**neutral**"},
    )
    got = {item: (r.label, r.failure, r.parse_method) for (_, item), r in by_item.items()}
    assert got == {
        "r1": ("positive", None, "normalised"),
        "r2": ("negative", None, "normalised"),
        "r3": ("neutral", None, "exact"),
        "r4": ("negative", None, "json"),
        "r5": ("neutral", None, "normalised"),
    }
    r1 = by_item["g", "r1"]
    assert (r1.confidence, r1.confidence_source) == (0.8, "replay")
    assert r1.raw == "Positive"
    assert (r1.setup, r1.sample, r1.cached, r1.cost_usd) == ("old-tool", 0, True, 0.0)
    assert by_item["g", "r4"].raw == json.dumps({"label": "negative"})
    r2 = by_item["g", "r2"]
    assert (r2.confidence, r2.confidence_source) == (None, None)  # none given


@pytest.mark.parametrize("label", ["great", "", "positive or negative", 7, None])
def test_a_label_outside_the_labels_is_a_failure_record(tmp_path, label):
    _, records, by_item = records_by_item(
        tmp_path,
        {"id": "r1", "label": label, "confidence": 0.9},
        *({"id": i, "label": "positive"} for i in ("r2", "r3", "r4", "r5")),
    )
    r1 = by_item["g", "r1"]
    assert r1.label is None
    assert r1.failure is not None
    assert r1.failure_detail
    assert (r1.confidence, r1.confidence_source) == (None, None)  # no label, no confidence
    assert all(r.label == "positive" for r in records if r.item != "r1")


def test_a_gold_item_missing_in_the_file_is_a_failure_record(tmp_path):
    path, records, by_item = records_by_item(
        tmp_path,
        {"id": "r1", "label": "positive"},
        {"id": "r3", "label": "neutral"},
        {"id": "not-in-gold", "label": "neutral"},
    )
    assert [r.item for r in records] == ["r1", "r2", "r3", "r4", "r5"]  # gold order, no extras
    for item in ("r2", "r4", "r5"):
        record = by_item["g", item]
        assert (record.label, record.failure) == (None, "missing_in_replay")
        assert repr(item) in record.failure_detail and path.name in record.failure_detail
    assert by_item["g", "r3"].label == "neutral"


def test_one_record_per_item_of_every_gold_set(tmp_path):
    _, records, by_item = records_by_item(
        tmp_path,
        {"id": "a1", "label": "positive"},
        {"id": "b1", "label": "negative"},
        gold_sets=[gold_set("ga", "a1", "a2"), gold_set("gb", "b1")],
    )
    assert [(r.gold_set, r.item) for r in records] == [("ga", "a1"), ("ga", "a2"), ("gb", "b1")]
    assert by_item["gb", "b1"].label == "negative"
    assert by_item["ga", "a2"].failure == "missing_in_replay"


def test_a_bad_file_stops_before_any_record(tmp_path):
    path = write(tmp_path / "labels.jsonl", {"id": "r1", "label": "positive", "confidence": 2})
    with pytest.raises(UserError) as info:
        replay_records("old-tool", path, [gold_set("g", "r1")], LABELS)
    assert [p.line for p in info.value.problems] == [1]


def test_structured_labels_replay_without_parsing(tmp_path):
    """Sets and rubrics from a file are checked, not parsed: a bad one is a failure record."""
    from harness.config import TaskConfig
    from harness.tasks.labelspace import LabelSpace

    space = LabelSpace(TaskConfig(type="multilabel", labels=["a", "b", "c"]))
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "r1", "label": ["c", "a"]}\n{"id": "r2", "label": ["a", "zzz"]}\n')
    records = replay_records("vendor", path, [gold_set("g", "r1", "r2")], ["a", "b", "c"], space)
    by_item = {r.item: r for r in records}
    assert by_item["r1"].label == ["a", "c"] and by_item["r1"].failure is None
    assert by_item["r2"].label is None and by_item["r2"].failure == "not_in_labels"
    assert "zzz" in by_item["r2"].failure_detail
