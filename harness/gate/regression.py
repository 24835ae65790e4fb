"""Compare a candidate snapshot with a baseline snapshot: per setup and gold set, the paired
change of kappa and accuracy on the same items with the noise-aware rule of
statistics.md section 8, the failure rate and cost per item, and the items whose label
flipped. The result is a plain dict: the gate's summary, JUnit file and exit code read it.

What is comparable: a setup whose model entry and gold set are unchanged. A changed prompt
or few-shot setting is what a gate exists to judge; a changed model or gold set makes the
numbers incomparable, which is reported as a verdict of its own ("changed"), never as a
pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.config import GateConfig
from harness.core.money import usd
from harness.metrics.gate import MetricGate, gate_metric, gate_rate, kappa_metric
from harness.score.clusters import cluster_codes
from harness.score.json_numbers import interval, num

# Worst last. A setup missing from the run fails: renaming a setup must not turn its
# regression into "removed + new".
VERDICT_ORDER = ["pass", "new", "warn", "removed", "changed", "fail"]
FAILING = ("removed", "changed", "fail")


def _codes(values: list[str | None], labels: list[str]) -> np.ndarray:
    code = {label: i for i, label in enumerate(labels)}
    return np.array([code.get(v, -1) if v is not None else -1 for v in values], dtype=np.int64)


def _metric_row(g: MetricGate) -> dict[str, Any]:
    return {
        "metric": g.name,
        "verdict": g.verdict,
        "reasons": list(g.reasons),
        "baseline": num(g.baseline),
        "candidate": num(g.candidate),
        "change": interval(g.change),
        "candidate_interval": interval(g.candidate_interval),
        "tolerance": g.tolerance,
        "floor": g.floor,
        "n": g.n,
    }


def _cost_reason(r: Any) -> str:
    """The rate gate's reason with the costs in dollars (its `g` format writes `7e-06`)."""
    if r.verdict != "fail":
        return r.reason
    return f"cost per item rose from {usd(r.baseline)} to {usd(r.candidate)} > limit {usd(r.limit)}"


def worst(verdicts: list[str]) -> str:
    return max(verdicts, key=VERDICT_ORDER.index) if verdicts else "pass"


