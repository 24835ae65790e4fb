"""Pins Label Studio import/export: JSON exports -> gold sets that load, review tasks ->
Label Studio import JSON with predictions, and reviewed exports read back for the audit.

Fixtures under tests/data/labelstudio/ have the shape of real Label Studio 1.x JSON exports
(see the README there); round trips simulate what Label Studio adds on import and review.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from conftest import label_studio_round

from harness.config import GoldSetConfig, TaskConfig
from harness.core.errors import UserError
from harness.deploy.labelstudio import (
    config_names,
    export_review_tasks,
    import_export,
    read_reviews,
    to_jsonl,
)
from harness.inputs.goldset import load_gold_set
from harness.tasks.labelspace import LabelSpace

DATA = Path(__file__).resolve().parents[1] / "data" / "labelstudio"
SENTIMENT = ["positive", "negative", "neutral"]
SEVERITY = ["not_abusive", "ambiguous", "mild", "strong", "very_strong"]
TOPICS = ["Food", "Price", "Service/Speed", "Service/Staff"]
ASPECTS = ["food", "service", "price"]


def load_rows(tmp_path: Path, rows: list[dict], task: TaskConfig):
    """Write rows as gold-set JSONL and load them the way `prelabel run` does."""
    path = tmp_path / "gold.jsonl"
    path.write_text(to_jsonl(rows, "test export"), encoding="utf-8")
    return load_gold_set(
        GoldSetConfig(id="ls", path=path), path, task.label_names, LabelSpace(task)
    )


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def rewrite(tmp_path: Path, name: str, change) -> Path:
    """A copy of a fixture, changed by `change(tasks)`."""
    tasks = json.loads((DATA / name).read_text(encoding="utf-8"))
    change(tasks)
    path = tmp_path / name
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


# --- import: one test per control type ------------------------------------------------------


def test_choices_export_becomes_a_classification_gold_set(tmp_path):
    rows = import_export(DATA / "sentiment_export.json", "classification", SENTIMENT)
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["1841", "1842", "1844"]  # 1843 has no annotation
    first = by_id["1841"]
    assert first["text"].startswith("The kettle") and first["product"] == "kettle"
    assert first["ls_task_id"] == 1841
    # bare user ids -> ls_user_<id>; an expanded user -> the email's local part
    assert first["annotations"] == {
        "ls_user_1": "positive",
        "ls_user_2": "positive",
        "carol": "neutral",
    }
    assert first["gold"] == "positive"  # ls_user_2's annotation is the ground truth
    # user 3 appears as a bare id here; the email seen elsewhere in the file names them
    second = by_id["1842"]
    assert second["annotations"] == {"ls_user_1": "negative", "carol": "negative"}
    assert "gold" not in second
    assert by_id["1844"]["annotations"]["ls_user_1"] == "neutral"  # "Neutral", case folded
    assert rows.skipped == {
        "cancelled annotations": 1,
        "earlier annotations replaced by the same annotator's latest": 1,
        "tasks without a usable annotation": 1,
    }
    gold = load_rows(tmp_path, rows, TaskConfig(type="classification", labels=SENTIMENT))
    assert len(gold.items) == 3
    assert gold.annotators == ("carol", "ls_user_1", "ls_user_2")
    assert gold.items[0].gold == "positive"


def test_cancelled_annotations_kept_on_request_and_names_mapped(tmp_path):
    rows = import_export(
        DATA / "sentiment_export.json",
        "classification",
        SENTIMENT,
        include_cancelled=True,
        annotator_names={1: "alice", "carol@example.com": "carol_d"},
        meta_keys=["product"],
    )
    second = next(r for r in rows if r["id"] == "1842")
    # the cancelled annotation is kept but has no result, so it still gives no label
    assert second["annotations"] == {"alice": "negative", "carol_d": "negative"}
    assert rows.skipped["annotations without a result for the control"] == 1
    assert second["meta"] == {"product": "blender"} and "product" not in second
    gold = load_rows(tmp_path, rows, TaskConfig(type="classification", labels=SENTIMENT))
    assert gold.items[1].meta == {"product": "blender"}


def test_rating_export_becomes_an_ordinal_gold_set(tmp_path):
    rows = import_export(DATA / "severity_rating_export.json", "ordinal", SEVERITY, text_key="text")
    assert [r["id"] for r in rows] == ["conv-88-3", "conv-88-4", "conv-91-1"]  # data ids win
    assert rows[0]["annotations"] == {
        "ls_user_4": "mild",
        "ls_user_5": "strong",
        "ls_user_6": "mild",
    }
    assert rows[0]["gold"] == "strong"
    assert rows[2]["annotations"]["ls_user_4"] == "very_strong"  # rating 5 of 5
    gold = load_rows(tmp_path, rows, TaskConfig(type="ordinal", labels=SEVERITY))
    assert gold.items[1].annotations == {"ls_user_4": "not_abusive", "ls_user_5": "not_abusive"}


def test_taxonomy_export_becomes_a_multilabel_gold_set(tmp_path):
    rows = import_export(DATA / "topics_taxonomy_export.json", "multilabel", TOPICS)
    assert rows[0]["annotations"] == {
        "ls_user_11": ["Food", "Service/Speed"],
        "ls_user_12": ["Food", "Service/Speed", "Service/Staff"],
    }
    gold = load_rows(tmp_path, rows, TaskConfig(type="multilabel", labels=TOPICS))
    assert gold.items[1].annotations["ls_user_12"] == ["Price"]
    leaves = import_export(
        DATA / "topics_taxonomy_export.json",
        "multilabel",
        ["Food", "Price", "Speed", "Staff"],
        taxonomy="leaf",
    )
    assert leaves[1]["annotations"]["ls_user_11"] == ["Price", "Staff"]


def test_multiple_choices_export_becomes_a_multilabel_gold_set(tmp_path):
    rows = import_export(DATA / "aspects_choices_export.json", "multilabel", ASPECTS)
    assert rows[0]["annotations"] == {
        "ls_user_11": ["food", "service"],
        "ls_user_12": ["food", "service"],
    }
    assert rows[1]["annotations"] == {"ls_user_11": [], "ls_user_12": ["food"]}  # nothing chosen
    gold = load_rows(tmp_path, rows, TaskConfig(type="multilabel", labels=ASPECTS))
    assert gold.items[1].annotations["ls_user_11"] == []


def test_pairwise_tag_export_becomes_a_pairwise_gold_set(tmp_path):
    rows = import_export(DATA / "pairwise_export.json", "pairwise", ["A", "B", "tie"])
    assert [r["annotations"] for r in rows] == [
        {"ls_user_21": "A", "ls_user_22": "A"},  # left = A
        {"ls_user_21": "B", "ls_user_22": "B"},
    ]
    assert rows[0]["response_a"] == "7" and rows[0]["response_b"] == "9"
    gold = load_rows(tmp_path, rows, TaskConfig(type="pairwise"))
    assert [i.id for i in gold.items] == ["300", "301"]


def test_pairwise_choices_mapped_with_label_map(tmp_path):
    rows = import_export(
        DATA / "pairwise_choices_export.json",
        "pairwise",
        ["A", "B", "tie"],
        label_map={"A is better": "A", "B is better": "B"},
    )
    assert rows[0]["annotations"] == {"ls_user_21": "A", "ls_user_22": "tie"}  # "Tie" folded
    assert rows[1]["annotations"] == {"ls_user_21": "B", "ls_user_22": "B"}  # "b" folded
    load_rows(tmp_path, rows, TaskConfig(type="pairwise"))


# --- import: refusals name the file and the task --------------------------------------------


def test_unknown_choice_names_file_task_and_fix(tmp_path):
    def change(tasks):
        tasks[1]["annotations"][2]["result"][0]["value"]["choices"] = ["mixed"]

    path = rewrite(tmp_path, "sentiment_export.json", change)
    message = error_of(import_export, path, "classification", SENTIMENT)
    assert str(path) in message
    assert "task #2 (id 1842)" in message and "by carol" in message
    assert "unknown choice 'mixed'" in message and "label_map" in message


def test_rating_out_of_range_is_an_error_not_clipped(tmp_path):
    def change(tasks):
        tasks[2]["annotations"][0]["result"][0]["value"]["rating"] = 6

    path = rewrite(tmp_path, "severity_rating_export.json", change)
    message = error_of(import_export, path, "ordinal", SEVERITY)
    assert str(path) in message and "task #3 (id 514)" in message
    assert "rating 6 is not 1..5" in message


def test_two_choices_on_a_single_label_task_is_an_error(tmp_path):
    def change(tasks):
        tasks[0]["annotations"][0]["result"][0]["value"]["choices"] = ["positive", "neutral"]

    path = rewrite(tmp_path, "sentiment_export.json", change)
    assert "2 choices chosen" in error_of(import_export, path, "classification", SENTIMENT)


def test_json_min_export_is_refused_with_the_way_out():
    message = error_of(import_export, DATA / "sentiment_json_min.json", "classification", SENTIMENT)
    assert "sentiment_json_min.json" in message and "JSON-MIN" in message
    assert "Export -> JSON" in message


def test_malformed_export_names_the_line():
    message = error_of(import_export, DATA / "malformed_export.json", "classification", SENTIMENT)
    assert "malformed_export.json" in message and "not valid JSON (line" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"tasks": []}', "expected a list of tasks"),
        ("[]", "expected a list of tasks"),
        ('[{"text": "no data wrapper"}]', "has no 'data' object"),
        ('[{"data": {"text": "x"}, "predictions": []}]', "an import file"),
    ],
)
def test_files_that_are_no_export_are_refused(tmp_path, content, expected):
    path = tmp_path / "export.json"
    path.write_text(content, encoding="utf-8")
    message = error_of(import_export, path, "classification", SENTIMENT)
    assert str(path) in message and expected in message


def test_ambiguous_control_asks_for_from_name(tmp_path):
    def change(tasks):
        extra = copy.deepcopy(tasks[0]["annotations"][0]["result"][0])
        extra["from_name"] = "sentiment_v2"
        tasks[0]["annotations"][0]["result"].append(extra)

    path = rewrite(tmp_path, "sentiment_export.json", change)
    message = error_of(import_export, path, "classification", SENTIMENT)
    assert "several controls" in message and "sentiment_v2" in message and "from_name" in message
    rows = import_export(path, "classification", SENTIMENT, from_name="sentiment")
    assert len(rows) == 3
    assert "named 'nope'" in error_of(
        import_export, path, "classification", SENTIMENT, from_name="nope"
    )


def test_duplicate_item_ids_and_unsupported_types_are_refused(tmp_path):
    def change(tasks):
        tasks[1]["data"]["id"] = "conv-88-3"

    path = rewrite(tmp_path, "severity_rating_export.json", change)
    assert "item id 'conv-88-3' repeats task #1" in error_of(
        import_export, path, "ordinal", SEVERITY
    )
    message = error_of(import_export, DATA / "sentiment_export.json", "ranking", [])
    assert "not 'ranking'" in message


def test_no_usable_annotation_at_all_is_an_error(tmp_path):
    def change(tasks):
        for task in tasks:
            for ann in task["annotations"]:
                ann["was_cancelled"] = True

    path = rewrite(tmp_path, "sentiment_export.json", change)
    message = error_of(import_export, path, "classification", SENTIMENT, from_name="sentiment")
    assert "no task has a usable annotation" in message and "10 cancelled annotations" in message


def test_shared_email_local_parts_legacy_completions_and_disagreeing_ground_truth(tmp_path):
    def change(tasks):
        for task in tasks:
            task["completions"] = task.pop("annotations")  # Label Studio before 1.0
        for uid, domain in ((1, "a.org"), (2, "b.org")):
            ann = next(a for a in tasks[0]["completions"] if a["completed_by"] == uid)
            ann["completed_by"] = {"id": uid, "email": f"sam@{domain}"}

    path = rewrite(tmp_path, "sentiment_export.json", change)
    rows = import_export(path, "classification", SENTIMENT)
    assert sorted(rows[0]["annotations"]) == ["carol", "sam_1", "sam_2"]

    def two_truths(tasks):
        for ann in tasks[3]["annotations"]:
            ann["ground_truth"] = True

    path = rewrite(tmp_path, "sentiment_export.json", two_truths)
    message = error_of(import_export, path, "classification", SENTIMENT)
    assert "task #4 (id 1844): ground-truth annotations disagree" in message


def test_from_name_of_a_control_that_cannot_carry_the_label():
    message = error_of(
        import_export,
        DATA / "sentiment_export.json",
        "classification",
        SENTIMENT,
        from_name="notes",
    )
    assert "named 'notes'" in message and "'notes': ['textarea']" in message


# --- export: review tasks as Label Studio import JSON ---------------------------------------

IMPORT_SCHEMA = {  # the Label Studio import format for tasks with pre-annotations
    "type": "array",
    "items": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {"type": "object", "required": ["prelabel_item_id"]},
            "meta": {"type": "object"},
            "predictions": {
                "type": "array",
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "required": ["model_version", "result"],
                    "properties": {
                        "model_version": {"type": "string"},
                        "score": {"type": "number"},
                        "result": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["from_name", "to_name", "type", "value"],
                                "properties": {
                                    "from_name": {"type": "string", "minLength": 1},
                                    "to_name": {"type": "string", "minLength": 1},
                                    "type": {"enum": ["choices", "rating", "taxonomy", "pairwise"]},
                                    "value": {"type": "object", "minProperties": 1},
                                },
                                "additionalProperties": False,
                            },
                        },
                    },
                },
            },
        },
    },
}


def queue_rows(labels: list, blind: list[bool]) -> list[dict]:
    """Rows shaped like `prelabel label`'s review_queue.jsonl."""
    return [
        {
            "item": f"n{k:03d}",
            "label": label,
            "confidence": 0.5 + k / 100,
            "route": "review",
            "setup": "zero_shot@smollm2",
            "queue_reason": "below threshold",
            "blind": b,
            "queue_position": k + 1,
            "fields": {"text": f"review number {k}", "product": "kettle"},
        }
        for k, (label, b) in enumerate(zip(labels, blind, strict=True))
    ]


