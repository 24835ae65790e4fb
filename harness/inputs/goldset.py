"""Gold sets: items that several humans labelled, loaded and checked before any model call.

Four formats, one result (`GoldSet`):
- JSONL, one item a line: `id`, input fields (any names), `annotations: {annotator: label}`,
  optional adjudicated `gold`, optional `meta` (slice fields). Lines starting with `#` are
  comments, so a file can say where it came from.
- CSV in long format: one row per (item, annotator) rating; the config maps the columns.
- Parquet, or a Hugging Face dataset saved with `save_to_disk` (a folder): JSONL's shape, one
  row per item (harness/inputs/tables.py), rows numbered from 1 like lines.

Every bad row is collected with its line number and reported at once, so a user fixes a
file in one pass rather than one error per run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import CsvColumns, GoldSetConfig
from harness.core.errors import Problem, UserError
from harness.core.jsonl import read_jsonl
from harness.core.paths import read_text_file
from harness.core.records import GoldItem, GoldSet
from harness.inputs.clusters import (
    check_cluster_column,
    cluster_hint,
    cluster_key,
    csv_cluster,
    grouping_warning,
    resolve_clusters,
)
from harness.inputs.tables import FORMATS, oversized, saved_dataset, table_rows

if TYPE_CHECKING:
    from harness.tasks.labelspace import LabelSpace

RESERVED_KEYS = {"id", "annotations", "gold", "meta"}
MAX_PROBLEMS = 200


def load_gold_set(
    cfg: GoldSetConfig, path: Path, labels: Sequence[str], space: LabelSpace | None = None
) -> GoldSet:
    """Load and validate one gold set; raise UserError listing every bad line."""
    fmt = "hf" if cfg.resolved_format == "jsonl" and saved_dataset(path) else cfg.resolved_format
    structured = space is not None and space.structured
    if fmt in FORMATS:  # Parquet, a saved dataset: JSONL's rows, numbered the same way
        digest, rows = table_rows(path, fmt, "gold set")
        items, problems = _parse_rows(rows, path)
    elif fmt == "csv":
        raw, text = read_text_file(path, "gold set")
        digest = hashlib.sha256(raw).hexdigest()
        if structured:
            raise UserError.at(
                f"a {space.type} gold set must be JSONL (labels are lists or objects)",
                file=path,
                hint="convert it to JSONL",
            )
        cluster_column = cluster_key(cfg.cluster_by)[1] if cfg.cluster_by else None
        items, problems, csv_clusters = _parse_csv_long(
            text, path, cfg.columns or CsvColumns(), labels, cluster_column
        )
    else:
        raw, text = read_text_file(path, "gold set")
        digest = hashlib.sha256(raw).hexdigest()
        items, problems = _parse_jsonl(text, path)
    if fmt != "csv":
        csv_clusters = None
    if structured:
        items, more = _check_structured(items, path, space)
        problems += more
    else:
        problems += _check_items(items, path, labels)
    big = oversized(items, path, cfg.max_item_bytes)
    clusters, unclustered = None, []
    if cfg.cluster_by:
        clusters, unclustered = resolve_clusters(items, cfg.cluster_by, path, cfg.id, csv_clusters)
    if problems or big or unclustered:
        hints = []
        if problems or big:
            hints.append(f"fix these rows of {path.name}; allowed labels: {list(labels)}")
        if big:
            hints.append(
                "shorten or drop the items over the size limit, or raise max_item_bytes of "
                f"gold set '{cfg.id}' in the config if your models' context windows take them"
            )
        if unclustered:
            hints.append(cluster_hint(path, cfg.cluster_by or "", cfg.id))
        raise UserError(problems + big + unclustered, hint="; ".join(hints))
    if cfg.limit is not None:
        items = items[: cfg.limit]
        clusters = None if clusters is None else clusters[: cfg.limit]
    annotators = sorted({a for item in items for a in item.annotations})
    return GoldSet(
        id=cfg.id,
        path=str(path),
        items=tuple(items),
        annotators=tuple(annotators),
        content_hash=digest,
        annotator_groups=_groups(cfg, path, annotators),
        cluster_by=cfg.cluster_by,
        clusters=clusters,
        grouping_warning=None if cfg.cluster_by else grouping_warning(items, cfg.id),
    )


def _groups(
    cfg: GoldSetConfig, path: Path, annotators: Sequence[str]
) -> dict[str, tuple[str, ...]] | None:
    """The config's annotator groups, each annotator checked against the gold set."""
    if not cfg.annotator_groups:
        return None
    for group, names in cfg.annotator_groups.items():
        unknown = sorted(set(names) - set(annotators))
        if unknown or not names:
            raise UserError.at(
                f"annotator group '{group}' of gold set '{cfg.id}' names "
                + (f"annotators who label nothing here: {unknown}" if unknown else "no annotator"),
                file=path,
                hint=f"fix gold_sets.annotator_groups in the config; annotators are {annotators}",
            )
    return {group: tuple(names) for group, names in cfg.annotator_groups.items()}


