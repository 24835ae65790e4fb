"""Simultaneous intervals over setups (harness.metrics.selection; statistics.md section 2):
the joint replicates against scikit-learn on the same resampled items, the max-|t| band's
promise on its own bootstrap cloud, clusters, and degenerate data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score

from harness.metrics import accuracy_ci, kappa_ci
from harness.metrics.selection import joint_replicates, max_t_band, simultaneous_intervals


def setups(n: int = 120, k: int = 4, n_classes: int = 3, seed: int = 0, fail: float = 0.05):
    """A reference and k setups of different accuracy, with some failures (-1)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n)
    accuracy = np.linspace(0.55, 0.85, k)
    right = rng.random((n, k)) < accuracy
    wrong = (truth[:, None] + rng.integers(1, n_classes, (n, k))) % n_classes
    preds = np.where(right, truth[:, None], wrong)
    return truth, np.where(rng.random((n, k)) < fail, -1, preds)


def test_estimates_and_replicates_match_sklearn_on_the_same_resampled_items():
    truth, preds = setups()
    n, k = preds.shape
    reps, n_kept, n_clusters = joint_replicates(truth, preds, 3, n_boot=50, seed=7)
    assert (n_kept, n_clusters) == (n, None)
    # A failure is wrong for accuracy and a label of its own, never matching, for kappa.
    coded = np.where(preds >= 0, preds, 3)
    for j in range(k):
        assert reps["accuracy"][0][j] == pytest.approx(accuracy_score(truth, coded[:, j]))
        assert reps["kappa"][0][j] == pytest.approx(cohen_kappa_score(truth, coded[:, j]))
    # The draws: n item indices per replicate from the seeded generator, the same items for
    # every setup (one chunk here, so the stream is the first B x n integers).
    drawn = np.random.default_rng(7).integers(0, n, size=(50, n))
    for b in (0, 17, 49):
        idx = drawn[b]
        for j in range(k):
            assert reps["accuracy"][1][b, j] == pytest.approx(
                accuracy_score(truth[idx], coded[idx, j])
            )
            assert reps["kappa"][1][b, j] == pytest.approx(
                cohen_kappa_score(truth[idx], coded[idx, j], labels=[0, 1, 2, 3])
            )


def test_identical_setups_get_identical_replicates_because_items_are_shared():
    truth, preds = setups(k=1)
    both = np.column_stack([preds[:, 0], preds[:, 0]])
    reps, _, _ = joint_replicates(truth, both, 3, n_boot=200)
    for _, replicates in reps.values():
        np.testing.assert_array_equal(replicates[:, 0], replicates[:, 1])


def test_the_band_holds_every_setup_at_once_on_its_own_bootstrap_cloud():
    rng = np.random.default_rng(3)
    estimate = np.array([0.2, -1.0, 5.0])
    replicates = estimate + rng.normal(size=(4000, 3)) * [1.0, 0.1, 3.0]
    low, high, se, critical, used = max_t_band(estimate, replicates, level=0.9)
    assert used == 4000
    np.testing.assert_allclose(se, [1.0, 0.1, 3.0], rtol=0.05)
    inside = np.all((replicates >= low) & (replicates <= high), axis=1).mean()
    assert abs(inside - 0.9) < 0.002  # the 0.9 quantile of the max-|t|, up to its ties
    # Three independent normals: P(max |Z| <= c) = 0.9 at c = 2.1212 (Sidak).
    assert critical == pytest.approx(2.1212, abs=0.06)
    marginal = np.quantile(np.abs(replicates - estimate) / se, 0.9, axis=0)
    assert np.all(critical > marginal)


def test_a_constant_setup_takes_no_part_in_the_maximum_even_with_float_noise():
    rng = np.random.default_rng(8)
    estimate = np.array([0.5, 0.1])
    replicates = estimate + rng.normal(size=(2000, 2)) * [0.05, 0.0]
    alone = max_t_band(estimate[:1], replicates[:, :1])
    # The estimate and the resamples of a constant statistic computed along different
    # float paths: a few ulps apart, while its "standard error" is float noise too.
    estimate[1] += 20 * np.spacing(0.1)
    low, high, _, critical, _ = max_t_band(estimate, replicates)
    assert critical == pytest.approx(alone[3], rel=1e-12)
    assert (low[0], high[0]) == pytest.approx((alone[0][0], alone[1][0]), rel=1e-12)
    assert low[1] == high[1] == estimate[1]


