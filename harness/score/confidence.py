"""Which confidence to trust? Every source a setup's labels support, scored head to head.

Log-probabilities renormalised over the labels, a verbalized number and self-consistency
over k samples are different estimates of the same thing, and which one is calibrated
depends on the model (Tian et al. 2023 found verbalized often better for RLHF-tuned chat
models; statistics.md section 5). Each source is scored on the items it covers, with the
same statistics as the `calibration` block, so the source chosen in the config (or by auto)
can be checked against the alternatives from the same run, at no extra cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness import metrics as m
from harness.metrics.selective import risk_coverage
from harness.score.ece import EceIntervals, ece_intervals
from harness.score.json_numbers import num
from harness.score.predictions import ItemPredictions

MIN_ITEMS = 2  # fewer items give no calibration statistics, only their count
BEST_MIN_SHARE = 0.5  # a source covering fewer items is not eligible as the best


def source_row(
    name: str,
    confidence: np.ndarray,
    ref: np.ndarray,
    pred: np.ndarray,
    boot: dict[str, Any],
    shared: EceIntervals | None = None,
) -> dict[str, Any]:
    """One source on the items with an answer, a reference label and this confidence."""
    has = ~np.isnan(confidence) & (pred >= 0) & (ref >= 0)
    n = int(has.sum())
    share = num(n / len(pred)) if len(pred) else None
    row: dict[str, Any] = {"source": name, "n": n, "share": share}
    if n < MIN_ITEMS:
        return row
    conf = confidence[has]
    correct = (pred[has] == ref[has]).astype(float)
    # The same binning and bootstrap as the calibration block, so the selected source's ECE
    # here equals the one there.
    with ece_intervals(shared, len(pred), boot) as eci:
        ece = eci.interval(conf, correct, "uniform", within=has)
    row.update(
        ece=ece,
        ece_equal_mass=num(m.ece(conf, correct, n_bins=10, strategy="quantile")),
        brier=num(m.brier_top_label(conf, correct)),
        log_loss=num(m.log_loss_top_label(conf, correct)),
        auroc=num(m.auroc(conf, correct)),  # None when every label is right (or every wrong)
        aurc=num(risk_coverage(conf, correct).aurc),
        accuracy=num(correct.mean()),
    )
    return row


def _best(rows: list[dict[str, Any]]) -> str | None:
    """Lowest ECE among sources covering at least half of the items; first listed on a tie."""
    eligible = [
        r
        for r in rows
        if (r["share"] or 0) >= BEST_MIN_SHARE and r.get("ece", {}).get("estimate") is not None
    ]
    return min(eligible, key=lambda r: r["ece"]["estimate"])["source"] if eligible else None


def _note(
    rows: list[dict[str, Any]], preds: ItemPredictions, requested: str, n_items: int
) -> str | None:
    notes = []
    if requested != "auto":
        row = next(r for r in rows if r["source"] == requested)
        if row["n"] < n_items:
            notes.append(
                f"{requested} confidence is missing on {n_items - row['n']} of {n_items} items; "
                "they have no confidence (no other source stands in)"
            )
    elif len(preds.sources) > 1:
        mix = ", ".join(f"{name} {count}" for name, count in preds.sources.most_common())
        notes.append(f"auto mixes sources across items ({mix}); calibration scores the mix")
    if len({r["n"] for r in rows}) > 1:
        notes.append("sources cover different items: compare them with their n in mind")
    return "; ".join(notes) if notes else None


def confidence_sources_block(
    ref: np.ndarray,
    pred: np.ndarray,
    preds: ItemPredictions,
    requested: str,
    boot: dict,
    shared: EceIntervals | None = None,
) -> dict[str, Any]:
    """Every available source of one setup, the one selected, and the best calibrated.

    `selected` is the requested source, or under auto the source most items got (null when
    no item has a confidence). A requested source no item has still gets a row (n = 0).
    """
    names = list(preds.by_source)
    if requested != "auto" and requested not in names:
        names.append(requested)
    missing = np.full(len(pred), np.nan)
    with ece_intervals(shared, len(pred), boot) as eci:
        rows = [
            source_row(name, preds.by_source.get(name, missing), ref, pred, boot, eci)
            for name in names
        ]
    if requested != "auto":
        selected: str | None = requested
    else:
        selected = preds.sources.most_common(1)[0][0] if preds.sources else None
    return {
        "requested": requested,
        "selected": selected,
        "sources": rows,
        "best": _best(rows),
        "note": _note(rows, preds, requested, len(pred)),
    }
