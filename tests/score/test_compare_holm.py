"""Comparing setups (harness.score.compare, statistics.md section 1): Holm on the unrounded
McNemar p-values, and the verdict decided by both the interval and the Holm-adjusted p."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import bdtr

from harness.config import CostConfig, ReportConfig
from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.metrics.compare import holm, mcnemar_exact
from harness.score.compare import compare_setups
from harness.score.decision import recommend
from harness.score.metrics_json import score_run

LABELS = ["pos", "neg"]
BOOT = {"n_boot": 2000, "seed": 3, "level": 0.95}
APART = "cannot be told apart on this gold set"


def gold(n: int) -> tuple[GoldSet, list[str]]:
    truth = ["pos" if i % 2 else "neg" for i in range(n)]
    items = tuple(
        GoldItem(id=f"i{i}", fields={"text": f"t{i}"}, annotations={"x": t, "y": t}, line=i + 1)
        for i, t in enumerate(truth)
    )
    gs = GoldSet(id="g", path="g.jsonl", items=items, annotators=("x", "y"), content_hash="0" * 64)
    return gs, truth


def labelled(setup: str, truth: list[str], wrong: set[int]) -> list[LabelRecord]:
    flip = {"pos": "neg", "neg": "pos"}
    return [
        LabelRecord(setup=setup, gold_set="g", item=f"i{i}", label=flip[t] if i in wrong else t)
        for i, t in enumerate(truth)
    ]


def test_twenty_points_apart_on_200_items_are_told_apart_through_scoring() -> None:
    # a right on 180 of 200, b on 140, b's right items a subset of a's: 40 discordant
    # pairs all one way, McNemar p = 2 * 0.5**40 ~ 2e-12, which rounds to 0.0 in the JSON.
    # Holm applied to that rounded 0.0 (read as missing, then 1.0) said "cannot be told
    # apart", and so did the recommendation.
    gs, truth = gold(200)
    a, b = Setup("a@m", "a", "m"), Setup("b@m", "b", "m")
    records = labelled("a@m", truth, set(range(20))) + labelled("b@m", truth, set(range(60)))
    metrics = score_run([gs], [a, b], records, LABELS, n_boot=500, seed=1)
    g = metrics["gold_sets"][0]
    (row,) = g["comparisons"]
    assert row["mcnemar"]["a_only_right"] == 40 and row["mcnemar"]["b_only_right"] == 0
    assert row["mcnemar"]["p_value"] == 0.0  # below 5e-7: rounded away in the JSON
    assert row["mcnemar"]["p_holm"] < 0.05
    assert row["accuracy_difference"]["estimate"] == pytest.approx(0.2)
    assert row["verdict"] == "a@m better"

    rec = recommend(g, ReportConfig(), CostConfig())
    assert (rec["recommended"], rec["runner_up"]) == ("a@m", "b@m")
    assert rec["vs_runner_up"]["can_tell_apart"] is True
    assert "cannot be told apart" not in rec["reason"]
    assert "can be told apart on this gold set (a@m better)" in rec["reason"]


def four_setups() -> dict[str, np.ndarray]:
    """100 items, reference 0/1. b, c and d give the same labels; a is right on 14 items
    where they are wrong, they on 3 where a is wrong: each of the three a-pairs has
    McNemar p = 2 * BinomCDF(3; 17, 1/2) ~ 0.013, the other three pairs p = 1."""
    ref = np.arange(100) % 2
    a, other = ref.copy(), ref.copy()
    other[:14] = 1 - ref[:14]  # a right, the others wrong
    a[14:17] = 1 - ref[14:17]  # a wrong, the others right
    a[17:30] = 1 - ref[17:30]  # both wrong: concordant, carries no information
    other[17:30] = 1 - ref[17:30]
    return ref, {"a": a, "b": other, "c": other.copy(), "d": other.copy()}


def test_holm_over_six_pairs_decides_when_raw_p_alone_would_not() -> None:
    ref, preds = four_setups()
    rows = compare_setups(ref, preds, 2, BOOT)
    raw = mcnemar_exact(preds["a"] == ref, preds["b"] == ref).p_value
    assert raw < 0.05  # alone, each a-pair would pass
    # Holm over 6 pairs: the three equal smallest p-values become 6 * p ~ 0.076.
    expected = holm([raw] * 3 + [1.0] * 3)[0]
    assert 0.05 < expected < 0.5
    for row in rows:
        if row["a"] == "a":
            # The interval alone excludes 0, so only the Holm-adjusted p can say "no".
            iv = row["accuracy_difference"]
            assert iv["low"] > 0, iv
            assert row["mcnemar"]["p_holm"] == pytest.approx(expected, abs=1e-6)
            assert row["verdict"] == APART
        else:
            assert row["mcnemar"]["p_holm"] == 1.0 and row["verdict"] == APART


def test_the_same_effect_with_two_setups_is_told_apart() -> None:
    # The counterpart of the test above: one pair, no multiplicity, the same 14 vs 3.
    ref, preds = four_setups()
    (row,) = compare_setups(ref, {"a": preds["a"], "b": preds["b"]}, 2, BOOT)
    assert row["mcnemar"]["p_holm"] < 0.05 and row["accuracy_difference"]["low"] > 0
    assert row["verdict"] == "a better"
    (row,) = compare_setups(ref, {"b": preds["b"], "a": preds["a"]}, 2, BOOT)
    assert row["verdict"] == "a better"  # the sign of the difference picks the name


def _mcnemar_p(right_a: np.ndarray, right_b: np.ndarray) -> np.ndarray:
    """McNemar's exact p along the last axis, vectorised (checked against mcnemar_exact)."""
    b = (right_a & ~right_b).sum(-1)
    c = (~right_a & right_b).sum(-1)
    return np.minimum(1.0, 2.0 * bdtr(np.minimum(b, c), b + c, 0.5))


def test_holm_keeps_the_family_wise_error_of_the_p_value_rule_at_5_percent() -> None:
    # k = 5 setups of equal true accuracy 0.80 (independent errors) on 200 items, 10 pairs.
    # The verdict needs p_holm < 0.05 AND a bootstrap interval excluding 0, so its chance
    # of naming any "better" setup is at most that of the p-value rule simulated here.
    # Printed (4,000 gold sets, seed 17): Holm 0.025, raw p 0.224; a 20-point gap (0.9 vs
    # 0.7, independent errors) on 200 items: p < 0.05 in 0.999 of 4,000 gold sets.
    # Monte Carlo SE <= 0.0035 at 0.05.
    rng = np.random.default_rng(17)
    reps, k, n = 4000, 5, 200
    right = rng.random((reps, k, n)) < 0.80
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    p = np.stack([_mcnemar_p(right[:, i], right[:, j]) for i, j in pairs], axis=1)
    for r in range(20):
        assert p[r, 0] == pytest.approx(mcnemar_exact(right[r, 0], right[r, 1]).p_value)
    fwer_holm = float(np.mean([min(holm(row)) < 0.05 for row in p]))
    fwer_raw = float(np.mean(p.min(axis=1) < 0.05))
    print(f"family-wise error, 10 pairs of equal setups: Holm {fwer_holm:.3f}, raw {fwer_raw:.3f}")
    assert fwer_holm <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)
    assert fwer_raw > 0.12  # without the correction the rule names a winner far too often

    power = float(
        np.mean(_mcnemar_p(rng.random((reps, n)) < 0.9, rng.random((reps, n)) < 0.7) < 0.05)
    )
    print(f"power, 0.9 vs 0.7 on {n} items, one pair: {power:.3f}")
    assert power > 0.98
