"""The items where a setup and the human reference disagree, with their text, for people to
read in the HTML report: confident mistakes first, because those are the ones an
auto-accept threshold lets through and the ones that show a prompt's blind spots."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from harness.score.predictions import CodedGoldSet, ItemPredictions

TEXT_LIMIT = 2000  # characters per item: 500 long documents would make a report of megabytes


def item_text(fields: Any, limit: int = TEXT_LIMIT) -> str:
    """An item's input fields as one text: a lone field as is, several as `name: value` lines.
    Non-string values (a ranking's candidates, numbers) are shown as compact JSON."""
    fields = dict(fields or {})

    def show(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    if len(fields) == 1:
        text = show(next(iter(fields.values())))
    else:
        text = "\n".join(f"{name}: {show(value)}" for name, value in fields.items())
    if len(text) > limit:
        text = text[:limit] + f" … ({len(text) - limit} more characters)"
    return text


def disagreements(coded: CodedGoldSet, preds: ItemPredictions, limit: int = 500) -> dict[str, Any]:
    """Every item whose predicted label differs from the reference (a failed item counts: it
    has no label), ordered answered-with-confidence by confidence descending, then answered
    without a confidence, then failed; the first `limit` of them with their text."""
    labels = coded.labels
    items = coded.gold.items
    reference, predicted = coded.reference, preds.pred
    where = np.flatnonzero((reference >= 0) & (predicted != reference))
    shown = [None if math.isnan(c) else round(c, 6) for c in preds.confidence[where].tolist()]
    pred = predicted[where]
    # Failed last, then answered without a confidence, then by shown confidence descending,
    # then by position: one sort of arrays (a Python key per row took most of the time).
    tier = np.where(pred < 0, 2, np.where([c is None for c in shown], 1, 0))
    confidence = np.array([c or 0.0 for c in shown], dtype=float)
    ranked = np.lexsort((where, -confidence, tier))
    rows = [
        (items[i], int(reference[i]), int(predicted[i]), shown[j])
        for j, i in zip(ranked[:limit].tolist(), where[ranked[:limit]].tolist(), strict=True)
    ]
    return {
        "n": int(where.size),
        "shown": min(int(where.size), limit),
        "items": [
            {
                "item": item.id,
                "text": item_text(item.fields),
                "reference": labels[ref],
                "annotations": {a: _label(v) for a, v in item.annotations.items()},
                "predicted": labels[pred] if pred >= 0 else None,
                "confidence": conf,
            }
            for item, ref, pred, conf in rows
        ],
    }


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
