"""ECE, reliability bins and the top-label Brier score, by hand and against sklearn."""

import math

import numpy as np
import pytest

from harness.metrics import Bin, brier_top_label, ece, reliability_bins


def test_ece_uniform_hand_computed():
    conf = np.array([0.05, 0.15, 0.15, 0.95, 0.95])
    correct = np.array([0, 1, 0, 1, 1])
    # bins (0, .1]: conf .05 acc 0; (.1, .2]: conf .15 acc .5; (.9, 1]: conf .95 acc 1
    expected = 1 / 5 * 0.05 + 2 / 5 * 0.35 + 2 / 5 * 0.05
    assert ece(conf, correct) == pytest.approx(expected)


def test_bins_are_closed_on_the_right():
    bins = reliability_bins(np.array([0.0, 0.1, 0.1000001, 1.0]), np.array([1, 1, 0, 1]), 10)
    assert [b.n for b in bins] == [2, 1, 1]
    assert [b.low for b in bins] == pytest.approx([0.0, 0.1, 0.9])


def test_ece_quantile_differs_from_uniform_hand_computed():
    conf = np.array([0.1, 0.2, 0.3, 0.4, 0.45, 0.7])
    correct = np.array([0, 0, 1, 1, 1, 0])
    # equal mass, 2 bins split at the median .35: {.1,.2,.3} and {.4,.45,.7}
    quantile = 0.5 * abs(1 / 3 - 0.2) + 0.5 * abs(2 / 3 - (0.4 + 0.45 + 0.7) / 3)
    # equal width, 2 bins: {.1, .2, .3, .4, .45} and {.7}
    uniform = 5 / 6 * abs(0.6 - 0.29) + 1 / 6 * abs(0.0 - 0.7)
    assert ece(conf, correct, n_bins=2, strategy="quantile") == pytest.approx(quantile)
    assert ece(conf, correct, n_bins=2, strategy="uniform") == pytest.approx(uniform)


def test_quantile_bins_keep_tied_confidences_together():
    conf = np.array([0.8] * 6 + [0.9] * 2)
    bins = reliability_bins(conf, np.ones(8), n_bins=4, strategy="quantile")
    assert [b.n for b in bins] == [6, 2]
    assert ece(conf, np.ones(8), n_bins=4, strategy="quantile") == pytest.approx(
        (6 * 0.2 + 2 * 0.1) / 8
    )


def test_reliability_bins_hand_computed_and_empty_bins_omitted():
    bins = reliability_bins(np.array([0.22, 0.28, 0.9]), np.array([1, 0, 1]), n_bins=5)
    assert len(bins) == 2
    assert bins[0] == Bin(low=0.2, high=0.4, n=2, mean_confidence=pytest.approx(0.25), accuracy=0.5)
    assert (bins[1].low, bins[1].high, bins[1].n, bins[1].accuracy) == pytest.approx(
        (0.8, 1.0, 1, 1.0)
    )


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_bins_equal_sklearn_calibration_curve(strategy):
    calibration = pytest.importorskip("sklearn.calibration")
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 2000)
    correct = rng.random(2000) < conf**1.5
    bins = reliability_bins(conf, correct, n_bins=10, strategy=strategy)
    prob_true, prob_pred = calibration.calibration_curve(
        correct, conf, n_bins=10, strategy=strategy
    )
    np.testing.assert_allclose([b.accuracy for b in bins], prob_true)
    np.testing.assert_allclose([b.mean_confidence for b in bins], prob_pred)
    weights = np.array([b.n for b in bins]) / 2000
    assert ece(conf, correct, strategy=strategy) == pytest.approx(
        float(np.sum(weights * np.abs(prob_true - prob_pred)))
    )


def test_ece_zero_when_calibrated_within_bins_and_one_when_maximally_wrong():
    assert ece(np.full(4, 0.5), np.array([1, 0, 1, 0])) == pytest.approx(0.0)
    assert ece(np.ones(3), np.zeros(3)) == pytest.approx(1.0)
    assert math.isnan(ece(np.array([]), np.array([])))


def test_brier_top_label_hand_computed_and_sklearn():
    conf, correct = np.array([0.9, 0.6, 0.2]), np.array([1, 0, 0])
    assert brier_top_label(conf, correct) == pytest.approx((0.01 + 0.36 + 0.04) / 3)
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    conf = rng.random(300)
    correct = rng.random(300) < conf
    assert brier_top_label(conf, correct) == pytest.approx(sk.brier_score_loss(correct, conf))


def test_inputs_are_validated():
    with pytest.raises(ValueError):
        ece(np.array([1.2]), np.array([1]))
    with pytest.raises(ValueError):
        ece(np.array([0.5]), np.array([2]))
    with pytest.raises(ValueError):
        ece(np.array([0.5, np.nan]), np.array([1, 0]))
    with pytest.raises(ValueError):
        ece(np.array([0.5]), np.array([1]), strategy="adaptive")
    with pytest.raises(ValueError):
        brier_top_label(np.array([0.5, 0.4]), np.array([1]))


def test_log_loss_hand_computed_and_clipped():
    from harness.metrics.calibration import log_loss_top_label

    # -(log 0.8 + log(1 - 0.4)) / 2
    assert log_loss_top_label(np.array([0.8, 0.4]), np.array([1, 0])) == pytest.approx(
        -(np.log(0.8) + np.log(0.6)) / 2
    )
    # A certain mistake is finite: log(1 / 1e-6).
    assert log_loss_top_label(np.array([1.0]), np.array([0])) == pytest.approx(-np.log(1e-6))


def test_auroc_matches_sklearn_with_ties_and_is_nan_without_both_classes():
    from sklearn.metrics import roc_auc_score

    from harness.metrics.calibration import auroc

    rng = np.random.default_rng(3)
    conf = np.round(rng.random(200), 1)  # many ties
    correct = (rng.random(200) < conf).astype(int)
    assert auroc(conf, correct) == pytest.approx(roc_auc_score(correct, conf))
    # Hand case: correct at 0.9 and 0.5, wrong at 0.5 and 0.1: pairs (0.9>0.5, 0.9>0.1,
    # 0.5=0.5 -> 1/2, 0.5>0.1) = 3.5 of 4.
    assert auroc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(3.5 / 4)
    assert np.isnan(auroc(np.array([0.9, 0.8]), np.array([1, 1])))
