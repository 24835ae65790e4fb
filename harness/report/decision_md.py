"""report.md: the deploy decision of a gold set (harness.score.decision): the recommended setup
and why, every constraint per setup, what the hybrid pipeline costs, and the Pareto front."""

from __future__ import annotations

from typing import Any

from harness.report.markdown_format import fmt, fmt_iv, table
from harness.score.decision import pct, usd

CONSTRAINT_HEADS = {
    "min_kappa_low": "kappa low >= {}",
    "max_ece": "ECE <= {}",
    "min_auto_accept_share": "auto-accept share >= {}",
    "max_cost_per_1k_usd": "$ / 1k items <= {}",
    "min_coverage": "coverage >= {}",
}


def decision_md(metrics: dict[str, Any]) -> list[str]:
    """The decision sections of every gold set of a run."""
    return [line for gs in metrics["gold_sets"] for line in decision_section(gs)]


def decision_section(gs: dict[str, Any]) -> list[str]:
    """One gold set's decision; nothing for a block without one (the parts of a structured
    task, or metrics written before the decision existed)."""
    r = gs.get("recommendation")
    if not r:
        return []
    rec, runner = r["recommended"], r["runner_up"]
    head = (
        f"**Recommended: `{rec}`**" + (f"; runner-up: `{runner}`." if runner else ".")
        if rec
        else "**No setup qualifies.**"
    )
    out = ["", "### Recommendation", "", head, "", r["reason"]]
    after = selection_sentence(r.get("selection_adjusted"))
    if after:
        out += ["", after]
    v = r["vs_runner_up"]
    if v and v["can_tell_apart"] is not None:
        out += [
            "",
            # The verdict is in the reason above; this line gives its evidence.
            f"Recommended vs runner-up on the same {v['n']} items: accuracy difference "
            f"{fmt_iv(v['accuracy_difference'])}, McNemar p (Holm) {fmt(v['p_holm'])}.",
        ]
    out += ["", *_constraints(r)]
    out += _costs(r)
    out += _pareto(r["pareto"])
    return out


def selection_sentence(sa: dict[str, Any] | None) -> str | None:
    """The recommended setup's figures after selection, and what they promise (statistics.md
    section 2); None when nothing is recommended or the block predates it."""
    if not sa or not sa.get("setup"):
        return None
    if sa.get("method") is None:
        return f"**After selection:** {sa.get('note') or 'not adjusted'}."
    n = f"n = {sa['n']} items" + (
        f" in {sa['n_clusters']} clusters" if sa.get("n_clusters") is not None else ""
    )
    level = pct(sa["level"])
    if sa["n_setups"] <= 1:
        return (
            f"**After selection:** one setup was scored, so none was selected and its own "
            f"{level} intervals stand ({n}): accuracy {fmt_iv(sa['accuracy'])}, kappa "
            f"{fmt_iv(sa['kappa'])}."
        )
    own = sa["unadjusted"]
    names = sa.get("statistics") or {}
    acc, kap = names.get("accuracy", "accuracy"), names.get("kappa", "kappa")
    kappa_part = (
        f", kappa {(sa['kappa'] or {}).get('note', 'not adjusted')}"
        if kap is None
        else f", {kap} {fmt_iv(sa['kappa'])}"
    )
    own_kappa = "" if kap is None else f", {kap} {fmt_iv(own['kappa'])}"
    likewise = "" if kap is None else f" (and likewise {kap})"
    bound = (
        f"the {kap} lower-bound constraint is checked on these intervals"
        if kap is not None
        else "a kappa lower-bound constraint has no bound to check"
    )
    return (
        f"**After selection** ({n}): {acc} {fmt_iv(sa['accuracy'])}{kappa_part}, {level} "
        f"simultaneous over the {sa['n_setups']} setups compared (its own intervals, from "
        f"the same items that picked it: {acc} {fmt_iv(own['accuracy'])}{own_kappa}). With "
        f"{level} confidence every one of the {sa['n_setups']} setups' true {acc} lies in "
        f"its adjusted interval at once{likewise}, so the recommended setup's does, "
        f"whichever rule picked it; {bound}."
    )


