"""Reading Label Studio JSON exports: tasks, their annotations and results, annotator
names, and one label per (task, annotator); used by harness.deploy.labelstudio (see its doc)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.errors import Problem, UserError
from harness.core.paths import read_text_file
from harness.tasks import TASKS

CONTROLS = {  # task type -> the Label Studio control types that can carry its label
    name: task.label_studio_controls for name, task in TASKS.items() if task.label_studio_controls
}
RESERVED = ("id", "annotations", "gold", "meta")  # gold-set keys a data field must not shadow
MAX_PROBLEMS = 200
EXPORT_HINT = (
    "in Label Studio: Export -> JSON (not JSON-MIN, CSV, or the file of tasks you imported); "
    'it lists tasks as {"id", "data", "annotations": [{"completed_by", "result", ...}]}'
)
EPOCH = datetime.min.replace(tzinfo=timezone.utc)


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
        self.task = TASKS[task_type]
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
        if self.task.label_set and control and not ann.get("was_cancelled"):
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
        if not self.task.label_set and len(raw) != 1:
            return self.problem(f"{where}: {len(raw)} {kind} chosen, a {self.type} task takes one")
        mapped = [self.name_label(v, where) for v in raw]
        if None in mapped:
            return None
        return sorted(set(mapped), key=self.labels.index) if self.task.label_set else mapped[0]

    def name_label(self, value: str, where: str) -> str | None:
        v = self.label_map.get(value, value)
        folded = [lab for lab in self.labels if lab.lower() == v.strip().lower()]
        if v in self.labels or len(folded) == 1:
            return v if v in self.labels else folded[0]
        if v.strip().lower() in self.task.label_words:
            return self.task.label_words[v.strip().lower()]
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


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {why}" for why, n in counter.items()) or "no annotations at all"
