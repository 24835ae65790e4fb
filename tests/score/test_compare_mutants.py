"""The comparisons table's numbers are JSON numbers (harness.score.compare; statistics.md
section 9). Mutation testing found that dropping `num()` around the design effect, the
detectable difference or the Holm p-value went unnoticed: the other tests compare them with
a tolerance, so neither the 6-place rounding nor an undefined design effect written as NaN
(metrics.json is strict JSON: the writer turns NaN into null and warns of a prelabel bug)
was checked."""

from __future__ import annotations

import json
import math

import numpy as np
from conftest import floats

from harness.score.compare import compare_setups

BOOT = {"n_boot": 200, "seed": 4, "level": 0.95}


def clustered_gold() -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """40 items in 8 clusters of 5; A wrong on 6 items, B on 13 others, so b = 13, c = 6:
    an exact p of 2 * P(Bin(19, 1/2) <= 6) = 0.167..., with more than 6 decimals."""
    ref = np.arange(40) % 2
    a, b = ref.copy(), ref.copy()
    a[[0, 7, 14, 21, 28, 35]] ^= 1
    b[[1, 2, 3, 9, 11, 16, 18, 23, 25, 30, 32, 37, 39]] ^= 1
    return ref, {"A": a, "B": b}, np.arange(40) // 5


def test_every_number_of_a_comparison_row_is_rounded_to_six_places() -> None:
    ref, preds, groups = clustered_gold()
    for clusters in (None, groups):
        (row,) = compare_setups(ref, preds, 2, BOOT, clusters=clusters)
        # The unrounded figures have more digits: the check below would pass on any value.
        assert row["minimum_detectable_difference"] != 0
        assert row["mcnemar"]["p_holm"] not in (0.0, 1.0)
        for key in ("minimum_detectable_difference", "design_effect"):
            x = row.get(key)
            assert x is None or x == round(x, 6), (key, x)
        assert row["mcnemar"]["p_holm"] == round(row["mcnemar"]["p_holm"], 6)
        assert all(x == round(x, 6) for x in floats(row))
    assert "design_effect" in row  # the clustered row has one, and it is rounded too


def test_an_undefined_design_effect_is_null_not_nan() -> None:
    # A and B right and wrong on the same items: no discordant pair, so the independent
    # items' SE is 0 and the design effect (a ratio over it) is undefined.
    ref, preds, groups = clustered_gold()
    same = {"A": preds["A"], "B": preds["A"].copy()}
    (row,) = compare_setups(ref, same, 2, BOOT, clusters=groups)
    assert row["design_effect"] is None
    json.dumps(row, allow_nan=False)  # strict JSON, as metrics.json is written
    assert not any(math.isnan(x) for x in floats(row))
