"""Clustered gold items in scoring (statistics.md section 3).

A gold set loaded with `cluster_by` carries each item's cluster id; `CodedGoldSet.clusters`
holds them as integer codes (None: every item is its own cluster). Every interval of the
gold set gets the clusters of exactly the items it is computed on (`at`, `boot_at`), so a
bootstrap resamples whole clusters; this module also writes the metrics.json statement of
the clustering used, or the warning that the items look grouped and none is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.core.records import GoldSet
from harness.score.json_numbers import num

CLUSTERED_TEST = "clustered McNemar (Durkalski et al. 2003)"
# Below this many clusters the cluster bootstrap and the clustered test's chi-square are
# rough (statistics.md 3): metrics.json and the report say so.
FEW_CLUSTERS = 20
APPLIES_TO = (
    "every interval (setups, answered-only, baseline, slices, annotator groups, ECE, "
    "stability, task sections), every comparison between setups and the gate resample "
    "whole clusters; comparisons use the " + CLUSTERED_TEST + " instead of the exact test "
    "and scale their detectable difference by the design effect; the auto-accept threshold "
    "(Learn then Test) counts effective items, and its cross-fit and the out-of-fold "
    "recalibration hold out whole clusters; the alternative annotator test uses a "
    "cluster-robust t-test, and the pool estimates of prelabel label (PPI, PPI++, "
    "gold-only) a cluster-robust variance of the gold items"
)


def cluster_codes(ids: Sequence[str] | None) -> np.ndarray | None:
    """Cluster ids (one per item) as codes 0..G-1; None stays None."""
    if ids is None:
        return None
    return np.unique(np.asarray(ids, dtype=object).astype(str), return_inverse=True)[1].ravel()


def at(clusters: np.ndarray | None, where: Any) -> np.ndarray | None:
    """The clusters of the items ``where`` (a mask or positions) selects."""
    return None if clusters is None else np.asarray(clusters)[where]


def boot_at(boot: dict[str, Any], clusters: np.ndarray | None, where: Any = None) -> dict[str, Any]:
    """``boot`` with the clusters of the selected items (all with ``where=None``)."""
    return {**boot, "clusters": clusters if where is None else at(clusters, where)}


def subset(gold: GoldSet, positions: Sequence[int]) -> tuple[str, ...] | None:
    """The cluster ids of the gold items at ``positions`` (for a gold set made of some of
    its items: a structured task's part, an annotator group)."""
    if gold.clusters is None:
        return None
    return tuple(gold.clusters[i] for i in positions)


def clustering_block(gold: GoldSet) -> dict[str, Any]:
    """How this gold set's items are resampled, and the warning when they look grouped."""
    n = len(gold.items)
    ids = gold.clusters if gold.clusters is not None else [item.id for item in gold.items]
    sizes = np.unique(np.asarray(ids, dtype=object).astype(str), return_counts=True)[1]
    clustered = gold.clusters is not None
    block: dict[str, Any] = {
        "by": gold.cluster_by if clustered else None,
        "resampled": "clusters" if clustered else "items",
        "n_items": n,
        "n_clusters": int(sizes.size),
        "mean_size": num(n / sizes.size) if sizes.size else None,
        "max_size": int(sizes.max()) if sizes.size else 0,
        "applies_to": APPLIES_TO
        if clustered
        else "no cluster_by: every item is its own cluster, and intervals assume independent items",
        "warning": gold.grouping_warning,
    }
    if block["mean_size"] is None:
        block["note"] = "no items"
    elif clustered and sizes.size < FEW_CLUSTERS:
        block["note"] = (
            f"only {sizes.size} clusters: intervals resampling fewer than about "
            f"{FEW_CLUSTERS} clusters are wide and may still cover less than their level"
        )
    return block


def test_used(test: Any) -> dict[str, Any]:
    """Which McNemar test a comparison used: the exact one on independent items, the
    clustered one (with its number of clusters) on clustered items."""
    if getattr(test, "n_clusters", None) is None:
        return {"test": "exact"}
    return {"test": CLUSTERED_TEST, "n_clusters": int(test.n_clusters)}
