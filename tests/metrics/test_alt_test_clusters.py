"""The Alternative Annotator Test on clustered gold items (issue 17 item 3; statistics.md
section 3): each annotator's one-sided t-test uses the cluster-robust (CR1) standard error
with G - 1 degrees of freedom, which keeps its type-I error near the level where the
ordinary t-test, treating the turns of one conversation as independent, does not.

    python -m pytest -q -s -p no:cacheprovider tests/metrics/test_alt_test_clusters.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics.alt_test import alt_test, one_sided_t_test

ALPHA = 0.05


def _panel(seed: int, n: int = 120, m: int = 4, k: int = 3):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    ratings = np.where(rng.random((n, m)) < 0.3, rng.integers(0, k, (n, m)), truth[:, None])
    ratings[rng.random((n, m)) < 0.2] = -1
    llm = np.where(rng.random(n) < 0.85, truth, rng.integers(0, k, n))
    llm[rng.random(n) < 0.1] = -1
    return ratings, llm


def test_every_item_its_own_cluster_is_the_t_test():
    rng = np.random.default_rng(0)
    for n in (2, 3, 30, 200):
        for eps in (0.0, 0.1, 0.2):
            d = rng.integers(-1, 2, n).astype(float)
            if np.all(d == d[0]):
                d[0] = d[0] - 1 if d[0] > -1 else 1
            t, p = one_sided_t_test(d, eps)
            ids = rng.permutation(n).astype(str)  # any ids, in any order
            t_c, p_c = one_sided_t_test(d, eps, ids)
            assert t_c == pytest.approx(t, rel=1e-12, abs=1e-12)
            assert p_c == pytest.approx(p, rel=1e-12, abs=1e-12)
    for seed in range(3):
        ratings, llm = _panel(seed)
        plain = alt_test(ratings, llm, 3, epsilon=0.15)
        single = alt_test(ratings, llm, 3, epsilon=0.15, clusters=np.arange(len(llm)))
        assert single.clustered and not plain.clustered
        for a, b in zip(plain.per_annotator, single.per_annotator, strict=True):
            assert b.n_clusters == b.n and a.n_clusters is None
            assert b.t == pytest.approx(a.t, rel=1e-12, abs=1e-12)
            assert b.p_value == pytest.approx(a.p_value, rel=1e-12, abs=1e-12)
            assert b.p_by == pytest.approx(a.p_by, rel=1e-12, abs=1e-12)
            assert b.rejected == a.rejected
        assert single.winning_rate == plain.winning_rate


def test_the_standard_error_is_cr1_with_g_minus_1_df():
    """Against statsmodels' OLS of d on a constant with cluster-robust covariance (its
    small-sample factor is G / (G - 1) (n - 1) / (n - 1) = G / (G - 1)) and t_{G-1}."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(12), rng.integers(1, 8, 12))
    d = rng.integers(-1, 2, groups.size).astype(float)
    eps = 0.1
    fit = sm.OLS(d - eps, np.ones((d.size, 1))).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "df_correction": True}, use_t=True
    )
    t, p = one_sided_t_test(d, eps, groups)
    assert t == pytest.approx(float(fit.tvalues[0]), rel=1e-10)
    assert fit.df_resid_inference == 11
    # statsmodels' p is two-sided: the one-sided "less" p is half of it for t < 0.
    two_sided = float(fit.pvalues[0])
    assert p == pytest.approx(two_sided / 2 if t < 0 else 1 - two_sided / 2, rel=1e-9)


def test_alt_test_gives_each_annotator_the_clusters_of_its_items():
    ratings, llm = _panel(5, n=150)
    conv = np.arange(150) // 5  # 30 conversations of 5 turns
    got = alt_test(ratings, llm, 3, epsilon=0.1, clusters=conv.astype(str))
    plain = alt_test(ratings, llm, 3, epsilon=0.1)
    assert got.clustered
    for row, base in zip(got.per_annotator, plain.per_annotator, strict=True):
        j = row.annotator
        others = (ratings >= 0).sum(axis=1) - (ratings[:, j] >= 0)
        items = (ratings[:, j] >= 0) & (others > 0)
        assert row.n == items.sum() == base.n
        assert row.n_clusters == np.unique(conv[items]).size
        # Same d, same mean: only the standard error and the df change.
        assert row.mean_difference == base.mean_difference
        d = _nominal_d(ratings, llm, j, items)
        assert (row.t, row.p_value) == one_sided_t_test(d, 0.1, conv[items])
    with pytest.raises(ValueError, match="one entry per item"):
        alt_test(ratings, llm, 3, epsilon=0.1, clusters=conv[:-1])


