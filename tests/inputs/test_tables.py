"""Gold sets from Parquet files and from Hugging Face datasets saved to disk
(harness/inputs/tables.py): the same items, checks, errors and scores as the JSONL file
with the same rows."""

from __future__ import annotations

import json

import pytest
from conftest import GOLD, flat, invoke

pa = pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
import pyarrow.parquet as pq  # noqa: E402

pytestmark = pytest.mark.http


def rows(gold=GOLD) -> list[dict]:
    return [
        {
            "id": item_id,
            "text": text,
            "annotations": dict(zip(["ann_a", "ann_b", "ann_c"], anns, strict=True)),
            "meta": {"domain": "test"},
        }
        for item_id, text, anns in gold
    ]


def metrics(exp) -> dict:
    run_dir = exp.run_dirs()[-1]
    data = json.loads((run_dir / "metrics.json").read_text())
    for key in ("run_id", "experiment"):
        data.pop(key, None)
    return data


def use(exp, path, **extra) -> None:
    exp.data["gold_sets"][0] = {"id": "g", "path": str(path), **extra}
    exp.rewrite()


def scores(exp):
    return [
        (s["setup"], s["kappa"], s["accuracy"], s["n_items"])
        for g in metrics(exp)["gold_sets"]
        for s in g["setups"]
    ]


def test_a_parquet_gold_set_scores_as_its_jsonl_twin(srv, experiment):
    reference = experiment(srv, name="jsonl")
    assert invoke("run", str(reference.config), "--quiet").exit_code == 0
    exp = experiment(srv, name="parquet")
    pq.write_table(pa.Table.from_pylist(rows()), exp.root / "gold.parquet")
    use(exp, "gold.parquet")
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    assert scores(exp) == scores(reference)
    assert metrics(exp)["gold_sets"][0]["humans"] == metrics(reference)["gold_sets"][0]["humans"]


def test_a_map_column_of_annotations_reads_as_an_object(srv, experiment):
    exp = experiment(srv)
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("annotations", pa.map_(pa.string(), pa.string())),
        ]
    )
    data = [
        {"id": r["id"], "text": r["text"], "annotations": list(r["annotations"].items())}
        for r in rows()
    ]
    pq.write_table(pa.Table.from_pylist(data, schema=schema), exp.root / "gold.pq")
    use(exp, "gold.pq")
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    [gs] = metrics(exp)["gold_sets"]
    assert gs["humans"]["n_items"] == len(GOLD)


def test_a_bad_row_is_named_by_file_and_row_like_a_jsonl_line(srv, experiment):
    exp = experiment(srv)
    bad = rows()
    bad[2]["annotations"] = {"ann_a": "delighted"}  # not a label
    bad[4]["id"] = None
    pq.write_table(pa.Table.from_pylist(bad), exp.root / "gold.parquet")
    use(exp, "gold.parquet")
    result = invoke("validate", str(exp.config))
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert "gold.parquet:3" in text and "delighted" in text
    assert "gold.parquet:5" in text and "missing 'id'" in text
    assert not exp.run_dirs()


def test_a_file_that_is_not_parquet_is_bad_input(srv, experiment):
    exp = experiment(srv)
    (exp.root / "gold.parquet").write_text("id,text\n1,hello\n")
    use(exp, "gold.parquet")
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 2
    assert "is not a readable Parquet file" in flat(result.output)
    assert not exp.run_dirs()


def test_a_hugging_face_dataset_saved_to_disk_scores_as_its_jsonl_twin(srv, experiment):
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    reference = experiment(srv, name="jsonl")
    assert invoke("run", str(reference.config), "--quiet").exit_code == 0
    exp = experiment(srv, name="hf")
    datasets.Dataset.from_list(rows()).save_to_disk(str(exp.root / "gold_ds"))
    use(exp, "gold_ds")  # a folder: read as a saved dataset
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    assert scores(exp) == scores(reference)
    manifest = json.loads((exp.run_dirs()[-1] / "manifest.json").read_text())
    assert len(manifest["gold_set_hashes"]["g"]) == 64

    splits = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows())})
    splits.save_to_disk(str(exp.root / "gold_splits"))
    use(exp, "gold_splits", format="hf")
    result = invoke("validate", str(exp.config))
    assert result.exit_code == 2
    assert "holds several splits (train)" in flat(result.output)
    assert "gold_splits/train" in flat(result.output)
