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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from harness.errors import Problem, UserError
from harness.paths import read_text_file

CONTROLS = {  # task type -> the Label Studio control types that can carry its label
    "classification": ("choices", "taxonomy"),
    "ordinal": ("rating", "choices"),
    "pairwise": ("pairwise", "choices"),
    "multilabel": ("choices", "taxonomy"),
}
RESERVED = ("id", "annotations", "gold", "meta")  # gold-set keys a data field must not shadow
PAIRWISE_WORDS = {"a": "A", "left": "A", "b": "B", "right": "B", "tie": "tie"}
MAX_PROBLEMS = 200
EXPORT_HINT = (
    "in Label Studio: Export -> JSON (not JSON-MIN, CSV, or the file of tasks you imported); "
    'it lists tasks as {"id", "data", "annotations": [{"completed_by", "result", ...}]}'
)
EPOCH = datetime.min.replace(tzinfo=timezone.utc)


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


class _Reader:
    """One export being read: its tasks, label mapping, annotator names, problems found."""

    def __init__(self, path, task_type, labels, label_map, taxonomy, annotator_names):
        if task_type not in CONTROLS:
            raise UserError.at(
                f"Label Studio import maps {sorted(CONTROLS)} tasks; not {task_type!r}",
                file=path,
                hint="convert ranking and rubric annotations with a script of your own",
            )
        self.path, self.type, self.labels = path, task_type, list(labels)
        self.label_map, self.taxonomy = dict(label_map or {}), taxonomy
        self.problems: list[Problem] = []
        self.skipped: Counter[str] = Counter()
        self.tasks = _load_tasks(path)
        self.names = _annotator_namer(self.tasks, annotator_names or {})

    def problem(self, message: str) -> None:
        """Record a problem; returns None so a failed conversion can `return self.problem()`."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(message, self.path))

    def raise_problems(self, hint: str) -> None:
        if self.problems:
            raise UserError(self.problems, hint=hint)

    def control(self, from_name: str | None, with_predictions: bool) -> str | None:
        """The control holding the label: `from_name`, else the one control of a fitting
        type found in the results. Reviews also look at predictions: an unreviewed export
        has no annotations yet, and an ML backend's predictions must not confuse an import."""
        seen: dict[str, set[str]] = {}
        for task in self.tasks:
            preds = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
            for ann in _annotations(task) + (preds if with_predictions else []):
                for r in ann.get("result") or []:
                    if isinstance(r, dict) and r.get("from_name"):
                        seen.setdefault(r["from_name"], set()).add(str(r.get("type")).lower())
        fits = sorted(n for n, kinds in seen.items() if kinds & set(CONTROLS[self.type]))
        if from_name is not None and (from_name in fits or (with_predictions and not seen)):
            return from_name
        if from_name is None and len(fits) == 1:
            return fits[0]
        if from_name is None and not seen and with_predictions:
            return None  # nothing reviewed, nothing predicted: every task counts as unreviewed
        raise UserError.at(
            f"no {' or '.join(CONTROLS[self.type])} result comes from a control named "
            f"{from_name!r}; the export has { ({n: sorted(t) for n, t in sorted(seen.items())}) }"
            if from_name is not None
            else f"{'several' if fits else 'no'} controls fit a {self.type} task: "
            f"{fits or sorted(seen)}",
            file=self.path,
            hint=f"pass from_name: the name of the {' or '.join(CONTROLS[self.type])} control",
        )

    def latest(self, task: dict, where: str, include_cancelled: bool) -> dict[str, dict]:
        """Annotator name -> that annotator's latest annotation on the task."""
        out: dict[str, dict] = {}
        for ann in sorted(_annotations(task), key=_recency):
            if ann.get("was_cancelled") and not include_cancelled:
                self.skipped["cancelled annotations"] += 1
                continue
            name = self.names(ann.get("completed_by"))
            if name is None:
                self.problem(f"{where}: annotation {ann.get('id')} has no completed_by")
                continue
            if name in out:
                self.skipped["earlier annotations replaced by the same annotator's latest"] += 1
            out[name] = ann
        return out

    def labels_of(self, task, where, control, include_cancelled) -> tuple[dict, Any]:
        annotations, golds = {}, set()
        for name, ann in self.latest(task, where, include_cancelled).items():
            label = self.annotation_label(
                ann, control, f"{where}, annotation {ann.get('id')} by {name}"
            )
            if label is not None:
                annotations[name] = label
                if ann.get("ground_truth"):
                    golds.add(json.dumps(label))
        if len(golds) > 1:
            self.problem(f"{where}: ground-truth annotations disagree: {sorted(golds)}")
        return annotations, json.loads(golds.pop()) if len(golds) == 1 else None

    def annotation_label(self, ann: dict, control: str | None, where: str) -> Any:
        result = _result(ann, control) if control else None
        if result is not None:
            return self.label(result, where)
        if self.type == "multilabel" and control and not ann.get("was_cancelled"):
            return []  # submitted with nothing chosen: Label Studio stores no result
        self.skipped["annotations without a result for the control"] += 1
        return None

    def label(self, result: dict, where: str) -> Any:
        kind, value = str(result.get("type")).lower(), result.get("value") or {}
        if kind == "rating":
            r, n = value.get("rating"), len(self.labels)
            if (
                isinstance(r, bool)
                or not isinstance(r, int | float)
                or r != int(r)
                or not 1 <= r <= n
            ):
                return self.problem(
                    f"{where}: rating {r!r} is not 1..{n} (one per label: {self.labels})"
                )
            return self.labels[int(r) - 1]
        if kind == "pairwise":
            side = {"left": "A", "right": "B"}.get(value.get("selected"))
            return side or self.problem(f"{where}: pairwise selected {value.get('selected')!r}")
        raw = value.get("choices")
        if kind == "taxonomy":
            raw = [
                str(p[-1]) if self.taxonomy == "leaf" else "/".join(map(str, p))
                for p in value.get("taxonomy") or []
                if isinstance(p, list) and p
            ]
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            return self.problem(f"{where}: {kind} value {value!r} is not a list of names")
        if self.type != "multilabel" and len(raw) != 1:
            return self.problem(f"{where}: {len(raw)} {kind} chosen, a {self.type} task takes one")
        mapped = [self.name_label(v, where) for v in raw]
        if None in mapped:
            return None
        return (
            sorted(set(mapped), key=self.labels.index) if self.type == "multilabel" else mapped[0]
        )

    def name_label(self, value: str, where: str) -> str | None:
        v = self.label_map.get(value, value)
        folded = [lab for lab in self.labels if lab.lower() == v.strip().lower()]
        if v in self.labels or len(folded) == 1:
            return v if v in self.labels else folded[0]
        if self.type == "pairwise" and v.strip().lower() in PAIRWISE_WORDS:
            return PAIRWISE_WORDS[v.strip().lower()]
        return self.problem(
            f"{where}: unknown choice {value!r}; labels are {self.labels} (map it with label_map)"
        )


