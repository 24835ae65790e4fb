"""Task-specific blocks of metrics.json: what ordinal and pairwise tasks add to the common
classification view (which stays: exact accuracy is accuracy, A/B/tie are three classes).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import metrics as m
from harness.score import json_numbers as why
from harness.score.clusters import boot_at
from harness.score.json_numbers import interval as _iv
from harness.score.json_numbers import note_nulls
from harness.score.json_numbers import num as _num
from harness.score.parts import ceiling_note
from harness.tasks import task_type

if TYPE_CHECKING:
    from harness.config import TaskConfig
    from harness.score.predictions import CodedGoldSet, ItemPredictions

A, B, TIE = 0, 1, 2


def _rate(value: tuple[float, int], empty: str) -> dict[str, Any]:
    """A share and its n; `empty` says what there was none of when n is 0."""
    out: dict[str, Any] = {"value": _num(value[0]), "n": int(value[1])}
    if out["value"] is None:
        out["note"] = f"not computed: {empty}"
    return out


NO_VERDICT = "no answered verdict"
NO_LENGTH_PAIR = (
    "no pair decided for A or B whose responses differ in length by more than 30 characters"
)


# --------------------------------------------------------------------------------- ordinal


def ordinal_humans(coded: CodedGoldSet) -> dict[str, Any]:
    rel = m.reliability_matrix(coded.ratings)
    k = len(coded.labels)
    n_rated = int(((coded.ratings >= 0).sum(axis=1) >= 2).sum())
    return note_nulls(
        {
            "krippendorff_alpha_ordinal": _num(m.krippendorff_alpha(rel, "ordinal", n_values=k)),
            "krippendorff_alpha_interval": _num(m.krippendorff_alpha(rel, "interval", n_values=k)),
            "n_items": n_rated,
            "scale": list(coded.labels),
        },
        ("krippendorff_alpha_ordinal", "krippendorff_alpha_interval"),
        why.ALPHA_UNDEFINED,
    )


def ordinal_setup(
    coded: CodedGoldSet, preds: ItemPredictions, boot: dict[str, Any]
) -> dict[str, Any]:
    k = len(coded.labels)
    ref, pred = coded.reference, preds.pred
    boot = boot_at(boot, coded.clusters)
    ceiling = m.ordinal_human_ceiling(coded.ratings, pred, k)
    rel_humans = m.reliability_matrix(coded.ratings)
    rel_with = m.reliability_matrix(np.column_stack([coded.ratings, pred]))
    return {
        "scale": list(coded.labels),
        "exact": _iv(m.ordinal_ci(ref, pred, k, "exact", **boot)),
        "within_one": _iv(m.ordinal_ci(ref, pred, k, "within_one", **boot)),
        "mae": _iv(m.ordinal_ci(ref, pred, k, "mae", **boot), why.NO_ANSWERS),
        "kappa_linear": _iv(
            m.ordinal_ci(ref, pred, k, "kappa_linear", **boot), why.KAPPA_UNDEFINED
        ),
        "kappa_quadratic": _iv(
            m.ordinal_ci(ref, pred, k, "kappa_quadratic", **boot), why.KAPPA_UNDEFINED
        ),
        "alpha": note_nulls(
            {
                "ordinal_humans": _num(m.krippendorff_alpha(rel_humans, "ordinal", n_values=k)),
                "ordinal_humans_plus_llm": _num(
                    m.krippendorff_alpha(rel_with, "ordinal", n_values=k)
                ),
                "interval_humans": _num(m.krippendorff_alpha(rel_humans, "interval", n_values=k)),
                "interval_humans_plus_llm": _num(
                    m.krippendorff_alpha(rel_with, "interval", n_values=k)
                ),
            },
            (
                "ordinal_humans",
                "ordinal_humans_plus_llm",
                "interval_humans",
                "interval_humans_plus_llm",
            ),
            why.ALPHA_UNDEFINED,
        ),
        "human_ceiling": _ordinal_ceiling_note(
            {
                "method": "leave-one-annotator-out against the lower median of the others",
                **{
                    key: (_num(v) if isinstance(v, float) else v)
                    for key, v in asdict(ceiling).items()
                    if key != "per_annotator"
                },
                "per_annotator": [
                    {
                        **{
                            key: (_num(v) if isinstance(v, float) else v)
                            for key, v in asdict(row).items()
                        },
                        "annotator": coded.gold.annotators[row.annotator],
                    }
                    for row in ceiling.per_annotator
                ],
            }
        ),
        "mean_expected_level": _expected_level(preds, k),
    }


def _ordinal_ceiling_note(block: dict[str, Any]) -> dict[str, Any]:
    """The ceiling with a note on each null ratio (llm / human; for MAE human / llm)."""
    note = ceiling_note(block, ("exact", "within_one", "kappa_quadratic"))
    if block["n_pairs"] and block["ratio_mae"] is None:
        mae = (
            "mae: the LLM's MAE is 0, so human / LLM is undefined"
            if block["llm_mae"] == 0
            else "mae: undefined (no held-out comparison was answered by the LLM)"
        )
        note = f"{note}; {mae}" if note else f"ratio undefined for {mae}"
    if note:
        block["note"] = note
    return block


def _expected_level(preds: ItemPredictions, k: int) -> dict[str, Any] | None:
    """Mean over items of the expected level (0-based) under the label distribution."""
    labels = list(preds.labels)
    per_item: dict[str, list[float]] = {}
    for r in preds.records:  # samples of one item are averaged first: n counts items
        if r.label_probs:
            probs = np.array([[r.label_probs.get(label, 0.0) for label in labels]], dtype=float)
            total = probs.sum()
            if not np.isfinite(total) or total <= 0 or (probs < 0).any():
                continue  # no distribution over the levels (a hand-edited record)
            # Renormalised over the levels: a record may list only some of them.
            per_item.setdefault(r.item, []).append(float(m.expected_level(probs / total)[0]))
    if not per_item:
        return None
    values = [float(np.mean(v)) for v in per_item.values()]
    return {"value": _num(np.mean(values)), "n": len(values)}


# -------------------------------------------------------------------------------- pairwise


def response_lengths(
    coded: CodedGoldSet, field_a: str, field_b: str
) -> tuple[np.ndarray, np.ndarray]:
    items = coded.gold.items
    return (
        np.array([len(str(i.fields.get(field_a, ""))) for i in items]),
        np.array([len(str(i.fields.get(field_b, ""))) for i in items]),
    )


def _code(coded: CodedGoldSet, label: str) -> int:
    return coded.code.get(label, -9)


def _outcomes(coded: CodedGoldSet, codes: np.ndarray) -> np.ndarray:
    """Task codes -> pairwise codes (A=0, B=1, tie=2), whatever order the labels are in."""
    mapping = {_code(coded, "A"): A, _code(coded, "B"): B, _code(coded, "tie"): TIE, -1: -1}
    return np.array([mapping.get(int(c), -1) for c in codes], dtype=np.int64)


def pairwise_humans(coded: CodedGoldSet, lengths: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    ratings = coded.ratings
    votes = _outcomes(coded, ratings.ravel()).reshape(ratings.shape)
    ref = _outcomes(coded, coded.reference)
    return {
        "tie_rate_ratings": _rate(m.tie_rate(votes[votes >= 0]), NO_VERDICT),
        "tie_rate_reference": _rate(m.tie_rate(ref), NO_VERDICT),
        "length_bias_reference": _rate(m.length_bias(*lengths, ref), NO_LENGTH_PAIR),
    }


def pairwise_setup(
    coded: CodedGoldSet,
    preds: ItemPredictions,
    lengths: tuple[np.ndarray, np.ndarray],
    boot: dict[str, Any],
) -> dict[str, Any]:
    ref = _outcomes(coded, coded.reference)
    pred = _outcomes(coded, preds.pred)
    boot = boot_at(boot, coded.clusters)
    block: dict[str, Any] = {
        "agreement_with_ties": _iv(
            m.pairwise_ci(ref, pred, "agreement_with_ties", **boot),
            empty="not computed: no pair where the reference and the LLM both answered",
        ),
        "agreement_without_ties": _iv(
            m.pairwise_ci(ref, pred, "agreement_without_ties", **boot),
            empty="not computed: no pair where the reference and the LLM both chose A or B",
        ),
        "tie_rate": _rate(m.tie_rate(pred), NO_VERDICT),
        "length_bias": _rate(m.length_bias(*lengths, pred), NO_LENGTH_PAIR),
        "length_bias_humans": _rate(m.length_bias(*lengths, ref), NO_LENGTH_PAIR),
        "both_orders": preds.swapped is not None,
    }
    if preds.swapped is not None:
        original = _outcomes(coded, preds.original)
        swapped = _outcomes(coded, preds.swapped)
        block["position_consistency"] = _rate(
            m.position_consistency(original, swapped), "no pair answered in both orders"
        )
        # As shown: the swapped call saw B first, so its raw verdict is the mapped one undone.
        block["first_position_rate"] = _rate(
            m.first_position_rate(original, m.unswap(swapped)),
            "no verdict for A or B in either order",
        )
    return block


class _Levels:
    """Ordinal: agreement within one level, weighted kappas, the expected level."""

    def __init__(self, coded: CodedGoldSet, task: TaskConfig | None):
        self.coded = coded

    def humans(self) -> dict[str, Any]:
        return ordinal_humans(self.coded)

    def setup(self, preds: ItemPredictions, boot: dict[str, Any]) -> dict[str, Any]:
        return ordinal_setup(self.coded, preds, boot)


class _Pairs:
    """Pairwise: position consistency, first-position rate, length bias."""

    def __init__(self, coded: CodedGoldSet, task: TaskConfig):
        assert task.pairwise is not None
        self.coded = coded
        self.lengths = response_lengths(coded, task.pairwise.response_a, task.pairwise.response_b)

    def humans(self) -> dict[str, Any]:
        return pairwise_humans(self.coded, self.lengths)

    def setup(self, preds: ItemPredictions, boot: dict[str, Any]) -> dict[str, Any]:
        return pairwise_setup(self.coded, preds, self.lengths, boot)


# A task type's `section` (harness/tasks) -> how it is scored.
SECTIONS = {"levels": _Levels, "pairs": _Pairs}


def section_of(
    coded: CodedGoldSet, type_name: str, task: TaskConfig | None
) -> _Levels | _Pairs | None:
    """The scorer of the task type's own section of metrics.json; None when it has none
    (or, for pairs, when there is no pairwise config saying which fields hold the responses)."""
    section = task_type(type_name).section
    if section is None or (section == "pairs" and (task is None or task.pairwise is None)):
        return None
    return SECTIONS[section](coded, task)
