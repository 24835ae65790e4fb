"""Accuracy, macro-F1 and the confusion matrix, end-to-end and on answered items."""

import math

import numpy as np
import pytest

from harness.metrics import (
    accuracy_from_confusion,
    classification_metrics,
    confusion,
    macro_f1_from_confusion,
)

# Reference, prediction (-1 = failure); the last item has no reference and is dropped.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, -1])
Y_PRED = np.array([0, 1, -1, 1, 1, -1, 0])


def test_confusion_has_failure_column_and_drops_items_without_reference():
    expected = [[1, 1, 0, 1], [0, 2, 0, 0], [0, 0, 0, 1]]
    assert confusion(Y_TRUE, Y_PRED, 3).tolist() == expected


def test_classification_metrics_hand_computed():
    m = classification_metrics(Y_TRUE, Y_PRED, 3)
    assert (m.n, m.n_answered) == (6, 4)
    assert m.coverage == pytest.approx(4 / 6)
    assert m.accuracy == pytest.approx(3 / 6)  # failures count as wrong
    assert m.accuracy_answered == pytest.approx(3 / 4)
    # class 0: TP 1, predicted 1, support 3 -> P 1, R 1/3, F1 2/4
    # class 1: TP 2, predicted 3, support 2 -> P 2/3, R 1, F1 4/5
    # class 2: TP 0, predicted 0, support 1 -> P undefined, R 0, F1 0
    assert m.per_class[0] == pytest.approx((1.0, 1 / 3, 0.5, 3))
    assert m.per_class[1] == pytest.approx((2 / 3, 1.0, 0.8, 2))
    assert math.isnan(m.per_class[2].precision)
    assert (m.per_class[2].recall, m.per_class[2].f1, m.per_class[2].support) == (0.0, 0.0, 1)
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    # answered only: class 2 has no answered item and no prediction -> not averaged
    assert m.macro_f1_answered == pytest.approx((2 / 3 + 0.8) / 2)
    assert m.confusion.tolist() == confusion(Y_TRUE, Y_PRED, 3).tolist()


def test_class_absent_from_reference_and_predictions_is_not_averaged():
    y_true, y_pred = np.array([0, 1, 1, 0]), np.array([0, 1, 0, -1])
    three = classification_metrics(y_true, y_pred, 3).macro_f1
    five = classification_metrics(y_true, y_pred, 5).macro_f1
    assert three == pytest.approx(five)
    # a predicted class that never occurs in the reference does count (F1 = 0)
    spurious = classification_metrics(y_true, np.array([0, 1, 2, -1]), 3)
    assert spurious.per_class[2].f1 == 0.0
    assert spurious.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 0.0) / 3)


def test_all_failures_and_empty_input():
    m = classification_metrics(np.array([0, 1]), np.array([-1, -1]), 2)
    assert (m.accuracy, m.coverage, m.macro_f1) == (0.0, 0.0, 0.0)
    assert math.isnan(m.accuracy_answered) and math.isnan(m.macro_f1_answered)
    empty = classification_metrics(np.array([], dtype=int), np.array([], dtype=int), 2)
    assert empty.n == 0
    assert all(math.isnan(x) for x in (empty.accuracy, empty.coverage, empty.macro_f1))


def test_inputs_are_validated():
    with pytest.raises(ValueError):
        confusion(np.array([0, 1]), np.array([0]), 2)
    with pytest.raises(ValueError):
        confusion(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError):
        confusion(np.array([0.5, 1.0]), np.array([0, 1]), 2)
    # integral floats (e.g. read from a CSV) are accepted
    assert confusion(np.array([0.0, 1.0]), np.array([0, -1]), 2).tolist() == [[1, 0, 0], [0, 0, 1]]


def random_predictions(seed, n=500, k=4, failure_rate=0.1):
    rng = np.random.default_rng(seed)
    y_true = rng.choice(k, n, p=np.linspace(1, 2, k) / np.linspace(1, 2, k).sum())
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, k, n))
    y_pred[rng.random(n) < failure_rate] = -1
    return y_true, y_pred


@pytest.mark.parametrize("seed", range(4))
def test_classification_metrics_equal_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    k = 4
    y_true, y_pred = random_predictions(seed, k=k)
    if seed == 3:
        y_pred[y_pred == 2] = 1  # class 2 never predicted
    m = classification_metrics(y_true, y_pred, k)
    labels = sorted(set(y_true) | set(y_pred[y_pred >= 0]))
    assert m.accuracy == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert m.macro_f1 == pytest.approx(
        sk.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    answered = y_pred >= 0
    yt, yp = y_true[answered], y_pred[answered]
    assert m.accuracy_answered == pytest.approx(sk.accuracy_score(yt, yp))
    assert m.macro_f1_answered == pytest.approx(
        sk.f1_score(yt, yp, labels=sorted(set(yt) | set(yp)), average="macro", zero_division=0)
    )
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(k)), zero_division=0
    )
    for c, scores in enumerate(m.per_class):
        assert scores.recall == pytest.approx(recall[c])
        assert scores.f1 == pytest.approx(f1[c])
        assert scores.support == support[c]
        if not math.isnan(scores.precision):
            assert scores.precision == pytest.approx(precision[c])
    assert math.isnan(m.per_class[2].precision) == (seed == 3)


def test_table_functions_work_on_stacks_of_replicate_tables():
    rng = np.random.default_rng(5)
    stack = rng.integers(0, 9, (7, 3, 4))
    accuracy = accuracy_from_confusion(stack)
    macro_f1 = macro_f1_from_confusion(stack)
    answered = macro_f1_from_confusion(stack, answered_only=True)
    assert accuracy.shape == macro_f1.shape == (7,)
    for b, table in enumerate(stack):
        assert accuracy[b] == pytest.approx(np.trace(table[:, :3]) / table.sum())
        assert macro_f1[b] == pytest.approx(macro_f1_from_confusion(table))
        assert answered[b] == pytest.approx(macro_f1_from_confusion(table[:, :3]))
    assert math.isnan(float(accuracy_from_confusion(np.zeros((3, 4)))))
