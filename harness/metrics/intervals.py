"""Percentile bootstrap intervals over items (statistics.md section 4; Miller 2024,
"Adding Error Bars to Evals", arXiv 2411.00640).

Accuracy, macro-F1 and kappa are functions of a contingency table. Resampling n items
with replacement is exactly a multinomial draw of n over the table's cells with the
observed cell proportions, so ``rng.multinomial(n, p, size=B)`` yields B replicate
tables in O(B x cells), whatever n is. A paired difference uses the joint cell of both
setups on each item, so both are resampled with the same items. With clusters (items
from the same conversation or source) whole clusters are resampled: the number of times
each cluster is drawn is Multinomial(G, 1/G), and the replicate table is those counts
times the per-cluster tables.

Below ``BCA_BELOW`` resampled units (items, or clusters when given) the percentile
interval covers less than it promises, and the table bootstrap gives the BCa interval
instead (``bca.py``; its jackknife runs over the table's cells, or the clusters): the
coverage simulation behind the threshold is in docs/statistics.md section 4.

Labels follow ``accuracy.py``: codes 0..K-1, -1 = failed prediction (counts as wrong;
its own never-matching category for kappa), items with reference -1 are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .accuracy import macro_f1_from_confusion, validate_codes
from .agreement import kappa_from_confusion
from .bca import acceleration, bca_quantiles

# Upper bound on array elements materialised per chunk of replicates (~160 MB float64).
_CHUNK_ELEMENTS = 20_000_000
PAIRED_METRICS = ("accuracy", "macro_f1", "kappa")
# Resampled units from which the percentile interval keeps its promise (statistics.md 4).
BCA_BELOW = 100
METHODS = ("auto", "percentile", "bca")


@dataclass(frozen=True)
class Interval:
    """Point estimate and bootstrap interval [low, high] at ``level`` (e.g. 0.95).

    ``n`` is the number of items (not clusters) used; ``n_boot`` the number of
    replicates kept, i.e. those whose statistic was not nan; ``method`` "percentile" or
    "bca" (the table bootstrap on few units).
    """

    estimate: float
    low: float
    high: float
    n: int
    n_boot: int
    level: float
    # Not compared: two intervals with the same bounds are equal whatever computed them.
    method: str = field(default="percentile", compare=False)

    @property
    def width(self) -> float:
        return self.high - self.low


def _percentile(estimate: float, replicates: np.ndarray, n: int, level: float) -> Interval:
    kept = replicates[~np.isnan(replicates)]
    if kept.size == 0:
        return Interval(float(estimate), float("nan"), float("nan"), n, 0, level)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(kept, [tail, 1.0 - tail])
    return Interval(float(estimate), float(low), float(high), n, int(kept.size), level)


def _bca(estimate: float, replicates: np.ndarray, n: int, level: float, accel: float) -> Interval:
    kept = replicates[~np.isnan(replicates)]
    if kept.size == 0 or np.isnan(estimate):
        return _percentile(estimate, replicates, n, level)
    q_low, q_high = bca_quantiles(estimate, kept, accel, level)
    low, high = np.quantile(kept, [q_low, q_high])
    return Interval(float(estimate), float(low), float(high), n, int(kept.size), level, "bca")


def _check_common(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _cluster_ids(clusters: np.ndarray | None, n: int) -> np.ndarray | None:
    if clusters is None:
        return None
    ids = np.asarray(clusters)
    if ids.shape != (n,):
        raise ValueError(f"clusters must have one entry per item ({n}), got {ids.shape}")
    return np.unique(ids, return_inverse=True)[1].ravel()


def bootstrap_table_stat(
    cells: np.ndarray,
    n_cells: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
    method: str = "auto",
) -> Interval:
    """Bootstrap a statistic of a contingency table by resampling items (or clusters).

    ``cells[i]`` in 0..n_cells-1 is the cell of item i. ``statistic`` maps int64 counts
    (B, n_cells) to (B,) values; it is also called with (1, n_cells) for the estimate.
    ``clusters[i]`` (any labels) groups items resampled together. Replicates are drawn
    in chunks to bound memory; nan replicates are dropped (see ``Interval.n_boot``).
    ``method``: "percentile", "bca", or "auto" (BCa below ``BCA_BELOW`` units, the same
    replicates either way).
    """
    _check_common(n_boot, level)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    cell = np.asarray(cells)
    if cell.ndim != 1 or (cell.size and (cell.min() < 0 or cell.max() >= n_cells)):
        raise ValueError(f"cells must be a 1-D array of indices in 0..{n_cells - 1}")
    cell = cell.astype(np.int64)
    n = cell.size
    group = _cluster_ids(clusters, n)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, 0, level)
    counts = np.bincount(cell, minlength=n_cells)
    estimate = float(np.asarray(statistic(counts[None, :]))[0])
    rng = np.random.default_rng(seed)
    if group is None:
        p = counts / n
        chunk = max(1, _CHUNK_ELEMENTS // n_cells)
        draws = (
            rng.multinomial(n, p, size=min(chunk, n_boot - s)) for s in range(0, n_boot, chunk)
        )
    else:
        n_groups = int(group.max()) + 1
        per_group = np.bincount(group * n_cells + cell, minlength=n_groups * n_cells)
        per_group = per_group.reshape(n_groups, n_cells).astype(float)
        uniform = np.full(n_groups, 1.0 / n_groups)
        chunk = max(1, _CHUNK_ELEMENTS // max(n_groups, n_cells))
        draws = (
            np.rint(
                rng.multinomial(n_groups, uniform, size=min(chunk, n_boot - s)) @ per_group
            ).astype(np.int64)
            for s in range(0, n_boot, chunk)
        )
    replicates = np.concatenate([np.asarray(statistic(table), dtype=float) for table in draws])
    units = n if group is None else int(group.max()) + 1
    if method == "percentile" or (method == "auto" and units >= BCA_BELOW):
        return _percentile(estimate, replicates, n, level)
    # Jackknife: leaving out any one item of a cell (or one cluster) leaves the same table.
    if group is None:
        filled = np.flatnonzero(counts)  # at most n rows, however many cells
        left_out, weights = np.zeros((filled.size, n_cells), np.int64), counts[filled]
        left_out[np.arange(filled.size), filled] = 1
    else:
        left_out, weights = per_group.astype(np.int64), np.ones(per_group.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):  # one item left: 0/0 is nan
        jackknife = np.asarray(statistic(counts[None, :] - left_out), dtype=float)
    return _bca(estimate, replicates, n, level, acceleration(jackknife, weights))


def _confusion_cells(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, clusters: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Reference codes, prediction columns (failure = K) and clusters of referenced items."""
    truth = validate_codes(y_true, n_classes, "y_true", ndim=1)
    pred = validate_codes(y_pred, n_classes, "y_pred", ndim=1)
    if pred.shape != truth.shape:
        raise ValueError(f"y_true and y_pred differ in length: {truth.shape} vs {pred.shape}")
    keep = truth >= 0
    kept_clusters = None if clusters is None else np.asarray(clusters)[keep]
    column = np.where(pred[keep] >= 0, pred[keep], n_classes)
    return truth[keep], column, kept_clusters


