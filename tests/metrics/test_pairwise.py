"""Pairwise preference: order mapping and combination, position bias, ties, agreement,
length bias, and the table bootstrap against a plain index bootstrap."""

import math

import numpy as np
import pytest

from harness.metrics import (
    PAIRWISE_METRICS,
    combine_orders,
    first_position_rate,
    length_bias,
    pairwise_agreement,
    pairwise_ci,
    position_consistency,
    tie_rate,
    unswap,
)

NONE = np.array([-1, -1, -1])  # every pair missing


def preferences(seed, n=400, agree=0.7):
    """A reference and a prediction agreeing on ~agree of pairs; codes 0 = A, 1 = B, 2 = tie."""
    rng = np.random.default_rng(seed)
    ref = rng.choice([0, 1, 2], n, p=[0.45, 0.4, 0.15])
    pred = np.where(rng.random(n) < agree, ref, rng.choice([0, 1, 2], n))
    pred[rng.random(n) < 0.05] = -1
    return ref, pred


def index_bootstrap(statistic, n, n_boot, seed, level=0.95):
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_boot)])
    tail = (1 - level) / 2
    return np.nanquantile(values, [tail, 1 - tail])


def test_unswap_maps_a_and_b_and_keeps_tie_and_missing():
    np.testing.assert_array_equal(unswap(np.array([0, 1, 2, -1])), [1, 0, 2, -1])
    grid = np.array([[0, 0], [2, -1]])
    np.testing.assert_array_equal(unswap(grid), [[1, 1], [2, -1]])
    np.testing.assert_array_equal(unswap(unswap(grid)), grid)
    with pytest.raises(ValueError):
        unswap(np.array([0, 3]))


ORIGINAL = np.array([0, 0, 1, 2, 0, -1, -1, 2])
BACK = np.array([0, 1, 1, 2, 2, 1, -1, -1])  # swapped run, already mapped back


def test_combine_orders_follows_the_mt_bench_rule():
    final, consistent = combine_orders(ORIGINAL, BACK)
    # equal -> kept (0, 1, tie); A vs B and A vs tie -> tie; one missing -> the other;
    # both missing -> -1
    np.testing.assert_array_equal(final, [0, 2, 1, 2, 2, 1, -1, 2])
    np.testing.assert_array_equal(consistent, [1, 0, 1, 1, 0, 0, 0, 0])
    assert consistent.dtype == bool and final.dtype == np.int64
    final, consistent = combine_orders(NONE, NONE)
    np.testing.assert_array_equal(final, NONE)
    assert not consistent.any()
    with pytest.raises(ValueError):
        combine_orders(ORIGINAL, BACK[:3])


def test_position_consistency_over_pairs_answered_in_both_orders():
    # pairs 0-4 answered in both orders; same verdict on 0 (A), 2 (B), 3 (tie) -> 3/5
    assert position_consistency(ORIGINAL, BACK) == (pytest.approx(3 / 5), 5)
    share, n = position_consistency(NONE, np.array([0, 1, 2]))
    assert n == 0 and math.isnan(share)


def test_first_position_rate_pools_verdicts_as_shown():
    original = np.array([0, 0, 1, 2, -1])
    swapped_raw = np.array([0, 1, 0, 2, 0])  # 0 = the first shown, i.e. stored B
    # non-tie verdicts as shown: original 0, 0, 1 and swapped 0, 1, 0, 0 -> n = 7;
    # picked the first shown: 2 + 3 = 5 -> 5/7 (mapped back first it would be 3/7)
    assert first_position_rate(original, swapped_raw) == (pytest.approx(5 / 7), 7)
    # a judge that always picks the first shown; one that always picks stored A
    assert first_position_rate(np.array([0, 0]), np.array([0, 0])) == (1.0, 4)
    assert first_position_rate(np.array([0, 0]), unswap(np.array([0, 0]))) == (0.5, 4)
    share, n = first_position_rate(np.array([2, -1]), np.array([-1, 2]))
    assert n == 0 and math.isnan(share)


def test_tie_rate_over_answered():
    # answered 0, 2, 2, 1 -> 2 ties of 4
    assert tie_rate(np.array([0, 2, 2, 1, -1])) == (0.5, 4)
    share, n = tie_rate(NONE)
    assert n == 0 and math.isnan(share)


