"""Agreement among human annotators, and between them and a pre-labeler.

Labels are integer codes 0..K-1 (``n_classes=K``), -1 = missing rating or failed
prediction. A *ratings* matrix has shape (n_items, n_annotators). Krippendorff's alpha
instead takes a float *reliability* matrix (n_coders, n_units) with NaN for missing, as
in Krippendorff (2011); :func:`reliability_matrix` converts. Sources: statistics.md 1-2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .accuracy import validate_codes

KAPPA_WEIGHTS = (None, "linear", "quadratic")
ALPHA_LEVELS = ("nominal", "ordinal", "interval", "ratio")


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of two annotators over the ``n`` items both labelled."""

    annotator_a: int
    annotator_b: int
    n: int
    kappa: float


@dataclass(frozen=True)
class CeilingRow:
    """Annotator ``annotator`` and the LLM, each against the other annotators' vote."""

    annotator: int
    n: int
    human_accuracy: float
    llm_accuracy: float
    human_kappa: float
    llm_kappa: float


@dataclass(frozen=True)
class HumanCeiling:
    """Leave-one-annotator-out ceiling; aggregates are means weighted by row ``n``.

    ``ratio_*`` = llm / human (nan when the human value is <= 0 or nan); ``n_pairs`` is
    the number of (annotator, item) comparisons behind the aggregates.
    """

    per_annotator: list[CeilingRow]
    human_accuracy: float
    llm_accuracy: float
    human_kappa: float
    llm_kappa: float
    ratio_accuracy: float
    ratio_kappa: float
    n_pairs: int


