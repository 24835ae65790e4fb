"""Pool prevalence (PPI, PPI++, gold-only) on a clustered gold set (issue 17 item 3;
statistics.md section 3): the gold side's variance is cluster-robust over the gold set's
clusters, the pool's items stay independent; singletons give the old figures exactly, and
the normal intervals keep their level where the independent-items variance does not.

    python -m pytest -q -s -p no:cacheprovider tests/metrics/test_ppi_clusters.py
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from harness.core.records import GoldItem, GoldSet, LabelRecord
from harness.deploy.pool_estimates import pool_prevalence
from harness.metrics.ppi import classical_mean, ppi_mean, prevalence
from harness.tasks import DEFAULT

LEVEL = 0.95
FIELDS = ("ppi", "ppi_plus_plus", "naive", "classical")


def _data(seed: int, n: int = 90, N: int = 300, k: int = 3):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, k, n)
    ref[rng.random(n) < 0.05] = -1  # no reference: dropped with its cluster id
    pred = np.where(rng.random(n) < 0.8, np.maximum(ref, 0), rng.integers(0, k, n))
    pred[rng.random(n) < 0.05] = -1
    pool = rng.integers(-1, k, N)
    return ref, pred, pool


def test_every_item_its_own_cluster_gives_the_same_figures():
    for seed in range(3):
        ref, pred, pool = _data(seed)
        plain = prevalence(ref, pred, pool, 3, LEVEL)
        ids = np.random.default_rng(seed).permutation(ref.size).astype(str)
        single = prevalence(ref, pred, pool, 3, LEVEL, clusters=ids)
        assert single == plain  # exactly: same dataclasses, same floats


def test_the_gold_variance_is_cr1_on_the_ddof0_scale():
    """Against statsmodels' cluster-robust OLS on a constant (factor G / (G - 1)): ours is
    that times (n - 1) / n, ppi_py's ddof-0 scale, so that singletons give Var(x) / n."""
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(15), rng.integers(1, 9, 15))
    n = groups.size
    y = (rng.random(n) < 0.4).astype(float)
    f = np.where(rng.random(n) < 0.8, y, 1 - y)
    fu = (rng.random(200) < 0.4).astype(float)

    def cr1(x):
        fit = sm.OLS(x, np.ones((n, 1))).fit(cov_type="cluster", cov_kwds={"groups": groups})
        return float(fit.bse[0]) ** 2 * (n - 1) / n

    got = classical_mean(y, LEVEL, clusters=groups)
    assert got.se**2 == pytest.approx(cr1(y), rel=1e-10)
    assert got.se == ppi_mean(y, f, fu, LEVEL, lam=0.0, clusters=groups).se
    ppi = ppi_mean(y, f, fu, LEVEL, clusters=groups)
    # The pool's term is the independent-items one: the pool's items are new items.
    assert ppi.se**2 == pytest.approx(cr1(y - f) + np.var(fu) / fu.size, rel=1e-10)
    assert ppi.estimate == ppi_mean(y, f, fu, LEVEL).estimate  # only the variance moves


def test_items_without_reference_drop_their_cluster_too():
    ref, pred, pool = _data(4)
    conv = np.arange(ref.size) // 3
    keep = ref >= 0
    got = prevalence(ref, pred, pool, 3, LEVEL, clusters=conv)
    again = prevalence(ref[keep], pred[keep], pool, 3, LEVEL, clusters=conv[keep])
    assert got == again
    with pytest.raises(ValueError, match="one entry per gold item"):
        prevalence(ref, pred, pool, 3, LEVEL, clusters=conv[:-1])


def test_one_gold_cluster_leaves_the_variance_unestimated():
    ref, pred, pool = _data(5)
    for row in prevalence(ref, pred, pool, 3, LEVEL, clusters=np.zeros(ref.size)):
        for est in (row.ppi, row.classical):
            assert math.isnan(est.se) and math.isnan(est.low) and math.isnan(est.high)
            assert math.isfinite(est.estimate)
        assert math.isfinite(row.naive.se)  # the pool alone: unaffected


