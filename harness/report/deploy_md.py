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
    out = groups_setup_line(b) + stability_line(b) + alt_test_line(b)
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


def stability_line(b: dict[str, Any]) -> list[str]:
    s = b.get("stability")
    if not s:
        return []
    return [
        f"- Stability over {s['runs']} samples per item (n={s['n_items']} items): alpha "
        f"{fmt_iv(s['alpha'])}, labels flip on {fmt(s['flip_rate'])} of items, mean pairwise "
        f"disagreement {fmt(s['disagreement_rate'])}"
    ]


def alt_test_line(b: dict[str, Any]) -> list[str]:
    a = b.get("alt_test")
    if not a:
        return []
    if "refused" in a:
        return [f"- Alternative Annotator Test: not run: {a['refused']}"]
    verdict = "passes" if a["passed"] else "does not pass"
    rows = ", ".join(
        f"{r['annotator']} p={fmt(r['p_by'])}{' (beaten)' if r['rejected'] else ''} (n={r['n']})"
        for r in a["per_annotator"]
    )
    return [
        f"- Alternative Annotator Test (epsilon {a['epsilon']}, {a['epsilon_basis']}; "
        f"{a['scoring']} scoring; Benjamini-Yekutieli at q={a['q']}): {verdict}: winning rate "
        f"{fmt(a['winning_rate'], 2)} (needs >= 0.5), advantage probability "
        f"{fmt(a['advantage_probability'])}; per annotator: {rows}"
        + (f". {a['warning']}" if a.get("warning") else "")
    ]


def prompt_stability_md(gs: dict[str, Any]) -> list[str]:
    blocks = gs.get("prompt_stability") or []
    out = []
    for p in blocks:
        accs = ", ".join(f"`{a['setup']}` {fmt(a['accuracy'])}" for a in p["accuracy"])
        out.append(
            f"- Paraphrases `{p['group']}` on `{p['model']}` ({len(p['setups'])} variants, "
            f"n={p['n_items']} items): alpha across variants {fmt_iv(p['alpha'])}, labels flip on "
            f"{fmt(p['flip_rate'])} of items; accuracy {accs} (spread {fmt(p['accuracy_range'])})"
        )
    return ["", "### Stability across paraphrased prompts", "", *out] if out else []
