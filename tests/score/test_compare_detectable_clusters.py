"""The comparisons table's detectable difference on clustered items (statistics.md
section 3): the independent-items SE times the square root of the design effect, the same
design effect the power section uses. Clusters of m identical items carry the information
of one item each, so the detectable difference grows by about sqrt(m)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics.compare import design_effect, minimum_detectable_difference
from harness.score.compare import compare_setups
from harness.score.power import power_basis

BOOT = {"n_boot": 2000, "seed": 3, "level": 0.95}
SIZE = 9


def gold(seed: int = 1, clusters: int = 60) -> tuple[np.ndarray, dict, np.ndarray]:
    """Per cluster one (A right, B right) pattern, copied to its SIZE items."""
    rng = np.random.default_rng(seed)
    a = rng.random(clusters) < 0.8
    b = rng.random(clusters) < 0.7
    ref = np.zeros(clusters * SIZE, dtype=np.int64)
    preds = {
        "A": np.repeat(np.where(a, 0, 1), SIZE),
        "B": np.repeat(np.where(b, 0, 1), SIZE),
    }
    return ref, preds, np.repeat(np.arange(clusters), SIZE)


def test_identical_items_in_a_cluster_widen_the_detectable_difference_by_sqrt_size():
    ref, preds, groups = gold()
    (plain,) = compare_setups(ref, preds, 2, BOOT)
    (clustered,) = compare_setups(ref, preds, 2, BOOT, clusters=groups)
    mc = plain["mcnemar"]
    # Without clusters: the independent-items figure, unchanged and without a design effect.
    assert plain["minimum_detectable_difference"] == pytest.approx(
        minimum_detectable_difference(mc["a_only_right"], mc["b_only_right"], plain["n"]),
        abs=1e-6,
    )
    assert "design_effect" not in plain
    ratio = clustered["minimum_detectable_difference"] / plain["minimum_detectable_difference"]
    assert ratio == pytest.approx(math.sqrt(SIZE), rel=0.15)
    assert clustered["design_effect"] == pytest.approx(SIZE, rel=0.3)


def test_the_design_effect_is_the_power_sections():
    ref, preds, groups = gold(seed=2)
    (row,) = compare_setups(ref, preds, 2, BOOT, clusters=groups)
    basis = power_basis(ref, preds, 2, BOOT, groups)
    assert row["design_effect"] == pytest.approx(basis["design_effect"], abs=1e-6)


def test_degenerate_design_effects_leave_the_independent_figure():
    iid = minimum_detectable_difference(20, 10, 200)
    assert minimum_detectable_difference(20, 10, 200, design_effect=4.0) == pytest.approx(2 * iid)
    for deff in (None, float("nan"), 0.0, 0.5, 1.0):  # one cluster: the bootstrap SE is 0
        assert minimum_detectable_difference(20, 10, 200, design_effect=deff) == iid
    assert math.isnan(design_effect(0.1, 0, 0, 50))  # no discordant item: nothing to scale
    assert math.isnan(design_effect(float("nan"), 3, 1, 50))
    # One cluster: every replicate is the whole gold set, the figure stays finite.
    ref, preds, _ = gold(clusters=5)
    (row,) = compare_setups(ref, preds, 2, BOOT, clusters=np.zeros(ref.size, dtype=np.int64))
    assert math.isfinite(row["minimum_detectable_difference"])
