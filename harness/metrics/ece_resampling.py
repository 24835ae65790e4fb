"""The ECE of many bootstrap resamples at once, from item multiplicities.

A resample of N items is a row of multiplicities (how often each item was drawn). Every
ECE asked of it (several setups, their answered items, both binnings, recalibrated
confidences) is a function of that row, so one pass over the rows serves them all:

- equal-width bins are fixed, so a bin's sum of (hit - confidence) over a resample is the
  row times a column holding each item's gap in its bin: one matrix product (BLAS) for
  every bin of every ask;
- equal-mass bins move with each resample (their edges are its quantiles), but only a
  little: the k-th smallest confidence of a resample lies within a few sqrt(N) ranks of
  the sample's. So the running count and gap sums are needed only in a window of ranks
  around each sample edge; the stretches between windows enter as matrix-product columns
  too. A row whose edge falls outside its window (heavy ties, tiny sets, bad luck) is done
  the plain way, so every value is exact whatever the windows.

Value [r, j] equals ``ece(conf_j, hit_j, n_bins, strategy_j)`` on the resample's items
(each item of ask j repeated by its multiplicity), up to the order of summation; with
``dtype=np.float32`` (large batches: it halves the product's time) the gap sums carry
float32 rounding, about 1e-8 of an ECE (2e-7 relative; a test bounds it), far inside the
bootstrap's own Monte Carlo error, while counts (whole numbers below 2**24) stay exact, so
equal-mass edges are the same.
"""

from __future__ import annotations

import numpy as np

from .calibration import _bin_edges, _debiased_bins, _inputs

# The debiased squared L2 error (``calibration.ece_debiased_squared``) over equal-width bins:
# an ask's strategy, beside the binnings of the plug-in ECE.
DEBIASED = "debiased"
# Rows x items per call of the plain equal-mass path (2 MB of each of its float arrays).
_PLAIN_ELEMENTS = 1 << 18


