"""How many gold items (statistics.md section 8): the exact power of the exact McNemar test,
the sample size searched on it, Connor's approximation, the detectable difference, and the
kappa plan. The simulations print the figures quoted in statistics.md section 8:

    python -m pytest -q -s -p no:cacheprovider tests/metrics/test_power.py -k simulated
"""

from __future__ import annotations

import math
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pytest
from scipy.special import bdtr
from scipy.stats import binomtest

from harness.metrics.agreement import kappa_from_confusion
from harness.metrics.compare import mcnemar_exact
from harness.metrics.intervals import paired_difference_ci
from harness.metrics.power import (
    bootstrap_se_differences,
    connor_sample_size,
    mcnemar_critical_counts,
    mcnemar_detectable_difference,
    mcnemar_exact_power,
    mcnemar_sample_size,
    wald_detectable_difference,
    wald_sample_size,
)

TARGET = 0.8


def test_critical_counts_match_the_exact_binomial_test():
    # Two-sided exact binomial p-value at 1/2 in whole numbers: 2 sum_{i<=k} C(m, i) / 2^m.
    for alpha in (0.05, 0.05 / 3, 0.01, 0.2):
        got = mcnemar_critical_counts(200, alpha)
        for m in range(201):
            tail, want = 0, -1
            for k in range((m + 1) // 2):
                tail += math.comb(m, k)
                if Fraction(2 * tail, 2**m) <= Fraction(alpha):
                    want = k
            assert got[m] == want, (alpha, m)
    # ... and the same rejections as scipy's binomtest where it is quick to ask.
    assert [binomtest(k, 20).pvalue <= 0.05 for k in range(10)] == [
        k <= mcnemar_critical_counts(20, 0.05)[20] for k in range(10)
    ]


def _enumerated_power(n: int, p10: float, p01: float, alpha: float) -> float:
    """Every (b, c) table of n items, weighted by its multinomial probability, tested by the
    very function compare_setups uses."""
    total = 0.0
    for b in range(n + 1):
        for c in range(n - b + 1):
            log = (
                math.lgamma(n + 1)
                - math.lgamma(b + 1)
                - math.lgamma(c + 1)
                - math.lgamma(n - b - c + 1)
                + (b * math.log(p10) if b else 0.0)
                + (c * math.log(p01) if c else 0.0)
                + (n - b - c) * math.log(1 - p10 - p01)
            )
            a = np.array([True] * b + [False] * c, dtype=bool)
            if mcnemar_exact(a, ~a).p_value <= alpha:
                total += math.exp(log)
    return total


@pytest.mark.parametrize(
    ("n", "psi", "delta", "alpha"), [(25, 0.3, 0.1, 0.05), (40, 0.2, 0.15, 0.02)]
)
def test_exact_power_equals_full_enumeration_of_the_test(n, psi, delta, alpha):
    want = _enumerated_power(n, (psi + delta) / 2, (psi - delta) / 2, alpha)
    assert mcnemar_exact_power(n, psi, delta, alpha) == pytest.approx(want, abs=1e-12)


def test_connor_formula_by_hand():
    z = NormalDist().inv_cdf
    psi, d = 0.2, 0.05
    want = (z(0.975) * math.sqrt(psi) + z(0.8) * math.sqrt(psi - d * d)) ** 2 / d**2
    assert connor_sample_size(psi, d) == pytest.approx(want, rel=1e-9)
    assert math.isnan(connor_sample_size(0.2, 0.0))
    assert math.isnan(connor_sample_size(0.04, 0.05))  # more than the discordance


def test_sample_size_is_the_first_n_reaching_the_target():
    for psi, d, alpha in ((0.2, 0.05, 0.05), (0.1, 0.05, 0.05), (0.3, 0.1, 0.05 / 3)):
        n = mcnemar_sample_size(psi, d, alpha, TARGET)
        assert mcnemar_exact_power(n, psi, d, alpha) >= TARGET
        assert mcnemar_exact_power(n - 1, psi, d, alpha) < TARGET
        # The exact test is conservative: it needs more items than Connor's normal limit.
        assert n >= connor_sample_size(psi, d, alpha, TARGET)
    assert mcnemar_sample_size(0.04, 0.05) is None


def test_detectable_difference_is_the_inverse_of_the_sample_size():
    for n, psi in ((120, 26 / 120), (400, 0.15), (1000, 0.3)):
        d = mcnemar_detectable_difference(n, psi)
        assert mcnemar_exact_power(n, psi, d) >= TARGET
        assert mcnemar_exact_power(n, psi, d - 2e-3) < TARGET
        assert abs(mcnemar_sample_size(psi, d) - n) <= 2
    assert math.isnan(mcnemar_detectable_difference(5, 0.3))  # 5 items can never do it
    assert math.isnan(mcnemar_detectable_difference(100, 0.0))


def test_more_items_needed_for_smaller_differences_and_stricter_alpha():
    sizes = [mcnemar_sample_size(0.2, d) for d in (0.1, 0.05, 0.03)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert mcnemar_sample_size(0.2, 0.05, 0.05 / 6) > mcnemar_sample_size(0.2, 0.05, 0.05)


def _simulated_power(n, psi, delta, alpha, reps, rng):
    """The exact McNemar test on `reps` simulated gold sets of n items, vectorised."""
    p10, p01 = (psi + delta) / 2, (psi - delta) / 2
    counts = rng.multinomial(n, [p10, p01, 1 - psi], size=reps)
    b, c = counts[:, 0], counts[:, 1]
    p = np.where(b + c == 0, 1.0, np.minimum(1.0, 2 * bdtr(np.minimum(b, c), b + c, 0.5)))
    return float(np.mean(p <= alpha))


def test_vectorised_test_is_the_one_compare_setups_runs():
    for b, c in ((0, 0), (3, 0), (9, 2), (30, 18), (7, 7)):
        a = np.array([True] * b + [False] * c + [True] * 5)
        right_b = np.array([False] * b + [True] * c + [True] * 5)
        want = mcnemar_exact(a, right_b).p_value
        got = 1.0 if b + c == 0 else min(1.0, 2 * bdtr(min(b, c), b + c, 0.5))
        assert got == pytest.approx(want, rel=1e-12)


# Scenarios: (discordance, difference, alpha); the last plans at alpha / 3 (Holm over 3 pairs).
SCENARIOS = [(0.2, 0.05, 0.05), (0.1, 0.05, 0.05), (0.3, 0.1, 0.05 / 3), (0.06, 0.04, 0.05)]
REPS = 20_000  # Monte Carlo SE of a power near 0.8: sqrt(0.16 / 20,000) = 0.0028
TOLERANCE = 0.03  # target 0.8: the saw-tooth overshoot (< 0.015) plus 4 Monte Carlo SE


def test_simulated_power_at_the_computed_n_is_the_target():
    rng = np.random.default_rng(20261205)
    se = math.sqrt(TARGET * (1 - TARGET) / REPS)
    print(f"\nexact McNemar, {REPS} simulated gold sets each, Monte Carlo SE {se:.4f}")
    for psi, delta, alpha in SCENARIOS:
        n = mcnemar_sample_size(psi, delta, alpha, TARGET)
        n_connor = math.ceil(connor_sample_size(psi, delta, alpha, TARGET))
        sim = _simulated_power(n, psi, delta, alpha, REPS, rng)
        sim_connor = _simulated_power(n_connor, psi, delta, alpha, REPS, rng)
        exact = mcnemar_exact_power(n, psi, delta, alpha)
        print(
            f"psi={psi} delta={delta} alpha={alpha:.4f}: n={n} simulated power {sim:.3f} "
            f"(exact {exact:.4f}); Connor n={n_connor}: simulated {sim_connor:.3f}"
        )
        assert abs(sim - exact) <= 4 * se
        assert abs(sim - TARGET) <= TOLERANCE
        assert TARGET <= exact <= TARGET + 0.015


# ---- kappa ------------------------------------------------------------------------------


def _joint_population(k=3, acc_a=0.8, acc_b=0.7, fail_b=0.05):
    """Cell probabilities of (reference, A, B) for two setups erring independently."""
    c = k + 1
    p = np.zeros((k, c, c))
    for r in range(k):
        pa = np.full(c, (1 - acc_a) / (k - 1))
        pa[r], pa[k] = acc_a, 0.0
        pb = np.full(c, (1 - acc_b - fail_b) / (k - 1))
        pb[r], pb[k] = acc_b, fail_b
        p[r] = np.outer(pa, pb) / k
    return p


def _kappa_differences(tables):
    return kappa_from_confusion(tables.sum(axis=3)) - kappa_from_confusion(tables.sum(axis=2))


def _sample_items(p, n, rng):
    k, c, _ = p.shape
    cells = rng.choice(p.size, size=n, p=p.ravel())
    ref, rest = np.divmod(cells, c * c)
    a, b = np.divmod(rest, c)
    return ref, np.where(a == k, -1, a), np.where(b == k, -1, b)


def test_bootstrap_se_matches_the_percentile_interval_it_resamples_like():
    rng = np.random.default_rng(3)
    ref, a, b = _sample_items(_joint_population(), 400, rng)
    se_acc, se = bootstrap_se_differences(ref, a, b, 3, n_boot=4000, seed=1)
    iv = paired_difference_ci(ref, a, b, 3, metric="kappa", n_boot=4000, seed=2)
    assert se == pytest.approx((iv.high - iv.low) / (2 * 1.959964), rel=0.08)
    acc = paired_difference_ci(ref, a, b, 3, metric="accuracy", n_boot=4000, seed=2)
    assert se_acc == pytest.approx((acc.high - acc.low) / (2 * 1.959964), rel=0.08)


def test_cluster_bootstrap_sees_the_design_effect():
    """Clusters of 10 items that share whether A and B are right: the accuracy difference
    varies about 10 times more than for independent items (Kish: 1 + (m - 1) rho, rho = 1)."""
    rng = np.random.default_rng(5)
    ref, a, b = _sample_items(_joint_population(), 60, rng)
    ref, a, b = (np.repeat(x, 10) for x in (ref, a, b))
    clusters = np.repeat(np.arange(60), 10)
    se_iid, _ = bootstrap_se_differences(ref, a, b, 3, n_boot=3000, seed=0)
    se_cl, _ = bootstrap_se_differences(ref, a, b, 3, n_boot=3000, seed=0, clusters=clusters)
    assert (se_cl / se_iid) ** 2 == pytest.approx(10, rel=0.15)
    own, _ = bootstrap_se_differences(ref, a, b, 3, n_boot=3000, seed=0, clusters=np.arange(600))
    assert own == pytest.approx(se_iid, rel=0.1)  # one item a cluster: no design effect


def test_simulated_power_of_the_kappa_plan():
    """Plan from a 300-item pilot, then test the kappa difference on gold sets of the planned
    size: a Wald test with the planned SE should reach the target, which checks that the
    per-item spread SE x sqrt(n) carries over to the new n."""
    rng = np.random.default_rng(11)
    p = _joint_population()
    ref, a, b = _sample_items(p, 300, rng)
    _, se = bootstrap_se_differences(ref, a, b, 3, n_boot=2000, seed=0)
    sd = se * math.sqrt(300)
    true_diff = float(_kappa_differences((p * 1e7).round().astype(np.int64)[None])[0])
    n = math.ceil(wald_sample_size(sd, true_diff))
    tables = rng.multinomial(n, p.ravel(), size=REPS).reshape(REPS, *p.shape)
    diffs = _kappa_differences(tables)
    sim = float(np.mean(np.abs(diffs) / (sd / math.sqrt(n)) > 1.959964))
    mc = math.sqrt(TARGET * (1 - TARGET) / REPS)
    print(
        f"\nkappa: true difference {true_diff:.3f}, pilot SE {se:.4f} (n=300), planned n={n}: "
        f"simulated power {sim:.3f} (Monte Carlo SE {mc:.4f}); SD of the difference at n "
        f"{np.std(diffs):.4f} vs planned {sd / math.sqrt(n):.4f}"
    )
    # The pilot's SE is itself estimated (about 5% off at n = 300): a wider tolerance.
    assert abs(sim - TARGET) <= 0.06
    assert wald_detectable_difference(se) == pytest.approx(2.801585 * se, rel=1e-5)
