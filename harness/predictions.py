"""Labels as arrays: a gold set's ratings and reference labels, and one setup's predictions
per item, coded as integers 0..K-1 (-1 = missing or failed) for the pure metrics."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from harness import metrics as m
from harness.records import GoldSet, LabelRecord


class CodedGoldSet:
    """A gold set as integer arrays: ratings (items x annotators), reference labels."""

    def __init__(self, gold: GoldSet, labels: Sequence[str], task_type: str = "classification"):
        self.gold = gold
        self.task_type = task_type
        self.labels = list(labels)
        code = {label: i for i, label in enumerate(labels)}
        self.code = code
        self.item_ids = [item.id for item in gold.items]
        self.index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        ann_index = {a: j for j, a in enumerate(gold.annotators)}
        ratings = np.full((len(gold.items), len(gold.annotators)), -1, dtype=np.int64)
        tie_break = np.full(len(gold.items), -1, dtype=np.int64)
        for i, item in enumerate(gold.items):
            for annotator, label in item.annotations.items():
                ratings[i, ann_index[annotator]] = code[label]
            if item.gold is not None:
                tie_break[i] = code[item.gold]
        self.ratings = ratings
        self.reference, self.no_majority = m.majority_vote(ratings, len(labels), tie_break)
        if task_type == "ordinal":  # the median of an ordered scale (lower median on ties)
            self.reference = m.median_label(ratings, len(labels))
        elif task_type == "pairwise" and "tie" in code:
            # A crowd split between A and B is no verdict for either: call it a tie rather
            # than favour the first-listed outcome (which would bias the reference to A).
            adjudicated = np.where(tie_break >= 0, tie_break, code["tie"])
            self.reference = np.where(self.no_majority, adjudicated, self.reference)


class ItemPredictions:
    """One prediction per item of one setup: the mode over samples, with a confidence.

    Pairwise items asked in both orders get one verdict per order (`original`,
    `swapped`, the latter already mapped back to A/B as stored), combined by
    `metrics.combine_orders`: equal verdicts stand, conflicting ones become a tie.
    """

    def __init__(self, coded: CodedGoldSet, records: Iterable[LabelRecord]):
        by_item: dict[int, list[LabelRecord]] = defaultdict(list)
        for r in records:
            if r.item in coded.index:
                by_item[coded.index[r.item]].append(r)
        self.records = [r for recs in by_item.values() for r in recs]
        self.labels = coded.labels
        self.sources: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.samples = max((sum(not r.swapped for r in v) for v in by_item.values()), default=0)
        self.pred, self.confidence = self._modes(coded, by_item, swapped=False)
        self.original = self.swapped = None
        if any(r.swapped for r in self.records):
            self.original = self.pred
            self.swapped, conf_swapped = self._modes(coded, by_item, swapped=True, count=False)
            self.pred, consistent = m.combine_orders(self.original, self.swapped)
            both = ~np.isnan(self.confidence) & ~np.isnan(conf_swapped)
            # A conflict became a tie that neither order chose: no confidence for it.
            self.confidence = np.where(both, (self.confidence + conf_swapped) / 2, np.nan)
            self.confidence[~consistent] = np.nan
        for i in np.flatnonzero(self.pred < 0):  # every unanswered item, with its reason
            recs = by_item.get(int(i), [])
            failed = [r.failure for r in recs if r.failure]
            self.failures[failed[0] if failed else ("not_run" if not recs else "no_label")] += 1

    def _modes(
        self,
        coded: CodedGoldSet,
        by_item: dict[int, list[LabelRecord]],
        *,
        swapped: bool,
        count: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(coded.item_ids)
        pred = np.full(n, -1, dtype=np.int64)
        confidence = np.full(n, np.nan)
        for i in range(n):
            recs = [r for r in by_item.get(i, []) if r.swapped == swapped]
            votes = Counter(coded.code[r.label] for r in recs if r.label in coded.code)
            if not votes:
                continue
            top = max(votes.values())
            # The mode; ties go to the label listed first in the task (deterministic).
            pred[i] = min(c for c, v in votes.items() if v == top)
            if len(recs) > 1:
                confidence[i] = top / len(recs)
                if count:
                    self.sources["self_consistency"] += 1
            elif recs[0].confidence is not None:
                confidence[i] = recs[0].confidence
                if count:
                    self.sources[recs[0].confidence_source or "unknown"] += 1
        return pred, confidence
