"""Replay: labels that already exist in a file get the same report, without a single call.

File format, JSONL: `{"id": ..., "label": ..., "confidence": 0.0-1.0 (optional)}` a line;
`#` lines are comments. Labels go through the same parser as model output, so "Positive"
matches `positive`; a label outside the task's labels becomes a failure record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from harness.core.errors import Problem, UserError
from harness.core.jsonl import read_jsonl
from harness.core.records import GoldSet, LabelRecord
from harness.tasks.labelspace import LabelSpace, ParsedOutput
from harness.tasks.parsing import parse_label


def read_replay(path: Path) -> dict[str, tuple[object, float | None]]:
    """item id -> (raw label, confidence or None); UserError listing every bad line."""
    out: dict[str, tuple[object, float | None]] = {}
    problems: list[Problem] = []
    for lineno, obj in read_jsonl(path, problems, what="replay labels file", detail="message"):
        if not isinstance(obj, dict) or "id" not in obj or "label" not in obj:
            problems.append(Problem("each line needs 'id' and 'label'", path, lineno))
            continue
        item_id = str(obj["id"])
        if item_id in out:
            problems.append(Problem(f"duplicate id {item_id!r}", path, lineno))
            continue
        conf = obj.get("confidence")
        if conf is not None and (
            isinstance(conf, bool)
            or not isinstance(conf, int | float)
            or not math.isfinite(conf)
            or not 0 <= conf <= 1
        ):
            problems.append(
                Problem(f"confidence {conf!r} must be a number in [0, 1]", path, lineno)
            )
            continue
        out[item_id] = (obj["label"], None if conf is None else float(conf))
    if problems:
        raise UserError(problems, hint="fix the replay file (one JSON object per line)")
    return out


def replay_records(
    setup_id: str,
    path: Path,
    gold_sets: Sequence[GoldSet],
    labels: Sequence[str],
    space: LabelSpace | None = None,
) -> list[LabelRecord]:
    """One LabelRecord per gold item: the replayed label, or a failure saying why not."""
    rows = read_replay(path)
    records = []
    for gold in gold_sets:
        for item in gold.items:
            if item.id not in rows:
                records.append(
                    LabelRecord(
                        setup=setup_id,
                        gold_set=gold.id,
                        item=item.id,
                        failure="missing_in_replay",
                        failure_detail=f"no line with id {item.id!r} in {path.name}",
                    )
                )
                continue
            raw, conf = rows[item.id]
            text = raw if isinstance(raw, str) else json.dumps(raw)
            if space is not None and space.structured:
                # A set, ranking or rubric is already structured: check it, do not parse it.
                value, error = space.check(raw, item.fields)
                parsed = ParsedOutput(
                    value,
                    "not_in_labels" if error else None,
                    None if error else "replay",
                    None,
                    error,
                )
            else:
                parsed = parse_label(text, labels)
            records.append(
                LabelRecord(
                    setup=setup_id,
                    gold_set=gold.id,
                    item=item.id,
                    label=parsed.label,
                    failure=parsed.failure,
                    failure_detail=parsed.detail,
                    parse_method=parsed.method,
                    raw=text,
                    confidence=conf if parsed.label is not None else None,
                    confidence_source="replay" if conf is not None and parsed.label else None,
                    cost_usd=0.0,
                    cached=True,
                )
            )
    return records
