"""Is the winner really better? Every pair of setups on the same gold items: the paired
bootstrap interval of the accuracy difference, McNemar's exact test (Holm-corrected over
the pairs of a gold set), and the smallest difference this gold set could detect."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from harness import metrics as m
from harness.metrics.compare import (
    can_tell_apart,
    holm,
    mcnemar_exact,
    minimum_detectable_difference,
)
from harness.score.json_numbers import interval, num


def compare_setups(
    ref: np.ndarray, preds: dict[str, np.ndarray], n_classes: int, boot: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per pair of setups (a, b), a before b in the given order."""
    rows = []
    keep = ref >= 0
    for a, b in combinations(preds, 2):
        pa, pb = preds[a][keep], preds[b][keep]
        r = ref[keep]
        test = mcnemar_exact(pa == r, pb == r)
        diff = m.paired_difference_ci(r, pa, pb, n_classes, metric="accuracy", **boot)
        rows.append(
            {
                "a": a,
                "b": b,
                "n": int(test.n),
                "accuracy_difference": interval(diff),  # accuracy(a) - accuracy(b)
                "mcnemar": {
                    "a_only_right": test.b,
                    "b_only_right": test.c,
                    "p_value": num(test.p_value),
                },
                "minimum_detectable_difference": num(
                    minimum_detectable_difference(test.b, test.c, test.n)
                ),
            }
        )
    for row, p in zip(rows, holm([r["mcnemar"]["p_value"] or 1.0 for r in rows]), strict=True):
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
