"""The Alternative Annotator Test (alt-test): may the LLM replace a human annotator?

Calderon, Reichart, Dror (ACL 2025), "The Alternative Annotator Test for LLM-as-a-Judge:
How to Statistically Justify Replacing Human Annotators with LLMs", arXiv 2501.10970;
statistics.md section 9. Leave one annotator out at a time and ask who represents the
remaining annotators better, the excluded human or the LLM.

For each annotator j and each item i that j labelled and at least one other annotator
labelled, with R = the other annotators' labels on i:

    s_h = S(h_j(i), R),   s_f = S(llm(i), R),
    W_f = 1[s_f >= s_h],  W_h = 1[s_h >= s_f]   (a tie counts for both),
    d_i = W_h - W_f  in {-1, 0, 1}.

One-sided one-sample t-test of H0: mean(d) >= epsilon against H1: mean(d) < epsilon
(epsilon = the cost-benefit allowance granted to the cheaper LLM). The annotators'
p-values are corrected by Benjamini-Yekutieli at q; the winning rate omega is the share of
annotators whose null is rejected and the LLM passes when omega >= 0.5. The advantage
probability rho = mean over annotators of mean_i W_f ranks setups.

Scoring S: "nominal" = share of R equal to the label (accuracy against each of R);
"ordinal" = -RMSE between the label's level and R's levels (codes are levels 0..K-1).

Conventions of this implementation (the paper leaves them open):

* ``failures="worst"`` (default): a failed LLM output (-1) gets the worst possible
  score, 0 (nominal) or -(K-1) (ordinal), and stays in the test: dropping failures
  would flatter the LLM. A human label that is itself as far as possible from R ties
  with it (the paper's tie rule). ``failures="drop"``: an item the LLM failed on is left
  out for every annotator, as the authors' code does (it keeps only instances present
  in ``llm_annotations``), so the result equals theirs on the answered items; an
  annotator can then fall under ``min_items`` and be skipped.
* Zero variance of d (all d_i equal): the t statistic's limit is used, so the outcome
  is decided by the observed mean alone: mean(d) < epsilon gives t = -inf, p = 0;
  mean(d) > epsilon gives t = +inf, p = 1; mean(d) == epsilon gives t = nan, p = 1
  (H0 holds exactly). scipy instead returns nan or a huge t from rounding noise.
* Annotators with fewer than ``min_items`` comparable items are skipped (listed in
  ``skipped``), as in the authors' reference code; the paper asks for >= 30 so that
  the t-test's normal approximation holds.
* Clustered items (``clusters``, statistics.md section 3: e.g. the turns of one
  conversation): the d_i of one cluster are not independent, and the t-test's sd / sqrt(n)
  then understates the mean's spread. Each annotator's test uses instead the
  cluster-robust (CR1) standard error over the G clusters among that annotator's items,
  SE = sqrt(G / (G - 1) * sum_k (sum_{i in k} (d_i - mean))^2) / n, with G - 1 degrees of
  freedom; with every item its own cluster that is the t-test above. Zero variance (all
  cluster sums of deviations 0, e.g. all d_i equal) is decided by the mean as above; a
  single cluster (G = 1, no degree of freedom: nothing measures the spread between
  clusters) gives t = nan, p = 1: the LLM is not shown to beat that annotator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtr  # Student's t CDF (scipy.stats.t.cdf, without its import)

from .accuracy import validate_codes
from .agreement import item_label_counts

SCORINGS = ("nominal", "ordinal")
# Paper's rule of thumb for epsilon by annotator profile (section 9 of statistics.md):
# the more expensive and reliable the humans, the larger the advantage the LLM is granted.
EPSILON = {"expert": 0.2, "skilled": 0.15, "crowd": 0.1}
DEFAULT_Q = 0.05
MIN_ITEMS = 30
PASS_WINNING_RATE = 0.5
FAILURES = ("worst", "drop")
# How metrics.json names the test used on clustered items (the unclustered block says none).
CLUSTERED_T_TEST = "t-test, cluster-robust (CR1) standard error, G-1 df"


@dataclass(frozen=True)
class AltTestRow:
    """One left-out annotator: ``n`` items compared, each also labelled by someone else.

    ``llm_advantage`` = mean W_f (the paper's rho_j^f), ``human_advantage`` = mean W_h,
    ``mean_difference`` = mean d = human_advantage - llm_advantage; ``t`` and
    ``p_value`` of the one-sided test against epsilon, ``p_by`` its Benjamini-Yekutieli
    adjusted p-value, ``rejected`` = p_by <= q (the LLM wins against this annotator).
    ``n_llm_failed`` = the annotator's comparable items where the LLM output failed (-1):
    inside the n, scored worst, under ``failures="worst"``; left out of the n under "drop".
    ``n_clusters`` = the clusters among the n items (G, the test's df + 1), None when the
    items are independent.
    """

    annotator: int
    n: int
    llm_advantage: float
    human_advantage: float
    mean_difference: float
    t: float
    p_value: float
    p_by: float
    rejected: bool
    n_llm_failed: int
    n_clusters: int | None = None


@dataclass(frozen=True)
class AltTestResult:
    """Outcome of the alt-test over the annotators that qualified.

    ``winning_rate`` (omega) = share of rows rejected; ``passed`` = omega >= 0.5;
    ``advantage_probability`` (rho) = mean of the rows' ``llm_advantage``. ``skipped``
    lists (annotator, n) of annotators with fewer than ``min_items`` comparable items.
    ``warning`` is set when only 2 annotators qualify (>= 3 are recommended), else None.
    ``failures`` is the convention for failed LLM outputs ("worst" or "drop");
    ``n_failed_items`` the items with >= 2 annotators where the LLM failed (scored worst,
    or dropped, by that convention). ``clustered``: each annotator's test used the
    cluster-robust standard error (module docstring).
    """

    per_annotator: list[AltTestRow]
    winning_rate: float
    advantage_probability: float
    passed: bool
    epsilon: float
    q: float
    scoring: str
    min_items: int
    skipped: list[tuple[int, int]]
    warning: str | None
    failures: str = "worst"
    n_failed_items: int = 0
    clustered: bool = False


def benjamini_yekutieli(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Yekutieli adjusted p-values, in input order.

    BY (2001) step-up under arbitrary dependence: with p sorted ascending, m tests and
    c(m) = sum_{k=1}^{m} 1/k, adjusted p_(i) = min_{j >= i} min(1, m c(m) p_(j) / j).
    Rejecting H_i iff its adjusted p-value <= q is the BY procedure at FDR level q
    (the same values as statsmodels' ``multipletests(method="fdr_by")``).
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p_values must be in [0, 1] (no nan)")
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranks = np.arange(1, m + 1)
    c_m = float(np.sum(1.0 / ranks))
    scaled = np.minimum(1.0, m * c_m * p[order] / ranks)
    # Step-up: each adjusted value is the smallest scaled value at or above its rank.
    adjusted_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return [float(x) for x in adjusted]


def one_sided_t_test(
    differences: np.ndarray, epsilon: float, clusters: np.ndarray | None = None
) -> tuple[float, float]:
    """(t, p) of H0: mean >= epsilon vs H1: mean < epsilon, with n - 1 degrees of freedom.

    t = (mean - epsilon) / (sd / sqrt(n)), sd with ddof=1; p = P(T_{n-1} <= t), as
    ``scipy.stats.ttest_1samp(d, epsilon, alternative="less")``. Zero variance is decided
    by the mean alone (module docstring); n must be >= 2. With ``clusters`` (one id per
    value) the standard error is the cluster-robust one over their G clusters, with G - 1
    degrees of freedom (module docstring); singletons give the same t and p.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"the t-test needs a 1-D sample of >= 2 values, got shape {d.shape}")
    if clusters is not None:
        return _clustered_t_test(d, epsilon, clusters)
    mean = float(d.mean())
    if np.all(d == d[0]):  # exact check: d holds small integers, no rounding involved
        return _zero_variance(mean, epsilon)
    se = float(d.std(ddof=1)) / math.sqrt(d.size)
    t = (mean - epsilon) / se
    return t, float(stdtr(d.size - 1, t))


def _zero_variance(mean: float, epsilon: float) -> tuple[float, float]:
    """The t statistic's limit when the estimated variance is 0: the mean alone decides."""
    if mean < epsilon:
        return -math.inf, 0.0
    return (math.inf if mean > epsilon else math.nan), 1.0


def _clustered_t_test(d: np.ndarray, epsilon: float, clusters: np.ndarray) -> tuple[float, float]:
    ids = np.asarray(clusters)
    if ids.shape != d.shape:
        raise ValueError(f"clusters must have one entry per value ({d.size}), got {ids.shape}")
    group = np.unique(ids, return_inverse=True)[1].ravel()
    g, n = int(group.max()) + 1, d.size
    if g < 2:  # no degree of freedom: nothing measures the spread between clusters
        return math.nan, 1.0
    # n * (cluster sum of deviations) = n S_k - n_k S: exact integers for the small-integer
    # d of the test (|.| <= n^2, far below 2^53), so "zero variance" is an exact check.
    total = float(d.sum())
    scaled = (
        n * np.bincount(group, weights=d, minlength=g) - np.bincount(group, minlength=g) * total
    )
    if not np.any(scaled):
        return _zero_variance(total / n, epsilon)
    se = math.sqrt(g / (g - 1) * float(np.sum(scaled**2))) / n**2
    t = (total / n - epsilon) / se
    return t, float(stdtr(g - 1, t))


def _resolve_epsilon(epsilon: float | str) -> float:
    if isinstance(epsilon, str):
        if epsilon not in EPSILON:
            raise ValueError(f"epsilon must be a number or one of {sorted(EPSILON)}")
        return EPSILON[epsilon]
    value = float(epsilon)
    if not math.isfinite(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
    return value


def _losses(labels: np.ndarray, counts: np.ndarray, n_classes: int, scoring: str) -> np.ndarray:
    """Per-item loss of ``labels`` against the others' label counts; lower = closer to R.

    Integer losses with the same denominator |R| for human and LLM on an item, so W_f and
    W_h compare exact integers (no float ties broken by rounding): nominal loss = number
    of R that differ (S = 1 - loss / |R|); ordinal loss = sum over R of squared level
    distance (S = -sqrt(loss / |R|), monotone in the loss). A failure (-1) gets the
    largest loss: all of R differ, or every r at distance K-1.
    """
    m = counts.sum(axis=1)
    failed = labels < 0
    safe = np.where(failed, 0, labels)
    if scoring == "nominal":
        loss = m - counts[np.arange(labels.size), safe]
        return np.where(failed, m, loss)
    levels = np.arange(n_classes)
    squared = (safe[:, None] - levels[None, :]) ** 2
    loss = (counts * squared).sum(axis=1)
    return np.where(failed, m * (n_classes - 1) ** 2, loss)


def alt_test(
    ratings: np.ndarray,
    prediction: np.ndarray,
    n_classes: int,
    epsilon: float | str,
    scoring: str = "nominal",
    q: float = DEFAULT_Q,
    min_items: int = MIN_ITEMS,
    failures: str = "worst",
    clusters: np.ndarray | None = None,
) -> AltTestResult:
    """The alt-test of ``prediction`` (n_items,) against ``ratings`` (n_items, n_annotators).

    Codes 0..K-1, -1 = missing rating / failed prediction. ``epsilon`` is a number in
    [0, 1) or a profile name of :data:`EPSILON` ("expert", "skilled", "crowd").
    ``scoring`` is "nominal" or "ordinal" (codes are levels in scale order);
    ``failures`` "worst" or "drop" (module docstring); ``clusters`` one cluster id per
    item (None: independent items) for the cluster-robust test (module docstring). Raises
    ValueError when fewer than 2 annotators have >= ``min_items`` items that another
    annotator also labelled; the message lists each annotator's count.
    """
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    if failures not in FAILURES:
        raise ValueError(f"failures must be one of {FAILURES}, got {failures!r}")
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    if int(min_items) < 2:
        raise ValueError(f"min_items must be >= 2 (a t-test needs 2 items), got {min_items}")
    eps = _resolve_epsilon(epsilon)
    r = validate_codes(ratings, n_classes, "ratings", ndim=2)
    llm = validate_codes(prediction, n_classes, "prediction", ndim=1)
    if llm.shape[0] != r.shape[0]:
        raise ValueError("prediction must have one entry per item (row of ratings)")
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != (r.shape[0],):
            raise ValueError(f"clusters must have one entry per item ({r.shape[0]})")
        clusters = np.unique(clusters, return_inverse=True)[1].ravel()
    counts_all = item_label_counts(r, n_classes)
    # Items at least two annotators labelled: the only ones any comparison uses.
    shared = (r >= 0).sum(axis=1) >= 2
    n_failed_items = int((shared & (llm < 0)).sum())
    answered = llm >= 0 if failures == "drop" else np.ones(llm.shape[0], dtype=bool)

    stats: list[tuple[int, int, np.ndarray, np.ndarray, int, np.ndarray | None]] = []
    skipped: list[tuple[int, int]] = []
    for j in range(r.shape[1]):
        own = r[:, j]
        # The others' counts: remove j's own label from the item's label counts.
        others = counts_all.copy()
        labelled = np.nonzero(own >= 0)[0]
        others[labelled, own[labelled]] -= 1
        comparable = (own >= 0) & (others.sum(axis=1) > 0)
        items = comparable & answered
        n = int(items.sum())
        if n < min_items:
            skipped.append((j, n))
            continue
        loss_h = _losses(own[items], others[items], n_classes, scoring)
        loss_f = _losses(llm[items], others[items], n_classes, scoring)
        w_f = (loss_f <= loss_h).astype(float)
        w_h = (loss_h <= loss_f).astype(float)
        groups = None if clusters is None else clusters[items]
        stats.append((j, n, w_f, w_h, int((llm[comparable] < 0).sum()), groups))

    if len(stats) < 2:
        counts_text = ", ".join(f"annotator {j}: {n}" for j, n in skipped) or "none"
        raise ValueError(
            f"the alt-test needs >= 2 annotators (3 or more recommended) who each labelled "
            f">= {min_items} items that at least one other annotator also labelled; "
            f"{len(stats)} qualify (comparable items per skipped annotator: {counts_text}). "
            f"Have more items labelled by several annotators."
            + (
                f" failures='drop' left out the {n_failed_items} items the LLM failed on."
                if failures == "drop" and n_failed_items
                else ""
            )
        )

    tests = [one_sided_t_test(w_h - w_f, eps, groups) for _, _, w_f, w_h, _, groups in stats]
    p_by = benjamini_yekutieli([p for _, p in tests])
    rows = [
        AltTestRow(
            annotator=j,
            n=n,
            llm_advantage=float(w_f.mean()),
            human_advantage=float(w_h.mean()),
            mean_difference=float((w_h - w_f).mean()),
            t=t,
            p_value=p,
            p_by=adjusted,
            rejected=adjusted <= q,
            n_llm_failed=failed,
            n_clusters=None if groups is None else int(np.unique(groups).size),
        )
        for (j, n, w_f, w_h, failed, groups), (t, p), adjusted in zip(
            stats, tests, p_by, strict=True
        )
    ]
    omega = sum(row.rejected for row in rows) / len(rows)
    warning = None
    if len(rows) == 2:
        warning = (
            "only 2 annotators qualify: the test then only asks whether the LLM agrees "
            "more with one annotator than the other does; >= 3 annotators are recommended "
            "(Calderon et al. 2025)"
        )
    return AltTestResult(
        per_annotator=rows,
        winning_rate=float(omega),
        advantage_probability=float(np.mean([row.llm_advantage for row in rows])),
        passed=bool(omega >= PASS_WINNING_RATE),
        epsilon=eps,
        q=float(q),
        scoring=scoring,
        min_items=int(min_items),
        skipped=skipped,
        warning=warning,
        failures=failures,
        n_failed_items=n_failed_items,
        clustered=clusters is not None,
    )
