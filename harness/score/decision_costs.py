"""The deploy decision's costs: what each setup costs as a hybrid pipeline (LLM pre-labels,
humans review what is not auto-accepted) and the auto-accept share that cost rests on
(statistics.md section 6). Pure functions over a setup's metrics block; `decision` ranks
setups on what these return.
"""

from __future__ import annotations

from typing import Any

from harness.config import CostConfig
from harness.score.json_numbers import num, with_note


def pct(x: float) -> str:
    """0.05 -> '5%', 0.975 -> '97.5%' (a rounded 98% would overstate a guarantee)."""
    return f"{round(x * 100, 4):g}%"


PER = 1000  # costs are quoted per 1,000 items, the unit a labelling budget is planned in
HUMAN_COST_KEYS = ("costs.human_label_usd", "costs.human_review_usd")
NO_PRICE = (
    "LLM price unknown (litellm's price map has no entry and the config gives none): set "
    "models[].input_cost_per_mtok and output_cost_per_mtok"
)


# ------------------------------------------------------------------------------- costs


def auto_accept(block: dict[str, Any]) -> dict[str, Any]:
    """The share of all items the setup may label alone, and what that share rests on.

    The share is of *all* items (auto_accepted / n_items), not of the items that had a
    confidence: a failed or confidence-less item always goes to a human, so this is the
    share the pipeline really saves on.
    """
    n = int(block.get("n_items") or 0)
    out: dict[str, Any] = {"share": 0.0, "accepted": 0, "n_items": n, "threshold": None}
    sel = block.get("selective")
    if sel is None:
        why = (
            # Multi-label, rubric and ranking setups have no single confidence to threshold.
            "auto-accept is not computed for this task type"
            if "selective" not in block
            else "no auto-accept threshold: fewer than 10 answered items have a confidence"
        )
        return {**out, "basis": None, "note": f"{why}; every item goes to a human"}
    te, delta = sel["target_error"], sel["delta"]
    accepted = int(sel["auto_accepted"])
    cross = sel.get("cross_fit") or {}
    out.update(
        share=num(accepted / n) if n else 0.0,
        accepted=accepted,
        threshold=sel["threshold"],
        target_error=te,
        delta=delta,
        # The guarantee: error among auto-accepted <= target_error with probability 1 - delta.
        observed_error=num(sel["errors_among_accepted"] / accepted) if accepted else None,
        cross_fit_error=cross.get("check_error_rate"),
        basis=f"Learn-then-Test threshold for error <= {pct(te)} with {pct(1 - delta)} confidence, "
        f"fitted on the {sel['n']} answered items with a {sel.get('confidence', 'raw')} "
        "confidence",
        note=None
        if sel["threshold"] is not None
        else f"no confidence threshold keeps the error <= {pct(te)} with {pct(1 - delta)} "
        "confidence; every item goes to a human",
    )
    return out


def cost_block(setup_block: dict[str, Any], costs: CostConfig) -> dict[str, Any]:
    """LLM, hybrid and all-human cost per item and per 1,000 items, savings, cost per
    correct label, and the items left for humans."""
    b = setup_block
    n = int(b.get("n_items") or 0)
    cov = b.get("coverage") or {}
    answered = int(cov.get("answered", n))
    llm = (b.get("usage") or {}).get("cost_usd_per_item")
    acc = auto_accept(b)
    # An answered item not auto-accepted gets a review; a failed item a full human label.
    reviews = (answered - acc["accepted"]) / n if n else None
    full_labels = (n - answered) / n if n else None
    notes = [x for x in (acc["note"],) if x]
    if llm is None:
        notes.append(NO_PRICE)
    label_usd, review_usd = costs.human_label_usd, costs.human_review_usd
    missing = [
        k for k, v in zip(HUMAN_COST_KEYS, (label_usd, review_usd), strict=True) if v is None
    ]
    if missing:
        notes.append(f"human costs not configured: set {' and '.join(missing)} in the config")
    all_human = label_usd * costs.labels_per_item if label_usd is not None else None
    hybrid = (
        llm + review_usd * reviews + label_usd * full_labels
        if None not in (llm, label_usd, review_usd, reviews)
        else None
    )
    saved = all_human - hybrid if None not in (all_human, hybrid) else None
    accuracy = (b.get("accuracy") or {}).get("estimate")
    return {
        "n_items": n,
        "human_costs_configured": not missing,
        "llm": {
            "per_item": llm,
            "per_1k": _k(llm),
            "basis": f"mean over {n} items, every sample and failed call included",
        },
        "auto_accept": acc,
        "humans_per_1k": {
            "reviews": _k(reviews),
            "full_labels": _k(full_labels),
            "total": _k(None if reviews is None else reviews + full_labels),
            "basis": f"{answered} of {n} items answered, {acc['accepted']} auto-accepted",
        },
        "hybrid": {
            "per_item": num(hybrid),
            "per_1k": _k(hybrid),
            "basis": "LLM on every item + a review of each answered item not auto-accepted + "
            "a full human label of each failed item",
        },
        "all_human": {
            "per_item": num(all_human),
            "per_1k": _k(all_human),
            "labels_per_item": costs.labels_per_item,
        },
        "savings": {
            "per_1k": _k(saved),
            "share": num(saved / all_human) if saved is not None and all_human else None,
        },
        "cost_per_correct_label": with_note(
            {
                "value": num(llm / accuracy) if llm is not None and accuracy else None,
                "accuracy": accuracy,
                "n": n,
                "basis": "LLM cost per item / end-to-end accuracy (failures count as wrong)",
            },
            "not computed: "
            + (
                "the LLM price is unknown"
                if llm is None
                else "no label is correct (accuracy 0)"
                if accuracy == 0
                else "no accuracy"
            ),
        ),
        "notes": notes,
    }


def _k(per_item: float | None) -> float | None:
    return None if per_item is None else num(per_item * PER)


def decision_cost(cost: dict[str, Any]) -> tuple[float | None, str]:
    """The cost a decision compares: the hybrid pipeline per 1,000 items, or the LLM's alone
    when the human costs are not configured (one setup is then not cheaper than another
    just because the human side is unpriced). None: the LLM's price is unknown."""
    if cost["human_costs_configured"]:
        return cost["hybrid"]["per_1k"], "hybrid"
    return cost["llm"]["per_1k"], "llm"
