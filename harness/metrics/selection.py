"""Simultaneous bootstrap intervals over the setups compared on one gold set (statistics.md
section 2, the winner's curse).

The recommended setup is picked on the same gold items that estimate it, so its own 95%
interval covers its true value less often than 95% of the time (10 setups of equal accuracy
on 100 items: 73%). A band that covers every compared setup's true value at once with
probability ``level`` covers the chosen one's with at least that probability, whatever rule
did the choosing (cheapest qualifying, highest kappa, anything). This module builds that
band:

- one joint bootstrap: every replicate resamples the same items (or whole clusters) for
  all setups, so the dependence between setups scored on the same items is kept. As in
  ``intervals.py``, a replicate is a multinomial draw (here of how many times each item or
  cluster is drawn), and each setup's replicate table is those counts times its
  per-item (per-cluster) tables;
- the studentised maximum over setups, ``T_b = max_j |theta*_bj - theta_j| / se_j`` with
  ``se_j`` the bootstrap standard error of setup j (Romano & Wolf 2005, "Exact and
  approximate stepdown methods for multiple hypothesis testing", JASA 100, the
  single-step max-|t|; Hothorn, Bretz & Westfall 2008 for its parametric twin), taken on
  the arcsine-square-root scale (``_stabilise``: on the raw scale the winner's standard
  error is computed at its inflated accuracy and the band covers 0.90, not 0.95);
- each setup's interval ``theta_j +- c * se_j`` with ``c`` the ``level`` quantile of T,
  mapped back and clipped to the statistic's range.

Failures and missing references follow ``intervals.py``: reference -1 drops the item; a
failed prediction (-1) is wrong for accuracy and a never-matching column for kappa. A
replicate where a setup's statistic is undefined (kappa's expected disagreement is 0) leaves
that setup out of that replicate's maximum; a setup whose replicates never vary (every
answer failed, or every answer right) has a standard error of 0 and a point interval, and
takes no part in the maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .accuracy import validate_codes
from .agreement import kappa_from_confusion
from .intervals import Interval

SIMULTANEOUS_METRICS = ("accuracy", "kappa")
RANGES = {"accuracy": (0.0, 1.0), "kappa": (-1.0, 1.0)}
# Elements of one chunk's weight matrix and tables (~32 MB of float64 each).
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Band:
    """Simultaneous intervals of one statistic for k setups: ``low[j] <= theta_j <= high[j]``
    for every j at once, with probability ``level``.

    ``critical`` is the max-|t| quantile (nan when no setup varies over the replicates);
    ``se`` the bootstrap standard errors on the scale the band is built on (``max_t_band``'s
    input: the arcsine-square-root scale in ``simultaneous_intervals``);
    ``n`` the items, ``n_clusters`` the clusters resampled (None: items were);
    ``n_boot`` the replicates where at least one setup's t was defined.
    """

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    se: np.ndarray
    critical: float
    n: int
    n_clusters: int | None
    n_boot: int
    level: float

    def interval(self, j: int) -> Interval:
        """Setup j's interval, in the shape of the single-setup functions'."""
        return Interval(
            float(self.estimate[j]),
            float(self.low[j]),
            float(self.high[j]),
            self.n,
            self.n_boot,
            self.level,
        )


def max_t_band(
    estimate: np.ndarray,
    replicates: np.ndarray,
    level: float = 0.95,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """The studentised max-|t| band from k estimates (k,) and their joint replicates (B, k).

    Returns (low, high, se, critical, replicates used). nan replicates are left out per
    setup; a setup with a nan estimate gets nan bounds; one with se 0 a point interval.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    est = np.asarray(estimate, dtype=float)
    reps = np.asarray(replicates, dtype=float)
    if reps.ndim != 2 or reps.shape[1] != est.size:
        raise ValueError(f"replicates must be (B, {est.size}), got {reps.shape}")
    defined = ~np.isnan(reps)
    count = defined.sum(axis=0)
    # The mean and standard deviation over each setup's defined replicates (ddof 1).
    filled = np.where(defined, reps, 0.0)
    mean = filled.sum(axis=0) / np.maximum(count, 1)
    ss = (np.where(defined, reps - mean, 0.0) ** 2).sum(axis=0)
    se = np.where(count >= 2, np.sqrt(ss / np.maximum(count - 1, 1)), np.nan)
    # A standard error below float noise is a constant statistic, not a very precise one.
    scale = np.maximum(np.abs(est), 1.0)
    varies = np.isfinite(est) & (se > 1e-12 * scale)
    critical = float("nan")
    n_used = int(defined.any(axis=1).sum())
    if varies.any():
        t = np.abs(reps[:, varies] - est[varies]) / se[varies]
        t_max = np.max(np.where(np.isnan(t), -np.inf, t), axis=1)
        used = t_max > -np.inf
        n_used = int(used.sum())
        if n_used:
            critical = float(np.quantile(t_max[used], level))
    half = np.where(varies, critical * np.where(varies, se, 0.0), 0.0)
    lo_bound, hi_bound = bounds
    # Clipped to the statistic's range, and never so far that the estimate falls outside.
    low = np.minimum(np.maximum(est - half, lo_bound), est)
    high = np.maximum(np.minimum(est + half, hi_bound), est)
    return low, high, np.where(np.isnan(se), 0.0, se), critical, n_used


