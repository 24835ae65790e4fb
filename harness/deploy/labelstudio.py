"""Label Studio in and out: gold sets from a Label Studio JSON export, review tasks as Label
Studio import JSON with the pre-label as a prediction, and the reviewed export read back.

One annotation's result for the control `from_name` becomes a prelabel label:
- Choices: one choice -> a classification, ordinal or pairwise label; several -> multilabel.
- Taxonomy -> multilabel, one label per selected path joined with "/" ("Service/Speed"), so
  leaves of one name under two parents stay apart (`taxonomy="leaf"` keeps the last element);
  classification takes exactly one path.
- Rating r -> ordinal `labels[r-1]` (labels low to high); r outside 1..len(labels) is an
  error, never clipped.
- Pairwise `selected` left -> "A", right -> "B" (left = the first object of its toName). The
  Pairwise tag cannot say "tie": projects that allow ties use Choices (A/B/tie or left/right).
Choice values match a label exactly, else case-insensitively; `label_map` {Label Studio value:
prelabel label} renames the rest (export applies its inverse).

Annotators: `completed_by` is a user id, or {"id", "email", ...} when users are expanded. A
user whose email appears anywhere in the file is its local part (plus "_<id>" when two users
share one), else "ls_user_<id>"; `annotator_names` {user id or email: name} overrides both.
An annotator counts once per task, with their latest annotation (updated_at, created_at, id):
Label Studio keeps every submission, and the latest is the one the annotator stands by.
Cancelled (skipped) annotations are left out unless asked for; `ground_truth` gives `gold`.

What is left out is counted by reason (`Imported.skipped`), never dropped silently; bad input
is a UserError naming the file and the task, with every problem listed at once.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from harness.core.errors import UserError
from harness.deploy.labelstudio_read import (
    RESERVED,
    _counts,
    _item_id,
    _Reader,
    _result,
    _where,
)


class Imported(list):
    """The rows (a plain list of dicts), plus what was left out: reason -> count."""

    skipped: Counter[str]


def import_export(
    path: Path | str,
    task_type: str,
    labels: Sequence[str],
    *,
    from_name: str | None = None,
    text_key: str | None = None,
    include_cancelled: bool = False,
    annotator_names: Mapping[Any, str] | None = None,
    label_map: Mapping[str, str] | None = None,
    taxonomy: Literal["path", "leaf"] = "path",
    id_key: str | None = None,
    meta_keys: Sequence[str] = (),
) -> Imported:
    """A Label Studio JSON export -> gold-set rows {id, <fields>, annotations, gold?, meta?}.

    The item id is `data[id_key]`, else `data["prelabel_item_id"]` or `data["id"]` (ids the
    user imported), else the task id. Data keys become fields, plus `ls_task_id`; `text_key`
    renames that key to `text` (what templates read); `meta_keys` move keys to `meta` (slices).
    """
    reader = _Reader(Path(path), task_type, labels, label_map, taxonomy, annotator_names)
    control = reader.control(from_name, with_predictions=False)
    rows, seen = Imported(), {}
    rows.skipped = reader.skipped
    for k, task in enumerate(reader.tasks):
        where, data = _where(k, task), dict(task["data"])
        item_id = _item_id(data, task, id_key)
        if item_id is None or item_id in seen:
            reader.problem(
                f"{where}: item id {item_id!r} repeats task #{seen[item_id] + 1}"
                if item_id in seen
                else f"{where}: data has no id key {id_key!r}"
            )
            continue
        seen[item_id] = k
        annotations, gold = reader.labels_of(task, where, control, include_cancelled)
        if not annotations:
            reader.skipped["tasks without a usable annotation"] += 1
            continue
        fields: dict[str, Any] = {}
        if text_key is not None:
            if not isinstance(data.get(text_key), str):
                reader.problem(f"{where}: data has no text under {text_key!r}")
                continue
            fields["text"] = data.pop(text_key)
        meta = {key: str(data.pop(key)) for key in meta_keys if data.get(key) is not None}
        for key, value in data.items():
            fields[f"data_{key}" if key in RESERVED or key in fields else key] = value
        fields.setdefault("ls_task_id", task.get("id"))
        row = {"id": item_id, **fields, "annotations": annotations}
        if gold is not None:
            row["gold"] = gold
        if meta:
            row["meta"] = meta
        rows.append(row)
    reader.raise_problems(f"fix the export or the options; labels are {list(labels)}")
    if not rows:
        raise UserError.at(
            f"no task has a usable annotation ({_counts(reader.skipped)})",
            file=reader.path,
            hint="export after labelling, or pass include_cancelled or another from_name",
        )
    return rows


def read_reviews(
    path: Path | str,
    task_type: str,
    labels: Sequence[str],
    *,
    from_name: str | None = None,
    include_cancelled: bool = False,
    annotator_names: Mapping[Any, str] | None = None,
    label_map: Mapping[str, str] | None = None,
    taxonomy: Literal["path", "leaf"] = "path",
) -> Imported:
    """The export of tasks made by `export_review_tasks`, once reviewed -> one row per (item,
    reviewer): {item, reviewer, label, prediction: {label, score, model_version} | None,
    blind, ls_task_id, lead_time}. A blind item has no prediction (none was shown): join it
    to the review queue by `item` for the model's label."""
    reader = _Reader(Path(path), task_type, labels, label_map, taxonomy, annotator_names)
    control = reader.control(from_name, with_predictions=True)
    rows = Imported()
    rows.skipped = reader.skipped
    for k, task in enumerate(reader.tasks):
        where, item = _where(k, task), task["data"].get("prelabel_item_id")
        if item is None:
            reader.problem(f"{where}: data has no 'prelabel_item_id' (not a prelabel review task)")
            continue
        prediction = None
        for pred in task.get("predictions") or []:  # Label Studio may export bare ids here
            result = _result(pred, control) if isinstance(pred, dict) else None
            if result is not None:
                prediction = {
                    "label": reader.label(result, f"{where}, prediction"),
                    "score": pred.get("score"),
                    "model_version": pred.get("model_version"),
                }
        blind = (task.get("meta") or {}).get("prelabel_blind")
        blind = bool(blind) if blind is not None else not task.get("predictions")
        by_reviewer = reader.latest(task, where, include_cancelled)
        if not by_reviewer:
            reader.skipped["tasks not reviewed"] += 1
        for reviewer, ann in by_reviewer.items():
            label = reader.annotation_label(ann, control, f"{where}, {reviewer}")
            if label is not None:
                rows.append(
                    {
                        "item": str(item),
                        "reviewer": reviewer,
                        "label": label,
                        "prediction": None if blind else prediction,
                        "blind": blind,
                        "ls_task_id": task.get("id"),
                        "lead_time": ann.get("lead_time"),
                    }
                )
    reader.raise_problems(f"labels are {list(labels)}")
    return rows


