"""What `prelabel label` writes per item (deploy station), in constant memory per item:
prelabels.jsonl written a chunk at a time as the pool is labelled, and the review queue
ordered from a few numbers per item (`review_order`, the same order as
`harness.deploy.routing.review_queue` gives a list of rows) and written from a scratch file
of the rows, so no row dict of the pool is held at once.

Per item these are kept, in a scratch file while the pool is labelled and in memory once it
is done: the label code, the certainty the queue sorts by, accept or not, the id (as UTF-8
bytes, for ties: byte order is code point order, Python's str order, then a 4-byte rank)
and the length of its row in the scratch file: 21 bytes.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REASONS = ("no label", "below threshold", "audit of auto-accepted")
# Per item in the numbers scratch file, each chunk's columns in turn: label code,
# certainty, accept, row length (then the chunk's ids, at its own width).
_NUMBERS = (np.int32, np.float64, np.bool_, np.uint32)


class JsonlRows:
    """A written JSONL file as a read-only sequence of dicts: its length is known, its rows
    are read when iterated (the CLI counts over prelabels.jsonl without holding it)."""

    def __init__(self, path: Path, n: int):
        self.path, self.n = path, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


class PoolTable:
    """prelabels.jsonl and the scratch rows of the queue, written a chunk at a time, and the
    few numbers per item the queue and the estimates need (on disk too until the pool is
    done: nothing held per item while labelling)."""

    def __init__(self, run_dir: Path):
        # Under temporary names until finished: an interrupted run leaves no prelabels.
        self.prelabels_path = run_dir / "prelabels.jsonl"
        self.scratch_path = run_dir / "queue-rows.tmp"
        self.numbers_path = run_dir / "queue-numbers.tmp"
        self._prelabels = self._tmp(self.prelabels_path).open("w", encoding="utf-8")
        self._scratch = self.scratch_path.open("wb")
        self._numbers = self.numbers_path.open("wb")
        self._chunks: list[tuple[int, int]] = []  # (items, id width in bytes) of each chunk
        self.n = 0

    def add(
        self, rows: list[dict[str, Any]], part: Any, pred: np.ndarray, conf: np.ndarray
    ) -> None:
        """One chunk: its rows and items (in pool order), label codes, and the confidence
        routing compared."""
        lengths = np.empty(len(rows), dtype=np.uint32)  # offsets only when the queue is written
        text, blob = [], []
        for k, (row, item) in enumerate(zip(rows, part.items, strict=True)):
            line = json.dumps(row, ensure_ascii=False)
            text.append(line + "\n")
            # Tab: never raw in json.dumps output, so it splits a row from its fields.
            fields = json.dumps(dict(item.fields), ensure_ascii=False)
            data = (line + "\t" + fields + "\n").encode("utf-8")
            lengths[k] = len(data)
            blob.append(data)
        self._prelabels.write("".join(text))
        self._scratch.write(b"".join(blob))
        accept = np.array([r["route"] == "accept" for r in rows], dtype=bool)
        columns = (pred, np.where(np.isnan(conf), -1.0, conf), accept, lengths)
        for values, dtype in zip(columns, _NUMBERS, strict=True):
            self._numbers.write(np.ascontiguousarray(values, dtype=dtype).tobytes())
        ids = np.array([r["item"].encode("utf-8") for r in rows], dtype=bytes)
        self._numbers.write(ids.tobytes())
        self._chunks.append((len(rows), ids.dtype.itemsize))
        self.n += len(rows)

    def close(self) -> dict[str, np.ndarray]:
        """The per-item arrays of the whole pool (files flushed and closed), read back from
        the scratch file into arrays of the pool's size: the id ranks first, so the ids'
        bytes and their sort are gone before the numbers are read."""
        self._prelabels.close()
        self._scratch.close()
        self._numbers.close()
        keys = ("pred", "certainty", "accept", "lengths")
        out = {"ids": id_ranks(self._read_ids())}  # the ids' order is all the queue needs
        out.update({k: np.empty(self.n, dtype=t) for k, t in zip(keys, _NUMBERS, strict=True)})
        with self.numbers_path.open("rb") as f:
            start = 0
            for m, width in self._chunks:
                for key in keys:
                    _read_into(f, out[key][start : start + m])
                f.seek(m * width, os.SEEK_CUR)
                start += m
        self.numbers_path.unlink()
        return out

    def _read_ids(self) -> np.ndarray:
        """Every item's id (UTF-8 bytes, zero-padded to the widest, as np.concatenate of
        the chunks' arrays pads them)."""
        width = max((w for _, w in self._chunks), default=1)
        ids = np.empty(self.n, dtype=f"S{width}")
        per_item = sum(np.dtype(t).itemsize for t in _NUMBERS)
        with self.numbers_path.open("rb") as f:
            start = 0
            for m, w in self._chunks:
                f.seek(m * per_item, os.SEEK_CUR)
                ids[start : start + m] = np.frombuffer(f.read(m * w), dtype=f"S{w}")
                start += m
        return ids

    @staticmethod
    def _tmp(path: Path) -> Path:
        return path.with_name(path.name + ".tmp")

    def discard(self) -> None:
        """An interrupted run: no half-written prelabels left behind."""
        self._prelabels.close()
        self._scratch.close()
        self._numbers.close()
        for path in (self._tmp(self.prelabels_path), self.scratch_path, self.numbers_path):
            path.unlink(missing_ok=True)

    def finish(
        self, path: Path, order: tuple[np.ndarray, np.ndarray, np.ndarray], lengths: np.ndarray
    ) -> None:
        """review_queue.jsonl at `path`, then prelabels.jsonl under its own name."""
        offsets = np.cumsum(lengths, dtype=np.int64)
        offsets -= lengths
        self._write_queue(self._tmp(path), order, offsets)
        os.replace(self._tmp(path), path)
        os.replace(self._tmp(self.prelabels_path), self.prelabels_path)
        self.scratch_path.unlink()

    def _write_queue(
        self, path: Path, order: tuple[np.ndarray, np.ndarray, np.ndarray], offsets: np.ndarray
    ) -> None:
        """Each queued row, its reason, blind flag, position and fields: byte for byte what
        json.dumps({**row, ..., "fields": fields}) of the row dict wrote."""
        index, reason, blind = order
        with self.scratch_path.open("rb") as src, path.open("w", encoding="utf-8") as out:
            buf = []
            for position, (i, why, b) in enumerate(zip(index, reason, blind, strict=True), 1):
                src.seek(int(offsets[i]))
                row, fields = src.readline().decode("utf-8").rstrip("\n").split("\t")
                extra = json.dumps(
                    {"queue_reason": REASONS[why], "blind": bool(b), "queue_position": position}
                )
                buf.append(f'{row[:-1]}, {extra[1:-1]}, "fields": {fields}}}\n')
                if len(buf) >= 4096:
                    out.write("".join(buf))
                    buf.clear()
            out.write("".join(buf))


