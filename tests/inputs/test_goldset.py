"""Pins gold-set loading: JSONL and long CSV -> GoldSet, every bad row reported with its line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.config import CsvColumns, GoldSetConfig
from harness.core.errors import UserError
from harness.inputs.goldset import load_gold_set, load_pool

LABELS = ("positive", "negative", "neutral")
ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(*objects: object) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects)


def load(path: Path, labels=LABELS, **cfg) -> object:
    return load_gold_set(GoldSetConfig(id="gold", path=path, **cfg), path, labels)


def load_error(path: Path, labels=LABELS, **cfg) -> UserError:
    with pytest.raises(UserError) as info:
        load(path, labels, **cfg)
    return info.value


def item(item_id, text="Works fine.", **annotations):
    return {"id": item_id, "text": text, "annotations": annotations or {"ann_a": "positive"}}


# --- JSONL ----------------------------------------------------------------------------------


def test_jsonl_with_comments_loads_typed_items(tmp_path):
    path = write(
        tmp_path / "gold.jsonl",
        jsonl(
            "# provenance: written for the tests",
            "",
            {
                "id": "r001",
                "text": "Great kettle.",
                "product": "kettle",
                "annotations": {"ann_a": "positive", "ann_b": " positive ", "ann_c": "neutral"},
                "gold": "positive",
                "meta": {"domain": "kitchen", "words": 2},
            },
            "   # an indented comment",
            {"id": 7, "text": "Broke.", "annotations": {"ann_b": "negative", "ann_d": None}},
        ),
    )
    gold = load(path)
    assert gold.id == "gold"
    assert gold.path == str(path)
    first, second = gold.items
    assert first.id == "r001"
    assert dict(first.fields) == {"text": "Great kettle.", "product": "kettle"}
    assert dict(first.annotations) == {"ann_a": "positive", "ann_b": "positive", "ann_c": "neutral"}
    assert first.gold == "positive"
    assert dict(first.meta) == {"domain": "kitchen", "words": "2"}
    assert first.line == 3
    assert second.id == "7"  # integer ids become strings
    assert dict(second.annotations) == {"ann_b": "negative"}  # a null label is no label
    assert second.gold is None
    assert second.line == 5
    assert gold.annotators == ("ann_a", "ann_b", "ann_c")


def test_content_hash_is_sha256_of_the_file_bytes(tmp_path):
    text = jsonl("# v1", item("a"), item("b"))
    path = write(tmp_path / "gold.jsonl", text)
    first = load(path).content_hash
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    write(path, text.replace("# v1", "# v2"))  # even a comment is part of the content
    assert load(path).content_hash != first


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path / "gold.jsonl", "\ufeff" + jsonl(item("a", "Café au lait.")))
    gold = load(path)
    assert gold.items[0].fields["text"] == "Café au lait."
    assert gold.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("limit", "ids", "annotators"),
    [
        (1, ["a"], ("ann_a",)),
        (2, ["a", "b"], ("ann_a", "ann_b")),
        (10, ["a", "b", "c"], ("ann_a", "ann_b", "ann_z")),
    ],
)
def test_limit_keeps_the_first_items_and_their_annotators(tmp_path, limit, ids, annotators):
    path = write(
        tmp_path / "gold.jsonl",
        jsonl(
            item("a", ann_a="positive"),
            item("b", ann_b="negative"),
            item("c", ann_z="neutral"),
        ),
    )
    gold = load(path, limit=limit)
    assert [i.id for i in gold.items] == ids
    assert gold.annotators == annotators


def test_limit_does_not_hide_problems_in_later_lines(tmp_path):
    path = write(tmp_path / "gold.jsonl", jsonl(item("a"), item("b", ann_a="postive")))
    err = load_error(path, limit=1)
    assert [p.line for p in err.problems] == [2]


# (line content, message fragment): one file holds them all, between good lines.
BAD_LINES = [
    ('{"id": "x1", "annotations": {"a": "positive"', "invalid JSON"),
    ("[1, 2, 3]", "must be a JSON object"),
    ('"just a string"', "must be a JSON object"),
    ({"text": "no id", "annotations": {"a": "positive"}}, "missing 'id'"),
    ({"id": "  ", "annotations": {"a": "positive"}}, "missing 'id'"),
    ({"id": ["x"], "annotations": {"a": "positive"}}, "'id' must be a string or an integer"),
    ({"id": True, "annotations": {"a": "positive"}}, "'id' must be a string or an integer"),
    ({"id": "x2", "text": "no labels"}, "has no 'annotations'"),
    ({"id": "x3", "annotations": {}}, "has no 'annotations'"),
    ({"id": "x4", "annotations": ["positive"]}, "has no 'annotations'"),
    ({"id": "x5", "annotations": {"a": None}}, "item 'x5' has no annotations"),
    ({"id": "x6", "annotations": {"a": "positive", "b": "postive"}}, "unknown labels ['postive']"),
    ({"id": "x7", "annotations": {"a": "Positive"}}, "unknown labels ['Positive']"),
    (
        {"id": "x8", "annotations": {"a": "positive"}, "gold": "great"},
        "gold 'great' is not a label",
    ),
    ({"id": "x9", "annotations": {"a": "positive"}, "meta": "books"}, "'meta' must be an object"),
    ({"id": "good1", "annotations": {"a": "negative"}}, "duplicate id 'good1' (first on line 1)"),
]


def test_every_bad_line_is_reported_with_its_line_in_one_error(tmp_path):
    lines = [jsonl({"id": "good1", "annotations": {"a": "positive"}})]
    expected = {}
    for content, fragment in BAD_LINES:
        lines.append(jsonl(content))
        expected[len(lines)] = fragment
        lines.append(jsonl({"id": f"ok{len(lines)}", "annotations": {"a": "neutral"}}))
    path = write(tmp_path / "gold.jsonl", "".join(lines))
    err = load_error(path)
    assert sorted(p.line for p in err.problems) == sorted(expected)
    for problem in err.problems:
        assert problem.file == path
        assert expected[problem.line] in problem.message, (problem.line, problem.message)
    assert "allowed labels" in err.hint and "positive" in err.hint


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("", None, "is empty"),
        ("  \n\n\t\n", None, "is empty"),
        ("# only\n# comments\n\n", None, "no items"),
        (
            b'{"id": "a", "annotations": {"x": "positive"}}\n# ok\n{"id": "b", "t": "\xff"}\n',
            3,
            "UTF-8",
        ),
    ],
    ids=["empty", "blank", "comments_only", "not_utf8"],
)
def test_file_level_problems(tmp_path, content, line, fragment):
    path = write(tmp_path / "gold.jsonl", content)
    err = load_error(path)
    (problem,) = err.problems
    assert problem.file == path
    assert problem.line == line
    assert fragment in problem.message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    err = load_error(path)
    (problem,) = err.problems
    assert (problem.file, problem.message) == (path, "gold set not found")
    assert "relative to the config file" in err.hint


def test_directory_instead_of_file(tmp_path):
    folder = tmp_path / "gold.jsonl"
    folder.mkdir()
    (problem,) = load_error(folder).problems
    assert "is a directory" in problem.message


def test_demo_gold_set_loads():
    path = ROOT / "data/demo/reviews_gold.jsonl"
    gold = load(path)
    assert len(gold.items) == 130
    assert gold.annotators == ("ann_a", "ann_b", "ann_c")
    assert sum(i.gold is not None for i in gold.items) == 10
    assert {i.meta["domain"] for i in gold.items} == {
        "electronics",
        "kitchen",
        "books",
        "clothing",
        "toys",
    }


# --- CSV long format -------------------------------------------------------------------------

CSV_COLUMNS = CsvColumns(
    item="item_id",
    annotator="rater",
    label="answer",
    gold="adjudicated",
    fields=["text", "product"],
    meta=["domain"],
)


def test_csv_long_format_with_a_column_mapping(tmp_path):
    path = write(
        tmp_path / "gold.csv",
        "item_id,rater,answer,adjudicated,text,product,domain,ignored\n"
        'r1,ann_a,positive,,"Great, really great.",kettle,kitchen,x\n'
        "r2,ann_a,negative,,Broke,toaster,kitchen,x\n"
        'r1,ann_b,neutral,positive,"Great, really great.",kettle,kitchen,x\n'
        'r3,ann_b,neutral,,"two\nlines",mug,kitchen,x\n'
        "r2,ann_b,negative,,Broke,toaster,kitchen,x\n",
    )
    gold = load(path, columns=CSV_COLUMNS)
    assert [i.id for i in gold.items] == ["r1", "r2", "r3"]  # order of first appearance
    r1, r2, r3 = gold.items
    assert dict(r1.annotations) == {"ann_a": "positive", "ann_b": "neutral"}
    assert dict(r1.fields) == {"text": "Great, really great.", "product": "kettle"}
    assert dict(r1.meta) == {"domain": "kitchen"}
    assert r1.gold == "positive"
    assert r2.gold is None
    assert r3.fields["text"] == "two\nlines"
    assert (r1.line, r2.line) == (2, 3)  # the item's first row; the header is line 1
    assert gold.annotators == ("ann_a", "ann_b")
    assert gold.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "fmt"), [("gold.csv", None), ("gold.txt", "csv"), ("G.CSV", None)]
)
def test_csv_default_columns_and_format_detection(tmp_path, name, fmt):
    path = write(tmp_path / name, "id,annotator,label\na,x,positive\na,y,negative\n")
    gold = load(path, format=fmt)
    assert [(i.id, dict(i.annotations)) for i in gold.items] == [
        ("a", {"x": "positive", "y": "negative"})
    ]


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("id,annotator,text,product,domain,adjudicated", ["item_id", "rater", "answer"]),
        ("item_id,rater,answer,text,domain,adjudicated", ["product"]),
        ("item_id,rater,answer,text,product,domain", ["adjudicated"]),
    ],
)
def test_csv_missing_columns(tmp_path, header, missing):
    path = write(tmp_path / "gold.csv", header + "\n")
    err = load_error(path, columns=CSV_COLUMNS)
    (problem,) = err.problems
    assert (problem.file, problem.line) == (path, 1)
    assert f"lacks columns {missing}" in problem.message
    assert "columns" in err.hint


def test_csv_every_bad_row_is_reported_at_its_own_line(tmp_path):
    path = write(
        tmp_path / "gold.csv",
        "id,annotator,label,gold\n"
        "a,x,positive,\n"  # 2
        "a,y,negative,\n"  # 3
        "a,x,negative,\n"  # 4: x labels a twice, differently
        "a,z,postive,\n"  # 5: unknown label
        "b,x,neutral,great\n"  # 6: unknown gold
        ",x,neutral,\n"  # 7: no item id
        "c,,neutral,\n"  # 8: no annotator
        "c,x,,\n"  # 9: no label
        "d,x,positive,positive\n"  # 10
        "d,y,positive,negative\n"  # 11: a second, different gold
        "e,x,positive,\n"  # 12
        "e,x,positive,\n",  # 13: the same label twice is no conflict
    )
    err = load_error(path, columns=CsvColumns(gold="gold"))
    found = {p.line: p.message for p in err.problems}
    assert sorted(found) == [4, 5, 6, 7, 8, 9, 11]
    assert "annotator 'x' labels item 'a' twice with different labels" in found[4]
    assert "unknown label 'postive'" in found[5]
    assert "gold 'great' is not a label" in found[6]
    assert "empty item id" in found[7]
    assert "lacks an annotator or a label" in found[8]
    assert "lacks an annotator or a label" in found[9]
    assert "two gold labels" in found[11]


def test_csv_with_only_a_header(tmp_path):
    path = write(tmp_path / "gold.csv", "id,annotator,label\n")
    (problem,) = load_error(path).problems
    assert "no rows" in problem.message


# --- few-shot pool ---------------------------------------------------------------------------


def test_load_pool(tmp_path):
    path = write(
        tmp_path / "pool.jsonl",
        jsonl(
            "# pool",
            {
                "id": "p1",
                "text": "Lovely.",
                "product": "mug",
                "label": "positive",
                "meta": {"domain": "kitchen"},
            },
            {"id": 2, "text": "Meh.", "label": " neutral "},
        ),
    )
    p1, p2 = load_pool(path, LABELS)
    assert (p1.id, p1.gold, dict(p1.annotations)) == ("p1", "positive", {"pool": "positive"})
    assert dict(p1.fields) == {"text": "Lovely.", "product": "mug"}
    assert dict(p1.meta) == {"domain": "kitchen"}
    assert (p1.line, p2.line) == (2, 3)
    assert (p2.id, p2.gold) == ("2", "neutral")


def test_load_pool_reports_every_bad_line(tmp_path):
    path = write(
        tmp_path / "pool.jsonl",
        jsonl(
            {"id": "p1", "text": "ok", "label": "positive"},
            "{not json",
            {"id": "p2", "text": "no label"},
            {"text": "no id", "label": "positive"},
            ["p3", "positive"],
            {"id": "p4", "text": "bad label", "label": "great"},
        ),
    )
    with pytest.raises(UserError) as info:
        load_pool(path, LABELS)
    problems = {p.line: p.message for p in info.value.problems}
    assert sorted(problems) == [2, 3, 4, 5, 6]
    assert "invalid JSON" in problems[2]
    assert "'id' and 'label'" in problems[3]
    assert "'id' and 'label'" in problems[4]
    assert "'id' and 'label'" in problems[5]
    assert "'great' is not one of" in problems[6]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("# nothing here\n", "no examples"),
        ("", "is empty"),
    ],
)
def test_load_pool_without_examples(tmp_path, content, fragment):
    path = write(tmp_path / "pool.jsonl", content)
    with pytest.raises(UserError) as info:
        load_pool(path, LABELS)
    assert fragment in str(info.value)


def test_demo_pool_loads_eight_per_class():
    pool = load_pool(ROOT / "data/demo/fewshot_pool.jsonl", LABELS)
    assert len(pool) == 24
    assert {label: sum(p.gold == label for p in pool) for label in LABELS} == dict.fromkeys(
        LABELS, 8
    )


def test_load_pool_refuses_duplicate_ids(tmp_path):
    path = write(
        tmp_path / "pool.jsonl",
        jsonl(
            {"id": "p1", "text": "good", "label": "positive"},
            {"id": "p1", "text": "bad", "label": "negative"},
        ),
    )
    with pytest.raises(UserError) as info:
        load_pool(path, LABELS)
    (problem,) = info.value.problems
    assert problem.line == 2 and "duplicate id 'p1' (first on line 1)" in problem.message
