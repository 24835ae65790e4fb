"""Cluster ids as codes, the one form every clustered statistic of metrics/ takes
(docs/statistics.md section 3)."""

from __future__ import annotations

import numpy as np


def cluster_codes(clusters, n: int, unit: str = "item") -> np.ndarray | None:
    """Cluster ids (one per ``unit``) as codes 0..G-1; None when absent, when there are no
    items, or when every item is its own cluster: the unclustered statistic, exactly."""
    if clusters is None:
        return None
    ids = np.asarray(clusters)
    if ids.shape != (n,):
        raise ValueError(
            f"need one cluster per {unit}: clusters must have one entry per {unit} ({n}), "
            f"got shape {ids.shape}"
        )
    codes = np.unique(ids, return_inverse=True)[1].ravel()
    return None if codes.size == 0 or codes.max() == n - 1 else codes