def review_order(
    pred: np.ndarray,
    certainty: np.ndarray,
    accept: np.ndarray,
    ids: np.ndarray,
    budget: int | None,
    blind_share: float,
    audit_share: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item index, reason code into REASONS, blind) of each queued item in queue order: the
    order `harness.deploy.routing.review_queue` gives (see there for why), computed on arrays.

    Failed items first, in pool order; then round after round, one item per class, each
    class's items by (certainty, id), the round's items by (certainty, id); accepted items
    sampled for the audit and spread through the queue. The seeded draws are made on index
    ranges of the same lengths, in the same order, so they pick the same items."""
    rng = random.Random(seed)
    small = np.int32 if len(pred) < 2**31 else np.int64  # positions: half the memory
    failed = np.flatnonzero(~accept & (pred < 0)).astype(small)
    labelled = _in_rounds(np.flatnonzero(~accept & (pred >= 0)).astype(small), pred, certainty, ids)
    ordered = np.concatenate([failed, labelled])
    accepted = np.flatnonzero(accept)
    audit = np.empty(0, dtype=np.int64)
    if len(accepted):
        audit = accepted[rng.sample(range(len(accepted)), k=round(len(accepted) * audit_share))]
    picked = rng.sample(range(len(labelled)), k=round(len(labelled) * blind_share))
    blind_labelled = np.zeros(len(labelled), dtype=bool)
    blind_labelled[picked] = True
    # Audit item k went in at min(len, (k + 1) * step) of the growing list: positions that
    # rise by at least one, so no later insert moves an earlier one.
    n_ord, n_audit = len(ordered), len(audit)
    step = max(1, n_ord // (n_audit + 1))
    at = np.minimum(n_ord + np.arange(n_audit), (np.arange(n_audit) + 1) * step)
    is_audit = np.zeros(n_ord + n_audit, dtype=bool)
    is_audit[at] = True
    index = np.empty(n_ord + n_audit, dtype=small)
    index[is_audit], index[~is_audit] = audit, ordered
    reason = np.empty(len(index), dtype=np.int8)
    reason[~is_audit] = np.r_[np.zeros(len(failed), np.int8), np.ones(len(labelled), np.int8)]
    reason[is_audit] = 2
    blind = np.ones(len(index), dtype=bool)
    blind[~is_audit] = np.r_[np.ones(len(failed), bool), blind_labelled]
    if budget is not None:
        index, reason, blind = index[:budget], reason[:budget], blind[:budget]
    return index, reason, blind


def _in_rounds(
    at: np.ndarray, pred: np.ndarray, certainty: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """The items `at` round after round: in round r, the r-th item of each class by
    (certainty, id), the round's items by (certainty, id).

    One sort by (certainty, id), on records of the two keys and the position sorted in
    place (no index array, no gathered copies of the keys: the peak of a large queue's
    ordering); then each item's round is how many of its class precede it in that order,
    and a stable sort by round keeps that order within each round."""
    keys = _keys(at, certainty, ids)
    del at
    keys.sort(order=["c", "i"])  # ids are unique: any sort gives this one order
    at = np.empty(len(keys), dtype=keys.dtype["p"])
    at[:] = keys["p"]
    del keys
    cls = pred[at]
    rounds = np.zeros(len(at), dtype=at.dtype)
    for c in np.unique(cls):  # a few labels: a pass each costs less memory than a sort
        mine = cls == c
        rounds[mine] = np.arange(np.count_nonzero(mine), dtype=at.dtype)
    del cls
    order = np.argsort(rounds, kind="stable")
    del rounds
    return at[order]


def _keys(at: np.ndarray, certainty: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(certainty, id, position) records of the items `at`, gathered a block at a time (no
    full-length copies)."""
    keys = np.empty(len(at), dtype=[("c", certainty.dtype), ("i", ids.dtype), ("p", at.dtype)])
    for start in range(0, len(at), 1 << 16):
        part = at[start : start + (1 << 16)]
        block = keys[start : start + len(part)]
        block["c"], block["i"], block["p"] = certainty[part], ids[part], part
    return keys


def _read_into(f: Any, array: np.ndarray) -> None:
    view = memoryview(array).cast("B")
    if f.readinto(view) != len(view):
        raise OSError(f"{f.name} is shorter than what was written to it")


def id_ranks(ids: np.ndarray) -> np.ndarray:
    """Each id's rank among all (int32): orders as the ids do, in 4 bytes instead of their
    width."""
    ranks = np.empty(len(ids), dtype=np.int32 if len(ids) < 2**31 else np.int64)
    ranks[np.argsort(ids, kind="stable")] = np.arange(len(ids), dtype=ranks.dtype)
    return ranks