class ResampledEce:
    """Asks prepared once; ``evaluate(counts)`` per block of multiplicity rows.

    ``asks``: (positions, confidence, correct, strategy), positions being the ask's items
    among the N resampled ones (its confidence and correct hold one value per position).
    ``spread``: how far (in items) a resample's running count may stray from the sample's
    before a row takes the plain path; only speed depends on it. ``buffer``: an (N, c)
    float array in Fortran order to hold the matrix-product columns, if it has room (a
    caller making one pass after another reuses it: fresh memory costs page faults).
    ``dtype``: of the matrix product (see module doc; float32 only if every row of
    multiplicities sums below 2**24, which keeps counts exact).
    """

    def __init__(
        self,
        asks,
        n_items: int,
        n_bins: int = 10,
        spread: float | None = None,
        buffer: np.ndarray | None = None,
        dtype: type = np.float64,
    ):
        self.n_items, self.n_bins = n_items, n_bins
        # 3 standard deviations of a running count (at most sqrt(N)/2): wider windows cost
        # every row, narrower ones send more rows down the plain path (one row of N each).
        self.spread = 3 * 0.5 * np.sqrt(n_items) + 16 if spread is None else spread
        columns: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, values) of each column

        def column(rows: np.ndarray, values: np.ndarray | float) -> int:
            columns.append((rows, np.broadcast_to(values, rows.shape)))
            return len(columns) - 1

        count_of: dict[bytes, int] = {}
        self.asks = []
        for positions, conf, hit, strategy in asks:
            pos = np.asarray(positions, dtype=np.int64)
            conf, hit = _inputs(conf, hit)
            if conf.size != pos.size or (pos.size and (pos.min() < 0 or pos.max() >= n_items)):
                raise ValueError("every ask needs one confidence per position in 0..N-1")
            binning = "uniform" if strategy == DEBIASED else strategy
            _bin_edges(conf, n_bins, binning)  # validates n_bins and strategy
            key = pos.tobytes()
            if key not in count_of:
                count_of[key] = column(pos, 1.0)
            ask = {"count": count_of[key], "strategy": strategy}
            gap = hit - conf
            if binning == "uniform":
                inner = _bin_edges(conf, n_bins, "uniform")[1:-1]
                bins = np.searchsorted(inner, conf, side="left")
                # Only bins holding a sample item can hold a resampled one.
                ask["bins"] = [column(pos[bins == b], gap[bins == b]) for b in np.unique(bins)]
                if strategy == DEBIASED:  # each bin's count and hits too
                    held = np.unique(bins)
                    ask["bin_counts"] = [column(pos[bins == b], 1.0) for b in held]
                    ask["bin_hits"] = [column(pos[bins == b], hit[bins == b]) for b in held]
            else:
                ask.update(self._equal_mass(pos, conf, gap, column))
            self.asks.append(ask)
        fits = buffer is not None and buffer.dtype == dtype and buffer.shape[0] == n_items
        if fits and buffer.shape[1] >= len(columns):
            self.cells = buffer[:, : len(columns)]  # a Fortran-ordered block: contiguous
            self.cells.fill(0.0)
        else:
            self.cells = np.zeros((n_items, len(columns)), dtype, order="F")  # by column
        for j, (rows, values) in enumerate(columns):
            self.cells[rows, j] = values

    def _equal_mass(self, pos, conf, gap, column) -> dict:
        """Sorted values, windows of ranks around each sample edge, and band columns."""
        n = conf.size
        order = np.argsort(conf, kind="stable")
        qs = np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]
        lows = np.clip(np.floor(qs * n - self.spread), 0, n).astype(np.int64)
        highs = np.clip(np.ceil(qs * n + self.spread) + 1, 0, n).astype(np.int64)
        in_window = np.zeros(n + 1, dtype=bool)  # ranks gathered per row (with their sums)
        for lo, hi in zip(lows, highs, strict=True):
            in_window[lo:hi] = True
        in_window[n] = False
        window = np.flatnonzero(in_window[:n])
        # Bands: the stretches of ranks before, between and after windows; band i is summed
        # by a matrix-product column and enters the running sums before window range i.
        starts = np.flatnonzero(np.diff(np.concatenate([[False], in_window[:n]])) == 1)
        band_of = np.searchsorted(starts, np.arange(n), side="right")  # ranges started
        band_of[in_window[:n]] = -1
        bands_count, bands_gap = [], []
        for i in range(starts.size + 1):
            ranks = np.flatnonzero(band_of == i)
            bands_count.append(column(pos[order[ranks]], 1.0))
            bands_gap.append(column(pos[order[ranks]], gap[order[ranks]]))
        range_of = np.searchsorted(starts, window, side="right") - 1  # window rank's range
        u_of_rank = np.full(n + 1, -1, dtype=np.int64)
        u_of_rank[window] = np.arange(window.size)
        return {
            "ranked": conf[order],
            "gap": gap[order],
            "positions": pos[order],
            "window": pos[order[window]],
            "window_gap": gap[order[window]],
            "window_rank": window,
            "range_of": range_of,
            "u_of_rank": u_of_rank,
            "bands_count": bands_count,
            "bands_gap": bands_gap,
        }

    def evaluate(self, counts: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
        """ECE of each ask on each row of ``counts`` (r, N multiplicities, floats or small
        unsigned integers): (r, asks). ``scratch``: a float array of at least r rows of N
        to convert integers into (fresh memory of that size costs page faults each time).
        """
        # Equal-mass windows gather a few columns of every row: from one-byte integers
        # when given, ten times faster than from floats (fewer cache lines).
        small = counts if counts.dtype == np.uint8 else None
        dtype = self.cells.dtype
        if counts.dtype != dtype and scratch is not None and scratch.dtype == dtype:
            dense = scratch[: counts.shape[0]]
            np.copyto(dense, counts)
        else:
            dense = np.asarray(counts, dtype=dtype)
        sums = np.asarray(dense @ self.cells, dtype=float)
        counts = dense
        out = np.empty((counts.shape[0], len(self.asks)))
        for j, ask in enumerate(self.asks):
            m = sums[:, ask["count"]]
            with np.errstate(invalid="ignore", divide="ignore"):
                if ask["strategy"] == "uniform":
                    out[:, j] = np.abs(sums[:, ask["bins"]]).sum(axis=1) / m
                elif ask["strategy"] == DEBIASED:
                    terms = _debiased_bins(
                        sums[:, ask["bin_counts"]], sums[:, ask["bin_hits"]], sums[:, ask["bins"]]
                    )
                    out[:, j] = terms.sum(axis=1) / m
                else:
                    gather = counts if small is None else small
                    out[:, j] = self._equal_mass_rows(ask, gather, sums, m)
        return out

    def _equal_mass_rows(self, ask, counts, sums, m) -> np.ndarray:
        r = counts.shape[0]
        ranked, n = ask["ranked"], ask["ranked"].size
        qs = np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]
        mm = np.maximum(m, 1).astype(np.int64)
        prev_k, next_k, gamma = _order_statistics(mm, qs)
        drawn = counts[:, ask["window"]].astype(float)
        # Running count through each window rank (inclusive), bands included; the running
        # gap sum within windows only (the bands' are added where it is read).
        band_n = np.cumsum(sums[:, ask["bands_count"]], axis=1)
        band_g = np.cumsum(sums[:, ask["bands_gap"]], axis=1)
        ranges = ask["range_of"]
        run_n = np.cumsum(drawn, axis=1)
        run_n += band_n[:, ranges]
        run_g = np.cumsum(drawn * ask["window_gap"], axis=1)
        ok = m > 0
        rank_of = {}
        for name, k in (("prev", prev_k), ("next", next_k)):
            # First window rank whose running count exceeds k; valid only if the count
            # just before it is <= k (else the crossing lay in a band).
            u = _row_searchsorted(run_n, k)
            found = u < run_n.shape[1]
            uu = np.minimum(u, run_n.shape[1] - 1)
            before = np.take_along_axis(run_n, uu, 1) - np.take_along_axis(drawn, uu, 1)
            ok &= np.all(found & (before <= k), axis=1)
            rank_of[name] = ask["window_rank"][uu]
        edges = _lerp(ranked[rank_of["prev"]], ranked[rank_of["next"]], gamma)
        ends = np.searchsorted(ranked, edges, side="right")  # ranks in bins up to this edge
        last = ask["u_of_rank"][np.maximum(ends - 1, 0)]
        ok &= np.all((last >= 0) | (ends == 0) | (ends == n), axis=1)
        total = band_g[:, -1] + run_g[:, -1]
        at = np.maximum(last, 0)
        prefix = np.take_along_axis(run_g, at, 1) + np.take_along_axis(band_g, ranges[at], 1)
        prefix[ends == 0] = 0.0
        prefix = np.where(ends == n, total[:, None], prefix)
        bounds = np.concatenate([np.zeros((r, 1)), prefix, total[:, None]], axis=1)
        out = np.abs(np.diff(bounds, axis=1)).sum(axis=1) / m
        redo = np.flatnonzero(~ok & (m > 0))
        # A few rows at a time: the plain way holds several (rows, N) float arrays, a run's
        # peak when ties send most rows down it. Each row's value is its own (row-wise
        # arithmetic only), whichever rows it is computed with.
        step = max(1, _PLAIN_ELEMENTS // max(n, 1))
        for start in range(0, redo.size, step):
            rows = redo[start : start + step]
            out[rows] = equal_mass_from_ranked_counts(
                ranked,
                ask["gap"],
                counts[np.ix_(rows, ask["positions"])].astype(float, copy=False),
                self.n_bins,
            )
        return out


def equal_mass_from_ranked_counts(
    ranked: np.ndarray, gap: np.ndarray, counts: np.ndarray, n_bins: int
) -> np.ndarray:
    """Equal-mass ECE of each row of ``counts`` (r, n: multiplicities of the items sorted by
    confidence, ``ranked``; ``gap`` = hit - confidence in that order), the plain way: the
    running count gives the resample's quantile edges, the running gap sum its bin sums."""
    r, n = counts.shape
    m = counts.sum(axis=1)
    mm = np.maximum(m, 1).astype(np.int64)
    qs = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    prev_k, next_k, gamma = _order_statistics(mm, qs)
    run_n = np.cumsum(counts, axis=1)
    a = ranked[np.minimum(_row_searchsorted(run_n, prev_k), n - 1)]
    b = ranked[np.minimum(_row_searchsorted(run_n, next_k), n - 1)]
    ends = np.searchsorted(ranked, _lerp(a, b, gamma), side="right")
    running = np.zeros((r, n + 1))
    np.cumsum(counts * gap, axis=1, out=running[:, 1:])
    bounds = np.concatenate([np.zeros((r, 1), np.int64), ends, np.full((r, 1), n)], axis=1)
    sums = np.diff(np.take_along_axis(running, bounds, axis=1), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(sums).sum(axis=1) / m


def _order_statistics(m: np.ndarray, qs: np.ndarray):
    """numpy's "linear" quantile of m sorted values at each q, as the two order statistics
    (0-based) it interpolates and the weight: (r, q) arrays, the same arithmetic as
    ``np.quantile`` so the same floats."""
    virtual = (m[:, None] - 1) * qs[None, :]
    prev = np.floor(virtual)
    nxt = prev + 1
    last = virtual >= (m[:, None] - 1)
    prev[last] = nxt[last] = -1
    gamma = virtual - prev
    mcol = np.broadcast_to(m[:, None] - 1, prev.shape)
    prev_k = np.where(prev < 0, mcol, prev).astype(np.int64)
    next_k = np.where(nxt < 0, mcol, nxt).astype(np.int64)
    return prev_k, next_k, gamma


def _lerp(a: np.ndarray, b: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """numpy's _lerp: a + (b - a) t, computed from b's side when t >= 0.5."""
    diff = b - a
    out = a + diff * gamma
    high = gamma >= 0.5
    out[high] = (b - diff * (1 - gamma))[high]
    return out


def _row_searchsorted(running: np.ndarray, k: np.ndarray) -> np.ndarray:
    """For each row of ``running`` (r, t; non-decreasing) and of ``k`` (r, q): the first
    column whose value exceeds k (t where none does), as one sorted search."""
    r, t = running.shape
    span = float(running[:, -1].max() if t else 0) + float(k.max() if k.size else 0) + 2
    shift = np.arange(r)[:, None] * span
    found = np.searchsorted((running + shift).ravel(), (k + shift).ravel(), side="right")
    return found.reshape(k.shape) - np.arange(r)[:, None] * t
