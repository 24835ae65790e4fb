"""Writing output files atomically (temp file + rename): a reader, a browser or a killed run
never leaves or sees half a file. Every command writes its outputs through here."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_bytes(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """`path` holds the old bytes or the new ones, never a mix. With `fsync` the new bytes are
    on disk before the rename (labels.jsonl: a power cut must not empty what was paid for)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: Path, text: str, *, fsync: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_json(path: Path, data: Any) -> None:
    """metrics.json and manifests: indented, UTF-8 as is, and strict (NaN is an error here;
    harness.score.json_numbers turns it into null with a reason before it gets this far)."""
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
