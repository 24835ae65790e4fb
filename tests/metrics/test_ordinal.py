"""Ordinal-scale metrics: hand-computed cases, sklearn weighted kappa, the table bootstrap
against a plain index bootstrap, the ordinal human ceiling and level distributions."""

import math

import numpy as np
import pytest

from harness.metrics import (
    ORDINAL_METRICS,
    expected_level,
    kappa_ci,
    median_label,
    ordinal_ci,
    ordinal_from_confusion,
    ordinal_human_ceiling,
    ordinal_metrics,
    top_level_probability,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")

# Levels 0..2. The last item has no reference (dropped); item 6 failed (true level 0).
Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 0, -1])
Y_PRED = np.array([0, 1, 1, 2, 0, 2, -1, 1])


def ordinal_data(seed, n=300, k=5, failure_rate=0.0):
    """Predictions mostly within one step of the truth."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    step = rng.choice([-2, -1, 0, 0, 0, 1, 2], n)
    y_pred = np.clip(y_true + step, 0, k - 1)
    y_pred[rng.random(n) < failure_rate] = -1
    return y_true, y_pred


def index_bootstrap(statistic, n, n_boot, seed, level=0.95):
    """Textbook bootstrap: resample item indices, recompute the statistic each time."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_boot)])
    tail = (1 - level) / 2
    return np.nanquantile(values, [tail, 1 - tail])


def mae_answered(y_true, y_pred):
    answered = y_pred >= 0
    return np.abs(y_pred[answered] - y_true[answered]).mean() if answered.any() else np.nan


# --- ordinal_metrics ----------------------------------------------------------------


def test_ordinal_metrics_hand_computed():
    m = ordinal_metrics(Y_TRUE, Y_PRED, 3)
    # 7 items with a reference, 6 answered.
    assert (m.n, m.n_answered) == (7, 6)
    assert m.coverage == pytest.approx(6 / 7)
    # exact: items 0, 2, 5 -> 3/7 (the failure is wrong and stays in the denominator)
    assert m.exact == pytest.approx(3 / 7)
    # within one: items 0, 1, 2, 3, 5 -> 5/7; item 4 is 2 steps off; the failure on a
    # true 0 is wrong (|-1 - 0| = 1 would wrongly count it).
    assert m.within_one == pytest.approx(5 / 7)
    # MAE over the 6 answered: |0|+|1|+|0|+|1|+|2|+|0| = 4 -> 4/6 scale steps
    assert m.mae == pytest.approx(2 / 3)
    # table rows (true) x cols (pred 0, 1, 2, fail): [1 1 0 1] [0 1 1 0] [1 0 1 0];
    # row sums (3, 2, 2), column sums (2, 2, 2, 1), n = 7; failure weight = max weight.
    # linear w: [0 1 2 2] [1 0 1 2] [2 1 0 2]: observed 3 + 1 + 2 = 6;
    # expected (3*8 + 2*6 + 2*8) / 7 = 52/7 -> kappa = 1 - 42/52 = 5/26
    assert m.kappa_linear == pytest.approx(5 / 26)
    # quadratic w: [0 1 4 4] [1 0 1 4] [4 1 0 4]: observed 5 + 1 + 4 = 10;
    # expected (3*14 + 2*8 + 2*14) / 7 = 86/7 -> kappa = 1 - 70/86 = 8/43
    assert m.kappa_quadratic == pytest.approx(8 / 43)
    np.testing.assert_array_equal(m.confusion, [[1, 1, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0]])


def test_ordinal_kappas_match_kappa_ci_with_failures():
    y_true, y_pred = ordinal_data(1, failure_rate=0.1)
    m = ordinal_metrics(y_true, y_pred, 5)
    for weights in ("linear", "quadratic"):
        ci = kappa_ci(y_true, y_pred, 5, weights=weights, n_boot=1)
        assert getattr(m, f"kappa_{weights}") == pytest.approx(ci.estimate)


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_weighted_kappa_equals_sklearn_without_failures(weights):
    y_true, y_pred = ordinal_data(2)
    y_pred[y_pred == 4] = 3  # the top level is never predicted: labels= must fix the scale
    m = ordinal_metrics(y_true, y_pred, 5)
    expected = sklearn_metrics.cohen_kappa_score(
        y_true, y_pred, labels=list(range(5)), weights=weights
    )
    assert getattr(m, f"kappa_{weights}") == pytest.approx(expected)
    assert m.exact == pytest.approx(np.mean(y_true == y_pred))
    assert m.within_one == pytest.approx(np.mean(np.abs(y_true - y_pred) <= 1))
    assert m.mae == pytest.approx(sklearn_metrics.mean_absolute_error(y_true, y_pred))


