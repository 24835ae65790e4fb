#!/usr/bin/env python3
"""Convert LLMFAO crowd comparisons into a prelabel pairwise gold set and two replay files.

Input (read from `--golds`, never copied into the repository): the raw files of
github.com/dustalov/llmfao (CC BY 4.0, Dmitry Ustalov):
- `pairs-crowd.jsonl`: one pair a line (`id, prompt, text, slug, type, model_x, result_x,
  model_y, result_y`);
- `crowd-comparisons.csv`: one crowd judgment a row (`id,prompt,model_x,model_y,worker,
  winner,left,right`, `winner` in {left, right, tie});
- `gpt4-crowd-comparisons.csv`, `gpt3-crowd-comparisons.csv`: one GPT verdict a pair;
- `models.jsonl`: model id -> name (to check the `left`/`right` names).

Output (in `--out`):
- `gold.jsonl`: one item a pair: `prompt`, `response_a`, `response_b`, `model_a`, `model_b`,
  `annotations` {"w<worker>": "A" | "B" | "tie"}, `meta` {prompt, prompt_id, prompt_type,
  model_a, model_b};
- `gpt4_replay.jsonl`, `gpt3_replay.jsonl`: `{"id", "label"}` for the pairs in `gold.jsonl`.

The A/B mapping. A is `model_x` (its response is `result_x`), B is `model_y` (`result_y`).
`left` and `right` are model *names*; `winner` names a side. A judgment is mapped through the
names, never through the position: the side whose name is model_x's name is A, the other B.
In the published files `left` is model_x's name and `right` is model_y's in every row (the
pair generator already randomised which model is x), so left -> A, right -> B, tie -> tie;
a row whose names are swapped would be mapped the other way round, and a row whose names
match neither order is skipped and counted. Checked by hand on pairs 717, 718, 724, 725, 729
(vendor-extract: the side that answers just "NIKE" wins with every worker) and 12, 81
(one response is blank and loses); see examples/README.md.

Standard library only. Run from anywhere: `python examples/llmfao_to_prelabel.py --help`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOLDS = REPO_ROOT.parent / "shared" / "golds" / "llmfao"
DEFAULT_OUT = REPO_ROOT / "data" / "external" / "llmfao"

LABELS = ("A", "B", "tie")
PAIRS_FILE = "pairs-crowd.jsonl"
CROWD_FILE = "crowd-comparisons.csv"
MODELS_FILE = "models.jsonl"
REPLAY_SOURCES = {  # output file -> input file
    "gpt4_replay.jsonl": "gpt4-crowd-comparisons.csv",
    "gpt3_replay.jsonl": "gpt3-crowd-comparisons.csv",
}
REPLAY_MODELS = {"gpt4_replay.jsonl": "GPT-4", "gpt3_replay.jsonl": "GPT-3.5 Turbo Instruct"}
CROWD_COLUMNS = ("id", "prompt", "model_x", "model_y", "worker", "winner", "left", "right")
GPT_COLUMNS = ("id", "prompt", "model_x", "model_y", "winner", "left", "right")


def header(what: str, files: str, changes: str, options: str) -> str:
    """The `#` comment block every output file starts with."""
    return (
        f"# LLMFAO (pairwise preferences over LLM responses), converted for prelabel: {what}.\n"
        f"# Source: github.com/dustalov/llmfao at commit 9e224e94, files {files}.\n"
        "# Licence: CC BY 4.0 (Creative Commons Attribution 4.0), see LICENSE.CC-BY there.\n"
        '# Cite: Dmitry Ustalov, "LLMFAO: Large Language Model Feedback Analysis and\n'
        '#   Optimization" (2023), https://github.com/dustalov/llmfao\n'
        f"# Changes: {changes}\n"
        f"# Converter: python examples/llmfao_to_prelabel.py{options}\n"
    )


MAPPING_NOTE = (
    "winner left/right/tie -> A/B/tie,\n#   A = model_x (result_x), B = model_y (result_y)"
)


class SkipRow(Exception):
    """A raw row that cannot be used; the message is the reason it is counted under."""


def map_verdict(winner: str, left: str, right: str, name_a: str, name_b: str) -> str:
    """One judgment -> "A" | "B" | "tie".

    `left`/`right` are the names of the two models as the row lists them, `winner` is
    "left", "right" or "tie"; A is the model named `name_a` (model_x), B `name_b` (model_y).
    Raises SkipRow when the names do not identify the two models or the winner is unknown.
    """
    if name_a == name_b:
        raise SkipRow("model_x and model_y have the same name")
    left, right = left.strip(), right.strip()
    if (left, right) == (name_a, name_b):
        sides = {"left": "A", "right": "B"}
    elif (left, right) == (name_b, name_a):
        sides = {"left": "B", "right": "A"}
    else:
        raise SkipRow("left/right names are not the names of model_x/model_y")
    w = winner.strip().lower()
    if w == "tie":
        return "tie"
    if w in sides:
        return sides[w]
    raise SkipRow(f"unknown winner {winner.strip()!r}")


@dataclass
class Pair:
    id: int
    prompt_id: int
    prompt_text: str
    slug: str
    prompt_type: str
    model_x: int
    result_x: str
    model_y: int
    result_y: str


@dataclass
class Stats:
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n


def die(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        die(f"{path} not found (is --golds the llmfao folder?)")
    out = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                die(f"{path}:{lineno}: invalid JSON ({exc.msg})")
    return out


def read_csv(path: Path, columns: Iterable[str]) -> list[dict[str, str]]:
    if not path.is_file():
        die(f"{path} not found (is --golds the llmfao folder?)")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            die(f"{path}: header lacks columns {missing}; it has {reader.fieldnames}")
        return list(reader)


def load_models(golds: Path) -> dict[int, str]:
    return {int(m["id"]): str(m["name"]).strip() for m in read_jsonl(golds / MODELS_FILE)}


def load_pairs(golds: Path) -> dict[int, Pair]:
    pairs: dict[int, Pair] = {}
    for o in read_jsonl(golds / PAIRS_FILE):
        pid = int(o["id"])
        if pid in pairs:
            die(f"{golds / PAIRS_FILE}: duplicate pair id {pid}")
        pairs[pid] = Pair(
            id=pid,
            prompt_id=int(o["prompt"]),
            prompt_text=o.get("text") or "",
            slug=o.get("slug") or "",
            prompt_type=o.get("type") or "",
            model_x=int(o["model_x"]),
            result_x=o.get("result_x") or "",
            model_y=int(o["model_y"]),
            result_y=o.get("result_y") or "",
        )
    return pairs


def row_label(row: dict[str, str], pairs: dict[int, Pair], models: dict[int, str]) -> tuple:
    """(pair id, A/B/tie) of one comparison row; SkipRow with the reason otherwise."""
    try:
        pid = int(row["id"])
        ids = (int(row["prompt"]), int(row["model_x"]), int(row["model_y"]))
    except (TypeError, ValueError):
        raise SkipRow("id/prompt/model_x/model_y is not an integer") from None
    pair = pairs.get(pid)
    if pair is None:
        raise SkipRow(f"pair id not in {PAIRS_FILE}")
    if ids != (pair.prompt_id, pair.model_x, pair.model_y):
        raise SkipRow(f"prompt/model_x/model_y differ from {PAIRS_FILE}")
    if pair.model_x not in models or pair.model_y not in models:
        raise SkipRow(f"model id not in {MODELS_FILE}")
    label = map_verdict(
        row["winner"], row["left"], row["right"], models[pair.model_x], models[pair.model_y]
    )
    return pid, label


def collect_crowd(
    rows: list[dict[str, str]], pairs: dict[int, Pair], models: dict[int, str], stats: Stats
) -> dict[int, dict[str, str]]:
    """pair id -> {annotator: label}; every unusable row counted in stats.skipped."""
    annotations: dict[int, dict[str, str]] = defaultdict(dict)
    conflicts: set[tuple[int, str]] = set()
    for row in rows:
        worker = (row.get("worker") or "").strip()
        if not worker:
            stats.skip("rows: crowd row without a worker")
            continue
        try:
            pid, label = row_label(row, pairs, models)
        except SkipRow as exc:
            stats.skip(f"rows: {exc}")
            continue
        annotator = f"w{worker}"
        if (pid, annotator) in conflicts:
            stats.skip("rows: worker judged the pair again, verdicts differ (all dropped)")
            continue
        previous = annotations[pid].get(annotator)
        if previous is None:
            annotations[pid][annotator] = label
        elif previous == label:
            stats.skip("rows: repeated judgment, same verdict (kept once)")
        else:
            del annotations[pid][annotator]
            conflicts.add((pid, annotator))
            stats.skip("rows: worker judged the pair again, verdicts differ (all dropped)", 2)
    return {pid: ann for pid, ann in annotations.items() if ann}


def gold_line(pair: Pair, models: dict[int, str], annotations: dict[str, str]) -> dict:
    model_a, model_b = models[pair.model_x], models[pair.model_y]
    return {
        "id": str(pair.id),
        "prompt": pair.prompt_text,
        "response_a": pair.result_x,
        "response_b": pair.result_y,
        "model_a": model_a,
        "model_b": model_b,
        "annotations": dict(sorted(annotations.items(), key=lambda kv: _worker_key(kv[0]))),
        "meta": {
            "prompt": pair.slug,
            "prompt_id": pair.prompt_id,
            "prompt_type": pair.prompt_type,
            "model_a": model_a,
            "model_b": model_b,
        },
    }


def _worker_key(annotator: str) -> tuple:
    raw = annotator[1:]
    return (0, int(raw), "") if raw.isdigit() else (1, 0, raw)


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


def write_jsonl(path: Path, header: str, lines: Iterable[dict]) -> int:
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(header)
        for obj in lines:
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def distribution(counter: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items()))


def print_skipped(stats: Stats, indent: str = "  ") -> None:
    if not stats.skipped:
        print(f"{indent}skipped: none")
        return
    print(f"{indent}skipped:")
    for reason, n in sorted(stats.skipped.items()):
        print(f"{indent}  {n:6d}  {reason}")


def convert(golds: Path, out: Path, limit: int | None, min_annotators: int) -> dict:
    models = load_models(golds)
    pairs = load_pairs(golds)
    crowd_rows = read_csv(golds / CROWD_FILE, CROWD_COLUMNS)

    stats = Stats()
    annotations = collect_crowd(crowd_rows, pairs, models, stats)
    kept_ids = []
    for pid in sorted(annotations):
        n = len(annotations[pid])
        if n < min_annotators:
            stats.skip(f"pairs: fewer than {min_annotators} annotators")
            stats.skip(f"rows: their pair has fewer than {min_annotators} annotators", n)
            continue
        kept_ids.append(pid)
    without = len(set(pairs) - set(annotations))
    if without:
        stats.skip("pairs: in the pairs file but without any usable crowd judgment", without)
    if limit is not None and len(kept_ids) > limit:
        beyond = kept_ids[limit:]
        kept_ids = kept_ids[:limit]
        stats.skip("pairs: beyond --limit", len(beyond))
        stats.skip("rows: their pair is beyond --limit", sum(len(annotations[p]) for p in beyond))
    if not kept_ids:
        die("no pairs left to write (check --min-annotators / --limit)")

    out.mkdir(parents=True, exist_ok=True)
    ensure_ignored(out)
    options = "" if limit is None else f" --limit {limit}"
    options += f" --min-annotators {min_annotators}"
    head = header(
        f"crowd gold set, {len(kept_ids)} pairs, labels A/B/tie",
        f"{PAIRS_FILE} + {CROWD_FILE} + {MODELS_FILE}",
        f"{MAPPING_NOTE};\n#   workers renamed w<worker>; pairs with fewer than "
        f"{min_annotators} workers dropped.",
        options,
    )
    lines = [gold_line(pairs[pid], models, annotations[pid]) for pid in kept_ids]
    write_jsonl(out / "gold.jsonl", head, lines)

    judgments = sum(len(annotations[p]) for p in kept_ids)
    workers = {a for p in kept_ids for a in annotations[p]}
    per_pair = Counter(len(annotations[p]) for p in kept_ids)
    verdicts = Counter(v for p in kept_ids for v in annotations[p].values())
    blank = sum(
        1 for p in kept_ids if not pairs[p].result_x.strip() or not pairs[p].result_y.strip()
    )
    print(f"gold set: {out / 'gold.jsonl'}")
    print(
        f"  crowd rows read: {len(crowd_rows)} ({CROWD_FILE}); pairs in {PAIRS_FILE}: {len(pairs)}"
    )
    print(f"  pairs written: {len(kept_ids)}")
    print(f"  judgments written: {judgments}")
    print(f"  workers: {len(workers)}")
    print(f"  annotators per pair: {distribution(per_pair)}")
    print(f"  verdicts: {distribution(verdicts)}")
    print(f"  pairs with a blank response (kept verbatim): {blank}")
    print_skipped(stats)

    kept = set(kept_ids)
    replays = {}
    for out_name, in_name in REPLAY_SOURCES.items():
        replays[out_name] = write_replay(
            golds, out, in_name, out_name, pairs, models, kept, options
        )
    return {
        "pairs": len(kept_ids),
        "judgments": judgments,
        "workers": len(workers),
        "per_pair": dict(per_pair),
        "verdicts": dict(verdicts),
        "skipped": dict(stats.skipped),
        "replays": replays,
    }


def write_replay(
    golds: Path,
    out: Path,
    in_name: str,
    out_name: str,
    pairs: dict[int, Pair],
    models: dict[int, str],
    kept: set[int],
    options: str,
) -> dict:
    rows = read_csv(golds / in_name, GPT_COLUMNS)
    stats = Stats()
    labels: dict[int, str] = {}
    for row in rows:
        try:
            pid, label = row_label(row, pairs, models)
        except SkipRow as exc:
            stats.skip(str(exc))
            continue
        if pid in labels:
            stats.skip("second verdict for the same pair (first kept)")
            continue
        if pid not in kept:
            stats.skip("pair not in the written gold set (min-annotators / --limit)")
            continue
        labels[pid] = label
    head = header(
        f"{REPLAY_MODELS[out_name]} verdicts as replay labels, {len(labels)} pairs",
        f"{in_name} + {PAIRS_FILE} + {MODELS_FILE}",
        f"{MAPPING_NOTE};\n#   only the pairs of gold.jsonl.",
        options,
    )
    write_jsonl(
        out / out_name,
        head,
        ({"id": str(pid), "label": labels[pid]} for pid in sorted(labels)),
    )
    missing = len(kept - set(labels))
    verdicts = Counter(labels.values())
    print(f"replay: {out / out_name}")
    print(f"  rows read: {len(rows)} ({in_name}); lines written: {len(labels)}")
    print(f"  verdicts: {distribution(verdicts)}")
    print(f"  gold pairs without a verdict here: {missing}")
    print_skipped(stats)
    return {"lines": len(labels), "verdicts": dict(verdicts), "skipped": dict(stats.skipped)}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def missing_golds(golds: Path) -> str:
    """Where the raw files were looked for, and how to point the script at them."""
    default = golds == DEFAULT_GOLDS
    return (
        f"no LLMFAO raw files: {golds.resolve()} is not a folder"
        + (" (the default: the shared copy beside the checkout)" if default else "")
        + "; get the files listed in examples/README.md from github.com/dustalov/llmfao "
        "and pass their folder with --golds DIR"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="LLMFAO crowd comparisons -> prelabel pairwise gold set + GPT replay files.",
        epilog="A = model_x's response (result_x), B = model_y's (result_y); "
        "see examples/README.md for the mapping.",
    )
    parser.add_argument(
        "--golds",
        type=Path,
        default=DEFAULT_GOLDS,
        help="folder with the raw llmfao files (default: ../shared/golds/llmfao beside the repo)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder (default: data/external/llmfao in the repo, git-ignored)",
    )
    parser.add_argument(
        "--limit", type=positive_int, help="write only the first N pairs by id (quick runs)"
    )
    parser.add_argument(
        "--min-annotators",
        type=positive_int,
        default=2,
        metavar="K",
        help="drop pairs judged by fewer than K workers (default: 2)",
    )
    args = parser.parse_args(argv)
    if not args.golds.is_dir():
        die(missing_golds(args.golds))
    convert(args.golds, args.out, args.limit, args.min_annotators)
    return 0


if __name__ == "__main__":
    sys.exit(main())
