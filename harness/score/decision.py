"""The deploy decision: what each setup costs as a hybrid pipeline (LLM pre-labels, humans
review what is not auto-accepted), the quality-cost-latency Pareto front, and the setup to
deploy under the config's constraints (statistics.md section 6; issue 4, items 4 and 6).

Pure functions over the metrics dict, so they work as well on a metrics.json read back.
Every figure carries what it rests on: the n of items, and where the auto-accept share comes
from (the Learn-then-Test threshold at target_error with confidence 1 - delta).
"""

from __future__ import annotations

from typing import Any

from harness.config import Constraints, CostConfig, ReportConfig
from harness.core.money import usd
from harness.score.decision_costs import NO_PRICE, auto_accept, cost_block, decision_cost, pct
from harness.score.json_numbers import num
from harness.score.selection import adjusted, recommendation_block
from harness.tasks.ranking import Ranking

__all__ = [
    "auto_accept",
    "cost_block",
    "decide",
    "decision_cost",
    "pareto_front",
    "pct",
    "recommend",
    "usd",
]

# ------------------------------------------------------------------------------- Pareto

AXES = (("quality", 1), ("cost", -1), ("latency", -1))  # +1: higher is better


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rows: {"setup", "quality", "cost", "latency"} (None = unknown). A setup dominates
    another if it is no worse on every axis and better on one. An axis unknown for every
    setup is left out; an axis unknown for only one of a pair makes that pair incomparable
    (neither dominates), so a setup with an unknown cost is never ruled out by cost."""
    axes = [(a, s) for a, s in AXES if any(r.get(a) is not None for r in rows)]

    def dominates(x: dict[str, Any], y: dict[str, Any]) -> bool:
        if any(x.get(a) is None or y.get(a) is None for a, _ in axes):
            return False
        diffs = [s * (x[a] - y[a]) for a, s in axes]
        return bool(axes) and all(d >= 0 for d in diffs) and any(d > 0 for d in diffs)

    out = []
    for y in rows:
        by = [x["setup"] for x in rows if x is not y and dominates(x, y)]
        out.append({**y, "on_front": not by, "dominated_by": by})
    return out


def pareto_rows(setups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for b in setups:
        cost, basis = decision_cost(b["cost"])
        rows.append(
            {
                "setup": b["setup"],
                "quality": (b.get("kappa") or {}).get("estimate"),
                "cost": cost,
                "cost_basis": basis,
                "latency": ((b.get("usage") or {}).get("latency_s") or {}).get("p50"),
            }
        )
    return rows


# ------------------------------------------------------------------------------- checks


def _req(x: float) -> str:
    return f"{x:.2f}" if round(x, 2) == x else f"{x:g}"


BOUND_CONSTRAINTS = ("min_kappa_low",)  # the constraints read from an interval's bound


def checks_of(
    b: dict[str, Any],
    c: Constraints,
    target_error: float,
    selected: dict[str, Any] | None = None,
    bound: str = "",
) -> list[dict[str, Any]]:
    """One check per constraint set in the config (b carries its `cost` block): a min_*
    constraint needs actual >= required, a max_* one actual <= required; a figure that is
    not available fails, saying why. A bound-based constraint (min_kappa_low) uses the
    selection-adjusted interval `selected` when there is one (statistics.md section 2: the
    setups were all compared on these items, so each one's own bound is too optimistic for
    the one chosen); its check names the bound in `bound` and its reason."""
    cost, basis = decision_cost(b["cost"])
    kappa = (selected or b).get("kappa") or {}
    acc = b["cost"]["auto_accept"]
    ece, ece_what = _ece(b)
    delta = acc.get("delta")
    # constraint -> (actual figure, what it is, why it would be missing)
    figures = {
        "min_kappa_low": (
            kappa.get("low"),
            "Kendall tau lower bound" if Ranking.name in b else "kappa lower bound",
            "no interval for kappa (a mean over parts has none; see each part's own)",
        ),
        "max_ece": (ece, ece_what, "no confidences for this setup"),
        "min_auto_accept_share": (
            acc["share"] if acc["basis"] else None,
            f"auto-accept share (accepted labels >= {pct(1 - target_error)} accurate"
            + (f" with {pct(1 - delta)} confidence)" if delta is not None else ")"),
            (acc["note"] or "").split(";")[0],
        ),
        "max_cost_per_1k_usd": (
            cost,
            "hybrid cost per 1,000 items"
            if basis == "hybrid"
            else "LLM cost per 1,000 items (human costs not configured)",
            NO_PRICE,
        ),
        "min_coverage": ((b.get("coverage") or {}).get("value"), "coverage", "no coverage"),
    }
    out = []
    for name, required in c.model_dump().items():
        if required is None:
            continue
        actual, what, missing = figures[name]
        if actual is None:
            passed, reason = False, f"not available: {missing}"
        else:
            at_least = name.startswith("min_")
            passed = actual >= required if at_least else actual <= required
            sign = (">=" if passed else "<") if at_least else ("<=" if passed else ">")
            money = name.endswith("_usd")
            shown = (usd(actual), usd(required)) if money else (f"{actual:.3f}", _req(required))
            reason = f"{what} {shown[0]} {sign} {shown[1]}"
        check = {
            "constraint": name,
            "required": required,
            "actual": actual,
            "passed": passed,
            "reason": reason,
        }
        if name in BOUND_CONSTRAINTS:
            check["bound"] = "selection_adjusted" if selected else "unadjusted"
            check["reason"] += f" ({bound})" if bound else ""
        out.append(check)
    return out


def _ece(b: dict[str, Any]) -> tuple[float | None, str]:
    """The ECE the deployed confidences will have: after the selected recalibration (its
    out-of-fold figure), else the raw one."""
    recal = b.get("recalibration") or {}
    method = recal.get("selected")
    if method and method != "none":
        for m in recal.get("methods") or []:
            if m.get("method") == method:
                ece = ((m.get("after") or {}).get("ece") or {}).get("estimate")
                return ece, f"ECE after {method} recalibration (out-of-fold)"
    cal = b.get("calibration")
    return (cal["ece"]["estimate"] if cal else None), "ECE"


# ------------------------------------------------------------------------------- decision


def recommend(
    gold_set_block: dict[str, Any], report_cfg: ReportConfig, costs: CostConfig
) -> dict[str, Any]:
    """The cheapest setup meeting every set constraint, the runner-up, and why."""
    gs = gold_set_block
    c = report_cfg.constraints
    setups = []
    for b in gs["setups"]:
        cost = b.get("cost") or cost_block(b, costs)
        selected, bound = adjusted(gs, b["setup"])
        checks = checks_of({**b, "cost": cost}, c, report_cfg.target_error, selected, bound)
        setups.append(
            {
                "setup": b["setup"],
                "qualifies": all(x["passed"] for x in checks),
                "checks": checks,
                "misses": [x["reason"] for x in checks if not x["passed"]],
                "cost": cost,
                "_rank": _rank_key(b, cost),
            }
        )
    ranked = sorted((s for s in setups if s["qualifies"]), key=lambda s: s["_rank"])
    rec = ranked[0] if ranked else None
    runner = ranked[1] if len(ranked) > 1 else None
    tie = _tie_break(rec["_rank"], runner["_rank"]) if rec and runner else None
    for s in setups:
        del s["_rank"]
    set_constraints = {k: v for k, v in c.model_dump().items() if v is not None}
    versus = _versus(gs, rec["setup"], runner["setup"]) if rec and runner else None
    return {
        "gold_set": gs["id"],
        "constraints": set_constraints,
        "target_error": report_cfg.target_error,
        "delta": report_cfg.delta,
        "recommended": rec["setup"] if rec else None,
        "runner_up": runner["setup"] if runner else None,
        "reason": _reason(rec, runner, setups, set_constraints, versus, tie),
        "vs_runner_up": versus,
        "selection_adjusted": recommendation_block(gs, rec["setup"] if rec else None),
        "setups": setups,
        "pareto": pareto_front(
            pareto_rows(
                [{**b, "cost": s["cost"]} for b, s in zip(gs["setups"], setups, strict=True)]
            )
        ),
    }


def _rank_key(b: dict[str, Any], cost: dict[str, Any]) -> tuple:
    """Cheapest first; a known cost before an unknown one (the choice is by cost, and an
    unknown cost cannot be shown to be the lowest); ties by kappa's lower bound, then kappa.
    Costs are compared to the micro-dollar per 1,000 items, so float noise is a tie."""
    value, _ = decision_cost(cost)
    kappa = b.get("kappa") or {}

    def desc(x: float | None) -> float:
        return -x if x is not None else float("inf")

    return (
        value is None,
        round(value or 0.0, 6),
        desc(kappa.get("low")),
        desc(kappa.get("estimate")),
    )


def _tie_break(rec: tuple, runner: tuple) -> str | None:
    """What decided between two setups of the same cost (None: the cost did)."""
    if rec[:2] != runner[:2]:
        return None
    if rec[2] != runner[2]:
        return "kappa's lower bound"
    return "kappa" if rec[3] != runner[3] else "the order of the setups (a full tie)"


def _cost_text(s: dict[str, Any]) -> str:
    value, basis = decision_cost(s["cost"])
    if value is None:
        return "cost unknown"
    return f"{usd(value)} per 1,000 items ({'hybrid' if basis == 'hybrid' else 'LLM only'})"


def _reason(rec, runner, setups, constraints, versus, tie) -> str:
    if not setups:
        return "No setup was scored on this gold set."
    if rec is None:
        misses = "; ".join(f"`{s['setup']}` misses {', '.join(s['misses'])}" for s in setups)
        return f"No setup meets the constraints: {misses}."
    how = (
        f"the cheapest setup meeting all {len(constraints)} constraint(s)"
        if constraints
        else "the cheapest setup, then the highest kappa (no constraints are set in "
        "report.constraints, so every setup qualifies)"
    )
    out = f"`{rec['setup']}` is {how}: {_cost_text(rec)}"
    if not runner:
        return out + ". No other setup qualifies."
    if tie:
        out += f", the same as the runner-up; chosen by {tie}"
    out += f". Runner-up: `{runner['setup']}`, {_cost_text(runner)}"
    if versus["can_tell_apart"] is None:
        return out + "."
    if not versus["can_tell_apart"]:  # the verdict says just that: say it once
        return out + "; the two cannot be told apart on this gold set."
    return out + f"; the two can be told apart on this gold set ({versus['verdict']})."


def _versus(gs: dict[str, Any], rec: str, runner: str) -> dict[str, Any]:
    """Can the recommended setup and the runner-up be told apart? Read from the gold set's
    paired comparisons; the accuracy difference is turned to recommended minus runner-up."""
    for row in gs.get("comparisons") or []:
        if {row["a"], row["b"]} == {rec, runner}:
            iv = dict(row["accuracy_difference"])
            if row["a"] != rec:
                iv.update(estimate=_neg(iv["estimate"]), low=_neg(iv["high"]), high=_neg(iv["low"]))
            return {
                "recommended": rec,
                "runner_up": runner,
                "can_tell_apart": not row["verdict"].startswith("cannot"),
                "verdict": row["verdict"],
                "p_holm": row["mcnemar"]["p_holm"],
                "accuracy_difference": iv,
                "n": row["n"],
            }
    none = dict.fromkeys(("can_tell_apart", "p_holm", "accuracy_difference", "n"))
    verdict = "no paired comparison for this task type"
    return {"recommended": rec, "runner_up": runner, **none, "verdict": verdict}


def _neg(x: float | None) -> float | None:
    return None if x is None else num(-x)


def decide(metrics: dict[str, Any], experiment: Any) -> dict[str, Any]:
    """Add `cost` to every setup, `recommendation` to every gold set, and the first gold
    set's recommendation at the top level; in place, and returned."""
    exp = getattr(experiment, "experiment", experiment)  # an Experiment or ResolvedExperiment
    for gs in metrics["gold_sets"]:
        for b in gs["setups"]:
            b["cost"] = cost_block(b, exp.costs)
        gs["recommendation"] = recommend(gs, exp.report, exp.costs)
    if metrics["gold_sets"]:
        metrics["recommendation"] = metrics["gold_sets"][0]["recommendation"]
    return metrics
