#!/usr/bin/env python3
"""Convert ConvAbuse (EMNLP 2021) into a prelabel ordinal gold set of abuse severity.

CONTENT WARNING: the data hold abusive, sexist, racist and sexually harassing language.

Input (read from `--golds`, never copied into the repository): `ConvAbuseEMNLP{split}.csv`
of github.com/amandacurry/convabuse (CC BY 4.0; Cercas Curry, Abercrombie, Rieser, EMNLP
2021). One row a user turn, wide format: `example_id, conv_id, prev_agent, prev_user, agent,
user, bot`, then per annotator N one-hot columns `AnnotatorN_is_abuse.{1,0,-1,-2,-3}` (and
abuse type / target / directness columns, not used here). An annotator who did not label a
row has empty cells.

Output (in `--out`): `gold.jsonl`, one item a row: fields `prev_agent`, `prev_user`, `agent`,
`user` (the user turn to rate), `conv_id`; `annotations` {"AnnotatorN": level};
`meta` {split, bot}. Levels, least to most severe (the order of an ordinal task):
not_abusive (1), ambiguous (0), mild (-1), strong (-2), very_strong (-3).

One-hot checks, per (row, annotator): all five cells empty = did not label (no annotation).
Otherwise each cell holds one 0/1 value, or several comma-separated ones ("0, 1") where the
annotator labelled the row more than once (repeats kept for intra-annotator agreement);
every cell must hold the same number of values, and each repeat exactly one 1. Repeats that
agree give one annotation; anything else (no level set, several set, repeats that disagree,
partly empty, not 0/1) is skipped and counted by reason, never silently.

Standard library only. Run from anywhere: `python examples/convabuse_to_prelabel.py --help`.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOLDS = REPO_ROOT.parent / "shared" / "golds" / "convabuse"
DEFAULT_OUT = REPO_ROOT / "data" / "external" / "convabuse"

# (column suffix, level name), least to most severe.
SEVERITY = (
    ("1", "not_abusive"),
    ("0", "ambiguous"),
    ("-1", "mild"),
    ("-2", "strong"),
    ("-3", "very_strong"),
)
LEVELS = tuple(name for _, name in SEVERITY)
CODES = tuple(code for code, _ in SEVERITY)
SPLITS = ("train", "valid", "test")
TEXT_FIELDS = ("prev_agent", "prev_user", "agent", "user")
REQUIRED = ("example_id", "conv_id", *TEXT_FIELDS)
SEVERITY_COLUMN = re.compile(r"^(Annotator\d+)_is_abuse\.(-?\d+)$")

# Reasons an annotator's cells of one row are skipped (the keys of the skip counter).
ZERO_SET = "no severity level set"
SEVERAL_SET = "several severity levels set"
REPEATS_DIFFER = "labelled the row several times, levels differ"
PARTLY_EMPTY = "some severity cells empty, others not"
RAGGED = "cells hold different numbers of values"
NOT_BINARY = "a cell value is not 0 or 1"


class Skip(Exception):
    """An annotator's severity cells that do not give one level; the message is the reason."""


def annotator_level(cells: dict[str, str]) -> tuple[str | None, int]:
    """Severity cells of one annotator on one row ({code: cell}) -> (level, repeats).

    (None, 0) when every cell is empty (the annotator did not label the row). Raises Skip
    with the reason when the cells are not a valid one-hot (per repeat) with agreeing repeats.
    """
    raw = [(cells.get(code) or "").strip() for code in CODES]
    if all(not v for v in raw):
        return None, 0
    if any(not v for v in raw):
        raise Skip(PARTLY_EMPTY)
    values = [[p.strip() for p in v.split(",")] for v in raw]
    repeats = {len(v) for v in values}
    if len(repeats) != 1:
        raise Skip(RAGGED)
    k = repeats.pop()
    if any(p not in ("0", "1") for v in values for p in v):
        raise Skip(NOT_BINARY)
    levels = []
    for i in range(k):
        on = [LEVELS[j] for j in range(len(CODES)) if values[j][i] == "1"]
        if not on:
            raise Skip(ZERO_SET)
        if len(on) > 1:
            raise Skip(SEVERAL_SET)
        levels.append(on[0])
    if len(set(levels)) > 1:
        raise Skip(REPEATS_DIFFER)
    return levels[0], k


def normalise_id(raw: str) -> str:
    """`example_id` is written as a float ("65.0"); the item id is "65"."""
    raw = raw.strip()
    return raw[:-2] if re.fullmatch(r"\d+\.0", raw) else raw


