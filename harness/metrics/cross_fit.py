"""Out-of-fold recalibration (statistics.md section 5): each gold item's recalibrated
confidence comes from a map fitted without it, so a threshold fitted on those values is
not fitted on the map's own training data.

With ``clusters`` (one id per item) the folds hold whole clusters: an item's value then
comes from a map fitted without any item of its cluster. Folds of single items would let
a cluster's near-copies train the map that scores it, so the out-of-fold confidences (and
the auto-accept threshold fitted on them) would look better calibrated than they are on new
clusters. Every item its own cluster is the unclustered split, draw for draw.
"""

from __future__ import annotations

import numpy as np

from .clusters import cluster_codes
from .recalibration import METHODS, Recalibrator, _fit, _inputs


def fold_ids(n: int, folds: int = 5, seed: int = 0, clusters=None) -> np.ndarray:
    """Fold 0..folds-1 of each item: a seeded permutation dealt out in turn, so fold sizes
    differ by at most one. It ignores the labels (no stratification) so that an item's
    out-of-fold value cannot depend on its own label, not even through the fold split.

    ``clusters``: the permutation is of the clusters, dealt out the same way (equal cluster
    counts per fold; item counts follow the clusters' sizes), and each item takes its
    cluster's fold. Needs ``folds`` <= the number of clusters (see :func:`cluster_folds`).
    """
    codes = cluster_codes(clusters, n)
    units = n if codes is None else int(codes.max()) + 1
    if not 2 <= folds <= units:
        what = "n" if codes is None else "clusters"
        raise ValueError(f"need 2 <= folds <= {what}, got folds={folds}, {what}={units}")
    ids = np.empty(units, dtype=np.int64)
    ids[np.random.default_rng(seed).permutation(units)] = np.arange(units) % folds
    return ids if codes is None else ids[codes]


def cluster_folds(n: int, folds: int, clusters=None) -> tuple[int, np.ndarray | None]:
    """The folds a cross-fit can use, and the clusters it splits by: fewer clusters than
    ``folds`` leave one cluster out at a time; a single cluster cannot be held out, so the
    split falls back to items (clusters None), which the caller should say."""
    codes = cluster_codes(clusters, n)
    if codes is None:
        return folds, None
    units = int(codes.max()) + 1
    return (min(folds, units), codes) if units >= 2 else (folds, None)


def cross_fit(
    method: str,
    conf: np.ndarray,
    correct: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    probs: np.ndarray | None = None,
    ref_idx: np.ndarray | None = None,
    return_recalibrators: bool = False,
    start: Recalibrator | None = None,
    clusters: np.ndarray | None = None,
):
    """Out-of-fold recalibrated confidences: item i's value comes from a recalibrator fitted
    on the folds without i (:func:`fold_ids`, by whole clusters with ``clusters``).
    Deterministic given ``seed``.

    Use these on the gold set itself (e.g. before fitting an auto-accept threshold on it),
    and ``fit_recalibrator`` on all items for new data. With ``return_recalibrators`` also
    returns the per-fold recalibrators (their notes flag degenerate training folds).
    ``start``: the fit on all items, if already made (see ``fit_recalibrator``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if start is not None and start.method != method:
        raise ValueError(f"start must be a {method} fit, got {start.method}")
    if method != "temperature":
        probs = ref_idx = None
    c, hit, p, ref = _inputs(conf, correct, probs, ref_idx)  # once: folds are subsets
    ids = fold_ids(c.size, folds, seed, clusters)
    # Isotonic sorts its items; sorted once here, each fold keeps its items in that order
    # (a subsequence of a sorted sequence is sorted, ties in the same order as lexsort's).
    order = np.lexsort((hit, c)) if method == "isotonic" else None
    out = np.empty(c.size)
    fitted = []
    for f in range(folds):
        test, train = ids == f, ids != f
        sub_order = None
        if order is not None:
            position = np.cumsum(train) - 1  # an item's index among the training items
            sub_order = position[order[train[order]]]
        rec = _fit(
            method,
            c[train],
            hit[train],
            None if p is None else p[train],
            None if ref is None else ref[train],
            start,
            sub_order,
        )
        out[test] = rec.apply(c[test], None if p is None else p[test])
        fitted.append(rec)
    return (out, fitted) if return_recalibrators else out
