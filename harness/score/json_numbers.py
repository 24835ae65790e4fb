"""How numbers enter metrics.json: NaN becomes null, floats are rounded to 6 places, and an
estimate travels with its interval, its n and its level.

A statistic that cannot be computed is null, never NaN or infinity, and says why: a
statistic block (an interval ``{estimate, low, high, n, level}`` or a ``{value, ...}``
block) whose estimate or value is null carries ``note``, one sentence naming the reason
(no items, one label only, no item with two ratings...). The reasons below are shared by
the scoring modules; `finite_tree` is the writer's last guard against a non-finite number
that a statistic let through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.metrics import Interval

# Why a statistic is null: the `note` beside it.
NO_ITEMS = "not computed: no items"
UNDEFINED = "undefined on these items"
NO_ANSWERS = "not computed: no item was answered (every label failed or is missing)"
KAPPA_UNDEFINED = (
    "undefined: the two sides use one and the same label on every item, so chance "
    "agreement is 1 and kappa is 0/0"
)
ALPHA_UNDEFINED = (
    "undefined: no item has two ratings, or every rating is the same label (no variation "
    "to agree on)"
)
GWET_UNDEFINED = "undefined: no item has two ratings"
NO_ANNOTATOR_KAPPA = (
    "no annotator with >= 2 items has a defined kappa against the LLM (see the annotators' "
    "labels: one label only, or too few items)"
)
NO_PART_VALUE = "no part has a value (see the parts' notes)"
NOT_FINITE = "was not a finite number"


def num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def with_note(block: dict[str, Any], why: str, key: str | None = None) -> dict[str, Any]:
    """`block` with `note` = `why` when its statistic (`key`; default its estimate or
    value) is null and it has no note yet."""
    key = key or ("estimate" if "estimate" in block else "value")
    if block.get(key) is None and not block.get("note"):
        block["note"] = why
    return block


def note_nulls(block: dict[str, Any], keys: Sequence[str], why: str) -> dict[str, Any]:
    """Several statistics side by side (alphas of humans and humans + LLM...): the block's
    `note` names the null ones and why."""
    nulls = [key for key in keys if block.get(key) is None]
    if nulls and not block.get("note"):
        block["note"] = f"{', '.join(nulls)}: {why}"
    return block


def interval(iv: Interval, why: str | None = None, empty: str | None = None) -> dict[str, Any]:
    """An estimate with its interval; a null estimate gets its note: `empty` (default: no
    items) when n is 0, else `why` (the statistic's own undefined case)."""
    out = {
        "estimate": num(iv.estimate),
        "low": num(iv.low),
        "high": num(iv.high),
        "n": int(iv.n),
        "level": iv.level,
    }
    if out["estimate"] is None:
        out["note"] = (empty or NO_ITEMS) if iv.n == 0 else (why or UNDEFINED)
    return out


def finite_tree(data: Any) -> list[str]:
    """Replace every non-finite float (and numpy scalar) in `data` in place, before it is
    written: +-inf and NaN become null, and the dict that held one gets a `note` naming
    the key, so the file stays strict JSON and the gap is explained. Returns the paths
    replaced (empty when every number was finite, as the tests require)."""
    replaced: list[str] = []

    def fix(value: Any, path: str, where: dict[str, Any] | None, key: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            replaced.append(path)
            if where is not None:
                reason = f"{key} {NOT_FINITE} ({value}); left out"
                note = where.get("note")
                where["note"] = f"{note}; {reason}" if note else reason
            return None
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, dict):
            for k in list(value):
                value[k] = fix(value[k], f"{path}.{k}", value, k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                value[i] = fix(v, f"{path}[{i}]", None, i)
        return value

    fix(data, "$", None, None)
    return replaced
