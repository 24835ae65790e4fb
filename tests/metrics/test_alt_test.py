"""The Alternative Annotator Test (statistics.md section 9; Calderon et al., ACL 2025)."""

import math

import numpy as np
import pytest
from scipy.stats import ttest_1samp

from harness.metrics.alt_test import (
    EPSILON,
    AltTestResult,
    alt_test,
    benjamini_yekutieli,
    one_sided_t_test,
)

# --- a small case computed by hand -------------------------------------------------------
#
# 3 annotators (columns), K = 3, nominal S = share of the others R equal to the label.
#
#   item  A0 A1 A2  llm
#     0    0  0  0   0
#     1    1  1  0   1
#     2    2  1  1   1
#     3    0  1  1   2
#     4    2  2  -   2
#     5    1  -  -   1      only A0 labelled: no other annotator, never compared
HAND_RATINGS = np.array([[0, 0, 0], [1, 1, 0], [2, 1, 1], [0, 1, 1], [2, 2, -1], [1, -1, -1]])
HAND_LLM = np.array([0, 1, 1, 2, 2, 1])
#
# A0 (items 0-4):       R      s_h  s_f  W_f W_h  d
#   item 0            {0,0}    1    1     1   1   0
#   item 1            {1,0}    .5   .5    1   1   0
#   item 2            {1,1}    0    1     1   0  -1
#   item 3            {1,1}    0    0     1   1   0
#   item 4            {2}      1    1     1   1   0
#   mean W_f = 1, mean W_h = 0.8, d = (0,0,-1,0,0), mean -0.2, sd = sqrt(0.8/4) = sqrt(0.2),
#   se = sqrt(0.2)/sqrt(5) = 0.2, eps = 0.2: t = (-0.2 - 0.2)/0.2 = -2, df = 4.
#   Student t, 4 df: F(t) = 1/2 + (3/8) u (1 - t^2 / (12 (1 + t^2/4))), u = t / sqrt(1 + t^2/4);
#   F(-2) = 1/2 + (3/8)(-sqrt 2)(5/6) = 1/2 - (5/16) sqrt(2) = 0.05806.
# A1 (items 0-4): d = (0,0,0,+1,0)  (item 3: R={0,1}, A1=1 -> .5, llm=2 -> 0)
#   mean W_f = 0.8, W_h = 1, mean d = 0.2 = eps -> t = 0, p = 0.5.
# A2 (items 0-3): d = (0,-1,0,+1)  (item 1: R={1,1}: A2=0 -> 0, llm -> 1; item 3 as A1)
#   mean W_f = W_h = 0.75, mean d = 0, sd = sqrt(2/3), se = sqrt(2/3)/2,
#   t = -0.2/se = -0.2 sqrt(6), df = 3: F(t) = 1/2 + (1/pi)(x/(1+x^2) + atan(x)), x = t/sqrt3.
# BY with m = 3, c(3) = 11/6, m c(3) = 5.5: sorted p (A0, A2, A1) scaled 5.5 p / rank.
P_A0 = 0.5 - 5.0 / 16.0 * math.sqrt(2.0)
_X = -0.2 * math.sqrt(6.0) / math.sqrt(3.0)
P_A2 = 0.5 + (_X / (1 + _X**2) + math.atan(_X)) / math.pi


def test_hand_computed_nominal_case():
    result = alt_test(HAND_RATINGS, HAND_LLM, 3, epsilon=0.2, min_items=4)
    a0, a1, a2 = result.per_annotator
    assert [row.annotator for row in result.per_annotator] == [0, 1, 2]
    assert (a0.n, a1.n, a2.n) == (5, 5, 4)
    assert (a0.llm_advantage, a0.human_advantage, a0.mean_difference) == pytest.approx(
        (1.0, 0.8, -0.2)
    )
    assert a0.t == pytest.approx(-2.0)
    assert a0.p_value == pytest.approx(P_A0, rel=1e-9)
    assert (a1.llm_advantage, a1.human_advantage, a1.mean_difference) == pytest.approx(
        (0.8, 1.0, 0.2)
    )
    assert a1.t == pytest.approx(0.0, abs=1e-12)
    assert a1.p_value == pytest.approx(0.5)
    assert (a2.llm_advantage, a2.human_advantage, a2.mean_difference) == pytest.approx(
        (0.75, 0.75, 0.0)
    )
    assert a2.t == pytest.approx(-0.2 * math.sqrt(6.0))
    assert a2.p_value == pytest.approx(P_A2, rel=1e-9)
    # BY: A0 rank 1 -> 5.5 P_A0, A2 rank 2 -> 5.5 P_A2 / 2, A1 rank 3 -> 5.5 * 0.5 / 3.
    assert a0.p_by == pytest.approx(5.5 * P_A0)
    assert a2.p_by == pytest.approx(5.5 * P_A2 / 2)
    assert a1.p_by == pytest.approx(5.5 * 0.5 / 3)
    assert not any(row.rejected for row in result.per_annotator)
    assert result.winning_rate == 0.0
    assert not result.passed
    assert result.advantage_probability == pytest.approx((1.0 + 0.8 + 0.75) / 3)
    assert result.warning is None
    assert result.skipped == []
    assert (result.epsilon, result.q, result.scoring) == (0.2, 0.05, "nominal")