def test_export_review_tasks_follows_the_import_format():
    rows = queue_rows(["positive", "negative", None], [False, True, True])
    tasks = export_review_tasks(rows, from_name="sentiment", setup_id="zero_shot@smollm2")
    jsonschema.validate(tasks, IMPORT_SCHEMA)
    shown, blind, failed = tasks
    assert shown["data"] == {
        "text": "review number 0",
        "product": "kettle",
        "prelabel_item_id": "n000",
    }
    assert shown["predictions"] == [
        {
            "model_version": "zero_shot@smollm2",
            "result": [
                {
                    "from_name": "sentiment",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["positive"]},
                }
            ],
            "score": 0.5,
        }
    ]
    assert shown["meta"] == {"prelabel_blind": False}
    # blind and failed items carry no prediction at all: nothing to anchor on
    assert blind["predictions"] == [] and blind["meta"] == {"prelabel_blind": True}
    assert failed["predictions"] == []
    assert "negative" not in json.dumps(blind)


def test_export_value_shapes_per_control_type():
    def value(control, label, **kw):
        (task,) = export_review_tasks(queue_rows([label], [False]), control_type=control, **kw)
        (result,) = task["predictions"][0]["result"]
        return result

    assert value("rating", "strong", labels=SEVERITY)["value"] == {"rating": 4}
    assert value("taxonomy", ["Food", "Service/Speed"])["value"] == {
        "taxonomy": [["Food"], ["Service", "Speed"]]
    }
    assert value("choices", ["food", "price"])["value"] == {"choices": ["food", "price"]}
    pw = value("pairwise", "B", from_name="pw")
    assert pw == {
        "from_name": "pw",
        "to_name": "pw",
        "type": "pairwise",
        "value": {"selected": "right"},
    }
    mapped = value("choices", "A", label_map={"A is better": "A"}, to_name="response_a")
    assert mapped["value"] == {"choices": ["A is better"]} and mapped["to_name"] == "response_a"
    (tie,) = export_review_tasks(queue_rows(["tie"], [False]), control_type="pairwise")
    assert tie["predictions"][0]["result"] == []  # the Pairwise tag cannot show a tie


