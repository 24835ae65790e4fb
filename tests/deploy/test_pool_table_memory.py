"""`prelabel label` holds nothing per item while it labels: the numbers the review queue
needs go to a scratch file with the rows, and come back whole once the pool is done."""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import numpy as np

from harness.deploy.pool_outputs import PoolTable


def test_the_numbers_per_item_wait_on_disk_until_the_pool_is_done(tmp_path):
    table = PoolTable(tmp_path)
    rng = np.random.default_rng(0)
    chunks, size = 40, 1_000
    written = {"pred": [], "certainty": [], "accept": [], "ids": []}

    def add(k: int) -> None:
        pred = rng.integers(-1, 3, size)
        conf = np.where(rng.random(size) < 0.1, np.nan, rng.random(size))
        ids = [f"id-{k}-{i}" + "x" * (k % 3) for i in range(size)]  # chunks of other widths
        rows = [
            {"item": item, "route": "accept" if c > 0.9 else "review"}
            for item, c in zip(ids, conf, strict=True)
        ]
        part = SimpleNamespace(items=[SimpleNamespace(fields={"text": "t"})] * size)
        table.add(rows, part, pred, conf)
        written["pred"].append(pred)
        written["certainty"].append(np.where(np.isnan(conf), -1.0, conf))
        written["accept"].append(np.array([r["route"] == "accept" for r in rows]))
        written["ids"].append(np.array([i.encode() for i in ids]))

    add(0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(1, chunks):
            add(k)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    kept_by_test = sum(a.nbytes for parts in written.values() for a in parts)
    per_item = (held - kept_by_test) / ((chunks - 1) * size)
    assert per_item < 4, per_item  # what this test keeps to compare with aside
    arrays = table.close()
    for key in ("pred", "certainty", "accept"):
        assert np.array_equal(arrays[key], np.concatenate(written[key]))
    order = np.argsort(np.concatenate(written["ids"]), kind="stable")
    assert np.array_equal(np.argsort(arrays["ids"]), order)
    assert not (tmp_path / "queue-numbers.tmp").exists()
