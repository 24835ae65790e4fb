"""Multi-label tasks: each item gets a *set* of labels, stored as a 0/1 indicator row.

* ``ratings``: int (n_items, n_annotators, n_labels); 1 = the annotator chose the label,
  0 = did not, -1 = the annotator did not label the item, and then the whole label vector
  of that (item, annotator) is -1 (checked).
* ``ref`` / ``pred``: int (n_items, n_labels) indicator rows; an all -1 row is an item
  without a reference (excluded everywhere) or a failed prediction.

Failure rule, end-to-end as in ``accuracy.py`` (statistics.md section 3): a failed item
stays in every denominator. It is an exact-match miss and has Jaccard 0 even when the
reference set is empty; for precision/recall/F1 it counts as predicting no label, so it
adds false negatives (lowers recall) but never false positives. The ``*_answered``
fields use answered items only; read them with ``coverage``.

All scores are computed from per-item quantities weighted by how often each item is
drawn, so one code path scores the data (weights 1) and a stack of bootstrap replicates
(weights = counts of each item in each resample; statistics.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .accuracy import ClassScores
from .agreement import krippendorff_alpha
from .intervals import Interval, bootstrap_items

MULTILABEL_METRICS = ("exact_match", "jaccard", "micro_f1", "macro_f1")


@dataclass(frozen=True)
class MultilabelMetrics:
    """Scores of predicted label sets against reference sets; all rates in [0, 1].

    ``n`` = items with a reference, ``n_answered`` of them have a prediction,
    ``coverage`` = n_answered / n. ``exact_match`` = share of items whose predicted set
    equals the reference set; ``jaccard`` = mean per item of |A & B| / |A | B| (two empty
    sets: 1.0). ``micro_f1`` = 2 TP / (2 TP + FP + FN) pooled over all (item, label)
    cells (nan when no cell is positive in either); ``macro_f1`` = mean over labels of
    the per-label F1, skipping labels absent from both reference and predictions (their
    F1 is undefined; as ``accuracy.macro_f1_from_confusion``; nan when none is present).
    These four are end-to-end (module docstring); the ``*_answered`` versions use
    answered items only (nan when none). ``per_label[l]`` = end-to-end
    ``ClassScores(precision, recall, f1, support)`` of label l, support = number of
    reference sets containing l (``accuracy.ClassScores`` rules for nan).
    """

    n: int
    n_answered: int
    coverage: float
    exact_match: float
    jaccard: float
    micro_f1: float
    macro_f1: float
    exact_match_answered: float
    jaccard_answered: float
    micro_f1_answered: float
    macro_f1_answered: float
    per_label: list[ClassScores]


def _indicator(values: np.ndarray, name: str, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Checked int64 array of 0/1/-1 and the mask of present vectors (last axis)."""
    arr = np.asarray(values)
    if arr.ndim != ndim or arr.shape[-1] < 1:
        raise ValueError(f"{name} must be {ndim}-dimensional with >= 1 label, got {arr.shape}")
    if (
        arr.size
        and arr.dtype.kind not in "iub"
        and (arr.dtype.kind != "f" or not np.all(np.isin(arr, (-1, 0, 1))))
    ):
        raise ValueError(f"{name} must hold integer codes 1, 0, -1, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < -1 or arr.max() > 1):
        raise ValueError(f"{name} must hold 1 (chosen), 0 (not chosen) or -1 (missing)")
    missing = arr < 0
    present = ~missing.any(axis=-1)
    if np.any(missing.any(axis=-1) & ~missing.all(axis=-1)):
        raise ValueError(f"{name}: a label vector must be all -1 (missing) or all 0/1")
    return arr, present


def multilabel_reference(ratings: np.ndarray) -> np.ndarray:
    """Reference label set per item by a strict majority per label.

    Label l is in the reference of item i when more than half of the annotators who
    labelled i chose it (votes > m / 2). A tie (e.g. 1 of 2) is *not* chosen: a label
    needs positive majority support, so the reference never holds a label most humans
    left out (statistics.md section 1, a documented deterministic rule). With a single
    annotator the reference is that annotator's set. Returns int8 (n_items, n_labels);
    -1 rows for items nobody labelled.
    """
    r, present = _indicator(ratings, "ratings", 3)
    m = present.sum(axis=1)
    votes = (r == 1).sum(axis=1)
    reference = (2 * votes > m[:, None]).astype(np.int8)
    reference[m == 0] = -1
    return reference


def _parts(ref: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item quantities of the referenced items (float), failures as empty sets."""
    truth, has_ref = _indicator(ref, "ref", 2)
    guess, answered = _indicator(pred, "pred", 2)
    if truth.shape != guess.shape:
        raise ValueError(f"ref and pred differ in shape: {truth.shape} vs {guess.shape}")
    t, a = truth[has_ref] == 1, answered[has_ref]
    p = (guess[has_ref] == 1) & a[:, None]
    inter, union = (t & p).sum(axis=1), (t | p).sum(axis=1)
    jaccard = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return {
        "answered": a.astype(float),
        "exact": (a & (t == p).all(axis=1)).astype(float),
        "jaccard": np.where(a, jaccard, 0.0),
        "tp": (t & p).astype(float),
        "fp": (~t & p).astype(float),
        "fn": (t & ~p).astype(float),
    }


def _share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _scores(weights: np.ndarray, parts: dict[str, np.ndarray], metric: str) -> np.ndarray:
    """One MULTILABEL_METRICS metric for each row of item weights (B, n) -> (B,)."""
    if metric in ("exact_match", "jaccard"):
        item = parts["exact" if metric == "exact_match" else "jaccard"]
        return _share(weights @ item, weights.sum(axis=1))
    tp, fp, fn = (weights @ parts[key] for key in ("tp", "fp", "fn"))
    if metric == "micro_f1":
        return _share(2 * tp.sum(axis=1), (2 * tp + fp + fn).sum(axis=1))
    den = 2 * tp + fp + fn
    present = den > 0
    f1 = np.where(present, 2 * tp / np.where(present, den, 1.0), 0.0)
    return _share(f1.sum(axis=1), present.sum(axis=1).astype(float))


def multilabel_metrics(ref: np.ndarray, pred: np.ndarray) -> MultilabelMetrics:
    """Exact match, Jaccard, micro/macro F1 and per-label scores of ``pred`` vs ``ref``.

    ``ref`` from :func:`multilabel_reference` (all -1 row: item excluded), ``pred`` the
    LLM's indicator rows (all -1 row: failure). Definitions: MultilabelMetrics. Without
    failures micro/macro F1 equal ``sklearn.metrics.f1_score(ref, pred, average=...)``
    (macro with ``labels`` = the labels present in either).
    """
    parts = _parts(ref, pred)
    n = parts["answered"].size
    ones, answered = np.ones((1, n)), parts["answered"][None, :]
    values = {}
    for metric in MULTILABEL_METRICS:
        values[metric] = float(_scores(ones, parts, metric)[0])
        values[f"{metric}_answered"] = float(_scores(answered, parts, metric)[0])
    tp, fp, fn = (parts[key].sum(axis=0) for key in ("tp", "fp", "fn"))
    per_label = [
        ClassScores(
            precision=float(_share(tp[c], tp[c] + fp[c])),
            recall=float(_share(tp[c], tp[c] + fn[c])),
            f1=float(_share(2 * tp[c], 2 * tp[c] + fp[c] + fn[c])),
            support=int(tp[c] + fn[c]),
        )
        for c in range(tp.size)
    ]
    n_answered = int(parts["answered"].sum())
    return MultilabelMetrics(
        n=n,
        n_answered=n_answered,
        coverage=n_answered / n if n else float("nan"),
        per_label=per_label,
        **values,
    )


def multilabel_alpha_per_label(ratings: np.ndarray, pred: np.ndarray | None = None) -> list[float]:
    """Krippendorff's alpha (nominal, values {0, 1}) of each label, in (-1, 1] or nan.

    For label l the units are the items and the coders the annotators, each coding
    "chose l" (1) or not (0); an annotator who did not label an item is missing there.
    With ``pred`` (n_items, n_labels; -1 rows = failures, missing) the LLM is one more
    coder. Alpha of humans + LLM below alpha of the humans alone means the LLM disagrees
    with them more than they disagree with each other (statistics.md section 2). nan for
    a label without variation (D_e = 0) or without pairable items.
    """
    r, _ = _indicator(ratings, "ratings", 3)
    coders = np.moveaxis(r, 0, 1).astype(float)  # (annotators, items, labels)
    if pred is not None:
        p, _ = _indicator(pred, "pred", 2)
        if p.shape != (r.shape[0], r.shape[2]):
            raise ValueError(f"pred must be (n_items, n_labels) = {r.shape[::2]}, got {p.shape}")
        coders = np.concatenate([coders, p[None].astype(float)])
    coders[coders < 0] = np.nan
    return [krippendorff_alpha(coders[:, :, lab], "nominal", 2) for lab in range(r.shape[2])]


def multilabel_ci(
    ref: np.ndarray,
    pred: np.ndarray,
    metric: str = "micro_f1",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Interval:
    """Percentile bootstrap interval of one end-to-end MULTILABEL_METRICS metric.

    Items without a reference are dropped first (``Interval.n`` = MultilabelMetrics.n).
    Each chunk of replicates is a (B, n) index matrix turned into item counts (B, n), and
    the pooled TP/FP/FN of all replicates are one matrix product, so there is no loop over
    replicates (``intervals.bootstrap_items`` with ``batched=True``; whole clusters with
    ``clusters``, one entry per item of ``ref``). Replicates where macro/micro F1 is
    undefined are nan and dropped (``Interval.n_boot``).
    """
    if metric not in MULTILABEL_METRICS:
        raise ValueError(f"metric must be one of {MULTILABEL_METRICS}, got {metric!r}")
    parts = _parts(ref, pred)
    n = parts["answered"].size
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != (np.asarray(ref).shape[0],):
            raise ValueError(f"clusters must have one entry per item, got {clusters.shape}")
        clusters = clusters[_indicator(ref, "ref", 2)[1]]

    def values(index: np.ndarray) -> np.ndarray:
        rows = np.arange(index.shape[0])[:, None] * n
        counts = np.bincount((index + rows).ravel(), minlength=index.shape[0] * n)
        return _scores(counts.reshape(-1, n).astype(float), parts, metric)

    return bootstrap_items(values, n, n_boot, seed, level, clusters, batched=True)


def item_scores(ref: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item quantities of the referenced items (`exact`, `jaccard`, `answered`, ...) and
    `kept`, which items of `ref` have a reference: what joint resamples of several setups
    need (harness/score/selection_sets.py)."""
    return {**_parts(ref, pred), "kept": _indicator(ref, "ref", 2)[1]}
