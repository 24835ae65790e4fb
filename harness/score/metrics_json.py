"""Score: label records + gold sets -> every number of the report (the metrics.json dict).

The statistics are pure functions in `harness.metrics`; this station only codes labels as
integers, aggregates samples per item, and lays the results out with the n behind each
number and an interval wherever it is an estimate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness import metrics as m
from harness import tasks as tasks_registry
from harness.config import TaskConfig
from harness.core.records import GoldSet, LabelRecord, Setup
from harness.score import json_numbers as why
from harness.score import structured as st
from harness.score import tasks
from harness.score.clusters import boot_at, cluster_codes, clustering_block
from harness.score.compare import compare_setups
from harness.score.confidence import confidence_sources_block
from harness.score.deploy import deploy_blocks
from harness.score.ece import EceIntervals
from harness.score.groups import GroupReferences
from harness.score.humans import baseline_block, human_block, label_counts
from harness.score.json_numbers import interval, note_nulls, with_note
from harness.score.json_numbers import num as _num
from harness.score.parts import calibration_block, ceiling_block, usage_block
from harness.score.power import power_basis, power_block
from harness.score.predictions import CodedGoldSet, ItemPredictions
from harness.score.reference import llm_block
from harness.score.selection import selection_block
from harness.score.selection_sets import multilabel_block
from harness.score.slices import slice_index
from harness.score.small_n import small_n_notes
from harness.score.stability import inter_prompt_blocks
from harness.tasks.labelspace import LabelSpace

SCHEMA_VERSION = 1
DEFAULT_DECISION = {"target_error": 0.05, "delta": 0.1, "recalibration": "none"}


def setup_block(
    coded: CodedGoldSet,
    setup: Setup,
    preds: ItemPredictions,
    n_boot: int,
    seed: int,
    level: float,
    shared: EceIntervals | None = None,
) -> dict[str, Any]:
    """One setup's agreement, calibration and usage; ECE intervals go to ``shared`` (the
    gold set's, filled by score_gold_set) or are filled here."""
    k = len(coded.labels)
    ref, pred = coded.reference, preds.pred
    boot = {"n_boot": n_boot, "seed": seed, "level": level}
    cm = m.classification_metrics(ref, pred, k)
    answered = pred >= 0
    # Whole clusters resampled (statistics.md 3); answered-only: the answered items' clusters.
    every, only = boot_at(boot, coded.clusters), boot_at(boot, coded.clusters, answered)
    tie = tasks_registry.task_type(coded.task_type).tie_label
    split = coded.code.get(tie) if tie else None
    ceiling = m.human_ceiling(coded.ratings, pred, k, split_code=split)
    with_llm = np.column_stack([coded.ratings, pred])
    # Against each annotator on the items they labelled; a failed item is a category of its
    # own that never matches (as in the kappa against the reference), not dropped.
    per_annotator = [
        float(m.kappa_from_confusion(m.confusion(coded.ratings[:, j], pred, k)))
        for j in range(coded.ratings.shape[1])
        if (coded.ratings[:, j] >= 0).sum() >= 2
    ]
    per_annotator = [x for x in per_annotator if not np.isnan(x)]
    block: dict[str, Any] = {
        "setup": setup.id,
        "prompt": setup.prompt_id,
        "model": setup.model_id,
        "n_items": int(cm.n),
        "samples_per_item": preds.samples,
        "coverage": with_note(
            {"value": _num(cm.coverage), "answered": int(cm.n_answered), "n": int(cm.n)},
            why.NO_ITEMS,
        ),
        "accuracy": interval(m.accuracy_ci(ref, pred, **every)),
        "accuracy_answered": interval(
            m.accuracy_ci(ref[answered], pred[answered], **only), empty=why.NO_ANSWERS
        ),
        "macro_f1": interval(m.macro_f1_ci(ref, pred, k, **every)),
        "macro_f1_answered": interval(
            m.macro_f1_ci(ref[answered], pred[answered], k, **only), empty=why.NO_ANSWERS
        ),
        "kappa": interval(m.kappa_ci(ref, pred, k, **every), why.KAPPA_UNDEFINED),
        "mean_kappa_vs_annotators": with_note(
            {
                "value": _num(np.mean(per_annotator)) if per_annotator else None,
                "n_annotators": len(per_annotator),
            },
            why.NO_ANNOTATOR_KAPPA,
        ),
        "per_class": [
            _class_row(label, c) for label, c in zip(coded.labels, cm.per_class, strict=True)
        ],
        "confusion": {
            "rows": coded.labels,
            "columns": [*coded.labels, "(failed)"],
            "matrix": np.asarray(cm.confusion).astype(int).tolist(),
        },
        "human_ceiling": ceiling_block(ceiling, coded.gold.annotators),
        "alpha": note_nulls(
            {
                "humans": _num(coded.humans_alpha),
                "humans_plus_llm": _num(
                    m.krippendorff_alpha(m.reliability_matrix(with_llm), "nominal", n_values=k)
                ),
                "level": "nominal",
                "n_items": int(cm.n),
                "llm_failures": "missing ratings (alpha allows them): see coverage",
            },
            ("humans", "humans_plus_llm"),
            why.ALPHA_UNDEFINED,
        ),
        "calibration": calibration_block(ref, pred, preds, boot, shared),
        "confidence_sources": confidence_sources_block(
            ref, pred, preds, preds.source, boot, shared
        ),
        "failures": dict(sorted(preds.failures.items())),
        "label_distribution": label_counts(pred[answered], coded.labels),
        "usage": usage_block(preds.records, cm.n),
    }
    if small := small_n_notes(block):  # statistics.md section 4
        block["small_n"] = small
    return block