@dataclass
class Stats:
    rows: Counter[str] = field(default_factory=Counter)
    skipped_labels: Counter[str] = field(default_factory=Counter)
    skipped_items: Counter[str] = field(default_factory=Counter)
    repeats_merged: Counter[int] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


def die(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def severity_columns(header: list[str], path: Path, stats: Stats) -> dict[str, dict[str, int]]:
    """annotator -> {code: column index}; dies unless each has all five, each once."""
    found: dict[str, dict[str, list[int]]] = {}
    for i, name in enumerate(header):
        m = SEVERITY_COLUMN.match(name.strip())
        if m:
            found.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(i)
    if not found:
        die(f"{path}: no AnnotatorN_is_abuse.* columns in the header")
    out = {}
    for annotator, by_code in found.items():
        if set(by_code) != set(CODES) or any(len(ix) != 1 for ix in by_code.values()):
            have = {c: len(ix) for c, ix in by_code.items()}
            die(f"{path}: {annotator} needs each of is_abuse.{list(CODES)} once; has {have}")
        out[annotator] = {code: ix[0] for code, ix in by_code.items()}
    dup = sorted(n for n, c in Counter(header).items() if c > 1)
    if dup:
        stats.notes.append(
            f"{path.name}: header names repeated, {dup} (not severity columns; not read)"
        )
    return dict(sorted(out.items(), key=lambda kv: int(kv[0][len("Annotator") :])))


def convert_split(golds: Path, split: str, stats: Stats) -> list[dict]:
    path = golds / f"ConvAbuseEMNLP{split}.csv"
    if not path.is_file():
        die(f"{path} not found (is --golds the convabuse folder?)")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            die(f"{path} is empty")
        index = {name: i for i, name in reversed(list(enumerate(header)))}
        missing = [c for c in REQUIRED if c not in index]
        if missing:
            die(f"{path}: header lacks columns {missing}")
        columns = severity_columns(header, path, stats)
        items = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            stats.rows[split] += 1
            if len(row) != len(header):
                die(f"{path}:{reader.line_num}: {len(row)} cells, header has {len(header)}")
            item_id = normalise_id(row[index["example_id"]])
            annotations = {}
            for annotator, cols in columns.items():
                try:
                    level, k = annotator_level({code: row[i] for code, i in cols.items()})
                except Skip as exc:
                    stats.skipped_labels[str(exc)] += 1
                    continue
                if level is not None:
                    annotations[annotator] = level
                    if k > 1:
                        stats.repeats_merged[k] += 1
            if not annotations:
                stats.skipped_items["no annotator with a valid severity level"] += 1
                continue
            meta = {"split": split}
            if "bot" in index:
                meta["bot"] = row[index["bot"]].strip()
            items.append(
                {
                    "id": item_id,
                    **{f: row[index[f]] for f in TEXT_FIELDS},
                    "conv_id": normalise_id(row[index["conv_id"]]),
                    "annotations": annotations,
                    "meta": meta,
                }
            )
    return items


def header_comment(splits: list[str], n_items: int, options: str) -> str:
    files = ", ".join(f"ConvAbuseEMNLP{s}.csv" for s in splits)
    return (
        "# ConvAbuse: abuse towards conversational agents, severity of the user turn, "
        f"converted for prelabel: {n_items} items.\n"
        "# CONTENT WARNING: abusive, sexist, racist and sexually harassing language.\n"
        f"# Source: github.com/amandacurry/convabuse at commit c0a9469f, files {files}.\n"
        "# Licence: CC BY 4.0 (Creative Commons Attribution 4.0), see LICENSE there.\n"
        "# Cite: Amanda Cercas Curry, Gavin Abercrombie, Verena Rieser. ConvAbuse: Data,\n"
        "#   Analysis, and Benchmarks for Nuanced Abuse Detection in Conversational AI.\n"
        "#   EMNLP 2021, pages 7388-7403. https://aclanthology.org/2021.emnlp-main.587\n"
        "# Changes: one-hot AnnotatorN_is_abuse.{1,0,-1,-2,-3} -> level names, least to most\n"
        "#   severe: " + ", ".join(f"{name} ({code})" for code, name in SEVERITY) + ";\n"
        "#   repeated labels of one annotator merged when equal, else dropped; invalid\n"
        "#   one-hots dropped (counted by the converter); example_id 65.0 -> id 65.\n"
        f"# Converter: python examples/convabuse_to_prelabel.py{options}\n"
    )


def ensure_ignored(out: Path) -> None:
    """Inside the repository, the output folder gets a `.gitignore` of `*`: the converted
    data (CC BY 4.0, third-party) must never be committed by accident."""
    try:
        out.resolve().relative_to(REPO_ROOT)
    except ValueError:
        return
    marker = out / ".gitignore"
    if not marker.exists():
        marker.write_text("# converted third-party data: never commit\n*\n", encoding="utf-8")


def distribution(counter: Counter, order: tuple | None = None) -> str:
    keys = [k for k in order if k in counter] if order else sorted(counter)
    return ", ".join(f"{k}: {counter[k]}" for k in keys)


def convert(golds: Path, out: Path, splits: list[str], limit: int | None) -> dict:
    stats = Stats()
    items: list[dict] = []
    for split in splits:
        items.extend(convert_split(golds, split, stats))
    seen: dict[str, str] = {}
    for item in items:
        if item["id"] in seen:
            die(
                f"example_id {item['id']} appears in {seen[item['id']]} and "
                f"{item['meta']['split']}: ids must be unique"
            )
        seen[item["id"]] = item["meta"]["split"]
    if limit is not None and len(items) > limit:
        stats.skipped_items["beyond --limit"] += len(items) - limit
        items = items[:limit]
    if not items:
        die("no items to write")

    out.mkdir(parents=True, exist_ok=True)
    ensure_ignored(out)
    options = f" --splits {','.join(splits)}" + ("" if limit is None else f" --limit {limit}")
    path = out / "gold.jsonl"
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(header_comment(splits, len(items), options))
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    tmp.replace(path)

    labels = Counter(v for it in items for v in it["annotations"].values())
    per_item = Counter(len(it["annotations"]) for it in items)
    annotators = sorted(
        {a for it in items for a in it["annotations"]}, key=lambda a: int(a[len("Annotator") :])
    )
    by_split = Counter(it["meta"]["split"] for it in items)
    print("CONTENT WARNING: the converted texts contain abusive language.")
    print(f"gold set: {path}")
    print(f"  rows read: {distribution(stats.rows, tuple(splits))}")
    print(f"  items written: {len(items)} ({distribution(by_split, tuple(splits))})")
    print(f"  annotations written: {sum(labels.values())}")
    print(f"  annotators: {len(annotators)} ({', '.join(annotators)})")
    print(f"  annotators per item: {distribution(per_item)}")
    print(f"  labels: {distribution(labels, LEVELS)}")
    if stats.repeats_merged:
        merged = ", ".join(f"{n} x{k}" for k, n in sorted(stats.repeats_merged.items()))
        print(f"  repeated labels that agree, merged into one: {merged}")
    skipped = stats.skipped_labels
    print("  annotator labels skipped: " + (distribution(skipped) if skipped else "none"))
    items_skipped = stats.skipped_items
    print("  items skipped: " + (distribution(items_skipped) if items_skipped else "none"))
    for note in stats.notes:
        print(f"  note: {note}")
    return {
        "rows": dict(stats.rows),
        "items": len(items),
        "annotations": sum(labels.values()),
        "labels": dict(labels),
        "per_item": dict(per_item),
        "skipped_labels": dict(skipped),
        "skipped_items": dict(items_skipped),
    }


def parse_splits(text: str) -> list[str]:
    splits = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in splits if s not in SPLITS]
    if not splits or bad:
        raise argparse.ArgumentTypeError(
            f"comma-separated subset of {','.join(SPLITS)}; got {text!r}"
        )
    return list(dict.fromkeys(splits))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def missing_golds(golds: Path) -> str:
    """Where the raw files were looked for, and how to point the script at them."""
    default = golds == DEFAULT_GOLDS
    return (
        f"no ConvAbuse raw files: {golds.resolve()} is not a folder"
        + (" (the default: the shared copy beside the checkout)" if default else "")
        + "; get ConvAbuseEMNLP{train,valid,test}.csv from github.com/amandacurry/convabuse "
        "and pass their folder with --golds DIR"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="ConvAbuse CSVs -> prelabel ordinal gold set (abuse severity, 5 levels). "
        "Content warning: abusive language.",
        epilog="Levels, least to most severe: " + ", ".join(LEVELS) + ".",
    )
    parser.add_argument(
        "--golds",
        type=Path,
        default=DEFAULT_GOLDS,
        help="folder with the raw ConvAbuse CSVs (default: ../shared/golds/convabuse)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder (default: data/external/convabuse in the repo, git-ignored)",
    )
    parser.add_argument(
        "--splits",
        type=parse_splits,
        default=["test"],
        help="comma-separated splits to convert, in this order (default: test)",
    )
    parser.add_argument(
        "--limit", type=positive_int, help="write only the first N items (quick runs)"
    )
    args = parser.parse_args(argv)
    if not args.golds.is_dir():
        die(missing_golds(args.golds))
    convert(args.golds, args.out, args.splits, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
