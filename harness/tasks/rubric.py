"""Rubric: one level per axis (helpfulness, harmlessness, ...); an axis may stay unrated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.tasks import parsing_structured as ps
from harness.tasks.base import Label, ParsedOutput, TaskType, json_object
from harness.tasks.ordinal import Ordinal
from harness.tasks.structured import structured_output

if TYPE_CHECKING:
    from harness.tasks.labelspace import LabelSpace


class Rubric(TaskType):
    name = "rubric"
    structured = True
    scoring = "parts"
    part_type = Ordinal.name  # one ordered scale per axis

    def check(
        self, space: LabelSpace, value: Any, fields: Mapping[str, Any]
    ) -> tuple[Label | None, str | None]:
        if not isinstance(value, dict):
            return None, f"expected an object {{axis: level}}, got {value!r}"
        unknown = [k for k in value if k not in space.axes]
        if unknown:
            return None, f"unknown axes {unknown}; axes are {list(space.axes)}"
        out: dict[str, str | None] = {}
        for axis, levels in space.axes.items():
            level = value.get(axis)
            if level is not None and str(level) not in levels:
                return None, f"axis {axis!r}: level {level!r} is not one of {levels}"
            out[axis] = None if level is None else str(level)
        if all(v is None for v in out.values()):
            return None, "no axis has a level"
        return out, None

    def response_schema(self, space: LabelSpace, fields: Mapping[str, Any]) -> dict[str, Any]:
        return json_object(
            {axis: {"type": "string", "enum": levels} for axis, levels in space.axes.items()}
        )

    def parse(
        self, space: LabelSpace, text: str | None, candidates: Sequence[str] | None
    ) -> ParsedOutput:
        return structured_output(self.name, ps.parse_rubric(text, space.axes))