def joint_replicates(
    y_true: np.ndarray,
    preds: np.ndarray | Sequence[np.ndarray],
    n_classes: int,
    metrics: Sequence[str] = SIMULTANEOUS_METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    clusters: np.ndarray | None = None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int, int | None]:
    """Each metric's estimates (k,) and replicates (n_boot, k) for k setups scored on the
    same items, every replicate resampling the same items (or clusters) for all of them.

    ``preds`` is (n, k) or a sequence of k arrays of n codes. Returns
    ({metric: (estimates, replicates)}, n items kept, n clusters or None).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    unknown = [x for x in metrics if x not in SIMULTANEOUS_METRICS]
    if unknown:
        raise ValueError(f"metrics must be among {SIMULTANEOUS_METRICS}, got {unknown}")
    truth = validate_codes(y_true, n_classes, "y_true", ndim=1)
    columns = np.asarray(preds).T if not isinstance(preds, np.ndarray) else np.asarray(preds)
    if columns.ndim == 1:
        columns = columns[:, None]
    pred = validate_codes(columns, n_classes, "preds", ndim=2)
    if pred.shape[0] != truth.size:
        raise ValueError(f"preds must have one row per item ({truth.size}), got {pred.shape}")
    keep = truth >= 0
    truth, pred = truth[keep], pred[keep]
    n, k = pred.shape
    if clusters is None:
        group, n_clusters = np.arange(n), None
    else:
        ids = np.asarray(clusters)
        if ids.shape != keep.shape:
            raise ValueError(
                f"clusters must have one entry per item ({keep.size}), got {ids.shape}"
            )
        group = np.unique(ids[keep], return_inverse=True)[1].ravel()
        n_clusters = int(group.max()) + 1 if n else 0
    n_groups = int(group.max()) + 1 if n else 0
    tables = {
        name: _group_tables(name, truth, pred, n_classes, group, n_groups) for name in metrics
    }
    out = {}
    ones = np.ones((1, n_groups))
    for name, table in tables.items():
        out[name] = (_statistic(name, ones @ table, k, n_classes)[0], [])
    if n == 0:
        return {x: (e, np.full((n_boot, k), np.nan)) for x, (e, _) in out.items()}, 0, n_clusters
    rng = np.random.default_rng(seed)
    widest = max(t.shape[1] for t in tables.values())
    chunk = max(1, _CHUNK_ELEMENTS // max(n_groups, widest))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        weights = _draw_counts(rng, n_groups, b)
        for name, table in tables.items():
            out[name][1].append(_statistic(name, weights @ table, k, n_classes))
    return {x: (e, np.concatenate(r)) for x, (e, r) in out.items()}, n, n_clusters


def _draw_counts(rng: np.random.Generator, g: int, b: int) -> np.ndarray:
    """How often each of g items (clusters) is drawn in b resamples of g with replacement,
    i.e. Multinomial(g, 1/g) per row, as float counts (exact in float64 products)."""
    drawn = rng.integers(0, g, size=(b, g))
    offsets = (np.arange(b)[:, None] * g + drawn).ravel()
    return np.bincount(offsets, minlength=b * g).reshape(b, g).astype(float)


def _group_tables(
    metric: str, truth: np.ndarray, pred: np.ndarray, n_classes: int, group: np.ndarray, g: int
) -> np.ndarray:
    """Per item (cluster) counts whose weighted sums are each setup's table: accuracy
    (G, k + 1) = correct per setup, then items; kappa (G, k * K * (K + 1)) = the confusion
    cells of every setup, a failure in column K."""
    n, k = pred.shape
    if metric == "accuracy":
        correct = ((pred == truth[:, None]) & (pred >= 0)).astype(float)
        per_item = np.column_stack([correct, np.ones(n)])
    else:
        c = n_classes * (n_classes + 1)
        column = np.where(pred >= 0, pred, n_classes)
        cells = truth[:, None] * (n_classes + 1) + column + np.arange(k) * c
        per_item = np.zeros((n, k * c))
        np.put_along_axis(per_item, cells, 1.0, axis=1)
    if g == n and np.array_equal(group, np.arange(n)):
        return per_item
    summed = np.zeros((g, per_item.shape[1]))
    np.add.at(summed, group, per_item)
    return summed


def _statistic(metric: str, tables: np.ndarray, k: int, n_classes: int) -> np.ndarray:
    """(b, width) weighted tables -> (b, k) values of the statistic."""
    if metric == "accuracy":
        items = tables[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(items > 0, tables[:, :k] / np.where(items > 0, items, 1.0), np.nan)
    confusion = tables.reshape(-1, k, n_classes, n_classes + 1)
    return kappa_from_confusion(confusion)


def simultaneous_intervals(
    y_true: np.ndarray,
    preds: np.ndarray | Sequence[np.ndarray],
    n_classes: int,
    metrics: Sequence[str] = SIMULTANEOUS_METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> dict[str, Band]:
    """Accuracy and/or kappa of k setups on the same items, with intervals that hold for all
    k at once with probability ``level`` (studentised max-|t| over one joint bootstrap).

    Accuracy and kappa are end-to-end, as ``intervals.accuracy_ci`` / ``kappa_ci``; each
    metric's band holds at ``level`` on its own (not jointly with the other metric's).
    The band is built on the variance-stabilised scale and mapped back (``_stabilise``).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    wanted = tuple(metrics)
    # Kappa's scale needs each setup's observed agreement, which is its accuracy.
    needed = tuple(x for x in SIMULTANEOUS_METRICS if x in wanted or x == "accuracy")
    reps, n, n_clusters = joint_replicates(
        y_true, preds, n_classes, needed, n_boot=n_boot, seed=seed, clusters=clusters
    )
    agreement = reps["accuracy"][0]
    out = {}
    for name in wanted:
        estimate, replicates = reps[name]
        forward, back = _stabilise(name, estimate, agreement)
        low, high, se, critical, used = max_t_band(
            forward(estimate), forward(replicates), level, (0.0, np.pi / 2)
        )
        lo_range, hi_range = RANGES[name]
        low = np.clip(back(low), lo_range, estimate)
        high = np.clip(back(high), estimate, hi_range)
        out[name] = Band(estimate, low, high, se, critical, n, n_clusters, used, level)
    return out


