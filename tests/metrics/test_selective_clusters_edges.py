"""Degenerate inputs of the clustered Learn-then-Test p-values."""

import numpy as np

from harness.metrics.selective_clusters import (
    design_effects,
    intra_cluster_correlation,
    prefix_cluster_sums,
    real_binom_cdf,
)


def test_real_binom_cdf_is_one_at_or_beyond_n_and_with_nothing_accepted():
    got = real_binom_cdf(np.array([2.0, 3.0, 0.0, 2.5]), np.array([2.0, 2.0, 0.0, 2.0]), 0.1)
    np.testing.assert_array_equal(got, [1.0, 1.0, 1.0, 1.0])


def test_rho_with_one_cluster_is_one():
    # One cluster of 4 items, errors and correct items both present: nothing measures
    # the spread between clusters, so rho is the conservative 1.
    clusters = np.zeros(4, dtype=np.int64)
    wrong = np.array([True, False, True, False])
    assert intra_cluster_correlation(clusters, wrong) == 1.0


def test_one_accepted_cluster_counts_as_one_item_whatever_rho():
    clusters = np.zeros(4, dtype=np.int64)
    wrong = np.array([True, False, False, True])
    sums = prefix_cluster_sums(clusters, wrong)
    n_acc = np.arange(5)
    errors = np.array([0, 1, 1, 1, 2])
    deff = design_effects(n_acc, errors, sums, rho=0.25)
    np.testing.assert_array_equal(deff, [1.0, 1.0, 2.0, 3.0, 4.0])
