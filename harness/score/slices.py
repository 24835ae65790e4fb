"""Where does a setup fail? Its metrics per value of each `meta` field (domain, language,
source...), and whether its disagreements lean one way (over-predicting one label)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness import metrics as m
from harness.score.clusters import boot_at
from harness.score.json_numbers import KAPPA_UNDEFINED, interval, num

MIN_SLICE = 5  # fewer items than this say nothing; they are counted, not scored


def slice_index(items: Sequence[Any]) -> dict[str, dict[str, np.ndarray]]:
    """meta field -> value -> item positions."""
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, item in enumerate(items):
        for key, value in item.meta.items():
            out[key][value].append(i)
    return {k: {v: np.array(idx) for v, idx in values.items()} for k, values in out.items()}


def slices_block(
    slices: dict[str, dict[str, np.ndarray]],
    ref: np.ndarray,
    pred: np.ndarray,
    n_classes: int,
    boot: dict[str, Any],
    clusters: np.ndarray | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Per meta value; ``clusters`` (one per gold item) are resampled whole in each slice."""
    out: dict[str, list[dict[str, Any]]] = {}
    for field, values in slices.items():
        rows = []
        for value, idx in sorted(values.items()):
            row: dict[str, Any] = {"value": value, "n": len(idx)}
            if len(idx) >= MIN_SLICE:
                within = boot_at(boot, clusters, idx)
                row["accuracy"] = interval(m.accuracy_ci(ref[idx], pred[idx], **within))
                row["kappa"] = interval(
                    m.kappa_ci(ref[idx], pred[idx], n_classes, **within), KAPPA_UNDEFINED
                )
            rows.append(row)
        out[field] = rows
    return out


def label_bias(ref: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per label: how often the setup says it against how often the humans' reference does,
    on answered items. A positive `excess` means the setup over-predicts that label."""
    answered = (pred >= 0) & (ref >= 0)
    k = len(labels)
    said = np.bincount(pred[answered], minlength=k)
    truth = np.bincount(ref[answered], minlength=k)
    n = int(answered.sum())
    return [
        {
            "label": label,
            "predicted": int(said[c]),
            "reference": int(truth[c]),
            "excess": int(said[c] - truth[c]),
            "excess_share": num((said[c] - truth[c]) / n) if n else None,
            "n": n,
        }
        for c, label in enumerate(labels)
    ]
