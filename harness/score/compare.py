"""Is the winner really better? Every pair of setups on the same gold items: the paired
bootstrap interval of the accuracy difference, McNemar's exact test (Holm-corrected over
the pairs of a gold set), and the smallest difference this gold set could detect (on
clustered items, with the SE inflated by the design effect)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from harness import metrics as m
from harness.metrics.clustered_mcnemar import mcnemar_clustered
from harness.metrics.compare import (
    can_tell_apart,
    design_effect,
    holm,
    mcnemar_exact,
    minimum_detectable_difference,
)
from harness.metrics.power import bootstrap_se_differences
from harness.score.clusters import at, boot_at, test_used
from harness.score.json_numbers import interval, num


def compare_setups(
    ref: np.ndarray,
    preds: dict[str, np.ndarray],
    n_classes: int,
    boot: dict[str, Any],
    clusters: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One row per pair of setups (a, b), a before b in the given order. With ``clusters``
    (one per item) the interval resamples whole clusters and the exact test, which
    assumes independent items, gives way to the clustered McNemar test."""
    rows, p_raw = [], []
    keep = ref >= 0
    group = at(clusters, keep)
    for a, b in combinations(preds, 2):
        pa, pb = preds[a][keep], preds[b][keep]
        r = ref[keep]
        test = (
            mcnemar_exact(pa == r, pb == r)
            if group is None
            else mcnemar_clustered(pa == r, pb == r, group)
        )
        diff = m.paired_difference_ci(
            r, pa, pb, n_classes, metric="accuracy", **boot_at(boot, group)
        )
        p_raw.append(test.p_value)
        row = {
            "a": a,
            "b": b,
            "n": int(test.n),
            "accuracy_difference": interval(diff),  # accuracy(a) - accuracy(b)
            "mcnemar": {
                "a_only_right": test.b,
                "b_only_right": test.c,
                "p_value": num(test.p_value),
                **test_used(test),
            },
        }
        deff = None
        if group is not None:
            # The power section's design effect (same bootstrap, same seed): the SE of
            # independent items is optimistic on clustered ones.
            se = bootstrap_se_differences(
                ref, preds[a], preds[b], n_classes, boot["n_boot"], boot["seed"], clusters
            )[0]
            deff = design_effect(se, test.b, test.c, test.n)
            row["design_effect"] = num(deff)
        row["minimum_detectable_difference"] = num(
            minimum_detectable_difference(test.b, test.c, test.n, design_effect=deff)
        )
        rows.append(row)
    # Holm on the unrounded p-values: the JSON rounding to 6 places turns a p below 5e-7
    # into 0.0, which must stay the smallest p, never be read as missing.
    for row, p in zip(rows, holm(p_raw), strict=True):
        row["mcnemar"]["p_holm"] = num(p)
        iv = row["accuracy_difference"]
        apart = (
            iv["low"] is not None
            and iv["high"] is not None
            and can_tell_apart(iv["low"], iv["high"])
            and p < 0.05
        )
        row["verdict"] = (
            (f"{row['a']} better" if iv["estimate"] > 0 else f"{row['b']} better")
            if apart
            else "cannot be told apart on this gold set"
        )
    return rows
