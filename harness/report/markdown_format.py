"""Number formatting and tables for report.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal


def fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_iv(
    iv: Mapping[str, Any] | None,
    digits: int = 3,
    *,
    bracket: Literal["known", "scored", "always"] = "known",
    signed: bool = False,
) -> str:
    """An estimate with its interval, `0.294 [0.182, 0.409]`; "–" for a missing number.

    The one interval formatter of report.md, report.html's charts and the commands' output.
    Where numbers are missing, `bracket` says how much is shown:
    - "known" (report.md, the charts, the canary, the audit): the bracket only when the low
      end is known; a missing estimate (or no interval at all) is a bare "–";
    - "scored" (the leaderboard): the bracket whenever the estimate is known, `0.500 [–, –]`;
    - "always" (the pool's label shares, the gate's change): the bracket even without an
      estimate, `– [–, –]`.
    `signed` shows a change, `+0.012 [-0.030, +0.051]`."""
    iv = iv or {}
    estimate, low, high = iv.get("estimate"), iv.get("low"), iv.get("high")
    if estimate is None and bracket != "always":
        return "–"
    if low is None and bracket == "known":
        return _num(estimate, digits, signed)
    return (
        f"{_num(estimate, digits, signed)} "
        f"[{_num(low, digits, signed)}, {_num(high, digits, signed)}]"
    )


def _num(x: float | None, digits: int, signed: bool) -> str:
    return "–" if x is None else f"{x:{'+' if signed else ''}.{digits}f}"


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
