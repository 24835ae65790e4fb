"""Dawid-Skene annotator accuracy on clustered items (statistics.md sections 3 and 6): the
binomial part of the interval's variance becomes the cluster-robust variance of the
annotator's accuracy (never below the binomial one). Clusters of m identical items carry
the information of one item each, so the interval widens by about sqrt(m); without clusters
nothing changes. Run with `-s` to see the coverage simulation's figures:

    python -m pytest -q -s -p no:cacheprovider tests/score/test_dawid_skene_clusters.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.core.records import GoldItem, GoldSet
from harness.metrics.dawid_skene import accuracy_interval, clustered_variance, dawid_skene
from harness.score.predictions import CodedGoldSet
from harness.score.reference import humans_block, llm_block

LABELS = ["a", "b", "c"]
ANNOTATORS = ("x", "y", "z", "w")
SIZE = 9


def ratings(rng: np.random.Generator, n: int, acc: np.ndarray) -> np.ndarray:
    """Truth uniform over 3 classes; annotator j right with probability acc[j] (or per row,
    acc of shape (n, annotators)), else one of the two other labels."""
    z = rng.integers(0, 3, n)
    wrong = (z[:, None] + rng.integers(1, 3, (n, acc.shape[-1]))) % 3
    return np.where(rng.random((n, acc.shape[-1])) < acc, z[:, None], wrong)


def coded(r: np.ndarray, clusters: np.ndarray | None) -> CodedGoldSet:
    items = tuple(
        GoldItem(
            id=f"i{i}",
            fields={"text": f"t{i}"},
            annotations={name: LABELS[code] for name, code in zip(ANNOTATORS, row, strict=True)},
            line=i + 1,
        )
        for i, row in enumerate(r)
    )
    gold = GoldSet(
        id="g",
        path="g.jsonl",
        items=items,
        annotators=ANNOTATORS,
        content_hash="0" * 64,
        cluster_by=None if clusters is None else "meta.doc",
        clusters=None if clusters is None else tuple(f"d{g}" for g in clusters),
    )
    return CodedGoldSet(gold, LABELS)


def widths(block: dict) -> np.ndarray:
    return np.array([a["accuracy"]["high"] - a["accuracy"]["low"] for a in block["annotators"]])


def test_identical_items_in_a_cluster_widen_the_interval_by_about_sqrt_size():
    rng = np.random.default_rng(4)
    both = np.repeat(ratings(rng, 50, np.array([0.9, 0.8, 0.7, 0.6, 0.75])), SIZE, axis=0)
    r, pred = both[:, :4], both[:, 4]  # four annotators; a setup 0.75 right
    groups = np.repeat(np.arange(50), SIZE)
    plain, clustered = humans_block(coded(r, None), 0.95), humans_block(coded(r, groups), 0.95)
    ratio = widths(clustered) / widths(plain)
    print("width ratios", np.round(ratio, 2))
    assert np.all(ratio > 0.8 * math.sqrt(SIZE)) and np.all(ratio < 1.1 * math.sqrt(SIZE))
    for p, c in zip(plain["annotators"], clustered["annotators"], strict=True):
        assert p["accuracy"]["estimate"] == c["accuracy"]["estimate"]
    # The setup as one more annotator gets the same treatment.
    llm = [llm_block(coded(r, g), pred, 0.95)["accuracy"] for g in (None, groups)]
    ratio = (llm[1]["high"] - llm[1]["low"]) / (llm[0]["high"] - llm[0]["low"])
    assert 0.8 * math.sqrt(SIZE) < ratio < 1.1 * math.sqrt(SIZE)


def test_every_item_its_own_cluster_is_the_binomial_variance_and_none_is_unchanged():
    rng = np.random.default_rng(5)
    fit = dawid_skene(ratings(rng, 80, np.array([0.9, 0.8, 0.7, 0.6])), 3)
    p = fit.posterior.max(axis=1)
    a, n = p.mean(), p.size
    assert clustered_variance(p, np.arange(n)) == pytest.approx(a * (1 - a) / (n - 1))
    assert math.isnan(clustered_variance(p, np.zeros(n)))  # one cluster: not measured
    args = (float(fit.correct[1]), int(fit.n_rated[1]), float(fit.uncertainty[1]))
    base = accuracy_interval(*args)
    # Bit-identical without clusters, with one cluster (nan) or a smaller variance.
    for var in (None, float("nan"), 0.0, 1e-9):
        assert accuracy_interval(*args, 0.95, var) == base
    wider = accuracy_interval(*args, 0.95, 0.01)
    assert wider[0] == base[0] and wider[1] < base[1] and wider[2] > base[2]


def test_degenerate_clusterings_stay_finite():
    rng = np.random.default_rng(6)
    r = ratings(rng, 30, np.array([0.9, 0.8, 0.7, 0.6]))
    r[:, 3] = -1
    r[:3, 3] = 0  # w rated three items, all in cluster 0 below
    for groups in (np.zeros(30, dtype=int), np.arange(30), np.repeat(np.arange(3), 10)):
        block = humans_block(coded(r, groups), 0.95)
        for row in block["annotators"]:
            acc = row["accuracy"]
            assert all(math.isfinite(acc[k]) for k in ("estimate", "low", "high"))
            assert acc["low"] <= acc["estimate"] <= acc["high"]


def coverage(seed: int = 8, sets: int = 300, clusters: int = 30, size: int = 6):
    """Five annotators on clusters that are easy or hard for all of them at once (a fair
    coin per cluster): in an easy cluster annotator j is right with acc[j] + delta[j], in a
    hard one acc[j] - delta[j], so acc[j] is their population accuracy. Coverage of acc[j]
    by the 95% interval, with and without the clusters."""
    rng = np.random.default_rng(seed)
    acc = np.array([0.9, 0.85, 0.8, 0.75, 0.7])
    delta = np.minimum(0.98 - acc, acc - 0.45)
    groups = np.repeat(np.arange(clusters), size)
    hits = {"clusters": [], "items": []}
    for _ in range(sets):
        sign = np.repeat(rng.choice([-1.0, 1.0], clusters), size)
        r = ratings(rng, clusters * size, acc + sign[:, None] * delta)
        fit = dawid_skene(r, 3)
        for j in range(acc.size):
            right = fit.posterior[np.arange(r.shape[0]), r[:, j]]
            args = (float(fit.correct[j]), int(fit.n_rated[j]), float(fit.uncertainty[j]))
            for name, var in (("clusters", clustered_variance(right, groups)), ("items", None)):
                _, low, high = accuracy_interval(*args, 0.95, var)
                hits[name].append(low <= acc[j] <= high)
    return {name: float(np.mean(h)) for name, h in hits.items()}, len(hits["items"])


def test_coverage_under_clustering():
    figures, n = coverage()
    for name, cover in figures.items():
        se = math.sqrt(cover * (1 - cover) / n)
        print(f"Dawid-Skene accuracy, {name}: coverage {cover:.3f} of {n} (MC SE {se:.3f})")
    assert figures["clusters"] >= 0.88
    assert figures["clusters"] - figures["items"] >= 0.08