def _stabilise(name: str, estimate: np.ndarray, agreement: np.ndarray):
    """The arcsine-square-root scale, on which a share's bootstrap spread no longer shrinks
    as it nears 0 or 1. On the raw scale the winner's interval is too narrow: it was picked
    for a high observed accuracy, whose binomial spread is smaller than at its true value,
    and the band then covers 0.91 instead of 0.95 (statistics.md section 2).

    Accuracy is a share. Kappa is an affine map of the observed agreement p_o at the chance
    agreement p_e: kappa = (p_o - p_e) / (1 - p_e); p_e is held at each setup's estimate
    (from its accuracy, which is p_o, and its kappa), and the share p_e + kappa (1 - p_e)
    is stabilised. Returns the map and its inverse (per setup, along the last axis).
    """
    if name == "accuracy":
        chance = np.zeros_like(estimate)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            chance = (agreement - estimate) / (1.0 - estimate)
        # A kappa of 1 (or undefined) varies on no resample: any p_e gives it a point.
        chance = np.where(np.isfinite(chance), np.clip(chance, 0.0, 1.0 - 1e-12), 0.0)

    def forward(x: np.ndarray) -> np.ndarray:
        share = chance + np.asarray(x, dtype=float) * (1.0 - chance)
        return np.arcsin(np.sqrt(np.clip(share, 0.0, 1.0)))

    def back(y: np.ndarray) -> np.ndarray:
        return (np.sin(y) ** 2 - chance) / (1.0 - chance)

    return forward, back