def accuracy_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """End-to-end accuracy (failures wrong, reference -1 dropped) with a bootstrap CI.

    Labels may be any integer codes >= -1; only equality matters.
    """
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    if truth.shape != pred.shape or truth.ndim != 1:
        raise ValueError("y_true and y_pred must be 1-D arrays of equal length")
    keep = truth >= 0
    correct = ((truth == pred) & (pred >= 0))[keep].astype(np.int64)
    kept_clusters = None if clusters is None else np.asarray(clusters)[keep]

    def share_correct(tables: np.ndarray) -> np.ndarray:
        return tables[:, 1] / tables.sum(axis=1)

    return bootstrap_table_stat(
        correct, 2, share_correct, n_boot, seed, level, clusters=kept_clusters
    )


def macro_f1_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """End-to-end macro-F1 (``accuracy.macro_f1_from_confusion``) with a bootstrap CI."""
    truth, column, kept = _confusion_cells(y_true, y_pred, n_classes, clusters)
    k = n_classes

    def macro_f1(tables: np.ndarray) -> np.ndarray:
        return macro_f1_from_confusion(tables.reshape(-1, k, k + 1))

    cells = truth * (k + 1) + column
    return bootstrap_table_stat(cells, k * (k + 1), macro_f1, n_boot, seed, level, kept)


def kappa_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    weights: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """Cohen's kappa of prediction vs reference with a bootstrap CI.

    End-to-end: a failed prediction stays in the table as a category that never matches
    (weight = the largest on the scale; ``agreement.kappa_from_confusion``). Without
    failures this equals ``agreement.cohen_kappa``; with failures it is lower, because
    ``cohen_kappa`` drops positions holding -1.
    """
    truth, column, kept = _confusion_cells(y_true, y_pred, n_classes, clusters)
    k = n_classes

    def kappa(tables: np.ndarray) -> np.ndarray:
        return kappa_from_confusion(tables.reshape(-1, k, k + 1), weights)

    kappa(np.zeros((1, k * (k + 1))))  # reject unknown weights before resampling
    cells = truth * (k + 1) + column
    return bootstrap_table_stat(cells, k * (k + 1), kappa, n_boot, seed, level, kept)


