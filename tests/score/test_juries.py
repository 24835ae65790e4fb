"""Juries: the combination rules (majority, weighted, ties, failures), the out-of-fold
weights (an item's own reference never weighs its own votes), and the jury's records (cost,
agreement, failure when no member answered)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.score.juries import (
    NO_VOTE,
    SOURCE,
    add_juries,
    combine,
    fold_of,
    jury_records,
    oof_weights,
    weights_from,
)

LABELS = ["x", "y", "z"]


def gold_set(refs: list[str], gid: str = "g") -> GoldSet:
    items = tuple(
        GoldItem(id=f"i{n:02d}", fields={"text": str(n)}, annotations={"h": lab})
        for n, lab in enumerate(refs)
    )
    return GoldSet(gid, "gold.jsonl", items, ("h",), "hash")


def records(setup: str, labels: list[str | None], gid: str = "g", cost=0.001, lat=1.0):
    return [
        LabelRecord(
            setup=setup,
            gold_set=gid,
            item=f"i{n:02d}",
            label=lab,
            failure=None if lab is not None else "timeout",
            cost_usd=cost,
            latency_s=lat,
        )
        for n, lab in enumerate(labels)
    ]


def jury(jid: str, members: list[str], rule: str = "majority"):
    return SimpleNamespace(id=jid, setups=members, rule=rule)


def setups(*ids: str) -> list[Setup]:
    return [Setup(id=s, prompt_id="p", model_id=s) for s in ids]


def jury_labels(out_records, jid: str = "J") -> list[str | None]:
    return [r.label for r in out_records if r.setup == jid]


# --- the rules --------------------------------------------------------------------------------


def test_majority_is_one_vote_per_member_and_its_share_is_the_confidence():
    votes = np.array([[0, 0, 1], [2, 2, 2], [1, 0, 1]])
    pred, share = combine(votes, 3, np.ones(3), "majority")
    assert pred.tolist() == [0, 2, 1]
    assert share == pytest.approx([2 / 3, 1.0, 2 / 3])


def test_a_failed_answer_does_not_vote_and_no_answer_at_all_fails_the_item():
    votes = np.array([[0, -1, 1], [-1, -1, 2], [-1, -1, -1]])
    # Weights favour the last member, so item 0 (one vote each) goes to its label.
    pred, share = combine(votes, 3, np.array([1.0, 1.0, 2.0]), "majority")
    assert pred.tolist() == [1, 2, -1]
    assert share[:2] == pytest.approx([0.5, 1.0])  # of the voters, not of the members
    assert np.isnan(share[2])


def test_a_majority_tie_goes_to_the_most_reliable_member_then_the_first_listed():
    votes = np.array([[0, 1], [0, 1]])
    weights = np.array([[0.5, 2.0], [1.0, 1.0]])  # per item: item 1's weights are equal
    pred, _ = combine(votes, 3, weights, "majority")
    assert pred.tolist() == [1, 0]


def test_a_pairwise_tie_is_the_tie_label():
    a, b, tie = 0, 1, 2
    votes = np.array([[a, b], [a, a], [a, b]])
    weights = np.array([[1.0, 3.0], [1.0, 3.0], [3.0, 1.0]])
    pred, _ = combine(votes, 3, weights, "majority", tie_code=tie)
    assert pred.tolist() == [tie, a, tie]
    # Weighted: unequal weights decide; only an exact tie of weight (and count) is a tie.
    pred, _ = combine(votes, 3, weights, "weighted", tie_code=tie)
    assert pred.tolist() == [b, a, a]


def test_weighted_lets_one_reliable_member_outvote_two_that_err_together():
    n = 40
    ref = np.zeros(n, dtype=np.int64)
    ref[::2] = 1
    good = ref.copy()
    herd = ref.copy()
    herd[20:] = 2  # two members wrong together on half the items
    votes = np.column_stack([good, herd, herd])
    folds = fold_of(n, 5, seed=0)
    w = oof_weights(votes, ref, 3, folds)
    majority, _ = combine(votes, 3, w, "majority")
    weighted, share = combine(votes, 3, w, "weighted")
    assert (majority == ref).mean() == 0.5
    assert (weighted == ref).mean() == 1.0
    assert np.all(share[20:] > 0.5)  # the winner's share of the voters' weight


def test_the_weight_is_the_dawid_skene_log_odds_of_the_smoothed_accuracy():
    k = 3
    acc = (8 + 1) / (10 + 2)
    assert weights_from(np.array([8]), np.array([10]), k)[0] == pytest.approx(
        math.log(acc * (k - 1) / (1 - acc))
    )
    # At or below chance (1/K): no say at all, never a negative vote.
    assert weights_from(np.array([2]), np.array([10]), k)[0] == 0.0


# --- out of fold ------------------------------------------------------------------------------


def test_an_items_own_reference_never_weighs_its_own_votes():
    """Members B (listed first) and A disagree on every item; A matches the reference on
    items 0-5, B on 6-9. Weighted in-sample, moving item 0's reference to B's label makes A
    and B equally reliable, and the tie then goes to B, listed first: item 0's own gold
    label would decide item 0's vote. Out of fold, no item's label may move with its own
    reference, whichever label it is moved to."""
    n = 10
    a_says = ["x"] * n
    b_says = ["y"] * n
    ref = ["x"] * 6 + ["y"] * 4
    members = {"B": b_says, "A": a_says}
    recs = [r for s, labs in members.items() for r in records(s, labs)]
    j = [jury("J", ["B", "A"], "weighted")]

    def jury_on(refs):
        _, out, _ = add_juries(
            j, [gold_set(refs)], setups("B", "A"), recs, LABELS, "classification"
        )
        return jury_labels(out)

    base = jury_on(ref)
    changed = 0
    for i in range(n):
        for other in LABELS:
            moved = list(ref)
            moved[i] = other
            now = jury_on(moved)
            assert now[i] == base[i], f"item {i}: its own reference {other!r} moved its label"
            changed += now != base
    assert changed > 0  # moving a reference does move other folds' weights


def test_folds_are_seeded_balanced_and_keep_a_cluster_together():
    f = fold_of(23, 5, seed=3)
    assert f.tolist() == fold_of(23, 5, seed=3).tolist()
    assert sorted(np.bincount(f).tolist()) == [4, 4, 5, 5, 5]
    groups = [n // 4 for n in range(23)]
    g = fold_of(23, 5, seed=3, groups=groups)
    for c in set(groups):
        assert len({g[n] for n in range(23) if groups[n] == c}) == 1
    assert fold_of(3, 5, seed=0).max() <= 2  # fewer items than folds: one fold each


# --- the jury's records -----------------------------------------------------------------------


def test_jury_records_sum_the_members_costs_and_fail_where_nobody_answered():
    m1 = records("m1", ["x", None, None], cost=0.001, lat=1.0)
    m2 = records("m2", ["y", "z", None], cost=0.002, lat=3.0)
    pred = np.array([0, 2, -1])
    share = np.array([0.5, 1.0, np.nan])
    out = jury_records("J", "g", ["i00", "i01", "i02"], LABELS, pred, share, [m1, m2])
    assert [r.label for r in out] == ["x", "z", None]
    assert [r.failure for r in out] == [None, None, NO_VOTE]
    assert [r.cost_usd for r in out] == pytest.approx([0.003, 0.003, 0.003])
    assert [r.latency_s for r in out] == [3.0, 3.0, 3.0]  # asked side by side
    assert out[0].confidence == 0.5 and out[0].confidence_source == SOURCE
    assert all(r.cached for r in out)  # no call of its own
    unpriced = records("m3", ["x", "x", "x"], cost=None)
    out = jury_records("J", "g", ["i00"], LABELS, pred[:1], share[:1], [m1, unpriced])
    assert out[0].cost_usd is None  # one member's price unknown: the jury's too


def test_add_juries_adds_a_setup_and_records_and_the_deploy_weights():
    ref = ["x", "y", "z", "x", "y", "z"]
    recs = records("m1", ref) + records("m2", ["x"] * 6) + records("m3", [*ref[:5], None])
    j = [jury("J", ["m1", "m2", "m3"], "weighted")]
    out_setups, out, summary = add_juries(
        j, [gold_set(ref)], setups("m1", "m2", "m3"), recs, LABELS, "classification"
    )
    assert [s.id for s in out_setups] == ["m1", "m2", "m3", "J"]
    assert len(out) == len(recs) + 6
    assert jury_labels(out) == ref
    s = summary[0]
    assert s["members"] == ["m1", "m2", "m3"] and s["extra_calls"] == 0
    rows = s["gold_sets"][0]["members"]
    assert [(r["right"], r["answered"]) for r in rows] == [(6, 6), (2, 6), (5, 5)]
    assert s["deploy_weights"]["m1"] == pytest.approx(float(weights_from(6, 6, 3)))
    assert s["deploy_weights"]["m2"] == pytest.approx(float(weights_from(2, 6, 3)))
    assert s["deploy_weights"]["m2"] < s["deploy_weights"]["m3"] < s["deploy_weights"]["m1"]
    assert all(math.isfinite(w) for w in s["deploy_weights"].values())


def test_no_juries_changes_nothing():
    recs = records("m1", ["x"])
    out_setups, out, summary = add_juries([], [gold_set(["x"])], setups("m1"), recs, LABELS, "x")
    assert (out_setups, out, summary) == (setups("m1"), recs, [])
