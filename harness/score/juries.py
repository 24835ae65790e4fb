"""LLM juries: a panel of setups whose labels are combined into one more setup, with no call
of its own (docs/statistics.md section 7).

Each member's answer on an item is its own prediction (the mode over its samples, both
pairwise orders combined: `ItemPredictions`); a failed answer does not vote, and an item no
member answered fails. The jury's label records are built from the members' at scoring time
and never written to labels.jsonl, so `prelabel report` rebuilds the same jury from the same
labels, and every statistic of the report treats the jury as one more setup.

- `majority`: one vote per member.
- `weighted`: a member's vote weighs log(acc (K-1) / (1 - acc)), the Dawid-Skene weight of a
  symmetric confusion matrix, with acc its accuracy against the reference (Laplace-smoothed:
  (right + 1) / (answered + 2)), 0 for a member no better than chance. On the gold set acc is
  estimated OUT OF FOLD: an item's weights come from the other folds' items only, so an
  item's own reference never weighs its own votes (which would inflate the jury's accuracy).
  `prelabel label` uses the weights of the whole gold set (`deploy_weights`).
- Ties, in order: (weighted) the larger vote count; the label of the single most reliable
  member among those tied (the largest weight, the one listed first on equal weights); for
  a pairwise task, any tie left after the rule's own count is the task's tie label instead.
- Confidence: the winning label's share of the votes (of the voters' weight, weighted).
- Cost: the sum of the members' costs on the item (unknown if any is); latency: the
  slowest member's (the members are asked side by side).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness import tasks
from harness.core.records import GoldSet, LabelRecord, Setup
from harness.score.predictions import CodedGoldSet, ItemPredictions

FOLDS = 5
SOURCE = "jury_agreement"
NO_VOTE = "jury_no_member_answered"
RULES_TEXT = {
    "majority": "one vote per member",
    "weighted": "votes weighted by log(acc (K-1) / (1 - acc)), acc each member's "
    "Laplace-smoothed accuracy against the reference, estimated out of fold",
}
TIE_TEXT = (
    "the label of the most reliable member among those tied (largest out-of-fold weight; "
    "first listed on equal weights); pairwise: the tie label"
)


def weights_from(right: np.ndarray, answered: np.ndarray, k: int) -> np.ndarray:
    """Dawid-Skene weight of a symmetric confusion matrix; 0 at or below chance."""
    acc = (np.asarray(right, float) + 1.0) / (np.asarray(answered, float) + 2.0)
    w = np.log(acc * max(k - 1, 1) / (1.0 - acc))
    return np.maximum(w, 0.0)


def member_accuracy(votes: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, answered) per member, on the items with a reference."""
    has_ref = (reference >= 0)[:, None]
    answered = (votes >= 0) & has_ref
    right = answered & (votes == reference[:, None])
    return right.sum(axis=0), answered.sum(axis=0)


def fold_of(n: int, folds: int, seed: int, groups: Sequence[Any] | None = None) -> np.ndarray:
    """A seeded fold per item; items of one group (cluster_by) share a fold, so a cluster's
    items never weigh each other's votes."""
    keys = list(range(n)) if groups is None else list(groups)
    uniq = list(dict.fromkeys(keys))
    perm = np.random.default_rng(seed).permutation(len(uniq))
    f = {u: int(perm[i]) % max(min(folds, len(uniq)), 1) for i, u in enumerate(uniq)}
    return np.array([f[x] for x in keys], dtype=np.int64)


def oof_weights(votes: np.ndarray, reference: np.ndarray, k: int, folds: np.ndarray) -> np.ndarray:
    """(items x members) weights: item i's from the items outside its fold only."""
    out = np.zeros(votes.shape, dtype=float)
    for f in np.unique(folds):
        inside = folds == f
        right, answered = member_accuracy(votes[~inside], reference[~inside])
        out[inside] = weights_from(right, answered, k)
    return out


