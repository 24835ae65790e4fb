"""Degenerate inputs of the LLM-only (naive) mean."""

import math

import numpy as np

from harness.metrics.ppi import naive_mean


def test_naive_mean_on_no_items_reports_no_items_used():
    est = naive_mean(np.array([]))
    assert (est.n, est.N) == (0, 0)
    assert math.isnan(est.estimate) and math.isnan(est.se) and math.isnan(est.lam)


def test_naive_mean_on_one_item_keeps_the_estimate_without_an_interval():
    est = naive_mean(np.array([0.4]))
    assert (est.estimate, est.n, est.N) == (0.4, 0, 1)
    assert math.isnan(est.se) and math.isnan(est.low) and math.isnan(est.high)