def test_hand_case_t_and_p_match_scipy():
    for d in ([0, 0, -1, 0, 0], [0, 0, 0, 1, 0], [0, -1, 0, 1]):
        want = ttest_1samp(np.array(d, dtype=float), 0.2, alternative="less")
        t, p = one_sided_t_test(np.array(d), 0.2)
        assert t == pytest.approx(want.statistic, abs=1e-12)
        assert p == pytest.approx(want.pvalue, rel=1e-12)


def test_t_test_matches_scipy_on_random_samples():
    rng = np.random.default_rng(7)
    for _ in range(50):
        d = rng.choice([-1, 0, 1], size=int(rng.integers(5, 80)), p=[0.3, 0.4, 0.3])
        if np.all(d == d[0]):
            continue
        eps = float(rng.choice([0.0, 0.1, 0.15, 0.2]))
        want = ttest_1samp(d.astype(float), eps, alternative="less")
        t, p = one_sided_t_test(d, eps)
        assert t == pytest.approx(want.statistic, rel=1e-9)
        assert p == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)


# --- zero variance ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "eps", "t", "p"),
    [
        (0, 0.1, -math.inf, 0.0),  # every item a tie: mean 0 < eps -> reject
        (-1, 0.2, -math.inf, 0.0),  # the LLM better on every item
        (1, 0.2, math.inf, 1.0),  # the human better on every item
        (0, 0.0, math.nan, 1.0),  # mean == eps: H0 holds exactly
    ],
)
def test_zero_variance_is_decided_by_the_mean(value, eps, t, p):
    got_t, got_p = one_sided_t_test(np.full(30, value), eps)
    assert got_p == p
    assert (math.isnan(got_t) and math.isnan(t)) or got_t == t


def test_all_ties_llm_passes_with_zero_variance():
    # Everybody agrees on every item: W_f = W_h = 1, d = 0 everywhere, 0 < eps.
    truth = np.arange(40) % 3
    ratings = np.stack([truth, truth, truth], axis=1)
    result = alt_test(ratings, truth, 3, epsilon="crowd")
    assert all(row.t == -math.inf and row.p_value == 0.0 for row in result.per_annotator)
    assert result.winning_rate == 1.0 and result.passed
    assert result.advantage_probability == 1.0


# --- Benjamini-Yekutieli ----------------------------------------------------------------


def test_benjamini_yekutieli_hand_values():
    # m = 4, c(4) = 25/12, m c = 25/3: 0.01 -> 25/300; 0.02/2, 0.03/3 -> same; 0.5 -> 1.
    assert benjamini_yekutieli([0.01, 0.02, 0.03, 0.5]) == pytest.approx([1 / 12] * 3 + [1.0])
    # Step-up: m = 2, c(2) = 1.5, m c = 3: 0.02 -> 0.06 but 0.021 * 3 / 2 = 0.0315 is
    # smaller and ranked above, so both become 0.0315 (input order kept).
    assert benjamini_yekutieli([0.021, 0.02]) == pytest.approx([0.0315, 0.0315])
    # m = 3, m c = 5.5, input order differs from rank order.
    assert benjamini_yekutieli([0.001, 0.04, 0.012]) == pytest.approx([0.0055, 0.22 / 3, 0.033])
    assert benjamini_yekutieli([]) == []
    assert benjamini_yekutieli([0.3]) == pytest.approx([0.3])


def test_benjamini_yekutieli_against_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(11)
    for m in (2, 3, 5, 10, 40):
        p = rng.uniform(0, 0.2, size=m) ** 2
        rejected, want, _, _ = multitest.multipletests(p, alpha=0.05, method="fdr_by")
        got = np.array(benjamini_yekutieli(p))
        np.testing.assert_allclose(got, want, rtol=1e-12)
        np.testing.assert_array_equal(got <= 0.05, rejected)


def test_benjamini_yekutieli_rejects_bad_input():
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        benjamini_yekutieli([0.1, float("nan")])
    with pytest.raises(ValueError, match="1-D"):
        benjamini_yekutieli([[0.1]])


