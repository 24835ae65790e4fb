"""Labels as arrays: a gold set's ratings and reference labels, and one setup's predictions
per item, coded as integers 0..K-1 (-1 = missing or failed) for the pure metrics."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np

from harness import metrics as m
from harness import tasks
from harness.core.records import GoldSet, LabelRecord
from harness.metrics.dawid_skene import DawidSkeneFit
from harness.score.clusters import cluster_codes
from harness.score.reference import REFERENCES, fit_humans, reference_codes


class CodedGoldSet:
    """A gold set as integer arrays: ratings (items x annotators), reference labels."""

    def __init__(
        self,
        gold: GoldSet,
        labels: Sequence[str],
        task_type: str = tasks.DEFAULT,
        reference: str = "majority",
    ):
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        self.gold = gold
        self.task_type = task_type
        self.labels = list(labels)
        code = {label: i for i, label in enumerate(labels)}
        self.code = code
        self.item_ids = [item.id for item in gold.items]
        self.index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        # Each item's cluster as a code (None: items are independent): every interval of
        # this gold set resamples whole clusters (score/clusters.py, statistics.md 3).
        self.clusters = cluster_codes(gold.clusters)
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
        # The task type's rule: majority, the median of an ordered scale, ties for pairs...
        self.reference = tasks.task_type(self.task_type).reference(
            ratings, len(labels), self.reference, self.no_majority, tie_break, code
        )
        # Both references are kept (report.reference picks one; statistics.md 6).
        self.rule_reference, self.reference_used = self.reference, reference
        if reference == "dawid_skene":
            self.reference = reference_codes(self)

    @cached_property
    def dawid_skene(self) -> DawidSkeneFit:
        """The annotators' Dawid-Skene model: fitted once, when first asked for."""
        return fit_humans(self.ratings, len(self.labels))

    @cached_property
    def humans_alpha(self) -> float:
        """Nominal Krippendorff's alpha of the annotators: once per gold set, not once per
        setup block that shows it."""
        matrix = m.reliability_matrix(self.ratings)
        return float(m.krippendorff_alpha(matrix, "nominal", n_values=len(self.labels)))


# Confidence sources in the order they are reported; any other source name follows.
SOURCE_ORDER = ("logprobs", "verbalized", "self_consistency", "replay")


def sample_confidence(record: LabelRecord, source: str) -> float | None:
    """One sample's confidence in its own label from `source` ("logprobs", "verbalized",
    "replay"), or None.

    A record whose `confidence` is None carries none at all: the parts of a structured label
    are copies with `confidence` cleared, whatever `confidences` still holds. Records written
    before `confidences` existed hold only the auto choice, named by `confidence_source`.
    """
    if record.label is None or record.confidence is None:
        return None
    if record.confidences is not None:
        return record.confidences.get(source)
    return record.confidence if record.confidence_source == source else None


def _probability_of(record: LabelRecord, mode: str) -> float | None:
    """P(mode label) in one sample's log-probs, also when the sample chose another label."""
    own = sample_confidence(record, "logprobs")
    if own is None:
        return None
    if record.label_probs and mode in record.label_probs:
        return record.label_probs[mode]
    return own if record.label == mode else None


def _item_sources(recs: list[LabelRecord], mode: str) -> dict[str, float]:
    """Every confidence one item's samples (of one order) support for the mode label."""
    out: dict[str, float] = {}
    names = {
        name
        for r in recs
        for name in (r.confidences or {r.confidence_source: r.confidence})
        if name is not None and sample_confidence(r, name) is not None
    }
    for name in names:
        if name == "logprobs":  # the model's own probability of the mode, sample by sample
            values = [p for r in recs if (p := _probability_of(r, mode)) is not None]
        else:  # a stated confidence speaks only for the label it was stated for
            values = [
                c for r in recs if r.label == mode and (c := sample_confidence(r, name)) is not None
            ]
        if values:
            out[name] = float(np.mean(values))
    if len(recs) > 1:  # failed samples count in the denominator: they did not agree
        out["self_consistency"] = sum(r.label == mode for r in recs) / len(recs)
    return out


