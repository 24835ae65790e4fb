"""New, unlabeled items for `prelabel label`: JSONL (one object per line, `#` comments) or
CSV (a header row), each with an `id` and the fields the prompt template uses."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from harness.core.errors import Problem, UserError
from harness.core.jsonl import read_jsonl
from harness.core.paths import read_text_file
from harness.core.records import GoldItem, GoldSet

MAX_PROBLEMS = 200


def load_unlabeled(path: Path, set_id: str = "input") -> GoldSet:
    """The items as a gold set without annotations (what the planner and runner take)."""
    raw, text = read_text_file(path, "input file")
    rows: list[tuple[int, object]] = []
    problems: list[Problem] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "id" not in reader.fieldnames:
            raise UserError.at(
                "the CSV header has no 'id' column", file=path, line=1, hint="add an id column"
            )
        rows = [(reader.line_num, dict(row)) for row in reader]
    else:
        # Every line's JSON problem first, then each item's: read the whole file before the
        # items are checked.
        rows = list(read_jsonl(path, problems, text=text, detail="python"))
    items: list[GoldItem] = []
    seen: dict[str, int] = {}
    for lineno, obj in rows:
        if not isinstance(obj, dict) or obj.get("id") in (None, ""):
            problems.append(Problem("each item needs an 'id'", path, lineno))
            continue
        item_id = str(obj["id"])
        if item_id in seen:
            problems.append(
                Problem(f"duplicate id {item_id!r} (line {seen[item_id]})", path, lineno)
            )
            continue
        seen[item_id] = lineno
        meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
        fields = {k: v for k, v in obj.items() if k not in {"id", "meta", "annotations", "gold"}}
        items.append(
            GoldItem(
                id=item_id,
                fields=fields,
                annotations={},
                meta={str(k): str(v) for k, v in meta.items()},
                line=lineno,
            )
        )
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise UserError(problems, hint=f"fix these lines of {path.name}")
    if not items:
        raise UserError.at("the input file has no items", file=path, hint="one item per line")
    return GoldSet(set_id, str(path), tuple(items), (), hashlib.sha256(raw).hexdigest())