def test_agreement_with_and_without_ties():
    ref = np.array([0, 1, 2, 2, 0, -1, 1])
    pred = np.array([0, 0, 2, 1, -1, 0, 1])
    # with ties: both answered on pairs 0, 1, 2, 3, 6; equal on 0, 2, 6 -> 3/5
    assert pairwise_agreement(ref, pred, with_ties=True) == (pytest.approx(3 / 5), 5)
    # without ties: both A/B on pairs 0, 1, 6; equal on 0, 6 -> 2/3
    assert pairwise_agreement(ref, pred, with_ties=False) == (pytest.approx(2 / 3), 3)
    for with_ties in (True, False):
        share, n = pairwise_agreement(NONE, np.array([0, 1, 2]), with_ties)
        assert n == 0 and math.isnan(share)


def test_length_bias_hand_computed():
    len_a = np.array([100, 10, 50, 200, 0, 100, 300, 30])
    len_b = np.array([10, 100, 70, 100, 31, 20, 0, 0])
    outcomes = np.array([0, 0, 1, 1, 1, 2, -1, 0])
    # |diff| = 90, 90, 20, 100, 31, 80, 300, 30; > 30 and A/B: pairs 0, 1, 3, 4 (pair 2
    # too close, 5 a tie, 6 missing, 7 exactly 30 is not > 30) -> n = 4.
    # longer preferred: 0 (A, A longer) yes, 1 (A, B longer) no, 3 (B, A longer) no,
    # 4 (B, B longer by 31) yes -> 2/4
    assert length_bias(len_a, len_b, outcomes) == (0.5, 4)
    # min_diff = 0: pair 2 (B, B longer) and pair 7 (A, A longer) join -> 4/6
    assert length_bias(len_a, len_b, outcomes, min_diff=0) == (pytest.approx(4 / 6), 6)


def test_length_bias_edge_cases():
    share, n = length_bias(np.array([10, 50]), np.array([20, 40]), np.array([0, 1]))
    assert n == 0 and math.isnan(share)  # no pair differs by more than 30 characters
    share, n = length_bias(np.array([10, 500]), np.array([200, 40]), np.array([-1, 2]))
    assert n == 0 and math.isnan(share)
    with pytest.raises(ValueError):
        length_bias(np.array([10]), np.array([20, 40]), np.array([0, 1]))
    with pytest.raises(ValueError):
        length_bias(np.array([-1, 5]), np.array([20, 40]), np.array([0, 1]))
    with pytest.raises(ValueError):
        length_bias(np.array([1, 5]), np.array([20, 40]), np.array([0, 1]), min_diff=-1)


@pytest.mark.parametrize("metric", PAIRWISE_METRICS)
def test_pairwise_ci_agrees_with_index_bootstrap(metric):
    ref, pred = preferences(1)
    with_ties = metric == "agreement_with_ties"
    estimate, n = pairwise_agreement(ref, pred, with_ties)
    ci = pairwise_ci(ref, pred, metric, n_boot=4000, seed=1)
    # the index bootstrap resamples all 400 pairs and recomputes on the eligible ones
    low, high = index_bootstrap(
        lambda i: pairwise_agreement(ref[i], pred[i], with_ties)[0], ref.size, 2000, seed=2
    )
    assert ci.estimate == pytest.approx(estimate)
    assert (ci.n, ci.n_boot) == (n, 4000)
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=0.02)
    assert ci.low < ci.estimate < ci.high


def test_pairwise_ci_gives_the_position_consistency_interval_and_validates():
    ref, pred = preferences(2, agree=0.6)
    share, n = position_consistency(ref, pred)
    ci = pairwise_ci(ref, pred, "agreement_with_ties", n_boot=200)
    assert (ci.estimate, ci.n) == (pytest.approx(share), n)
    empty = pairwise_ci(NONE, NONE, "agreement_without_ties")
    assert empty.n == 0 and math.isnan(empty.estimate)
    with pytest.raises(ValueError):
        pairwise_ci(ref, pred, "kappa")
    with pytest.raises(ValueError):
        pairwise_ci(ref, pred, clusters=np.arange(3))


def test_pairwise_ci_clusters_resample_whole_groups():
    ref, pred = preferences(3, n=300)
    base = pairwise_ci(ref, pred, n_boot=2000, seed=1)
    r5, p5 = np.repeat(ref, 5), np.repeat(pred, 5)
    naive = pairwise_ci(r5, p5, n_boot=2000, seed=1)
    clustered = pairwise_ci(r5, p5, n_boot=2000, seed=1, clusters=np.repeat(np.arange(300), 5))
    assert naive.width < 0.6 * base.width
    assert clustered.width == pytest.approx(base.width, rel=0.15)
