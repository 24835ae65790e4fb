"""The fold split of the cross-fit (harness.metrics.cross_fit.fold_ids; statistics.md).
Mutation testing (bench/mutation.py) found its lower bound untested: one fold would train
every recalibrator on nothing (no item is outside the only fold)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.cross_fit import fold_ids


@pytest.mark.parametrize("clusters", [None, np.repeat(np.arange(5), 2)])
def test_fewer_than_two_folds_is_refused(clusters) -> None:
    with pytest.raises(ValueError, match="2 <= folds"):
        fold_ids(10, folds=1, clusters=clusters)
    ids = fold_ids(10, folds=2, clusters=clusters)
    assert sorted(set(ids.tolist())) == [0, 1]
