"""The Dawid-Skene part of the human-agreement section (statistics.md section 6): which
reference the setups are scored against, where the two references differ, and each
annotator's and each setup's estimated accuracy in the same model."""

from __future__ import annotations

from typing import Any

from harness.report.markdown_format import fmt_iv, table

NOTE = (
    "Accuracy as the Dawid-Skene model estimates it (no item has a known truth): the "
    "posterior-weighted share of the rater's labels that are right, on the items they "
    "labelled (n). The interval takes the fitted confusion matrices as known; classes are "
    "nominal (an ordinal level or a pairwise tie is a class of its own). Each setup is fitted "
    "as one more annotator, its failed answers missing."
)


def _cell(acc: dict[str, Any]) -> str:
    return fmt_iv(acc) if acc.get("estimate") is not None else f"– ({acc.get('note', '')})"


def dawid_skene_md(gs: dict[str, Any]) -> list[str]:
    d = (gs.get("humans") or {}).get("dawid_skene")
    if not d:
        return []
    examples = ", ".join(
        f"`{e['item']}` ({e['majority']} → {e['dawid_skene']})" for e in d["changed_examples"]
    )
    rows = [
        [r["annotator"], str(r["accuracy"]["n"]), _cell(r["accuracy"])] for r in d["annotators"]
    ]
    rows += [
        [
            f"LLM `{b['setup']}`",
            str(b["dawid_skene"]["accuracy"]["n"]),
            _cell(b["dawid_skene"]["accuracy"]),
        ]
        for b in gs.get("setups") or []
        if b.get("dawid_skene")
    ]
    model = d["model"]
    out = [
        "",
        f"**Dawid-Skene reference.** Setups are scored against the **{d['reference_used']}** "
        f"reference. The {d['majority_rule']} rule and the Dawid-Skene posterior mode differ "
        f"on {d['n_changed']} of {d['n_items']} items"
        + (f", e.g. {examples}" if examples else "")
        + ".",
        "",
        table(["rater", "n", "estimated accuracy [CI]"], rows),
        "",
        NOTE,
    ]
    if not model["converged"]:
        out.append(
            f"Warning: EM stopped at {model['max_iter']} iterations before its tolerance "
            f"({model['tol']}); the estimates are from the last iteration."
        )
    return out