def _single_sources(r: LabelRecord) -> dict[str, float]:
    """`_item_sources([r], r.label)` for one labelled sample, without its per-item sets and
    means: most runs take one sample per item, and this runs once per item and setup."""
    if r.confidence is None:
        return {}
    if r.confidences is None:  # written before `confidences`: only the auto choice
        source = r.confidence_source
        out = {} if source is None else {source: float(r.confidence)}
    else:
        out = {name: float(c) for name, c in r.confidences.items() if c is not None}
    if "logprobs" in out and r.label_probs and r.label in r.label_probs:
        out["logprobs"] = float(r.label_probs[r.label])
    return out


def _both_orders(first: np.ndarray, second: np.ndarray, consistent: np.ndarray) -> np.ndarray:
    """Pairwise: the mean of both orders' confidences; none for a conflict turned tie."""
    both = ~np.isnan(first) & ~np.isnan(second)
    out = np.where(both, (first + second) / 2, np.nan)
    out[~consistent] = np.nan
    return out


class ItemPredictions:
    """One prediction per item of one setup: the mode over samples, with a confidence.

    `source` picks the confidence that feeds calibration and auto-accept ("auto":
    self-consistency when an item has several samples, else the record's own choice of
    log-probs, else verbalized). `by_source` holds every source available on at least one
    item, NaN where an item lacks it; a requested source an item lacks leaves it NaN rather
    than falling back to another. `sources` counts where the selected confidences came from.

    Pairwise items asked in both orders get one verdict per order (`original`,
    `swapped`, the latter already mapped back to A/B as stored), combined by
    `metrics.combine_orders`: equal verdicts stand, conflicting ones become a tie.
    """

    def __init__(self, coded: CodedGoldSet, records: Iterable[LabelRecord], source: str = "auto"):
        records = list(records)
        single = _single_samples(coded, records)
        one_each = single is not None
        by_item: dict[int, list[LabelRecord]] = defaultdict(list)
        if single is not None:
            # Only unanswered items are looked up again (for their failure reason).
            self.records, unanswered, self.pred, table, auto_from = single
            by_item.update(unanswered)
        else:
            index = coded.index
            for r in records:
                i = index.get(r.item, -1)
                if i >= 0:
                    by_item[i].append(r)
            self.records = [r for recs in by_item.values() for r in recs]
            self.pred, table, auto_from = self._modes(coded, by_item, swapped=False)
        self.labels = coded.labels
        self.source = source
        self.sources: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        swapped = not one_each and any(r.swapped for r in self.records)
        self.samples = (
            (1 if self.records else 0)
            if one_each
            else max(
                (sum(not r.swapped for r in v) if swapped else len(v) for v in by_item.values()),
                default=0,
            )
        )
        if source == "auto":
            self.sources.update(name for name in auto_from if name is not None)
        elif source in table:
            self.sources[source] = int((~np.isnan(table[source])).sum())
        self.original = self.swapped = None
        if swapped:
            self.original = self.pred
            self.swapped, table_swapped, _ = self._modes(coded, by_item, swapped=True)
            self.pred, consistent = m.combine_orders(self.original, self.swapped)
            missing = np.full(len(self.pred), np.nan)
            table = {
                name: _both_orders(conf, table_swapped.get(name, missing), consistent)
                for name, conf in table.items()
            }
        self.confidence = table.get(source, np.full(len(self.pred), np.nan))
        ranked = sorted(table, key=lambda name: (_rank(name), name))
        self.by_source = {
            name: table[name]
            for name in ranked
            if name != "auto" and not np.isnan(table[name]).all()
        }
        for i in np.flatnonzero(self.pred < 0):  # every unanswered item, with its reason
            recs = by_item.get(int(i), [])
            failed = [r.failure for r in recs if r.failure]
            self.failures[failed[0] if failed else ("not_run" if not recs else "no_label")] += 1

    def _modes(
        self, coded: CodedGoldSet, by_item: dict[int, list[LabelRecord]], *, swapped: bool
    ) -> tuple[np.ndarray, dict[str, np.ndarray], list[str | None]]:
        """The mode per item; its confidence per source (and "auto"); where auto's came from."""
        n = len(coded.item_ids)
        pred = np.full(n, -1, dtype=np.int64)
        table: dict[str, np.ndarray] = {"auto": np.full(n, np.nan)}
        auto_from: list[str | None] = [None] * n
        code = coded.code
        for i in range(n):
            recs = by_item.get(i)
            if recs is not None and len(recs) == 1:  # one sample: the mode is its label
                r = recs[0]
                if r.swapped != swapped or r.label not in code:
                    continue
                pred[i] = code[r.label]
                for name, value in _single_sources(r).items():
                    _column(table, name, n)[i] = value
                if r.confidence is not None:
                    table["auto"][i] = r.confidence
                    auto_from[i] = r.confidence_source or "unknown"
                continue
            recs = [r for r in recs or () if r.swapped == swapped]
            votes = Counter(coded.code[r.label] for r in recs if r.label in coded.code)
            if not votes:
                continue
            top = max(votes.values())
            # The mode; ties go to the label listed first in the task (deterministic).
            pred[i] = min(c for c, v in votes.items() if v == top)
            for name, value in _item_sources(recs, coded.labels[pred[i]]).items():
                _column(table, name, n)[i] = value
            if len(recs) > 1:
                table["auto"][i], auto_from[i] = top / len(recs), "self_consistency"
            elif recs[0].confidence is not None:
                table["auto"][i] = recs[0].confidence
                auto_from[i] = recs[0].confidence_source or "unknown"
        return pred, table, auto_from


