"""The recommended setup's figures after selection (statistics.md section 2).

A gold set's `selection_adjusted` block holds every setup's accuracy and kappa with
simultaneous intervals (`harness.metrics.selection`): with probability `level` every
setup's true value lies in its interval at once, so the chosen setup's does whichever rule
chose it. The decision checks its bound-based constraints against these intervals, and the
recommendation carries the chosen setup's under its own `selection_adjusted` key, beside
its own (unadjusted) intervals for contrast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.metrics.selection import SIMULTANEOUS_METRICS, simultaneous_intervals
from harness.score.json_numbers import KAPPA_UNDEFINED, NO_ITEMS, interval, num

METHOD = (
    "simultaneous bootstrap: one joint resample of the items for every setup, studentised "
    "max-|t| over the setups on the arcsine-square-root scale"
)
ONE_SETUP = "none: one setup, nothing was selected (its own interval)"
NOT_COMPUTED = (
    "not computed for this task type: the recommendation's figures and its constraints use "
    "each setup's own interval"
)
WHY = {"accuracy": NO_ITEMS, "kappa": KAPPA_UNDEFINED}


def selection_block(
    reference: np.ndarray,
    predictions: dict[str, np.ndarray],
    blocks: list[dict[str, Any]],
    n_classes: int,
    boot: dict[str, Any],
    clusters: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every setup's accuracy and kappa with intervals simultaneous over the gold set's
    setups. One setup has nothing to be selected from: its own intervals are kept.
    ``clusters`` (or ``boot["clusters"]``) resamples whole clusters, as every interval."""
    if clusters is None:
        clusters = boot.get("clusters")
    level = boot["level"]
    ids = list(predictions)
    out: dict[str, Any] = {
        "method": METHOD if len(ids) > 1 else ONE_SETUP,
        "level": level,
        "n_setups": len(ids),
        "n": int((np.asarray(reference) >= 0).sum()),
        "n_clusters": _n_clusters(reference, clusters),
        "n_boot": boot["n_boot"],
        "critical_value": dict.fromkeys(SIMULTANEOUS_METRICS),
        "setups": {},
    }
    if len(ids) <= 1:
        out["setups"] = {b["setup"]: {x: b[x] for x in SIMULTANEOUS_METRICS} for b in blocks}
        return out
    bands = simultaneous_intervals(
        reference,
        np.column_stack([predictions[s] for s in ids]),
        n_classes,
        n_boot=boot["n_boot"],
        seed=boot["seed"],
        level=level,
        clusters=clusters,
    )
    for name, band in bands.items():
        out["critical_value"][name] = num(band.critical)
    out["setups"] = {
        s: {name: interval(band.interval(j), WHY[name]) for name, band in bands.items()}
        for j, s in enumerate(ids)
    }
    return out


def _n_clusters(reference: np.ndarray, clusters: np.ndarray | None) -> int | None:
    if clusters is None:
        return None
    keep = np.asarray(reference) >= 0
    return int(np.unique(np.asarray(clusters)[keep]).size)


def adjusted(gs: dict[str, Any], setup: str) -> tuple[dict[str, Any] | None, str]:
    """A setup's selection-adjusted {accuracy, kappa} and how to name its bound; None when
    the gold set has none (a task type without it, or metrics.json from before it)."""
    block = gs.get("selection_adjusted")
    if not block or setup not in (block.get("setups") or {}):
        return None, "own interval, not selection-adjusted"
    if block["n_setups"] <= 1:
        return block["setups"][setup], "one setup, nothing to adjust for"
    return block["setups"][setup], f"selection-adjusted over {block['n_setups']} setups"


def recommendation_block(gs: dict[str, Any], chosen: str | None) -> dict[str, Any]:
    """The chosen setup's accuracy and kappa, selection-adjusted and unadjusted."""
    block = gs.get("selection_adjusted")
    head = {
        key: (block or {}).get(key)
        for key in ("method", "level", "n_setups", "n", "n_clusters", "n_boot")
    }
    if block and block.get("statistics"):  # multi-label, ranking: what the two figures hold
        head["statistics"] = block["statistics"]
    if not block:
        head["n_setups"] = len(gs.get("setups") or [])
    out: dict[str, Any] = {"setup": chosen, **head, "accuracy": None, "kappa": None}
    setup = next((b for b in gs.get("setups") or [] if b["setup"] == chosen), None)
    out["unadjusted"] = {x: (setup or {}).get(x) if block else None for x in SIMULTANEOUS_METRICS}
    if not block:
        out["note"] = NOT_COMPUTED
    elif chosen is None:
        out["note"] = "no setup is recommended"
    else:
        out.update(block["setups"][chosen])
    return out