def test_export_text_key_and_bad_options():
    (task,) = export_review_tasks(queue_rows(["positive"], [False]), text_key="review")
    assert task["data"]["review"] == task["data"]["text"] == "review number 0"
    rows = queue_rows(["positive"], [False])
    rows[0]["fields"] = {"body": "no text field"}
    assert "no field 'review' or 'text'" in error_of(export_review_tasks, rows, text_key="review")
    assert "needs the task's labels" in error_of(export_review_tasks, rows, control_type="rating")
    assert "not choices, rating" in error_of(export_review_tasks, rows, control_type="labels")


def test_config_names_read_the_labeling_config():
    names = config_names((DATA / "sentiment_config.xml").read_text(encoding="utf-8"))
    assert names == {
        "from_name": "sentiment",
        "to_name": "text",
        "control_type": "choices",
        "text_key": "text",
        "values": ["positive", "negative", "neutral"],
    }
    pairwise = config_names(
        '<View><Pairwise name="pw" toName="a,b"/><Text name="a" value="$response_a"/>'
        '<Text name="b" value="$response_b"/></View>'
    )
    assert pairwise["to_name"] == "pw" and pairwise["control_type"] == "pairwise"
    two = '<View><Choices name="x" toName="t"/><Rating name="y" toName="t"/></View>'
    assert "pass from_name" in error_of(config_names, two)
    assert config_names(two, "y")["control_type"] == "rating"
    assert "not valid XML" in error_of(config_names, "<View>")


