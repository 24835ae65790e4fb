"""Learn-then-Test p-values for clustered items (statistics.md section 3).

Items of one cluster (turns of one conversation) err together, so n accepted items carry
less information than n independent ones and BinomCDF(e; n, alpha) is too small. The
p-value here is the binomial CDF at the effective sample size of Kish (1965): with the
design effect deff at a threshold, BinomCDF(e / deff; n / deff, alpha), evaluated at real
arguments through the regularized incomplete beta I_{1-alpha}(n' - e', e' + 1).

deff at a threshold accepting n items, e of them wrong, r = e / n, with m_k accepted items
and e_k errors in cluster k (G clusters with m_k > 0): the cluster-robust variance of the
ratio r, G / (G - 1) * sum_k (e_k - r m_k)^2 / n^2, over the binomial r (1 - r) / n,
floored at 1. Where it cannot be estimated (r = 0: no errors among the accepted) it is
Kish's 1 + (m_w - 1) rho, m_w = sum_k m_k^2 / n the size-weighted mean accepted cluster
size, rho the intra-cluster correlation of the error indicator over all items (from their
own deff the same way), or rho = 1 when they have no errors or no correct item. A single
accepted cluster counts as one item (deff = n).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc


def real_binom_cdf(k: np.ndarray, n: np.ndarray, alpha: float) -> np.ndarray:
    """BinomCDF(k; n, alpha) at real 0 <= k, n; 1 where nothing is accepted or k >= n."""
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    inside = (n > 0) & (k < n)
    out = np.ones(k.shape)
    out[inside] = betainc(n[inside] - k[inside], k[inside] + 1.0, 1.0 - alpha)
    return out


def prefix_cluster_sums(clusters: np.ndarray, wrong: np.ndarray) -> dict[str, np.ndarray]:
    """For the first j items (j = 0..n, in the given order): sum_k m_k^2, sum_k e_k m_k,
    sum_k e_k^2 and the number of clusters with an item, m_k and e_k counted in the prefix."""
    n = clusters.size
    pos = np.arange(n)
    by = np.lexsort((pos, clusters))  # each cluster's items, in prefix order
    c, x = clusters[by], wrong[by].astype(float)
    first = np.concatenate([[True], c[1:] != c[:-1]])
    start = np.maximum.accumulate(np.where(first, pos, 0))
    m_before = (pos - start).astype(float)
    before = np.cumsum(x) - x  # errors before this item, in all clusters
    e_before = before - before[start]
    steps = np.empty((4, n))
    steps[0, by] = 2.0 * m_before + 1.0
    steps[1, by] = e_before + x * (m_before + 1.0)
    steps[2, by] = x * (2.0 * e_before + 1.0)
    steps[3, by] = m_before == 0
    sums = np.concatenate([np.zeros((4, 1)), np.cumsum(steps, axis=1)], axis=1)
    return {"mm": sums[0], "em": sums[1], "ee": sums[2], "g": sums[3]}


def _robust_deff(n, e, mm, em, ee, g) -> np.ndarray:
    """Cluster-robust over binomial variance of e / n (nan where not estimable)."""
    n, e, g = (np.asarray(a, dtype=float) for a in (n, e, g))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = e / n
        spread = ee - 2.0 * r * em + r * r * mm
        return g / (g - 1.0) * spread / (n * r * (1.0 - r))


def intra_cluster_correlation(clusters: np.ndarray, wrong: np.ndarray) -> float:
    """rho of the error indicator over all items from deff = 1 + (m_w - 1) rho, in [0, 1];
    1 when it cannot be estimated (no error, no correct item, or one cluster)."""
    s = prefix_cluster_sums(clusters, wrong)
    n, e = clusters.size, float(wrong.sum())
    m_w = s["mm"][-1] / n
    if e == 0 or e == n or s["g"][-1] < 2 or m_w <= 1.0:
        return 0.0 if m_w <= 1.0 else 1.0
    deff = _robust_deff(n, e, s["mm"][-1], s["em"][-1], s["ee"][-1], s["g"][-1])
    return float(np.clip((deff - 1.0) / (m_w - 1.0), 0.0, 1.0))


def design_effects(n_acc: np.ndarray, errors: np.ndarray, sums: dict, rho: float) -> np.ndarray:
    """deff per threshold; ``sums`` are the prefix sums at each threshold's n_acc."""
    n = np.maximum(np.asarray(n_acc, dtype=float), 1.0)
    deff = _robust_deff(n, errors, sums["mm"], sums["em"], sums["ee"], sums["g"])
    kish = 1.0 + (sums["mm"] / n - 1.0) * rho
    deff = np.where((np.asarray(errors) == 0) | ~np.isfinite(deff), kish, deff)
    deff = np.where(sums["g"] <= 1, n, deff)
    return np.maximum(deff, 1.0)


def clustered_p_values(
    n_acc: np.ndarray, errors: np.ndarray, sums: dict, rho: float, alpha: float
) -> np.ndarray:
    """BinomCDF(errors / deff; n_acc / deff, alpha) per threshold; 1 where n_acc = 0."""
    deff = design_effects(n_acc, errors, sums, rho)
    return real_binom_cdf(np.asarray(errors) / deff, np.asarray(n_acc) / deff, alpha)


def fewest_effective_items(n_acc: np.ndarray, mm: np.ndarray) -> np.ndarray:
    """n^2 / sum_k m_k^2: the effective sample size at rho = 1 with no error."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_acc > 0, np.asarray(n_acc, dtype=float) ** 2 / mm, 0.0)