def _parse_jsonl(text: str, path: Path) -> tuple[list[GoldItem], list[Problem]]:
    problems: list[Problem] = []
    lines = read_jsonl(path, problems, text=text, non_object="each line must be a JSON object")
    return _parse_rows(lines, path, problems)


def _parse_rows(
    lines: Iterable[tuple[int, Any]], path: Path, problems: list[Problem] | None = None
) -> tuple[list[GoldItem], list[Problem]]:
    items: list[GoldItem] = []
    problems = [] if problems is None else problems
    for lineno, obj in lines:
        if not isinstance(obj, dict):
            problems.append(Problem("each row must be an object", path, lineno))
            continue
        item, problem = _item_from_object(obj, path, lineno)
        if problem:
            problems.append(problem)
        else:
            items.append(item)
        if len(problems) >= MAX_PROBLEMS:
            break
    if not items and not problems:
        problems.append(Problem("no items: the file has only comments or blank lines", path))
    return items, problems


def _item_from_object(obj: dict[str, Any], path: Path, lineno: int) -> tuple[Any, Problem | None]:
    item_id = obj.get("id")
    if item_id is None or (isinstance(item_id, str) and not item_id.strip()):
        return None, Problem("missing 'id'", path, lineno)
    if isinstance(item_id, bool) or not isinstance(item_id, str | int):
        return None, Problem("'id' must be a string or an integer", path, lineno)
    annotations = obj.get("annotations")
    if not isinstance(annotations, dict) or not annotations:
        return None, Problem(
            f"item {item_id!r} has no 'annotations' (expected an object {{annotator_id: label}})",
            path,
            lineno,
        )
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        return None, Problem("'meta' must be an object of slice fields", path, lineno)
    gold = obj.get("gold")
    fields = {_shared(k): v for k, v in obj.items() if k not in RESERVED_KEYS}
    return GoldItem(
        id=str(item_id),
        fields=fields,
        annotations={
            _shared(str(a)): _as_value(v) for a, v in annotations.items() if v is not None
        },
        gold=None if gold is None else _as_value(gold),
        meta={_shared(str(k)): _shared(str(v)) for k, v in meta.items()},
        line=lineno,
    ), None


def _as_label(value: Any) -> str:
    # Labels are compared as strings: a YAML `labels: [1, 2]` and a JSON 1 must meet.
    return _shared(str(value).strip() if not isinstance(value, bool) else str(value).lower())


def _shared(text: str) -> str:
    # One object for equal keys, labels and slice values: JSON and CSV readers make one per
    # row (~50 bytes each; 0.5 kB per item of 3 annotators, held through a run's scoring).
    return sys.intern(text) if type(text) is str else text


def _as_value(value: Any) -> Any:
    # Structured labels (a set, a ranking, a rubric) stay JSON; scalars are compared as text.
    return value if isinstance(value, list | dict) else _as_label(value)


def _parse_csv_long(
    text: str, path: Path, cols: CsvColumns, labels: Sequence[str], cluster: str | None = None
) -> tuple[list[GoldItem], list[Problem], dict[str, str | None] | None]:
    """Items, problems, and (with ``cluster``, the cluster_by column) each item's cluster."""
    # Labels are checked here, row by row, so each problem names the row at fault rather
    # than the item's first row (which is all `_check_items` knows).
    allowed = set(labels)
    # Items can be long (a conversation, two LLM responses): lift csv's 128 KiB cell limit.
    csv.field_size_limit(2**31 - 1)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    wanted = [cols.item, cols.annotator, cols.label, *cols.fields, *cols.meta]
    if cols.gold:
        wanted.append(cols.gold)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise UserError.at(
            f"CSV header lacks columns {missing}; it has {header}",
            file=path,
            line=1,
            hint="set gold_sets[].columns in the config to match the file",
        )
    check_cluster_column(header, cluster, path)
    problems: list[Problem] = []
    clusters: dict[str, str | None] | None = None if cluster is None else {}
    by_id: dict[str, dict[str, Any]] = {}
    for row in reader:
        lineno = reader.line_num
        item_id = (row.get(cols.item) or "").strip()
        annotator = (row.get(cols.annotator) or "").strip()
        label = (row.get(cols.label) or "").strip()
        if not item_id:
            problems.append(Problem(f"empty item id (column '{cols.item}')", path, lineno))
            continue
        if not annotator or not label:
            problems.append(
                Problem(f"row of item {item_id!r} lacks an annotator or a label", path, lineno)
            )
            continue
        if label not in allowed:
            problems.append(Problem(f"item {item_id!r}: unknown label {label!r}", path, lineno))
            continue
        gold = (row.get(cols.gold) or "").strip() if cols.gold else ""
        if gold and gold not in allowed:
            problems.append(
                Problem(f"item {item_id!r}: gold {gold!r} is not a label", path, lineno)
            )
            continue
        entry = by_id.setdefault(
            item_id, {"line": lineno, "annotations": {}, "fields": {}, "meta": {}, "gold": None}
        )
        if gold and entry["gold"] not in (None, gold):
            problems.append(
                Problem(
                    f"item {item_id!r} has two gold labels, {entry['gold']!r} and {gold!r}",
                    path,
                    lineno,
                )
            )
        if annotator in entry["annotations"] and entry["annotations"][annotator] != label:
            problems.append(
                Problem(
                    f"annotator {annotator!r} labels item {item_id!r} twice with different labels",
                    path,
                    lineno,
                )
            )
        entry["annotations"][_shared(annotator)] = _shared(label)
        if clusters is not None:
            problems += csv_cluster(clusters, item_id, row.get(cluster or ""), path, lineno)
        for c in cols.fields:
            entry["fields"].setdefault(c, row.get(c))
        for c in cols.meta:
            entry["meta"].setdefault(c, _shared(row.get(c) or ""))
        if gold:
            entry["gold"] = gold
    items = [
        GoldItem(
            id=i,
            fields=e["fields"],
            annotations=e["annotations"],
            gold=e["gold"],
            meta=e["meta"],
            line=e["line"],
        )
        for i, e in by_id.items()
    ]
    if not items and not problems:
        problems.append(Problem("no rows after the header", path))
    return items, problems, clusters


