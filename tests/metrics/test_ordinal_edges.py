"""Degenerate inputs of the ordinal metrics."""

import math

import numpy as np
import pytest

from harness.metrics.ordinal import _weighted_mean, ordinal_from_confusion


def test_one_dimensional_table_is_rejected_with_value_error():
    with pytest.raises(ValueError, match="table"):
        ordinal_from_confusion(np.array([3.0, 1.0, 2.0]), "exact")


def test_weighted_mean_drops_nan_values_even_with_positive_weight():
    assert _weighted_mean([float("nan"), 0.5, 0.25], [3, 1, 3]) == pytest.approx(0.3125)
    assert math.isnan(_weighted_mean([float("nan"), 0.5], [2, 0]))
