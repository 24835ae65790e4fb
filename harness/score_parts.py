"""Parts of a setup's block: the human ceiling, calibration of its confidence, and usage
(tokens, cost, latency, cache hits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from harness import metrics as m
from harness.json_numbers import interval
from harness.json_numbers import num as _num
from harness.predictions import ItemPredictions
from harness.records import LabelRecord


def ceiling_block(c: m.HumanCeiling, names: Sequence[str]) -> dict[str, Any]:
    return {
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


def calibration_block(
    ref: np.ndarray, pred: np.ndarray, preds: ItemPredictions, boot: dict[str, Any]
) -> dict[str, Any] | None:
    has = ~np.isnan(preds.confidence) & (pred >= 0) & (ref >= 0)
    if has.sum() < 2:
        return None
    conf = preds.confidence[has]
    correct = (pred[has] == ref[has]).astype(float)
    ece_iv = m.ece_ci(conf, correct, n_bins=10, strategy="uniform", **boot)
    return {
        "n": int(has.sum()),
        "sources": dict(preds.sources),
        "share_with_confidence": _num(has.sum() / len(pred)),
        "mean_confidence": _num(conf.mean()),
        "accuracy": _num(correct.mean()),
        "ece": interval(ece_iv),
        "ece_equal_mass": _num(m.ece(conf, correct, n_bins=10, strategy="quantile")),
        # ECE is biased upward on small n (Nixon et al. 2019): both binnings get an interval.
        "ece_equal_mass_interval": interval(
            m.ece_ci(conf, correct, n_bins=10, strategy="quantile", **boot)
        ),
        "brier": _num(m.brier_top_label(conf, correct)),
        "log_loss": _num(m.log_loss_top_label(conf, correct)),
        # Does confidence separate right from wrong labels? 0.5 = not at all.
        "auroc": _num(m.auroc(conf, correct)),
        "reliability": [asdict(b) for b in m.reliability_bins(conf, correct, 10, "uniform")],
    }


def usage_block(records: Sequence[LabelRecord], n_items: int) -> dict[str, Any]:
    fresh = [r for r in records if not r.cached]
    latencies = np.array([r.latency_s for r in records if r.latency_s is not None])
    # A reply is priced if its provider or the config knew the price; replayed labels cost 0.
    replies = [r for r in records if r.label is not None or r.cost_usd is not None]
    cost_known = bool(replies) and all(r.cost_usd is not None for r in replies)
    fresh_known = all(r.cost_usd is not None for r in fresh if r.label is not None)
    return {
        "n_records": len(records),
        "failed_records": sum(r.failure is not None for r in records),
        "cache_hits": sum(r.cached for r in records),
        "calls_this_run": len(fresh),
        "attempts_this_run": sum(r.attempts for r in fresh),
        "input_tokens": sum(r.input_tokens or 0 for r in records),
        "output_tokens": sum(r.output_tokens or 0 for r in records),
        "cost_usd_this_run": _num(sum(r.cost_usd or 0.0 for r in fresh)) if fresh_known else None,
        "cost_usd_per_item": _num(sum(r.cost_usd or 0.0 for r in records) / n_items)
        if n_items and cost_known
        else None,
        "latency_s": {
            "p50": _num(np.percentile(latencies, 50)) if len(latencies) else None,
            "p95": _num(np.percentile(latencies, 95)) if len(latencies) else None,
            "n": len(latencies),
        },
    }
