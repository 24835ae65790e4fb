"""Parquet copies of a run's JSONL files (issue 19, item 4): every row's values read back, types
unified across batches, JSON text where no one type fits, and no partial file on failure."""

from __future__ import annotations

import json
import sys
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from conftest import invoke, label_run, only_run_dir, setup_experiment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.core.errors import UserError
from harness.core.parquet import jsonl_to_parquet, write_parquet_copies

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def write(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def json_columns(table) -> set[str]:
    return {f.name for f in table.schema if (f.metadata or {}).get(b"encoding") == b"json"}


def same(expected, got) -> bool:
    """`got` holds `expected`: a key absent from an object reads back as None; an int in a
    column that also holds floats reads back as that float."""
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and set(expected) <= set(got)
            and all(same(expected.get(k), v) for k, v in got.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(same(e, g) for e, g in zip(expected, got, strict=True))
        )
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(got, float) and isinstance(expected, int):
        return got == float(expected)
    return type(expected) is type(got) and expected == got


def assert_round_trip(src: Path, dst: Path) -> list[dict]:
    """Every row of `src` is a row of `dst`, JSON-text columns compared after json.loads."""
    rows = [json.loads(x) for x in src.read_text(encoding="utf-8").splitlines() if x.strip()]
    table = pq.read_table(dst)
    encoded = json_columns(table)
    got = table.to_pylist()
    assert len(got) == len(rows)
    for i, (want, row) in enumerate(zip(rows, got, strict=True)):
        # Columns in first-seen key order; every key of every row is a column.
        assert set(want) <= set(row), i
        for key, value in row.items():
            if key in encoded and value is not None:
                value = json.loads(value)
            assert same(want.get(key), value), (i, key, want.get(key), value)
    return got


def test_a_real_runs_labels_and_prelabels_round_trip(srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    evaluation = only_run_dir(exp)
    names = ["labels.jsonl", "prelabels.jsonl", "review_queue.jsonl"]
    assert write_parquet_copies(evaluation, names) == [evaluation / "labels.parquet"]
    got = assert_round_trip(evaluation / "labels.jsonl", evaluation / "labels.parquet")
    assert len(got) == 12 and {r["item"] for r in got} == {f"g{i:02d}" for i in range(1, 13)}
    assert pq.read_schema(evaluation / "labels.parquet").field("confidence").type == pa.float64()

    assert invoke("label", str(exp.config), "--input", str(new)).exit_code == 0
    run = label_run(exp)
    written = write_parquet_copies(run, names)
    assert written == [run / n.replace(".jsonl", ".parquet") for n in names]
    for path in written:
        assert_round_trip(path.with_suffix(".jsonl"), path)
    assert not list(run.glob("*.tmp"))


def test_a_jury_row_makes_its_columns_json_text_and_leaves_the_others_typed(tmp_path):
    rows = [
        {
            "item": "a",
            "prompt_hash": "h1",
            "model": "m",
            "confidence": None,
            "fields": {"text": "x"},
        },
        {
            "item": "b",
            "prompt_hash": "h2",
            "model": "m",
            "confidence": 0.5,
            "fields": {"text": "y"},
        },
        {
            "item": "c",
            "prompt_hash": {"zs": "h1", "fs": "h3"},
            "model": ["m", "n"],
            "confidence": 0.9,
            "fields": {"text": "z"},
        },
    ]
    src = write(tmp_path / "prelabels.jsonl", rows)
    assert jsonl_to_parquet(src, tmp_path / "p.parquet") == 3
    table = pq.read_table(tmp_path / "p.parquet")
    assert table.column_names == ["item", "prompt_hash", "model", "confidence", "fields"]
    assert json_columns(table) == {"prompt_hash", "model"}
    assert table.column("prompt_hash").to_pylist() == [json.dumps(r["prompt_hash"]) for r in rows]
    assert table.schema.field("item").type == pa.string()
    assert table.schema.field("confidence").type == pa.float64()
    assert table.schema.field("fields").type == pa.struct([("text", pa.string())])
    assert_round_trip(src, tmp_path / "p.parquet")


def test_null_then_float_absent_keys_and_empty_objects(tmp_path):
    rows = [
        {"score": None, "meta": {}, "deep": {"x": {}}, "listed": [{}], "mixed": {}, "odd": 0.5},
        {"score": 1, "meta": {}, "deep": {"x": {}}, "listed": [], "mixed": {"k": 1}, "odd": True},
        {"score": 0.25, "late": True},
    ]
    src = write(tmp_path / "rows.jsonl", rows)
    assert jsonl_to_parquet(src, tmp_path / "rows.parquet") == 3
    table = pq.read_table(tmp_path / "rows.parquet")
    assert table.schema.field("score").type == pa.float64()
    assert table.column("score").to_pylist() == [None, 1.0, 0.25]
    # Parquet cannot store an object with no keys: such columns are JSON text.
    assert json_columns(table) == {"meta", "deep", "listed", "odd"}  # true is not 1.0
    assert table.column("meta").to_pylist() == ["{}", "{}", None]
    # Beside an object with keys, {} is that object with every key null.
    assert table.column("mixed").to_pylist() == [{"k": None}, {"k": 1}, None]
    assert table.column("late").to_pylist() == [None, None, True]
    assert_round_trip(src, tmp_path / "rows.parquet")


def test_an_empty_file_is_a_parquet_file_of_no_rows(tmp_path):
    src = tmp_path / "labels.jsonl"
    src.write_text("", encoding="utf-8")
    assert jsonl_to_parquet(src, tmp_path / "labels.parquet") == 0
    assert pq.read_table(tmp_path / "labels.parquet").num_rows == 0


def test_types_are_unified_over_every_batch(tmp_path):
    rows = [{"i": i, "score": None, "hash": f"h{i}"} for i in range(25)]
    for i in range(8, 25):
        rows[i]["score"] = i if i < 20 else i + 0.5  # ints first, a float in the 6th batch
    rows[22]["hash"] = {"jury": ["h1", "h2"]}  # an object only in the 6th batch
    rows[24]["extra"] = [1, 2]  # a key first seen in the last row
    src = write(tmp_path / "rows.jsonl", rows)
    dst = tmp_path / "rows.parquet"
    assert jsonl_to_parquet(src, dst, batch_rows=4) == 25
    assert pq.ParquetFile(dst).num_row_groups == 7  # written batch by batch
    table = pq.read_table(dst)
    assert table.column_names == ["i", "score", "hash", "extra"]
    assert table.schema.field("i").type == pa.int64()
    assert table.schema.field("score").type == pa.float64()
    assert json_columns(table) == {"hash"}
    assert table.schema.field("extra").type == pa.list_(pa.int64())
    assert_round_trip(src, dst)


def test_memory_does_not_grow_with_the_file(tmp_path):
    row = {"item": "x" * 20, "label": "positive", "confidence": 0.5, "fields": {"text": "y" * 60}}
    src = write(tmp_path / "big.jsonl", [row] * 40_000)  # 5 MB of JSON, ~40 MB as dicts
    tracemalloc.start()
    try:
        assert jsonl_to_parquet(src, tmp_path / "big.parquet", batch_rows=500) == 40_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < src.stat().st_size / 2, peak


def test_an_unreadable_line_names_the_file_and_line_and_leaves_no_file(tmp_path):
    src = tmp_path / "labels.jsonl"
    src.write_text('{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n', encoding="utf-8")
    dst = tmp_path / "labels.parquet"
    with pytest.raises(UserError) as err:
        jsonl_to_parquet(src, dst)
    assert f"{src}:3: invalid JSON" in str(err.value)
    src.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"labels\.jsonl:2: not a JSON object"):
        jsonl_to_parquet(src, dst)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.jsonl"]


def test_a_failure_while_writing_leaves_no_file(tmp_path, monkeypatch):
    src = write(tmp_path / "labels.jsonl", [{"a": i} for i in range(10)])
    calls = []

    def fail_on_second(self, table, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return original(self, table, *args, **kwargs)

    original = pq.ParquetWriter.write_table
    monkeypatch.setattr(pq.ParquetWriter, "write_table", fail_on_second)
    with pytest.raises(UserError, match="No space left on device"):
        jsonl_to_parquet(src, tmp_path / "labels.parquet", batch_rows=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.jsonl"]


def test_without_pyarrow_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    src = write(tmp_path / "labels.jsonl", [{"a": 1}])
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(UserError) as err:
        jsonl_to_parquet(src, tmp_path / "labels.parquet")
    assert "Parquet output needs" in str(err.value) and "pyarrow" in str(err.value)
    assert err.value.hint == "pip install 'prelabel[parquet]'"
    assert not (tmp_path / "labels.parquet").exists()


def test_importing_the_module_does_not_import_pyarrow():
    import subprocess

    code = "import sys, harness.core.parquet; print('pyarrow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "y", "z", ""]), inner, max_size=3)
    ),
    max_leaves=8,
)
rows_st = st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), values), max_size=10)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_st, batch_rows=st.integers(1, 4))
def test_random_rows_round_trip(rows, batch_rows):
    with tempfile.TemporaryDirectory() as tmp:
        src = write(Path(tmp) / "rows.jsonl", rows)
        dst = Path(tmp) / "rows.parquet"
        count = jsonl_to_parquet(src, dst, batch_rows=batch_rows)
        if not any(rows):  # no column at all: Parquet keeps no row count without one
            assert count == pq.read_table(dst).num_rows == 0
            return
        assert count == len(rows)
        assert_round_trip(src, dst)
        # Columns in first-seen key order.
        seen = list(dict.fromkeys(k for r in rows for k in r))
        assert pq.read_schema(dst).names == seen