# --- round trip: export -> Label Studio import and review -> export -> read_reviews ----------


REVIEWER = {"id": 8, "email": "rev.one@example.com", "first_name": "", "last_name": ""}


@pytest.mark.parametrize(
    ("task_type", "labels", "control", "kw", "predicted", "human"),
    [
        (
            "classification",
            SENTIMENT,
            "choices",
            {"from_name": "label"},
            ["positive", "negative", "neutral"],
            {"choices": ["negative"]},
        ),
        (
            "ordinal",
            SEVERITY,
            "rating",
            {"from_name": "sev"},
            ["mild", "strong", "very_strong"],
            {"rating": 1},
        ),
        (
            "multilabel",
            TOPICS,
            "taxonomy",
            {"from_name": "topics"},
            [["Food"], ["Service/Speed", "Price"], ["Service/Staff"]],
            {"taxonomy": [["Service", "Staff"]]},
        ),
        (
            "pairwise",
            ["A", "B", "tie"],
            "pairwise",
            {"from_name": "pw"},
            ["A", "B", "A"],
            {"selected": "right"},
        ),
    ],
)
def test_round_trip_recovers_items_reviewers_labels_predictions_and_blindness(
    tmp_path, task_type, labels, control, kw, predicted, human
):
    rows = queue_rows(predicted, [False, False, True])
    tasks = export_review_tasks(rows, control_type=control, labels=labels, **kw)
    jsonschema.validate(tasks, IMPORT_SCHEMA)
    export = label_studio_round(
        json.loads(json.dumps(tasks)),  # through JSON, as an upload would be
        {
            "n000": [(8, None, False), (9, human, False)],  # accepts; changes the label
            "n001": [(REVIEWER, human, False)],
            "n002": [(9, human, False), (8, None, True)],  # blind; 8 skips it
        },
        tuple(tasks[0]["predictions"][0]["result"][0][k] for k in ("from_name", "to_name", "type")),
    )
    path = tmp_path / "reviewed.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    got = read_reviews(path, task_type, labels, from_name=kw["from_name"])
    human_label = read_value(task_type, labels, human)
    expected_pred = [
        {"label": predicted[0], "score": 0.5, "model_version": "zero_shot@smollm2"},
        {"label": predicted[1], "score": 0.51, "model_version": "zero_shot@smollm2"},
    ]
    norm = (lambda v: sorted(v, key=labels.index)) if task_type == "multilabel" else (lambda v: v)
    for p in expected_pred:
        p["label"] = norm(p["label"])
    assert [(r["item"], r["reviewer"], r["label"], r["prediction"], r["blind"]) for r in got] == [
        # user 8 is a bare id on n000; the email seen on n001 names them everywhere
        ("n000", "rev.one", norm(predicted[0]), expected_pred[0], False),
        ("n000", "ls_user_9", human_label, expected_pred[0], False),
        ("n001", "rev.one", human_label, expected_pred[1], False),
        ("n002", "ls_user_9", human_label, None, True),
    ]
    assert got.skipped == {"cancelled annotations": 1}
    assert got[0]["ls_task_id"] == 4100 and got[0]["lead_time"] == 8.0


def read_value(task_type, labels, value):
    if "choices" in value:
        return value["choices"][0]
    if "rating" in value:
        return labels[value["rating"] - 1]
    if "taxonomy" in value:
        return ["/".join(p) for p in value["taxonomy"]]
    return {"left": "A", "right": "B"}[value["selected"]]


def test_read_reviews_without_meta_uses_predictions_and_refuses_foreign_tasks(tmp_path):
    tasks = export_review_tasks(queue_rows(["positive", "neutral"], [False, True]))
    for task in tasks:
        del task["meta"]  # an older import path that dropped task meta
    reviews = {"n000": [(8, None, False)], "n001": [(8, {"choices": ["neutral"]}, False)]}
    export = label_studio_round(tasks, reviews, ("label", "text", "choices"))
    path = tmp_path / "reviewed.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    got = read_reviews(path, "classification", SENTIMENT)
    assert [(r["item"], r["blind"], r["prediction"] and r["prediction"]["label"]) for r in got] == [
        ("n000", False, "positive"),
        ("n001", True, None),
    ]
    message = error_of(read_reviews, DATA / "sentiment_export.json", "classification", SENTIMENT)
    assert "task #1 (id 1841)" in message and "prelabel_item_id" in message
