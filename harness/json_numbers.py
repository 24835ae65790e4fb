"""How numbers enter metrics.json: NaN becomes null, floats are rounded to 6 places, and an
estimate travels with its interval, its n and its level."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.metrics import Interval


def num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def interval(iv: Interval) -> dict[str, Any]:
    return {
        "estimate": num(iv.estimate),
        "low": num(iv.low),
        "high": num(iv.high),
        "n": int(iv.n),
        "level": iv.level,
    }
