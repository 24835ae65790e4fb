"""Annotator groups (experts / crowd, one language's raters...): does a setup agree with one
group more than another, and how far apart are the groups themselves?

Each group gets its own reference label, built by the same rule as the whole gold set's
(majority, ordinal median, pairwise split -> tie) from that group's ratings only, on the
items the group labelled. A setup is then scored against every group's reference.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from harness import metrics as m
from harness.core.records import GoldSet
from harness.score import json_numbers as why
from harness.score.clusters import boot_at, subset
from harness.score.json_numbers import interval, num, with_note
from harness.score.predictions import CodedGoldSet


class GroupReferences:
    """Per group: the positions of its items in the whole gold set and its coded sub-set."""

    def __init__(self, coded: CodedGoldSet):
        self.groups: dict[str, tuple[np.ndarray, CodedGoldSet]] = {}
        gold = coded.gold
        for name, members in (gold.annotator_groups or {}).items():
            keep = set(members)
            items, positions = [], []
            for i, item in enumerate(gold.items):
                notes = {a: v for a, v in item.annotations.items() if a in keep}
                if notes:
                    items.append(replace(item, annotations=notes))
                    positions.append(i)
            if not items:
                continue
            sub = GoldSet(
                gold.id,
                gold.path,
                tuple(items),
                tuple(sorted(keep)),
                gold.content_hash,
                cluster_by=gold.cluster_by,
                clusters=subset(gold, positions),
            )
            self.groups[name] = (
                np.array(positions),
                CodedGoldSet(sub, coded.labels, coded.task_type),
            )

    def humans(self, coded: CodedGoldSet, boot: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Each group's own agreement, and how its reference compares with everyone's."""
        if not self.groups:
            return None
        k = len(coded.labels)
        rows = []
        for name, (pos, sub) in self.groups.items():
            per_item = (sub.ratings >= 0).sum(axis=1)
            several = int((sub.ratings >= 0).any(axis=0).sum()) >= 2
            rows.append(
                {
                    "group": name,
                    "annotators": list(sub.gold.annotators),
                    "n_items": len(pos),
                    # One rater has no agreement with itself: alpha needs two per item.
                    "krippendorff_alpha": with_note(
                        {
                            "value": num(
                                m.krippendorff_alpha(
                                    m.reliability_matrix(sub.ratings), "nominal", n_values=k
                                )
                            )
                            if several
                            else None,
                            "n_items": int((per_item >= 2).sum()),
                        },
                        why.ALPHA_UNDEFINED
                        if several
                        else "not computed: one annotator has no agreement with itself",
                    ),
                    "kappa_vs_reference": interval(
                        m.kappa_ci(
                            coded.reference[pos], sub.reference, k, **boot_at(boot, sub.clusters)
                        ),
                        why.KAPPA_UNDEFINED,
                    ),
                }
            )
        return rows

    def setup(self, pred: np.ndarray, n_classes: int, boot: dict[str, Any]) -> list[dict[str, Any]]:
        """The setup against each group's reference, on the items that group labelled."""
        return [
            {
                "group": name,
                "n": len(pos),
                "accuracy": interval(
                    m.accuracy_ci(sub.reference, pred[pos], **boot_at(boot, sub.clusters))
                ),
                "kappa": interval(
                    m.kappa_ci(sub.reference, pred[pos], n_classes, **boot_at(boot, sub.clusters)),
                    why.KAPPA_UNDEFINED,
                ),
            }
            for name, (pos, sub) in self.groups.items()
        ]
