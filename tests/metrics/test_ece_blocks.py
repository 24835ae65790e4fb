"""The ECE intervals' resamples are drawn a row at a time: the same multiplicities as one
draw of the whole block (so the same intervals, bit for bit), in a block's memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from harness.metrics import ece_intervals


def _one_draw(n: int, n_boot: int, seed: int) -> np.ndarray:
    """The multiplicities as drawn before: every replicate's indices in one call."""
    index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    return np.array([np.bincount(row, minlength=n) for row in index], dtype=float)


@pytest.mark.parametrize("n", [1, 7, 1_000, 1_001])
def test_row_by_row_draws_are_the_block_draws(n, monkeypatch):
    for elements in (1, 5 * n, 10**6):  # a row per block, several rows, every row
        monkeypatch.setattr(ece_intervals, "_CHUNK_ELEMENTS", 4 * elements)
        batch = ece_intervals.EceBatch(n, n_boot=13, seed=3)
        drawn = np.concatenate(list(batch._multiplicities()))
        assert np.array_equal(drawn, _one_draw(n, 13, 3))


def test_a_pass_holds_one_block_of_multiplicities():
    """At 100,000 items a block is 20 replicates of 8-byte counts (16 MB): the pass's peak
    is its matrix-product columns and that one block, not the block's 8-byte indices and
    its counts as well, nor the previous block while the next is drawn."""
    n, n_boot = 100_000, 60
    rng = np.random.default_rng(1)
    conf = rng.uniform(0, 1, n)
    hit = rng.random(n) < conf
    batch = ece_intervals.EceBatch(n, n_boot=n_boot, seed=0)
    batch.ask(conf, hit, "uniform")
    rows = ece_intervals._CHUNK_ELEMENTS // 4 // n
    block = rows * n * 8
    cells = n * (1 + 10) * 8  # the ask's count and bin columns
    tracemalloc.start()
    try:
        (interval,) = batch.resolve()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < cells + 1.3 * block, (peak, cells, block)
    # The same replicates as the draw of the whole block gives.
    by_hand = ece_intervals.EceBatch(n, n_boot=n_boot, seed=0)
    by_hand.ask(conf, hit, "uniform")
    by_hand._multiplicities = lambda: iter(np.array_split(_one_draw(n, n_boot, 0), 3))
    (want,) = by_hand.resolve()
    assert (interval.low, interval.high) == (want.low, want.high)


def test_rows_taken_the_plain_way_are_done_a_few_at_a_time(monkeypatch):
    """Three confidence values: every resample's equal-mass edges fall in ties, so every
    row takes the plain way, whose (rows, N) arrays were a run's peak; a few rows at a
    time give the same values."""
    from harness.metrics import ece_resampling

    n, n_boot = 100_000, 40
    rng = np.random.default_rng(2)
    conf = rng.choice([0.6, 0.7, 0.9], n)
    hit = rng.random(n) < conf

    def resolved():
        batch = ece_intervals.EceBatch(n, n_boot=n_boot, seed=5)
        batch.ask(conf, hit, "quantile")
        tracemalloc.start()
        try:
            (interval,) = batch.resolve()
            return interval, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    interval, peak = resolved()
    block = ece_intervals._CHUNK_ELEMENTS // 4 * 8  # 16 MB; all rows at once held 119 MB
    assert peak < 4.5 * block, (peak, block)
    monkeypatch.setattr(ece_resampling, "_PLAIN_ELEMENTS", 1 << 40)  # all rows at once
    at_once, _ = resolved()
    assert (interval.low, interval.high) == (at_once.low, at_once.high)
