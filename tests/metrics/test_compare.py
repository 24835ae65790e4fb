"""Comparing two setups on the same items: McNemar, Holm, SE of an accuracy difference,
minimum detectable difference (statistics.md section 7)."""

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from harness.metrics.compare import (
    McNemar,
    can_tell_apart,
    holm,
    mcnemar_exact,
    minimum_detectable_difference,
    se_accuracy_difference,
)
from harness.metrics.intervals import paired_difference_ci


def _paired(n11: int, b: int, c: int, n00: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors with the given paired cells (A right/B right, b, c, both wrong)."""
    a = np.array([1] * n11 + [1] * b + [0] * c + [0] * n00, dtype=bool)
    bb = np.array([1] * n11 + [0] * b + [1] * c + [0] * n00, dtype=bool)
    return a, bb


# --- McNemar ---------------------------------------------------------------------------


def test_mcnemar_hand_computed_b10_c2():
    a, bb = _paired(30, 10, 2, 8)
    rng = np.random.default_rng(0)
    perm = rng.permutation(a.size)  # order must not matter
    result = mcnemar_exact(a[perm], bb[perm])
    assert (result.b, result.c, result.n) == (10, 2, 50)
    # Two-sided exact: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    assert result.p_value == pytest.approx(158 / 4096, rel=1e-12)
    assert result.p_value == pytest.approx(binomtest(10, 12, 0.5).pvalue, rel=1e-12)
    assert result.difference == pytest.approx(8 / 50)
    assert result.discordant == 12


def test_mcnemar_b_and_c_orientation_and_symmetry():
    a, bb = _paired(5, 2, 10, 3)
    ab = mcnemar_exact(a, bb)
    ba = mcnemar_exact(bb, a)
    assert (ab.b, ab.c) == (2, 10)
    assert (ba.b, ba.c) == (10, 2)
    assert ab.p_value == pytest.approx(ba.p_value)
    assert ab.difference == pytest.approx(-8 / 20)


def test_mcnemar_concordant_items_do_not_change_p():
    p_small = mcnemar_exact(*_paired(0, 7, 1, 0)).p_value
    p_large = mcnemar_exact(*_paired(900, 7, 1, 900)).p_value
    assert p_small == pytest.approx(p_large)
    assert p_small == pytest.approx(2 * (1 + 8) / 256)


def test_mcnemar_against_statsmodels_oracle():
    contingency = pytest.importorskip("statsmodels.stats.contingency_tables")
    rng = np.random.default_rng(3)
    for _ in range(30):
        n11, b, c, n00 = (int(x) for x in rng.integers(0, 40, size=4))
        if b + c == 0:
            continue
        got = mcnemar_exact(*_paired(n11, b, c, n00)).p_value
        want = contingency.mcnemar([[n11, b], [c, n00]], exact=True).pvalue
        assert got == pytest.approx(min(1.0, want), rel=1e-9, abs=1e-15)


def test_mcnemar_equal_discordant_gives_p_one():
    assert mcnemar_exact(*_paired(3, 4, 4, 3)).p_value == pytest.approx(1.0)


def test_mcnemar_no_discordant_pairs():
    a, bb = _paired(10, 0, 0, 5)
    result = mcnemar_exact(a, bb)
    assert result == McNemar(b=0, c=0, n=15, p_value=1.0)
    assert result.difference == 0.0


def test_mcnemar_empty():
    result = mcnemar_exact([], [])
    assert (result.b, result.c, result.n, result.p_value) == (0, 0, 0, 1.0)
    assert math.isnan(result.difference)


def test_mcnemar_accepts_01_ints_and_validates():
    result = mcnemar_exact([1, 0, 1, 1], [0, 1, 0, 1])
    assert (result.b, result.c, result.n) == (2, 1, 4)
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar_exact([1, 0], [1])
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact([1, 2], [1, 0])
    with pytest.raises(ValueError, match="1-D"):
        mcnemar_exact([[1, 0]], [[1, 0]])


# --- Holm ------------------------------------------------------------------------------


def test_holm_hand_worked():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max-accumulate 0.06
    got = holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_trivial_cases():
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.2]) == pytest.approx([0.2])
    assert holm([]) == []
    assert holm([0.0, 1.0]) == pytest.approx([0.0, 1.0])


def test_holm_ties_and_monotone_in_sorted_order():
    p = [0.02, 0.02, 0.001, 0.3, 0.02]
    got = np.array(holm(p))
    # 0.001*5 = 0.005; the three 0.02 get 0.08, 0.06, 0.04 -> max-accumulate 0.08; 0.3*1
    assert got.tolist() == pytest.approx([0.08, 0.08, 0.005, 0.3, 0.08])
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(got[order]) >= 0)
    assert np.all(got >= np.array(p))


def test_holm_against_statsmodels_oracle():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(7)
    for m in (2, 3, 5, 10, 25):
        for _ in range(10):
            p = rng.uniform(0, 0.2, size=m) ** rng.uniform(0.5, 3)
            p[rng.integers(0, m)] = p[0]  # a tie
            want = multitest.multipletests(p, method="holm")[1]
            assert holm(p.tolist()) == pytest.approx(want.tolist(), rel=1e-12, abs=1e-15)


def test_holm_validates():
    with pytest.raises(ValueError):
        holm([0.1, 1.5])
    with pytest.raises(ValueError):
        holm([-0.1])
    with pytest.raises(ValueError):
        holm([float("nan")])


# --- SE of the accuracy difference -----------------------------------------------------


def test_se_formula_hand_value():
    # b=100, c=10, n=200: sqrt(110 - 90^2/200) / 200 = sqrt(69.5) / 200
    assert se_accuracy_difference(100, 10, 200) == pytest.approx(math.sqrt(69.5) / 200)
    # the (c - b)^2 / n term matters: the naive sqrt(b + c) / n is ~26% larger here
    assert se_accuracy_difference(100, 10, 200) < 0.85 * math.sqrt(110) / 200


def test_se_equals_plugin_sd_of_per_item_differences():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n11, b, c, n00 = (int(x) for x in rng.integers(0, 60, size=4))
        n = n11 + b + c + n00
        if n == 0:
            continue
        a, bb = _paired(n11, b, c, n00)
        d = a.astype(float) - bb.astype(float)
        assert se_accuracy_difference(b, c, n) == pytest.approx(d.std() / math.sqrt(n), abs=1e-15)


def test_se_matches_paired_bootstrap_on_simulated_data():
    rng = np.random.default_rng(2024)
    n = 300
    latent = rng.uniform(size=n)  # shared difficulty -> correlated correctness
    a = latent < 0.90
    bb = (latent < 0.50) | (rng.uniform(size=n) < 0.05)
    res = mcnemar_exact(a, bb)
    assert res.b > 3 * res.c  # unbalanced, so the correction term is material
    n_boot = 20_000
    idx = rng.integers(0, n, size=(n_boot, n))
    diffs = a[idx].mean(axis=1) - bb[idx].mean(axis=1)
    boot_sd = diffs.std(ddof=1)
    se = se_accuracy_difference(res.b, res.c, res.n)
    assert se == pytest.approx(boot_sd, rel=0.03)
    naive = math.sqrt(res.b + res.c) / res.n
    assert abs(naive - boot_sd) / boot_sd > 0.08  # the tolerance would catch a dropped term


def test_se_consistent_with_paired_difference_ci_width():
    rng = np.random.default_rng(5)
    n = 2000
    y = rng.integers(0, 3, size=n)
    pred_a = np.where(rng.uniform(size=n) < 0.85, y, (y + 1) % 3)
    pred_b = np.where(rng.uniform(size=n) < 0.78, y, (y + 2) % 3)
    ci = paired_difference_ci(y, pred_a, pred_b, n_classes=3, n_boot=4000, seed=0)
    res = mcnemar_exact(pred_a == y, pred_b == y)
    se = se_accuracy_difference(res.b, res.c, res.n)
    assert ci.estimate == pytest.approx(res.difference)
    assert ci.width == pytest.approx(2 * norm.ppf(0.975) * se, rel=0.08)


def test_se_edge_cases_and_validation():
    assert se_accuracy_difference(0, 0, 100) == 0.0
    assert math.isnan(se_accuracy_difference(0, 0, 0))
    assert se_accuracy_difference(5, 0, 5) == 0.0  # every item discordant one way: no spread
    with pytest.raises(ValueError):
        se_accuracy_difference(6, 5, 10)
    with pytest.raises(ValueError):
        se_accuracy_difference(-1, 0, 10)


# --- minimum detectable difference -----------------------------------------------------


def test_mdd_statistics_md_example_n500_ten_percent_discordant():
    # statistics.md section 7: n = 500, 10% discordant -> about 4 points detectable.
    mdd = minimum_detectable_difference(25, 25, 500)
    assert mdd == pytest.approx((1.959964 + 0.841621) * math.sqrt(50) / 500, rel=1e-5)
    assert 0.035 < mdd < 0.045
    assert round(100 * mdd) == 4
    # an unbalanced split of the same 50 discordant items is still about 4 points
    assert round(100 * minimum_detectable_difference(30, 20, 500)) == 4


def test_mdd_scales_with_alpha_power_and_n():
    base = minimum_detectable_difference(25, 25, 500)
    assert minimum_detectable_difference(25, 25, 500, alpha=0.01) > base
    assert minimum_detectable_difference(25, 25, 500, power=0.9) > base
    # quadrupling n at the same discordant rate halves it
    assert minimum_detectable_difference(100, 100, 2000) == pytest.approx(base / 2)
    z = norm.ppf(0.995) + norm.ppf(0.9)
    got = minimum_detectable_difference(10, 4, 80, alpha=0.01, power=0.9)
    assert got == pytest.approx(z * se_accuracy_difference(10, 4, 80))


def test_mdd_edge_cases_and_validation():
    assert minimum_detectable_difference(0, 0, 100) == 0.0
    assert math.isnan(minimum_detectable_difference(0, 0, 0))
    with pytest.raises(ValueError):
        minimum_detectable_difference(1, 1, 10, alpha=0.0)
    with pytest.raises(ValueError):
        minimum_detectable_difference(1, 1, 10, power=1.0)
    with pytest.raises(ValueError):
        minimum_detectable_difference(8, 8, 10)


# --- can_tell_apart --------------------------------------------------------------------


def test_can_tell_apart():
    assert can_tell_apart(0.01, 0.05)
    assert can_tell_apart(-0.05, -0.01)
    assert not can_tell_apart(-0.01, 0.02)
    assert not can_tell_apart(0.0, 0.02)  # interval touching 0 does not exclude it
    assert not can_tell_apart(-0.02, 0.0)
    assert not can_tell_apart(float("nan"), 0.1)
    assert not can_tell_apart(0.1, float("nan"))
    with pytest.raises(ValueError):
        can_tell_apart(0.2, 0.1)


def test_can_tell_apart_with_paired_interval():
    y = np.zeros(400, dtype=int)
    better = np.zeros(400, dtype=int)
    worse = np.where(np.arange(400) < 120, 1, 0)
    ci = paired_difference_ci(y, better, worse, n_classes=2, n_boot=1000, seed=0)
    assert can_tell_apart(ci.low, ci.high)
    same = paired_difference_ci(y, worse, worse[::-1], n_classes=2, n_boot=1000, seed=0)
    assert not can_tell_apart(same.low, same.high)
