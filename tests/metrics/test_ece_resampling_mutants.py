"""ResampledEce refuses an ask whose positions fall outside the N resampled items
(harness.metrics.ece_resampling). Mutation testing (bench/mutation.py) found the upper bound
untested: `pos.max() > n_items` in place of `>=` let position N through to an IndexError."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.ece_resampling import ResampledEce

CONF = np.array([0.6, 0.7, 0.8, 0.9])
HIT = np.array([1.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("positions", [[0, 1, 2, 4], [-1, 0, 1, 2]])
def test_positions_outside_0_to_n_minus_1_are_refused(positions) -> None:
    with pytest.raises(ValueError, match=r"position in 0\.\.N-1"):
        ResampledEce([(np.array(positions), CONF, HIT, "uniform")], n_items=4, n_bins=2)
    ResampledEce([(np.arange(4), CONF, HIT, "uniform")], n_items=4, n_bins=2)
