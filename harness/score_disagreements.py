"""The items where a setup and the human reference disagree, with their text, for people to
read in the HTML report: confident mistakes first, because those are the ones an
auto-accept threshold lets through and the ones that show a prompt's blind spots."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from harness.predictions import CodedGoldSet, ItemPredictions

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
    rows = []
    for i in np.flatnonzero((reference >= 0) & (predicted != reference)).tolist():
        conf = float(preds.confidence[i])
        shown = None if math.isnan(conf) else round(conf, 6)
        rows.append((i, items[i], int(reference[i]), int(predicted[i]), shown))

    def order(row: tuple[Any, ...]) -> tuple[int, float, int]:
        i, _, _, pred, conf = row
        tier = 2 if pred < 0 else (0 if conf is not None else 1)
        return tier, -(conf or 0.0), i

    rows.sort(key=order)
    return {
        "n": len(rows),
        "shown": min(len(rows), limit),
        "items": [
            {
                "item": item.id,
                "text": item_text(item.fields),
                "reference": labels[ref],
                "annotations": {a: _label(v) for a, v in item.annotations.items()},
                "predicted": labels[pred] if pred >= 0 else None,
                "confidence": conf,
            }
            for _, item, ref, pred, conf in rows[:limit]
        ],
    }


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
