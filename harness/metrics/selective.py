"""Selective pre-labeling: risk-coverage curves and a threshold with a guarantee
(../shared/docs/statistics.md section 6; clustered items: docs/statistics.md section 3).

Inputs follow ``calibration.py``: ``confidence`` is one finite score per item (higher =
more sure; it need not lie in [0, 1] here) and ``correct`` is boolean or 0/1.

Risk-coverage: items are sorted by confidence descending; ties keep their input order
(a stable sort), so the risk at positions inside a tie depends on that order, while the
risk at the last position of a tie does not. Coverage k/n, selective risk = errors among
the top k / k, AURC = mean of the risk over k = 1..n.

Learn then Test (Angelopoulos et al. 2021, arXiv 2110.01052) with fixed-sequence testing:
candidate thresholds are tested from strict to loose. At threshold t the n_t items with
confidence >= t are auto-accepted, e_t of them wrong, and p_t = BinomCDF(e_t; n_t, alpha)
is a valid p-value for H0 "error rate among accepted > alpha". Loosening continues while
p_t <= delta; the last threshold passed is deployed. Then P(error rate among
auto-accepted <= alpha) >= 1 - delta over the draw of the calibration items. A threshold
that accepts nothing has p = 1 and therefore stops the sequence.

Default candidates: the distinct confidence values, descending, but starting at the first
one that accepts at least m = ceil(log(delta) / log(1 - alpha)) items. A threshold
accepting fewer than m items has p >= (1 - alpha)^(m-1) > delta even with zero errors, so
it fails whatever the labels; keeping those candidates would make the sequence stop at
its first step on any data with distinct confidences. Dropping them depends on alpha,
delta and the confidences only, never on the labels. User-supplied ``thresholds`` are
tested exactly as given.

With ``clusters`` (one id per item; items of a cluster are not independent) the p-values
are the design-effect ones of ``selective_clusters``, and the default candidates start at
the first one whose accepted items would pass with no error even if every cluster erred
as one (n^2 / sum_k m_k^2 >= m, m_k the accepted items of cluster k): still labels-free.
Every item its own cluster is the unclustered test. ``cross_fit_ltt`` then splits whole
clusters between its halves, as ``metrics.cross_fit`` does for recalibrated confidences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import bdtr  # the binomial CDF (scipy.stats.binom.cdf)

from harness.metrics.clusters import cluster_codes
from harness.metrics.selective_clusters import (
    clustered_p_values,
    design_effects,
    fewest_effective_items,
    intra_cluster_correlation,
    prefix_cluster_sums,
    real_binom_cdf,
)


@dataclass(frozen=True, eq=False)
class RiskCoverage:
    """Risk-coverage curve; entry k-1 describes accepting the k most confident items."""

    coverage: np.ndarray
    risk: np.ndarray
    thresholds: np.ndarray
    aurc: float
    n: int


@dataclass(frozen=True, eq=False)
class LTTResult:
    """Learn-then-Test outcome.

    ``threshold`` is None when even the strictest candidate fails. ``thresholds_tested``
    and ``p_values`` hold the path: every candidate tested, up to and including the first
    failure (or all candidates if none fails). ``error_rate`` is nan when nothing is
    accepted.
    """

    threshold: float | None
    n_accepted: int
    errors: int
    coverage: float
    error_rate: float
    n: int
    alpha: float
    delta: float
    thresholds_tested: np.ndarray
    p_values: np.ndarray
    # With clusters: their number and the design effect at the deployed threshold.
    n_clusters: int | None = None
    design_effect: float | None = None


def _inputs(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct)
    if conf.ndim != 1 or hit.shape != conf.shape:
        raise ValueError(f"need two 1-D arrays of equal length, got {conf.shape}, {hit.shape}")
    if conf.size == 0:
        raise ValueError("need at least one item")
    if not np.all(np.isfinite(conf)):
        raise ValueError("confidence must be finite")
    if not np.all((hit == 0) | (hit == 1)):
        raise ValueError("correct must be boolean or 0/1")
    return conf, hit.astype(bool)


def _check_levels(alpha: float, delta: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> RiskCoverage:
    """Risk-coverage curve and AURC (ties broken by input order, see module doc)."""
    conf, hit = _inputs(confidence, correct)
    n = conf.size
    order = np.argsort(-conf, kind="stable")
    k = np.arange(1, n + 1)
    errors = np.cumsum(~hit[order])
    risk = errors / k
    return RiskCoverage(
        coverage=k / n,
        risk=risk,
        thresholds=conf[order],
        aurc=float(risk.mean()),
        n=int(n),
    )


def ltt_p_value(errors: int | np.ndarray, n_accepted: int | np.ndarray, alpha: float):
    """Binomial p-value BinomCDF(errors; n_accepted, alpha); 1 when nothing is accepted."""
    return bdtr(errors, n_accepted, alpha)


def min_accepted_to_pass(alpha: float, delta: float) -> int:
    """Smallest n with BinomCDF(0; n, alpha) = (1 - alpha)^n <= delta."""
    _check_levels(alpha, delta)
    m = int(np.ceil(np.log(delta) / np.log1p(-alpha)))
    # Guard against floating-point error at the boundary.
    while m > 1 and (1 - alpha) ** (m - 1) <= delta:
        m -= 1
    while (1 - alpha) ** m > delta:
        m += 1
    return max(m, 1)


def _p_values_to_first_failure(
    p_of: Callable[[slice], np.ndarray], size: int, delta: float
) -> np.ndarray:
    """``p_of`` along the path, up to its first p > delta (fixed-sequence testing stops
    there), in blocks growing by doubling: the path can be 100,000 thresholds long."""
    p = np.empty(size)
    done, block = 0, 1024
    while done < size:
        end = min(size, done + block)
        p[done:end] = p_of(slice(done, end))
        if np.any(p[done:end] > delta):
            return p[:end]
        done, block = end, block * 2
    return p


def learn_then_test(
    confidence: np.ndarray,
    correct: np.ndarray,
    alpha: float,
    delta: float,
    thresholds: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> LTTResult:
    """Loosest threshold passed by fixed-sequence testing (see module doc).

    ``thresholds`` must be non-increasing (strict to loose); default: the distinct
    confidence values, descending. ``clusters``: one id per item, or None (independent).
    """
    conf, hit = _inputs(confidence, correct)
    _check_levels(alpha, delta)
    n = conf.size
    codes = cluster_codes(clusters, n)
    # One ascending sort serves the candidates and the counts: only whole groups of tied
    # confidences are ever accepted, so the order within a tie does not matter.
    order = np.argsort(conf)
    ascending = conf[order]
    if codes is not None:
        # The items accepted at any threshold are a prefix of the descending order.
        sums = prefix_cluster_sums(codes[order[::-1]], ~hit[order[::-1]])
        rho = intra_cluster_correlation(codes, ~hit)
    if thresholds is None:
        distinct = np.concatenate([[True], ascending[1:] != ascending[:-1]])
        cand = ascending[distinct][::-1]
        m = min_accepted_to_pass(alpha, delta)
        count = n - np.searchsorted(ascending, cand, side="left")
        if codes is None:
            start = np.flatnonzero(count >= m)
        else:
            fewest = fewest_effective_items(count, sums["mm"][count])
            start = np.flatnonzero(real_binom_cdf(0.0, fewest, alpha) <= delta)
        # If no candidate reaches m items, keep the loosest so the path is not empty.
        cand = cand[start[0] :] if start.size else cand[-1:]
    else:
        cand = np.asarray(thresholds, dtype=float)
        if cand.ndim != 1 or cand.size == 0 or not np.all(np.isfinite(cand)):
            raise ValueError("thresholds must be a non-empty 1-D array of finite values")
        if np.any(np.diff(cand) > 0):
            raise ValueError("thresholds must be ordered from strict to loose (non-increasing)")

    # Items with confidence >= t are the last n_acc of the ascending order; their errors
    # are all errors minus those of the items before them.
    errors_before = np.concatenate([[0], np.cumsum(~hit[order])])
    n_acc = n - np.searchsorted(ascending, cand, side="left")
    err = errors_before[-1] - errors_before[n - n_acc]
    if codes is None:
        p = _p_values_to_first_failure(
            lambda at: ltt_p_value(err[at], n_acc[at], alpha), cand.size, delta
        )
    else:
        p = _p_values_to_first_failure(
            lambda at: clustered_p_values(
                n_acc[at], err[at], {k: v[n_acc[at]] for k, v in sums.items()}, rho, alpha
            ),
            cand.size,
            delta,
        )
    n_clusters = None if codes is None else int(codes.max()) + 1

    fails = np.flatnonzero(p > delta)
    n_pass = int(fails[0]) if fails.size else cand.size
    tested = cand[: min(n_pass + 1, cand.size)]
    path = p[: tested.size]
    if n_pass == 0:
        return LTTResult(None, 0, 0, 0.0, float("nan"), n, alpha, delta, tested, path, n_clusters)
    i = n_pass - 1
    n_a, e_a = int(n_acc[i]), int(err[i])
    deff = None
    if codes is not None:
        at = {k: v[n_a : n_a + 1] for k, v in sums.items()}
        deff = float(design_effects(n_acc[i : i + 1], err[i : i + 1], at, rho)[0])
    return LTTResult(
        threshold=float(cand[i]),
        n_accepted=n_a,
        errors=e_a,
        coverage=n_a / n,
        error_rate=e_a / n_a,
        n=n,
        alpha=alpha,
        delta=delta,
        thresholds_tested=tested,
        p_values=path,
        n_clusters=n_clusters,
        design_effect=deff,
    )


def cross_fit_ltt(
    confidence: np.ndarray,
    correct: np.ndarray,
    alpha: float,
    delta: float,
    seed: int = 0,
    fit_share: float = 0.5,
    clusters: np.ndarray | None = None,
) -> dict:
    """Fit the LTT threshold on a seeded random ``fit_share`` of items, report on the rest;
    with ``clusters``, on a ``fit_share`` of the clusters (a cluster's items stay together).

    Returns ``threshold`` (None if LTT found none), ``fit_n``, ``check_n``,
    ``check_accepted``, ``check_errors``, ``check_error_rate`` (nan if nothing accepted)
    and ``check_coverage`` (accepted / check_n).
    """
    conf, hit = _inputs(confidence, correct)
    if not 0.0 < fit_share < 1.0:
        raise ValueError(f"fit_share must be in (0, 1), got {fit_share}")
    n = conf.size
    codes = cluster_codes(clusters, n)
    units = n if codes is None else int(codes.max()) + 1
    n_fit = round(fit_share * units)
    if n_fit < 1 or n_fit > units - 1:
        what = "items" if codes is None else "clusters"
        raise ValueError(f"split of {units} {what} at share {fit_share} leaves an empty half")
    perm = np.random.default_rng(seed).permutation(units)
    if codes is None:
        fit, check = perm[:n_fit], perm[n_fit:]
    else:
        in_fit = np.isin(codes, perm[:n_fit])
        fit, check = np.flatnonzero(in_fit), np.flatnonzero(~in_fit)
    res = learn_then_test(
        conf[fit], hit[fit], alpha, delta, clusters=None if codes is None else codes[fit]
    )
    if res.threshold is None:
        accepted = np.zeros(check.size, dtype=bool)
    else:
        accepted = conf[check] >= res.threshold
    n_acc = int(accepted.sum())
    n_err = int((~hit[check][accepted]).sum())
    return {
        "threshold": res.threshold,
        "fit_n": int(fit.size),
        "check_n": int(check.size),
        "check_accepted": n_acc,
        "check_errors": n_err,
        "check_error_rate": n_err / n_acc if n_acc else float("nan"),
        "check_coverage": n_acc / check.size,
    }
