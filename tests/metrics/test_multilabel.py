"""Multi-label metrics: majority reference, hand-computed scores, sklearn F1 oracles,
failure rules, edge cases, per-label alpha against the krippendorff package, bootstrap."""

import math

import numpy as np
import pytest

from harness.metrics import (
    MULTILABEL_METRICS,
    multilabel_alpha_per_label,
    multilabel_ci,
    multilabel_metrics,
    multilabel_reference,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")
MISSING = [-1, -1, -1]


def random_sets(seed, n=200, n_labels=4, n_annotators=3, failure_rate=0.0, skip_rate=0.0):
    """Ratings from noisy copies of a true set, and a prediction that is right ~80%."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n, n_labels)) < 0.35
    flips = rng.random((n, n_annotators, n_labels)) < 0.15
    ratings = (truth[:, None, :] ^ flips).astype(np.int8)
    ratings[rng.random((n, n_annotators)) < skip_rate] = -1
    pred = (truth ^ (rng.random((n, n_labels)) < 0.2)).astype(np.int8)
    pred[rng.random(n) < failure_rate] = -1
    return ratings, pred


# --- multilabel_reference -------------------------------------------------------------


def test_reference_strict_majority_ties_not_chosen():
    ratings = np.array(
        [
            [[1, 1, 0], [1, 0, 0], [0, 1, 0]],  # votes (2, 2, 0) of 3 -> (1, 1, 0)
            [[1, 1, 0], [0, 1, 1], MISSING],  # votes (1, 2, 1) of 2: 1 of 2 is a tie -> 0
            [MISSING, [0, 1, 1], MISSING],  # single annotator: their set
            [MISSING, MISSING, MISSING],  # nobody labelled -> -1 row
            [[0, 0, 0], [0, 0, 0], [1, 0, 0]],  # 1 of 3 -> empty set
        ],
        dtype=np.int8,
    )
    np.testing.assert_array_equal(
        multilabel_reference(ratings),
        [[1, 1, 0], [0, 1, 0], [0, 1, 1], [-1, -1, -1], [0, 0, 0]],
    )


def test_reference_rejects_malformed_ratings():
    with pytest.raises(ValueError, match="all -1"):
        multilabel_reference(np.array([[[1, -1, 0]]]))
    with pytest.raises(ValueError, match="-1"):
        multilabel_reference(np.array([[[2, 0, 0]]]))
    with pytest.raises(ValueError, match="3-dimensional"):
        multilabel_reference(np.array([[1, 0, 0]]))


# --- multilabel_metrics: hand-computed -------------------------------------------------

# 3 labels. Item 4 has no reference (excluded), item 3 failed (reference {0}).
REF = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 1], [1, 0, 0], [-1, -1, -1]])
PRED = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 1], [-1, -1, -1], [1, 1, 1]])


def test_multilabel_metrics_hand_computed():
    m = multilabel_metrics(REF, PRED)
    assert (m.n, m.n_answered) == (4, 3)
    assert m.coverage == pytest.approx(3 / 4)
    # exact: items 1 (both empty) and 2 -> 2/4; the failure is a miss
    assert m.exact_match == pytest.approx(2 / 4)
    assert m.exact_match_answered == pytest.approx(2 / 3)
    # jaccard: item0 |{0}|/|{0,1}| = 1/2, item1 empty/empty = 1, item2 1, failure 0
    assert m.jaccard == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert m.jaccard_answered == pytest.approx(2.5 / 3)
    # failure = empty prediction: TP per label (2, 0, 1), FP (0, 0, 0), FN (1, 1, 0)
    # (label 0 of item 3 is a false negative). micro: 2*3 / (2*3 + 0 + 2) = 6/8
    assert m.micro_f1 == pytest.approx(6 / 8)
    # per-label F1 = 2TP/(2TP+FP+FN): (4/5, 0/1, 2/2) -> macro (0.8 + 0 + 1) / 3
    assert m.macro_f1 == pytest.approx(1.8 / 3)
    # answered only: label 0 has TP 2, FN 0 -> F1 1; micro 6 / (6 + 1) = 6/7
    assert m.micro_f1_answered == pytest.approx(6 / 7)
    assert m.macro_f1_answered == pytest.approx((1 + 0 + 1) / 3)
    p0, p1, p2 = m.per_label
    assert (p0.precision, p0.recall, p0.f1, p0.support) == pytest.approx((1, 2 / 3, 0.8, 3))
    assert math.isnan(p1.precision)  # label 1 never predicted
    assert (p1.recall, p1.f1, p1.support) == (0.0, 0.0, 1)
    assert (p2.precision, p2.recall, p2.f1, p2.support) == (1.0, 1.0, 1.0, 1)


def test_failure_counts_as_empty_prediction_for_f1_but_as_miss_for_sets():
    ref = np.array([[0, 0], [1, 0], [0, 1]])
    failed = np.array([[-1, -1], [1, 0], [0, 1]])
    empty = np.array([[0, 0], [1, 0], [0, 1]])
    a, b = multilabel_metrics(ref, failed), multilabel_metrics(ref, empty)
    # The failed item has an empty reference: as an empty prediction it would be a hit.
    assert (a.exact_match, a.jaccard) == pytest.approx((2 / 3, 2 / 3))
    assert (b.exact_match, b.jaccard) == (1.0, 1.0)
    # An empty reference adds no TP/FP/FN, so F1 is the same either way.
    assert (a.micro_f1, a.macro_f1) == (b.micro_f1, b.macro_f1) == (1.0, 1.0)
    # With a non-empty reference the failure lowers recall but not precision.
    c = multilabel_metrics(np.array([[1, 0], [1, 0]]), np.array([[-1, -1], [1, 0]]))
    assert (c.per_label[0].precision, c.per_label[0].recall) == (1.0, 0.5)
    assert c.micro_f1 == pytest.approx(2 / 3)  # 2*1 / (2*1 + 0 + 1)


# --- sklearn oracles ----------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_exact_and_jaccard_match_sklearn_without_failures(seed):
    ratings, pred = random_sets(seed)
    ref = multilabel_reference(ratings)
    assert ref.min() >= 0 and ref.sum(axis=0).min() > 0  # every label present
    m = multilabel_metrics(ref, pred)
    f1 = sklearn_metrics.f1_score
    assert m.micro_f1 == pytest.approx(f1(ref, pred, average="micro"))
    assert m.macro_f1 == pytest.approx(f1(ref, pred, average="macro"))
    assert m.exact_match == pytest.approx(sklearn_metrics.accuracy_score(ref, pred))
    jaccard = sklearn_metrics.jaccard_score(ref, pred, average="samples", zero_division=1.0)
    assert m.jaccard == pytest.approx(jaccard)
    precision, recall, f1s, support = sklearn_metrics.precision_recall_fscore_support(ref, pred)
    np.testing.assert_allclose([s.precision for s in m.per_label], precision)
    np.testing.assert_allclose([s.recall for s in m.per_label], recall)
    np.testing.assert_allclose([s.f1 for s in m.per_label], f1s)
    assert [s.support for s in m.per_label] == list(support)
    # no failures: the answered view is the same
    assert (m.micro_f1_answered, m.coverage) == (m.micro_f1, 1.0)


def test_macro_f1_skips_labels_absent_from_reference_and_prediction():
    ratings, pred = random_sets(4, n_labels=3)
    ref = multilabel_reference(ratings)
    ref = np.hstack([ref, np.zeros((len(ref), 1), int)])  # label 3: never in either
    pred = np.hstack([pred, np.zeros((len(pred), 1), int)])
    m = multilabel_metrics(ref, pred)
    expected = sklearn_metrics.f1_score(ref, pred, average="macro", labels=[0, 1, 2])
    assert m.macro_f1 == pytest.approx(expected)
    # sklearn's default would count the absent label as F1 = 0 and lower the mean
    assert m.macro_f1 > sklearn_metrics.f1_score(ref, pred, average="macro", zero_division=0)
    assert math.isnan(m.per_label[3].f1)


# --- edge cases ----------------------------------------------------------------------


def test_all_failed():
    m = multilabel_metrics(np.array([[1, 0], [0, 0]]), np.full((2, 2), -1))
    assert (m.n, m.n_answered, m.coverage) == (2, 0, 0.0)
    assert (m.exact_match, m.jaccard, m.micro_f1) == (0.0, 0.0, 0.0)
    assert m.macro_f1 == 0.0  # label 0 present (support 1), F1 0; label 1 absent, skipped
    for value in (m.exact_match_answered, m.jaccard_answered, m.micro_f1_answered):
        assert math.isnan(value)


def test_no_reference_at_all():
    m = multilabel_metrics(np.full((2, 2), -1), np.array([[1, 0], [0, 1]]))
    assert (m.n, m.n_answered) == (0, 0)
    assert math.isnan(m.coverage) and math.isnan(m.exact_match)


def test_metrics_reject_bad_shapes_and_partial_rows():
    with pytest.raises(ValueError, match="differ in shape"):
        multilabel_metrics(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="all -1"):
        multilabel_metrics(np.zeros((1, 2), int), np.array([[-1, 1]]))


# --- per-label alpha ------------------------------------------------------------------


def test_alpha_per_label_matches_krippendorff_package():
    krippendorff = pytest.importorskip("krippendorff")
    ratings, pred = random_sets(5, n=60, skip_rate=0.2, failure_rate=0.1)
    humans = multilabel_alpha_per_label(ratings)
    with_llm = multilabel_alpha_per_label(ratings, pred)
    assert len(humans) == len(with_llm) == 4
    for label in range(4):
        coders = np.where(ratings[:, :, label] >= 0, ratings[:, :, label], np.nan).T
        expected = krippendorff.alpha(reliability_data=coders, level_of_measurement="nominal")
        assert humans[label] == pytest.approx(expected)
        llm_row = np.where(pred[:, label] >= 0, pred[:, label], np.nan)
        expected = krippendorff.alpha(
            reliability_data=np.vstack([coders, llm_row]), level_of_measurement="nominal"
        )
        assert with_llm[label] == pytest.approx(expected)


def test_alpha_hand_computed_and_contrarian_llm_lowers_it():
    # One label, 2 coders x 4 units: (1,1) (0,0) (1,0) (0,0). Coincidences: o11 = 2,
    # o00 = 4, o01 = o10 = 1; n_1 = 3, n_0 = 5, n = 8.
    # alpha = 1 - (n-1) * (o01 + o10) / (2 n_0 n_1) = 1 - 7 * 2 / 30 = 8/15
    ratings = np.array([[[1], [1]], [[0], [0]], [[1], [0]], [[0], [0]]])
    assert multilabel_alpha_per_label(ratings)[0] == pytest.approx(8 / 15)
    agreeing = multilabel_alpha_per_label(ratings, np.array([[1], [0], [1], [0]]))[0]
    contrarian = multilabel_alpha_per_label(ratings, np.array([[0], [1], [0], [1]]))[0]
    assert contrarian < 8 / 15 < agreeing


def test_alpha_without_variation_is_nan():
    ratings = np.zeros((3, 2, 1), int)
    assert math.isnan(multilabel_alpha_per_label(ratings)[0])


# --- multilabel_ci --------------------------------------------------------------------


def index_bootstrap(statistic, n, n_boot, seed, level=0.95):
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_boot)])
    tail = (1 - level) / 2
    return np.nanquantile(values, [tail, 1 - tail])


@pytest.mark.parametrize("metric", MULTILABEL_METRICS)
def test_ci_agrees_with_plain_index_bootstrap(metric):
    ratings, pred = random_sets(6, n=150, failure_rate=0.1)
    ref = multilabel_reference(ratings)
    ci = multilabel_ci(ref, pred, metric, n_boot=2000, seed=1)
    assert ci.estimate == pytest.approx(getattr(multilabel_metrics(ref, pred), metric))
    low, high = index_bootstrap(
        lambda i: getattr(multilabel_metrics(ref[i], pred[i]), metric), 150, 1000, seed=2
    )
    assert (ci.n, ci.n_boot) == (150, 2000)
    assert ci.low == pytest.approx(low, abs=0.025)
    assert ci.high == pytest.approx(high, abs=0.025)
    assert ci.low < ci.estimate < ci.high


def test_ci_drops_unreferenced_items_is_seeded_and_checks_metric():
    ratings, pred = random_sets(7, n=80)
    ref = multilabel_reference(ratings)
    ref[:5] = -1
    ci = multilabel_ci(ref, pred, "jaccard", n_boot=300, seed=3)
    assert ci.n == 75
    assert ci == multilabel_ci(ref, pred, "jaccard", n_boot=300, seed=3)
    assert ci != multilabel_ci(ref, pred, "jaccard", n_boot=300, seed=4)
    with pytest.raises(ValueError, match="metric"):
        multilabel_ci(ref, pred, "hamming")


def test_ci_with_clusters_is_wider_for_duplicated_items():
    ratings, pred = random_sets(8, n=60)
    ref = multilabel_reference(ratings)
    ref4, pred4 = np.repeat(ref, 4, axis=0), np.repeat(pred, 4, axis=0)
    plain = multilabel_ci(ref4, pred4, "micro_f1", n_boot=1000, seed=0)
    clustered = multilabel_ci(
        ref4, pred4, "micro_f1", n_boot=1000, seed=0, clusters=np.repeat(np.arange(60), 4)
    )
    assert clustered.estimate == plain.estimate
    # 60 independent clusters of 4 copies: the width is about that of 60 items, ~2x.
    assert clustered.width > 1.5 * plain.width