def label_distribution(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of each code 0..K-1 in ``codes`` (any shape; -1 ignored), int64 (K,)."""
    flat = validate_codes(codes, n_classes, "codes").ravel()
    return np.bincount(flat[flat >= 0], minlength=n_classes)


def item_label_counts(ratings: np.ndarray, n_classes: int) -> np.ndarray:
    """Per item, how many annotators gave each code: int64 (n_items, K)."""
    r = validate_codes(ratings, n_classes, "ratings", ndim=2)
    rows, cols = np.nonzero(r >= 0)
    flat = rows * n_classes + r[rows, cols]
    return np.bincount(flat, minlength=r.shape[0] * n_classes).reshape(-1, n_classes)


def soft_labels(ratings: np.ndarray, n_classes: int) -> np.ndarray:
    """Distribution of human labels per item, float (n_items, K); rows of nan if unrated."""
    counts = item_label_counts(ratings, n_classes).astype(float)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / total


def reliability_matrix(ratings: np.ndarray) -> np.ndarray:
    """(n_items, n_annotators) int codes with -1 -> (n_annotators, n_items) float, NaN."""
    r = np.asarray(ratings)
    if r.ndim != 2:
        raise ValueError(f"ratings must be 2-dimensional, got shape {r.shape}")
    return np.where(r >= 0, r, np.nan).astype(float).T


def majority_vote(
    ratings: np.ndarray, n_classes: int, tie_break: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent label per item among non-missing ratings.

    Tie rule (deterministic): if the top count is shared, use ``tie_break[i]`` (e.g. the
    adjudicated gold code; -1 = none) when it is one of the tied labels, otherwise the
    lowest tied code, i.e. the label listed first in the task. Returns
    ``(reference, no_majority)``: int64 codes (-1 for items without ratings) and a bool
    mask of items whose top count was tied (before the tie-break).
    """
    counts = item_label_counts(ratings, n_classes)
    top = counts.max(axis=1)
    rated = top > 0
    is_top = (counts == top[:, None]) & rated[:, None]
    no_majority = is_top.sum(axis=1) > 1
    reference = np.where(rated, counts.argmax(axis=1), -1)  # argmax = lowest tied code
    if tie_break is not None:
        gold = validate_codes(tie_break, n_classes, "tie_break", ndim=1)
        if gold.shape[0] != counts.shape[0]:
            raise ValueError("tie_break must have one entry per item")
        gold_is_top = is_top[np.arange(gold.shape[0]), np.maximum(gold, 0)] & (gold >= 0)
        reference = np.where(no_majority & gold_is_top, gold, reference)
    return reference.astype(np.int64), no_majority


def median_label(ratings: np.ndarray, n_classes: int) -> np.ndarray:
    """Median code per item for ordinal scales; the lower median when the count is even.

    With c ratings the result is the ceil(c/2)-th smallest rating; -1 for unrated items.
    """
    counts = item_label_counts(ratings, n_classes)
    total = counts.sum(axis=1)
    target = (total + 1) // 2
    median = (counts.cumsum(axis=1) < target[:, None]).sum(axis=1)
    return np.where(total > 0, median, -1).astype(np.int64)


def _kappa_weight_matrix(k: int, n_columns: int, weights: str | None) -> np.ndarray:
    """Disagreement weights (K, C); a failure column (C = K+1) gets the largest weight."""
    i, j = np.arange(k)[:, None], np.arange(k)[None, :]
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    elif weights == "quadratic":
        w = ((i - j) ** 2).astype(float)
    else:
        raise ValueError(f"weights must be one of {KAPPA_WEIGHTS}, got {weights!r}")
    if n_columns == k + 1:
        w = np.hstack([w, np.full((k, 1), max(float(w.max()), 1.0))])
    return w


def kappa_from_confusion(table: np.ndarray, weights: str | None = None) -> np.ndarray:
    """Cohen's kappa of a (K, K) or (K, K+1) table, or of a stack (..., K, C).

    kappa = 1 - sum(w * observed) / sum(w * expected), expected = outer(row, column
    marginals) / n; Cohen (1960), weighted: Cohen (1968); the same expression as
    ``sklearn.metrics.cohen_kappa_score``. Disagreement weights: 1 off the diagonal
    (None), |i - j| ("linear"), (i - j)^2 ("quadratic"). A K+1-th column (failed
    predictions) is a category that never matches, at the largest weight of the scale.
    Range [-1, 1]; nan when n < 2 or when expected disagreement is 0.
    """
    t = np.asarray(table, dtype=float)
    if t.ndim < 2 or t.shape[-1] not in (t.shape[-2], t.shape[-2] + 1):
        raise ValueError(f"expected a (..., K, K) or (..., K, K+1) table, got {t.shape}")
    k = t.shape[-2]
    w = _kappa_weight_matrix(k, t.shape[-1], weights)
    n = t.sum(axis=(-2, -1))
    safe_n = np.where(n > 0, n, 1.0)[..., None, None]
    expected = t.sum(axis=-1)[..., :, None] * t.sum(axis=-2)[..., None, :] / safe_n
    observed_dis = (w * t).sum(axis=(-2, -1))
    expected_dis = (w * expected).sum(axis=(-2, -1))
    ok = (n >= 2) & (expected_dis > 0)
    return np.where(ok, 1.0 - observed_dis / np.where(ok, expected_dis, 1.0), np.nan)


def cohen_kappa(a: np.ndarray, b: np.ndarray, n_classes: int, weights: str | None = None) -> float:
    """Cohen's kappa of two label vectors on positions where both are >= 0.

    Equal to ``sklearn.metrics.cohen_kappa_score(a, b, labels=range(K), weights=...)``;
    ``weights`` None | "linear" | "quadratic" (ordinal scales, ordered by code).
    Range [-1, 1]; nan with fewer than 2 such items or when expected agreement is 1.
    """
    x = validate_codes(a, n_classes, "a", ndim=1)
    y = validate_codes(b, n_classes, "b", ndim=1)
    if x.shape != y.shape:
        raise ValueError(f"a and b differ in length: {x.shape} vs {y.shape}")
    both = (x >= 0) & (y >= 0)
    cells = x[both] * n_classes + y[both]
    table = np.bincount(cells, minlength=n_classes * n_classes).reshape(n_classes, -1)
    return float(kappa_from_confusion(table, weights))


def fleiss_kappa(ratings: np.ndarray, n_classes: int) -> float | None:
    """Fleiss' kappa (Fleiss 1971) for m >= 2 ratings on every item; range [-1, 1].

    P_i = (sum_k n_ik^2 - m) / (m (m - 1)), p_k = sum_i n_ik / (N m),
    kappa = (mean P_i - sum p_k^2) / (1 - sum p_k^2), as
    ``statsmodels.stats.inter_rater.fleiss_kappa``. Returns None when the design is
    incomplete: not every item has the same number (>= 2) of ratings -- unrated items
    count as incomplete, drop them first. nan when all ratings share one label.
    """
    counts = item_label_counts(ratings, n_classes).astype(float)
    per_item = counts.sum(axis=1)
    if counts.shape[0] == 0 or per_item.min() != per_item.max() or per_item[0] < 2:
        return None
    m, n_items = per_item[0], counts.shape[0]
    p = counts.sum(axis=0) / (n_items * m)
    observed = (((counts**2).sum(axis=1) - m) / (m * (m - 1))).mean()
    chance = float((p**2).sum())
    if chance >= 1.0:
        return float("nan")
    return float((observed - chance) / (1.0 - chance))


def _alpha_distance(domain: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    """Squared difference function delta^2(c, k) of Krippendorff (2011), (V, V)."""
    if level == "nominal":
        return 1.0 - np.eye(domain.size)
    if level == "ordinal":  # (sum_{g=c}^{k} n_g - (n_c + n_k) / 2)^2 over ranks c <= k
        idx = np.arange(domain.size)
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
        cum = np.cumsum(n_c)
        between = cum[hi] - cum[lo] + n_c[lo]
        return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2
    diff = domain[:, None] - domain[None, :]
    if level == "interval":
        return diff**2
    if level == "ratio":
        if domain.size and domain.min() < 0:
            raise ValueError("ratio level needs non-negative values")
        total = domain[:, None] + domain[None, :]
        return np.divide(diff, total, out=np.zeros_like(diff), where=total != 0) ** 2
    raise ValueError(f"level must be one of {ALPHA_LEVELS}, got {level!r}")


# Units x values up to which alpha counts values per unit in a dense array (160 MB).
_DENSE_UNIT_COUNTS = 20_000_000


def krippendorff_alpha(
    reliability: np.ndarray, level: str = "nominal", n_values: int | None = None
) -> float:
    """Krippendorff's alpha = 1 - D_o / D_e by the coincidence-matrix method.

    ``reliability`` is float (n_coders, n_units) with NaN for missing (coders as rows,
    Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability"). ``level`` is
    nominal | ordinal | interval | ratio. ``n_values`` declares the values to be the
    integer codes 0..n_values-1 (checked); otherwise the domain is the distinct observed
    values (alpha is the same: unobserved values have no weight at any level).
    Units with fewer than 2 ratings are unpairable and dropped. With m_u ratings in unit
    u and n_uc of value c: o_ck = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1),
    n_c = sum_k o_ck, n = sum_c n_c, alpha = 1 - (n - 1) sum o_ck d_ck / sum n_c n_k d_ck.
    Range (-1, 1]; nan with no pairable values or no variation (D_e = 0).
    Cost O(values + n_units * V + V^2), no loop over units.
    """
    if level not in ALPHA_LEVELS:
        raise ValueError(f"level must be one of {ALPHA_LEVELS}, got {level!r}")
    data = np.asarray(reliability, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"reliability must be (n_coders, n_units), got {data.shape}")
    observed = ~np.isnan(data)
    per_unit = observed.sum(axis=0)
    pairable = per_unit >= 2
    data, observed, per_unit = data[:, pairable], observed[:, pairable], per_unit[pairable]
    coder_idx, unit_idx = np.nonzero(observed)
    values = data[coder_idx, unit_idx]
    if n_values is None:
        domain = np.unique(values)
    else:
        if values.size and (
            np.any(values != np.round(values)) or values.min() < 0 or values.max() >= n_values
        ):
            raise ValueError(f"values must be integer codes in 0..{n_values - 1}")
        domain = np.arange(n_values, dtype=float)
    if values.size == 0:
        return float("nan")
    value_idx = np.searchsorted(domain, values)
    shape = (data.shape[1], domain.size)
    if shape[0] * shape[1] <= _DENSE_UNIT_COUNTS:  # a few labels: dense counts are faster
        flat = np.bincount(unit_idx * shape[1] + value_idx, minlength=shape[0] * shape[1])
        unit_counts = flat.reshape(shape).astype(float)
        scaled = unit_counts / (per_unit - 1.0)[:, None]
        coincidence = unit_counts.T @ scaled
        coincidence -= np.diag(scaled.sum(axis=0))
    else:  # many distinct values (interval data): sparse
        unit_counts = sparse.csr_matrix((np.ones(values.size), (unit_idx, value_idx)), shape)
        scaled = sparse.diags(1.0 / (per_unit - 1.0)) @ unit_counts
        coincidence = (unit_counts.T @ scaled).toarray()
        coincidence -= np.diag(np.asarray(scaled.sum(axis=0)).ravel())
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta = _alpha_distance(domain, n_c, level)
    expected = (np.outer(n_c, n_c) * delta).sum()
    if n <= 1 or expected <= 0:
        return float("nan")
    return float(1.0 - (n - 1.0) * (coincidence * delta).sum() / expected)


def gwet_ac1(ratings: np.ndarray, n_classes: int) -> float:
    """Gwet's AC1 for any number of raters and missing ratings; range [-1, 1].

    Gwet (2008), BJMSP 61:29-48, in the missing-data form of Gwet's Handbook of
    Inter-Rater Reliability (4th ed.): p_a = mean over items with r_i >= 2 ratings of
    sum_k r_ik (r_ik - 1) / (r_i (r_i - 1)); pi_k = mean over rated items of r_ik / r_i;
    p_e = sum_k pi_k (1 - pi_k) / (K - 1); AC1 = (p_a - p_e) / (1 - p_e).
    nan when K < 2 or no item has two ratings.
    """
    counts = item_label_counts(ratings, n_classes).astype(float)
    per_item = counts.sum(axis=1)
    multi = per_item >= 2
    if n_classes < 2 or not multi.any():
        return float("nan")
    c, r = counts[multi], per_item[multi]
    p_a = ((c * (c - 1)).sum(axis=1) / (r * (r - 1))).mean()
    rated = per_item >= 1
    pi = (counts[rated] / per_item[rated, None]).mean(axis=0)
    p_e = (pi * (1 - pi)).sum() / (n_classes - 1)
    return float((p_a - p_e) / (1 - p_e))


def pairwise_kappas(ratings: np.ndarray, n_classes: int) -> list[PairKappa]:
    """Cohen's kappa of every annotator pair (a < b) over items both labelled.

    Every pair is listed, also those with n < 2 (kappa nan).
    """
    r = validate_codes(ratings, n_classes, "ratings", ndim=2)
    pairs = []
    for a in range(r.shape[1]):
        for b in range(a + 1, r.shape[1]):
            n = int(((r[:, a] >= 0) & (r[:, b] >= 0)).sum())
            pairs.append(PairKappa(a, b, n, cohen_kappa(r[:, a], r[:, b], n_classes)))
    return pairs


def _weighted_mean(values: list[float], weights: list[int]) -> float:
    v, w = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    keep = np.isfinite(v) & (w > 0)
    return float(np.average(v[keep], weights=w[keep])) if keep.any() else float("nan")


def human_ceiling(
    ratings: np.ndarray, prediction: np.ndarray, n_classes: int, split_code: int | None = None
) -> HumanCeiling:
    """Leave-one-annotator-out human ceiling and the LLM on the same items.

    For each annotator j, on items j labelled that have >= 1 other rating, the reference
    is :func:`majority_vote` of the other annotators (ties among them go to the lowest
    code, or to `split_code` when given; no gold tie-break, so every annotator is judged by
    the same rule). Accuracy and
    unweighted Cohen's kappa of j and of ``prediction`` against that reference. A failed
    prediction (-1) is wrong for accuracy and, for kappa, a category of its own that
    never matches (it stays in n). Aggregates are means over annotators weighted by
    their item count, skipping nan rows (e.g. kappa undefined when the reference is
    constant). Procedure: statistics.md section 2.
    """
    r = validate_codes(ratings, n_classes, "ratings", ndim=2)
    pred = validate_codes(prediction, n_classes, "prediction", ndim=1)
    if pred.shape[0] != r.shape[0]:
        raise ValueError("prediction must have one entry per item (row of ratings)")
    pred_codes = np.where(pred >= 0, pred, n_classes)  # failure = category K
    rows = []
    for j in range(r.shape[1]):
        others = np.delete(r, j, axis=1)
        reference, split = majority_vote(others, n_classes)
        if split_code is not None:  # e.g. pairwise: a split among the others is a tie
            reference = np.where(split, split_code, reference)
        items = (r[:, j] >= 0) & (reference >= 0)
        ref, human, llm = reference[items], r[items, j], pred_codes[items]
        n = int(items.sum())
        rows.append(
            CeilingRow(
                annotator=j,
                n=n,
                human_accuracy=float(np.mean(human == ref)) if n else float("nan"),
                llm_accuracy=float(np.mean(llm == ref)) if n else float("nan"),
                human_kappa=cohen_kappa(human, ref, n_classes + 1),
                llm_kappa=cohen_kappa(llm, ref, n_classes + 1),
            )
        )
    weights = [row.n for row in rows]

    def mean_of(field: str) -> float:
        return _weighted_mean([getattr(row, field) for row in rows], weights)

    human_acc, llm_acc = mean_of("human_accuracy"), mean_of("llm_accuracy")
    human_k, llm_k = mean_of("human_kappa"), mean_of("llm_kappa")
    return HumanCeiling(
        per_annotator=rows,
        human_accuracy=human_acc,
        llm_accuracy=llm_acc,
        human_kappa=human_k,
        llm_kappa=llm_k,
        ratio_accuracy=llm_acc / human_acc if human_acc > 0 else float("nan"),
        ratio_kappa=llm_k / human_k if human_k > 0 else float("nan"),
        n_pairs=int(sum(weights)),
    )
