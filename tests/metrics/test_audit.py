"""Production audit of routed pre-labels: Wilson / Newcombe intervals, drift flags."""

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from harness.metrics.audit import (
    EvaluationEstimate,
    audit,
    clopper_pearson_interval,
    newcombe_difference,
    proportion,
    wilson_interval,
)
from harness.metrics.selective import learn_then_test


def test_wilson_hand_computed():
    # 8 of 10, z = 1.959964, z^2 = 3.841459: shrink = 1 + z^2/10 = 1.3841459;
    # center = (0.8 + z^2/20) / shrink = 0.9920729 / 1.3841459 = 0.716740;
    # half = z / shrink * sqrt(0.8*0.2/10 + z^2/400) = 1.416007 * 0.160011 = 0.226577;
    # -> [0.490163, 0.943318].
    w = wilson_interval(8, 10)
    assert (w.estimate, w.count, w.n, w.method) == (0.8, 8, 10, "wilson")
    assert w.low == pytest.approx(0.490163, abs=1e-6)
    assert w.high == pytest.approx(0.943318, abs=1e-6)
    assert (w.low, w.high) == pytest.approx(proportion_confint(8, 10, method="wilson"))


@pytest.mark.parametrize("count,n", [(0, 10), (10, 10), (2, 20), (37, 91), (1, 1000)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_and_clopper_pearson_match_statsmodels(count, n, level):
    alpha = 1 - level
    w = wilson_interval(count, n, level)
    assert (w.low, w.high) == pytest.approx(
        proportion_confint(count, n, alpha=alpha, method="wilson"), abs=1e-12
    )
    cp = clopper_pearson_interval(count, n, level)
    assert (cp.low, cp.high) == pytest.approx(
        proportion_confint(count, n, alpha=alpha, method="beta"), abs=1e-12
    )
    assert proportion(count, n, level, "clopper-pearson") == cp


def test_empty_proportion_is_nan_with_n_zero():
    for p in (wilson_interval(0, 0), clopper_pearson_interval(0, 0)):
        assert math.isnan(p.estimate) and math.isnan(p.low) and p.n == 0
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match="method"):
        proportion(1, 2, method="wald")


def test_newcombe_hand_computed():
    # Newcombe (1998), example (a): 56/70 - 48/80 = 0.2, method 10 gives 0.0524 to 0.3339.
    # Wilson: 56/70 -> [0.691834, 0.876953], 48/80 -> [0.490455, 0.700382];
    # low = 0.2 - sqrt((0.8 - 0.691834)^2 + (0.700382 - 0.6)^2) = 0.2 - 0.147569 = 0.052431;
    # high = 0.2 + sqrt((0.876953 - 0.8)^2 + (0.6 - 0.490455)^2) = 0.2 + 0.133873 = 0.333873.
    d = newcombe_difference(56, 70, 48, 80)
    assert d.estimate == pytest.approx(0.2)
    assert d.low == pytest.approx(0.052431, abs=1e-6)
    assert d.high == pytest.approx(0.333873, abs=1e-6)
    assert (d.n1, d.n2) == (70, 80)


@pytest.mark.parametrize(
    "c1,n1,c2,n2", [(56, 70, 48, 80), (0, 10, 5, 10), (10, 10, 0, 7), (3, 50, 1, 200)]
)
def test_newcombe_matches_statsmodels(c1, n1, c2, n2):
    d = newcombe_difference(c1, n1, c2, n2)
    ref = confint_proportions_2indep(c1, n1, c2, n2, method="newcomb", compare="diff")
    assert (d.low, d.high) == pytest.approx(tuple(map(float, ref)), abs=1e-12)
    assert math.isnan(newcombe_difference(1, 2, 0, 0).low)


def _items(rows):
    """rows: (pre, human, route, blind, count) -> the four audit arrays."""
    pre, human, route, blind = [], [], [], []
    for p, h, r, b, k in rows:
        pre += [p] * k
        human += [h] * k
        route += [r] * k
        blind += [b] * k
    return np.array(pre), np.array(human), np.array(route), np.array(blind)


# Two classes. Review route, shown the pre-label: class 0 8 kept + 2 corrected, class 1
# 5 kept, one failed pre-label a human labelled (a correction, no class), 2 pending.
# Accepted: 50 not reviewed, blind 20 (class 0: 10 right + 2 wrong; class 1: 8 right),
# 1 blind pending. 3 blind review-route items (left out of every rate).
BASE = [
    (0, 0, "review", False, 8),
    (0, 1, "review", False, 2),
    (1, 1, "review", False, 5),
    (-1, 1, "review", False, 1),
    (0, -1, "review", False, 2),
    (0, -1, "accept", False, 30),
    (1, -1, "accept", False, 20),
    (0, 0, "accept", True, 10),
    (0, 1, "accept", True, 2),
    (1, 1, "accept", True, 8),
    (1, -1, "accept", True, 1),
    (0, 0, "review", True, 3),
]


def test_rates_overall_and_per_class():
    res = audit(*_items(BASE), n_classes=3)
    assert res.n_items == 92
    assert (res.accept_share.count, res.accept_share.n) == (71, 92)
    # Acceptance: 13 kept of 16 shown (8 + 2 + 5 + 1); correction 3 of 16.
    assert (res.acceptance.count, res.acceptance.n) == (13, 16)
    assert (res.correction.count, res.correction.n) == (3, 16)
    assert (res.acceptance.low, res.acceptance.high) == pytest.approx(
        proportion_confint(13, 16, method="wilson")
    )
    assert (res.realised_error.count, res.realised_error.n) == (2, 20)
    assert res.realised_error.low == pytest.approx(0.027866, abs=1e-6)
    assert (res.n_review_pending, res.n_blind_pending, res.n_blind_review) == (2, 1, 3)
    c0, c1, c2 = res.per_class
    assert (c0.n_items, c0.n_accepted) == (57, 42)
    assert (c0.acceptance.count, c0.acceptance.n) == (8, 10)
    assert (c0.correction.count, c0.correction.n) == (2, 10)
    assert (c0.realised_error.count, c0.realised_error.n) == (2, 12)
    assert (c1.acceptance.count, c1.acceptance.n) == (5, 5)
    assert (c1.realised_error.count, c1.realised_error.n) == (0, 8)
    assert c1.realised_error.low == 0.0 and c1.realised_error.high > 0.2  # not [0, 0]
    # An empty class: n = 0 and nan everywhere, not 0.
    assert c2.n_items == 0 and c2.acceptance.n == 0 and math.isnan(c2.acceptance.estimate)
    assert math.isnan(c2.realised_error.estimate)
    # No evaluation: figures, but drift not assessed.
    assert res.drift is None and res.above_target is None
    assert any("drift not assessed" in note for note in res.notes)
    assert any("1 blind items" in note for note in res.notes)


def test_classes_by_human_label_and_clopper_pearson():
    pre, human, route, blind = _items(BASE)
    res = audit(pre, human, route, blind, 2, classes=human, method="clopper-pearson")
    # By human label, the 2 blind errors (pre 0, human 1) sit in class 1.
    assert (res.per_class[1].realised_error.count, res.per_class[1].realised_error.n) == (2, 10)
    assert res.realised_error.method == "clopper-pearson"
    assert (res.realised_error.low, res.realised_error.high) == pytest.approx(
        proportion_confint(2, 20, method="beta")
    )


def test_no_drift():
    # Realised 2/20 (Wilson [0.028, 0.301]) vs alpha 0.1 and gold 5/100 wrong: neither
    # interval excludes the promise (agreement 0.90 - 0.95 = -0.05, [-0.253, 0.045]).
    res = audit(*_items(BASE), n_classes=2, evaluation=EvaluationEstimate(0.1, 5, 100))
    assert res.above_target is False and res.above_evaluation is False
    assert res.drift is False
    d = res.agreement_difference
    assert (d.count1, d.n1, d.count2, d.n2) == (18, 20, 95, 100)
    assert d.estimate == pytest.approx(-0.05)
    assert d.low == pytest.approx(-0.253038, abs=1e-6)
    assert d.high == pytest.approx(0.044955, abs=1e-6)


def test_drift_above_target():
    # 12 of 40 blind accepted items wrong: Wilson [0.181, 0.454] lies above alpha 0.1.
    rows = [(0, 0, "accept", True, 28), (0, 1, "accept", True, 12)]
    res = audit(*_items(rows), n_classes=2, evaluation=EvaluationEstimate(0.1, 5, 100))
    assert res.realised_error.low == pytest.approx(0.180748, abs=1e-6)
    assert res.above_target is True and res.drift is True
    assert any("above the target" in note for note in res.notes)


def test_drift_above_evaluation_only():
    # 12/100 wrong (Wilson [0.070, 0.198]) is within alpha 0.2, but the gold set had 2/200
    # wrong: agreement 0.88 vs 0.99, Newcombe [-0.188, -0.054] lies below 0.
    rows = [(1, 1, "accept", True, 88), (1, 0, "accept", True, 12)]
    res = audit(*_items(rows), n_classes=2, evaluation=EvaluationEstimate(0.2, 2, 200))
    assert res.above_target is False
    assert res.above_evaluation is True and res.drift is True
    assert res.agreement_difference.high == pytest.approx(-0.053767, abs=1e-6)


def test_no_blind_sample_is_unknown_not_zero():
    rows = [(0, 0, "review", False, 5), (0, -1, "accept", False, 40)]
    res = audit(*_items(rows), n_classes=2, evaluation=EvaluationEstimate(0.1, 5, 100))
    assert res.realised_error.n == 0
    assert math.isnan(res.realised_error.estimate) and math.isnan(res.realised_error.high)
    assert res.drift is None and res.above_target is None and res.agreement_difference is None
    assert any("unknown (not 0)" in note for note in res.notes)
    nothing = audit(*_items([(0, 0, "review", False, 3)]), n_classes=1)
    assert any("no item was auto-accepted" in note for note in nothing.notes)


def test_evaluation_without_accepted_gold_items():
    rows = [(0, 0, "accept", True, 30), (0, 1, "accept", True, 10)]
    res = audit(*_items(rows), n_classes=2, evaluation=EvaluationEstimate(0.05, 0, 0))
    assert res.above_target is True and res.above_evaluation is None and res.drift is True
    assert any("no gold item" in note for note in res.notes)


def test_evaluation_from_ltt():
    conf = np.linspace(1.0, 0.0, 200)
    correct = np.ones(200, dtype=bool)
    correct[150:] = False
    ltt = learn_then_test(conf, correct, alpha=0.1, delta=0.1)
    ev = EvaluationEstimate.from_ltt(ltt)
    assert (ev.alpha, ev.errors, ev.n_accepted) == (0.1, ltt.errors, ltt.n_accepted)
    assert ev.expected_error == pytest.approx(ltt.error_rate)
    assert math.isnan(EvaluationEstimate(0.1, 0, 0).expected_error)


def test_validation():
    pre, human, route, blind = _items(BASE)
    with pytest.raises(ValueError, match="route"):
        audit(pre, human, np.where(route == "accept", "auto", route), blind, 2)
    with pytest.raises(ValueError, match="equally long"):
        audit(pre[:-1], human, route, blind, 2)
    with pytest.raises(ValueError, match="blind"):
        audit(pre, human, route, blind.astype(int) * 2, 2)
    with pytest.raises(ValueError, match="method"):
        audit(pre, human, route, blind, 2, method="wald")
