"""Comparing two setups on a clustered gold set (harness.score.compare, statistics.md
sections 1 and 3): the comparison row carries Durkalski's clustered McNemar test, and its
counts and p-value are those of the cluster-level discordance formula worked out by hand
here, X^2 = (sum_k d_k)^2 / sum_k d_k^2 with d_k = b_k - c_k, p = P(chi2_1 > X^2) =
erfc(sqrt(X^2 / 2)). Mutation testing (statistics.md section 9) found that the tests
elsewhere only checked which test was named and that its p-value was larger than the exact
one, so reading setup A's wrong items as its right ones went unnoticed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.metrics.compare import mcnemar_exact
from harness.score.compare import compare_setups
from harness.score.metrics_json import score_run

LABELS = ["pos", "neg"]
BOOT = {"n_boot": 300, "seed": 5, "level": 0.95}
APART = "cannot be told apart on this gold set"

# Per conversation, per item: (A right, B right). b_k counts (1, 0), c_k counts (0, 1).
CONVERSATIONS = {
    "c0": [(1, 0), (1, 0), (1, 0), (1, 1)],  # d = 3 - 0 = 3
    "c1": [(1, 0), (1, 0), (0, 0)],  # d = 2
    "c2": [(0, 1), (1, 1), (1, 1)],  # d = -1
    "c3": [(1, 0), (0, 1), (1, 1), (0, 0)],  # d = 1 - 1 = 0
    "c4": [(1, 0), (1, 0)],  # d = 2
    "c5": [(1, 0), (1, 0), (0, 1)],  # d = 2 - 1 = 1
}
# b = 3+2+0+1+2+2 = 10, c = 0+0+1+1+0+1 = 3; sum d = 7, sum d^2 = 9+4+1+0+4+1 = 19.
B, C, X2 = 10, 3, 49 / 19
P_CLUSTERED = math.erfc(math.sqrt(X2 / 2))  # chi-square(1) upper tail, about 0.108
# What the exact test on 10 vs 3 independent items would say: 2 * P(Bin(13, 1/2) <= 3).
P_EXACT = 2 * (1 + 13 + 78 + 286) / 2**13  # about 0.092


def coded() -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Reference codes (alternating 0/1), both setups' predictions, cluster codes; plus one
    item of c2 without a reference (not annotated) where A failed (-1) and B answered:
    scored, it would read as A right and B wrong, one more discordant pair in c2."""
    ref, pa, pb, groups = [], [], [], []
    for k, (conv, items) in enumerate(CONVERSATIONS.items()):
        for a_right, b_right in items:
            r = len(ref) % 2
            ref.append(r)
            pa.append(r if a_right else 1 - r)
            pb.append(r if b_right else 1 - r)
            groups.append(k)
        if conv == "c2":
            ref.append(-1)
            pa.append(-1)
            pb.append(0)
            groups.append(k)
    return (
        np.array(ref),
        {"A": np.array(pa), "B": np.array(pb)},
        np.array(groups),
    )


def test_the_hand_computation_is_not_the_exact_test() -> None:
    # The expectation must tell the two tests apart, or the check below proves nothing.
    ref, preds, _ = coded()
    keep = ref >= 0
    exact = mcnemar_exact(preds["A"][keep] == ref[keep], preds["B"][keep] == ref[keep])
    assert (exact.b, exact.c) == (B, C) and exact.p_value == pytest.approx(P_EXACT)
    assert abs(P_CLUSTERED - P_EXACT) > 0.01


def test_a_clustered_comparison_is_durkalskis_test_on_cluster_discordance() -> None:
    ref, preds, groups = coded()
    (row,) = compare_setups(ref, preds, 2, BOOT, clusters=groups)
    mc = row["mcnemar"]
    assert row["n"] == 19  # the item without a reference is not compared
    assert (mc["a_only_right"], mc["b_only_right"]) == (B, C)
    assert mc["test"] == "clustered McNemar (Durkalski et al. 2003)"
    assert mc["n_clusters"] == len(CONVERSATIONS)
    assert mc["p_value"] == pytest.approx(P_CLUSTERED, abs=1e-6)
    assert mc["p_holm"] == pytest.approx(P_CLUSTERED, abs=1e-6)  # one pair: Holm is p
    assert row["verdict"] == APART  # p ~ 0.108: not below 0.05
    # The same items without clusters: the exact test on the same counts.
    (plain,) = compare_setups(ref, preds, 2, BOOT)
    assert plain["mcnemar"]["test"] == "exact"
    assert plain["mcnemar"]["p_value"] == pytest.approx(P_EXACT, abs=1e-6)


def test_scoring_a_gold_set_with_cluster_by_reports_the_same_test() -> None:
    ref, preds, groups = coded()
    names = list(CONVERSATIONS)
    items, records = [], []
    for i, r in enumerate(ref):
        # No reference: an item nobody has annotated yet.
        annotations = {"x": LABELS[r], "y": LABELS[r]} if r >= 0 else {}
        items.append(
            GoldItem(id=f"i{i}", fields={"text": f"t{i}"}, annotations=annotations, line=i + 1)
        )
        for sid in ("A", "B"):
            p = preds[sid][i]
            records.append(
                LabelRecord(
                    setup=sid,
                    gold_set="g",
                    item=f"i{i}",
                    label=LABELS[p] if p >= 0 else None,
                    failure="timeout" if p < 0 else None,
                )
            )
    gold = GoldSet(
        id="g",
        path="g.jsonl",
        items=tuple(items),
        annotators=("x", "y"),
        content_hash="0" * 64,
        cluster_by="meta.conv",
        clusters=tuple(names[g] for g in groups),
    )
    setups = [Setup("A", "pa", "m"), Setup("B", "pb", "m")]
    metrics = score_run([gold], setups, records, LABELS, n_boot=100, seed=1)
    (row,) = metrics["gold_sets"][0]["comparisons"]
    mc = row["mcnemar"]
    assert (row["a"], row["b"], row["n"]) == ("A", "B", 19)
    assert (mc["a_only_right"], mc["b_only_right"]) == (B, C)
    assert mc["test"].startswith("clustered McNemar") and mc["n_clusters"] == 6
    assert mc["p_value"] == pytest.approx(P_CLUSTERED, abs=1e-6)
