"""Juries by simulation (docs/statistics.md section 7): out-of-fold weights do not let the
gold labels leak into a jury's accuracy, and a panel of independent members beats each of
them. Run with -s to see the figures the docs quote."""

from __future__ import annotations

import numpy as np

from harness.score.juries import combine, fold_of, member_accuracy, oof_weights, weights_from

N, K, REPS = 30, 2, 400


def members(rng: np.random.Generator, ref: np.ndarray, accuracies: list[float]) -> np.ndarray:
    """Independent members: right with their accuracy, else a uniformly drawn wrong label."""
    n = len(ref)
    cols = []
    for acc in accuracies:
        right = rng.random(n) < acc
        wrong = (ref + rng.integers(1, K, n)) % K
        cols.append(np.where(right, ref, wrong))
    return np.column_stack(cols)


def jury_accuracy(accuracies: list[float], rule: str, oof: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(REPS)
    for r in range(REPS):
        ref = rng.integers(0, K, N)
        votes = members(rng, ref, accuracies)
        if oof:
            w = oof_weights(votes, ref, K, fold_of(N, 5, seed=r))
        else:  # the leak this module prevents: every item's own label in its weights
            w = weights_from(*member_accuracy(votes, ref), K)[None, :]
        pred, _ = combine(votes, K, w, rule)
        out[r] = (pred == ref).mean()
    return out


def test_out_of_fold_weights_do_not_inflate_a_jury_of_coin_flips():
    oof = jury_accuracy([0.5] * 5, "weighted", oof=True, seed=1)
    leak = jury_accuracy([0.5] * 5, "weighted", oof=False, seed=1)
    se = oof.std(ddof=1) / np.sqrt(REPS)
    print(
        f"\ncoin-flip jury, n={N}, {REPS} gold sets: out of fold {oof.mean():.3f} "
        f"(MC se {se:.3f}); in-sample {leak.mean():.3f}"
    )
    assert abs(oof.mean() - 0.5) < 3 * se + 0.005  # the truth: 0.5
    assert leak.mean() - 0.5 > 6 * se  # the leak the out-of-fold weights remove is visible


def test_a_panel_of_independent_members_beats_each_and_weights_follow_the_best():
    panel = jury_accuracy([0.7] * 5, "majority", oof=True, seed=2)
    mixed = [0.9, 0.6, 0.6, 0.6, 0.6]
    by_vote = jury_accuracy(mixed, "majority", oof=True, seed=3)
    weighted = jury_accuracy(mixed, "weighted", oof=True, seed=3)
    se = panel.std(ddof=1) / np.sqrt(REPS)
    print(
        f"5 members at 0.70: majority {panel.mean():.3f} (MC se {se:.3f}); "
        f"members at {mixed}: majority {by_vote.mean():.3f}, weighted {weighted.mean():.3f}"
    )
    assert panel.mean() > 0.7 + 6 * se  # binomial truth: P(>= 3 of 5 right) = 0.837
    assert weighted.mean() > by_vote.mean() + 0.02  # the reliable member gets its say