def _nominal_d(ratings, llm, j, items) -> np.ndarray:
    """d_i = W_h - W_f written out for nominal scoring: the loss is the number of other
    annotators who disagree, all of them for a failed LLM answer."""
    out = []
    for i in np.nonzero(items)[0]:
        rest = [x for k, x in enumerate(ratings[i]) if k != j and x >= 0]
        loss_h = sum(x != ratings[i, j] for x in rest)
        loss_f = len(rest) if llm[i] < 0 else sum(x != llm[i] for x in rest)
        out.append(int(loss_h <= loss_f) - int(loss_f <= loss_h))
    return np.array(out, dtype=float)


def test_degenerate_clusterings_give_finite_answers():
    # One cluster: no degree of freedom, nothing is shown (p = 1), whatever the d.
    assert _nan_one(one_sided_t_test(np.array([-1.0, 0.0, 1.0, -1.0]), 0.1, np.zeros(4)))
    assert _nan_one(one_sided_t_test(np.full(5, -1.0), 0.1, np.zeros(5)))
    # All d equal: the mean decides, as without clusters.
    assert one_sided_t_test(np.full(6, -1.0), 0.1, np.arange(6) // 2) == (-math.inf, 0.0)
    assert one_sided_t_test(np.full(6, 1.0), 0.1, np.arange(6) // 2) == (math.inf, 1.0)
    # d varies, but every cluster's mean is the overall mean: zero cluster-robust variance.
    t, p = one_sided_t_test(np.array([-1.0, 1.0, 1.0, -1.0]), 0.1, np.array([0, 0, 1, 1]))
    assert (t, p) == (-math.inf, 0.0)


def _nan_one(tp: tuple[float, float]) -> bool:
    return math.isnan(tp[0]) and tp[1] == 1.0


def _clustered_d(rng, groups: np.ndarray, n_clusters: int, share: float) -> np.ndarray:
    """d in {-1, 0, 1} with P = (0.2, 0.5, 0.3), mean 0.1. Each item copies its cluster's
    draw with probability ``share`` (else draws its own), so two items of one cluster
    correlate share^2: the intra-cluster correlation."""
    vals, probs = np.array([-1.0, 0.0, 1.0]), [0.2, 0.5, 0.3]
    shared = rng.choice(vals, size=n_clusters, p=probs)[groups]
    own = rng.choice(vals, size=groups.size, p=probs)
    return np.where(rng.random(groups.size) < share, shared, own)


def test_type_one_error_on_clustered_items():
    """40 conversations of 10 turns, ICC 0.5 (design effect 1 + 9 * 0.5 = 5.5), mean d at
    the null's boundary epsilon = 0.1: the share of samples where H0 is rejected at 0.05."""
    n_clusters, size, reps, eps = 40, 10, 4000, 0.1
    groups = np.repeat(np.arange(n_clusters), size)
    rng = np.random.default_rng(2024)
    rejected = {"t-test": 0, "clustered": 0}
    for _ in range(reps):
        d = _clustered_d(rng, groups, n_clusters, math.sqrt(0.5))
        rejected["t-test"] += one_sided_t_test(d, eps)[1] <= ALPHA
        rejected["clustered"] += one_sided_t_test(d, eps, groups)[1] <= ALPHA
    rate = {k: v / reps for k, v in rejected.items()}
    mc = 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)  # 3 Monte Carlo standard errors
    print(
        f"\nalt-test type-I error at {ALPHA}, {reps} simulations of {n_clusters} clusters x "
        f"{size} items, ICC 0.5: t-test {rate['t-test']:.4f}, "
        f"cluster-robust {rate['clustered']:.4f} (+-{mc:.4f})"
    )
    # Theory: the t-test's SE is too small by sqrt(5.5), so it rejects about
    # P(Z < -1.645 / 2.35) = 0.24; the clustered test about 0.05.
    assert rate["t-test"] > 0.15
    assert ALPHA - mc - 0.01 < rate["clustered"] < ALPHA + mc + 0.005
