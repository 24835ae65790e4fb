"""Batch journals (run station): what was submitted, written down before and while it is.

One JSON file per batch under `<cache_dir>/batches/`, beside the label cache it fills: the
endpoint and model, the map from each request's custom id to its cache key, and the ids the
provider assigned (`file_id` once the input is uploaded, `batch_id` once the batch exists),
each written (fsync, then rename) the moment it is known. So a killed process, a rerun or
`run --resume` finds the batches still open for its calls and polls them instead of paying
for the same requests twice; a journal is removed only after every result it covers is in
the cache. A kill between the upload and the batch id is covered too: the batch is looked
up by its input file (`BatchAPI.find`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.files import write_bytes


@dataclass
class Journal:
    path: Path
    endpoint: str
    model_id: str
    keys: dict[str, str]  # custom id -> cache key
    round: int = 0  # 0: first submission; n: the n-th retry of failed requests
    file_id: str | None = None
    batch_id: str | None = None
    created_at: float = field(default_factory=time.time)

    @classmethod
    def new(
        cls, folder: Path, endpoint: str, model_id: str, keys: Mapping[str, str], round: int
    ) -> Journal:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.json"
        journal = cls(path, endpoint, model_id, dict(keys), round)
        journal._write()
        return journal

    def stage(self, *, file_id: str | None = None, batch_id: str | None = None) -> None:
        """Write down an id the provider has just assigned."""
        self.file_id = file_id or self.file_id
        self.batch_id = batch_id or self.batch_id
        self._write()

    def done(self) -> None:
        """Every result is in the cache: nothing left to collect."""
        # missing_ok: another process sharing the cache collected it too
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        data = {
            "endpoint": self.endpoint,
            "model_id": self.model_id,
            "round": self.round,
            "file_id": self.file_id,
            "batch_id": self.batch_id,
            "created_at": self.created_at,
            "keys": self.keys,
        }
        write_bytes(self.path, json.dumps(data, indent=1).encode(), fsync=True)


def open_journals(folder: Path, endpoint: str) -> list[Journal]:
    """The journals of batches sent to `endpoint` that are not yet collected, oldest first.
    An unreadable file (a disk full mid-write cannot make one: writes are atomic) is left
    alone and reported, never deleted: it may be the only record of a paid batch."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            journal = Journal(
                path,
                str(data["endpoint"]),
                str(data["model_id"]),
                {str(k): str(v) for k, v in data["keys"].items()},
                int(data.get("round", 0)),
                data.get("file_id"),
                data.get("batch_id"),
                float(data.get("created_at", 0.0)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            print(f"prelabel: skipping unreadable batch journal {path}: {exc}", file=_stderr())
            continue
        if journal.endpoint == endpoint:
            found.append(journal)
    return found


def _stderr() -> Any:
    import sys

    return sys.stderr


def folder_of(cache_directory: str | os.PathLike[str]) -> Path:
    return Path(cache_directory) / "batches"