def _class_row(label: str, c: m.ClassScores) -> dict[str, Any]:
    """One class's scores; the undefined ones (a class never predicted or never in the
    reference) are null, and the row says which and why."""
    row = {
        "label": label,
        "precision": _num(c.precision),
        "recall": _num(c.recall),
        "f1": _num(c.f1),
        "support": int(c.support),
    }
    gaps = []
    if row["precision"] is None:
        gaps.append("precision: the label is never predicted")
    if row["recall"] is None:
        gaps.append("recall: the label is not in the reference")
    if gaps:
        row["note"] = "undefined " + "; ".join(gaps)
    return row


def score_gold_set(
    gold: GoldSet,
    setups: Sequence[Setup],
    records_of: Callable[[str], list[LabelRecord]],
    labels: Sequence[str],
    task_type: str,
    boot: dict[str, Any],
    task: TaskConfig | None = None,
    decision: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One gold set (or one part of a structured task): humans, every setup, the baseline."""
    decision = decision or DEFAULT_DECISION
    coded = CodedGoldSet(gold, labels, task_type, decision.get("reference", "majority"))
    humans = human_block(coded, boot["level"])
    # The task type's own section (ordinal levels, pairwise position bias), under its name.
    section = tasks.section_of(coded, task_type, task)
    if section is not None:
        humans[task_type] = section.humans()
    blocks = []
    slices = slice_index(gold.items)
    groups = GroupReferences(coded)
    if groups.groups:
        humans["annotator_groups"] = groups.humans(coded, boot)
    predictions: dict[str, np.ndarray] = {}
    # Every ECE interval of every setup on one set of resamples, evaluated on a second core
    # while the next setups are scored (with three or more: one or two are done at the end).
    shared = EceIntervals(
        len(coded.reference), boot, background=len(setups) > 2, clusters=coded.clusters
    )
    try:
        for setup in setups:
            preds = ItemPredictions(coded, records_of(setup.id), source=setup.confidence)
            predictions[setup.id] = preds.pred
            block = setup_block(
                coded, setup, preds, boot["n_boot"], boot["seed"], boot["level"], shared
            )
            block.update(deploy_blocks(coded, preds, decision, boot, slices, groups, shared))
            if section is not None:
                block[task_type] = section.setup(preds, boot)
            block["dawid_skene"] = llm_block(coded, preds.pred, boot["level"])
            blocks.append(block)
            shared.start()  # this setup's ECE intervals, on the other core meanwhile
        shared.fill()
    finally:
        shared.close()
    return {
        "id": gold.id,
        "path": gold.path,
        "content_hash": gold.content_hash,
        "clustering": clustering_block(gold),
        "humans": humans,
        "setups": blocks,
        "baseline": baseline_block(coded, boot["n_boot"], boot["seed"], boot["level"]),
        "comparisons": compare_setups(
            coded.reference, predictions, len(labels), boot, clusters=coded.clusters
        ),
        "selection_adjusted": selection_block(
            coded.reference, predictions, blocks, len(labels), boot, clusters=coded.clusters
        ),
        "prompt_stability": inter_prompt_blocks(
            coded, setups, predictions, decision.get("prompt_groups") or {}, boot
        ),
        "power": power_block(
            power_basis(coded.reference, predictions, len(labels), boot, coded.clusters),
            decision.get("power"),
        ),
    }


def score_structured_gold_set(
    gold: GoldSet,
    setups: Sequence[Setup],
    records_of: Callable[[str], list[LabelRecord]],
    task: TaskConfig,
    boot: dict[str, Any],
    reference: str = "majority",
) -> dict[str, Any]:
    """Multi-label and rubric tasks: every label / axis scored as a task of its own."""
    parts = []
    for name, part_labels, part_type, value in st.parts_of(task):
        sub = st.part_gold(gold, value)
        if not sub.items:
            continue
        scored = score_gold_set(
            sub,
            setups,
            lambda sid, v=value: st.part_records(records_of(sid), v, "part_failed"),
            part_labels,
            part_type,
            boot,
            decision={**DEFAULT_DECISION, "reference": reference},
        )
        parts.append({"name": name, "type": part_type, "labels": part_labels, **scored})
    combined = []
    for i, setup in enumerate(setups):
        per_setup = [{"name": p["name"], "setup": p["setups"][i]} for p in parts]
        if tasks_registry.task_type(task.type).label_set:
            combined.append(
                st.combined_multilabel(gold, task, setup, records_of(setup.id), per_setup, boot)
            )
        else:
            combined.append(st.combined_rubric(gold, setup, per_setup, boot))
    adjusted = None
    if tasks_registry.task_type(task.type).label_set:  # a rubric is adjusted per axis (parts)
        arrays = {s.id: st.multilabel_arrays(gold, task, records_of(s.id)) for s in setups}
        ref = next(iter(arrays.values()))[0] if arrays else np.empty((0, 1))
        adjusted = multilabel_block(
            ref,
            {s: pred for s, (_, pred) in arrays.items()},
            combined,
            boot_at(boot, cluster_codes(gold.clusters)),
        )
    alphas = [p["humans"]["krippendorff_alpha"]["value"] for p in parts]
    alphas = [a for a in alphas if a is not None]
    return {
        "id": gold.id,
        "path": gold.path,
        "content_hash": gold.content_hash,
        "clustering": clustering_block(gold),
        "humans": {
            "n_items": len(gold.items),
            "n_annotators": len(gold.annotators),
            "krippendorff_alpha": with_note(
                {
                    "value": _num(np.mean(alphas)) if alphas else None,
                    "level": "mean over parts",
                    "n_items": len(gold.items),
                },
                why.NO_PART_VALUE,
            ),
        },
        "setups": combined,
        **({"selection_adjusted": adjusted} if adjusted is not None else {}),
        "parts": parts,
    }


def score_run(
    gold_sets: Sequence[GoldSet],
    setups: Sequence[Setup],
    records: Sequence[LabelRecord],
    labels: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    task: TaskConfig | None = None,
    target_error: float = 0.05,
    delta: float = 0.1,
    recalibration: str = "none",
    alt_test: dict[str, Any] | None = None,
    prompt_groups: dict[str, str] | None = None,
    reference: str = "majority",
    power: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every metric, per gold set and setup; the dict written as metrics.json."""
    decision = {
        "target_error": target_error,
        "delta": delta,
        "recalibration": recalibration,
        "alt_test": alt_test or {},
        "prompt_groups": prompt_groups or {},
        "reference": reference,
        "power": power or {},
    }
    task_type = task.type if task else tasks_registry.DEFAULT
    scoring = tasks_registry.task_type(task_type).scoring
    boot = {"n_boot": n_boot, "seed": seed, "level": level}
    by_key: dict[tuple[str, str], list[LabelRecord]] = defaultdict(list)
    for r in records:
        by_key[(r.gold_set, r.setup)].append(r)
    out_sets = []
    board = []
    for gold in gold_sets:

        def records_of(setup_id: str, gold_id: str = gold.id) -> list[LabelRecord]:
            return by_key.get((gold_id, setup_id), [])

        if task is not None and scoring == "parts":
            scored = score_structured_gold_set(gold, setups, records_of, task, boot, reference)
        elif task is not None and scoring == "orders":
            scored = st.score_ranking_gold_set(gold, setups, records_of, LabelSpace(task), boot)
        else:
            scored = score_gold_set(
                gold, setups, records_of, labels, task_type, boot, task, decision
            )
        out_sets.append(scored)
        board.extend(_board_row(gold.id, block) for block in scored["setups"])
    board.sort(key=lambda r: (r["gold_set"], -(r["kappa"] if r["kappa"] is not None else -9)))
    return {
        "schema_version": SCHEMA_VERSION,
        "task_type": task_type,
        "labels": list(labels),
        "bootstrap": {
            "n_boot": n_boot,
            "seed": seed,
            "level": level,
            "method": "percentile, resampling items; BCa for accuracy, kappa and macro-F1 "
            "below 100 resampled items or clusters (statistics.md section 4)",
        },
        "gold_sets": out_sets,
        "leaderboard": board,
    }


def _board_row(gold_id: str, b: dict[str, Any]) -> dict[str, Any]:
    cal = b["calibration"]
    return {
        "gold_set": gold_id,
        "setup": b["setup"],
        "n_items": b["n_items"],
        "kappa": b["kappa"]["estimate"],
        "kappa_low": b["kappa"]["low"],
        "kappa_high": b["kappa"]["high"],
        "accuracy": b["accuracy"]["estimate"],
        "accuracy_low": b["accuracy"]["low"],
        "accuracy_high": b["accuracy"]["high"],
        "macro_f1": b["macro_f1"]["estimate"],
        "coverage": b["coverage"]["value"],
        "ceiling_ratio_kappa": b["human_ceiling"]["ratio_kappa"],
        "ece": cal["ece"]["estimate"] if cal else None,
        "cost_usd_per_item": b["usage"]["cost_usd_per_item"],
        "latency_p50_s": b["usage"]["latency_s"]["p50"],
    }
