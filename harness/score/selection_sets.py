"""The recommended setup's figures after selection for multi-label and ranking tasks
(statistics.md section 2), as `harness.score.selection` gives for classification.

The leaderboard's accuracy column is, for a multi-label task, the exact-match share, and
for a ranking the top-1 agreement with the consensus; the kappa column of a ranking holds
Kendall's tau. Each is a ratio of per-item sums, so one joint resample of the items (or
clusters) for every setup gives their simultaneous bands (`metrics.selection.ratio_band`).
A multi-label task's kappa is a mean over its labels' parts, which has no interval of its
own: it stays unadjusted, said in `statistics` and in the kappa entry's note. A rubric's
figures are means over its axes (each axis a classification task with its own block in
`parts`), so a rubric has no adjustment at the top level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.metrics.multilabel import item_scores as multilabel_items
from harness.metrics.ranking import item_scores as ranking_items
from harness.metrics.selection import ratio_band
from harness.score.json_numbers import interval, num
from harness.score.selection import ONE_SETUP

METHOD = (
    "simultaneous bootstrap: one joint resample of the items for every setup, studentised "
    "max-|t| over the setups (shares on the arcsine-square-root scale)"
)
PART_MEAN = "not adjusted: a mean over the labels' parts has no interval (see each part's own)"


def multilabel_block(
    ref: np.ndarray, preds: dict[str, np.ndarray], blocks: list[dict], boot: dict[str, Any]
) -> dict[str, Any]:
    """Exact match of every setup, simultaneous over the gold set's setups."""
    parts = {s: multilabel_items(ref, p) for s, p in preds.items()}
    first = next(iter(parts.values()), None)
    kept = _kept(ref, boot.get("clusters"), lambda r: first["kept"] if first else None)
    num_ = {s: p["exact"] for s, p in parts.items()}
    den = {s: np.ones_like(p["exact"]) for s, p in parts.items()}
    names = {"accuracy": "exact match", "kappa": None}
    bands = {"accuracy": (num_, den, True, (0.0, 1.0))}
    return _block(preds, blocks, boot, kept, names, bands, {"kappa": PART_MEAN})


def ranking_block(
    ref: np.ndarray, preds: dict[str, np.ndarray], blocks: list[dict], boot: dict[str, Any]
) -> dict[str, Any]:
    """Top-1 agreement and Kendall's tau of every setup, simultaneous over the setups."""
    items = {s: ranking_items(ref, p) for s, p in preds.items()}
    first = next(iter(items.values()), None)
    kept = _kept(ref, boot.get("clusters"), lambda r: first["kept"] if first else None)
    names = {"accuracy": "top-1 agreement", "kappa": "Kendall's tau"}
    bands = {
        "accuracy": (
            {s: x["top1"] for s, x in items.items()},
            {s: np.ones_like(x["top1"]) for s, x in items.items()},
            True,
            (0.0, 1.0),
        ),
        "kappa": (
            {s: x["tau"] for s, x in items.items()},
            {s: x["answered"].astype(float) for s, x in items.items()},
            False,
            (-1.0, 1.0),
        ),
    }
    return _block(preds, blocks, boot, kept, names, bands, {})


def _kept(ref: np.ndarray, clusters: Any, referenced: Any) -> tuple[int, np.ndarray | None]:
    """(items with a reference, their cluster ids or None)."""
    mask = referenced(ref)
    if mask is None:
        return 0, None
    mask = np.asarray(mask, dtype=bool)
    ids = None if clusters is None else np.asarray(clusters)[mask]
    return int(mask.sum()), ids


def _block(
    preds: dict[str, np.ndarray],
    blocks: list[dict],
    boot: dict[str, Any],
    kept: tuple[int, np.ndarray | None],
    names: dict[str, str | None],
    bands: dict[str, tuple],
    notes: dict[str, str],
) -> dict[str, Any]:
    ids = list(preds)
    n, clusters = kept
    out: dict[str, Any] = {
        "method": METHOD if len(ids) > 1 else ONE_SETUP,
        "statistics": names,
        "level": boot["level"],
        "n_setups": len(ids),
        "n": n,
        "n_clusters": None if clusters is None else int(np.unique(clusters).size),
        "n_boot": boot["n_boot"],
        "critical_value": dict.fromkeys(names),
        "setups": {},
    }
    if len(ids) <= 1:
        out["setups"] = {b["setup"]: {x: b.get(x) for x in names} for b in blocks}
        return out
    setups: dict[str, dict[str, Any]] = {s: {} for s in ids}
    for name, (num_, den, share, bounds) in bands.items():
        band = ratio_band(
            np.column_stack([num_[s] for s in ids]),
            np.column_stack([den[s] for s in ids]),
            n_boot=boot["n_boot"],
            seed=boot["seed"],
            level=boot["level"],
            clusters=clusters,
            share=share,
            bounds=bounds,
        )
        out["critical_value"][name] = num(band.critical)
        for j, s in enumerate(ids):
            setups[s][name] = interval(band.interval(j))
    for name, note in notes.items():
        for s in ids:
            setups[s][name] = {
                **dict.fromkeys(("estimate", "low", "high")),
                "n": n,
                "level": boot["level"],
                "note": note,
            }
    out["setups"] = setups
    return out
