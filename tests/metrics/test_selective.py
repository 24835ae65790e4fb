"""Risk-coverage, AURC and Learn then Test (statistics.md section 6)."""

import math

import numpy as np
import pytest
from scipy.stats import binom

from harness.metrics.selective import (
    cross_fit_ltt,
    learn_then_test,
    ltt_p_value,
    min_accepted_to_pass,
    risk_coverage,
)

# Five items, deliberately unsorted, with a tie at 0.8 (input order: wrong first).
CONF5 = np.array([0.6, 0.8, 0.9, 0.3, 0.8])
CORRECT5 = np.array([1, 0, 1, 0, 1])


def test_risk_coverage_hand_computed():
    rc = risk_coverage(CONF5, CORRECT5)
    # sorted: .9 ok, .8 wrong, .8 ok, .6 ok, .3 wrong -> errors 0,1,1,1,2
    assert rc.n == 5
    assert rc.coverage == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert rc.risk == pytest.approx([0, 1 / 2, 1 / 3, 1 / 4, 2 / 5])
    assert rc.thresholds == pytest.approx([0.9, 0.8, 0.8, 0.6, 0.3])
    assert rc.aurc == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 4 + 2 / 5) / 5)


def test_risk_coverage_ties_are_stable_by_input_order():
    # Swap the two tied items: risk inside the tie changes, at its end it does not.
    conf = CONF5[[0, 4, 2, 3, 1]]
    correct = CORRECT5[[0, 4, 2, 3, 1]]
    rc = risk_coverage(conf, correct)
    assert rc.risk == pytest.approx([0, 0, 1 / 3, 1 / 4, 2 / 5])
    assert rc.aurc == pytest.approx((0 + 0 + 1 / 3 + 1 / 4 + 2 / 5) / 5)


def test_risk_coverage_rejects_bad_input():
    with pytest.raises(ValueError):
        risk_coverage(np.array([0.5, 0.4]), np.array([1, 2]))
    with pytest.raises(ValueError):
        risk_coverage(np.array([0.5]), np.array([1, 0]))
    with pytest.raises(ValueError):
        risk_coverage(np.array([]), np.array([]))


def test_p_value_matches_scipy_and_direct_sum():
    for e, n, a in [(0, 1, 0.1), (0, 30, 0.1), (3, 33, 0.1), (5, 40, 0.2), (7, 50, 0.05)]:
        direct = sum(math.comb(n, i) * a**i * (1 - a) ** (n - i) for i in range(e + 1))
        assert ltt_p_value(e, n, a) == pytest.approx(direct, rel=1e-12)
        assert ltt_p_value(e, n, a) == pytest.approx(binom.cdf(e, n, a), rel=1e-12)
    assert ltt_p_value(0, 0, 0.1) == 1.0  # accepting nothing never passes


def test_min_accepted_to_pass():
    m = min_accepted_to_pass(0.1, 0.1)
    assert m == 22  # 0.9**22 = 0.098 <= 0.1 < 0.9**21 = 0.109
    assert 0.9**m <= 0.1 < 0.9 ** (m - 1)
    assert min_accepted_to_pass(0.5, 0.5) == 1


def _separable():
    conf = np.concatenate([np.linspace(0.99, 0.70, 30), np.linspace(0.50, 0.10, 10)])
    correct = np.concatenate([np.ones(30, int), np.zeros(10, int)])
    return conf, correct


def test_ltt_separable_known_answer():
    conf, correct = _separable()
    res = learn_then_test(conf, correct, alpha=0.1, delta=0.1)
    # All 30 correct items pass (p = 0.9**30 = 0.042); adding the first wrong item gives
    # p = BinomCDF(1; 31, 0.1) = 0.17 > 0.1, so the loosest passing threshold is 0.70.
    assert res.threshold == pytest.approx(0.70)
    assert (res.n_accepted, res.errors, res.n) == (30, 0, 40)
    assert res.coverage == pytest.approx(0.75)
    assert res.error_rate == 0.0
    # Default path starts at the first value accepting 22 items, then 9 passes + 1 failure.
    assert res.thresholds_tested[0] == pytest.approx(conf[21])
    assert len(res.p_values) == 10
    assert res.p_values[:9] == pytest.approx(0.9 ** np.arange(22, 31))
    assert res.p_values[-1] == pytest.approx(binom.cdf(1, 31, 0.1))
    assert np.all(res.p_values[:-1] <= 0.1) and res.p_values[-1] > 0.1


