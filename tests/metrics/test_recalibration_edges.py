"""Validation of the probs matrix given with conf."""

import numpy as np
import pytest

from harness.metrics.recalibration import fit_recalibrator


def test_each_row_conf_must_be_one_of_its_own_entries():
    # Each column matches some row's conf, but row 2's conf 0.5 is none of its entries.
    probs = np.array([[0.7, 0.3], [0.4, 0.6], [0.8, 0.2]])
    conf = np.array([0.7, 0.6, 0.5])
    with pytest.raises(ValueError, match="each conf"):
        fit_recalibrator("temperature", conf, np.array([1, 0, 1]), probs, np.array([0, 0, 0]))
