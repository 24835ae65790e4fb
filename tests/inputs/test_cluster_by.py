"""gold_sets[].cluster_by: each item's cluster resolved at load (JSONL and CSV), an item
without one refused with its file and line, and the warning when items look grouped but no
cluster_by is set (statistics.md section 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import CsvColumns, GoldSetConfig
from harness.core.errors import UserError
from harness.inputs.clusters import grouping_warning
from harness.inputs.goldset import load_gold_set

LABELS = ("yes", "no")
ROOT = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in items), encoding="utf-8")
    return path


def load(path: Path, **cfg):
    return load_gold_set(GoldSetConfig(id="gold", path=path, **cfg), path, LABELS)


def item(item_id: str, **extra) -> dict:
    return {"id": item_id, "text": "t", "annotations": {"a": "yes"}, **extra}


def test_cluster_by_an_input_field_or_a_meta_field(tmp_path):
    rows = [
        item("c1-t1", conv="c1", meta={"doc": "d1"}),
        item("c1-t2", conv="c1", meta={"doc": "d1"}),
        item("c2-t1", conv=7, meta={"doc": "d2"}),
    ]
    path = write_jsonl(tmp_path / "g.jsonl", rows)
    by_field = load(path, cluster_by="conv")
    assert by_field.cluster_by == "conv"
    assert by_field.clusters == ("c1", "c1", "7")
    assert load(path, cluster_by="meta.doc").clusters == ("d1", "d1", "d2")
    unclustered = load(path)
    assert unclustered.clusters is None and unclustered.cluster_by is None


def test_limit_keeps_the_clusters_of_the_kept_items(tmp_path):
    rows = [item(f"i{i}", conv=f"c{i // 2}") for i in range(6)]
    gold = load(write_jsonl(tmp_path / "g.jsonl", rows), cluster_by="conv", limit=3)
    assert gold.clusters == ("c0", "c0", "c1")


@pytest.mark.parametrize(
    ("cluster_by", "bad"),
    [
        ("conv", {"conv": None}),
        ("conv", {"conv": ""}),
        ("conv", {"conv": ["a"]}),
        ("conv", {}),
        ("meta.doc", {"meta": {"other": "x"}}),
    ],
)
def test_an_item_without_its_cluster_is_refused_with_file_line_and_key(tmp_path, cluster_by, bad):
    good = {"conv": "c1", "meta": {"doc": "d1"}}
    rows = [item("i1", **good), item("i2", **good), item("i3", **bad)]
    path = write_jsonl(tmp_path / "g.jsonl", rows)
    with pytest.raises(UserError) as info:
        load(path, cluster_by=cluster_by)
    (problem,) = info.value.problems
    assert Path(problem.file) == path and problem.line == 3
    name = cluster_by.removeprefix("meta.")
    assert "'i3'" in problem.message and f"'{name}'" in problem.message
    assert f"cluster_by: {cluster_by}" in problem.message
    assert "remove cluster_by" in info.value.hint and "g.jsonl" in info.value.hint


def test_a_missing_cluster_is_exit_2_from_the_cli(tmp_path):
    from conftest import flat, invoke

    config = (ROOT / "configs/demo.yaml").read_text(encoding="utf-8")
    config = config.replace("../", f"{ROOT}/").replace(
        "reviews_gold.jsonl\n", "reviews_gold.jsonl\n    cluster_by: meta.conversation\n"
    )
    path = tmp_path / "c.yaml"
    path.write_text(config, encoding="utf-8")
    result = invoke("validate", str(path))
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert "reviews_gold.jsonl:1" in text and "'conversation'" in text


def test_csv_cluster_column_resolved_and_checked(tmp_path):
    header = "id,annotator,label,conv\n"
    path = tmp_path / "g.csv"
    path.write_text(header + "i1,a,yes,c1\ni1,b,no,\ni2,a,yes,c1\ni3,a,no,c2\n", encoding="utf-8")
    assert load(path, cluster_by="conv", columns=CsvColumns()).clusters == ("c1", "c1", "c2")
    assert load(path, cluster_by="meta.conv").clusters == ("c1", "c1", "c2")
    path.write_text(header + "i1,a,yes,c1\ni1,b,no,c9\ni2,a,yes,\n", encoding="utf-8")
    with pytest.raises(UserError) as info:
        load(path, cluster_by="conv")
    messages = {(p.line, p.message) for p in info.value.problems}
    assert (3, "item 'i1' is in two clusters, 'c1' and 'c9'") in messages
    assert any(line == 4 and "'i2'" in text for line, text in messages)
    with pytest.raises(UserError) as info:
        load(path, cluster_by="thread")
    assert info.value.problems[0].line == 1 and "'thread'" in info.value.problems[0].message


def _items(ids, meta=None, fields=None):
    from harness.core.records import GoldItem

    return [
        GoldItem(
            id=i,
            fields=(fields or {}).get(i, {"text": "x"}),
            annotations={"a": "yes"},
            meta=(meta or {}).get(i, {}),
        )
        for i in ids
    ]


def test_grouped_ids_warn():
    ids = [f"conv{c}-turn{t}" for c in range(12) for t in range(4)]
    warning = grouping_warning(_items(ids), "g")
    assert warning and "12 groups of 48 items" in warning and "cluster_by" in warning
    ids = [f"doc_{c}_q{t}" for c in range(15) for t in range(3)]
    assert "15 groups" in grouping_warning(_items(ids), "g")


def test_a_repeating_meta_or_id_field_warns():
    ids = [f"r{i:03d}" for i in range(60)]
    meta = {i: {"conversation": f"c{n // 5}", "domain": "books"} for n, i in enumerate(ids)}
    warning = grouping_warning(_items(ids, meta=meta), "g")
    assert warning and "meta.conversation" in warning and "12 groups" in warning
    fields = {i: {"text": "x", "conv_id": n // 4} for n, i in enumerate(ids)}
    assert "conv_id" in grouping_warning(_items(ids, fields=fields), "g")


def test_strata_and_plain_ids_do_not_warn():
    ids = [f"r{i:03d}" for i in range(130)]
    # A few big groups are strata (slices report them), not clusters.
    meta = {i: {"domain": "abcde"[n % 5], "length": "sml"[n % 3]} for n, i in enumerate(ids)}
    assert grouping_warning(_items(ids, meta=meta), "g") is None
    # Unique values, word prefixes (a source, a scheme) and uuids are not groups.
    assert grouping_warning(_items([f"item_{i}" for i in range(100)]), "g") is None
    sources = [f"{s}_{i}" for s in ("amazon", "yelp", "imdb") for i in range(40)]
    assert grouping_warning(_items(sources), "g") is None
    uuids = [f"{i:08x}-e89b-12d3-a456-4266141740{i:02d}" for i in range(60)]
    assert grouping_warning(_items(uuids), "g") is None
    text = {i: {"text": "x", "product_id": f"p{n}"} for n, i in enumerate(ids)}
    assert grouping_warning(_items(ids, fields=text), "g") is None


def test_the_demo_gold_set_loads_without_a_grouping_warning():
    path = ROOT / "data/demo/reviews_gold.jsonl"
    gold = load_gold_set(
        GoldSetConfig(id="demo", path=path), path, ("positive", "negative", "neutral")
    )
    assert gold.grouping_warning is None


def test_a_grouped_gold_set_carries_its_warning_until_cluster_by_is_set(tmp_path):
    rows = [item(f"conv{c}-t{t}", meta={"conv": f"c{c}"}) for c in range(10) for t in range(3)]
    path = write_jsonl(tmp_path / "g.jsonl", rows)
    assert "items look grouped" in load(path).grouping_warning
    assert load(path, cluster_by="meta.conv").grouping_warning is None