def ratio_band(
    num: np.ndarray,
    den: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
    share: bool = True,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> Band:
    """Simultaneous intervals of k statistics that are ratios of per-item sums, sum(num) /
    sum(den) per column of the (n, k) arrays, on the same items: multi-label exact match and
    ranking top-1 (den 1 per item) or mean Kendall tau over answered items (den 1 where
    answered). One joint resample of the items (whole clusters with ``clusters``) for every
    column, as ``joint_replicates``; a ``share`` (a proportion) is banded on the
    arcsine-square-root scale like accuracy, any other statistic on its own scale."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if num.ndim != 2 or num.shape != den.shape:
        raise ValueError(f"num and den must be (n, k) alike, got {num.shape} and {den.shape}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    n, k = num.shape
    if clusters is None:
        group, n_clusters = np.arange(n), None
    else:
        ids = np.asarray(clusters)
        if ids.shape != (n,):
            raise ValueError(f"clusters must have one entry per item ({n}), got {ids.shape}")
        group = np.unique(ids, return_inverse=True)[1].ravel()
        n_clusters = int(group.max()) + 1 if n else 0
    g = int(group.max()) + 1 if n else 0
    table = np.zeros((g, 2 * k))
    np.add.at(table, group, np.column_stack([num, den]))

    def ratio(sums: np.ndarray) -> np.ndarray:
        top, bottom = sums[:, :k], sums[:, k:]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)

    estimate = ratio(table.sum(axis=0, keepdims=True))[0]
    if n == 0:
        nan = np.full(k, np.nan)
        return Band(estimate, nan, nan, np.zeros(k), float("nan"), 0, n_clusters, 0, level)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(g, 2 * k))
    parts = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        parts.append(ratio(_draw_counts(rng, g, b) @ table))
    replicates = np.concatenate(parts)
    if share:
        forward, back = _stabilise("accuracy", estimate, estimate)
        scale = (0.0, np.pi / 2)
    else:
        forward = back = np.asarray  # type: ignore[assignment]
        scale = bounds
    low, high, se, critical, used = max_t_band(forward(estimate), forward(replicates), level, scale)
    low = np.clip(back(low), bounds[0], np.where(np.isnan(estimate), bounds[0], estimate))
    high = np.clip(back(high), np.where(np.isnan(estimate), bounds[1], estimate), bounds[1])
    return Band(estimate, low, high, se, critical, n, n_clusters, used, level)
