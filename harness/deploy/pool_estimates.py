"""What the unlabeled pool holds: label prevalence by prediction-powered inference
(statistics.md section 12), the gold set correcting the pre-labeler's bias, next to the
naive LLM-only estimate (which inherits that bias) and the gold-only one."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.core.records import GoldSet
from harness.metrics.ppi import Estimate, prevalence
from harness.run.store import RunContext
from harness.score.json_numbers import num
from harness.score.predictions import CodedGoldSet, ItemPredictions
from harness.score.small_n import ppi_note


def _est(e: Estimate) -> dict[str, Any]:
    return {
        "estimate": num(e.estimate),
        "low": num(e.low),
        "high": num(e.high),
        "se": num(e.se),
        "n_gold": e.n,
        "n_unlabeled": e.N,
        "lambda": None if np.isnan(e.lam) else num(e.lam),
        "level": e.level,
    }


def _clusters_note(gold: GoldSet, coded: CodedGoldSet) -> str:
    n_clusters = len(np.unique(coded.clusters[coded.reference >= 0]))
    return (
        f"gold items clustered by {gold.cluster_by} ({n_clusters} clusters): the gold "
        "side's variance (the rectifier of PPI and PPI++, and the gold-only estimate) is "
        "cluster-robust; the pool's items count as independent"
    )


def pool_prevalence(
    ctx: RunContext, setup_id: str, source: str, pool_pred: np.ndarray
) -> dict[str, Any]:
    """Per label, four estimates of its share among the unlabeled items."""
    exp = ctx.experiment
    labels = list(exp.task.label_names)
    gold = ctx.gold_sets[0]
    coded = CodedGoldSet(gold, labels, exp.task.type, reference=exp.report.reference)
    records = [r for r in ctx.records if r.setup == setup_id and r.gold_set == gold.id]
    gold_pred = ItemPredictions(coded, records, source=source).pred
    # The gold set's clusters (cluster_by, statistics.md 3) widen the gold side's variance;
    # the pool's items are new items, kept independent.
    rows = prevalence(coded.reference, gold_pred, pool_pred, len(labels), clusters=coded.clusters)
    return {
        "gold_set": gold.id,
        "setup": setup_id,
        "method": "PPI (Angelopoulos et al. 2023) and PPI++ (power-tuned lambda); normal "
        "intervals; a failed label counts as no class on both sides, so the failure rates "
        "of gold and pool must be alike",
        # Below PPI_BELOW gold items the normal interval covers less than it says
        # (statistics.md 4): the note travels with the figures in estimates.json.
        "small_n": ppi_note(int((coded.reference >= 0).sum())),
        # Stated only when clustered, so an unclustered estimates.json is unchanged.
        **({"gold_clusters": _clusters_note(gold, coded)} if coded.clusters is not None else {}),
        "labels": [
            {
                "label": labels[r.label],
                "ppi": _est(r.ppi),
                "ppi_plus_plus": _est(r.ppi_plus_plus),
                "naive_llm_only": _est(r.naive),
                "gold_only": _est(r.classical),
                "failed_gold": r.n_failed_gold,
                "failed_pool": r.n_failed_unlabeled,
            }
            for r in rows
        ],
    }
