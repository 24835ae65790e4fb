"""What a label is, per task type: how it is checked in a gold set, asked for (JSON schema),
and parsed from model output. Scalar types (classification, ordinal, pairwise) have one
label from a list; structured types have a set (multilabel), an order of the item's
candidates (ranking) or one level per axis (rubric).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.config import STRUCTURED_TYPES, TaskConfig
from harness.parsing import parse_label

Label = str | list[str] | dict[str, str | None]


@dataclass(frozen=True)
class ParsedOutput:
    label: Label | None
    failure: str | None
    method: str | None = None
    confidence: float | None = None
    detail: str | None = None


class LabelSpace:
    def __init__(self, task: TaskConfig):
        self.type = task.type
        self.names = task.label_names
        self.axes = {a.name: [lab.name for lab in a.labels] for a in task.axes}
        self.candidates_field = task.ranking.candidates if task.ranking else None

    @property
    def structured(self) -> bool:
        return self.type in STRUCTURED_TYPES

    # ------------------------------------------------------------------ gold sets
    def candidate_ids(self, fields: Mapping[str, Any]) -> list[str] | None:
        """Ranking: the ids of an item's candidates ({id, text} objects, or strings -> A, B..)."""
        raw = fields.get(self.candidates_field or "")
        if not isinstance(raw, list) or len(raw) < 2 or len(raw) > len(string.ascii_uppercase):
            return None
        if all(isinstance(c, dict) and "id" in c for c in raw):
            ids = [str(c["id"]) for c in raw]
            return ids if len(set(ids)) == len(ids) else None
        if all(isinstance(c, str) for c in raw):
            return list(string.ascii_uppercase[: len(raw)])
        return None

    def check(self, value: Any, fields: Mapping[str, Any]) -> tuple[Label | None, str | None]:
        """Normalise one annotation; (value, None) or (None, what is wrong)."""
        if not self.structured:
            return (
                (str(value).strip(), None)
                if str(value).strip() in self.names
                else (None, f"unknown label {value!r}")
            )
        if self.type == "multilabel":
            if not isinstance(value, list):
                return None, f"expected a list of labels, got {value!r}"
            bad = [v for v in value if str(v) not in self.names]
            if bad:
                return None, f"unknown labels {bad}"
            return [n for n in self.names if n in {str(v) for v in value}], None
        if self.type == "ranking":
            ids = self.candidate_ids(fields)
            if ids is None:
                return None, (
                    f"field '{self.candidates_field}' must list 2-26 candidates "
                    "({id, text} objects or strings)"
                )
            order = [str(v) for v in value] if isinstance(value, list) else None
            if order is None or sorted(order) != sorted(ids):
                return None, f"ranking {value!r} is not a permutation of the candidates {ids}"
            return order, None
        if not isinstance(value, dict):  # rubric
            return None, f"expected an object {{axis: level}}, got {value!r}"
        unknown = [k for k in value if k not in self.axes]
        if unknown:
            return None, f"unknown axes {unknown}; axes are {list(self.axes)}"
        out: dict[str, str | None] = {}
        for axis, levels in self.axes.items():
            level = value.get(axis)
            if level is not None and str(level) not in levels:
                return None, f"axis {axis!r}: level {level!r} is not one of {levels}"
            out[axis] = None if level is None else str(level)
        if all(v is None for v in out.values()):
            return None, "no axis has a level"
        return out, None

    # ------------------------------------------------------------------ calls
    def response_schema(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        if self.type == "multilabel":
            prop = {"type": "array", "items": {"type": "string", "enum": self.names}}
            return _object({"labels": prop})
        if self.type == "ranking":
            ids = self.candidate_ids(fields) or []
            return _object(
                {
                    "ranking": {
                        "type": "array",
                        "items": {"type": "string", "enum": ids},
                        "minItems": len(ids),
                        "maxItems": len(ids),
                    }
                }
            )
        if self.type == "rubric":
            return _object(
                {axis: {"type": "string", "enum": levels} for axis, levels in self.axes.items()}
            )
        return _object({"label": {"type": "string", "enum": list(self.names)}})

    def parse(self, text: str | None, candidates: Sequence[str] | None = None) -> ParsedOutput:
        if not self.structured:
            p = parse_label(text, self.names)
            return ParsedOutput(p.label, p.failure, p.method, p.confidence, p.detail)
        from harness import parsing_structured as ps

        if self.type == "multilabel":
            s = ps.parse_multilabel(text, self.names)
        elif self.type == "ranking":
            s = ps.parse_ranking(text, list(candidates or []))
        else:
            s = ps.parse_rubric(text, self.axes)
        detail = s.detail
        if s.axis_failures and not detail:
            detail = "; ".join(f"{axis}: {why}" for axis, why in s.axis_failures.items())
        return ParsedOutput(
            s.value, s.failure, self.type if s.failure is None else None, None, detail
        )


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
