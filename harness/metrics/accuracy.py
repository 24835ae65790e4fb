"""Accuracy of a pre-labeler against a reference label.

Labels are integer codes 0..K-1 (``n_classes=K``); -1 in ``y_pred`` is a failed or
unparseable output and -1 in ``y_true`` is an item without a reference (excluded).

Everything is computed from one confusion matrix of shape (K, K+1) whose last column
counts failures, so the same functions score the observed data and a stack of bootstrap
replicate tables of shape (B, K, K+1) (see ``intervals.py``).

Two views, as statistics.md section 3 asks:

* end-to-end: a failure is a prediction that is never right. It lowers accuracy and the
  recall of its true class, and stays in every denominator.
* answered: only items with a prediction >= 0 (the first K columns), reported together
  with ``coverage`` = answered / total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

MISSING = -1


def validate_codes(
    values: np.ndarray, n_classes: int, name: str = "labels", ndim: int | None = None
) -> np.ndarray:
    """Return ``values`` as an int64 array after checking they are codes in -1..K-1.

    Integral floats are accepted (e.g. labels read from a CSV); NaN, fractions and codes
    outside -1..n_classes-1 raise ``ValueError``.
    """
    if int(n_classes) < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    arr = np.asarray(values)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer codes (-1 for missing)")
    elif arr.size and arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer codes, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < MISSING or arr.max() >= n_classes):
        raise ValueError(f"{name} must hold codes in -1..{n_classes - 1}")
    return arr


class ClassScores(NamedTuple):
    """Per-class scores; ``support`` counts reference items of the class (failures too).

    precision = TP / predicted-as-class (nan when the class is never predicted),
    recall = TP / support (nan when support is 0), f1 = 2 TP / (predicted + support)
    (the harmonic mean of the two; 0 when TP = 0, nan when both counts are 0).
    """

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationMetrics:
    """Scores of predictions against a reference; all rates are in [0, 1].

    ``accuracy`` and ``macro_f1`` are end-to-end (failures count as wrong);
    ``accuracy_answered`` and ``macro_f1_answered`` use answered items only and are nan
    when nothing was answered. ``per_class`` is end-to-end, indexed by class code.
    ``confusion`` is the (K, K+1) matrix: rows reference, columns prediction, last
    column failures.
    """

    n: int
    n_answered: int
    coverage: float
    accuracy: float
    accuracy_answered: float
    macro_f1: float
    macro_f1_answered: float
    per_class: list[ClassScores]
    confusion: np.ndarray


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix of shape (K, K+1), int64: rows reference, columns prediction.

    The last column counts failed predictions (-1). Items with ``y_true == -1`` have no
    reference and are excluded.
    """
    truth = validate_codes(y_true, n_classes, "y_true", ndim=1)
    pred = validate_codes(y_pred, n_classes, "y_pred", ndim=1)
    if truth.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {truth.shape} vs {pred.shape}")
    keep = truth >= 0
    column = np.where(pred[keep] >= 0, pred[keep], n_classes)
    cells = truth[keep] * (n_classes + 1) + column
    counts = np.bincount(cells, minlength=n_classes * (n_classes + 1))
    return counts.reshape(n_classes, n_classes + 1)


def _split(table: np.ndarray) -> tuple[np.ndarray, int]:
    """Return ``table`` as float and K; accepts (..., K, K+1) or (..., K, K)."""
    t = np.asarray(table, dtype=float)
    if t.ndim < 2 or t.shape[-1] not in (t.shape[-2], t.shape[-2] + 1):
        raise ValueError(f"expected a (..., K, K+1) or (..., K, K) table, got {t.shape}")
    return t, t.shape[-2]


def accuracy_from_confusion(table: np.ndarray, answered_only: bool = False) -> np.ndarray:
    """Accuracy of one table (K, K+1) or of a stack (..., K, K+1); nan for empty tables.

    End-to-end by default: correct / all items. With ``answered_only`` the failure
    column is dropped from the denominator.
    """
    t, k = _split(table)
    correct = np.trace(t[..., :, :k], axis1=-2, axis2=-1)
    total = t[..., :, :k].sum(axis=(-2, -1)) if answered_only else t.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / np.where(total > 0, total, 1), np.nan)


def _f1_parts(t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, predicted counts and support per class, each (..., K)."""
    tp = np.diagonal(t[..., :, :k], axis1=-2, axis2=-1)
    predicted = t[..., :, :k].sum(axis=-2)
    support = t.sum(axis=-1)
    return tp, predicted, support


def macro_f1_from_confusion(table: np.ndarray, answered_only: bool = False) -> np.ndarray:
    """Macro-averaged F1 of one table (K, K+1) or a stack (..., K, K+1); in [0, 1].

    Per class F1 = 2 TP / (predicted + support). The macro average runs over the K label
    classes (never over the failure column) that occur in the reference or in the
    predictions; a class absent from both has an undefined F1 and is skipped, which is
    what ``sklearn.metrics.f1_score(average="macro", zero_division=0)`` does with
    ``labels`` = the classes present. End-to-end, a failure adds to the support of its
    true class and so lowers its recall. nan when no class is present.
    """
    t, k = _split(table)
    if answered_only:
        t = t[..., :, :k]
    tp, predicted, support = _f1_parts(t, k)
    denominator = predicted + support
    present = denominator > 0
    f1 = np.where(present, 2.0 * tp / np.where(present, denominator, 1.0), 0.0)
    n_present = present.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_present > 0, f1.sum(axis=-1) / np.maximum(n_present, 1), np.nan)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def metrics_from_confusion(table: np.ndarray) -> ClassificationMetrics:
    """All of :class:`ClassificationMetrics` from one (K, K+1) confusion matrix."""
    t, k = _split(table)
    if t.ndim != 2 or t.shape[1] != k + 1:
        raise ValueError(f"expected a (K, K+1) confusion matrix, got {t.shape}")
    n = int(t.sum())
    n_answered = int(t[:, :k].sum())
    tp, predicted, support = _f1_parts(t, k)
    per_class = [
        ClassScores(
            precision=_ratio(tp[c], predicted[c]),
            recall=_ratio(tp[c], support[c]),
            f1=_ratio(2.0 * tp[c], predicted[c] + support[c]),
            support=int(support[c]),
        )
        for c in range(k)
    ]
    return ClassificationMetrics(
        n=n,
        n_answered=n_answered,
        coverage=_ratio(n_answered, n),
        accuracy=float(accuracy_from_confusion(t)),
        accuracy_answered=float(accuracy_from_confusion(t, answered_only=True)),
        macro_f1=float(macro_f1_from_confusion(t)),
        macro_f1_answered=float(macro_f1_from_confusion(t, answered_only=True)),
        per_class=per_class,
        confusion=np.asarray(table).astype(np.int64),
    )


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
) -> ClassificationMetrics:
    """Accuracy, macro-F1 and per-class scores, end-to-end and on answered items.

    ``y_true`` is the reference (-1 = no reference, item excluded), ``y_pred`` the
    prediction (-1 = failure). See :func:`macro_f1_from_confusion` for the macro rule.
    """
    return metrics_from_confusion(confusion(y_true, y_pred, n_classes))
