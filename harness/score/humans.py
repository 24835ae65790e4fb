"""Score, the humans' side: how the annotators agree with each other, the reference label
each item gets from them, and the majority-class baseline every setup is compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness import metrics as m
from harness.score import json_numbers as why
from harness.score.json_numbers import interval, with_note
from harness.score.json_numbers import num as _num
from harness.score.predictions import CodedGoldSet
from harness.score.reference import humans_block as dawid_skene_block
from harness.tasks import task_type


def human_block(coded: CodedGoldSet, level: float = 0.95) -> dict[str, Any]:
    k = len(coded.labels)
    ratings = coded.ratings
    per_item = (ratings >= 0).sum(axis=1)
    fleiss = m.fleiss_kappa(ratings, k)
    alpha = coded.humans_alpha
    names = coded.gold.annotators
    return {
        "n_items": len(coded.item_ids),
        "n_annotators": len(names),
        "annotators": list(names),
        "ratings_per_item": {
            "min": int(per_item.min()),
            "max": int(per_item.max()),
            "mean": _num(per_item.mean()),
        },
        "krippendorff_alpha": with_note(
            {"value": _num(alpha), "level": "nominal", "n_items": int((per_item >= 2).sum())},
            why.ALPHA_UNDEFINED,
        ),
        "fleiss_kappa": {
            "value": _num(fleiss),
            "n_items": len(coded.item_ids),
            "note": None
            if fleiss is not None and not np.isnan(fleiss)
            else "not computed: items have different numbers of ratings"
            if fleiss is None
            else "undefined: every rating is the same label (chance agreement is 1)",
        },
        "gwet_ac1": with_note(
            {"value": _num(m.gwet_ac1(ratings, k)), "n_items": int((per_item >= 2).sum())},
            why.GWET_UNDEFINED,
        ),
        "pairwise_kappa": [
            with_note(
                {
                    "a": names[p.annotator_a],
                    "b": names[p.annotator_b],
                    "n": p.n,
                    "kappa": _num(p.kappa),
                },
                "the two never labelled the same item" if p.n == 0 else why.KAPPA_UNDEFINED,
                key="kappa",
            )
            for p in m.pairwise_kappas(ratings, k)
        ],
        "label_distribution": label_counts(ratings[ratings >= 0], coded.labels),
        "reference_distribution": label_counts(coded.reference, coded.labels),
        "reference": {
            "method": task_type(coded.task_type).reference_method,
            "tie_rule": task_type(coded.task_type).tie_rule,
            "n_no_majority": int(coded.no_majority.sum()),
            "n_items": len(coded.item_ids),
            "used": coded.reference_used,
        },
        # Both references, where they differ, each annotator's estimated accuracy.
        "dawid_skene": dawid_skene_block(coded, level),
    }


def label_counts(codes: np.ndarray, labels: Sequence[str]) -> dict[str, int]:
    counts = m.label_distribution(np.asarray(codes), len(labels))
    return {label: int(c) for label, c in zip(labels, counts, strict=True)}


def baseline_block(coded: CodedGoldSet, n_boot: int, seed: int, level: float) -> dict[str, Any]:
    """The majority-class baseline: always answer the most frequent reference label."""
    k = len(coded.labels)
    counts = m.label_distribution(coded.reference, k)
    majority = int(np.argmax(counts))
    pred = np.full(len(coded.reference), majority)
    boot = {"n_boot": n_boot, "seed": seed, "level": level, "clusters": coded.clusters}
    return {
        "setup": "majority-class baseline",
        "label": coded.labels[majority],
        "n_items": len(pred),
        "accuracy": interval(m.accuracy_ci(coded.reference, pred, **boot)),
        "macro_f1": interval(m.macro_f1_ci(coded.reference, pred, k, **boot)),
        "kappa": {"estimate": 0.0, "low": 0.0, "high": 0.0, "n": len(pred), "level": level},
    }
