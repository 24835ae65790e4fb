"""ECE with bootstrap intervals (statistics.md sections 4-5), every ECE of a gold set on
one set of resamples of its items.

A report asks for many ECE intervals of the same gold items: per setup both binnings,
each confidence source, each recalibration method's "after". Drawing 1,000 resamples of
100,000 items costs more than evaluating an ECE on them, so an ``EceBatch`` collects the
asks and draws once for all (``ece_resampling.ResampledEce`` evaluates them together).

The resamples are of the gold set's items; an ask covering only some of them (a setup's
answered items with a confidence) is evaluated on its items within each resample, so the
number of its items varies between resamples, as the number of answered items would if
the gold set were drawn again. When an ask covers every item, its replicates are those of
``intervals.bootstrap_items`` with the same seed (the same draws, without clusters), up
to float32 rounding in background batches (see ``ece_resampling``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from .calibration import ece, ece_debiased_squared
from .ece_resampling import DEBIASED, ResampledEce
from .intervals import Interval, _check_common, _cluster_ids, _percentile

# Matrix-product columns per pass over the resamples, in bytes (N x columns float64);
# more asks than fit are evaluated in several passes over the same resamples.
_CELLS_BYTES = 256 << 20
# Multiplicities kept between passes (as small integers) up to this many bytes; above it
# each pass draws them again from the seed (the same draws).
_KEPT_BYTES = 256 << 20
# Batches from this many item draws (items x replicates) up are evaluated in the background.
_BACKGROUND_ELEMENTS = 5_000_000
# A background pass waits for asks of at least this many columns (two setups' worth).
_PASS_COLUMNS = 100
# Multiplicity rows per block: N x rows elements (a wider product is a faster one per row).
_CHUNK_ELEMENTS = 8_000_000


class EceBatch:
    """ECE intervals of asks on one set of ``n_items`` items, bootstrapped together.

    ``ask`` returns a ticket; ``resolve`` returns every ticket's Interval (``n`` = the
    ask's items; ``n_boot`` = replicates in which it had any). Equal asks share a ticket.
    ``start`` hands the asks made so far to a background thread, which evaluates them on
    the resamples while the caller goes on (scoring the next setup): a report's scoring is
    mostly one busy thread, so a second core would otherwise idle. ``background=True``
    (for a caller with several setups to come) draws the resamples at once in that thread
    and keeps them, as one-byte integers, for its passes. The values do not depend on
    when or in which pass an ask is evaluated (beyond float32 rounding in background
    batches, see ``ece_resampling``).
    """

    def __init__(
        self,
        n_items: int,
        n_boot: int = 1000,
        seed: int = 0,
        level: float = 0.95,
        clusters: np.ndarray | None = None,
        n_bins: int = 10,
        background: bool = False,
    ):
        _check_common(n_boot, level)
        self.group = _cluster_ids(clusters, n_items)
        self.n_items, self.n_boot, self.seed, self.level, self.n_bins = (
            n_items,
            n_boot,
            seed,
            level,
            n_bins,
        )
        self.asks: list[tuple[np.ndarray, np.ndarray, np.ndarray, str]] = []
        self.estimates: list[float] = []
        self._tickets: dict[bytes, int] = {}
        self._workers = _workers()
        # Background passes only where they pay: several passes to come (the caller says),
        # a second core and a sizeable batch.
        self._background = (
            background and self._workers > 1 and n_items * n_boot >= _BACKGROUND_ELEMENTS
        )
        self._started = 0  # asks handed to a pass so far
        self._passes: list[tuple[list[int], Future]] = []
        self._runner: ThreadPoolExecutor | None = None  # one thread: passes in order
        self._chunks: ThreadPoolExecutor | None = None  # blocks of rows, once finishing
        self._finishing = self._closed = False
        self._keep = False
        self._kept: list[np.ndarray] | None = None
        self._buffer: np.ndarray | None = None  # matrix-product columns, pass after pass
        self._scratch = threading.local()  # per thread: kept integers converted to floats
        # Wider blocks make a faster product; without background passes (one or two
        # setups, e.g. a 100,000-item run, whose peak memory this is) a quarter as wide.
        self._chunk_elements = _CHUNK_ELEMENTS if self._background else _CHUNK_ELEMENTS // 4
        # Background batches (several setups of a large gold set) take their products in
        # float32 (see ece_resampling), where every resample's counts stay whole numbers.
        fit32 = self._background and self._counts_fit_float32()
        self._dtype = np.float32 if fit32 else np.float64
        if self._background and n_items * n_boot <= _KEPT_BYTES:
            # Draw the resamples while the caller scores its first setup.
            self._keep = True
            self._runner = ThreadPoolExecutor(1, thread_name_prefix="prelabel-ece")
            self._runner.submit(self._draw)

    def ask(
        self,
        confidence: np.ndarray,
        correct: np.ndarray,
        strategy: str = "uniform",
        within: np.ndarray | None = None,
    ) -> int:
        """Ask for the ECE of ``confidence``/``correct``, one value per item of ``within``
        (a boolean mask over the batch's items; None = every item). Its point estimate is
        ``estimates[ticket]`` at once."""
        conf, hit = np.asarray(confidence, dtype=float), np.asarray(correct)
        mask = np.ones(self.n_items, bool) if within is None else np.asarray(within, bool)
        if mask.shape != (self.n_items,):
            raise ValueError(f"within must be a mask of the {self.n_items} items")
        positions = np.flatnonzero(mask)
        if conf.shape != positions.shape:
            raise ValueError(
                f"need one confidence per item asked for ({positions.size}), got {conf.shape}"
            )
        # A digest, not the bytes (2.4 kB an item per ask, held until resolved).
        digest = hashlib.sha256(positions.tobytes())
        for part in (conf.tobytes(), hit.astype(float).tobytes(), strategy.encode()):
            digest.update(b"|")
            digest.update(part)
        key = digest.digest()
        if key not in self._tickets:
            if strategy == DEBIASED:
                estimate = ece_debiased_squared(conf, hit, self.n_bins)
            else:
                estimate = ece(conf, hit, self.n_bins, strategy)  # also validates, now
            self._tickets[key] = len(self.asks)
            self.asks.append((positions, conf, hit, strategy))
            self.estimates.append(estimate)
        return self._tickets[key]

    def start(self) -> None:
        """Evaluate the asks made since the last call in the background, once they fill
        ``_PASS_COLUMNS`` (a matrix product of a few columns runs at half the speed of a
        wider one); a no-op for small batches or on one core: ``resolve`` does all then."""
        new = range(self._started, len(self.asks))
        if self._background and sum(map(self._columns, new)) >= _PASS_COLUMNS:
            self._keep = self.n_items * self.n_boot <= _KEPT_BYTES  # more passes may come
            self._submit()

    def resolve(self) -> list[Interval]:
        """Every ask's interval, by ticket."""
        self._finishing = True  # passes from here on spread their blocks over the cores
        if not self._passes:  # all at once: keep the draws only if there are several passes
            groups = self._groups(range(len(self.asks)))
            self._keep = len(groups) > 1 and self.n_items * self.n_boot <= _KEPT_BYTES
        self._submit()
        replicates = np.full((self.n_boot, len(self.asks)), np.nan)
        try:
            for group, done in self._passes:
                replicates[:, group] = done.result()
        finally:
            self.close()
        out = []
        for j, (positions, _, _, _) in enumerate(self.asks):
            if positions.size == 0:
                out.append(Interval(float("nan"), float("nan"), float("nan"), 0, 0, self.level))
            else:
                iv = _percentile(self.estimates[j], replicates[:, j], positions.size, self.level)
                out.append(iv)
        return out

    def close(self) -> None:
        """Stop background work (a pass not yet done stops at its next block) and free the
        kept resamples; called by ``resolve``, and by owners that give up before it."""
        self._closed = True
        for pool in (self._runner, self._chunks):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._runner = self._chunks = None
        self._kept = self._buffer = None

    def _submit(self) -> None:
        new = range(self._started, len(self.asks))
        self._started = len(self.asks)
        for group in self._groups(new):
            if self._background:
                if self._runner is None:
                    self._runner = ThreadPoolExecutor(1, thread_name_prefix="prelabel-ece")
                self._passes.append((group, self._runner.submit(self._pass, group)))
            else:
                done: Future = Future()
                done.set_result(self._pass(group))
                self._passes.append((group, done))

    def _draw(self) -> None:
        """Keep the resamples' multiplicities (small integers), for the passes to come."""
        if self._kept is None:
            self._kept = [counts.astype(_small_int(counts)) for counts in self._multiplicities()]

    def _pass(self, group: list[int]) -> np.ndarray:
        """The replicates of ``group`` (n_boot x asks): one pass over the resamples."""
        asks = [self.asks[j] for j in group]
        need = sum(map(self._columns, group))
        if self._background and (self._buffer is None or self._buffer.shape[1] < need):
            self._buffer = np.empty((self.n_items, need), self._dtype, order="F")
        prepared = ResampledEce(
            asks, self.n_items, self.n_bins, buffer=self._buffer, dtype=self._dtype
        )
        out = np.full((self.n_boot, len(group)), np.nan)
        saved: list[np.ndarray] | None = [] if self._keep and self._kept is None else None
        pending: deque = deque()
        row = 0
        # In the background, each BLAS call on one thread (the caller has the other core)
        # and, once the caller waits, blocks of rows on every core. Otherwise (one or two
        # setups) one thread and a multi-threaded BLAS: worker threads would each keep
        # an allocator arena of their own, hundreds of MB at 100,000 items.
        threads = self._background and self._workers > 1
        with threadpool_limits(1 if threads else None, user_api="blas"):
            for counts in self._kept if self._kept is not None else self._multiplicities():
                if self._closed:
                    raise RuntimeError("ECE intervals closed before they were resolved")
                if saved is not None:
                    saved.append(counts.astype(_small_int(counts)))
                if self._finishing and threads:
                    if self._chunks is None:
                        self._chunks = ThreadPoolExecutor(self._workers)
                    while len(pending) >= self._workers:  # a block per thread in memory
                        _store(out, *pending.popleft())
                    pending.append((row, self._chunks.submit(self._evaluate, prepared, counts)))
                else:
                    out[row : row + counts.shape[0]] = self._evaluate(prepared, counts)
                row += counts.shape[0]
                del counts  # before the next block is drawn: one block alive, not two
            while pending:
                _store(out, *pending.popleft())
        if saved is not None:
            self._kept = saved
        return out

    def _evaluate(self, prepared: ResampledEce, counts: np.ndarray) -> np.ndarray:
        """``prepared.evaluate`` with this thread's scratch block for the conversion (none for
        counts already of the product's type: a block's worth less at a run's peak)."""
        if counts.dtype == self._dtype:
            return prepared.evaluate(counts)
        scratch = getattr(self._scratch, "block", None)
        if (
            scratch is None
            or scratch.shape[0] < counts.shape[0]
            or scratch.shape[1:] != counts.shape[1:]
        ):
            scratch = self._scratch.block = np.empty(counts.shape, self._dtype)
        return prepared.evaluate(counts, scratch)

    def _groups(self, asks) -> list[list[int]]:
        """Asks per pass: as many as fit ``_CELLS_BYTES`` of matrix-product columns."""
        per_column = max(1, self.n_items) * 8
        budget = max(1, _CELLS_BYTES // per_column)
        groups: list[list[int]] = []
        used = budget
        for j in asks:
            if self.asks[j][0].size == 0:  # no items, no replicates: nan
                continue
            cost = self._columns(j)
            if used + cost > budget:
                groups.append([])
                used = 0
            groups[-1].append(j)
            used += cost
        return groups

    def _counts_fit_float32(self) -> bool:
        """Whether every resample's multiplicities sum below 2**24 (exact in float32): N
        draws of items, or of clusters each at most the largest cluster's size."""
        if self.group is None:
            return self.n_items < _counts_limit()
        sizes = np.bincount(self.group)
        return sizes.size * int(sizes.max(initial=0)) < _counts_limit()

    def _columns(self, j: int) -> int:
        """Upper bound on ask j's matrix-product columns: its bins (equal-width) or bands
        (equal-mass) and the count of its items."""
        strategy = self.asks[j][3]
        return 1 + (
            self.n_bins
            if strategy == "uniform"
            else (3 if strategy == DEBIASED else 2) * self.n_bins
        )

    def _multiplicities(self) -> Iterator[np.ndarray]:
        """How often each item is drawn, (chunk, N) float rows, replicate after replicate:
        the draws of ``bootstrap_items`` (same generator, same stream)."""
        n, rng = self.n_items, np.random.default_rng(self.seed)
        if self.group is None:
            chunk = max(1, self._chunk_elements // max(n, 1))
            for start in range(0, self.n_boot, chunk):
                # Row by row: the same numbers as one (rows, n) draw (the generator's stream
                # does not depend on how the draws are split), without that block of 8-byte
                # indices and its counts (two more blocks' worth at a run's peak).
                counts = np.empty((min(chunk, self.n_boot - start), n))
                for row in counts:
                    row[:] = np.bincount(rng.integers(0, n, size=n), minlength=n)
                yield counts
                del counts, row  # gone before the next block is made, if the caller let go
            return
        n_groups = int(self.group.max()) + 1
        chunk = max(1, self._chunk_elements // max(n, 1))
        for start in range(0, self.n_boot, chunk):
            rows = []
            for _ in range(min(chunk, self.n_boot - start)):
                drawn = rng.integers(0, n_groups, size=n_groups)
                rows.append(np.bincount(drawn, minlength=n_groups)[self.group])
            yield np.array(rows, dtype=float)


def _store(out: np.ndarray, row: int, done: Future) -> None:
    values = done.result()
    out[row : row + values.shape[0]] = values


def _counts_limit() -> int:
    """Whole numbers below this are exact in float32."""
    return 2**24


def _workers() -> int:
    """Threads for the resamples: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _small_int(counts: np.ndarray) -> type:
    return np.uint8 if counts.max(initial=0) < 256 else np.uint32


def ece_ci(
    confidence: np.ndarray,
    correct: np.ndarray,
    n_bins: int = 10,
    strategy: str = "uniform",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """ECE (``calibration.ece``) with a percentile bootstrap interval over the given items:
    the replicates of ``bootstrap_items(ece, ...)`` with the same seed. ``strategy``
    "uniform" | "quantile" bins the plug-in ECE; "debiased" gives the signed debiased
    squared L2 error (``calibration.ece_debiased_squared``, equal-width bins), whose
    interval, unlike the plug-in's, contains 0 for a calibrated model as often as the level
    promises (statistics.md section 4)."""
    return ece_ci_many([(confidence, correct, strategy)], n_bins, n_boot, seed, level, clusters)[0]


def ece_ci_many(
    asks: list[tuple[np.ndarray, np.ndarray, str]],
    n_bins: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> list[Interval]:
    """``ece_ci`` of several (confidence, correct, strategy) of the same items, in order, on
    one set of resamples (the same intervals as separate calls, drawn once)."""
    sizes = {np.asarray(conf).size for conf, _, _ in asks}
    if len(sizes) > 1:
        raise ValueError(f"every pair must hold the same items, got sizes {sorted(sizes)}")
    batch = EceBatch(sizes.pop() if sizes else 0, n_boot, seed, level, clusters, n_bins)
    tickets = [batch.ask(conf, hit, strategy) for conf, hit, strategy in asks]
    resolved = batch.resolve()
    return [resolved[t] for t in tickets]