def combine(
    votes: np.ndarray,
    k: int,
    weights: np.ndarray,
    rule: str,
    tie_code: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(label code per item, -1 where no member answered; the winner's vote share).

    votes: items x members label codes (-1 = no vote); weights: items x members (or one row
    for every item), also the tie-break under `majority`."""
    votes = np.asarray(votes, dtype=np.int64)
    n, n_members = votes.shape
    w = np.broadcast_to(np.asarray(weights, dtype=float), votes.shape)
    onehot = votes[:, :, None] == np.arange(k)[None, None, :]  # items x members x K
    counts = onehot.sum(axis=1).astype(float)
    wsum = (onehot * w[:, :, None]).sum(axis=1)
    # The most reliable member's label wins a tie: its weight, then its place in the list.
    rank = w - np.arange(n_members)[None, :] * 1e-9 * (1.0 + np.abs(w).max(initial=0.0))
    best = np.where(onehot, rank[:, :, None], -np.inf).max(axis=1)
    cand = counts > 0
    keys = [counts] if rule == "majority" else [wsum, counts]
    for key in keys:
        cand = _keep_max(cand, key)
    if tie_code is not None:
        still_tied = cand.sum(axis=1) > 1
    cand = _keep_max(cand, best)
    pred = np.where(cand.any(axis=1), cand.argmax(axis=1), -1)
    if tie_code is not None:
        pred = np.where(still_tied, tie_code, pred)
    voters = counts.sum(axis=1)
    rows = np.arange(n)
    safe = np.maximum(pred, 0)
    share = np.where(voters > 0, counts[rows, safe] / np.maximum(voters, 1), np.nan)
    if rule == "weighted":
        total = wsum.sum(axis=1)
        share = np.where(total > 0, wsum[rows, safe] / np.where(total > 0, total, 1), share)
    share = np.where(pred >= 0, share, np.nan)
    return pred, share


def _keep_max(cand: np.ndarray, key: np.ndarray) -> np.ndarray:
    masked = np.where(cand, key, -np.inf)
    top = masked.max(axis=1, keepdims=True)
    return cand & np.isclose(masked, top, rtol=1e-12, atol=1e-12) & np.isfinite(top)


def member_votes(items: Any, records_of: dict[str, list[LabelRecord]], members: Sequence[str]):
    """items x members codes (-1 = failed or not asked), each member's own prediction."""
    if not members:
        return np.zeros((len(items.item_ids), 0), dtype=np.int64)
    cols = [ItemPredictions(items, records_of.get(s, [])).pred for s in members]
    return np.column_stack(cols).astype(np.int64)


def jury_records(
    jury_id: str,
    gold_id: str,
    item_ids: Sequence[str],
    labels: Sequence[str],
    pred: np.ndarray,
    share: np.ndarray,
    member_records: Sequence[Sequence[LabelRecord]],
) -> list[LabelRecord]:
    """One record per item: the jury's label, its agreement, the members' summed cost."""
    by_item: dict[str, list[LabelRecord]] = {}
    for recs in member_records:
        for r in recs:
            by_item.setdefault(r.item, []).append(r)
    out = []
    for i, item in enumerate(item_ids):
        recs = by_item.get(item, [])
        costs = [r.cost_usd for r in recs]
        priced = all(c is not None for r, c in zip(recs, costs, strict=True) if r.label)
        lat = [r.latency_s for r in recs if r.latency_s is not None]
        ok = pred[i] >= 0
        conf = float(share[i]) if ok else None
        out.append(
            LabelRecord(
                setup=jury_id,
                gold_set=gold_id,
                item=item,
                label=labels[pred[i]] if ok else None,
                failure=None if ok else NO_VOTE,
                parse_method="jury",
                confidence=conf,
                confidence_source=SOURCE if ok else None,
                confidences={SOURCE: conf} if ok else None,
                input_tokens=sum(r.input_tokens or 0 for r in recs),
                output_tokens=sum(r.output_tokens or 0 for r in recs),
                cost_usd=sum(c or 0.0 for c in costs) if priced and recs else None,
                latency_s=max(lat) if lat else None,
                cached=True,  # no call of its own: its members' labels, already paid
            )
        )
    return out


def add_juries(
    juries: Sequence[Any],
    gold_sets: Sequence[GoldSet],
    setups: Sequence[Setup],
    records: Sequence[LabelRecord],
    labels: Sequence[str],
    task_type: str,
    seed: int = 0,
    reference: str = "majority",
) -> tuple[list[Setup], list[LabelRecord], list[dict[str, Any]]]:
    """The setups and records with every jury added as one more setup, and what each jury
    is made of (`juries` of metrics.json: members, rule, folds, the deploy weights). The
    weights are learned against `reference` (report.reference); folds keep a gold set's
    clusters (cluster_by) whole."""
    if not juries:
        return list(setups), list(records), []
    k = len(labels)
    tie_label = tasks.task_type(task_type).tie_label
    tie_code = list(labels).index(tie_label) if tie_label in labels else None
    by_key: dict[tuple[str, str], list[LabelRecord]] = {}
    for r in records:
        by_key.setdefault((r.gold_set, r.setup), []).append(r)
    out_setups, out_records, summaries = list(setups), list(records), []
    for jury in juries:
        members = list(jury.setups)
        pooled_right = np.zeros(len(members))
        pooled_answered = np.zeros(len(members))
        per_gold = []
        for gold in gold_sets:
            coded = CodedGoldSet(gold, labels, task_type, reference)
            of = {s: by_key.get((gold.id, s), []) for s in members}
            votes = member_votes(coded, of, members)
            folds = fold_of(len(coded.item_ids), FOLDS, seed, gold.clusters)
            w = oof_weights(votes, coded.reference, k, folds)
            pred, share = combine(votes, k, w, jury.rule, tie_code)
            out_records += jury_records(
                jury.id, gold.id, coded.item_ids, labels, pred, share, list(of.values())
            )
            right, answered = member_accuracy(votes, coded.reference)
            pooled_right += right
            pooled_answered += answered
            per_gold.append(
                {
                    "gold_set": gold.id,
                    "n_items": len(coded.item_ids),
                    "folds": len(np.unique(folds)) if len(folds) else 0,
                    "no_member_answered": int((pred < 0).sum()),
                    "members": [
                        {"setup": s, "right": int(right[j]), "answered": int(answered[j])}
                        for j, s in enumerate(members)
                    ],
                }
            )
        deploy = weights_from(pooled_right, pooled_answered, k)
        summaries.append(
            {
                "id": jury.id,
                "rule": jury.rule,
                "rule_text": RULES_TEXT[jury.rule],
                "members": members,
                "tie_rule": TIE_TEXT,
                "folds": FOLDS,
                "seed": seed,
                "reference": reference,
                "extra_calls": 0,
                "deploy_weights": {
                    s: round(float(x), 12) for s, x in zip(members, deploy, strict=True)
                },
                "deploy_weights_basis": "every gold item of every gold set, with a reference",
                "gold_sets": per_gold,
            }
        )
        out_setups.append(Setup(id=jury.id, prompt_id=None, model_id=jury.id))
    return out_setups, out_records, summaries


def annotate(metrics: dict[str, Any], summaries: Sequence[dict[str, Any]]) -> None:
    """metrics.json carries the juries (with what `prelabel label` needs), and each jury's
    setup block says what it is."""
    if not summaries:
        return
    metrics["juries"] = list(summaries)
    by_id = {s["id"]: s for s in summaries}
    for gs in metrics.get("gold_sets", []):
        for b in gs.get("setups", []):
            s = by_id.get(b.get("setup"))
            if s is not None:
                b["jury"] = {"members": s["members"], "rule": s["rule"], "extra_calls": 0}
