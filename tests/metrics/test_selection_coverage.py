"""The winner's curse, simulated (statistics.md section 2; issue 17 item 2).

10 setups of equal true accuracy 0.80 label the same 100 gold items (each right on an item
independently); the one with the highest observed accuracy is chosen. Its own 95% interval
covers 0.80 about 73% of the time; its selection-adjusted interval (simultaneous over the
10 setups) must cover it at least 93% of the time.

Monte Carlo error: with S = 1000 simulated gold sets a coverage near 0.95 has a standard
error of sqrt(0.95 * 0.05 / 1000) = 0.0069, so 0.93 is four standard errors below what the
band measures (0.959); B = 400 replicates per gold set is enough for the 0.95 quantile of
the max-|t| (20 replicates beyond it). The seeds are fixed, so the verdict is the same on
every run. About 4 s of CPU.

Print the figures: python tests/metrics/test_selection_coverage.py
"""

from __future__ import annotations

import numpy as np

from harness.metrics import accuracy_ci
from harness.metrics.selection import simultaneous_intervals

TRUTH, N_ITEMS, N_SETUPS = 0.80, 100, 10
N_GOLD_SETS, N_BOOT, LEVEL = 1000, 400, 0.95


def simulate(n_gold_sets: int = N_GOLD_SETS, n_boot: int = N_BOOT, seed: int = 20261205):
    """Coverage of 0.80 by the chosen setup's adjusted and unadjusted intervals, the
    family-wise coverage (all 10 adjusted intervals at once), and the chosen one's bias."""
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 2, (n_gold_sets, N_ITEMS))
    right = rng.random((n_gold_sets, N_ITEMS, N_SETUPS)) < TRUTH
    preds = np.where(right, reference[..., None], 1 - reference[..., None])
    adjusted = np.zeros(n_gold_sets, dtype=bool)
    unadjusted = np.zeros(n_gold_sets, dtype=bool)
    family = np.zeros(n_gold_sets, dtype=bool)
    observed = right.mean(axis=1)  # (S, 10) accuracies
    chosen = observed.argmax(axis=1)
    for s in range(n_gold_sets):
        band = simultaneous_intervals(
            reference[s], preds[s], 2, metrics=("accuracy",), n_boot=n_boot, seed=s, level=LEVEL
        )["accuracy"]
        j = chosen[s]
        assert band.estimate[j] == observed[s, j]
        adjusted[s] = band.low[j] <= TRUTH <= band.high[j]
        family[s] = np.all((band.low <= TRUTH) & (band.high >= TRUTH))
        # Its own interval, as the report gives it beside every setup.
        own = accuracy_ci(reference[s], preds[s][:, j], n_boot=n_boot, seed=s, level=LEVEL)
        unadjusted[s] = own.low <= TRUTH <= own.high
    best = observed[np.arange(n_gold_sets), chosen]
    return {
        "adjusted": adjusted.mean(),
        "unadjusted": unadjusted.mean(),
        "family_wise": family.mean(),
        "bias": (best - TRUTH).mean(),
        "mc_se_adjusted": np.sqrt(adjusted.mean() * (1 - adjusted.mean()) / n_gold_sets),
        "mc_se_unadjusted": np.sqrt(unadjusted.mean() * (1 - unadjusted.mean()) / n_gold_sets),
    }


def test_the_chosen_setups_adjusted_interval_keeps_its_coverage_after_selection():
    got = simulate()
    assert got["adjusted"] >= 0.93, got
    # All ten at once: the band's own promise, a little under 0.95 at 100 items (the
    # bootstrap's approximation of the max-|t|), never near the unadjusted figure.
    assert got["family_wise"] >= 0.92, got
    # The curse it corrects: the chosen setup's own interval covers far less than 95%, and
    # its estimate is biased up (the issue measured 0.73 and +0.06).
    assert 0.65 <= got["unadjusted"] <= 0.82, got
    assert got["adjusted"] - got["unadjusted"] > 0.1, got
    assert 0.04 <= got["bias"] <= 0.08, got


if __name__ == "__main__":
    for key, value in simulate().items():
        print(f"{key:>18}: {value:.4f}")
