"""The power plan of statistics.md section 8 checked against the verdict the report gives,
not just the exact test it plans for: `compare_setups` (McNemar exact, Holm over the pairs,
and the paired bootstrap interval of the accuracy difference must exclude 0) run on
simulated gold sets of the planned size. Prints the figures quoted in section 8:

    python -m pytest -q -s -p no:cacheprovider tests/metrics/test_verdict_power.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics.power import mcnemar_exact_power, mcnemar_sample_size
from harness.score.compare import compare_setups

SEED = 20261206
GOLD_SETS = 4000  # Monte Carlo SE about 0.0063 at power 0.8
N_BOOT = 1000  # the config default (report bootstrap), so the verdict is the production one
BOTH_WRONG = 0.10  # concordant split: neither the test nor the interval depends on it

# (setups, discordance, difference, n from the section 8 table)
ROWS = [
    (2, 0.20, 0.05, 658),
    (2, 0.10, 0.05, 337),
    # A third setup that ties B item for item keeps A-vs-B at Holm's first step in every
    # gold set (p(A,C) = p(A,B), p(B,C) = 1), so the verdict is tested at exactly alpha / 3:
    # the case the plan's alpha / k is written for. A verdict without Holm tests at alpha and
    # has power about 0.90 here.
    (3, 0.30, 0.10, 325),
]


def _gold_sets(rng: np.random.Generator, n: int, psi: float, delta: float):
    """Reference labels and the correctness of A and B, items independent, with
    P(only A right) = (psi + delta) / 2 and P(only B right) = (psi - delta) / 2."""
    probs = [(psi + delta) / 2, (psi - delta) / 2, 1.0 - psi - BOTH_WRONG, BOTH_WRONG]
    cell = rng.choice(4, size=(GOLD_SETS, n), p=probs)  # A only, B only, both, neither
    ref = rng.integers(0, 2, size=(GOLD_SETS, n))
    a_right = (cell == 0) | (cell == 2)
    b_right = (cell == 1) | (cell == 2)
    return ref, np.where(a_right, ref, 1 - ref), np.where(b_right, ref, 1 - ref)


@pytest.mark.parametrize(("setups", "psi", "delta", "n"), ROWS)
def test_simulated_verdict_power_matches_the_exact_plan(setups, psi, delta, n):
    alpha = 0.05 / math.comb(setups, 2)  # report.power.holm: true plans at alpha / k
    assert mcnemar_sample_size(psi, delta, alpha) == n
    exact = mcnemar_exact_power(n, psi, delta, alpha)
    rng = np.random.default_rng(SEED)
    ref, pred_a, pred_b = _gold_sets(rng, n, psi, delta)
    told_apart = 0
    for i in range(GOLD_SETS):
        preds = {"A": pred_a[i], "B": pred_b[i]}
        if setups == 3:
            preds["C"] = pred_b[i].copy()
        boot = {"n_boot": N_BOOT, "seed": int(rng.integers(2**31)), "level": 0.95}
        rows = compare_setups(ref[i], preds, 2, boot)
        (row,) = [r for r in rows if (r["a"], r["b"]) == ("A", "B")]
        told_apart += row["verdict"] == "A better"
    power = told_apart / GOLD_SETS
    mc_se = math.sqrt(exact * (1.0 - exact) / GOLD_SETS)
    print(
        f"\n{setups} setups, discordance {psi}, difference {delta}, alpha per pair "
        f"{alpha:.4f}, n {n}: verdict power {power:.3f} vs exact {exact:.4f} "
        f"({GOLD_SETS} gold sets, MC SE {mc_se:.4f}, {N_BOOT} bootstrap replicates)"
    )
    assert abs(power - exact) <= max(4.0 * mc_se, 0.04)