def paired_difference_ci(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_classes: int,
    metric: str = "accuracy",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """metric(pred_a) - metric(pred_b) on the same items, paired bootstrap CI.

    ``metric`` is "accuracy" | "macro_f1" | "kappa" (end-to-end, as the single-setup
    functions). Each item's joint cell (reference, column A, column B) is resampled, so
    both setups always see the same items; for accuracy the joint cell is just
    (A correct, B correct). Positive = A scores higher.
    """
    truth, col_a, kept = _confusion_cells(y_true, pred_a, n_classes, clusters)
    _, col_b, _ = _confusion_cells(y_true, pred_b, n_classes, None)
    k, c = n_classes, n_classes + 1
    if metric == "accuracy":
        cells = (col_a == truth) * 2 + (col_b == truth)

        def difference(tables: np.ndarray) -> np.ndarray:
            t = tables.reshape(-1, 2, 2)
            return (t[:, 1, :].sum(axis=1) - t[:, :, 1].sum(axis=1)) / t.sum(axis=(1, 2))

        return bootstrap_table_stat(cells, 4, difference, n_boot, seed, level, kept)
    if metric == "macro_f1":
        score: Callable[[np.ndarray], np.ndarray] = macro_f1_from_confusion
    elif metric == "kappa":
        score = kappa_from_confusion
    else:
        raise ValueError(f"metric must be one of {PAIRED_METRICS}, got {metric!r}")

    def difference(tables: np.ndarray) -> np.ndarray:
        joint = tables.reshape(-1, k, c, c)  # (reference, column A, column B)
        return score(joint.sum(axis=3)) - score(joint.sum(axis=2))

    cells = (truth * c + col_a) * c + col_b
    return bootstrap_table_stat(cells, k * c * c, difference, n_boot, seed, level, kept)


def bootstrap_items(
    values_fn: Callable[[np.ndarray], float | np.ndarray],
    n: int,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
    batched: bool = False,
) -> Interval:
    """Percentile bootstrap of any statistic of n items, by resampling item indices.

    For statistics that are not functions of a contingency table (e.g. ECE).
    By default ``values_fn(index)`` gets one resample, a 1-D int array of item indices,
    and returns a float; it is called once per replicate (the estimate uses
    ``arange(n)``). With ``batched=True`` it gets an index matrix (b, n), one resample
    per row, and returns (b,) values; matrices come in chunks of up to ~4M indices.
    Either way the indices are drawn as one (chunk, n) matrix. With ``clusters`` whole
    clusters are drawn, so resample sizes vary; batched functions then get (1, m).
    """
    _check_common(n_boot, level)
    if n == 0:
        _cluster_ids(clusters, n)
        return Interval(float("nan"), float("nan"), float("nan"), 0, 0, level)

    def evaluate(index: np.ndarray) -> np.ndarray:
        if batched:
            return np.asarray(values_fn(index), dtype=float).reshape(-1, 1)
        return np.array([values_fn(row) for row in index], dtype=float).reshape(-1, 1)

    estimate, replicates = _replicates(evaluate, n, n_boot, seed, clusters)
    return _percentile(float(estimate[0]), replicates[:, 0], n, level)


def _replicates(
    evaluate: Callable[[np.ndarray], np.ndarray],
    n: int,
    n_boot: int,
    seed: int,
    clusters: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The estimates (k,) and replicates (n_boot, k) of k statistics of the same n items on
    the same resamples: ``evaluate(index)`` maps an index matrix (b, m) to values (b, k)."""
    group = _cluster_ids(clusters, n)
    estimate = evaluate(np.arange(n)[None, :])[0]
    rng = np.random.default_rng(seed)
    parts = []
    if group is None:
        for index in _item_draws(n, n_boot, seed, rng):
            parts.append(evaluate(index))
    else:
        order = np.argsort(group, kind="stable")
        sizes = np.bincount(group)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        for _ in range(n_boot):
            drawn = rng.integers(0, sizes.size, size=sizes.size)
            lengths = sizes[drawn]
            offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            parts.append(evaluate(order[np.repeat(starts[drawn], lengths) + offsets][None, :]))
    return estimate, np.concatenate(parts)


def _item_draws(n: int, n_boot: int, seed: int, rng: np.random.Generator) -> Iterable[np.ndarray]:
    """The resamples of ``bootstrap_items``: (chunk, n) index matrices from ``rng``, one
    chunk at a time.

    A report bootstraps several statistics of the same items with the same seed (so their
    intervals use the same resamples); drawing them is a good part of the cost, so the
    last draws are kept while they are small (read-only, so no caller can alter them).
    """
    key = (n, n_boot, seed)
    if _DRAWS.get("key") == key:
        return _DRAWS["draws"]
    chunk = max(1, _ITEM_CHUNK_ELEMENTS // n)
    draws = (
        rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        for start in range(0, n_boot, chunk)
    )
    if n * n_boot > _DRAWS_KEPT_ELEMENTS:
        return draws
    kept = list(draws)
    for index in kept:
        index.flags.writeable = False
    _DRAWS.clear()
    _DRAWS.update(key=key, draws=kept)
    return kept


# Indices per chunk of item resamples (32 MB): numpy draws the same stream whatever the
# chunk size, so this bounds memory without changing any interval.
_ITEM_CHUNK_ELEMENTS = 4_000_000
_DRAWS: dict = {}
_DRAWS_KEPT_ELEMENTS = 5_000_000  # 40 MB: up to 5,000 items at 1,000 replicates
