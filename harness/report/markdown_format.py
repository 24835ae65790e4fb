"""Number formatting and tables for report.md."""

from __future__ import annotations

from typing import Any


def fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_iv(iv: dict[str, Any] | None, digits: int = 3) -> str:
    if not iv or iv.get("estimate") is None:
        return "–"
    low, high = iv.get("low"), iv.get("high")
    span = f" [{fmt(low, digits)}, {fmt(high, digits)}]" if low is not None else ""
    return f"{fmt(iv['estimate'], digits)}{span}"


def kappa_band(k: float | None) -> str:
    """Landis & Koch (1977): a convention to read kappa by, not a truth."""
    if k is None:
        return ""
    for bound, name in (
        (0.0, "poor"),
        (0.2, "slight"),
        (0.4, "fair"),
        (0.6, "moderate"),
        (0.8, "substantial"),
    ):
        if k <= bound:
            return name
    return "almost perfect"


def alpha_band(a: float | None) -> str:
    """Krippendorff's cut-offs: >= 0.800 reliable, >= 0.667 tentative conclusions."""
    if a is None:
        return ""
    return "reliable" if a >= 0.8 else "tentative" if a >= 0.667 else "unreliable"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def by_kappa(setups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Setups best first by kappa; a missing kappa last (a kappa of 0 is not missing)."""
    return sorted(
        setups,
        key=lambda b: -(b["kappa"]["estimate"] if b["kappa"]["estimate"] is not None else -9),
    )
