"""Boundaries of the decision path that mutation testing found unguarded (statistics.md
section 9): each test here fails on a one-token change of the code it names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import cohen_kappa, kappa_from_confusion
from harness.metrics.compare import minimum_detectable_difference
from harness.metrics.gate import gate_metric
from harness.metrics.selective import (
    cross_fit_ltt,
    learn_then_test,
    ltt_p_value,
    min_accepted_to_pass,
)


# --- kappa needs two items (n >= 2) -----------------------------------------------------
@pytest.mark.parametrize(
    "table",
    [
        [[0, 1], [0, 0]],  # one item, the two sides disagree
        [[0, 0, 1], [0, 0, 0]],  # one item, the prediction failed (K+1-th column)
    ],
)
def test_kappa_of_a_single_disagreeing_item_is_nan(table) -> None:
    # Expected disagreement is 1 here, so only the n >= 2 rule makes it nan: with n >= 1
    # it would be 1 - 1/1 = 0.0 (sklearn's cohen_kappa_score also says 0.0; the
    # documented choice is nan, one item carries no information about agreement).
    assert math.isnan(float(kappa_from_confusion(np.array(table))))
    for weights in ("linear", "quadratic"):
        assert math.isnan(float(kappa_from_confusion(np.array(table), weights)))


def test_kappa_from_labels_and_stacks_follow_the_same_rule() -> None:
    assert math.isnan(cohen_kappa(np.array([0]), np.array([1]), 2))
    # Two items that disagree: defined (kappa = -1), so the rule is n >= 2, not n >= 3.
    assert cohen_kappa(np.array([0, 1]), np.array([1, 0]), 2) == pytest.approx(-1.0)
    stack = np.array([[[0, 1], [0, 0]], [[0, 1], [1, 0]]])
    one, two = kappa_from_confusion(stack)
    assert math.isnan(one) and two == pytest.approx(-1.0)


# --- Learn then Test: p <= delta passes, p == delta included ------------------------------
def _boundary_case():
    """10 right answers at confidence 0.9, then 10 wrong ones at 0.5; thresholds 0.9, 0.5.
    delta is set to the p-value of the first threshold itself, computed by the same
    kernel on the same inputs, so p == delta holds exactly."""
    conf = np.array([0.9] * 10 + [0.5] * 10)
    correct = np.array([True] * 10 + [False] * 10)
    alpha = 0.2
    delta = float(ltt_p_value(0, 10, alpha))  # 0.8**10 ~ 0.107
    return conf, correct, alpha, delta


def test_ltt_passes_a_threshold_whose_p_value_equals_delta() -> None:
    # The guarantee is P(risk > alpha) <= delta for a test that rejects when p <= delta
    # (a valid p-value: P(p <= u) <= u under H0), so p == delta rejects H0 and passes.
    conf, correct, alpha, delta = _boundary_case()
    res = learn_then_test(conf, correct, alpha, delta, thresholds=np.array([0.9, 0.5]))
    assert res.p_values[0] == delta
    assert res.threshold == 0.9 and res.n_accepted == 10 and res.errors == 0
    assert res.p_values.size == 2 and res.p_values[1] > delta  # 0.5 adds 10 errors: stops
    # The default candidates reach the same threshold (0.9 accepts m = 10 items, the
    # fewest that can pass at this alpha and delta).
    assert learn_then_test(conf, correct, alpha, delta).threshold == 0.9


def test_ltt_fails_a_threshold_whose_p_value_is_just_above_delta() -> None:
    conf, correct, alpha, delta = _boundary_case()
    res = learn_then_test(
        conf, correct, alpha, np.nextafter(delta, 0.0), thresholds=np.array([0.9, 0.5])
    )
    assert res.threshold is None and res.n_accepted == 0
    assert math.isnan(res.error_rate)


def test_ltt_on_a_long_path_with_p_equal_to_delta_stops_at_its_first_failure() -> None:
    # p-values are computed in blocks of 1024 thresholds, stopping after the first block
    # with a p > delta. Here the first threshold has p == delta, the next 1098 pass
    # easily and the 1100th (in the second block) fails: it must not be deployed.
    conf, correct, alpha, delta = _boundary_case()
    conf, correct = conf[:10] + 0.1, correct[:10]  # the 10 right answers, at 1.0
    steps = np.linspace(0.99, 0.01, 1098)
    conf = np.concatenate([conf, steps, np.zeros(2000)])
    correct = np.concatenate([correct, np.ones(1098, bool), np.zeros(2000, bool)])
    thresholds = np.concatenate([[1.0], steps, [0.0]])
    res = learn_then_test(conf, correct, alpha, delta, thresholds=thresholds)
    assert res.p_values[0] == delta and res.p_values.size == 1100
    assert res.threshold == thresholds[-2] and res.n_accepted == 1108 and res.errors == 0


# --- the smallest detectable difference: levels strictly inside (0, 1) ---------------------
@pytest.mark.parametrize("alpha, power", [(1.0, 0.8), (0.0, 0.8), (0.05, 0.0), (0.05, 1.0)])
def test_minimum_detectable_difference_rejects_a_level_on_the_boundary(alpha, power) -> None:
    # alpha = 1 would give z = 0 and power = 0 an infinite z: neither is a planning figure.
    with pytest.raises(ValueError):
        minimum_detectable_difference(25, 25, 500, alpha=alpha, power=power)
    assert 0 < minimum_detectable_difference(25, 25, 500, alpha=0.05, power=0.8) < 0.1


# --- Learn then Test: the fewest accepted items that can pass, and the thresholds given ---
def test_min_accepted_to_pass_is_exact_at_float_boundaries() -> None:
    # m is the smallest n with (1 - alpha)^n <= delta. Its first guess, from logs, can be
    # one off when delta sits on (or one float next to) a power of 1 - alpha: the two
    # correcting loops must land on the exact m every time.
    for alpha in (0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5):
        for k in range(1, 80):
            for delta in (
                (1 - alpha) ** k,
                np.nextafter((1 - alpha) ** k, 1.0),
                np.nextafter((1 - alpha) ** (k - 1), 0.0),
            ):
                if not 0.0 < delta < 1.0:
                    continue
                m = min_accepted_to_pass(alpha, float(delta))
                assert (1 - alpha) ** m <= delta, (alpha, k, delta, m)
                assert m == 1 or (1 - alpha) ** (m - 1) > delta, (alpha, k, delta, m)


def test_ltt_accepts_repeated_thresholds_and_rejects_malformed_ones() -> None:
    conf, correct, alpha, delta = _boundary_case()
    tied = learn_then_test(conf, correct, alpha, delta, thresholds=np.array([0.9, 0.9, 0.5]))
    assert tied.threshold == 0.9  # non-increasing, ties allowed
    for bad in ([], [[0.9, 0.5]], [0.9, np.nan], [0.9, np.inf], [0.5, 0.9]):
        with pytest.raises(ValueError):
            learn_then_test(conf, correct, alpha, delta, thresholds=np.array(bad, dtype=float))


def test_cross_fit_ltt_accepts_check_items_at_the_threshold_and_splits_down_to_one() -> None:
    # Confidences take two values only, so the check half holds items exactly at the
    # threshold fitted on the fit half (0.9): they are accepted, as at deployment.
    conf, correct, alpha, delta = _boundary_case()
    conf, correct = np.tile(conf, 3), np.tile(correct, 3)  # 30 right at 0.9, 30 wrong at 0.5
    out = cross_fit_ltt(conf, correct, alpha, delta, seed=4)
    assert out["threshold"] == 0.9
    check = np.random.default_rng(4).permutation(conf.size)[out["fit_n"] :]
    assert out["check_accepted"] == int((conf[check] == 0.9).sum()) > 0
    assert out["check_errors"] == 0 and out["check_error_rate"] == 0.0
    # Two items split one and one; a share that leaves a half empty is refused.
    two = cross_fit_ltt(np.array([0.9, 0.8]), np.array([True, True]), alpha, delta)
    assert (two["fit_n"], two["check_n"]) == (1, 1)
    for share in (0.01, 0.99):
        with pytest.raises(ValueError, match="empty half"):
            cross_fit_ltt(conf[:10], correct[:10], alpha, delta, fit_share=share)


# --- the regression gate: a drop equal to the tolerance, a bound equal to the floor --------
def test_gate_fails_only_a_drop_above_the_tolerance_and_a_bound_beyond_the_floor() -> None:
    # Per-item values in binary fractions, so the drop is exactly 0.25.
    base, cand = np.ones(64), np.r_[np.zeros(16), np.ones(48)]
    at = gate_metric("accuracy", base, cand, tolerance=0.25, n_boot=300)
    assert at.verdict == "warn", at.reasons  # may have dropped by more: not a failure
    above = gate_metric("accuracy", base, cand, tolerance=np.nextafter(0.25, 0), n_boot=300)
    assert above.verdict == "fail"
    # Lower is better (an error): every candidate value is 0.25, so its interval's upper
    # bound is exactly 0.25; a floor (ceiling) of 0.25 is not crossed, one just below is.
    err = np.full(64, 0.25)
    same = gate_metric("mae", err, err, 0.1, floor=0.25, higher_is_better=False, n_boot=300)
    assert same.verdict == "pass", same.reasons
    below = np.nextafter(0.25, 0)
    crossed = gate_metric("mae", err, err, 0.1, floor=below, higher_is_better=False, n_boot=300)
    assert crossed.verdict == "fail"


def test_gate_value_flips_count_only_items_that_moved() -> None:
    base, cand = np.array([1.0, 1.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 1.0])
    up = gate_metric("accuracy", base, cand, tolerance=1.0, n_boot=50)
    assert (up.flips.fixed, up.flips.broken) == ((3,), (1,))
    down = gate_metric("error", base, cand, tolerance=1.0, higher_is_better=False, n_boot=50)
    assert (down.flips.fixed, down.flips.broken) == ((1,), (3,))