def compare_snapshots(
    base: dict[str, Any],
    cand: dict[str, Any],
    gate: GateConfig,
    boot: dict[str, Any],
    texts: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Every setup of either snapshot, with a verdict; `texts` (gold set -> item -> text)
    lets the flipped items be shown with what they say."""
    labels = cand["labels"]
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    if base.get("task_type") != cand.get("task_type") or base.get("labels") != labels:
        notes.append("the task's type or labels changed since the baseline")
    for sid in sorted(set(base["setups"]) | set(cand["setups"])):
        b, c = base["setups"].get(sid), cand["setups"].get(sid)
        if b is None or c is None:
            rows.append(
                {
                    "setup": sid,
                    "verdict": "new" if b is None else "removed",
                    "reason": "not in the baseline: nothing to compare with"
                    if b is None
                    else "in the baseline but not in this run: save a new baseline if the "
                    "setup was removed or renamed on purpose",
                }
            )
            continue
        changes = [k for k in ("prompt_hash", "few_shot") if b.get(k) != c.get(k)]
        if b.get("model_entry") != c.get("model_entry"):
            rows.append(
                {
                    "setup": sid,
                    "verdict": "changed",
                    "reason": f"the model entry changed ({b.get('model_string')} -> "
                    f"{c.get('model_string')} or its settings): results are not comparable; "
                    "save a new baseline if the change is intended",
                }
            )
            continue
        for gid, cg in c["gold_sets"].items():
            rows.append(
                _compare_gold(sid, gid, base, cand, b, cg, gate, boot, labels, texts, changes)
            )
        for gid in sorted(set(b["gold_sets"]) - set(c["gold_sets"])):
            rows.append(
                {
                    "setup": sid,
                    "gold_set": gid,
                    "verdict": "removed",
                    "reason": f"gold set '{gid}' is in the baseline but not in this run",
                }
            )
    if notes:
        rows.append({"setup": "*", "verdict": "changed", "reason": "; ".join(notes)})
    return {
        "verdict": worst([r["verdict"] for r in rows]),
        "baseline_run": base.get("run_id"),
        "candidate_run": cand.get("run_id"),
        "rows": rows,
    }


def _compare_gold(
    sid: str,
    gid: str,
    base: dict[str, Any],
    cand: dict[str, Any],
    b: dict[str, Any],
    cg: dict[str, Any],
    gate: GateConfig,
    boot: dict[str, Any],
    labels: list[str],
    texts: dict[str, dict[str, str]] | None,
    changes: list[str],
) -> dict[str, Any]:
    head = {"setup": sid, "gold_set": gid, "changed_inputs": changes}
    bgold, cgold = base["gold_sets"].get(gid), cand["gold_sets"][gid]
    bg = b["gold_sets"].get(gid)
    if bgold is None or bg is None:
        return {**head, "verdict": "new", "reason": f"gold set '{gid}' is not in the baseline"}
    if bgold["content_hash"] != cgold["content_hash"] or bgold["items"] != cgold["items"]:
        return {
            **head,
            "verdict": "changed",
            "reason": f"gold set '{gid}' changed since the baseline: not comparable; "
            "save a new baseline in the same change",
        }
    ref = _codes(cgold["reference"], labels)
    pred_b, pred_c = _codes(bg["predictions"], labels), _codes(cg["predictions"], labels)
    # The candidate's clustering (this config's cluster_by) applies to both runs: the items
    # are the same, so the baseline's labels are resampled with the same clusters.
    clusters = cluster_codes(cgold.get("clusters"))
    kw = {"reference": ref, **boot, "clusters": clusters}
    metrics = [
        gate_metric(
            "kappa",
            pred_b,
            pred_c,
            gate.kappa.tolerance,
            gate.kappa.floor,
            metric=kappa_metric(len(labels)),
            **kw,
        ),
        gate_metric("accuracy", pred_b, pred_c, gate.accuracy.tolerance, gate.accuracy.floor, **kw),
    ]
    rates = [
        gate_rate(
            "failure_rate",
            bg["failure_rate"],
            cg["failure_rate"],
            absolute_tolerance=gate.failure_rate_absolute,
        )
    ]
    if bg.get("cost_usd_per_item") is not None and cg.get("cost_usd_per_item") is not None:
        rates.append(
            gate_rate(
                "cost_usd_per_item",
                bg["cost_usd_per_item"],
                cg["cost_usd_per_item"],
                relative_tolerance=gate.cost_relative,
            )
        )
    flips = metrics[1].flips
    ids = cgold["items"]
    gold_texts = (texts or {}).get(gid, {})

    def flipped(kind: str, idx: tuple[int, ...]) -> list[dict[str, Any]]:
        return [
            {
                "item": ids[i],
                "kind": kind,
                "reference": cgold["reference"][i],
                "baseline": bg["predictions"][i],
                "candidate": cg["predictions"][i],
                "text": gold_texts.get(ids[i]),
            }
            for i in idx
        ]

    rate_rows = [
        {
            "metric": r.name,
            "verdict": r.verdict,
            "reason": _cost_reason(r) if r.name == "cost_usd_per_item" else r.reason,
            "baseline": num(r.baseline),
            "candidate": num(r.candidate),
            "limit": num(r.limit),
        }
        for r in rates
    ]
    return {
        **head,
        "verdict": worst([g.verdict for g in metrics] + [r.verdict for r in rates]),
        "n": len(ids),
        "clustering": {
            "by": cgold.get("cluster_by") if clusters is not None else None,
            "n_clusters": len(set(cgold["clusters"])) if clusters is not None else len(ids),
        },
        "metrics": [_metric_row(g) for g in metrics],
        "rates": rate_rows,
        "flips": {
            "n": flips.n_flipped,
            "fixed": len(flips.fixed),
            "broken": len(flips.broken),
            "changed": len(flips.changed),
            "items": flipped("broken", flips.broken)
            + flipped("fixed", flips.fixed)
            + flipped("changed", flips.changed),
        },
    }
