"""Scores for ordinal scales: exact and within-one agreement, MAE, weighted kappa.

Levels are integer codes 0..K-1 in scale order (``n_levels=K``), so |pred - true| is a
distance in scale steps; -1 in ``y_pred`` is a failed output, -1 in ``y_true`` an item
without a reference (excluded). As in ``accuracy.py`` everything comes from one (K, K+1)
confusion table (rows reference, columns prediction, last column failures), so the same
code scores the data and a stack (B, K, K+1) of bootstrap replicates (``intervals.py``).
The reference of several humans on an ordinal scale is their lower median
(``agreement.median_label``); statistics.md sections 1, 2 and 4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .accuracy import confusion, validate_codes
from .agreement import kappa_from_confusion, median_label
from .intervals import Interval, bootstrap_table_stat

ORDINAL_METRICS = ("exact", "within_one", "mae", "kappa_linear", "kappa_quadratic")


@dataclass(frozen=True)
class OrdinalMetrics:
    """Ordinal scores of predictions against a reference.

    ``exact`` and ``within_one`` (|pred - true| <= 1 step) are shares in [0, 1],
    end-to-end: a failure counts as wrong and stays in the denominator ``n``.
    ``mae`` is the mean |pred - true| in scale steps, in [0, K-1], over the
    ``n_answered`` answered items only (nan if none); read it with ``coverage``.
    ``kappa_linear`` / ``kappa_quadratic``: weighted Cohen's kappa in [-1, 1] with a
    failure as a category that never matches, at the largest weight of the scale
    (as ``intervals.kappa_ci``). ``confusion`` is the (K, K+1) table.
    """

    n: int
    n_answered: int
    coverage: float
    exact: float
    within_one: float
    mae: float
    kappa_linear: float
    kappa_quadratic: float
    confusion: np.ndarray


@dataclass(frozen=True)
class OrdinalCeilingRow:
    """Annotator ``annotator`` and the LLM vs the lower median of the other annotators.

    ``n`` items (j rated them, >= 1 other annotator did); ``llm_n_answered`` of them
    have an LLM label, the denominator of ``llm_mae``. Units as in OrdinalMetrics.
    """

    annotator: int
    n: int
    llm_n_answered: int
    human_exact: float
    llm_exact: float
    human_within_one: float
    llm_within_one: float
    human_mae: float
    llm_mae: float
    human_kappa_quadratic: float
    llm_kappa_quadratic: float


@dataclass(frozen=True)
class OrdinalCeiling:
    """Leave-one-annotator-out ceiling on an ordinal scale; see ordinal_human_ceiling.

    Aggregates are item-weighted means of the rows (weights ``n``; ``llm_mae`` weighted
    by ``llm_n_answered``, i.e. pooled over answered comparisons), skipping nan rows.
    ``ratio_exact``, ``ratio_within_one``, ``ratio_kappa_quadratic`` = llm / human (nan
    when the human value is <= 0 or nan). ``ratio_mae`` = human_mae / llm_mae, so that,
    like the others, > 1 means the LLM beats the typical human (nan when llm_mae is 0
    or nan). ``n_pairs`` = number of (annotator, item) comparisons.
    """

    per_annotator: list[OrdinalCeilingRow]
    human_exact: float
    llm_exact: float
    human_within_one: float
    llm_within_one: float
    human_mae: float
    llm_mae: float
    human_kappa_quadratic: float
    llm_kappa_quadratic: float
    ratio_exact: float
    ratio_within_one: float
    ratio_kappa_quadratic: float
    ratio_mae: float
    n_pairs: int


def _share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def ordinal_from_confusion(table: np.ndarray, metric: str) -> np.ndarray:
    """One metric of ORDINAL_METRICS from a (K, K+1) table or a stack (..., K, K+1).

    A (K, K) table (no failure column) is accepted too. Definitions: OrdinalMetrics.
    Returns a float array of the stack's shape (a 0-d array for one table).
    """
    t = np.asarray(table, dtype=float)
    if t.ndim < 2 or t.shape[-1] not in (t.shape[-2], t.shape[-2] + 1):
        raise ValueError(f"expected a (..., K, K+1) or (..., K, K) table, got {t.shape}")
    if metric not in ORDINAL_METRICS:
        raise ValueError(f"metric must be one of {ORDINAL_METRICS}, got {metric!r}")
    if metric.startswith("kappa_"):
        return kappa_from_confusion(t, metric.removeprefix("kappa_"))
    k = t.shape[-2]
    steps = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :])
    answered = t[..., :, :k]
    total = t.sum(axis=(-2, -1))
    if metric == "exact":
        return _share(np.trace(answered, axis1=-2, axis2=-1), total)
    if metric == "within_one":
        return _share((answered * (steps <= 1)).sum(axis=(-2, -1)), total)
    return _share((answered * steps).sum(axis=(-2, -1)), answered.sum(axis=(-2, -1)))


def ordinal_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_levels: int) -> OrdinalMetrics:
    """Exact, within-one, MAE and linear/quadratic weighted kappa of y_pred vs y_true.

    ``y_true`` = reference levels (-1: no reference, item excluded), ``y_pred`` =
    predicted levels (-1: failure). Weighted kappa: Cohen (1968), as
    ``sklearn.metrics.cohen_kappa_score(weights=...)`` when nothing failed.
    """
    table = confusion(y_true, y_pred, n_levels)
    n, n_answered = int(table.sum()), int(table[:, :n_levels].sum())
    values = {m: float(ordinal_from_confusion(table, m)) for m in ORDINAL_METRICS}
    return OrdinalMetrics(
        n=n,
        n_answered=n_answered,
        coverage=n_answered / n if n else float("nan"),
        confusion=table,
        **values,
    )


def ordinal_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_levels: int,
    metric: str = "exact",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """Percentile bootstrap interval of one ORDINAL_METRICS metric over items.

    Items are resampled as multinomial draws of the confusion cells
    (``intervals.bootstrap_table_stat``; whole clusters with ``clusters``). Items with
    reference -1 are dropped first, so ``Interval.n`` = OrdinalMetrics.n. For "mae",
    replicates without an answered item are nan and dropped (``Interval.n_boot``).
    """
    if metric not in ORDINAL_METRICS:
        raise ValueError(f"metric must be one of {ORDINAL_METRICS}, got {metric!r}")
    truth = validate_codes(y_true, n_levels, "y_true", ndim=1)
    pred = validate_codes(y_pred, n_levels, "y_pred", ndim=1)
    if truth.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {truth.shape} vs {pred.shape}")
    keep = truth >= 0
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != truth.shape:
            raise ValueError(f"clusters must have one entry per item, got {clusters.shape}")
        clusters = clusters[keep]
    k = n_levels
    cells = truth[keep] * (k + 1) + np.where(pred[keep] >= 0, pred[keep], k)

    def statistic(tables: np.ndarray) -> np.ndarray:
        return ordinal_from_confusion(tables.reshape(-1, k, k + 1), metric)

    return bootstrap_table_stat(cells, k * (k + 1), statistic, n_boot, seed, level, clusters)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def _weighted_mean(values: list[float], weights: list[int]) -> float:
    """Mean of the finite values with weight > 0; nan if there are none."""
    v, w = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    keep = np.isfinite(v) & (w > 0)
    return float(np.average(v[keep], weights=w[keep])) if keep.any() else float("nan")


def ordinal_human_ceiling(
    ratings: np.ndarray, prediction: np.ndarray, n_levels: int
) -> OrdinalCeiling:
    """Leave-one-annotator-out human ceiling on an ordinal scale, and the LLM beside it.

    As ``agreement.human_ceiling`` (statistics.md section 2), but for each annotator j
    the reference is the lower median (``median_label``) of the *other* annotators on
    the items j rated that have >= 1 other rating. Annotator j and ``prediction`` are
    scored against it on the same items with exact, within_one, mae and kappa_quadratic
    (OrdinalMetrics conventions: a failed prediction is wrong for exact/within_one,
    outside the MAE, a never-matching category for kappa). With two annotators the
    reference is simply the other one.
    """
    r = validate_codes(ratings, n_levels, "ratings", ndim=2)
    pred = validate_codes(prediction, n_levels, "prediction", ndim=1)
    if pred.shape[0] != r.shape[0]:
        raise ValueError("prediction must have one entry per item (row of ratings)")
    k = n_levels
    pred_column = np.where(pred >= 0, pred, k)

    def table(reference: np.ndarray, column: np.ndarray) -> np.ndarray:
        counts = np.bincount(reference * (k + 1) + column, minlength=k * (k + 1))
        return counts.reshape(k, k + 1)

    rows = []
    for j in range(r.shape[1]):
        reference = median_label(np.delete(r, j, axis=1), k)
        items = (r[:, j] >= 0) & (reference >= 0)
        human = table(reference[items], r[items, j])
        llm = table(reference[items], pred_column[items])
        rows.append(
            OrdinalCeilingRow(
                annotator=j,
                n=int(items.sum()),
                llm_n_answered=int(llm[:, :k].sum()),
                **{
                    f"{who}_{m}": float(ordinal_from_confusion(t, m))
                    for who, t in (("human", human), ("llm", llm))
                    for m in ("exact", "within_one", "mae", "kappa_quadratic")
                },
            )
        )

    def mean_of(field: str) -> float:
        weight = "llm_n_answered" if field == "llm_mae" else "n"
        values = [getattr(row, field) for row in rows]
        return _weighted_mean(values, [getattr(row, weight) for row in rows])

    fields = [
        f"{who}_{m}"
        for m in ("exact", "within_one", "mae", "kappa_quadratic")
        for who in ("human", "llm")
    ]
    agg = {field: mean_of(field) for field in fields}
    llm_mae = agg["llm_mae"]
    return OrdinalCeiling(
        per_annotator=rows,
        **agg,
        ratio_exact=_ratio(agg["llm_exact"], agg["human_exact"]),
        ratio_within_one=_ratio(agg["llm_within_one"], agg["human_within_one"]),
        ratio_kappa_quadratic=_ratio(agg["llm_kappa_quadratic"], agg["human_kappa_quadratic"]),
        ratio_mae=agg["human_mae"] / llm_mae if llm_mae > 0 else float("nan"),
        n_pairs=sum(row.n for row in rows),
    )


def _distributions(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked (n, K) float distributions and a mask of all-nan rows (returned as nan)."""
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"probs must be (n_items, K) with K >= 1, got shape {p.shape}")
    blank = np.isnan(p).all(axis=1)
    q = p[~blank]
    if not np.all(np.isfinite(q)) or (q.size and q.min() < 0):
        raise ValueError("probs rows must be finite and >= 0 (or all nan for no distribution)")
    if q.size and not np.allclose(q.sum(axis=1), 1.0, rtol=0, atol=1e-5):
        raise ValueError("probs rows must sum to 1 (within 1e-5)")
    return p, blank


def expected_level(probs: np.ndarray) -> np.ndarray:
    """Expected level sum_k k * p_k per row of (n, K) distributions, in [0, K-1] steps.

    Rows are distributions over levels 0..K-1 in scale order (e.g. label probabilities
    renormalised over the allowed levels, or ``agreement.soft_labels``); each is divided
    by its sum (which must be 1 within 1e-5). All-nan rows (no distribution, e.g. an
    unrated item or a failed output) give nan. Returns float (n,).
    """
    p, blank = _distributions(probs)
    filled = np.where(blank[:, None], 1.0, p)
    value = (filled * np.arange(p.shape[1])).sum(axis=1) / filled.sum(axis=1)
    return np.where(blank, np.nan, value)


def top_level_probability(probs: np.ndarray) -> np.ndarray:
    """Probability of the most probable level, max_k p_k, per row; in [1/K, 1].

    The top-label confidence of a distribution over levels (``calibration.py``). Same
    input rules as :func:`expected_level`; all-nan rows give nan. Returns float (n,).
    """
    p, blank = _distributions(probs)
    filled = np.where(blank[:, None], 1.0, p)
    return np.where(blank, np.nan, filled.max(axis=1) / filled.sum(axis=1))