def test_ltt_all_wrong_gives_none():
    conf = np.linspace(0.99, 0.5, 50)
    res = learn_then_test(conf, np.zeros(50, int), alpha=0.1, delta=0.1)
    assert res.threshold is None
    assert (res.n_accepted, res.errors, res.coverage) == (0, 0, 0.0)
    assert math.isnan(res.error_rate)
    assert len(res.p_values) == 1 and res.p_values[0] > 0.1


def test_ltt_explicit_thresholds_hand_computed():
    conf, correct = _separable()
    # .745 accepts 25 correct; .6 accepts 30 correct; .4 adds the wrongs at .5, .456, .411
    res = learn_then_test(conf, correct, 0.1, 0.1, thresholds=[0.745, 0.6, 0.4])
    assert res.threshold == 0.6
    assert (res.n_accepted, res.errors) == (30, 0)
    assert res.p_values == pytest.approx([0.9**25, 0.9**30, binom.cdf(3, 33, 0.1)])
    # Too strict a first candidate (5 items, p = 0.59) stops everything.
    res = learn_then_test(conf, correct, 0.1, 0.1, thresholds=[0.95, 0.6])
    assert res.threshold is None and len(res.p_values) == 1
    assert res.p_values[0] == pytest.approx(0.9**5)
    # A candidate above every confidence accepts nothing: p = 1, stop.
    res = learn_then_test(conf, correct, 0.1, 0.1, thresholds=[1.5, 0.6])
    assert res.threshold is None and res.p_values[0] == 1.0


def test_ltt_fixed_sequence_stops_at_first_failure():
    conf = np.concatenate([np.full(30, 0.9), np.full(3, 0.8), np.full(200, 0.7)])
    correct = np.concatenate([np.ones(30, int), np.zeros(3, int), np.ones(200, int)])
    res = learn_then_test(conf, correct, 0.1, 0.1, thresholds=[0.85, 0.75, 0.65])
    # .85 passes, .75 fails (3/33 wrong); .65 would pass (3/233) but is never reached.
    assert binom.cdf(3, 233, 0.1) <= 0.1
    assert res.threshold == 0.85
    assert res.n_accepted == 30
    assert len(res.p_values) == 2 and res.p_values[1] == pytest.approx(binom.cdf(3, 33, 0.1))
    # Default candidates on the same data: 0.9 (30 items, ties) passes, 0.8 fails.
    assert learn_then_test(conf, correct, 0.1, 0.1).threshold == 0.9


@pytest.mark.parametrize("decimals", [None, 4])
def test_ltt_on_a_long_path_equals_testing_every_threshold_by_hand(decimals):
    """Thousands of candidate thresholds (p-values are computed in growing blocks up to
    the first failure), with and without tied confidences: the path, the threshold and
    its counts equal testing each distinct confidence in turn, from the strictest."""
    rng = np.random.default_rng(3)
    n = 20_000
    conf = rng.uniform(0.3, 1, n)
    if decimals is not None:
        conf = np.round(conf, decimals)
    # No errors above 0.7, many below: the path runs a long way, then fails.
    correct = (rng.random(n) < np.where(conf > 0.7, 1.0, 0.3)).astype(int)
    alpha, delta = 0.1, 0.1
    res = learn_then_test(conf, correct, alpha, delta)
    m = min_accepted_to_pass(alpha, delta)
    tested, path = [], []
    for t in np.unique(conf)[::-1]:
        accepted = conf >= t
        if accepted.sum() < m and not tested:
            continue
        p = binom.cdf((correct[accepted] == 0).sum(), accepted.sum(), alpha)
        tested.append(t)
        path.append(p)
        if p > delta:
            break
    assert len(tested) > 1100  # past the first block
    assert res.thresholds_tested.tolist() == tested
    assert res.p_values == pytest.approx(path, rel=1e-9, abs=1e-300)
    assert res.threshold == tested[-2]
    assert res.n_accepted == int((conf >= tested[-2]).sum())
    assert res.errors == int((correct[conf >= tested[-2]] == 0).sum())


