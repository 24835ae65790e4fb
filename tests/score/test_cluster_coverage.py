"""Simulations (statistics.md section 3): items grouped ten to a cluster, correlated within
a cluster; the accuracy interval resampling clusters keeps its 95% promise, the one
resampling items does not; the clustered McNemar test keeps its level, the exact one not.

Each gold set: 20 clusters x 10 items; cluster g's items are right with probability
p_g ~ Beta with mean 0.80 and intra-cluster correlation 0.15 (a design effect of
1 + 9 x 0.15 = 2.35). The truth is the mean accuracy 0.80. Run with `-s` to see the figures:

    python -m pytest -q -s -p no:cacheprovider tests/score/test_cluster_coverage.py
"""

from __future__ import annotations

import numpy as np

from harness.metrics.clustered_mcnemar import mcnemar_clustered
from harness.metrics.compare import mcnemar_exact
from harness.metrics.intervals import accuracy_ci

# Monte Carlo SE of a coverage c: sqrt(c (1 - c) / 400), 0.013 at 0.93 and 0.021 at 0.80;
# the thresholds below sit two SE or more from the figures this seed gives.
REPLICATES = 400
CLUSTERS, SIZE, ICC, TRUTH = 20, 10, 0.15, 0.80


def coverage(seed: int = 17) -> dict[str, tuple[float, float]]:
    """Coverage and mean width of the accuracy interval with and without the clusters."""
    rng = np.random.default_rng(seed)
    concentration = (1 - ICC) / ICC  # Beta(a, b) with a + b = (1 - icc) / icc has this ICC
    p = rng.beta(TRUTH * concentration, (1 - TRUTH) * concentration, (REPLICATES, CLUSTERS))
    right = rng.random((REPLICATES, CLUSTERS, SIZE)) < p[:, :, None]
    pred = np.where(right, 0, 1).reshape(REPLICATES, -1)  # reference 0: right = predicts 0
    reference = np.zeros(CLUSTERS * SIZE, dtype=np.int64)
    groups = np.repeat(np.arange(CLUSTERS), SIZE)
    out = {}
    for name, clusters in (("clusters", groups), ("items", None)):
        ivs = [accuracy_ci(reference, row, seed=r, clusters=clusters) for r, row in enumerate(pred)]
        low, high = np.array([[iv.low, iv.high] for iv in ivs]).T
        out[name] = (float(np.mean((low <= TRUTH) & (high >= TRUTH))), float(np.mean(high - low)))
    return out


def test_cluster_bootstrap_covers_and_the_item_bootstrap_does_not():
    figures = coverage()
    for name, (cover, width) in figures.items():
        se = np.sqrt(cover * (1 - cover) / REPLICATES)
        print(
            f"resampling {name}: coverage {cover:.3f} (nominal 0.95, MC SE {se:.3f}), "
            f"mean width {width:.3f}, {REPLICATES} gold sets of {CLUSTERS}x{SIZE} items"
        )
    clustered, items = figures["clusters"][0], figures["items"][0]
    assert clustered >= 0.90
    assert items <= 0.88
    assert clustered - items >= 0.06


def rejection_rates(seed: int = 5, replicates: int = 2000) -> tuple[float, float]:
    """Share of gold sets where McNemar (exact, then clustered) finds two equally accurate
    setups different at 0.05: in 30% of the conversations one setup (either, at random)
    gets every turn right, so discordant items come in clusters."""
    rng = np.random.default_rng(seed)
    concentration = (1 - ICC) / ICC
    p = rng.beta(TRUTH * concentration, (1 - TRUTH) * concentration, (replicates, CLUSTERS))
    a = rng.random((replicates, CLUSTERS, SIZE)) < p[:, :, None]
    b = rng.random((replicates, CLUSTERS, SIZE)) < p[:, :, None]
    switch = (rng.random((replicates, CLUSTERS)) < 0.3)[:, :, None]
    favours_a = (rng.random((replicates, CLUSTERS)) < 0.5)[:, :, None]
    a, b = a | (switch & favours_a), b | (switch & ~favours_a)
    groups = np.repeat(np.arange(CLUSTERS), SIZE)
    a, b = a.reshape(replicates, -1), b.reshape(replicates, -1)
    exact = np.mean([mcnemar_exact(x, y).p_value < 0.05 for x, y in zip(a, b, strict=True)])
    clustered = np.mean(
        [mcnemar_clustered(x, y, groups).p_value < 0.05 for x, y in zip(a, b, strict=True)]
    )
    return float(exact), float(clustered)


def test_clustered_mcnemar_keeps_its_level_where_the_exact_test_does_not():
    exact, clustered = rejection_rates()
    for name, rate in (("exact", exact), ("clustered", clustered)):
        se = np.sqrt(rate * (1 - rate) / 2000)
        print(f"McNemar {name}: type I error {rate:.3f} at level 0.05 (MC SE {se:.3f})")
    assert clustered <= 0.065  # 0.05 plus three SE at 2,000 gold sets
    assert exact >= 0.08