def test_ten_setups_widen_every_interval_beyond_its_own():
    truth, preds = setups(n=200, k=10, seed=5)
    bands = simultaneous_intervals(truth, preds, 3, n_boot=1000, seed=0)
    for name, own_ci in (("accuracy", accuracy_ci), ("kappa", kappa_ci)):
        band = bands[name]
        assert band.n == 200 and band.n_clusters is None and band.level == 0.95
        for j in range(10):
            args = (truth, preds[:, j]) if name == "accuracy" else (truth, preds[:, j], 3)
            own = own_ci(*args, n_boot=1000, seed=0)
            assert band.estimate[j] == pytest.approx(own.estimate)
            assert band.low[j] <= band.estimate[j] <= band.high[j]
            assert band.high[j] - band.low[j] > 1.2 * (own.high - own.low), (name, j)


def test_every_item_its_own_cluster_is_the_unclustered_bootstrap_and_clusters_widen():
    truth, preds = setups(n=60, k=3)
    plain = simultaneous_intervals(truth, preds, 3, n_boot=300)
    alone = simultaneous_intervals(truth, preds, 3, n_boot=300, clusters=np.arange(60) * 7)
    np.testing.assert_array_equal(plain["kappa"].low, alone["kappa"].low)
    assert alone["kappa"].n_clusters == 60
    # Each item copied 5 times in its own cluster: the clustered band is the 60-item one,
    # the unclustered band wrongly that of 300 independent items (about sqrt(5) narrower).
    many = np.repeat(truth, 5), np.repeat(preds, 5, axis=0)
    groups = np.repeat(np.arange(60), 5)
    clustered = simultaneous_intervals(*many, 3, n_boot=300, clusters=groups)["accuracy"]
    naive = simultaneous_intervals(*many, 3, n_boot=300)["accuracy"]
    assert (clustered.n, clustered.n_clusters) == (300, 60)
    width = (clustered.high - clustered.low) / (naive.high - naive.low)
    assert np.all(width > 1.8), width


def test_degenerate_setups_give_points_or_nan_never_an_error():
    truth = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
    preds = np.column_stack(
        [
            np.full(10, -1),  # every answer failed: accuracy 0 on every resample
            truth,  # always right: accuracy and kappa 1 on every resample
            np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 1]),
            1 - truth,  # always wrong: kappa -1, worse than chance
            np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 0]),  # mostly wrong: kappa below 0
        ]
    )
    bands = simultaneous_intervals(truth, preds, 2, n_boot=500)
    acc, kappa = bands["accuracy"], bands["kappa"]
    assert (acc.low[0], acc.high[0]) == (0.0, 0.0)
    assert (acc.low[1], acc.high[1], kappa.low[1], kappa.high[1]) == (1.0, 1.0, 1.0, 1.0)
    assert 0.0 <= acc.low[2] < acc.estimate[2] < acc.high[2] <= 1.0
    assert -1.0 <= kappa.low[2] < kappa.high[2] <= 1.0
    # Always wrong: accuracy 0 on every resample; kappa -1 only on balanced resamples.
    assert (acc.high[3], kappa.estimate[3], kappa.low[3]) == (0.0, -1.0, -1.0)
    # Below chance, kappa's scale (the observed agreement at the setup's chance agreement)
    # still spreads its interval around it.
    assert -1.0 <= kappa.low[4] < kappa.estimate[4] < 0.0 < kappa.high[4] <= 1.0
    assert np.isfinite(acc.critical) and np.isfinite(kappa.critical)


def test_undefined_kappa_is_nan_and_leaves_the_other_setups_their_band():
    truth = np.zeros(30, dtype=int)  # one class only in the reference
    preds = np.column_stack([np.zeros(30, dtype=int), np.r_[np.ones(5), np.zeros(25)]])
    kappa = simultaneous_intervals(truth, preds.astype(int), 2, n_boot=200)["kappa"]
    assert np.all(np.isnan(kappa.estimate[:1])) and np.isnan(kappa.low[0])
    # The second setup's kappa is 0 on every resample where it is defined.
    assert kappa.low[1] == kappa.high[1] == 0.0


def test_no_items_and_bad_input():
    empty = simultaneous_intervals(np.full(4, -1), np.zeros((4, 2), dtype=int), 2, n_boot=50)
    assert empty["accuracy"].n == 0 and np.all(np.isnan(empty["accuracy"].low))
    truth, preds = setups(n=20, k=2)
    with pytest.raises(ValueError, match="metrics must be among"):
        joint_replicates(truth, preds, 3, metrics=("macro_f1",))
    with pytest.raises(ValueError, match="one row per item"):
        joint_replicates(truth[:-1], preds, 3)
    with pytest.raises(ValueError, match="clusters must have one entry per item"):
        joint_replicates(truth, preds, 3, clusters=np.zeros(3))
    with pytest.raises(ValueError, match="level"):
        simultaneous_intervals(truth, preds, 3, level=1.0)