def export_review_tasks(
    rows: Iterable[Mapping[str, Any]],
    *,
    from_name: str = "label",
    to_name: str | None = None,
    control_type: str = "choices",
    text_key: str | None = "text",
    setup_id: str | None = None,
    labels: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Review-queue rows {item, fields, label, confidence, blind, setup?} -> Label Studio
    import tasks {data, meta, predictions}.

    `from_name`/`to_name` name the control and object tags of the project's labeling config
    (`config_names` reads them); `to_name` defaults to "text", or to `from_name` for a
    Pairwise control (whose results name the tag itself). `data` is the item's fields plus
    `prelabel_item_id`; `text_key` is the key the object tag reads (`value="$text"`), copied
    from the field `text` when missing. Blind rows get no prediction, so reviewers are not
    anchored; `meta.prelabel_blind` records which. A Rating control needs `labels`.
    """
    control_type = control_type.lower()
    if control_type not in ("choices", "rating", "taxonomy", "pairwise"):
        raise UserError.at(
            f"control type {control_type!r} is not choices, rating, taxonomy or pairwise"
        )
    if control_type == "rating" and not labels:
        raise UserError.at("a Rating control needs the task's labels, low to high")
    to_name = to_name or (from_name if control_type == "pairwise" else "text")
    to_ls = {v: k for k, v in (label_map or {}).items()}
    tasks = []
    for row in rows:
        item, label = str(row["item"]), row.get("label")
        data = dict(row.get("fields") or {})
        if text_key is not None and text_key not in data:
            if "text" not in data:
                raise UserError.at(
                    f"item {item!r} has no field {text_key!r} or 'text' to show",
                    hint='pass the text_key your labeling config reads (value="$...")',
                )
            data[text_key] = data["text"]
        data["prelabel_item_id"] = item
        blind = bool(row.get("blind")) or label is None
        task: dict[str, Any] = {"data": data, "meta": {"prelabel_blind": blind}, "predictions": []}
        if not blind:
            value = _ls_value(control_type, label, labels, to_ls, item)
            result = {
                "from_name": from_name,
                "to_name": to_name,
                "type": control_type,
                "value": value,
            }
            pred = {
                "model_version": str(setup_id or row.get("setup") or "prelabel"),
                "result": [result] if value is not None else [],
            }
            score = row.get("confidence")
            if isinstance(score, int | float) and math.isfinite(score):
                pred["score"] = float(score)
            task["predictions"] = [pred]
        tasks.append(task)
    return tasks


def config_names(xml: str, from_name: str | None = None) -> dict[str, Any]:
    """A labeling config -> {from_name, to_name, control_type, text_key, values} of its
    Choices, Rating, Taxonomy or Pairwise control (the one named `from_name` if several)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise UserError.at(f"labeling config is not valid XML: {exc}") from None
    kinds = ("choices", "rating", "taxonomy", "pairwise")
    controls = [e for e in root.iter() if e.tag.lower() in kinds and e.get("name")]
    picked = [c for c in controls if from_name in (None, c.get("name"))]
    if len(picked) != 1:
        raise UserError.at(
            f"labeling config has controls {[c.get('name') for c in controls]}; "
            + ("pass from_name to choose one" if picked else f"none is named {from_name!r}")
        )
    c, kind = picked[0], picked[0].tag.lower()
    to_name = c.get("name") if kind == "pairwise" else (c.get("toName") or "").split(",")[0]
    objects = {
        e.get("name"): e.get("value", "") for e in root.iter() if e.get("value", "").startswith("$")
    }
    return {
        "from_name": c.get("name"),
        "to_name": to_name,
        "control_type": kind,
        "text_key": objects.get(to_name, "")[1:] or None,
        "values": [
            v.get("value") for v in c.iter() if v.tag.lower() == "choice" and v.get("value")
        ],
    }


def to_jsonl(rows: Iterable[Mapping[str, Any]], source: str = "") -> str:
    """Rows as gold-set JSONL, after a `#` comment naming the source (the loader skips it)."""
    head = f"# converted from the Label Studio export {source}\n" if source else ""
    return head + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _ls_value(kind: str, label: Any, labels, to_ls: Mapping[str, str], item: str) -> dict | None:
    """A prelabel label -> the `value` of a result of this control type (None: nothing)."""
    if kind == "rating":
        if label not in labels:
            raise UserError.at(f"item {item!r}: label {label!r} is not one of {list(labels)}")
        return {"rating": list(labels).index(label) + 1}
    if kind == "pairwise":
        side = {"A": "left", "B": "right"}.get(str(label))
        return {"selected": side} if side else None  # a tie: the Pairwise tag has no way to say it
    values = [to_ls.get(str(n), str(n)) for n in (label if isinstance(label, list) else [label])]
    if not values:
        return None  # the empty set: nothing to pre-select
    return (
        {"taxonomy": [v.split("/") for v in values]} if kind == "taxonomy" else {"choices": values}
    )
