"""The console leaderboard that `run` and `report` print: per gold set, the setups best first
by kappa with their intervals, the majority-class baseline, and the notes on figures that are
easy to misread (a kappa above the human ceiling, raw against recalibrated ECE)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from harness.cli.common import out
from harness.report import leaderboard_notes as notes
from harness.report.markdown_format import by_kappa, fmt_iv


def print_leaderboard(metrics: dict[str, Any]) -> None:
    for gs in metrics["gold_sets"]:
        level = round(metrics["bootstrap"]["level"] * 100)
        table = Table(
            title=f"{gs['id']}: {gs['humans']['n_items']} items, human alpha "
            f"{_f(gs['humans']['krippendorff_alpha']['value'])}",
            title_justify="left",
        )
        for col in (
            "setup",
            "n",
            f"kappa [{level}% CI]",
            f"accuracy [{level}% CI]",
            "macro-F1",
            "coverage",
            "kappa/ceiling",
        ):
            table.add_column(col, justify="left" if col == "setup" else "right")
        rows = by_kappa(gs["setups"])
        method = notes.recalibration_method(rows)  # then the raw ECE is not the one used
        for col in ["ECE (raw)", f"ECE (after {method})"] if method else ["ECE"]:
            table.add_column(col, justify="right")
        for b in rows:
            cal = b["calibration"]
            after = notes.recalibrated_ece(b, method) if method else None
            shown = _f(after["estimate"]) if after else notes.NOT_FITTED if cal else "–"
            ratio = b["human_ceiling"]["ratio_kappa"]
            table.add_row(
                b["setup"],
                str(b["n_items"]),
                fmt_iv(b["kappa"], bracket="scored"),
                fmt_iv(b["accuracy"], bracket="scored"),
                _f(b["macro_f1"]["estimate"]),
                _f(b["coverage"]["value"]),
                notes.ceiling_text(ratio, _f(ratio, 2), f"above ceiling{notes.MARK}"),
                _f(cal["ece"]["estimate"]) if cal else "–",
                *([shown] if method else []),
            )
        base = gs.get("baseline")  # structured tasks have one per part, in report.md
        if base:
            table.add_row(
                f"majority class ({base['label']})",
                str(base["n_items"]),
                "0.000",
                fmt_iv(base["accuracy"], bracket="scored"),
                _f(base["macro_f1"]["estimate"]),
                "1.000",
                "–",
                "–",
                *(["–"] if method else []),
                style="dim",
            )
        out.print(table)
        if method:
            out.print(notes.ece_note(method), markup=False, highlight=False)
        if notes.any_above_ceiling(rows):
            out.print(notes.above_ceiling_note(gs), markup=False, highlight=False)


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"
