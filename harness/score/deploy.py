"""The per-setup figures behind the deploy decision (statistics.md sections 5 and 6):
recalibration before/after, the auto-accept threshold on the confidence the config chose
(recalibrated when asked), slices per meta value and per annotator group, the direction of
disagreement, stability over samples, and the Alternative Annotator Test."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.metrics.cross_fit import cluster_folds, cross_fit
from harness.score.clusters import at
from harness.score.disagreements import disagreements
from harness.score.ece import EceIntervals
from harness.score.groups import GroupReferences
from harness.score.predictions import CodedGoldSet, ItemPredictions
from harness.score.recalibration import recalibration_block
from harness.score.selective import selective_block
from harness.score.slices import label_bias, slices_block
from harness.score.stability import alt_test_block, intra_prompt_block

# Items shown per setup in metrics.json and the HTML report, confident mistakes first; the
# count of all disagreements is always given.
MAX_DISAGREEMENTS = 300


def decision_confidence(
    ref: np.ndarray,
    preds: ItemPredictions,
    method: str,
    recal: dict[str, Any] | None,
    seed: int,
    clusters: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """The confidence that auto-accept thresholds are fitted on, and what it is.

    With recalibration, the gold items get their out-of-fold values (each from a map fitted
    without the item's own label), so the threshold is not fitted on the recalibrator's
    own training data; new items get the map fitted on all gold items (issue 7). With
    ``clusters`` the folds hold whole clusters, as in the recalibration block.
    """
    if method == "none" or recal is None:
        return preds.confidence, "raw"
    has = ~np.isnan(preds.confidence) & (preds.pred >= 0) & (ref >= 0)
    out = np.full(len(ref), np.nan)
    correct = (preds.pred[has] == ref[has]).astype(float)
    folds, codes = cluster_folds(int(has.sum()), recal["folds"], at(clusters, has))
    out[has] = cross_fit(method, preds.confidence[has], correct, folds, seed, clusters=codes)
    by = " by cluster" if codes is not None else ""
    return out, f"recalibrated ({method}, out-of-fold{by})"


def deploy_blocks(
    coded: CodedGoldSet,
    preds: ItemPredictions,
    decision: dict[str, Any],
    boot: dict[str, Any],
    slices: dict[str, dict[str, np.ndarray]],
    groups: GroupReferences,
    shared: EceIntervals | None = None,
) -> dict[str, Any]:
    ref, pred, k = coded.reference, preds.pred, len(coded.labels)
    has = ~np.isnan(preds.confidence) & (pred >= 0) & (ref >= 0)
    method = decision.get("recalibration", "none")
    # Binary maps on the top-label confidence: per-item label distributions are not kept
    # for every source, so multi-class temperature scaling is not used here.
    recal = recalibration_block(
        preds.confidence[has],
        (pred[has] == ref[has]).astype(float),
        method,
        boot,
        shared=shared,
        within=has,
        clusters=at(coded.clusters, has),
    )
    conf, kind = decision_confidence(ref, preds, method, recal, boot["seed"], coded.clusters)
    selective = selective_block(
        ref, pred, conf, decision["target_error"], decision["delta"], boot["seed"], coded.clusters
    )
    if selective is not None:
        selective["confidence"] = kind
    out: dict[str, Any] = {
        "slices": slices_block(slices, ref, pred, k, boot, coded.clusters),
        "label_bias": label_bias(ref, pred, coded.labels),
        "recalibration": recal,
        "selective": selective,
    }
    if groups.groups:
        out["annotator_groups"] = groups.setup(pred, k, boot)
    out["stability"] = intra_prompt_block(coded, preds.records, boot)
    out["disagreements"] = disagreements(coded, preds, limit=MAX_DISAGREEMENTS)
    out["alt_test"] = alt_test_block(coded, pred, decision.get("alt_test") or {})
    return out
