"""`prelabel label --input` pools in Parquet and in a Hugging Face dataset saved to disk
(issue 19): the same items, checks and row-numbered errors as the JSONL pool with the same
rows, read a chunk at a time."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import NEW, invoke, label_run, read, setup_experiment

from harness.core.errors import UserError
from harness.inputs.tables import table_digest
from harness.inputs.unlabeled import iter_unlabeled, load_unlabeled, scan_unlabeled

pa = pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
import pyarrow.parquet as pq  # noqa: E402

ROWS = [
    {"id": "a", "text": "A great toaster.", "n": 1, "meta": {"shop": "x", "lang": "en"}},
    {"id": "b", "text": "Awful kettle.", "n": 2, "meta": {"shop": "y", "lang": "en"}},
    {"id": "c", "text": "It is a lamp.", "n": 3, "meta": {"shop": "x", "lang": "de"}},
    {"id": "d", "text": "Great colour.", "n": 4, "meta": {"shop": "z", "lang": "en"}},
    {"id": "e", "text": "Fine.", "n": 5, "meta": {"shop": "y", "lang": "fr"}},
]


def jsonl(tmp_path, rows=ROWS):
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def parquet(tmp_path, rows=ROWS, name="pool.parquet"):
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def saved(tmp_path, rows=ROWS):
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    path = tmp_path / "pool_ds"
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


WRITERS = {"parquet": parquet, "pq": lambda p, rows=ROWS: parquet(p, rows, "pool.pq"), "hf": saved}


def items(pool, chunk):
    return [
        [(i.id, i.fields, i.meta, i.line) for i in part.items]
        for part in iter_unlabeled(pool, chunk)
    ]


@pytest.mark.parametrize("fmt", WRITERS)
def test_a_table_pool_gives_the_items_of_its_jsonl_twin(tmp_path, fmt):
    path = WRITERS[fmt](tmp_path)
    pool, twin = scan_unlabeled(path), scan_unlabeled(jsonl(tmp_path))
    assert pool.n == twin.n == 5
    assert pool.content_hash == table_digest(path, "hf" if fmt == "hf" else "parquet", "x")
    whole = items(pool, 5)
    assert whole == items(twin, 5)
    assert whole[0][0] == (
        "a",
        {"text": "A great toaster.", "n": 1},
        {"shop": "x", "lang": "en"},
        1,
    )
    chunked = items(pool, 2)
    assert [len(part) for part in chunked] == [2, 2, 1]
    assert [i for part in chunked for i in part] == whole[0]
    assert load_unlabeled(path).items == load_unlabeled(jsonl(tmp_path)).items


@pytest.mark.parametrize("fmt", WRITERS)
def test_a_missing_or_repeated_id_is_named_with_its_row(tmp_path, fmt):
    rows = [dict(r) for r in ROWS] + [dict(ROWS[0], n=6), dict(ROWS[1], n=7)]
    rows[2]["id"] = None
    path = WRITERS[fmt](tmp_path, rows)
    with pytest.raises(UserError) as info:
        scan_unlabeled(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:3: each item needs an 'id'",
        f"{path}:6: duplicate id 'a' (row 1)",
        f"{path}:7: duplicate id 'b' (row 2)",
    ]
    assert info.value.hint == f"fix these rows of {path.name}"


def test_an_empty_table_has_no_items(tmp_path):
    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pylist([], schema=schema), empty)
    with pytest.raises(UserError, match="the input file has no items") as info:
        scan_unlabeled(empty)
    assert info.value.problems[0].file == empty
    assert info.value.hint == "one item per row"


def test_an_empty_saved_dataset_has_no_items(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    empty = tmp_path / "empty_ds"
    datasets.Dataset.from_dict({"id": [], "text": []}).save_to_disk(str(empty))
    with pytest.raises(UserError, match="the input file has no items"):
        scan_unlabeled(empty)


def test_a_dataset_dict_folder_is_refused(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    path = tmp_path / "splits"
    part = datasets.Dataset.from_list(ROWS)
    datasets.DatasetDict({"train": part, "test": part}).save_to_disk(str(path))
    with pytest.raises(UserError, match="several splits") as info:
        scan_unlabeled(path)
    assert info.value.problems[0].file == path


def test_a_parquet_pool_changed_before_it_is_read_is_refused(tmp_path):
    path = parquet(tmp_path)
    pool = scan_unlabeled(path)
    parquet(tmp_path, [dict(r, text=r["text"] + "!") for r in ROWS])
    with pytest.raises(UserError, match="changed while it was being labelled"):
        list(iter_unlabeled(pool, 2))


def test_a_parquet_pool_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    path = parquet(tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(UserError) as info:
        scan_unlabeled(path)
    assert info.value.hint == "pip install 'prelabel[parquet]'"


@pytest.mark.http
def test_label_writes_the_same_prelabels_from_parquet(srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    assert invoke("label", str(exp.config), "--input", str(new)).exit_code == 0
    from_jsonl = label_run(exp)
    table = parquet(tmp_path, NEW, "new.parquet")
    calls = len(srv.requests)
    result = invoke("label", str(exp.config), "--input", str(table))
    assert result.exit_code == 0, result.output
    # Both runs may start in the same second, so their names need not sort in run order.
    [from_parquet] = [d for d in exp.run_dirs() if "-label-" in d.name and d != from_jsonl]
    assert len(srv.requests) == calls  # every prompt as from JSONL: all found in the cache
    for name in ("prelabels.jsonl", "review_queue.jsonl"):
        assert read(from_parquet / name) == read(from_jsonl / name), name
    manifest = json.loads((from_parquet / "manifest.json").read_text())
    assert manifest["input"]["content_hash"] == table_digest(table, "parquet", "x")
    assert manifest["input"]["n"] == len(NEW)


def test_a_table_without_an_id_column_is_one_error_not_one_per_row(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"text": [f"t{k}" for k in range(500)], "key": list(range(500))}), path)
    with pytest.raises(UserError) as caught:
        scan_unlabeled(path)
    [problem] = caught.value.problems
    assert problem.file == path and "no 'id' column" in problem.message
    assert "text, key" in problem.message
