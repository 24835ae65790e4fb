"""Degenerate inputs of the BCa interval (intervals._bca)."""

import math

import numpy as np
import pytest

from harness.metrics.intervals import _bca, _percentile


def test_bca_with_nan_estimate_falls_back_to_percentile():
    # BCa's bias correction compares replicates with the estimate; a nan estimate gives
    # no such comparison, so the percentile interval of the finite replicates is used.
    reps = np.linspace(0.0, 1.0, 41)
    got = _bca(float("nan"), reps, 10, 0.95, 0.0)
    want = _percentile(float("nan"), reps, 10, 0.95)
    assert got.method == "percentile"
    assert math.isnan(got.estimate)
    assert (got.low, got.high, got.n_boot) == (want.low, want.high, want.n_boot)
    assert (got.low, got.high) == pytest.approx((0.025, 0.975))
