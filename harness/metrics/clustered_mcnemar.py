"""McNemar's test for clustered matched pairs (Durkalski, Palesch, Lipsitz & Rust 2003,
"Analysis of clustered matched-pair data", Statistics in Medicine 22:2417-2428).

McNemar's test counts discordant items as independent Bernoulli trials. Items that come
in clusters (turns of one conversation) are not: a setup that misreads one turn tends to
misread its neighbours, and the exact test's p-value is then too small. Durkalski's
statistic sums the discordance per cluster first,

    X^2 = (sum_k (b_k - c_k))^2 / sum_k (b_k - c_k)^2,

(b_k = items of cluster k that A gets right and B wrong, c_k the reverse), which is
chi-square with one degree of freedom under the null for many clusters. With one item
per cluster it is McNemar's statistic without continuity correction, (b - c)^2 / (b + c).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import chdtrc  # no scipy.stats: it costs every CLI start 0.45 s

from .compare import _as_bool_vector


@dataclass(frozen=True)
class ClusteredMcNemar:
    """``b``, ``c``, ``n`` as in ``compare.McNemar``; ``statistic`` = Durkalski's X^2
    (nan without discordant items), ``p_value`` its chi-square(1) upper tail (1.0 without
    discordant items: no evidence either way), ``n_clusters`` the clusters compared."""

    b: int
    c: int
    n: int
    n_clusters: int
    statistic: float
    p_value: float


def mcnemar_clustered(
    correct_a: np.ndarray | Sequence[bool],
    correct_b: np.ndarray | Sequence[bool],
    clusters: np.ndarray | Sequence[object],
) -> ClusteredMcNemar:
    """Durkalski's clustered McNemar test on per-item correctness of A and B (same items,
    same order); ``clusters[i]`` (any labels) is item i's cluster."""
    a = _as_bool_vector(correct_a, "correct_a")
    bb = _as_bool_vector(correct_b, "correct_b")
    group = np.asarray(clusters)
    if a.shape != bb.shape or group.shape != a.shape:
        raise ValueError(
            f"correct_a, correct_b and clusters differ in length: {a.shape}, {bb.shape}, "
            f"{group.shape}"
        )
    codes = np.unique(group, return_inverse=True)[1].ravel()
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    # Per cluster: items A alone got right minus items B alone got right.
    excess = np.bincount(codes, weights=a.astype(float) - bb.astype(float), minlength=n_clusters)
    b = int(np.count_nonzero(a & ~bb))
    c = int(np.count_nonzero(~a & bb))
    denominator = float(np.sum(excess**2))
    if b + c == 0 or denominator == 0.0:
        return ClusteredMcNemar(b, c, int(a.size), n_clusters, float("nan"), 1.0)
    statistic = float(np.sum(excess)) ** 2 / denominator
    p = float(chdtrc(1.0, statistic))
    return ClusteredMcNemar(b, c, int(a.size), n_clusters, statistic, min(1.0, p))
