"""Rankings of N candidates: Borda reference, Kendall's tau, Spearman's rho, top-1.

A *ranking* (an order) lists candidate indices 0..N-1 best first, e.g. ``[2, 0, 1]`` =
candidate 2 best. A missing ranking (annotator did not rank the item, or the LLM output
failed) is a row of -1; any other row must be a permutation of 0..N-1 (checked; partial
rankings and ties are not supported). Its *rank vector* (position of each candidate,
0 = best) is the inverse permutation; tau and rho compare rank vectors.

* ``rankings``: int (n_items, n_annotators, N); ``ref`` / ``pred``: int (n_items, N).
* End-to-end (statistics.md section 3): ``top1`` counts a failure as a miss and keeps it
  in the denominator. tau and rho are undefined for a missing ranking, so they are means
  over answered items only; read them with ``coverage``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .agreement import _weighted_mean
from .intervals import Interval, bootstrap_items

RANKING_METRICS = ("top1", "tau", "rho")
_F = RANKING_METRICS


@dataclass(frozen=True)
class RankingMetrics:
    """``n`` items with a reference, ``n_answered`` with a prediction, coverage = ratio.

    ``top1`` = share of the n items whose predicted best candidate is the reference's
    (end-to-end, in [0, 1]); ``top1_answered`` the same over answered items. ``tau`` /
    ``rho`` = mean Kendall tau / Spearman rho in [-1, 1] over answered items (nan if none
    or N < 2).
    """

    n: int
    n_answered: int
    coverage: float
    top1: float
    top1_answered: float
    tau: float
    rho: float


@dataclass(frozen=True)
class RankingCeilingRow:
    """Annotator ``annotator`` and the LLM vs the Borda ranking of the other annotators.

    ``n`` items (j ranked them, >= 1 other annotator did); ``llm_n_answered`` of them
    have an LLM ranking (the items behind ``llm_tau`` / ``llm_rho``). Units: RankingMetrics.
    """

    annotator: int
    n: int
    llm_n_answered: int
    human_top1: float
    llm_top1: float
    human_tau: float
    llm_tau: float
    human_rho: float
    llm_rho: float


@dataclass(frozen=True)
class RankingCeiling:
    """Leave-one-annotator-out ceiling; aggregates are item-weighted means of the rows.

    Weights are ``n`` (``llm_n_answered`` for llm_tau / llm_rho), skipping nan rows.
    ``ratio_*`` = llm / human (nan when the human value is <= 0 or nan): 1 = the LLM
    agrees with the others as well as a typical annotator. ``n_pairs`` = number of
    (annotator, item) comparisons.
    """

    per_annotator: list[RankingCeilingRow]
    human_top1: float
    llm_top1: float
    human_tau: float
    llm_tau: float
    human_rho: float
    llm_rho: float
    ratio_top1: float
    ratio_tau: float
    ratio_rho: float
    n_pairs: int


def _orders(values: np.ndarray, name: str, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Checked int64 orders and the mask of present (non-missing) rankings."""
    arr = np.asarray(values)
    if arr.ndim != ndim or arr.shape[-1] < 1:
        raise ValueError(f"{name} must be {ndim}-dimensional with >= 1 candidate, got {arr.shape}")
    if (
        arr.size
        and arr.dtype.kind not in "iu"
        and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr)))
    ):
        raise ValueError(f"{name} must hold integer candidate indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    present = arr[..., 0] >= 0
    missing_ok = np.all(arr[~present] == -1)
    perm_ok = np.all(np.sort(arr[present], axis=-1) == np.arange(arr.shape[-1]))
    if not (missing_ok and perm_ok):
        raise ValueError(f"{name}: each ranking must be a permutation of 0..N-1 or all -1")
    return arr, present


def _tau_rho(order_a: np.ndarray, order_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise Kendall tau and Spearman rho of valid orders (m, N); nan when N < 2.

    Without ties tau = (concordant - discordant) / (N (N - 1) / 2) (tau-a = tau-b) and
    rho = 1 - 6 sum d^2 / (N (N^2 - 1)), d = difference of positions.
    """
    pa, pb = np.argsort(order_a, axis=-1), np.argsort(order_b, axis=-1)  # rank vectors
    big_n = pa.shape[-1]
    if big_n < 2:
        nan = np.full(pa.shape[:-1], np.nan)
        return nan, nan.copy()
    sa = np.sign(pa[..., :, None] - pa[..., None, :])
    sb = np.sign(pb[..., :, None] - pb[..., None, :])
    tau = (sa * sb).sum(axis=(-2, -1)) / (big_n * (big_n - 1))
    rho = 1.0 - 6.0 * ((pa - pb) ** 2).sum(axis=-1) / (big_n * (big_n**2 - 1))
    return tau, rho


def _pair(r1: np.ndarray, r2: np.ndarray) -> tuple[float, float]:
    (a, ok_a), (b, ok_b) = _orders(r1, "r1", 1), _orders(r2, "r2", 1)
    if a.shape != b.shape:
        raise ValueError(f"r1 and r2 rank different numbers of candidates: {a.shape}, {b.shape}")
    if not (ok_a and ok_b):
        return float("nan"), float("nan")
    tau, rho = _tau_rho(a[None], b[None])
    return float(tau[0]), float(rho[0])


def kendall_tau(r1: np.ndarray, r2: np.ndarray) -> float:
    """Kendall's tau in [-1, 1] of two orders (best first), compared as rank vectors.

    Equals ``scipy.stats.kendalltau(positions1, positions2)`` (no ties, so tau-b = tau-a).
    nan when either ranking is missing (-1) or N < 2.
    """
    return _pair(r1, r2)[0]


def spearman_rho(r1: np.ndarray, r2: np.ndarray) -> float:
    """Spearman's rho in [-1, 1] of two orders, as ``scipy.stats.spearmanr`` on positions.

    nan when either ranking is missing (-1) or N < 2.
    """
    return _pair(r1, r2)[1]


def borda_scores(rankings: np.ndarray) -> np.ndarray:
    """Borda points per candidate, float (n_items, N): sum over annotators of N-1-position.

    Only annotators who ranked the item contribute; nan rows for items nobody ranked.
    Equal points in a row mean a tie that :func:`borda_reference` breaks by index.
    """
    r, present = _orders(rankings, "rankings", 3)
    points = (r.shape[-1] - 1 - np.argsort(r, axis=-1)) * present[..., None]
    return np.where(present.any(axis=1)[:, None], points.sum(axis=1), np.nan)


def borda_reference(rankings: np.ndarray) -> np.ndarray:
    """Consensus order per item by Borda count (Borda 1781; de Borda, "Memoire sur les
    elections au scrutin").

    Each annotator who ranked the item gives N-1 points to their best candidate, ..., 0
    to their worst; candidates are ordered by total points, most first. Ties in points
    go to the lower candidate index (deterministic, as ``agreement.majority_vote``'s
    lowest code). With one annotator the result is their ranking. Returns int64
    (n_items, N); -1 rows for items nobody ranked.
    """
    points = borda_scores(rankings)
    order = np.argsort(-np.nan_to_num(points), axis=1, kind="stable")
    return np.where(np.isnan(points[:, :1]), -1, order).astype(np.int64)


def _per_item(ref: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """top1 hit, answered, tau, rho (0 where unanswered) of the referenced items."""
    truth, has_ref = _orders(ref, "ref", 2)
    guess, answered = _orders(pred, "pred", 2)
    if truth.shape != guess.shape:
        raise ValueError(f"ref and pred differ in shape: {truth.shape} vs {guess.shape}")
    t, g, a = truth[has_ref], guess[has_ref], answered[has_ref]
    tau, rho = np.zeros(a.size), np.zeros(a.size)
    tau[a], rho[a] = _tau_rho(t[a], g[a])
    top1 = (a & (t[:, 0] == g[:, 0])).astype(float)
    return {"top1": top1, "answered": a, "tau": tau, "rho": rho, "kept": has_ref}


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def ranking_metrics(ref: np.ndarray, pred: np.ndarray) -> RankingMetrics:
    """Top-1 (end-to-end and answered), mean tau and mean rho of ``pred`` vs ``ref``.

    ``ref`` (e.g. :func:`borda_reference`; -1 row = no reference, item excluded) and
    ``pred`` (-1 row = failure) are (n_items, N) orders. Definitions: RankingMetrics.
    """
    item = _per_item(ref, pred)
    a = item["answered"]
    n = a.size
    return RankingMetrics(
        n=n,
        n_answered=int(a.sum()),
        coverage=float(a.mean()) if n else float("nan"),
        top1=_mean(item["top1"], np.ones(n, bool)),
        top1_answered=_mean(item["top1"], a),
        tau=_mean(item["tau"], a),
        rho=_mean(item["rho"], a),
    )


def _with_pred(rankings: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, ...]:
    r, present = _orders(rankings, "rankings", 3)
    p, answered = _orders(pred, "pred", 2)
    if p.shape != (r.shape[0], r.shape[2]):
        raise ValueError(f"pred must be (n_items, N) = {r.shape[::2]}, got {p.shape}")
    return r, present, p, answered


def ranking_against_annotators(rankings: np.ndarray, pred: np.ndarray) -> tuple[float, float, int]:
    """Mean tau and mean rho of ``pred`` against each annotator's own ranking.

    Averaged over every (item, annotator) pair where the annotator ranked the item and
    the prediction did not fail, so items with more annotators weigh more. Returns
    (tau, rho, n_pairs); nan means when n_pairs = 0.
    """
    r, present, p, answered = _with_pred(rankings, pred)
    items, annotators = np.nonzero(present & answered[:, None])
    if items.size == 0:
        return float("nan"), float("nan"), 0
    tau, rho = _tau_rho(r[items, annotators], p[items])
    return float(tau.mean()), float(rho.mean()), int(items.size)


def ranking_human_ceiling(rankings: np.ndarray, pred: np.ndarray) -> RankingCeiling:
    """Leave-one-annotator-out human ceiling for rankings, and the LLM beside it.

    For each annotator j the reference is :func:`borda_reference` of the *other*
    annotators, on the items j ranked that >= 1 other annotator ranked; j and ``pred``
    are scored against it on those same items with :func:`ranking_metrics` (top1
    end-to-end, tau/rho on answered items). statistics.md section 2. With a single
    annotator there is no reference: one row with n = 0 and nan aggregates.
    """
    r, present, p, _ = _with_pred(rankings, pred)
    rows = []
    for j in range(r.shape[1]):
        reference = borda_reference(np.delete(r, j, axis=1))
        items = present[:, j] & (reference[:, 0] >= 0)
        ref = np.where(items[:, None], reference, -1)
        human, llm = ranking_metrics(ref, r[:, j]), ranking_metrics(ref, p)
        scores = {
            f"{w}_{f}": getattr(m, f) for w, m in (("human", human), ("llm", llm)) for f in _F
        }
        rows.append(RankingCeilingRow(j, llm.n, llm.n_answered, **scores))
    agg = {}
    for field in _F:
        for who in ("human", "llm"):
            weight = "llm_n_answered" if who == "llm" and field != "top1" else "n"
            values = [getattr(row, f"{who}_{field}") for row in rows]
            agg[f"{who}_{field}"] = _weighted_mean(values, [getattr(row, weight) for row in rows])
    for field in _F:
        human = agg[f"human_{field}"]
        agg[f"ratio_{field}"] = agg[f"llm_{field}"] / human if human > 0 else float("nan")
    return RankingCeiling(per_annotator=rows, **agg, n_pairs=sum(row.n for row in rows))


def ranking_ci(
    ref: np.ndarray,
    pred: np.ndarray,
    metric: str = "tau",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """Percentile bootstrap interval of one RANKING_METRICS metric (RankingMetrics units).

    Items without a reference are dropped first (``Interval.n`` = RankingMetrics.n); the
    resamples are (B, n) index matrices evaluated at once (``intervals.bootstrap_items``,
    ``batched=True``; whole clusters with ``clusters``, one entry per row of ``ref``).
    "top1" is end-to-end; "tau"/"rho" are means over the answered items of each
    resample (nan replicates without one are dropped, see ``Interval.n_boot``).
    """
    if metric not in RANKING_METRICS:
        raise ValueError(f"metric must be one of {RANKING_METRICS}, got {metric!r}")
    item = _per_item(ref, pred)
    n = item["answered"].size
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != item["kept"].shape:
            raise ValueError(f"clusters must have one entry per item, got {clusters.shape}")
        clusters = clusters[item["kept"]]
    values = item[metric]
    den = np.ones(n) if metric == "top1" else item["answered"].astype(float)

    def statistic(index: np.ndarray) -> np.ndarray:
        total = den[index].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, values[index].sum(axis=1) / np.maximum(total, 1), np.nan)

    return bootstrap_items(statistic, n, n_boot, seed, level, clusters, batched=True)


def item_scores(ref: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item top-1 hit, answered, tau and rho of the referenced items, and `kept`: what
    joint resamples of several setups need (harness/score/selection_sets.py)."""
    return _per_item(ref, pred)
