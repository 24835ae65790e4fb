"""Markdown for the per-setup decision figures: confidence sources head to head,
recalibration before/after, and agreement per annotator group."""

from __future__ import annotations

from typing import Any

from harness.report.markdown_format import fmt, fmt_iv, table


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
    failures = f" Failed answers: {a['failures_note']}." if a.get("failures_note") else ""
    if "refused" in a:
        return [f"- Alternative Annotator Test: not run: {a['refused']}{failures}"]
    verdict = "passes" if a["passed"] else "does not pass"
    rows = ", ".join(
        f"{r['annotator']} p={fmt(r['p_by'])}{' (beaten)' if r['rejected'] else ''} (n={r['n']}"
        + (f", {r['n_clusters']} clusters)" if r.get("n_clusters") else ")")
        for r in a["per_annotator"]
    )
    return [
        f"- Alternative Annotator Test (epsilon {a['epsilon']}, {a['epsilon_basis']}; "
        f"{a['scoring']} scoring; Benjamini-Yekutieli at q={a['q']}"
        + (f"; {a['test']}, over the gold set's clusters" if a.get("test") else "")
        + f"): {verdict}: winning rate "
        f"{fmt(a['winning_rate'], 2)} (needs >= 0.5), advantage probability "
        f"{fmt(a['advantage_probability'])}; per annotator: {rows}"
        + (f". {a['warning']}" if a.get("warning") else "")
        + ("." + failures if failures else "")
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


def confidence_sources_md(block: dict[str, Any] | None) -> list[str]:
    """The sources as a small table for report.md; nothing when the setup has no confidence."""
    if not block or not block["sources"]:
        return []
    rows = [
        [
            r["source"] + (" (selected)" if r["source"] == block["selected"] else ""),
            str(r["n"]),
            fmt(r["share"], 2),
            fmt_iv(r.get("ece")),
            fmt(r.get("brier")),
            fmt(r.get("auroc")),
            fmt(r.get("aurc")),
        ]
        for r in block["sources"]
    ]
    best = block["best"]
    out = [
        "",
        f"Confidence sources (requested: {block['requested']}; best calibrated by ECE among "
        f"sources covering half the items or more: {best or 'none'}):",
        "",
        table(["source", "n", "share", "ECE [interval]", "Brier", "AUROC", "AURC"], rows),
    ]
    if block.get("note"):
        out += ["", f"Note: {block['note']}."]
    return out


def _row(name: str, mm: dict[str, Any]) -> list[str]:
    return [
        name,
        fmt_iv(mm["ece"]),
        fmt(mm["ece_equal_mass"]),
        fmt(mm["brier"]),
        fmt(mm["log_loss"]),
        fmt(mm["auroc"]),
        fmt(mm["mean_confidence"]),
    ]


def recalibration_md(block: dict[str, Any] | None) -> list[str]:
    """Before/after table for report.md; one line when there was nothing to fit."""
    if not block:
        return [
            "- Recalibration: not fitted (fewer than 20 items with a confidence, or all "
            "right / all wrong)"
        ]
    level = block["before"]["ece"]["level"]
    sel, best = block["selected"], block["best"]

    def name(method: str) -> str:
        marks = [m for m, on in (("selected", method == sel), ("best", method == best)) if on]
        return method + (f" ({', '.join(marks)})" if marks else "")

    rows = [_row(name("none") if sel == "none" else "none", block["before"])]
    for e in block["methods"]:
        label = name(e["method"])
        if e["method"] == "temperature":
            label += f", T={fmt(e['params']['temperature'], 2)}"
        rows.append(_row(label, e["after"]))
    out = [
        "",
        f'Recalibration (n={block["n"]}): "none" is the raw confidence; each method\'s '
        f"row is out-of-fold ({block['folds']}-fold cross-fit), its deployed map is fitted "
        f"on all items. Best = lowest out-of-fold log loss.",
        "",
        table(
            [
                "method",
                f"ECE [{level:.0%} CI]",
                "equal-mass ECE",
                "Brier",
                "log loss",
                "AUROC",
                "mean conf.",
            ],
            rows,
        ),
    ]
    if block.get("warning"):
        out += ["", f"Warning: {block['warning']} (n={block['n']})."]
    notes = [f"{e['method']}: {e['note']}" for e in block["methods"] if e["note"]]
    if notes:
        out += ["", "Notes: " + "; ".join(notes) + "."]
    return out
