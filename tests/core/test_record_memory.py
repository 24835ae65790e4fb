"""A run holds every label record and gold item through its scoring (issue 18.3: 100,000 of
each under 600 MB): records share their field-name set and key table, gold items their
keys and labels; what they hold and write stays the same."""

from __future__ import annotations

import json
import sys
import tracemalloc

from harness.config import GoldSetConfig
from harness.core.records import CallSpec, LabelRecord, ProviderReply, TokenLogprobRecord
from harness.inputs.goldset import load_gold_set
from harness.run.reply_records import failure_record, to_record
from harness.run.store import read_labels

LABELS = ["positive", "negative", "neutral"]


def spec(i: int) -> CallSpec:
    return CallSpec("s", "g", f"i{i:06d}", 0, "m", "openai/m", (), {}, None, 5, f"{i:064x}")


def reply(i: int) -> ProviderReply:
    top = (("positive", -0.1), ("negative", -2.5), ("neutral", -3.0))
    lp = [TokenLogprobRecord("positive", -0.1, top)]
    return ProviderReply(f"positive {i}", lp, 40, 1, 0.0001, "fake-model", 0.01)


def records(
    n: int, inputs: list[tuple[CallSpec, ProviderReply]] | None = None
) -> list[LabelRecord]:
    inputs = inputs or [(spec(i), reply(i)) for i in range(n)]
    return [to_record(s, r, LABELS, cached=False, attempts=1, started=1.0) for s, r in inputs]


def test_records_share_their_field_set_and_key_table():
    a, b = records(2)
    assert a.model_fields_set is b.model_fields_set
    # A dict of its own keys is 0.83 kB at these 26 fields; a key-sharing one 0.3 kB.
    assert sys.getsizeof(a.__dict__) < 500


def test_a_label_record_adds_under_1_15_kb():
    records(10)  # warm up: imports, caches
    inputs = [(spec(i), reply(i)) for i in range(2000)]  # the ids, keys and texts: not counted
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = records(len(inputs), inputs)
        per_record = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    # What a record adds to its spec and reply (confidences, label probabilities, floats,
    # the dict of its 26 values): 1.43 kB with a dict of its own keys (pydantic's), 0.92 kB
    # with the shared key table.
    assert per_record < 1150, per_record


def test_compact_records_dump_read_and_change_as_before(tmp_path):
    (record,) = records(1)
    plain = LabelRecord(**record.__dict__)
    assert record == plain and list(record.__dict__) == list(LabelRecord.model_fields)
    line = record.model_dump_json(exclude_none=True)
    assert line == plain.model_dump_json(exclude_none=True)
    assert record.model_dump() == plain.model_dump()
    record.retried_from, record.previous_raw = "no_label_found", "?"  # as --retry-failed does
    assert (record.retried_from, record.previous_raw) == ("no_label_found", "?")
    assert sys.getsizeof(record.__dict__) < 500
    failed = failure_record(spec(1), _error(), 3, 2.0)
    path = tmp_path / "labels.jsonl"
    path.write_text(line + "\n" + failed.model_dump_json(exclude_none=True) + "\n")
    (_, back), (_, back_failed) = read_labels(path)
    assert back == LabelRecord.model_validate_json(line) and back_failed == failed
    assert back.model_fields_set is back_failed.model_fields_set is failed.model_fields_set
    assert back.model_dump_json(exclude_none=True) == line


def _error():
    from harness.providers import ProviderError

    return ProviderError("timeout", "no answer in 60 s", retryable=True)


def test_gold_items_share_keys_and_labels(tmp_path):
    path = tmp_path / "gold.jsonl"
    rows = [
        {"id": f"i{i}", "text": f"t{i}", "annotations": {"a": "x", "b": "y"}, "meta": {"d": "n"}}
        for i in range(2)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    one, two = load_gold_set(GoldSetConfig(id="g", path=path), path, ["x", "y"]).items
    assert [k for k in one.fields] == ["text"] and one.fields["text"] == "t0"
    for a, b in [
        (one.fields, two.fields),
        (one.annotations, two.annotations),
        (one.meta, two.meta),
    ]:
        assert a.keys() == b.keys()
        assert all(x is y for x, y in zip(a, b, strict=True))
    assert one.annotations == {"a": "x", "b": "y"} and one.meta == {"d": "n"}
    assert one.annotations["a"] is two.annotations["a"] and one.meta["d"] is two.meta["d"]
