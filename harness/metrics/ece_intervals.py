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
``intervals.bootstrap_items`` with the same seed (the same draws, without clusters).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .calibration import ece
from .ece_resampling import ResampledEce
from .intervals import _ITEM_CHUNK_ELEMENTS, Interval, _check_common, _cluster_ids, _percentile

# Matrix-product columns per pass over the resamples, in bytes (N x columns float64);
# more asks than fit are evaluated in several passes over the same resamples.
_CELLS_BYTES = 256 << 20
# Multiplicities kept between passes (as small integers) up to this many bytes; above it
# each pass draws them again from the seed (the same draws).
_KEPT_BYTES = 256 << 20


class EceBatch:
    """ECE intervals of asks on one set of ``n_items`` items, bootstrapped together.

    ``ask`` returns a ticket; ``resolve`` draws the resamples once and returns every
    ticket's Interval (``n`` = the ask's items; ``n_boot`` = replicates in which it had
    any). Equal asks share a ticket.
    """

    def __init__(
        self,
        n_items: int,
        n_boot: int = 1000,
        seed: int = 0,
        level: float = 0.95,
        clusters: np.ndarray | None = None,
        n_bins: int = 10,
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
        self._tickets: dict[bytes, int] = {}

    def ask(
        self,
        confidence: np.ndarray,
        correct: np.ndarray,
        strategy: str = "uniform",
        within: np.ndarray | None = None,
    ) -> int:
        """Ask for the ECE of ``confidence``/``correct``, one value per item of ``within``
        (a boolean mask over the batch's items; None = every item)."""
        conf, hit = np.asarray(confidence, dtype=float), np.asarray(correct)
        mask = np.ones(self.n_items, bool) if within is None else np.asarray(within, bool)
        if mask.shape != (self.n_items,):
            raise ValueError(f"within must be a mask of the {self.n_items} items")
        positions = np.flatnonzero(mask)
        if conf.shape != positions.shape:
            raise ValueError(
                f"need one confidence per item asked for ({positions.size}), got {conf.shape}"
            )
        ece(conf, hit, self.n_bins, strategy)  # validate now, not at resolve
        key = b"|".join([positions.tobytes(), conf.tobytes(), hit.astype(float).tobytes()])
        key += strategy.encode()
        if key not in self._tickets:
            self._tickets[key] = len(self.asks)
            self.asks.append((positions, conf, hit, strategy))
        return self._tickets[key]

    def resolve(self) -> list[Interval]:
        """Every ask's interval, by ticket."""
        k = len(self.asks)
        if k == 0:
            return []
        replicates = np.full((self.n_boot, k), np.nan)
        groups = self._groups()
        # Several passes: keep the multiplicities rather than draw them again, if small.
        keep = len(groups) > 1 and self.n_items * self.n_boot <= _KEPT_BYTES
        kept: list[np.ndarray] | None = None
        for group in groups:
            prepared = ResampledEce([self.asks[j] for j in group], self.n_items, self.n_bins)
            saved: list[np.ndarray] | None = [] if keep and kept is None else None
            row = 0
            for counts in kept if kept is not None else self._multiplicities():
                r = counts.shape[0]
                replicates[row : row + r, group] = prepared.evaluate(counts)
                row += r
                if saved is not None:
                    saved.append(counts.astype(_small_int(counts)))
            kept = saved if saved is not None else kept
        out = []
        for j, (positions, conf, hit, strategy) in enumerate(self.asks):
            estimate = ece(conf, hit, self.n_bins, strategy)
            if positions.size == 0:
                out.append(Interval(float("nan"), float("nan"), float("nan"), 0, 0, self.level))
            else:
                out.append(_percentile(estimate, replicates[:, j], positions.size, self.level))
        return out

    def _groups(self) -> list[list[int]]:
        """Asks per pass: as many as fit ``_CELLS_BYTES`` of matrix-product columns."""
        per_column = max(1, self.n_items) * 8
        budget = max(1, _CELLS_BYTES // per_column)
        groups: list[list[int]] = []
        used = budget
        for j, (positions, _, _, strategy) in enumerate(self.asks):
            if positions.size == 0:  # no items, no replicates: nan
                continue
            # Upper bound on an ask's columns: its bins (equal-width) or bands (equal-mass)
            # and the count of its items.
            cost = 1 + (self.n_bins if strategy == "uniform" else 2 * self.n_bins)
            if used + cost > budget:
                groups.append([])
                used = 0
            groups[-1].append(j)
            used += cost
        return groups

    def _multiplicities(self) -> Iterator[np.ndarray]:
        """How often each item is drawn, (chunk, N) float rows, replicate after replicate:
        the draws of ``bootstrap_items`` (same generator, same stream)."""
        n, rng = self.n_items, np.random.default_rng(self.seed)
        if self.group is None:
            chunk = max(1, _ITEM_CHUNK_ELEMENTS // max(n, 1))
            counts = np.empty((chunk, n))
            for start in range(0, self.n_boot, chunk):
                index = rng.integers(0, n, size=(min(chunk, self.n_boot - start), n))
                for j, row in enumerate(index):
                    counts[j] = np.bincount(row, minlength=n)
                yield counts[: index.shape[0]]
            return
        n_groups = int(self.group.max()) + 1
        chunk = max(1, _ITEM_CHUNK_ELEMENTS // max(n, 1))
        for start in range(0, self.n_boot, chunk):
            rows = []
            for _ in range(min(chunk, self.n_boot - start)):
                drawn = rng.integers(0, n_groups, size=n_groups)
                rows.append(np.bincount(drawn, minlength=n_groups)[self.group])
            yield np.array(rows, dtype=float)


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
    the replicates of ``bootstrap_items(ece, ...)`` with the same seed."""
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
