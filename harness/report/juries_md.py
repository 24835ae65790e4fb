"""The "Juries" section of the reports (statistics.md section 7): what each jury setup in the
leaderboard is made of, how its label and confidence are formed, why its figures are honest
(weights out of fold) and what it costs, each member's record behind its weight with its n."""

from __future__ import annotations

from typing import Any

from harness.metrics.audit import wilson_interval
from harness.report.markdown_format import fmt, table


def _iv(p: Any) -> str:
    return "–" if not p.n else f"{p.estimate:.3f} [{p.low:.3f}, {p.high:.3f}]"


def share_iv(right: int, answered: int) -> str:
    """A member's share of right answers with its 95% Wilson interval (items independent:
    the weights are, by design, this plain ratio)."""
    return _iv(wilson_interval(right, answered))


def jury_notes(jury: dict[str, Any]) -> dict[str, str]:
    """The sentences both reports print for one jury (`juries[]` of metrics.json)."""
    members = ", ".join(f"`{m}`" for m in jury["members"])
    weighted = jury["rule"] == "weighted"
    return {
        "made_of": f"`{jury['id']}`: {jury['rule']} vote of {members} ({jury['rule_text']}); "
        f"ties: {jury['tie_rule']}.",
        "calls": f"It made {jury.get('extra_calls', 0)} calls: its labels are combined from the "
        "members' labels, its cost per item is the sum of theirs and its confidence the "
        "winning label's share of the votes" + (" (of the voters' weight)." if weighted else "."),
        "honest": (
            f"Weights scored against the `{jury['reference']}` reference are learned on the "
            f"other folds of {jury['folds']} (seed {jury['seed']}; whole clusters with "
            "cluster_by), so no item's label weighs its own vote; `prelabel label` uses the "
            "weights of every gold item (below)."
            if weighted
            else "Majority needs no weights: every number above is the jury's as it would "
            "label new items."
        ),
    }


def juries_md(metrics: dict[str, Any]) -> list[str]:
    juries = metrics.get("juries") or []
    if not juries:
        return []
    out = ["", "## Juries", ""]
    for jury in juries:
        notes, weighted = jury_notes(jury), jury["rule"] == "weighted"
        out += [f"- {notes['made_of']} {notes['calls']} {notes['honest']}"]
        rows = []
        for gs in jury.get("gold_sets", []):
            for m in gs["members"]:
                rows.append(
                    [
                        f"`{gs['gold_set']}`",
                        f"`{m['setup']}`",
                        f"{m['right']} / {m['answered']}",
                        share_iv(m["right"], m["answered"]),
                        *([fmt(jury["deploy_weights"].get(m["setup"]))] if weighted else []),
                    ]
                )
        head = ["gold set", "member", "right / answered (n)", "share right [95% Wilson]"]
        out += ["", table(head + (["deploy weight"] if weighted else []), rows)]
        missing = sum(gs.get("no_member_answered", 0) for gs in jury.get("gold_sets", []))
        if missing:
            out += ["", f"Items no member answered (a failed jury label): {missing}."]
        out += [""]
    return out
