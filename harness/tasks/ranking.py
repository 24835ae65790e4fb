"""Ranking: the item's candidates in order, best first (best-of-N responses)."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.tasks import parsing_structured as ps
from harness.tasks.base import Label, ParsedOutput, TaskType, json_object
from harness.tasks.structured import structured_output

if TYPE_CHECKING:
    from harness.tasks.labelspace import LabelSpace


def candidate_ids(space: LabelSpace, fields: Mapping[str, Any]) -> list[str] | None:
    """The ids of an item's candidates ({id, text} objects, or strings -> A, B..)."""
    raw = fields.get(space.candidates_field or "")
    if not isinstance(raw, list) or len(raw) < 2 or len(raw) > len(string.ascii_uppercase):
        return None
    if all(isinstance(c, dict) and "id" in c for c in raw):
        ids = [str(c["id"]) for c in raw]
        return ids if len(set(ids)) == len(ids) else None
    if all(isinstance(c, str) for c in raw):
        return list(string.ascii_uppercase[: len(raw)])
    return None


class Ranking(TaskType):
    name = "ranking"
    structured = True
    uses_candidates = True
    scoring = "orders"

    def check(
        self, space: LabelSpace, value: Any, fields: Mapping[str, Any]
    ) -> tuple[Label | None, str | None]:
        ids = candidate_ids(space, fields)
        if ids is None:
            return None, (
                f"field '{space.candidates_field}' must list 2-26 candidates "
                "({id, text} objects or strings)"
            )
        order = [str(v) for v in value] if isinstance(value, list) else None
        if order is None or sorted(order) != sorted(ids):
            return None, f"ranking {value!r} is not a permutation of the candidates {ids}"
        return order, None

    def gold_set_problems(self, space: LabelSpace, items: Sequence[Any]) -> list[str]:
        # best-of-N: one N per gold set, so rankings compare
        sizes = {len(candidate_ids(space, i.fields) or []) for i in items}
        if len(sizes) > 1:
            return [
                f"items have different numbers of candidates {sorted(sizes)}"
                "; a ranking gold set needs the same N for every item"
            ]
        return []

    def response_schema(self, space: LabelSpace, fields: Mapping[str, Any]) -> dict[str, Any]:
        ids = candidate_ids(space, fields) or []
        return json_object(
            {
                "ranking": {
                    "type": "array",
                    "items": {"type": "string", "enum": ids},
                    "minItems": len(ids),
                    "maxItems": len(ids),
                }
            }
        )

    def parse(
        self, space: LabelSpace, text: str | None, candidates: Sequence[str] | None
    ) -> ParsedOutput:
        return structured_output(self.name, ps.parse_ranking(text, list(candidates or [])))