def _single_samples(coded: CodedGoldSet, records: list[LabelRecord]):
    """``ItemPredictions._modes`` when each gold item has at most one record and none is a
    swapped-order pairwise one (most runs): an item's label is its mode, its confidences
    (``_single_sources``, inlined) are the item's. One pass over the records, None as
    soon as they turn out otherwise (or none is of a gold item): the general path then.
    This runs for every record of every setup (100,000 x 10 in the benchmark), where
    each extra pass over the records costs a cache miss per record.

    Returns (the gold items' records, unanswered items' records by position, predicted
    codes, confidences by source with "auto", where each item's auto confidence came from).
    """
    n = len(coded.item_ids)
    index, code = coded.index, coded.code
    seen = bytearray(n)
    kept: list[LabelRecord] = []
    unanswered: dict[int, list[LabelRecord]] = {}
    at, codes = [], []
    values: dict[str, tuple[list[int], list[float]]] = {}
    auto_at, auto_values = [], []
    auto_from: list[str | None] = [None] * n
    for r in records:
        i = index.get(r.item, -1)
        if i < 0:
            continue
        if seen[i] or r.swapped:
            return None
        seen[i] = 1
        kept.append(r)
        c = code.get(r.label)
        if c is None:
            unanswered[i] = [r]
            continue
        at.append(i)
        codes.append(c)
        conf = r.confidence
        if conf is None:
            continue
        auto_at.append(i)
        auto_values.append(conf)
        auto_from[i] = r.confidence_source or "unknown"
        own = r.confidences
        if own is None:  # written before `confidences`: only the auto choice
            source = r.confidence_source
            own = {} if source is None else {source: conf}
        for name, value in own.items():
            if value is None:
                continue
            if name == "logprobs" and r.label_probs:  # the label's entry, where given
                value = r.label_probs.get(r.label, value)
            column = values.get(name)
            if column is None:
                column = values[name] = ([], [])
            column[0].append(i)
            column[1].append(value)
    if not kept:
        return None
    pred = np.full(n, -1, dtype=np.int64)
    pred[at] = codes
    table = {"auto": np.full(n, np.nan)}
    table["auto"][auto_at] = auto_values
    for name, (where, value) in values.items():
        table[name] = np.full(n, np.nan)
        table[name][where] = value
    return kept, unanswered, pred, table, auto_from


def _column(table: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    """table[name], created NaN-filled on first use (not `setdefault`, which would build a
    new n-long array for every item)."""
    if name not in table:
        table[name] = np.full(n, np.nan)
    return table[name]


def _rank(source: str) -> int:
    return SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER)
