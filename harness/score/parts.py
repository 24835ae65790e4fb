"""Parts of a setup's block: the human ceiling, calibration of its confidence, and usage
(tokens, cost, latency, cache hits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from harness import metrics as m
from harness.core.records import LabelRecord
from harness.score.ece import EceIntervals, ece_intervals
from harness.score.json_numbers import num as _num
from harness.score.predictions import ItemPredictions


def ceiling_block(c: m.HumanCeiling, names: Sequence[str]) -> dict[str, Any]:
    block = {
        "method": "leave-one-annotator-out: each annotator and the LLM against the majority "
        "of the other annotators, on the same items",
        "human_accuracy": _num(c.human_accuracy),
        "llm_accuracy": _num(c.llm_accuracy),
        "human_kappa": _num(c.human_kappa),
        "llm_kappa": _num(c.llm_kappa),
        "ratio_accuracy": _num(c.ratio_accuracy),
        "ratio_kappa": _num(c.ratio_kappa),
        "n_pairs": int(c.n_pairs),
        "per_annotator": [
            {
                **{k: _num(v) if isinstance(v, float) else v for k, v in asdict(row).items()},
                "annotator": names[row.annotator],
            }
            for row in c.per_annotator
        ],
    }
    note = ceiling_note(block, ("accuracy", "kappa"))
    if note:
        block["note"] = note
    return block


def ceiling_note(block: dict[str, Any], metrics: Sequence[str]) -> str:
    """Why a ceiling ratio (llm / human) is null, or "" when every ratio has a value."""
    if block["n_pairs"] == 0:
        return (
            "no ceiling: no item has ratings from two annotators, so none can be held out "
            "against the others"
        )
    gaps = []
    for metric in metrics:
        if block[f"ratio_{metric}"] is not None:
            continue
        human = block[f"human_{metric}"]
        if human is None:
            gaps.append(
                f"{metric}: undefined for every held-out annotator (the others use one "
                "label only, or too few items)"
            )
        elif block[f"llm_{metric}"] is None:
            gaps.append(f"{metric}: the LLM's is undefined on these items")
        else:
            gaps.append(f"{metric}: the ratio needs a positive value of the held-out humans")
    return "ratio undefined for " + "; ".join(gaps) if gaps else ""


def calibration_block(
    ref: np.ndarray,
    pred: np.ndarray,
    preds: ItemPredictions,
    boot: dict[str, Any],
    shared: EceIntervals | None = None,
) -> dict[str, Any] | None:
    """``shared``: the gold set's ECE intervals (filled by its owner); None = fill here."""
    has = ~np.isnan(preds.confidence) & (pred >= 0) & (ref >= 0)
    if has.sum() < 2:
        return None
    conf = preds.confidence[has]
    correct = (pred[has] == ref[has]).astype(float)
    with ece_intervals(shared, len(pred), boot) as eci:
        ece_iv = eci.interval(conf, correct, "uniform", within=has)
        ece_mass_iv = eci.interval(conf, correct, "quantile", within=has)
        ece_debiased_iv = eci.interval(conf, correct, "debiased", within=has)
    return {
        "n": int(has.sum()),
        "sources": dict(preds.sources),
        "share_with_confidence": _num(has.sum() / len(pred)),
        "mean_confidence": _num(conf.mean()),
        "accuracy": _num(correct.mean()),
        "ece": ece_iv,
        "ece_equal_mass": _num(m.ece(conf, correct, n_bins=10, strategy="quantile")),
        # ECE is biased upward on small n (Nixon et al. 2019): both binnings get an interval.
        "ece_equal_mass_interval": ece_mass_iv,
        # Its interval can hold 0 for a calibrated model; the plug-in ones cannot.
        "ece_debiased": ece_debiased_iv,
        "brier": _num(m.brier_top_label(conf, correct)),
        "log_loss": _num(m.log_loss_top_label(conf, correct)),
        # Does confidence separate right from wrong labels? 0.5 = not at all.
        "auroc": _num(m.auroc(conf, correct)),
        "reliability": [asdict(b) for b in m.reliability_bins(conf, correct, 10, "uniform")],
    }


def usage_block(records: Sequence[LabelRecord], n_items: int) -> dict[str, Any]:
    # One pass over the records (a 100,000-item run has 100,000 per setup).
    latencies = []
    n_failed = hits = calls = attempts = tokens_in = tokens_out = 0
    cost_fresh = cost_all = 0.0
    cost_known = fresh_known = True
    any_reply = False
    for r in records:
        if r.latency_s is not None:
            latencies.append(r.latency_s)
        n_failed += r.failure is not None
        tokens_in += r.input_tokens or 0
        tokens_out += r.output_tokens or 0
        cost_all += r.cost_usd or 0.0
        # A reply is priced if its provider or the config knew the price; replayed labels
        # cost 0.
        if r.label is not None or r.cost_usd is not None:
            any_reply = True
            cost_known = cost_known and r.cost_usd is not None
        if r.cached:
            hits += 1
            continue
        calls += 1
        attempts += r.attempts
        cost_fresh += r.cost_usd or 0.0
        if r.label is not None and r.cost_usd is None:
            fresh_known = False
    cost_known = any_reply and cost_known
    return {
        "n_records": len(records),
        "failed_records": n_failed,
        "cache_hits": hits,
        "calls_this_run": calls,
        "attempts_this_run": attempts,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost_usd_this_run": _num(cost_fresh) if fresh_known else None,
        "cost_usd_per_item": _num(cost_all / n_items) if n_items and cost_known else None,
        "latency_s": {
            "p50": _num(np.percentile(latencies, 50)) if len(latencies) else None,
            "p95": _num(np.percentile(latencies, 95)) if len(latencies) else None,
            "n": len(latencies),
        },
    }
