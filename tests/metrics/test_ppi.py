"""Prediction-powered inference and PPI++ for label prevalence (statistics.md section 12)."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from harness.metrics.ppi import (
    classical_mean,
    naive_mean,
    power_tuned_lambda,
    ppi_mean,
    ppi_plus_plus,
    prevalence,
)

Z95 = norm.ppf(0.975)  # 1.959964

# Hand-computed case: 4 gold items, 8 unlabeled items.
Y4 = np.array([1.0, 1, 1, 0])
F4 = np.array([1.0, 0, 1, 0])  # the LLM misses gold item 2
FU8 = np.array([1.0, 1, 0, 0, 0, 0, 0, 0])


def test_ppi_hand_computed():
    # mean_N(f) = 2/8 = 0.25; y - f = [0, 1, 0, 0], rectifier = 0.25 -> theta = 0.5.
    # Var(f_unl) = 0.25 * 0.75 = 0.1875 (ddof 0), / N = 0.0234375;
    # Var(y - f) = 0.25 * 0.75 = 0.1875, / n = 0.046875;
    # SE^2 = 0.0703125 = 9/128, SE = 3 / sqrt(128) = 0.265165;
    # interval 0.5 -+ 1.959964 * 0.265165 = 0.5 -+ 0.519714 = [-0.019714, 1.019714]
    # (not clipped to [0, 1]: four gold items leave the rectifier that uncertain).
    est = ppi_mean(Y4, F4, FU8)
    assert est.estimate == pytest.approx(0.5)
    assert est.se == pytest.approx(3 / math.sqrt(128))
    assert est.low == pytest.approx(0.5 - Z95 * 3 / math.sqrt(128))
    assert est.high == pytest.approx(0.5 + Z95 * 3 / math.sqrt(128))
    assert est.low == pytest.approx(-0.019714, abs=1e-6)
    assert (est.n, est.N, est.lam, est.level) == (4, 8, 1.0, 0.95)


def test_ppi_plus_plus_hand_computed():
    # Cov(y, f_gold), ddof 0: means 0.75 and 0.5; products of deviations
    # 0.25*0.5, 0.25*-0.5, 0.25*0.5, -0.75*-0.5 = 0.125, -0.125, 0.125, 0.375 -> sum 0.5,
    # / 4 = 0.125. Var(f) pooled over 12 values (4 ones), ddof 1: (4*(2/3)^2 + 8*(1/3)^2)
    # / 11 = 8/33. lam = 0.125 / ((1 + 4/8) * 8/33) = 11/32 = 0.34375.
    assert power_tuned_lambda(Y4, F4, FU8) == pytest.approx(11 / 32)
    # theta = lam * 0.25 + mean(y - lam f) = 0.75 - lam * (0.5 - 0.25) = 0.6640625.
    # y - lam f = [21/32, 1, 21/32, 0], mean 0.578125, Var (ddof 0) = 0.131103516, / 4 =
    # 0.032775879; lam^2 * 0.1875 / 8 = 0.002769470; SE = sqrt(0.035545349) = 0.188535.
    est = ppi_plus_plus(Y4, F4, FU8)
    assert est.lam == pytest.approx(11 / 32)
    assert est.estimate == pytest.approx(0.6640625)
    assert est.se == pytest.approx(0.188535, abs=1e-6)
    assert est.low == pytest.approx(0.6640625 - Z95 * est.se)
    assert est.high == pytest.approx(0.6640625 + Z95 * est.se)


def test_naive_and_classical_hand_computed():
    naive = naive_mean(FU8)  # 0.25, SE = sqrt(0.1875 / 8) = 0.153093
    assert naive.estimate == pytest.approx(0.25)
    assert naive.se == pytest.approx(math.sqrt(0.1875 / 8))
    assert (naive.n, naive.N) == (0, 8) and math.isnan(naive.lam)
    classical = classical_mean(Y4)  # 0.75, SE = sqrt(0.1875 / 4) = 0.216506
    assert classical.estimate == pytest.approx(0.75)
    assert classical.se == pytest.approx(math.sqrt(0.1875 / 4))
    assert classical.low == pytest.approx(0.75 - Z95 * math.sqrt(0.1875 / 4))
    assert (classical.n, classical.N, classical.lam) == (4, 0, 0.0)


def test_lambda_zero_is_classical_exactly():
    rng = np.random.default_rng(3)
    y = (rng.random(60) < 0.4).astype(float)
    fg = rng.random(60)
    fu = rng.random(300)
    a, b = ppi_mean(y, fg, fu, lam=0.0), classical_mean(y)
    assert (a.estimate, a.low, a.high, a.se, a.n) == (b.estimate, b.low, b.high, b.se, b.n)
    # lam = 0 ignores the unlabeled side altogether, so it also works with none.
    c = ppi_mean(y, fg, np.array([]), lam=0.0)
    assert (c.estimate, c.se) == (b.estimate, b.se)


def test_perfect_llm_on_gold():
    # f == y on every gold item: the rectifier is 0 with variance 0, so PPI is exactly
    # the LLM-only mean over the unlabeled items with SE^2 = Var(f) / N.
    y = np.array([1.0] * 30 + [0.0] * 70)
    fu = np.array([1.0] * 120 + [0.0] * 280)
    ppi = ppi_mean(y, y, fu)
    naive = naive_mean(fu)
    assert ppi.estimate == naive.estimate == pytest.approx(0.3)
    assert ppi.se == pytest.approx(naive.se) and ppi.se == pytest.approx(math.sqrt(0.21 / 400))
    # PPI++ does better: with equal means on both sides Cov(y, f) = v = 0.21 and the
    # pooled Var(f) = v (n+N)/(n+N-1), so lam = N/(n+N) * (n+N-1)/(n+N) = 0.7984, close
    # to N/(n+N) = 0.8, the weight of the pooled mean over all n + N items; its SE^2 =
    # lam^2 v/N + (1-lam)^2 v/n is then ~ v/(n+N), below Var(f)/N.
    pp = ppi_plus_plus(y, y, fu)
    assert pp.lam == pytest.approx(0.8 * 499 / 500)
    assert pp.estimate == pytest.approx(0.3)
    assert pp.se == pytest.approx(math.sqrt(0.21 / 500), rel=1e-3)
    assert pp.se < ppi.se


def test_power_tuned_lambda_edges():
    y = np.array([1.0, 0, 1, 0, 1, 0])
    # The LLM never says the class: Var(f) = 0, f carries nothing -> 0 (classical).
    assert power_tuned_lambda(y, np.zeros(6), np.zeros(10)) == 0.0
    # Anti-correlated LLM: clipped at 0.
    assert power_tuned_lambda(y, 1 - y, np.tile([0.0, 1.0], 20)) == 0.0
    # f = y / 2 (under-confident probabilities): unclipped value 2 / (1 + n/N) > 1 -> 1.
    assert power_tuned_lambda(y, y / 2, np.tile([0.0, 0.5], 500)) == 1.0
    # No unlabeled items: nothing to weight.
    assert power_tuned_lambda(y, y, np.array([])) == 0.0


def test_degenerate_sizes_give_nan_not_zero_width():
    one = ppi_mean(np.array([1.0]), np.array([1.0]), FU8)
    assert one.estimate == pytest.approx(0.25)  # mean_N(f) 0.25 + rectifier (1 - 1)
    assert math.isnan(one.se) and math.isnan(one.low) and one.n == 1
    empty = ppi_mean(np.array([]), np.array([]), FU8)
    assert math.isnan(empty.estimate) and empty.n == 0
    assert math.isnan(naive_mean(np.array([])).estimate)
    assert math.isnan(classical_mean(np.array([])).estimate)


def test_level_and_validation():
    wide, narrow = ppi_mean(Y4, F4, FU8, level=0.99), ppi_mean(Y4, F4, FU8, level=0.8)
    assert narrow.width < wide.width and narrow.level == 0.8
    with pytest.raises(ValueError, match="level"):
        ppi_mean(Y4, F4, FU8, level=1.0)
    with pytest.raises(ValueError, match="length"):
        ppi_mean(Y4, F4[:3], FU8)
    with pytest.raises(ValueError, match="finite"):
        naive_mean(np.array([0.0, np.nan]))


def test_prevalence_hard_labels_with_failures():
    # 3 classes. Gold: 6 items, one without reference (dropped), one LLM failure.
    gold_ref = np.array([0, 0, 1, 2, 1, -1])
    gold_pred = np.array([0, 1, 1, 2, -1, 0])
    unl_pred = np.array([0, 0, 1, 1, 2, -1, -1, 0, 1, 2])
    rows = prevalence(gold_ref, gold_pred, unl_pred, 3)
    assert [r.label for r in rows] == [0, 1, 2]
    assert all(r.n_failed_gold == 1 and r.n_failed_unlabeled == 2 for r in rows)
    r0 = rows[0]
    # Class 0: y = [1,1,0,0,0], f = [1,0,0,0,0] -> rectifier 1/5; mean_N(f) = 3/10.
    assert r0.ppi.estimate == pytest.approx(0.3 + 0.2)
    assert (r0.ppi.n, r0.ppi.N) == (5, 10)
    # Naive: answered unlabeled items only (8), 3 of them say 0.
    assert r0.naive.estimate == pytest.approx(3 / 8) and r0.naive.N == 8
    assert r0.classical.estimate == pytest.approx(2 / 5)
    # PPI estimates sum to 1 + gold failure share - unlabeled failure share.
    assert sum(r.ppi.estimate for r in rows) == pytest.approx(1 + 1 / 5 - 2 / 10)
    assert sum(r.naive.estimate for r in rows) == pytest.approx(1.0)


def test_prevalence_probabilities_match_manual_ppi():
    rng = np.random.default_rng(7)
    k, n, big_n = 3, 40, 200
    gold_ref = rng.integers(0, k, n)
    gold_p = rng.dirichlet(np.ones(k), n)
    unl_p = rng.dirichlet(np.ones(k), big_n)
    gold_p[0] = np.nan  # a failed item on each side
    unl_p[5] = np.nan
    rows = prevalence(gold_ref, gold_p, unl_p, k)
    y1 = (gold_ref == 1).astype(float)
    f1 = np.nan_to_num(gold_p[:, 1])
    u1 = np.nan_to_num(unl_p[:, 1])
    assert rows[1].ppi == ppi_mean(y1, f1, u1)
    assert rows[1].ppi_plus_plus == ppi_plus_plus(y1, f1, u1)
    assert rows[1].naive.estimate == pytest.approx(np.delete(unl_p[:, 1], 5).mean())
    with pytest.raises(ValueError, match="both"):
        prevalence(gold_ref, gold_ref, unl_p, k)
    bad = unl_p.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="all nan"):
        prevalence(gold_ref, gold_p, bad, k)


def test_coverage_biased_llm():
    # True prevalence 0.3; the LLM finds 80 % of positives and flags 15 % of negatives, so
    # it reports 0.345 on average: a bias of 0.045, about 4 naive standard errors.
    p, n, big_n, seeds = 0.3, 200, 2000, 500
    hits = {"naive": 0, "ppi": 0, "ppi_plus_plus": 0, "classical": 0}
    widths = {"ppi": 0.0, "ppi_plus_plus": 0.0, "classical": 0.0}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        y = rng.random(n + big_n) < p
        f = np.where(y, rng.random(n + big_n) < 0.8, rng.random(n + big_n) < 0.15)
        yg, fg, fu = y[:n].astype(float), f[:n].astype(float), f[n:].astype(float)
        ests = {
            "naive": naive_mean(fu),
            "ppi": ppi_mean(yg, fg, fu),
            "ppi_plus_plus": ppi_plus_plus(yg, fg, fu),
            "classical": classical_mean(yg),
        }
        for name, est in ests.items():
            hits[name] += est.low <= p <= est.high
        for name in widths:
            widths[name] += ests[name].width
    cover = {name: h / seeds for name, h in hits.items()}
    assert cover["naive"] < 0.2
    for name in ("ppi", "ppi_plus_plus", "classical"):
        assert 0.92 <= cover[name] <= 0.98, (name, cover[name])
    # Observed: naive 0.012, PPI 0.940, PPI++ 0.932, classical 0.934; mean widths PPI++
    # 0.101 < PPI 0.118 < classical 0.127.
    assert widths["ppi_plus_plus"] < widths["ppi"] < widths["classical"]


def test_matches_ppi_py():
    # A plain import, not importorskip: ppi-python is in the dev extra, and a reference
    # check that silently skips is one that never runs (issue 17).
    import ppi_py
    from ppi_py import classical_mean_ci

    rng = np.random.default_rng(11)
    cases = [(Y4, F4, FU8)]
    for n, big_n, proba in [(50, 500, False), (80, 300, True), (30, 1000, False)]:
        y = (rng.random(n + big_n) < 0.35).astype(float)
        if proba:
            f = np.clip(0.6 * y + 0.4 * rng.random(n + big_n), 0, 1)
        else:
            f = np.where(rng.random(n + big_n) < 0.85, y, 1 - y)
        cases.append((y[:n], f[:n], f[n:]))
    for y, fg, fu in cases:
        for lam in (1.0, 0.5, None):
            ours = ppi_mean(y, fg, fu, lam=lam) if lam is not None else ppi_plus_plus(y, fg, fu)
            low, high = ppi_py.ppi_mean_ci(y, fg, fu, alpha=0.05, lam=lam)
            point = ppi_py.ppi_mean_pointestimate(y, fg, fu, lam=lam)
            assert ours.estimate == pytest.approx(float(np.ravel(point)[0]), abs=1e-12)
            assert ours.low == pytest.approx(float(np.ravel(low)[0]), abs=1e-12)
            assert ours.high == pytest.approx(float(np.ravel(high)[0]), abs=1e-12)
        low, high = classical_mean_ci(y, alpha=0.05)
        ours = classical_mean(y)
        assert (ours.low, ours.high) == pytest.approx((float(low), float(high)), abs=1e-12)
