"""Out-of-fold recalibration by whole clusters (harness.metrics.cross_fit, issue 17 item 3):
an item's recalibrated confidence comes from a map fitted without any item of its cluster."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.calibration import log_loss_top_label
from harness.metrics.cross_fit import cluster_folds, cross_fit, fold_ids
from harness.metrics.recalibration import METHODS, fit_recalibrator


def clustered(n_clusters: int, size: int, seed: int):
    """Clusters of near-copies: one confidence and one right/wrong per cluster, and the
    confidence says nothing about it (the truth: AUROC 0.5 on new clusters)."""
    rng = np.random.default_rng(seed)
    conf = np.repeat(rng.uniform(0.5, 1.0, n_clusters), size)
    conf += rng.normal(0, 1e-4, conf.size)  # copies, not exact ties
    right = np.repeat(rng.random(n_clusters) < 0.7, size).astype(float)
    return np.clip(conf, 0.5, 1.0), right, np.repeat(np.arange(n_clusters), size)


def test_folds_hold_whole_clusters_and_singletons_are_the_item_split():
    codes = np.repeat(np.array([7, 3, 9, 1, 5, 2, 8]), [4, 1, 6, 2, 3, 5, 2])
    ids = fold_ids(codes.size, 3, seed=4, clusters=codes)
    for c in np.unique(codes):
        assert np.unique(ids[codes == c]).size == 1
    per_fold = [np.unique(codes[ids == f]).size for f in range(3)]
    assert sorted(per_fold) == [2, 2, 3]  # clusters dealt out in turn
    # Every item its own cluster: the unclustered split, draw for draw.
    assert np.array_equal(fold_ids(50, 5, 9, clusters=np.arange(50)[::-1]), fold_ids(50, 5, 9))
    with pytest.raises(ValueError, match="folds <= clusters"):
        fold_ids(codes.size, 8, clusters=codes)


def test_cluster_folds_shrinks_to_the_clusters_and_falls_back_on_one():
    assert cluster_folds(30, 5, None) == (5, None)
    folds, codes = cluster_folds(30, 5, np.repeat([0, 1, 2], 10))
    assert folds == 3 and codes is not None  # leave one cluster out
    assert cluster_folds(30, 5, np.zeros(30))[1] is None  # nothing to hold out


@pytest.mark.parametrize("method", METHODS)
def test_an_items_value_ignores_every_label_of_its_cluster(method):
    conf, right, groups = clustered(40, 5, seed=1)
    out = cross_fit(method, conf, right, seed=3, clusters=groups)
    for k in (0, 13, 39):
        flipped = right.copy()
        flipped[groups == k] = 1 - flipped[groups == k]
        again = cross_fit(method, conf, flipped, seed=3, clusters=groups)
        assert np.array_equal(out[groups == k], again[groups == k])
    # Item folds do not have that property: a copy in the training folds carries the label.
    by_item = cross_fit(method, conf, right, seed=3)
    changed = 0
    for k in range(40):
        flipped = right.copy()
        flipped[groups == k] = 1 - flipped[groups == k]
        again = cross_fit(method, conf, flipped, seed=3)
        changed += not np.array_equal(by_item[groups == k], again[groups == k])
    assert changed > 0


def test_cluster_folds_estimate_the_loss_on_new_clusters_and_item_folds_understate_it():
    """Pure noise in clusters of 10 near-copies. The honest figure is the log loss of the
    map fitted on the gold set, on new clusters (drawn fresh here). Folds of items let a
    cluster's copies train the map that scores it, so isotonic's out-of-fold log loss
    comes out far below that (0.58 against 0.84 over 30 gold sets); folds of whole
    clusters estimate it (0.90: trained on 4/5 of the clusters, slightly pessimistic)."""

    def losses(method: str) -> tuple[float, float, float]:
        by_item, by_cluster, truth = [], [], []
        for seed in range(30):
            conf, right, groups = clustered(60, 10, seed)
            by_item.append(log_loss_top_label(cross_fit(method, conf, right, seed=seed), right))
            oof = cross_fit(method, conf, right, seed=seed, clusters=groups)
            by_cluster.append(log_loss_top_label(oof, right))
            new_conf, new_right, _ = clustered(2_000, 1, 1_000 + seed)
            fitted = fit_recalibrator(method, conf, right)
            truth.append(log_loss_top_label(fitted.apply(new_conf), new_right))
        return np.mean(by_item), np.mean(by_cluster), np.mean(truth)

    figures = {method: losses(method) for method in ("isotonic", "platt")}
    for method, (item, cluster, truth) in figures.items():  # docs/statistics.md 3 (-s)
        print(f"{method}: new clusters {truth:.2f}, item folds {item:.2f}, cluster {cluster:.2f}")
    item, cluster, truth = figures["isotonic"]
    assert item < truth - 0.15
    assert abs(cluster - truth) < 0.15


def test_cross_fit_by_cluster_equals_refitting_without_each_fold():
    conf, right, groups = clustered(30, 4, seed=6)
    ids = fold_ids(conf.size, 5, 2, clusters=groups)
    out = cross_fit("platt", conf, right, folds=5, seed=2, clusters=groups)
    for f in range(5):
        rec = fit_recalibrator("platt", conf[ids != f], right[ids != f])
        assert np.array_equal(out[ids == f], rec.apply(conf[ids == f]))