def test_ordinal_metrics_edge_cases():
    failed = ordinal_metrics(np.array([0, 1, 2]), np.array([-1, -1, -1]), 3)
    assert (failed.n, failed.n_answered, failed.coverage) == (3, 0, 0.0)
    assert failed.exact == 0.0 and failed.within_one == 0.0
    assert math.isnan(failed.mae)
    empty = ordinal_metrics(np.array([-1, -1]), np.array([0, 1]), 3)
    assert empty.n == 0
    for value in (empty.coverage, empty.exact, empty.within_one, empty.mae, empty.kappa_linear):
        assert math.isnan(value)
    with pytest.raises(ValueError):
        ordinal_metrics(np.array([0, 3]), np.array([0, 1]), 3)  # level 3 outside 0..2
    with pytest.raises(ValueError):
        ordinal_metrics(np.array([0, 1]), np.array([0]), 3)


def test_ordinal_from_confusion_on_a_stack_and_square_tables():
    tables = np.stack(
        [ordinal_metrics(*ordinal_data(s, n=50, failure_rate=0.1), 5).confusion for s in range(4)]
    )
    for metric in ORDINAL_METRICS:
        stacked = ordinal_from_confusion(tables, metric)
        assert stacked.shape == (4,)
        singles = [float(ordinal_from_confusion(t, metric)) for t in tables]
        np.testing.assert_allclose(stacked, singles)
    # a (K, K) table = no failure column: exact 2/3 ([[1, 1], [0, 1]]), MAE 1/3
    square = np.array([[1, 1], [0, 1]])
    assert float(ordinal_from_confusion(square, "exact")) == pytest.approx(2 / 3)
    assert float(ordinal_from_confusion(square, "mae")) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        ordinal_from_confusion(square, "rmse")
    with pytest.raises(ValueError):
        ordinal_from_confusion(np.ones((2, 4)), "exact")


# --- ordinal_ci ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("within_one", lambda t, p: np.mean((p >= 0) & (np.abs(p - t) <= 1))),
        ("mae", mae_answered),
        ("kappa_quadratic", None),
    ],
)
def test_ordinal_ci_agrees_with_index_bootstrap(metric, value):
    y_true, y_pred = ordinal_data(3, failure_rate=0.05)
    if value is None:  # sklearn on answered items (no failures in this copy)
        y_true, y_pred = y_true[y_pred >= 0], y_pred[y_pred >= 0]

        def value(t, p):
            return sklearn_metrics.cohen_kappa_score(
                t, p, labels=list(range(5)), weights="quadratic"
            )

    ci = ordinal_ci(y_true, y_pred, 5, metric=metric, n_boot=4000, seed=1)
    low, high = index_bootstrap(lambda i: value(y_true[i], y_pred[i]), y_true.size, 2000, seed=2)
    assert ci.estimate == pytest.approx(value(y_true, y_pred))
    assert (ci.n, ci.n_boot, ci.level) == (y_true.size, 4000, 0.95)
    # Monte Carlo error of the 2.5%/97.5% quantiles at these B is ~0.01 or less.
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=0.025)
    assert ci.low < ci.estimate < ci.high


def test_ordinal_ci_drops_unreferenced_items_seeds_and_validates():
    ci = ordinal_ci(Y_TRUE, Y_PRED, 3, metric="exact", n_boot=500, seed=7)
    assert ci.n == 7 and ci.estimate == pytest.approx(3 / 7)
    assert ci == ordinal_ci(Y_TRUE, Y_PRED, 3, metric="exact", n_boot=500, seed=7)
    # At n = 7 the BCa bounds of two seeds can coincide (7 and 8 do): 14 differs.
    assert ci != ordinal_ci(Y_TRUE, Y_PRED, 3, metric="exact", n_boot=500, seed=14)
    empty = ordinal_ci(np.array([-1]), np.array([0]), 3, metric="mae")
    assert empty.n == 0 and math.isnan(empty.estimate) and empty.n_boot == 0
    with pytest.raises(ValueError):
        ordinal_ci(Y_TRUE, Y_PRED, 3, metric="rmse")
    with pytest.raises(ValueError):
        ordinal_ci(Y_TRUE, Y_PRED, 3, clusters=np.arange(3))


def test_ordinal_ci_clusters_resample_whole_groups():
    # Each item copied 5 times: ignoring the copies makes the interval ~sqrt(5) too narrow;
    # resampling the copies as one cluster recovers the width of the original items.
    y_true, y_pred = ordinal_data(4, n=200)
    base = ordinal_ci(y_true, y_pred, 5, metric="mae", n_boot=2000, seed=1)
    t5, p5 = np.repeat(y_true, 5), np.repeat(y_pred, 5)
    naive = ordinal_ci(t5, p5, 5, metric="mae", n_boot=2000, seed=1)
    clustered = ordinal_ci(
        t5, p5, 5, metric="mae", n_boot=2000, seed=1, clusters=np.repeat(np.arange(200), 5)
    )
    assert naive.width < 0.6 * base.width
    assert clustered.width == pytest.approx(base.width, rel=0.15)
    assert clustered.n == 1000


