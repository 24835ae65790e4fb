"""Dollar amounts as people read them, the same in report.md, report.html, the console, the
plan and the gate summary.

A per-item LLM price is often a few millionths of a dollar. Python's `g` format prints that as
`$7e-06`, which reads like a typo, and a fixed `.4f` as `$0.0000`, which reads like free; so
amounts under a dollar keep three significant digits written out as decimals (`$0.000007`,
`$0.0123`, `$0.50`), and larger ones are in cents (`$1,234.56`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

SIGNIFICANT = 3


def usd(x: Any, unknown: str = "unknown") -> str:
    """`$0.000007`, `$0.0123`, `$0.50`, `$28.00`; `unknown` for None or not a number."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
        return unknown
    if x == 0:
        return "$0.00"
    sign, a = ("-" if x < 0 else ""), abs(float(x))
    if a >= 1:
        return f"{sign}${a:,.2f}"
    decimals = max(2, SIGNIFICANT - 1 - math.floor(math.log10(a)))
    text = f"{a:.{decimals}f}"
    if text.startswith("1."):  # 0.9996 rounds up to a dollar
        return f"{sign}${a:,.2f}"
    whole, frac = text.split(".")
    frac = frac.rstrip("0").ljust(2, "0")  # 0.000007000 -> 0.000007, 0.5 -> 0.50
    return f"{sign}${whole}.{frac}"
