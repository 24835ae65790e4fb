"""Markdown for the per-setup decision figures: confidence sources head to head,
recalibration before/after, and agreement per annotator group."""

from __future__ import annotations

from typing import Any

from harness.report.markdown_format import fmt, fmt_iv
from harness.score_confidence import confidence_sources_md
from harness.score_recalibration import recalibration_md


def groups_setup_line(b: dict[str, Any]) -> list[str]:
    rows = b.get("annotator_groups") or []
    if not rows:
        return []
    cells = [
        f"{r['group']} kappa {fmt_iv(r['kappa'])}, accuracy {fmt_iv(r['accuracy'])} (n={r['n']})"
        for r in rows
    ]
    return ["- Against each annotator group's own reference: " + "; ".join(cells)]


def groups_humans_lines(h: dict[str, Any]) -> list[str]:
    rows = h.get("annotator_groups") or []
    out = []
    for r in rows:
        alpha = r["krippendorff_alpha"]
        out.append(
            f"- Group `{r['group']}` ({', '.join(r['annotators'])}; n={r['n_items']} items): "
            f"alpha within the group {fmt(alpha['value'])} (n={alpha['n_items']}), its "
            f"reference against everyone's: kappa {fmt_iv(r['kappa_vs_reference'])}"
        )
    return out


def deploy_md(b: dict[str, Any]) -> list[str]:
    out = groups_setup_line(b)
    if b.get("confidence_sources"):
        out += [
            "",
            "Confidence sources, head to head:",
            "",
            *confidence_sources_md(b["confidence_sources"]),
        ]
    if b.get("recalibration") is not None:
        out += [
            "",
            "Recalibration (cross-fitted, before and after):",
            "",
            *recalibration_md(b["recalibration"]),
        ]
    return out