def _check_structured(
    items: list[GoldItem], path: Path, space: LabelSpace
) -> tuple[list[GoldItem], list[Problem]]:
    """Sets, rankings and rubrics: each annotation checked and normalised by the label space."""
    problems = _check_items(items, path, None)
    checked = []
    for item in items:
        annotations = {}
        for annotator, value in item.annotations.items():
            normal, error = space.check(value, item.fields)
            if error:
                problems.append(
                    Problem(f"item {item.id!r}, annotator {annotator!r}: {error}", path, item.line)
                )
            annotations[annotator] = normal
        gold = None
        if item.gold is not None:
            gold, error = space.check(item.gold, item.fields)
            if error:
                problems.append(Problem(f"item {item.id!r}, gold: {error}", path, item.line))
        checked.append(replace(item, annotations=annotations, gold=gold))
    problems.extend(Problem(message, path) for message in space.gold_set_problems(items))
    return checked, problems


def _check_items(items: list[GoldItem], path: Path, labels: Sequence[str] | None) -> list[Problem]:
    """Ids unique, annotations present, and (labels given) every label known."""
    allowed = set(labels or ())
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for item in items:
        if item.id in first_line:
            problems.append(
                Problem(
                    f"duplicate id {item.id!r} (first on line {first_line[item.id]})",
                    path,
                    item.line,
                )
            )
        else:
            first_line[item.id] = item.line
        if not item.annotations:
            problems.append(Problem(f"item {item.id!r} has no annotations", path, item.line))
        if labels is None:
            continue
        bad = sorted({v for v in item.annotations.values() if v not in allowed})
        if bad:
            problems.append(Problem(f"item {item.id!r}: unknown labels {bad}", path, item.line))
        if item.gold is not None and item.gold not in allowed:
            problems.append(
                Problem(f"item {item.id!r}: gold {item.gold!r} is not a label", path, item.line)
            )
    return problems


def load_pool(path: Path, labels: Sequence[str]) -> list[GoldItem]:
    """Few-shot pool: JSONL items with one `label` each (stored as a one-annotator item)."""
    allowed = set(labels)
    pool: list[GoldItem] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for lineno, obj in read_jsonl(path, problems, what="few-shot pool"):
        if not isinstance(obj, dict) or "id" not in obj or "label" not in obj:
            problems.append(
                Problem("each line needs an object with 'id' and 'label'", path, lineno)
            )
            continue
        label = _as_label(obj["label"])
        if label not in allowed:
            problems.append(Problem(f"label {label!r} is not one of {list(labels)}", path, lineno))
            continue
        if str(obj["id"]) in seen:
            problems.append(
                Problem(
                    f"duplicate id {obj['id']!r} (first on line {seen[str(obj['id'])]})",
                    path,
                    lineno,
                )
            )
            continue
        seen[str(obj["id"])] = lineno
        fields = {k: v for k, v in obj.items() if k not in RESERVED_KEYS | {"label"}}
        meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
        pool.append(
            GoldItem(
                id=str(obj["id"]),
                fields=fields,
                annotations={"pool": label},
                gold=label,
                meta={str(k): str(v) for k, v in meta.items()},
                line=lineno,
            )
        )
    limit = GoldSetConfig.model_fields["max_item_bytes"].default
    problems += oversized(pool, path, limit)  # every example is sent with every item
    if problems:
        raise UserError(problems, hint="fix these lines of the few-shot pool file")
    if not pool:
        raise UserError.at(
            "few-shot pool has no examples",
            file=path,
            hint='add JSONL lines {"id": ..., "label": ..., "text": ...}, or drop few_shot',
        )
    return pool
