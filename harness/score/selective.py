"""How much can a setup label alone? The risk-coverage curve of its confidence, and a
threshold chosen by Learn-then-Test for a target error with confidence 1 - delta, fitted on
one half of the gold items and checked on the other (statistics.md section 6). With clustered
items the p-values use the clusters' design effect and the halves split whole clusters
(statistics.md section 3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.metrics.selective import cross_fit_ltt, learn_then_test, risk_coverage
from harness.score.json_numbers import num


def selective_block(
    ref: np.ndarray,
    pred: np.ndarray,
    confidence: np.ndarray,
    target_error: float,
    delta: float,
    seed: int,
    clusters: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """None when fewer than 10 items have both an answer and a confidence. ``clusters``:
    one id per gold item (None: independent items)."""
    has = ~np.isnan(confidence) & (pred >= 0) & (ref >= 0)
    n = int(has.sum())
    if n < 10:
        return None
    conf, correct = confidence[has], (pred[has] == ref[has])
    groups = None if clusters is None else np.asarray(clusters)[has]
    curve = risk_coverage(conf, correct)
    whole = learn_then_test(conf, correct, target_error, delta, clusters=groups)
    if groups is not None and np.unique(groups).size < 2:
        # One cluster cannot be split into two halves of whole clusters.
        check = {"threshold": None, "fit_n": n, "check_n": 0, "check_accepted": 0}
        check |= {"check_errors": 0, "check_error_rate": None, "check_coverage": None}
    else:
        check = cross_fit_ltt(conf, correct, target_error, delta, seed=seed, clusters=groups)
    points = np.linspace(0, curve.n - 1, num=min(curve.n, 20)).round().astype(int)
    return {
        "n": n,
        "target_error": target_error,
        "delta": delta,
        "aurc": num(curve.aurc),
        "curve": [
            {
                "coverage": num(curve.coverage[i]),
                "risk": num(curve.risk[i]),
                "threshold": num(curve.thresholds[i]),
            }
            for i in points
        ],
        # Fitted on all items: the threshold to deploy, with its share of auto-accepted items.
        "threshold": num(whole.threshold) if whole.threshold is not None else None,
        "auto_accept_share": num(whole.coverage),
        "auto_accepted": int(whole.n_accepted),
        "errors_among_accepted": int(whole.errors),
        # Fitted on one half, checked on the other: what the guarantee looks like out of sample.
        "cross_fit": {k: (num(v) if isinstance(v, float) else v) for k, v in check.items()},
    } | _clustered(whole)


def _clustered(whole) -> dict[str, Any]:
    """With clusters: their number among the items and the design effect at the threshold."""
    if whole.n_clusters is None:
        return {}
    deff = num(whole.design_effect) if whole.design_effect is not None else None
    return {"clusters": {"n_clusters": whole.n_clusters, "design_effect": deff}}