# --- scoring ----------------------------------------------------------------------------


def _repeat(rows: list[list[int]], llm: list[int], times: int) -> tuple[np.ndarray, np.ndarray]:
    return np.array(rows * times), np.array(llm * times)


def test_ordinal_scoring_and_llm_failure_by_hand():
    # K = 5. Pattern A: A0 = 2, R = {1, 3}, llm = 4:
    #   ordinal s_h = -sqrt((1 + 1)/2) = -1, s_f = -sqrt((9 + 1)/2) = -sqrt(5): human wins,
    #   nominal s_h = s_f = 0: tie.
    # Pattern B: A0 = 0, R = {4, 4}, llm failed (-1):
    #   ordinal s_h = -4 = worst possible = s_f of a failure: tie; nominal 0 = 0: tie.
    ratings, llm = _repeat([[2, 1, 3], [0, 4, 4]], [4, -1], 3)
    ordinal = alt_test(ratings, llm, 5, epsilon=0.2, scoring="ordinal", min_items=2)
    row = ordinal.per_annotator[0]
    # W_f = (0, 1, 0, 1, 0, 1), W_h = 1 everywhere, d = (1, 0, ...), mean 0.5.
    assert (row.llm_advantage, row.human_advantage, row.mean_difference) == (0.5, 1.0, 0.5)
    assert row.n_llm_failed == 3
    d = np.array([1, 0] * 3, dtype=float)
    want = ttest_1samp(d, 0.2, alternative="less")
    assert row.t == pytest.approx(want.statistic) and row.p_value == pytest.approx(want.pvalue)
    nominal = alt_test(ratings, llm, 5, epsilon=0.2, scoring="nominal", min_items=2)
    row = nominal.per_annotator[0]
    assert (row.llm_advantage, row.human_advantage, row.mean_difference) == (1.0, 1.0, 0.0)


def test_failed_llm_output_loses_to_a_human_who_agrees():
    # A0 = 1, R = {1, 1}: human S = 1 (nominal) / 0 (ordinal); failure S = 0 / -(K-1).
    ratings, llm = _repeat([[1, 1, 1]], [-1], 30)
    for scoring in ("nominal", "ordinal"):
        row = alt_test(ratings, llm, 3, epsilon=0.2, scoring=scoring).per_annotator[0]
        assert (row.llm_advantage, row.human_advantage) == (0.0, 1.0)
        assert row.n_llm_failed == 30


def test_ordinal_is_negative_rmse_not_mean_absolute_error():
    # A0 = 2, R = {0, 4}: RMSE = 2. llm = 1: RMSE = sqrt((1 + 9)/2) = sqrt(5) > 2 -> human
    # wins. Under mean absolute error both would be 2 (a tie), so this pins RMSE.
    ratings, llm = _repeat([[2, 0, 4]], [1], 30)
    row = alt_test(ratings, llm, 5, epsilon=0.2, scoring="ordinal").per_annotator[0]
    assert (row.llm_advantage, row.human_advantage) == (0.0, 1.0)


# --- the whole procedure against an independent implementation ---------------------------


def _reference_alt_test(ratings, llm, eps, scoring, k, q=0.05, min_items=30):
    """Straight loop after the authors' notebook; failures scored as the worst value."""
    multitest = pytest.importorskip("statsmodels.stats.multitest")

    def score(x, others):
        if scoring == "nominal":
            return 0.0 if x < 0 else float(np.mean([x == o for o in others]))
        if x < 0:
            return -(k - 1.0)
        return -float(np.sqrt(np.mean([(x - o) ** 2 for o in others])))

    p_values, advantages = [], []
    for j in range(ratings.shape[1]):
        w_f, w_h = [], []
        for i in range(ratings.shape[0]):
            others = [
                ratings[i, a] for a in range(ratings.shape[1]) if a != j and ratings[i, a] >= 0
            ]
            if ratings[i, j] < 0 or not others:
                continue
            s_h, s_f = score(ratings[i, j], others), score(llm[i], others)
            w_f.append(1 if s_f >= s_h else 0)
            w_h.append(1 if s_h >= s_f else 0)
        if len(w_f) < min_items:
            continue
        d = np.array(w_h, dtype=float) - np.array(w_f, dtype=float)
        p_values.append(ttest_1samp(d, eps, alternative="less").pvalue)
        advantages.append(np.mean(w_f))
    rejected = multitest.multipletests(p_values, alpha=q, method="fdr_by")[0]
    return float(np.mean(rejected)), float(np.mean(advantages)), p_values


