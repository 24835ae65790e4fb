"""Degenerate inputs of the max-|t| band: nan replicates."""

import numpy as np

from harness.metrics.selection import max_t_band


def test_nan_replicates_are_left_out_of_the_standard_error():
    col = np.array([0.2, np.nan, 0.4, np.nan, 0.9, 0.5])
    reps = np.column_stack([col, [0.1, 0.3, 0.2, 0.4, 0.3, 0.2]])
    _, _, se, _, _ = max_t_band(np.array([0.5, 0.25]), reps)
    np.testing.assert_allclose(se, np.nanstd(reps, axis=0, ddof=1), rtol=1e-12)