# --- ordinal_human_ceiling ----------------------------------------------------------

CEILING_RATINGS = np.array([[0, 1, 2], [2, 2, 1], [1, -1, 0], [0, 0, 1]])
CEILING_PREDICTION = np.array([1, 2, -1, 0])


def test_ordinal_human_ceiling_hand_computed():
    c = ordinal_human_ceiling(CEILING_RATINGS, CEILING_PREDICTION, 3)
    rows = c.per_annotator
    # Lower medians of the others:
    #   annotator 0: {1,2}->1, {2,1}->1, {0}->0, {0,1}->0      -> ref (1, 1, 0, 0), 4 items
    #   annotator 1: {0,2}->0, {2,1}->1, (item 2 unrated), {0,1}->0 -> ref (0, 1, 0), 3 items
    #   annotator 2: {0,1}->0, {2,2}->2, {1}->1, {0,0}->0      -> ref (0, 2, 1, 0), 4 items
    assert [r.n for r in rows] == [4, 3, 4]
    assert [r.llm_n_answered for r in rows] == [3, 3, 3]
    # annotator 0: human (0, 2, 1, 0), LLM (1, 2, fail, 0)
    #   human exact 1/4, within one 4/4, MAE (1+1+1+0)/4 = 3/4
    #   LLM exact 2/4, within one 3/4, MAE over 3 answered (0+1+0)/3 = 1/3
    # annotator 1: human = LLM = (1, 2, 0): exact 1/3, within one 1, MAE 2/3
    # annotator 2: human (2, 1, 0, 1): exact 0, within one 3/4, MAE 5/4
    #   LLM (1, 2, fail, 0): exact 2/4, within one 3/4, MAE (1+0+0)/3 = 1/3
    assert [r.human_exact for r in rows] == pytest.approx([1 / 4, 1 / 3, 0])
    assert [r.llm_exact for r in rows] == pytest.approx([2 / 4, 1 / 3, 2 / 4])
    assert [r.human_within_one for r in rows] == pytest.approx([1, 1, 3 / 4])
    assert [r.llm_within_one for r in rows] == pytest.approx([3 / 4, 1, 3 / 4])
    assert [r.human_mae for r in rows] == pytest.approx([3 / 4, 2 / 3, 5 / 4])
    assert [r.llm_mae for r in rows] == pytest.approx([1 / 3, 2 / 3, 1 / 3])
    # Quadratic kappa, w = [0 1 4 4] [1 0 1 4] [4 1 0 4] (last column = failure):
    #   a0 human: rows [1 1 0 0] [1 0 1 0], cols (2,1,1,0): obs 1+2 = 3, exp (2*5+2*3)/4 = 4
    #     -> 1/4; a0 LLM: rows [1 0 0 1] [0 1 1 0], cols (1,1,1,1): obs 4+1 = 5,
    #     exp (2*9 + 2*6)/4 = 7.5 -> 1/3
    #   a1: rows [1 1 0 0] [0 0 1 0], cols (1,1,1,0): obs 2, exp (2*5 + 1*2)/3 = 4 -> 1/2
    #   a2 human: rows [0 1 1 0] [1 0 0 0] [0 1 0 0], cols (1,2,1,0): obs 5+1+1 = 7,
    #     exp (2*6 + 1*2 + 1*6)/4 = 5 -> -2/5; a2 LLM: rows [1 1 0 0] [0 0 0 1] [0 0 1 0],
    #     cols (1,1,1,1): obs 1+4 = 5, exp (2*9 + 6 + 9)/4 = 33/4 -> 13/33
    assert [r.human_kappa_quadratic for r in rows] == pytest.approx([1 / 4, 1 / 2, -2 / 5])
    assert [r.llm_kappa_quadratic for r in rows] == pytest.approx([1 / 3, 1 / 2, 13 / 33])
    # Item-weighted (4, 3, 4; 11 comparisons):
    assert c.n_pairs == 11
    assert c.human_exact == pytest.approx(2 / 11)  # (1 + 1 + 0) / 11
    assert c.llm_exact == pytest.approx(5 / 11)  # (2 + 1 + 2) / 11
    assert c.ratio_exact == pytest.approx(5 / 2)
    assert c.human_within_one == pytest.approx(10 / 11)  # (4 + 3 + 3) / 11
    assert c.llm_within_one == pytest.approx(9 / 11)  # (3 + 3 + 3) / 11
    assert c.ratio_within_one == pytest.approx(9 / 10)
    assert c.human_mae == pytest.approx(10 / 11)  # (3 + 2 + 5) / 11
    assert c.llm_mae == pytest.approx(4 / 9)  # pooled over 9 answered: (1 + 2 + 1) / 9
    assert c.ratio_mae == pytest.approx((10 / 11) / (4 / 9))  # human / LLM = 45/22
    assert c.human_kappa_quadratic == pytest.approx(9 / 110)  # (1 + 1.5 - 1.6) / 11
    assert c.llm_kappa_quadratic == pytest.approx(97 / 242)  # (4/3 + 3/2 + 52/33) / 11
    assert c.ratio_kappa_quadratic == pytest.approx(485 / 99)


