"""What the leaderboards (report.md, report.html, the console) say beside two figures that
readers misread otherwise:

- a kappa / human-ceiling ratio above 1 looks like a bug, or like a superhuman model; it is
  neither, and the leaderboard says what it means;
- with `report.recalibration` set, the raw ECE is not the figure the `max_ece` constraint
  checks (that one is after recalibration, out of fold), so both are shown, each named;
- on a small gold set an interval may cover less than its level: the figure is marked and
  the note under the table says from which n it keeps it (the setup block's `small_n`,
  statistics.md section 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

ABOVE_CEILING = "above the human ceiling"
MARK = "†"
NOT_FITTED = "not fitted (raw used)"  # too few items with a confidence for this setup
ABOVE_CEILING_NOTE = (
    f"{MARK} Above the human ceiling: the LLM agrees with the reference more than a typical "
    "annotator does. This can happen without the LLM being better than people: the "
    "reference is the humans' majority, so a model that predicts the consensus answer is "
    "rewarded for it, while each annotator's own judgement calls count against them."
)
# With `report.reference: dawid_skene` the reference is not a vote, but the same holds: it
# is pooled from the annotators, so the consensus answer is still what it rewards.
_DAWID_SKENE = (
    "the humans' majority",
    "pooled from the humans' labels (Dawid-Skene: each annotator weighted by their "
    "estimated accuracy)",
)


def above_ceiling_note(gs: dict[str, Any]) -> str:
    """The note under a leaderboard with a figure above the ceiling, naming the reference
    the gold set used (`humans.reference.used`)."""
    used = ((gs.get("humans") or {}).get("reference") or {}).get("used")
    note = ABOVE_CEILING_NOTE
    return note.replace(*_DAWID_SKENE) if used == "dawid_skene" else note


def above_ceiling(ratio: Any) -> bool:
    return isinstance(ratio, int | float) and math.isfinite(ratio) and ratio > 1


def ceiling_text(ratio: Any, shown: str, words: str = f"({ABOVE_CEILING}{MARK})") -> str:
    """`shown` (the formatted ratio), with `words` when it is above 1 (the console, short of
    room, says `above ceiling†`; the note under the table says the rest)."""
    return f"{shown} {words}" if above_ceiling(ratio) else shown


def any_above_ceiling(setups: Iterable[dict[str, Any]]) -> bool:
    return any(above_ceiling((b.get("human_ceiling") or {}).get("ratio_kappa")) for b in setups)


def recalibration_method(setups: Iterable[dict[str, Any]]) -> str | None:
    """The configured `report.recalibration` as the setups' blocks record it; None when it
    is `none` or no setup had enough items to fit one (then the raw ECE is the one used)."""
    for b in setups:
        selected = (b.get("recalibration") or {}).get("selected")
        if selected and selected != "none":
            return str(selected)
    return None


def recalibrated_ece(b: dict[str, Any], method: str) -> dict[str, Any] | None:
    """The setup's out-of-fold ECE after `method` (estimate, low, high); None when it was
    not fitted for this setup (too few items with a confidence: the raw ECE is used)."""
    for m in (b.get("recalibration") or {}).get("methods") or []:
        if m.get("method") == method:
            ece = (m.get("after") or {}).get("ece")
            return ece if ece and ece.get("estimate") is not None else None
    return None


def ece_note(method: str) -> str:
    return (
        f"ECE (raw) is the model's own confidence; ECE (after {method}) is after "
        f"`report.recalibration: {method}`, fitted out of fold, and is the figure the "
        "`max_ece` constraint checks and the confidence auto-accept uses."
    )


SMALL_N_MARK = "‡"


def small_n_mark(b: dict[str, Any], figure: str) -> str:
    """` ‡` after a figure whose interval may cover less than its level, else ""."""
    return f" {SMALL_N_MARK}" if any(n["figure"] == figure for n in b.get("small_n") or []) else ""


def small_n_notes(setups: Iterable[dict[str, Any]]) -> list[str]:
    """One line per setup with small-n notes: each marked figure, its n and why."""
    lines = []
    for b in setups:
        said = "; ".join(f"{n['figure']}: {n['message']}" for n in b.get("small_n") or [])
        if said:
            lines.append(f"{SMALL_N_MARK} `{b['setup']}`: {said}.")
    return lines
