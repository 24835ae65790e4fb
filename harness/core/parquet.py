"""Parquet copies of the JSONL files a run writes (labels.jsonl; prelabels.jsonl and
review_queue.jsonl of a label run), for tools that read columns rather than lines.

The JSONL stays the record; the Parquet file is a copy written beside it on request. Rows vary:
a value null in the first rows and a float later, a key absent from some rows, `prompt_hash` a
string in most runs but an object in a jury's rows. So the file is read twice, `batch_rows`
lines at a time (memory does not grow with the file): the first pass infers each column's type
batch by batch and unifies them (int and float become float, null takes any type, structs merge
their fields); the second writes the batches under that one schema.

A column whose values cannot share one Arrow type (a string in one row, an object in another;
true and 1), or whose type holds an empty object (`{}`: a struct with no fields, which Parquet
cannot store), is written as a string column of JSON text, one `json.dumps` of the value a row
(null stays null; a string becomes quoted JSON too), its field metadata {"encoding": "json"}.
Rows with no keys at all (every line `{}`) make a table of no columns, which Parquet stores as
no rows. A key absent from a row reads back as null. Columns are in first-seen order.

pyarrow is an optional extra ([parquet]) and is imported only when a copy is asked for: core
must not need it, and `import harness` must stay fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import UserError

PYARROW_HINT = "pip install 'prelabel[parquet]'"


def jsonl_to_parquet(src: Path, dst: Path, *, batch_rows: int = 8192) -> int:
    """Write the JSON objects of `src` (one a line) to the Parquet file `dst`; the row count.

    Atomic: written to `dst` + ".tmp" and renamed at the end, so a failure (a line that is
    not a JSON object, a full disk) leaves no partial `dst` and no tmp file; a `dst` from an
    earlier call is replaced only by a complete file."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError.at(
            "Parquet output needs the 'pyarrow' package, which is not installed",
            file=dst,
            hint=PYARROW_HINT,
        ) from None
    src, dst = Path(src), Path(dst)
    schema, as_json = _schema(pa, src, batch_rows)
    tmp = dst.with_name(dst.name + ".tmp")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in _batches(src, batch_rows):
                columns = [
                    pa.array(_column(batch, f.name, f.name in as_json), type=f.type) for f in schema
                ]
                table = pa.Table.from_arrays(columns, schema=schema)
                writer.write_table(table)
                rows += table.num_rows
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError.at(
            f"cannot write the Parquet copy: {exc.strerror or exc}", file=dst
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def require_pyarrow() -> None:
    """Checked before a run that was asked for Parquet copies: a missing package found after
    the labels were paid for would fail a run that had nothing wrong with it."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise UserError.at(
            "--parquet needs the 'pyarrow' package, which is not installed",
            key="parquet",
            hint=PYARROW_HINT,
        )


def write_parquet_copies(run_dir: Path, names: Sequence[str]) -> list[Path]:
    """A .parquet beside each of `names` (e.g. "labels.jsonl") that exists in `run_dir`."""
    written = []
    for name in names:
        src = Path(run_dir) / name
        if src.is_file():
            dst = src.with_suffix(".parquet")
            jsonl_to_parquet(src, dst)
            written.append(dst)
    return written


def _batches(src: Path, batch_rows: int) -> Iterator[list[dict[str, Any]]]:
    """Lists of at most `batch_rows` objects, read line by line (never the whole file)."""
    batch: list[dict[str, Any]] = []
    try:
        with open(src, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                row = _parse(raw, src, lineno)
                if row is None:
                    continue
                batch.append(row)
                if len(batch) >= batch_rows:
                    yield batch
                    batch = []
    except OSError as exc:
        raise UserError.at(f"cannot read: {exc.strerror or exc}", file=src) from None
    if batch:
        yield batch


def _parse(raw: bytes, src: Path, lineno: int) -> dict[str, Any] | None:
    hint = f"{src.name} should hold one JSON object a line, as prelabel writes it"
    try:
        text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
        if not text:  # a trailing blank line is not a row
            return None
        row = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        what = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "invalid JSON"
        raise UserError.at(f"{what}: {exc}", file=src, line=lineno, hint=hint) from None
    if not isinstance(row, dict):
        raise UserError.at("not a JSON object", file=src, line=lineno, hint=hint)
    return row


def _schema(pa: Any, src: Path, batch_rows: int) -> tuple[Any, set[str]]:
    """The file's unified schema, and the columns written as JSON text."""
    types: dict[str, Any] = {}  # insertion order is the columns' first-seen order
    as_json: set[str] = set()
    for batch in _batches(src, batch_rows):
        for row in batch:
            for key in row:
                types.setdefault(key, pa.null())
        for key, known in types.items():
            if key in as_json:
                continue
            try:
                # Inferred per batch, not per row: a batch's mixed ints and floats, or objects
                # with different keys, already come out as one type.
                values = [row.get(key) for row in batch]
                found = pa.array(values).type
                if any(_bool_as_float(pa, found, v) for v in values):
                    as_json.add(key)
                    continue
                types[key] = _unify(pa, key, known, found)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                # ArrowInvalid and ArrowTypeError are also ValueError and TypeError; an int
                # beyond 64 bits is an OverflowError.
                as_json.add(key)
    fields = []
    for key, t in types.items():
        if key in as_json or _has_empty_struct(pa, t):
            as_json.add(key)
            # Marked in the file, so a reader can tell JSON text from a column of strings.
            fields.append(pa.field(key, pa.string(), metadata={"encoding": "json"}))
        else:
            fields.append(pa.field(key, t))
    return pa.schema(fields), as_json


def _unify(pa: Any, key: str, a: Any, b: Any) -> Any:
    schemas = [pa.schema([pa.field(key, a)]), pa.schema([pa.field(key, b)])]
    if int(pa.__version__.split(".")[0]) >= 14:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    else:  # no promote_options before pyarrow 14: only null merges with another type
        unified = pa.unify_schemas(schemas)
    return unified.field(key).type


def _bool_as_float(pa: Any, t: Any, value: Any) -> bool:
    """A bool where `t` has a float: Arrow infers [0.5, true] as floats and turns true into
    1.0 without a word (true before 0.5 is refused)."""
    if value is None:
        return False
    if pa.types.is_floating(t):
        return isinstance(value, bool)
    if pa.types.is_struct(t):
        return any(_bool_as_float(pa, f.type, value.get(f.name)) for f in t)
    if pa.types.is_list(t):
        return any(_bool_as_float(pa, t.value_type, v) for v in value)
    return False


def _has_empty_struct(pa: Any, t: Any) -> bool:
    if pa.types.is_struct(t):
        return t.num_fields == 0 or any(_has_empty_struct(pa, f.type) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_empty_struct(pa, t.value_type)
    return False


def _column(batch: list[dict[str, Any]], key: str, as_json: bool) -> list[Any]:
    values = [row.get(key) for row in batch]
    if as_json:
        return [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
    return values