def test_ordinal_human_ceiling_equals_loop_with_sklearn():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 4, 300)
    ratings = np.clip(truth[:, None] + rng.choice([-1, 0, 0, 1], (300, 4)), 0, 3)
    ratings[rng.random(ratings.shape) < 0.25] = -1
    prediction = np.clip(truth + rng.choice([-1, 0, 1], 300), 0, 3)
    c = ordinal_human_ceiling(ratings, prediction, 4)
    for j, row in enumerate(c.per_annotator):
        reference = median_label(np.delete(ratings, j, axis=1), 4)
        items = (ratings[:, j] >= 0) & (reference >= 0)
        ref, human, llm = reference[items], ratings[items, j], prediction[items]
        assert row.n == items.sum() == row.llm_n_answered
        for who, labels in (("human", human), ("llm", llm)):
            assert getattr(row, f"{who}_exact") == pytest.approx(np.mean(labels == ref))
            assert getattr(row, f"{who}_within_one") == pytest.approx(
                np.mean(np.abs(labels - ref) <= 1)
            )
            assert getattr(row, f"{who}_mae") == pytest.approx(np.mean(np.abs(labels - ref)))
            assert getattr(row, f"{who}_kappa_quadratic") == pytest.approx(
                sklearn_metrics.cohen_kappa_score(
                    labels, ref, labels=list(range(4)), weights="quadratic"
                )
            )
    weights = [r.n for r in c.per_annotator]
    assert c.llm_mae == pytest.approx(
        np.average([r.llm_mae for r in c.per_annotator], weights=weights)
    )


def test_ordinal_human_ceiling_edge_cases():
    ratings = np.array([[0, 0], [1, 1], [2, 2], [1, 1]])
    perfect = ordinal_human_ceiling(ratings, np.array([0, 1, 2, 1]), 3)
    assert perfect.llm_mae == 0.0 and perfect.human_mae == 0.0
    assert math.isnan(perfect.ratio_mae)  # human_mae / 0
    assert perfect.ratio_exact == 1.0 and perfect.ratio_kappa_quadratic == pytest.approx(1.0)
    # two annotators: the reference of each is simply the other one
    two = ordinal_human_ceiling(np.array([[0, 1], [2, 2], [1, 0]]), np.array([0, 2, 1]), 3)
    assert [r.human_exact for r in two.per_annotator] == pytest.approx([1 / 3, 1 / 3])
    lonely = ordinal_human_ceiling(np.array([[0], [1]]), np.array([0, 1]), 3)
    assert lonely.n_pairs == 0 and math.isnan(lonely.human_mae) and math.isnan(lonely.ratio_mae)
    assert math.isnan(lonely.ratio_exact)
    all_failed = ordinal_human_ceiling(ratings, np.array([-1, -1, -1, -1]), 3)
    assert all_failed.llm_exact == 0.0 and math.isnan(all_failed.llm_mae)
    assert [r.llm_n_answered for r in all_failed.per_annotator] == [0, 0]
    with pytest.raises(ValueError):
        ordinal_human_ceiling(ratings, np.array([0, 1]), 3)


# --- level distributions ------------------------------------------------------------


def test_expected_level_and_top_level_probability():
    probs = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [np.nan, np.nan, np.nan], [0, 0.5, 0.5]])
    # 0*0.2 + 1*0.3 + 2*0.5 = 1.3; 0; nan (no distribution); 0.5 + 1.0 = 1.5
    np.testing.assert_allclose(expected_level(probs), [1.3, 0.0, np.nan, 1.5])
    np.testing.assert_allclose(top_level_probability(probs), [0.5, 1.0, np.nan, 0.5])
    assert expected_level(np.empty((0, 3))).shape == (0,)
    for bad in ([[0.5, 0.4, 0.0]], [[1.2, -0.2, 0.0]], [[np.nan, 0.5, 0.5]], [0.5, 0.5]):
        with pytest.raises(ValueError):
            expected_level(np.array(bad))
        with pytest.raises(ValueError):
            top_level_probability(np.array(bad))
