"""The plan of how many gold items (harness.score.power) on degenerate bases: copies of the
best setup, a kappa difference with no spread, and a pilot of known size."""

from __future__ import annotations

import numpy as np

from harness.report.power_md import power_lines
from harness.score.power import pilot_basis, power_basis, power_block

BOOT = {"n_boot": 300, "seed": 1, "level": 0.95}


def _gold(seed: int = 4):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 3, 200)
    best = np.where(rng.random(200) < 0.9, ref, (ref + 1) % 3)
    other = np.where(rng.random(200) < 0.7, ref, (ref + 2) % 3)
    return ref, best, other


def test_a_copy_of_the_best_setup_is_not_the_pair_planned_from():
    """Two juries of the same members label every item alike: they can never be told apart,
    so the plan is made from the best setup and the most accurate one that differs."""
    ref, best, other = _gold()
    preds = {"jury_a": best, "jury_b": best.copy(), "single": other}
    basis = power_basis(ref, preds, 3, BOOT)
    assert basis["setups"] == ["jury_a", "single"]
    assert basis["skipped_identical"] == ["jury_b"]
    assert basis["a_only_right"] + basis["b_only_right"] > 0
    block = power_block(basis)
    assert block["kappa"]["detectable_difference"] > 0
    text = "\n".join(power_lines(block))
    assert "Not planned from `jury_b`: the same labels as the first on every item." in text


def test_a_kappa_difference_with_no_spread_plans_nothing_instead_of_detecting_zero():
    ref, best, _ = _gold()
    basis = power_basis(ref, {"a": best, "b": best.copy()}, 3, BOOT)  # only copies
    assert basis["kappa_difference_se"] == 0.0
    block = power_block(basis)
    assert block["kappa"]["se"] is None
    assert "no spread" in block["kappa"]["note"]
    assert "detectable_difference" not in block["kappa"]
    lines = power_lines(block)
    assert not any("kappa 0.000" in line for line in lines)
    # No kappa row in the table: no footnote about kappa's rows either.
    assert not any("Kappa's figures hold" in line for line in lines)


def test_a_pilot_of_known_size_gives_the_range_of_its_discordance():
    block = power_block(pilot_basis(0.2, 100), {"accuracy_differences": [0.05]})
    disc = block["accuracy"]["discordance"]
    assert disc["low"] < 0.2 < disc["high"] and disc["n"] == 100
    [target] = block["accuracy"]["targets"]
    low, high = target["items_needed_range"]
    assert low < target["items_needed"] < high
    # Without the pilot's size there is nothing to put an interval on.
    unsized = power_block(pilot_basis(0.2, None), {"accuracy_differences": [0.05]})
    assert unsized["accuracy"]["discordance"]["low"] is None
    assert "items_needed_range" not in unsized["accuracy"]["targets"][0]
