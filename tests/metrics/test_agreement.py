"""Agreement statistics: reference values, hand-computed cases and independent oracles."""

import math

import numpy as np
import pytest

from harness.metrics import (
    PairKappa,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    human_ceiling,
    kappa_from_confusion,
    krippendorff_alpha,
    label_distribution,
    majority_vote,
    median_label,
    pairwise_kappas,
    reliability_matrix,
    soft_labels,
)

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders x 12 units.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)
KRIPPENDORFF_2011_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


def random_ratings(seed, n_items=200, n_annotators=4, k=4, missing=0.3, agreement=0.6):
    """Ratings that agree with a latent label with probability ``agreement``."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    noise = rng.integers(0, k, (n_items, n_annotators))
    ratings = np.where(rng.random((n_items, n_annotators)) < agreement, truth[:, None], noise)
    ratings[rng.random(ratings.shape) < missing] = -1
    return ratings


# --- reference labels -------------------------------------------------------------


def test_majority_vote_picks_most_frequent_and_ignores_missing():
    ratings = np.array([[0, 1, 1], [2, -1, 2], [-1, -1, 1], [-1, -1, -1]])
    reference, no_majority = majority_vote(ratings, 3)
    assert reference.tolist() == [1, 2, 1, -1]
    assert no_majority.tolist() == [False, False, False, False]


def test_majority_vote_tie_goes_to_lowest_code_without_tie_break():
    ratings = np.array([[2, 1, -1], [0, 2, 1], [1, 1, 2]])
    reference, no_majority = majority_vote(ratings, 3)
    assert reference.tolist() == [1, 0, 1]
    assert no_majority.tolist() == [True, True, False]


def test_majority_vote_tie_break_used_only_when_among_tied_labels():
    ratings = np.array([[2, 1], [2, 1], [2, 2], [0, 1], [0, 1]])
    gold = np.array([2, 0, 1, -1, 1])
    reference, no_majority = majority_vote(ratings, 3, tie_break=gold)
    # item 0: gold 2 is tied -> 2; item 1: gold 0 not tied -> lowest tied (1);
    # item 2: no tie, gold ignored; item 3: no gold -> lowest; item 4: gold 1 tied.
    assert reference.tolist() == [2, 1, 2, 0, 1]
    assert no_majority.tolist() == [True, True, False, True, True]


def test_majority_vote_rejects_out_of_range_codes():
    with pytest.raises(ValueError):
        majority_vote(np.array([[0, 3]]), 3)
    with pytest.raises(ValueError):
        majority_vote(np.array([[0, -2]]), 3)


def test_median_label_takes_lower_median_on_even_counts():
    ratings = np.array(
        [[0, 1, 2, 3], [3, 0, -1, -1], [4, 2, 3, -1], [-1, -1, -1, -1], [1, 1, 4, 4]]
    )
    assert median_label(ratings, 5).tolist() == [1, 0, 3, -1, 1]


def test_median_label_matches_sorted_definition_on_random_data():
    ratings = random_ratings(3, n_items=300, n_annotators=5, k=5)
    expected = []
    for row in ratings:
        values = np.sort(row[row >= 0])
        expected.append(int(values[(values.size - 1) // 2]) if values.size else -1)
    assert median_label(ratings, 5).tolist() == expected


def test_label_distribution_and_soft_labels():
    ratings = np.array([[0, 0, 1], [2, -1, -1], [-1, -1, -1]])
    assert label_distribution(ratings, 3).tolist() == [2, 1, 1]
    assert label_distribution(np.array([1, -1, 1]), 3).tolist() == [0, 2, 0]
    soft = soft_labels(ratings, 3)
    np.testing.assert_allclose(soft[:2], [[2 / 3, 1 / 3, 0], [0, 0, 1]])
    assert np.isnan(soft[2]).all()


def test_reliability_matrix_transposes_and_marks_missing():
    out = reliability_matrix(np.array([[0, -1], [2, 1]]))
    np.testing.assert_array_equal(out, [[0, 2], [NAN, 1]])


# --- Cohen's kappa ---------------------------------------------------------------


def test_cohen_kappa_hand_computed_kappa_paradox():
    # 8 agreements on 0, one (0,1), one (1,0): p_o = 0.8, p_e = 0.82 -> kappa = -1/9.
    a = np.array([0] * 8 + [0, 1])
    b = np.array([0] * 8 + [1, 0])
    assert cohen_kappa(a, b, 2) == pytest.approx(-0.02 / 0.18)


def test_cohen_kappa_drops_positions_with_missing_ratings():
    a = np.array([0, 1, 1, 0, -1, 2])
    b = np.array([0, 1, 0, 0, 1, -1])
    assert cohen_kappa(a, b, 3) == pytest.approx(cohen_kappa(a[:4], b[:4], 3))
    # p_o = 3/4, marginals a (2, 2), b (3, 1): p_e = 1/2 -> kappa = 1/2
    assert cohen_kappa(a, b, 3) == pytest.approx(0.5)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_equals_sklearn(weights):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    for seed in range(5):
        ratings = random_ratings(seed, n_items=150, n_annotators=2, k=5)
        a, b = ratings[:, 0], ratings[:, 1]
        both = (a >= 0) & (b >= 0)
        expected = sklearn_metrics.cohen_kappa_score(
            a[both], b[both], labels=list(range(5)), weights=weights
        )
        assert cohen_kappa(a, b, 5, weights=weights) == pytest.approx(expected, abs=1e-12)


def test_cohen_kappa_weights_change_the_value_and_unknown_weights_raise():
    a = np.array([0, 1, 2, 3, 4, 0, 1])
    b = np.array([0, 2, 2, 4, 4, 1, 3])
    values = {w: cohen_kappa(a, b, 5, weights=w) for w in (None, "linear", "quadratic")}
    assert values[None] < values["linear"] < values["quadratic"]
    with pytest.raises(ValueError):
        cohen_kappa(a, b, 5, weights="cubic")


def test_kappa_from_confusion_on_a_stack_equals_each_table():
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 20, (6, 3, 4))
    values = kappa_from_confusion(stack)
    for table, value in zip(stack, values, strict=True):
        assert kappa_from_confusion(table) == pytest.approx(value)


def test_kappa_from_confusion_failure_column_never_matches():
    # reference x (prediction, failure): a failure is a category of its own.
    table = np.array([[3, 0, 1], [0, 4, 0]])
    square = np.array([[3, 0, 1], [0, 4, 0], [0, 0, 0]])
    assert kappa_from_confusion(table) == pytest.approx(kappa_from_confusion(square))
    assert kappa_from_confusion(table) < kappa_from_confusion(np.array([[3, 0], [0, 4]]))


# --- Fleiss' kappa ----------------------------------------------------------------


def test_fleiss_kappa_hand_computed():
    # counts per item (3 raters, 2 labels): (3,0) (2,1) (0,3) (1,2)
    ratings = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1], [0, 1, 1]])
    # P_bar = (1 + 1/3 + 1 + 1/3) / 4 = 2/3, p = (0.5, 0.5), P_e = 0.5 -> 1/3
    assert fleiss_kappa(ratings, 2) == pytest.approx(1 / 3)


def test_fleiss_kappa_equals_statsmodels():
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    for seed in range(5):
        ratings = random_ratings(seed, n_items=120, n_annotators=5, k=4, missing=0.0)
        table, _ = inter_rater.aggregate_raters(ratings, n_cat=4)
        expected = inter_rater.fleiss_kappa(table, method="fleiss")
        assert fleiss_kappa(ratings, 4) == pytest.approx(expected, abs=1e-12)


# --- Krippendorff's alpha ---------------------------------------------------------


@pytest.mark.parametrize("level", list(KRIPPENDORFF_2011_ALPHA))
def test_krippendorff_alpha_reproduces_krippendorff_2011(level):
    alpha = krippendorff_alpha(KRIPPENDORFF_2011, level=level)
    assert round(alpha, 3) == KRIPPENDORFF_2011_ALPHA[level]


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_alpha_same_with_declared_code_domain(level):
    codes = KRIPPENDORFF_2011 - 1  # values 1..5 -> codes 0..4, plus unused codes 5, 6
    expected = krippendorff_alpha(KRIPPENDORFF_2011, level=level)
    assert krippendorff_alpha(codes, level=level, n_values=7) == pytest.approx(expected)
    with pytest.raises(ValueError):
        krippendorff_alpha(codes, level=level, n_values=4)


def test_krippendorff_alpha_edge_cases():
    assert krippendorff_alpha(np.array([[0, 1, 2], [0, 1, 2]])) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha(np.array([[1, 1], [1, 1.0]])))  # no variation
    assert math.isnan(krippendorff_alpha(np.array([[1, NAN], [NAN, 2.0]])))  # unpairable
    with pytest.raises(ValueError):
        krippendorff_alpha(KRIPPENDORFF_2011, level="circular")


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_alpha_equals_krippendorff_package(level, dense, monkeypatch):
    """Both ways of counting values per unit: dense (a few labels) and sparse (many)."""
    from harness.metrics import agreement

    krippendorff = pytest.importorskip("krippendorff")
    if not dense:
        monkeypatch.setattr(agreement, "_DENSE_UNIT_COUNTS", 0)
    for seed in range(4):
        reliability = reliability_matrix(random_ratings(seed, n_items=300, k=5)) + 1.0
        expected = krippendorff.alpha(reliability, level_of_measurement=level)
        assert krippendorff_alpha(reliability, level) == pytest.approx(expected, abs=1e-10)


def test_krippendorff_alpha_handles_100k_units():
    krippendorff = pytest.importorskip("krippendorff")
    reliability = reliability_matrix(random_ratings(7, n_items=100_000, n_annotators=5))
    expected = krippendorff.alpha(reliability, level_of_measurement="ordinal")
    assert krippendorff_alpha(reliability, "ordinal", n_values=4) == pytest.approx(expected)


# --- Gwet's AC1 -------------------------------------------------------------------


def test_gwet_ac1_hand_computed_kappa_paradox():
    # Same data as the kappa paradox: p_a = 0.8, pi = (0.9, 0.1),
    # p_e = 2 * 0.9 * 0.1 = 0.18 -> AC1 = 0.62 / 0.82, while kappa is negative.
    ratings = np.column_stack([[0] * 8 + [0, 1], [0] * 8 + [1, 0]])
    assert gwet_ac1(ratings, 2) == pytest.approx(0.62 / 0.82)


def test_gwet_ac1_hand_computed_with_missing_ratings():
    ratings = np.array([[0, 0, 0], [0, 1, -1], [1, 1, -1], [2, -1, -1]])
    # p_a over items with >= 2 ratings: (1 + 0 + 1) / 3 = 2/3.
    # pi over rated items: ((1,0,0) + (.5,.5,0) + (0,1,0) + (0,0,1)) / 4 = (3/8, 3/8, 1/4)
    # p_e = (3/8*5/8 * 2 + 1/4*3/4) / 2 = 0.328125
    p_e = (2 * (3 / 8) * (5 / 8) + (1 / 4) * (3 / 4)) / 2
    assert gwet_ac1(ratings, 3) == pytest.approx((2 / 3 - p_e) / (1 - p_e))


def test_gwet_ac1_reproduces_gwet_handbook_value():
    # AC1 = 0.77544 for the Krippendorff (2011) data in Gwet's irrCAC (raw_4raters).
    ratings = np.where(np.isnan(KRIPPENDORFF_2011.T), -1, KRIPPENDORFF_2011.T - 1).astype(int)
    assert gwet_ac1(ratings, 5) == pytest.approx(0.77544, abs=5e-6)


# --- pairwise kappas and the human ceiling ----------------------------------------


def test_pairwise_kappas_lists_every_pair_over_shared_items():
    ratings = np.array([[0, 0, -1], [1, 1, 1], [1, 0, 1], [0, -1, 0], [1, 1, -1]])
    pairs = pairwise_kappas(ratings, 2)
    assert [(p.annotator_a, p.annotator_b, p.n) for p in pairs] == [(0, 1, 4), (0, 2, 3), (1, 2, 2)]
    assert pairs[0] == PairKappa(0, 1, 4, cohen_kappa(ratings[:, 0], ratings[:, 1], 2))
    assert pairs[1].kappa == pytest.approx(1.0)


CEILING_RATINGS = np.array([[0, 0, 0], [0, 0, 1], [1, 1, -1], [1, 0, 1]])
CEILING_PREDICTION = np.array([0, 1, 1, -1])


def test_human_ceiling_hand_computed():
    ceiling = human_ceiling(CEILING_RATINGS, CEILING_PREDICTION, 2)
    rows = ceiling.per_annotator
    # References from the others (ties -> lowest code):
    #   annotator 0: (0, 0, 1, 0); annotator 1: (0, 0, 1, 1); annotator 2: items 0, 1, 3 -> 0.
    assert [row.n for row in rows] == [4, 4, 3]
    assert [row.human_accuracy for row in rows] == pytest.approx([3 / 4, 3 / 4, 1 / 3])
    assert [row.llm_accuracy for row in rows] == pytest.approx([2 / 4, 2 / 4, 1 / 3])
    # annotator 0: p_o 3/4, marginals (2, 2) vs (3, 1): p_e 1/2 -> 0.5
    assert rows[0].human_kappa == pytest.approx(0.5)
    # LLM (0, 1, 1, fail) vs (0, 0, 1, 0): p_o 1/2, p_e (1*3 + 2*1) / 16 -> 3/11
    assert rows[0].llm_kappa == pytest.approx(3 / 11)
    assert ceiling.human_accuracy == pytest.approx(7 / 11)
    assert ceiling.llm_accuracy == pytest.approx(5 / 11)
    assert ceiling.ratio_accuracy == pytest.approx(5 / 7)
    assert ceiling.n_pairs == 11
    human_kappa = np.average([r.human_kappa for r in rows], weights=[4, 4, 3])
    llm_kappa = np.average([r.llm_kappa for r in rows], weights=[4, 4, 3])
    assert ceiling.human_kappa == pytest.approx(human_kappa)
    assert ceiling.llm_kappa == pytest.approx(llm_kappa)
    assert ceiling.ratio_kappa == pytest.approx(llm_kappa / human_kappa)


def test_human_ceiling_kappas_equal_sklearn_with_failure_as_own_category():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    ratings = random_ratings(11, n_items=400, n_annotators=4, k=3)
    rng = np.random.default_rng(11)
    prediction = np.where(rng.random(400) < 0.1, -1, majority_vote(ratings, 3)[0])
    ceiling = human_ceiling(ratings, prediction, 3)
    for j, row in enumerate(ceiling.per_annotator):
        reference, _ = majority_vote(np.delete(ratings, j, axis=1), 3)
        items = (ratings[:, j] >= 0) & (reference >= 0)
        llm = np.where(prediction[items] >= 0, prediction[items], 3)
        labels = list(range(4))
        assert row.n == items.sum()
        assert row.human_kappa == pytest.approx(
            sklearn_metrics.cohen_kappa_score(ratings[items, j], reference[items], labels=labels)
        )
        assert row.llm_kappa == pytest.approx(
            sklearn_metrics.cohen_kappa_score(llm, reference[items], labels=labels)
        )
        assert row.llm_accuracy == pytest.approx(np.mean(prediction[items] == reference[items]))


def test_human_ceiling_perfect_llm_and_single_annotator():
    ratings = np.array([[0, 0], [1, 1], [1, 1], [0, 0]])
    ceiling = human_ceiling(ratings, np.array([0, 1, 1, 0]), 2)
    assert ceiling.llm_accuracy == 1.0 and ceiling.ratio_accuracy == 1.0
    assert ceiling.ratio_kappa == pytest.approx(1.0)
    lonely = human_ceiling(np.array([[0], [1]]), np.array([0, 1]), 2)
    assert lonely.n_pairs == 0 and math.isnan(lonely.human_accuracy)
    assert math.isnan(lonely.ratio_accuracy)
    with pytest.raises(ValueError):
        human_ceiling(ratings, np.array([0, 1]), 2)


def test_human_ceiling_split_code_turns_split_references_into_that_code():
    # Two annotators per item: leaving one out leaves one other, so no split is possible;
    # with three, item 0's others for annotator 0 are (1, 0): a split.
    ratings = np.array([[2, 1, 0], [0, 0, 0]])
    prediction = np.array([2, 0])
    plain = human_ceiling(ratings, prediction, 3)
    tied = human_ceiling(ratings, prediction, 3, split_code=2)
    # Annotator 0 on item 0: reference of the others (1, 0) -> lowest code 0 by default,
    # -> 2 with split_code=2, which annotator 0 (label 2) and the prediction (2) then match.
    row0_plain = next(r for r in plain.per_annotator if r.annotator == 0)
    row0_tied = next(r for r in tied.per_annotator if r.annotator == 0)
    assert row0_plain.human_accuracy == 0.5 and row0_tied.human_accuracy == 1.0
    assert row0_plain.llm_accuracy == 0.5 and row0_tied.llm_accuracy == 1.0