def _load_tasks(path: Path) -> list[dict]:
    _, text = read_text_file(path, "Label Studio export")
    try:
        root = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError.at(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            file=path,
            hint=EXPORT_HINT,
        ) from None
    except RecursionError:
        raise UserError.at(
            "not valid JSON (nested too deeply)", file=path, hint=EXPORT_HINT
        ) from None
    if isinstance(root, dict) and "data" in root:
        root = [root]  # one task, as Label Studio writes to target cloud storage
    if not isinstance(root, list) or not root or not all(isinstance(t, dict) for t in root):
        raise UserError.at(
            "not a Label Studio JSON export (expected a list of tasks)", file=path, hint=EXPORT_HINT
        )
    if "data" not in root[0] and {"annotation_id", "annotator"} & set(root[0]):
        raise UserError.at(
            "this is a JSON-MIN export: it puts each result in a column beside the data, drops "
            "cancelled annotations and ground-truth flags, and has no result types (a rating "
            "cannot be told from a choice)",
            file=path,
            hint=EXPORT_HINT,
        )
    for k, task in enumerate(root):
        if not isinstance(task.get("data"), dict):
            raise UserError.at(
                f"{_where(k, task)} has no 'data' object", file=path, hint=EXPORT_HINT
            )
        if not isinstance(task.get("annotations", task.get("completions")), list):
            raise UserError.at(
                f"{_where(k, task)} has no 'annotations' list: an import file (tasks to "
                "label), not an export of labelled tasks",
                file=path,
                hint=EXPORT_HINT,
            )
    return root


def _annotations(task: dict) -> list[dict]:
    # "completions" is what Label Studio before 1.0 called annotations.
    return [
        a for a in task.get("annotations", task.get("completions")) or [] if isinstance(a, dict)
    ]


def _result(ann: dict, from_name: str) -> dict | None:
    hits = [
        r
        for r in ann.get("result") or []
        if isinstance(r, dict) and r.get("from_name") == from_name
    ]
    return hits[-1] if hits else None


def _where(k: int, task: dict) -> str:
    return f"task #{k + 1} (id {task.get('id')})"


def _item_id(data: dict, task: dict, id_key: str | None) -> str | None:
    if id_key is not None:
        value = data.pop(id_key, None)
        return None if value is None else str(value)
    for key in ("prelabel_item_id", "id"):  # ids the user imported outlive Label Studio's own
        if data.get(key) is not None:
            return str(data.pop(key))
    return str(task.get("id"))


def _recency(ann: dict) -> tuple[datetime, int]:
    """Sort key, oldest first: updated_at, else created_at (ISO 8601), then the id."""
    stamp = EPOCH
    for key in ("updated_at", "created_at"):
        try:
            stamp = datetime.fromisoformat(str(ann.get(key)).replace("Z", "+00:00"))
        except ValueError:
            continue
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
        break
    aid = str(ann.get("id"))
    return stamp, int(aid) if aid.isdigit() else -1


def _annotator_namer(tasks: list[dict], names: Mapping[Any, str]):
    """completed_by -> annotator name, or None. An email seen anywhere in the file names the
    user's bare ids too, so one person is one annotator however the export spells them."""
    emails = {
        str(who["id"]): str(who["email"])
        for task in tasks
        for who in (a.get("completed_by") for a in _annotations(task))
        if isinstance(who, dict) and who.get("email") and who.get("id") is not None
    }
    local_count = Counter(e.split("@")[0] for e in emails.values())
    given = {str(k): v for k, v in names.items()}

    def name(who: Any) -> str | None:
        uid = who.get("id") if isinstance(who, dict) else who
        email = emails.get(str(uid)) or (who.get("email") if isinstance(who, dict) else None)
        if (uid is None and not email) or isinstance(uid, bool):
            return None
        if str(uid) in given or email in given:
            return given.get(str(uid)) or given[email]
        if email:
            local = email.split("@")[0]
            return local if local_count[local] <= 1 or uid is None else f"{local}_{uid}"
        return f"ls_user_{uid}"

    return name


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


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in counter.items()) or "no annotations at all"
