"""Ranking metrics: Borda reference, tau/rho against scipy, hand-computed scores, the
leave-one-annotator-out ceiling against a loop oracle, bootstrap intervals."""

import math

import numpy as np
import pytest
from scipy import stats

from harness.metrics import (
    RANKING_METRICS,
    borda_reference,
    borda_scores,
    kendall_tau,
    ranking_against_annotators,
    ranking_ci,
    ranking_human_ceiling,
    ranking_metrics,
    spearman_rho,
)

MISSING3 = [-1, -1, -1]


def random_rankings(seed, n=120, n_annotators=3, n_cand=4, failure_rate=0.0, skip_rate=0.0):
    """Annotators and an LLM ranking noisy copies of a true score per candidate."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=(n, n_cand))
    noisy = quality[:, None, :] + rng.normal(scale=0.8, size=(n, n_annotators, n_cand))
    rankings = np.argsort(-noisy, axis=-1)
    rankings[rng.random((n, n_annotators)) < skip_rate] = -1
    pred = np.argsort(-(quality + rng.normal(scale=0.8, size=(n, n_cand))), axis=-1)
    pred[rng.random(n) < failure_rate] = -1
    return rankings, pred


# --- kendall_tau / spearman_rho --------------------------------------------------------


def test_tau_rho_hand_computed():
    # [0,1,2] vs [1,0,2]: positions (0,1,2) vs (1,0,2). Candidate pairs: (0,1) discordant,
    # (0,2), (1,2) concordant -> tau = (2 - 1) / 3; d^2 = 1 + 1 + 0 -> rho = 1 - 6*2/24.
    assert kendall_tau([0, 1, 2], [1, 0, 2]) == pytest.approx(1 / 3)
    assert spearman_rho([0, 1, 2], [1, 0, 2]) == pytest.approx(0.5)
    # [0,2,1] says 0 > 2 > 1, [1,2,0] says 1 > 2 > 0: exact reverse -> -1 (compared as
    # orders by position, not as raw arrays: scipy on the raw arrays would give 1/3).
    assert kendall_tau([0, 2, 1], [1, 2, 0]) == pytest.approx(-1.0)
    assert spearman_rho([0, 2, 1], [1, 2, 0]) == pytest.approx(-1.0)
    assert stats.kendalltau([0, 2, 1], [1, 2, 0]).statistic == pytest.approx(1 / 3)


@pytest.mark.parametrize("n_cand", [2, 3, 5, 9])
def test_tau_rho_match_scipy_on_rank_vectors(n_cand):
    rng = np.random.default_rng(n_cand)
    for _ in range(40):
        a, b = rng.permutation(n_cand), rng.permutation(n_cand)
        pa, pb = np.argsort(a), np.argsort(b)  # rank vector = position of each candidate
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(pa, pb).statistic)
        assert spearman_rho(a, b) == pytest.approx(stats.spearmanr(pa, pb).statistic)


def test_tau_rho_undefined_cases_and_validation():
    assert math.isnan(kendall_tau([0], [0])) and math.isnan(spearman_rho([0], [0]))
    assert math.isnan(kendall_tau(MISSING3, [0, 1, 2]))
    assert math.isnan(spearman_rho([0, 1, 2], MISSING3))
    with pytest.raises(ValueError, match="permutation"):
        kendall_tau([0, 0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="permutation"):
        kendall_tau([0, -1, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="different numbers"):
        spearman_rho([0, 1], [0, 1, 2])


# --- borda_reference -----------------------------------------------------------------


def test_borda_hand_computed_ties_missing_and_single_annotator():
    rankings = np.array(
        [
            # points (2,1,0 by position): A 0:2 1:1; B 1:2 0:1; C 1:2 2:1
            # -> totals 0: 3, 1: 5, 2: 1 -> [1, 0, 2]
            [[0, 1, 2], [1, 0, 2], [1, 2, 0]],
            # totals 0: 3, 1: 3, 2: 0 -> tie between 0 and 1 goes to the lower index
            [[1, 0, 2], [0, 1, 2], MISSING3],
            [MISSING3, [2, 0, 1], MISSING3],  # one annotator: their ranking
            [MISSING3, MISSING3, MISSING3],  # nobody -> -1 row
        ]
    )
    np.testing.assert_array_equal(
        borda_reference(rankings), [[1, 0, 2], [0, 1, 2], [2, 0, 1], MISSING3]
    )
    scores = borda_scores(rankings)
    np.testing.assert_array_equal(scores[:3], [[3, 5, 1], [3, 3, 0], [1, 0, 2]])
    assert np.isnan(scores[3]).all()


# --- ranking_metrics ------------------------------------------------------------------


def test_ranking_metrics_hand_computed():
    ref = np.array([[0, 1, 2], [0, 2, 1], [2, 1, 0], [1, 0, 2], MISSING3])
    pred = np.array([[0, 1, 2], [1, 2, 0], MISSING3, [1, 2, 0], [0, 1, 2]])
    m = ranking_metrics(ref, pred)
    # item 4 has no reference; item 2 failed
    assert (m.n, m.n_answered, m.coverage) == (4, 3, 0.75)
    # top1 hits: items 0 and 3 -> 2/4 end-to-end, 2/3 answered
    assert (m.top1, m.top1_answered) == pytest.approx((0.5, 2 / 3))
    # tau: item0 1, item1 -1 (exact reverse), item3: [1,0,2] vs [1,2,0] positions
    # (1,0,2) vs (2,0,1): (0,1) conc, (0,2) disc, (1,2) conc -> 1/3. Mean (1 - 1 + 1/3)/3
    assert m.tau == pytest.approx((1 - 1 + 1 / 3) / 3)
    # rho: 1, -1, and d^2 = 1 + 0 + 1 -> 1 - 12/24 = 0.5. Mean 0.5/3
    assert m.rho == pytest.approx(0.5 / 3)


def test_ranking_metrics_all_failed_and_empty():
    m = ranking_metrics(np.array([[0, 1], [1, 0]]), np.full((2, 2), -1))
    assert (m.n_answered, m.coverage, m.top1) == (0, 0.0, 0.0)
    assert math.isnan(m.tau) and math.isnan(m.rho) and math.isnan(m.top1_answered)
    m = ranking_metrics(np.full((2, 2), -1), np.array([[0, 1], [1, 0]]))
    assert m.n == 0 and math.isnan(m.top1) and math.isnan(m.coverage)


# --- against annotators and the human ceiling ------------------------------------------


def test_against_annotators_hand_computed():
    rankings = np.array(
        [
            [[0, 1, 2], [1, 0, 2]],  # pred [0,1,2]: tau 1 and 1/3; rho 1 and 0.5
            [[0, 1, 2], MISSING3],  # pred [2,1,0]: tau -1, rho -1
            [[0, 1, 2], [0, 1, 2]],  # failed prediction: no pairs
        ]
    )
    pred = np.array([[0, 1, 2], [2, 1, 0], MISSING3])
    tau, rho, n_pairs = ranking_against_annotators(rankings, pred)
    assert n_pairs == 3
    assert tau == pytest.approx((1 + 1 / 3 - 1) / 3)
    assert rho == pytest.approx((1 + 0.5 - 1) / 3)
    assert ranking_against_annotators(rankings, np.full((3, 3), -1))[2] == 0


def test_ceiling_two_annotators_hand_computed():
    # With two annotators the reference for each is simply the other one.
    rankings = np.array([[[0, 1, 2], [1, 0, 2]], [[0, 1, 2], [0, 1, 2]]])
    pred = np.array([[0, 1, 2], MISSING3])
    c = ranking_human_ceiling(rankings, pred)
    assert [row.n for row in c.per_annotator] == [2, 2] and c.n_pairs == 4
    # human: item0 tau 1/3 rho 0.5 top1 miss, item1 tau 1 rho 1 top1 hit (both rows)
    assert (c.human_top1, c.human_tau, c.human_rho) == pytest.approx((0.5, 2 / 3, 0.75))
    row0, row1 = c.per_annotator
    # LLM vs annotator 1 on item 0: [1,0,2] vs [0,1,2] -> top1 miss, tau 1/3; vs
    # annotator 0: equal -> hit, tau 1. Item 1 failed: a top1 miss, outside tau/rho.
    assert (row0.llm_top1, row0.llm_tau, row0.llm_n_answered) == (0.0, pytest.approx(1 / 3), 1)
    assert (row1.llm_top1, row1.llm_tau, row1.llm_rho) == (0.5, 1.0, 1.0)
    assert c.llm_top1 == pytest.approx(0.25)
    assert c.llm_tau == pytest.approx((1 / 3 + 1) / 2)  # weighted by llm_n_answered
    assert c.ratio_top1 == pytest.approx(0.5)
    assert c.ratio_tau == pytest.approx((2 / 3) / (2 / 3))


def test_ceiling_matches_loop_oracle():
    rankings, pred = random_rankings(3, n=80, n_annotators=4, failure_rate=0.1, skip_rate=0.2)
    c = ranking_human_ceiling(rankings, pred)
    human_top1, llm_tau, weights, llm_weights = [], [], [], []
    for j in range(4):
        ref = borda_reference(np.delete(rankings, j, axis=1))
        keep = (rankings[:, j, 0] >= 0) & (ref[:, 0] >= 0)
        h = ranking_metrics(ref[keep], rankings[keep, j])
        m = ranking_metrics(ref[keep], pred[keep])
        row = c.per_annotator[j]
        assert (row.n, row.llm_n_answered) == (keep.sum(), m.n_answered)
        assert (row.human_tau, row.llm_rho) == pytest.approx((h.tau, m.rho))
        human_top1.append(h.top1)
        llm_tau.append(m.tau)
        weights.append(keep.sum())
        llm_weights.append(m.n_answered)
    assert c.human_top1 == pytest.approx(np.average(human_top1, weights=weights))
    assert c.llm_tau == pytest.approx(np.average(llm_tau, weights=llm_weights))
    assert c.ratio_tau == pytest.approx(c.llm_tau / c.human_tau)


def test_ceiling_single_annotator_is_undefined():
    rankings, pred = random_rankings(4, n=10, n_annotators=1)
    c = ranking_human_ceiling(rankings, pred)
    assert c.n_pairs == 0 and c.per_annotator[0].n == 0
    assert math.isnan(c.human_tau) and math.isnan(c.ratio_top1)


# --- ranking_ci ----------------------------------------------------------------------


def index_bootstrap(statistic, n, n_boot, seed, level=0.95):
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_boot)])
    tail = (1 - level) / 2
    return np.nanquantile(values, [tail, 1 - tail])


@pytest.mark.parametrize("metric", RANKING_METRICS)
def test_ci_agrees_with_plain_index_bootstrap(metric):
    rankings, pred = random_rankings(5, n=150, failure_rate=0.1)
    ref = borda_reference(rankings)
    ci = ranking_ci(ref, pred, metric, n_boot=2000, seed=1)
    assert ci.estimate == pytest.approx(getattr(ranking_metrics(ref, pred), metric))
    low, high = index_bootstrap(
        lambda i: getattr(ranking_metrics(ref[i], pred[i]), metric), 150, 1000, seed=2
    )
    assert (ci.n, ci.n_boot) == (150, 2000)
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=0.03)
    assert ci.low < ci.estimate < ci.high


def test_ci_drops_unreferenced_items_clusters_and_errors():
    rankings, pred = random_rankings(6, n=60)
    ref = borda_reference(rankings)
    ref[:4] = -1
    assert ranking_ci(ref, pred, "top1", n_boot=200).n == 56
    ref4, pred4 = np.repeat(ref[4:], 4, axis=0), np.repeat(pred[4:], 4, axis=0)
    plain = ranking_ci(ref4, pred4, "tau", n_boot=1000)
    clustered = ranking_ci(ref4, pred4, "tau", n_boot=1000, clusters=np.repeat(np.arange(56), 4))
    assert clustered.estimate == pytest.approx(plain.estimate)
    assert clustered.width > 1.5 * plain.width
    with pytest.raises(ValueError, match="metric"):
        ranking_ci(ref, pred, "ndcg")
    with pytest.raises(ValueError, match="clusters"):
        ranking_ci(ref, pred, "tau", clusters=np.arange(3))


def test_ci_all_failed_tau_has_no_replicates():
    ci = ranking_ci(np.array([[0, 1], [1, 0]]), np.full((2, 2), -1), "tau", n_boot=50)
    assert math.isnan(ci.estimate) and ci.n_boot == 0
