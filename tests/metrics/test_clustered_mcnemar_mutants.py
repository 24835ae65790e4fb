"""Durkalski's clustered McNemar test at its degenerate inputs (harness.metrics.
clustered_mcnemar; statistics.md). Mutation testing (bench/mutation.py) found both cases
untested: discordant items that cancel within every cluster, and no items at all."""

from __future__ import annotations

import math

from harness.metrics.clustered_mcnemar import mcnemar_clustered


def test_discordances_cancelling_within_every_cluster_give_no_evidence() -> None:
    # Each cluster has one item only A got right and one only B got right: b = c = 2 but
    # every cluster's excess is 0, so X^2 = 0/0. The test must report "no evidence" (nan
    # statistic, p = 1), not divide by zero.
    a = [True, False, True, False, True, True]
    b = [False, True, False, True, True, True]
    r = mcnemar_clustered(a, b, ["x", "x", "y", "y", "z", "z"])
    assert (r.b, r.c, r.n, r.n_clusters) == (2, 2, 6, 3)
    assert math.isnan(r.statistic) and r.p_value == 1.0


def test_no_items_means_no_clusters() -> None:
    r = mcnemar_clustered([], [], [])
    assert (r.b, r.c, r.n, r.n_clusters) == (0, 0, 0, 0)
    assert math.isnan(r.statistic) and r.p_value == 1.0