@pytest.mark.parametrize("scoring", ["nominal", "ordinal"])
def test_matches_independent_implementation_with_missing_labels(scoring):
    rng = np.random.default_rng(5)
    k = 5
    for trial in range(6):
        n, m = 120, 4
        truth = rng.integers(0, k, n)
        noise = rng.random((n, m)) < 0.35
        ratings = np.where(noise, rng.integers(0, k, (n, m)), truth[:, None])
        ratings[rng.random((n, m)) < 0.25] = -1
        llm = np.where(rng.random(n) < 0.75, truth, rng.integers(0, k, n))
        llm[rng.random(n) < 0.05] = -1
        eps = [0.1, 0.15, 0.2][trial % 3]
        got = alt_test(ratings, llm, k, epsilon=eps, scoring=scoring)
        omega, rho, p_values = _reference_alt_test(ratings, llm, eps, scoring, k)
        assert got.winning_rate == pytest.approx(omega)
        assert got.advantage_probability == pytest.approx(rho)
        np.testing.assert_allclose([r.p_value for r in got.per_annotator], p_values, rtol=1e-9)


# --- properties -------------------------------------------------------------------------


def _noisy_panel(seed, n=100, m=4, k=4, human_noise=0.3):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    noisy = rng.random((n, m)) < human_noise
    ratings = np.where(noisy, rng.integers(0, k, (n, m)), truth[:, None])
    return rng, truth, ratings


def test_llm_matching_the_truth_passes_against_noisy_humans():
    _, truth, ratings = _noisy_panel(1)
    result = alt_test(ratings, truth, 4, epsilon="expert")
    assert result.passed and result.winning_rate >= 0.5
    assert result.advantage_probability > 0.8


def test_random_llm_fails():
    rng, _, ratings = _noisy_panel(2)
    result = alt_test(ratings, rng.integers(0, 4, 100), 4, epsilon="expert")
    assert not result.passed and result.winning_rate == 0.0
    assert result.advantage_probability < 0.6


def test_larger_epsilon_never_rejects_fewer():
    rng, truth, ratings = _noisy_panel(3)
    llm = np.where(rng.random(100) < 0.6, truth, rng.integers(0, 4, 100))
    rates = [alt_test(ratings, llm, 4, epsilon=e).winning_rate for e in (0.0, 0.1, 0.2, 0.4)]
    assert rates == sorted(rates)
    assert rates[0] < rates[-1]


# --- refusals and warnings --------------------------------------------------------------


def test_too_few_annotators_raise_a_message_saying_what_is_needed():
    _, truth, ratings = _noisy_panel(4, n=50)
    ratings[20:, 1:] = -1  # annotators 1..3 keep 20 items; annotator 0 has 20 comparable
    with pytest.raises(ValueError, match=r"needs >= 2 annotators .* >= 30 items") as info:
        alt_test(ratings, truth, 4, epsilon=0.2)
    assert "annotator 1: 20" in str(info.value)
    with pytest.raises(ValueError, match="0 qualify"):
        alt_test(ratings[:, :1], truth, 4, epsilon=0.2)


def test_two_annotators_work_with_a_warning_and_skipped_are_listed():
    _, truth, ratings = _noisy_panel(5, n=60, m=3)
    ratings[10:, 2] = -1  # annotator 2: 10 items only
    result = alt_test(ratings, truth, 4, epsilon=0.2)
    assert isinstance(result, AltTestResult)
    assert [row.annotator for row in result.per_annotator] == [0, 1]
    assert result.skipped == [(2, 10)]
    assert result.warning is not None and ">= 3 annotators" in result.warning


def test_epsilon_profiles_and_bad_arguments():
    _, truth, ratings = _noisy_panel(6)
    assert alt_test(ratings, truth, 4, epsilon="skilled").epsilon == EPSILON["skilled"] == 0.15
    with pytest.raises(ValueError, match="epsilon"):
        alt_test(ratings, truth, 4, epsilon="students")
    with pytest.raises(ValueError, match="epsilon"):
        alt_test(ratings, truth, 4, epsilon=1.5)
    with pytest.raises(ValueError, match="scoring"):
        alt_test(ratings, truth, 4, epsilon=0.2, scoring="interval")
    with pytest.raises(ValueError, match="min_items"):
        alt_test(ratings, truth, 4, epsilon=0.2, min_items=1)
    with pytest.raises(ValueError, match="one entry per item"):
        alt_test(ratings, truth[:-1], 4, epsilon=0.2)
    with pytest.raises(ValueError, match="codes"):
        alt_test(ratings, truth + 4, 4, epsilon=0.2)
