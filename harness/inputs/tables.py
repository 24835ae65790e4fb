"""Columnar inputs (inputs station): Parquet files and Hugging Face datasets saved on disk.

Teams keep data in Parquet or in a `datasets.Dataset.save_to_disk` folder as often as in
JSONL. Both are read here into the rows JSONL gives (one dict per item: `id`, input fields,
`annotations`, `gold`, `meta`), numbered from 1 as JSONL lines are, so every check and every
error message downstream is the same: a problem names the file and the row. A Parquet map
column (`annotations` as map<string, string>) reads as pairs; it is turned into an object.

The content hash (which run used which data) is the sha256 of the Parquet file, or of the
dataset folder's files in name order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import Problem, UserError
from harness.core.records import GoldItem

FORMATS = ("parquet", "hf")


def table_rows(path: Path, fmt: str, what: str) -> tuple[str, Iterator[tuple[int, Any]]]:
    """(content hash, (row number, row) for every row) of a Parquet file or a saved dataset."""
    return table_digest(path, fmt, what), table_iter(path, fmt, what)


def table_digest(path: Path, fmt: str, what: str) -> str:
    """The content hash alone (a pool is hashed once per pass, not once per read of its rows)."""
    return _digest([path] if fmt == "parquet" else _dataset_files(path, what), what)


def table_iter(path: Path, fmt: str, what: str) -> Iterator[tuple[int, Any]]:
    """(row number, row) for every row, a batch at a time for Parquet."""
    return _parquet(path, what) if fmt == "parquet" else _dataset(path, what)


def saved_dataset(path: Path) -> bool:
    """A folder `Dataset.save_to_disk` (or `DatasetDict.save_to_disk`) wrote."""
    return path.is_dir() and any(
        (path / name).is_file() for name in ("state.json", "dataset_info.json", "dataset_dict.json")
    )


def _parquet(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise _missing("pyarrow", what, path, "parquet") from None
    try:
        reader = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise UserError.at(
            f"{what} is not a readable Parquet file: {str(exc).splitlines()[0][:200]}",
            file=path,
            hint="write it with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table",
        ) from None
    row = 0
    for batch in reader.iter_batches(batch_size=4096):  # a batch at a time: big files stream
        for obj in batch.to_pylist():
            row += 1
            yield row, _plain(obj)


def _dataset(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    try:
        import datasets
    except ImportError:
        raise _missing("datasets", what, path, "hf") from None
    try:
        data = datasets.load_from_disk(str(path))
    except IndexError:  # datasets cannot load what it saved with no rows (no data files)
        return
    except (OSError, ValueError, FileNotFoundError) as exc:
        raise UserError.at(
            f"{what} is not a dataset saved with save_to_disk: {str(exc).splitlines()[0][:200]}",
            file=path,
            hint="point at the folder `Dataset.save_to_disk(...)` wrote",
        ) from None
    if isinstance(data, datasets.DatasetDict):
        raise UserError.at(
            f"{what} holds several splits ({', '.join(data)}); one is needed",
            file=path,
            hint=f"point at one split's folder, e.g. {path / next(iter(data))}",
        )
    for row, obj in enumerate(data, start=1):
        yield row, _plain(obj)


def _plain(obj: Any) -> Any:
    """A map column (pairs) as an object, recursively; everything else as it is."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list) and obj and all(isinstance(p, tuple) and len(p) == 2 for p in obj):
        return {str(k): _plain(v) for k, v in obj}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _dataset_files(path: Path, what: str) -> list[Path]:
    if not path.is_dir():
        raise UserError.at(
            f"{what} in format hf must be a folder written by Dataset.save_to_disk",
            file=path,
            hint="point at that folder, or use format: parquet / jsonl for a file",
        )
    return sorted(p for p in path.rglob("*") if p.is_file())


def _digest(paths: list[Path], what: str) -> str:
    h = hashlib.sha256()
    for p in paths:
        try:
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except FileNotFoundError:
            raise UserError.at(
                f"{what} not found",
                file=p,
                hint="check the path in the config (relative paths are relative to the "
                "config file)",
            ) from None
        except OSError as exc:
            raise UserError.at(f"cannot read {what}: {exc.strerror}", file=p) from None
    return h.hexdigest()


def _missing(package: str, what: str, path: Path, fmt: str) -> UserError:
    extra = {"pyarrow": "parquet", "datasets": "hf"}[package]
    return UserError.at(
        f"reading a {fmt} {what} needs the '{package}' package, which is not installed",
        file=path,
        hint=f"pip install 'prelabel[{extra}]'",
    )


def oversized(items: Sequence[GoldItem], path: Path, limit: int) -> list[Problem]:
    """Items whose input fields (the text sent to a model) exceed `limit` UTF-8 bytes."""
    problems = []
    for item in items:
        size = _text_bytes(item.fields)
        if size > limit:
            problems.append(
                Problem(
                    f"item {item.id!r} has {size:,} bytes of input text, over the limit of "
                    f"{limit:,} bytes per item",
                    path,
                    item.line,
                )
            )
    return problems


def _text_bytes(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_text_bytes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_text_bytes(v) for v in value)
    return len(str(value).encode())
