"""Scoring sets and rubrics by decomposition: a multi-label task is one yes/no
classification per label, a rubric is one ordinal scale per axis. Each part is scored by
the same code as a task of its own (agreement, ceiling, alpha, intervals), and a combined
view sits on top: set-level metrics for multi-label, means over axes for rubrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from harness import metrics as m
from harness.config import TaskConfig
from harness.core.records import GoldSet, LabelRecord, Setup
from harness.score import json_numbers as why
from harness.score.clusters import boot_at, cluster_codes, clustering_block, subset
from harness.score.json_numbers import interval as _iv
from harness.score.json_numbers import num as _num
from harness.score.json_numbers import with_note
from harness.score.parts import usage_block
from harness.score.selection_sets import ranking_block
from harness.tasks import task_type
from harness.tasks.ordinal import Ordinal
from harness.tasks.ranking import Ranking

YES_NO = ["no", "yes"]
NO_POSITIVE = "undefined: no label is chosen in either the reference or the answers"


def _mean_iv(values: list[float | None], n: int, level: float) -> dict[str, Any]:
    """A mean over parts: a summary, not an estimate with its own interval (see the parts)."""
    vals = [v for v in values if v is not None]
    block = {
        "estimate": _num(np.mean(vals)) if vals else None,
        "low": None,
        "high": None,
        "n": n,
        "level": level,
    }
    return with_note(block, why.NO_PART_VALUE)


def part_gold(gold: GoldSet, value: Callable[[Any], str | None]) -> GoldSet:
    """The gold set as seen by one part; items left without any annotation are dropped."""
    items, positions = [], []
    for i, item in enumerate(gold.items):
        annotations = {
            a: v for a, v in ((a, value(x)) for a, x in item.annotations.items()) if v is not None
        }
        if annotations:
            gold_value = value(item.gold) if item.gold is not None else None
            items.append(replace(item, annotations=annotations, gold=gold_value))
            positions.append(i)
    annotators = tuple(sorted({a for item in items for a in item.annotations}))
    return GoldSet(
        gold.id,
        gold.path,
        tuple(items),
        annotators,
        gold.content_hash,
        cluster_by=gold.cluster_by,
        clusters=subset(gold, positions),
        grouping_warning=gold.grouping_warning,
    )


def part_records(
    records: Sequence[LabelRecord], value: Callable[[Any], str | None], failure: str
) -> list[LabelRecord]:
    out = []
    for r in records:
        v = value(r.label) if r.label is not None else None
        if v is None:
            out.append(
                r.model_copy(
                    update={
                        "label": None,
                        "failure": r.failure or failure,
                        "confidence": None,
                        "label_probs": None,
                    }
                )
            )
        else:
            out.append(r.model_copy(update={"label": v, "confidence": None, "label_probs": None}))
    return out


def parts_of(task: TaskConfig) -> list[tuple[str, list[str], str, Callable[[Any], Any]]]:
    """(part name, its labels, its task type, how to read a part out of a label)."""
    kind = task_type(task.type)
    if kind.label_set:

        def member(label: str) -> Callable[[Any], str | None]:
            return lambda v: ("yes" if label in v else "no") if isinstance(v, list) else None

        return [(name, YES_NO, kind.part_type, member(name)) for name in task.label_names]

    def axis_of(axis: str) -> Callable[[Any], str | None]:
        return lambda v: v.get(axis) if isinstance(v, dict) else None

    return [
        (a.name, [lab.name for lab in a.labels], kind.part_type, axis_of(a.name)) for a in task.axes
    ]


def multilabel_arrays(
    gold: GoldSet, task: TaskConfig, records: Sequence[LabelRecord]
) -> tuple[np.ndarray, np.ndarray]:
    """(reference, prediction) 0/1 indicator rows per item (-1: none) of one setup."""
    names = task.label_names
    index = {item.id: i for i, item in enumerate(gold.items)}
    annotators = {a: j for j, a in enumerate(gold.annotators)}
    ratings = np.full((len(gold.items), len(annotators), len(names)), -1, dtype=np.int8)
    for i, item in enumerate(gold.items):
        for a, chosen in item.annotations.items():
            ratings[i, annotators[a]] = [name in chosen for name in names]
    pred = np.full((len(gold.items), len(names)), -1, dtype=np.int8)
    for r in records:  # the first answered sample of each item
        i = index.get(r.item)
        if i is not None and isinstance(r.label, list) and pred[i, 0] < 0:
            pred[i] = [name in r.label for name in names]
    return m.multilabel_reference(ratings), pred


def combined_multilabel(
    gold: GoldSet,
    task: TaskConfig,
    setup: Setup,
    records: Sequence[LabelRecord],
    parts: list[dict[str, Any]],
    boot: dict[str, Any],
) -> dict[str, Any]:
    ref, pred = multilabel_arrays(gold, task, records)
    scores = m.multilabel_metrics(ref, pred)
    boot = boot_at(boot, cluster_codes(gold.clusters))
    return _combined(
        setup,
        parts,
        boot,
        len(gold.items),
        int((pred[:, 0] >= 0).sum()),
        {
            "accuracy": _iv(m.multilabel_ci(ref, pred, "exact_match", **boot)),
            "macro_f1": _iv(m.multilabel_ci(ref, pred, "macro_f1", **boot), NO_POSITIVE),
            "micro_f1": _iv(m.multilabel_ci(ref, pred, "micro_f1", **boot), NO_POSITIVE),
            "jaccard": _iv(m.multilabel_ci(ref, pred, "jaccard", **boot)),
            "exact_match": _num(scores.exact_match),
        },
    )


def combined_rubric(
    gold: GoldSet, setup: Setup, parts: list[dict[str, Any]], boot: dict[str, Any]
) -> dict[str, Any]:
    level = boot["level"]
    blocks = [p["setup"] for p in parts]
    n = len(gold.items)
    answered = max((b["coverage"]["answered"] for b in blocks), default=0)
    return _combined(
        setup,
        parts,
        boot,
        n,
        answered,
        {
            "accuracy": _mean_iv([b["accuracy"]["estimate"] for b in blocks], n, level),
            "macro_f1": _mean_iv([b["macro_f1"]["estimate"] for b in blocks], n, level),
            "within_one": _mean_iv(
                [b[Ordinal.name]["within_one"]["estimate"] for b in blocks], n, level
            ),
            "kappa_quadratic": _mean_iv(
                [b[Ordinal.name]["kappa_quadratic"]["estimate"] for b in blocks], n, level
            ),
        },
    )


def _combined(
    setup: Setup,
    parts: list[dict[str, Any]],
    boot: dict[str, Any],
    n: int,
    answered: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    blocks = [p["setup"] for p in parts]
    usage = blocks[0]["usage"] if blocks else {}
    return {
        "setup": setup.id,
        "prompt": setup.prompt_id,
        "model": setup.model_id,
        "n_items": n,
        "coverage": with_note(
            {"value": _num(answered / n) if n else None, "answered": answered, "n": n},
            why.NO_ITEMS,
        ),
        "kappa": _mean_iv([b["kappa"]["estimate"] for b in blocks], n, boot["level"]),
        "human_ceiling": with_note(
            {
                "ratio_kappa": _num(
                    np.mean(
                        [
                            b["human_ceiling"]["ratio_kappa"]
                            for b in blocks
                            if b["human_ceiling"]["ratio_kappa"] is not None
                        ]
                        or [np.nan]
                    )
                )
            },
            "no part has a ceiling ratio (see the parts' human_ceiling notes)",
            key="ratio_kappa",
        ),
        "calibration": None,
        "usage": usage,
        "parts": {
            p["name"]: {k: p["setup"][k] for k in ("kappa", "accuracy", "macro_f1")} for p in parts
        },
        **extra,
    }


# --------------------------------------------------------------------------------- ranking


def _order_codes(order: Any, ids: list[str]) -> list[int] | None:
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(ids):
        return None
    return [ids.index(str(c)) for c in order]


def score_ranking_gold_set(
    gold: GoldSet,
    setups: Sequence[Setup],
    records_of: Callable[[str], list[LabelRecord]],
    space: Any,
    boot: dict[str, Any],
) -> dict[str, Any]:
    """Best-of-N: top-1 agreement with the Borda consensus, Kendall's tau and Spearman's rho
    against it and against each annotator, and the leave-one-annotator-out ceiling."""
    items = gold.items
    n_cand = len(space.candidate_ids(items[0].fields) or [])
    annotators = {a: j for j, a in enumerate(gold.annotators)}
    rankings = np.full((len(items), len(annotators), n_cand), -1, dtype=np.int64)
    index = {}
    for i, item in enumerate(items):
        ids = space.candidate_ids(item.fields) or []
        index[item.id] = (i, ids)
        for a, order in item.annotations.items():
            codes = _order_codes(order, ids)
            if codes is not None and len(codes) == n_cand:
                rankings[i, annotators[a]] = codes
    ref = m.borda_reference(rankings)
    clustered = boot_at(boot, cluster_codes(gold.clusters))
    blocks, preds = [], {}
    for setup in setups:
        pred = np.full((len(items), n_cand), -1, dtype=np.int64)
        preds[setup.id] = pred
        failures: dict[str, int] = {}
        for r in records_of(setup.id):
            i, ids = index.get(r.item, (None, []))
            codes = _order_codes(r.label, ids) if i is not None else None
            if codes is not None and len(codes) == n_cand and pred[i, 0] < 0:
                pred[i] = codes
        for i in np.flatnonzero(pred[:, 0] < 0):
            reason = next(
                (r.failure for r in records_of(setup.id) if r.item == items[i].id and r.failure),
                "not_run",
            )
            failures[reason] = failures.get(reason, 0) + 1
        scores = m.ranking_metrics(ref, pred)
        ceiling = m.ranking_human_ceiling(rankings, pred)
        tau_ann, rho_ann, n_pairs = m.ranking_against_annotators(rankings, pred)
        records = records_of(setup.id)
        top1 = _iv(m.ranking_ci(ref, pred, "top1", **clustered))
        tau = _iv(m.ranking_ci(ref, pred, "tau", **clustered), why.NO_ANSWERS)
        rho = _iv(m.ranking_ci(ref, pred, "rho", **clustered), why.NO_ANSWERS)
        blocks.append(
            {
                "setup": setup.id,
                "prompt": setup.prompt_id,
                "model": setup.model_id,
                "n_items": int(scores.n),
                "coverage": with_note(
                    {
                        "value": _num(scores.coverage),
                        "answered": int(scores.n_answered),
                        "n": int(scores.n),
                    },
                    why.NO_ITEMS,
                ),
                # The common leaderboard columns: kappa holds tau, accuracy top-1, macro_f1 rho.
                "kappa": tau,
                "accuracy": top1,
                "macro_f1": rho,
                Ranking.name: {
                    "top1": dict(top1),
                    "tau": dict(tau),
                    "rho": dict(rho),
                    "against_annotators": with_note(
                        {"tau": _num(tau_ann), "rho": _num(rho_ann), "n_pairs": int(n_pairs)},
                        "not computed: no item ranked by both the LLM and an annotator",
                        key="tau",
                    ),
                },
                "human_ceiling": _ranking_ceiling_note(
                    {
                        "method": "leave-one-annotator-out against the Borda ranking of the others",
                        "human_tau": _num(ceiling.human_tau),
                        "llm_tau": _num(ceiling.llm_tau),
                        "human_rho": _num(ceiling.human_rho),
                        "llm_rho": _num(ceiling.llm_rho),
                        "human_top1": _num(ceiling.human_top1),
                        "llm_top1": _num(ceiling.llm_top1),
                        "ratio_kappa": _num(ceiling.ratio_tau),
                        "ratio_rho": _num(ceiling.ratio_rho),
                        "n_pairs": int(ceiling.n_pairs),
                    }
                ),
                "calibration": None,
                "failures": failures,
                "usage": _ranking_usage(records, int(scores.n)),
            }
        )
    return {
        "id": gold.id,
        "path": gold.path,
        "content_hash": gold.content_hash,
        "clustering": clustering_block(gold),
        "humans": {
            "n_items": len(items),
            "n_annotators": len(annotators),
            "n_candidates": n_cand,
            "krippendorff_alpha": {
                "value": None,
                "level": "not defined for rankings",
                "n_items": len(items),
                "note": "not computed: alpha is not defined for rankings (see the setups' "
                "tau and rho against each annotator)",
            },
        },
        "setups": blocks,
        "selection_adjusted": ranking_block(ref, preds, blocks, clustered),
        Ranking.name: True,
    }


def _ranking_ceiling_note(block: dict[str, Any]) -> dict[str, Any]:
    """The ranking ceiling, with a note when its tau ratio (the leaderboard's) is null."""
    if block["ratio_kappa"] is not None:
        return block
    if block["n_pairs"] == 0:
        block["note"] = (
            "no ceiling: no item was ranked by two annotators, so none can be held out "
            "against the others"
        )
    elif block["human_tau"] is None or block["llm_tau"] is None:
        side = "the annotators'" if block["human_tau"] is None else "the LLM's"
        block["note"] = f"ratio undefined: {side} tau is undefined on these items"
    else:
        block["note"] = "ratio undefined: it needs a positive tau of the held-out annotators"
    return block


def _ranking_usage(records: Sequence[LabelRecord], n_items: int) -> dict[str, Any]:
    return usage_block(records, n_items)