def test_ltt_rejects_bad_arguments():
    conf, correct = _separable()
    with pytest.raises(ValueError):
        learn_then_test(conf, correct, 0.1, 0.1, thresholds=[0.5, 0.9])
    with pytest.raises(ValueError):
        learn_then_test(conf, correct, 0.0, 0.1)
    with pytest.raises(ValueError):
        learn_then_test(conf, correct, 0.1, 1.0)


def _naive_threshold(conf, correct, alpha):
    """Loosest threshold whose empirical risk <= alpha (no guarantee)."""
    rc = risk_coverage(conf, correct)
    ok = np.flatnonzero(rc.risk <= alpha)
    return rc.thresholds[ok[-1]] if ok.size else None


def test_ltt_guarantee_simulation():
    # conf ~ U(0, 1), P(wrong | conf = c) = (1 - c)^2, so the true error rate among items
    # with conf >= t is (1 - t)^2 / 3, which exceeds alpha exactly when
    # t < 1 - sqrt(3 alpha).
    alpha, delta, n, reps = 0.1, 0.1, 400, 300
    rng = np.random.default_rng(12345)
    violations = naive_violations = found = 0
    for _ in range(reps):
        conf = rng.uniform(size=n)
        correct = (rng.uniform(size=n) >= (1 - conf) ** 2).astype(int)
        t = learn_then_test(conf, correct, alpha, delta).threshold
        if t is not None:
            found += 1
            violations += (1 - t) ** 2 / 3 > alpha
        t_naive = _naive_threshold(conf, correct, alpha)
        naive_violations += t_naive is not None and (1 - t_naive) ** 2 / 3 > alpha
    assert violations / reps <= delta + 0.05  # 3 binomial s.d. at 300 reps is ~0.052
    assert found / reps >= 0.9  # the procedure is not vacuous
    assert naive_violations / reps >= 0.3  # the check can tell a procedure with no guarantee


def _same(x: dict, y: dict) -> bool:
    """Dict equality that treats nan == nan."""
    return x.keys() == y.keys() and all(
        x[k] == y[k] or (isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k]))
        for k in x
    )


def test_cross_fit_ltt_deterministic_and_consistent():
    rng = np.random.default_rng(8)
    conf = rng.uniform(size=500)
    correct = (rng.uniform(size=500) >= (1 - conf) ** 2).astype(int)
    a = cross_fit_ltt(conf, correct, 0.1, 0.1, seed=3)
    b = cross_fit_ltt(conf, correct, 0.1, 0.1, seed=3)
    assert _same(a, b)
    assert a["fit_n"] == 250 and a["check_n"] == 250
    # Recompute from the documented seeded split.
    perm = np.random.default_rng(3).permutation(500)
    fit, check = perm[:250], perm[250:]
    t = learn_then_test(conf[fit], correct[fit], 0.1, 0.1).threshold
    assert t is not None and a["threshold"] == t
    acc = conf[check] >= t
    assert a["check_accepted"] == acc.sum()
    assert a["check_errors"] == (correct[check][acc] == 0).sum()
    assert a["check_coverage"] == pytest.approx(acc.mean())
    assert a["check_error_rate"] == pytest.approx(1 - correct[check][acc].mean())
    others = [cross_fit_ltt(conf, correct, 0.1, 0.1, seed=s) for s in range(4, 9)]
    assert any(not _same(o, a) for o in others)


def test_cross_fit_ltt_no_threshold_and_bad_share():
    conf = np.linspace(0.99, 0.5, 40)
    res = cross_fit_ltt(conf, np.zeros(40, int), 0.1, 0.1, seed=0, fit_share=0.25)
    assert res["threshold"] is None
    assert (res["fit_n"], res["check_n"], res["check_accepted"]) == (10, 30, 0)
    assert res["check_coverage"] == 0.0 and math.isnan(res["check_error_rate"])
    with pytest.raises(ValueError):
        cross_fit_ltt(conf, np.zeros(40, int), 0.1, 0.1, fit_share=1.0)