def _constraints(r: dict[str, Any]) -> list[str]:
    set_ = r["constraints"]
    if not set_:
        return [
            "No constraints are set (`report.constraints`): every setup qualifies and the "
            "choice is by cost, then kappa's lower bound, then kappa."
        ]
    heads = [
        CONSTRAINT_HEADS.get(name, name + " {}").format(
            usd(value) if name.endswith("_usd") else f"{value:g}"
        )
        for name, value in set_.items()
    ]
    rows = []
    for s in r["setups"]:
        by_name = {c["constraint"]: c for c in s["checks"]}
        cells = [_cell(by_name[name]) for name in set_]
        rows.append([f"`{s['setup']}`", "yes" if s["qualifies"] else "**no**", *cells])
    return [
        f"Constraints from `report.constraints`; auto-accept at <= {pct(r['target_error'])} "
        f"error with {pct(1 - r['delta'])} confidence (Learn then Test).",
        "",
        table(["setup", "qualifies", *heads], rows),
    ]


def _cell(check: dict[str, Any]) -> str:
    if check["actual"] is None:
        return "**fail**: " + check["reason"]
    value = usd(check["actual"]) if check["constraint"].endswith("_usd") else fmt(check["actual"])
    extra = " (recalibrated)" if "recalibration" in check["reason"] else ""
    if check.get("bound") == "selection_adjusted" and "selection-adjusted" in check["reason"]:
        extra = " (selection-adjusted)"
    return f"{'pass' if check['passed'] else '**fail**'} {value}{extra}"


def _costs(r: dict[str, Any]) -> list[str]:
    rows, notes = [], []
    for s in r["setups"]:
        c = s["cost"]
        acc = c["auto_accept"]
        saved = c["savings"]
        rows.append(
            [
                f"`{s['setup']}`",
                str(c["n_items"]),
                usd(c["llm"]["per_1k"]),
                f"{fmt(acc['share'])} ({acc['accepted']}/{acc['n_items']})",
                f"{fmt(c['humans_per_1k']['total'], 0)} "
                f"({fmt(c['humans_per_1k']['full_labels'], 0)} full labels)",
                usd(c["hybrid"]["per_1k"]),
                usd(c["all_human"]["per_1k"]),
                f"{usd(saved['per_1k'])} ({fmt(saved['share'] * 100, 0)}%)"
                if saved["share"] is not None
                else usd(saved["per_1k"]),
                usd(c["cost_per_correct_label"]["value"]),
            ]
        )
        notes += [f"`{s['setup']}`: {n}" for n in c["notes"]]
    labels_per_item = r["setups"][0]["cost"]["all_human"]["labels_per_item"] if rows else 1
    out = [
        "",
        "#### Cost per setup",
        "",
        "Per 1,000 items. Hybrid: the LLM on every item, a human review of each answered "
        "item not auto-accepted, a full human label of each failed item. All-human: "
        f"{labels_per_item} human label(s) per item. Cost per correct label: the LLM's "
        "cost per item divided by its end-to-end accuracy.",
        "",
        table(
            [
                "setup",
                "n",
                "LLM $ / 1k",
                "auto-accepted",
                "items for humans / 1k",
                "hybrid $ / 1k",
                "all-human $ / 1k",
                "savings / 1k",
                "$ per correct label",
            ],
            rows,
        ),
    ]
    if notes:
        out += ["", *(f"- {n}" for n in notes)]
    return out


def _pareto(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    basis = "hybrid" if rows[0]["cost_basis"] == "hybrid" else "LLM only"
    return [
        "",
        "#### Quality-cost-latency Pareto front",
        "",
        f"Kappa (higher is better), cost per 1,000 items ({basis}) and median latency "
        "(lower is better). A setup is dominated when another is no worse on all three "
        "and better on one; an unknown figure makes a pair incomparable.",
        "",
        table(
            ["setup", "kappa", "$ / 1k", "p50 s", "on the front", "dominated by"],
            [
                [
                    f"`{p['setup']}`",
                    fmt(p["quality"]),
                    usd(p["cost"]),
                    fmt(p["latency"], 2),
                    "yes" if p["on_front"] else "no",
                    ", ".join(f"`{d}`" for d in p["dominated_by"]) or "–",
                ]
                for p in rows
            ],
        ),
    ]