def _ctx(clusters):
    labels = ["a", "b", "c"]
    ref, pred, _ = _data(6, n=60)
    ref = np.maximum(ref, 0)  # one annotator: every item has a reference
    items = tuple(
        GoldItem(id=f"g{i}", fields={"text": str(i)}, annotations={"x": labels[r]})
        for i, r in enumerate(ref)
    )
    by = None if clusters is None else "conv"
    gold = GoldSet("gs", "g.jsonl", items, ("x",), "0" * 64, cluster_by=by, clusters=clusters)
    records = [
        LabelRecord(setup="s", gold_set="gs", item=f"g{i}", label=labels[p] if p >= 0 else None)
        for i, p in enumerate(pred)
    ]
    task = SimpleNamespace(label_names=labels, type=DEFAULT)
    exp = SimpleNamespace(task=task, report=SimpleNamespace(reference="majority"))
    return SimpleNamespace(experiment=exp, gold_sets=[gold], records=records), ref, pred


def test_prelabel_label_uses_the_gold_sets_clusters():
    pool = np.random.default_rng(1).integers(0, 3, 100)
    ctx, ref, pred = _ctx(None)
    plain = pool_prevalence(ctx, "s", "auto", pool)
    assert "gold_clusters" not in plain
    conv = tuple(f"c{i // 6}" for i in range(60))
    ctx, ref, pred = _ctx(conv)
    got = pool_prevalence(ctx, "s", "auto", pool)
    assert "10 clusters" in got["gold_clusters"] and "conv" in got["gold_clusters"]
    want = prevalence(ref, pred, pool, 3, clusters=np.array(conv))
    for row, w in zip(got["labels"], want, strict=True):
        assert row["ppi"]["se"] == pytest.approx(w.ppi.se, abs=1e-6)
        assert row["gold_only"]["se"] == pytest.approx(w.classical.se, abs=1e-6)
        assert row["naive_llm_only"] == next(
            p["naive_llm_only"] for p in plain["labels"] if p["label"] == row["label"]
        )


def _clustered(rng, groups, n_clusters, share, p) -> np.ndarray:
    """0/1 draws with mean p; each item copies its cluster's draw with probability
    ``share`` (else draws its own): intra-cluster correlation share^2."""
    shared = (rng.random(n_clusters) < p)[groups]
    own = rng.random(groups.size) < p
    return np.where(rng.random(groups.size) < share, shared, own).astype(np.int64)


def test_coverage_on_clustered_gold_items():
    """40 conversations of 10 gold turns, ICC 0.5 in the class and in the LLM's errors
    (design effect 5.5); 2000 new pool items drawn independently. True share p = 0.3, the
    LLM errs on 20% of items. Share of intervals at 0.95 that miss p."""
    n_clusters, size, reps, N, p, err = 40, 10, 2000, 2000, 0.3, 0.2
    groups = np.repeat(np.arange(n_clusters), size)
    rng = np.random.default_rng(17)
    miss = {(c, k): 0 for c in ("items", "clusters") for k in ("ppi", "ppi++", "gold")}
    for _ in range(reps):
        y = _clustered(rng, groups, n_clusters, math.sqrt(0.5), p)
        wrong = _clustered(rng, groups, n_clusters, math.sqrt(0.5), err)
        f = np.where(wrong == 1, 1 - y, y)
        y_pool = rng.random(N) < p
        f_pool = np.where(rng.random(N) < err, ~y_pool, y_pool).astype(np.int64)
        for key, clusters in (("items", None), ("clusters", groups)):
            row = prevalence(y, f, f_pool, 2, LEVEL, clusters=clusters)[1]
            for name, est in (
                ("ppi", row.ppi),
                ("ppi++", row.ppi_plus_plus),
                ("gold", row.classical),
            ):
                miss[(key, name)] += not est.low <= p <= est.high
    rate = {k: v / reps for k, v in miss.items()}
    mc = 3 * math.sqrt(0.05 * 0.95 / reps)  # 3 Monte Carlo standard errors at 0.05
    print(
        f"\npool estimates' non-coverage at {LEVEL}, {reps} simulations, {n_clusters} gold "
        f"clusters x {size}, ICC 0.5, {N} independent pool items (+-{mc:.4f}):"
    )
    for name in ("ppi", "ppi++", "gold"):
        print(
            f"  {name}: independent-items variance {rate[('items', name)]:.4f}, "
            f"cluster-robust {rate[('clusters', name)]:.4f}"
        )
    for name in ("ppi", "ppi++", "gold"):
        # Theory for PPI: the independent-items SE is too small by about sqrt(4.6), so it
        # misses about 2 P(Z > 1.96 / 2.15) = 0.36; the gold-only one by sqrt(5.5).
        assert rate[("items", name)] > 0.2
        # A normal interval on 40 clusters still misses a little more than 5%: allowed
        # 0.03 above the level besides the Monte Carlo error.
        assert rate[("clusters", name)] < 0.05 + 0.03 + mc
