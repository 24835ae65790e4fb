"""New, unlabeled items for `prelabel label` (inputs station): JSONL (one object per line, `#`
comments), CSV (a header row), Parquet (`.parquet`, `.pq`) or a Hugging Face dataset folder
written by `save_to_disk`, each item with an `id` and the fields the prompt template uses.
Tables are read by harness/inputs/tables.py, as gold sets are: rows numbered from 1 stand in
for lines, and the content hash is the table's digest.

A pool may hold millions of items, so it is read in passes over the file rather than kept:
`scan_unlabeled` checks it whole (UTF-8, JSON, ids, duplicates) and hashes it, holding 8
bytes per item; `iter_unlabeled` then yields it a chunk of items at a time, as often as the
caller needs. `load_unlabeled` is both at once, for small files.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from harness.core.errors import Problem, UserError
from harness.core.records import GoldItem, GoldSet
from harness.inputs.tables import saved_dataset, table_digest, table_iter

MAX_PROBLEMS = 200
WHAT = "input file"
BLOCK = 1 << 20


@dataclass(frozen=True)
class Pool:
    """A checked input file: how many items it holds and the sha256 of its bytes (of a
    table, its digest as tables.py computes it)."""

    path: Path
    n: int
    content_hash: str
    set_id: str = "input"


def _open(path: Path, mode: str = "rb", **kw: Any) -> IO[Any]:
    """The file, every OS problem a UserError (as harness.core.paths.read_text_file says)."""
    try:
        return path.open(mode, **kw)
    except FileNotFoundError:
        raise UserError.at(
            f"{WHAT} not found",
            file=path,
            hint="check the path in the config (relative paths are relative to the config file)",
        ) from None
    except IsADirectoryError:
        raise UserError.at(
            f"{WHAT} is a directory, expected a file", file=path, hint="point at the file"
        ) from None
    except OSError as exc:
        raise UserError.at(
            f"cannot read {WHAT}: {exc.strerror}",
            file=path,
            hint="check the file's permissions (the user running prelabel must be able to read it)",
        ) from None


def _bytes_pass(path: Path) -> str:
    """sha256 of the bytes, checking they are UTF-8 (a block at a time, never the whole)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset, newlines = 0, 0
    with _open(path) as f:
        while block := f.read(BLOCK):
            digest.update(block)
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                at = offset + exc.start
                line = newlines + block[: exc.start].count(b"\n") + 1
                raise UserError.at(
                    f"{WHAT} is not valid UTF-8 (byte {at})",
                    file=path,
                    line=line,
                    hint="re-save the file as UTF-8",
                ) from None
            offset += len(block)
            newlines += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UserError.at(
                f"{WHAT} is not valid UTF-8 (byte {offset - 1})",
                file=path,
                line=newlines + 1,
                hint="re-save the file as UTF-8",
            ) from None
    return digest.hexdigest()


def _table(path: Path) -> str | None:
    """The tables.py format of a Parquet or saved-dataset pool; None for JSONL and CSV."""
    if saved_dataset(path):
        return "hf"
    return "parquet" if path.suffix.lower() in {".parquet", ".pq"} else None


def _unit(path: Path) -> str:
    return "row" if _table(path) else "line"


def _content_hash(path: Path) -> str:
    # A table's strings are decoded by its reader: only JSONL and CSV need the UTF-8 pass.
    fmt = _table(path)
    return table_digest(path, fmt, WHAT) if fmt else _bytes_pass(path)


