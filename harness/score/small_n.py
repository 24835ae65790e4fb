"""Where a setup's interval stops keeping its promise on a small gold set (statistics.md
section 4): the machine-readable notes under ``small_n`` in metrics.json, which the
report shows beside the figures.

The thresholds are the n at which the coverage simulations of section 4 reach about the
nominal level (0.93 or more at 95%); below them the notes say what the interval is and how
much it can miss:

- accuracy, kappa, macro-F1: below ``BCA_BELOW`` resampled units the interval is BCa
  (the percentile bootstrap covers 0.91-0.93 there); BCa keeps 95% from about 15 items,
  but no bootstrap interval does when fewer than ``MIN_MINORITY`` items are wrong (or
  right): it cannot vary errors it has not seen, and with none it is a single point;
- ECE: the plug-in ECE is biased upward and its interval never holds 0, so a calibrated
  model looks miscalibrated; below ``ECE_PLUGIN_BELOW`` items it misses a true ECE of
  0.05 in most samples. The debiased L2 error beside it keeps its promise from
  ``ECE_DEBIASED_BELOW`` items;
- PPI (the pool estimates of ``prelabel label``): its normal interval covers 0.85-0.88 at
  20 gold items and reaches about 0.93 from ``PPI_BELOW``.
"""

from __future__ import annotations

from typing import Any

from harness.metrics.intervals import BCA_BELOW

MIN_MINORITY = 5
ECE_PLUGIN_BELOW = 500
ECE_DEBIASED_BELOW = 50
PPI_BELOW = 50
TABLE_FIGURES = ("accuracy", "kappa", "macro_f1")


def small_n_notes(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The notes of one setup block (accuracy, kappa, macro_f1, calibration): one per
    figure whose interval may cover less than its level, each with the figure, its n,
    the n from which the interval keeps its promise, and a sentence for the reader."""
    notes = []
    acc = block.get("accuracy") or {}
    n = int(acc.get("n") or 0)
    wrong = right = None
    if acc.get("estimate") is not None:
        right = round(acc["estimate"] * n)
        wrong = n - right
    few = wrong is not None and min(wrong, right) < MIN_MINORITY
    for figure in TABLE_FIGURES:
        iv = block.get(figure) or {}
        if iv.get("estimate") is None or not (n < BCA_BELOW or few):
            continue
        if few:
            side = "wrong" if wrong < right else "right"
            count = min(wrong, right)
            message = (
                f"only {count} of {n} items {side}: a bootstrap interval cannot reach past "
                f"the errors it saw, so it covers less than {_pct(iv)} (with 0, the truth "
                f"may lie as far as 3/n = {3 / max(n, 1):.2f} away); label more items"
            )
        else:
            message = (
                f"small gold set (n = {n} < {BCA_BELOW}): BCa interval, since the percentile "
                "one covers 0.91-0.93 here; it keeps its level from about 15 items"
            )
        notes.append(_note(figure, n, BCA_BELOW, "bca" if n < BCA_BELOW else "percentile", message))
    cal = block.get("calibration") or {}
    m = int(cal.get("n") or 0)
    if cal.get("ece") and m:
        if m < ECE_PLUGIN_BELOW:
            notes.append(
                _note(
                    "ece",
                    m,
                    ECE_PLUGIN_BELOW,
                    "percentile",
                    f"plug-in ECE on {m} items: biased upward and its interval never holds 0, "
                    "so even a calibrated model looks miscalibrated; read the debiased L2 "
                    "error beside it",
                )
            )
        if m < ECE_DEBIASED_BELOW and cal.get("ece_debiased"):
            notes.append(
                _note(
                    "ece_debiased",
                    m,
                    ECE_DEBIASED_BELOW,
                    "percentile",
                    f"debiased ECE on {m} < {ECE_DEBIASED_BELOW} items: its interval holds "
                    "0 for a calibrated model less often than promised (0.90 at 30 items)",
                )
            )
    return notes


def ppi_note(n_gold: int) -> dict[str, Any] | None:
    """The note beside a PPI / PPI++ estimate from ``n_gold`` gold items, None from
    ``PPI_BELOW`` on (for the pool estimates' block)."""
    if n_gold >= PPI_BELOW:
        return None
    return _note(
        "ppi",
        n_gold,
        PPI_BELOW,
        "normal",
        f"PPI on {n_gold} < {PPI_BELOW} gold items: the normal interval covers 0.85-0.88 "
        "at 20 items (its variance of y - f is estimated from few disagreements)",
    )


def _note(figure: str, n: int, below: int, interval: str, message: str) -> dict[str, Any]:
    return {
        "figure": figure,
        "n": n,
        "keeps_level_from_n": below,
        "interval": interval,
        "message": message,
    }


def _pct(iv: dict[str, Any]) -> str:
    return f"{round(100 * float(iv.get('level') or 0.95))}%"