def _rows(path: Path, json_problems: list[Problem]) -> Iterator[tuple[int, object]]:
    """(line, parsed row) of every row; a JSONL line that is no JSON goes to `json_problems`.
    Lines split on "\\n" only, as io.StringIO of the decoded text did before. A table's rows
    are numbered from 1 instead."""
    fmt = _table(path)
    if fmt:
        for row, obj in table_iter(path, fmt, WHAT):
            # Every row of a table has the same columns: one error, as for a CSV header.
            if row == 1 and isinstance(obj, dict) and "id" not in obj:
                raise UserError.at(
                    f"the table has no 'id' column (columns: {', '.join(map(str, obj))[:200]})",
                    file=path,
                    hint="add an id column (or rename the column that identifies each item)",
                )
            yield row, obj
        return
    with _open(path, "r", encoding="utf-8-sig", newline="\n") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(f)
            if not reader.fieldnames or "id" not in reader.fieldnames:
                raise UserError.at(
                    "the CSV header has no 'id' column", file=path, line=1, hint="add an id column"
                )
            for row in reader:
                yield reader.line_num, dict(row)
            return
        for lineno, line in enumerate(f, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            try:
                value = json.loads(stripped)
            except (json.JSONDecodeError, RecursionError) as exc:
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                json_problems.append(Problem(f"invalid JSON: {msg}", path, lineno))
                continue
            yield lineno, value


def _item(obj: dict, lineno: int) -> GoldItem:
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    fields = {k: v for k, v in obj.items() if k not in {"id", "meta", "annotations", "gold"}}
    return GoldItem(
        id=str(obj["id"]),
        fields=fields,
        annotations={},
        meta={str(k): str(v) for k, v in meta.items()},
        line=lineno,
    )


def _has_id(obj: object) -> bool:
    return isinstance(obj, dict) and obj.get("id") not in (None, "")


def scan_unlabeled(path: Path, set_id: str = "input") -> Pool:
    """Check the whole file and count its items; every problem a UserError, as when the file
    was read whole: JSON problems first, then each row's (a missing or repeated id) in line
    order, at most MAX_PROBLEMS. Holds a 64-bit hash per id, not the ids."""
    content_hash = _content_hash(path)
    json_problems: list[Problem] = []
    missing: list[tuple[int, Problem]] = []  # (row number, problem)
    hashes = array("q")
    for row, (lineno, obj) in enumerate(_rows(path, json_problems)):
        if not _has_id(obj):
            missing.append((row, Problem("each item needs an 'id'", path, lineno)))
            hashes.append(0)  # keeps rows aligned; never compared (see below)
            continue
        hashes.append(hash(str(obj["id"])))  # type: ignore[index]
    has_id = np.ones(len(hashes), dtype=bool)
    has_id[[r for r, _ in missing]] = False
    dups = _duplicates(path, np.frombuffer(hashes, dtype=np.int64), has_id)
    del hashes
    valid = has_id.copy()
    valid[[r for r, _ in dups]] = False
    if json_problems or missing or dups:
        # As the row loop did: it stopped after an item once MAX_PROBLEMS were found.
        before = np.concatenate([[0], np.cumsum(valid)])  # valid items among the first k rows
        problems, last = list(json_problems), -1
        for row, problem in sorted(missing + dups, key=lambda p: p[0]):
            if len(problems) >= MAX_PROBLEMS and before[row] > before[last + 1]:
                break
            problems.append(problem)
            last = row
        raise UserError(problems, hint=f"fix these {_unit(path)}s of {path.name}")
    n = int(valid.sum())
    if not n:
        raise UserError.at(
            "the input file has no items", file=path, hint=f"one item per {_unit(path)}"
        )
    return Pool(path, n, content_hash, set_id)


def _duplicates(path: Path, hashes: np.ndarray, has_id: np.ndarray) -> list[tuple[int, Problem]]:
    """A repeated id's rows, each pointing at the id's first line. Equal hashes are rare: only
    their rows are read again, and their ids compared for real."""
    h = hashes[has_id]
    order = np.sort(h)
    twice = np.unique(order[1:][order[1:] == order[:-1]])
    if not len(twice):
        return []
    suspects = set(twice.tolist())
    seen: dict[str, int] = {}
    out: list[tuple[int, Problem]] = []
    unit = _unit(path)
    for row, (lineno, obj) in enumerate(_rows(path, [])):
        if not has_id[row] or hash(str(obj["id"])) not in suspects:  # type: ignore[index]
            continue
        item_id = str(obj["id"])  # type: ignore[index]
        if item_id in seen:
            out.append(
                (row, Problem(f"duplicate id {item_id!r} ({unit} {seen[item_id]})", path, lineno))
            )
        else:
            seen[item_id] = lineno
    return out


def iter_unlabeled(pool: Pool, chunk: int) -> Iterator[GoldSet]:
    """The pool's items as gold sets without annotations (what the planner and runner take),
    `chunk` items each, in file order. The file must be as scanned: checked at the end."""
    items: list[GoldItem] = []
    for lineno, obj in _rows(pool.path, []):
        if not _has_id(obj):
            continue
        items.append(_item(obj, lineno))  # type: ignore[arg-type]
        if len(items) >= chunk:
            yield _gold(pool, items)
            items = []
    if items:
        yield _gold(pool, items)
    if _content_hash(pool.path) != pool.content_hash:
        raise UserError.at(
            f"the {WHAT} changed while it was being labelled",
            file=pool.path,
            hint="leave it unchanged until `prelabel label` has finished, then run it again",
        )


def _gold(pool: Pool, items: list[GoldItem]) -> GoldSet:
    return GoldSet(pool.set_id, str(pool.path), tuple(items), (), pool.content_hash)


def load_unlabeled(path: Path, set_id: str = "input") -> GoldSet:
    """The whole file as one gold set without annotations (small files)."""
    pool = scan_unlabeled(path, set_id)
    return next(iter_unlabeled(pool, pool.n))
