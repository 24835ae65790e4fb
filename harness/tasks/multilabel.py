"""Multi-label: any set of the task's labels per item (content tags, policy violations)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.tasks import parsing_structured as ps
from harness.tasks.base import Label, ParsedOutput, TaskType, json_object
from harness.tasks.classification import Classification
from harness.tasks.structured import structured_output

if TYPE_CHECKING:
    from harness.tasks.labelspace import LabelSpace


class Multilabel(TaskType):
    name = "multilabel"
    structured = True
    scoring = "parts"
    part_type = Classification.name  # one yes/no question per label
    label_studio_controls = ("choices", "taxonomy")
    label_set = True

    def check(
        self, space: LabelSpace, value: Any, fields: Mapping[str, Any]
    ) -> tuple[Label | None, str | None]:
        if not isinstance(value, list):
            return None, f"expected a list of labels, got {value!r}"
        bad = [v for v in value if str(v) not in space.names]
        if bad:
            return None, f"unknown labels {bad}"
        return [n for n in space.names if n in {str(v) for v in value}], None

    def response_schema(self, space: LabelSpace, fields: Mapping[str, Any]) -> dict[str, Any]:
        prop = {"type": "array", "items": {"type": "string", "enum": space.names}}
        return json_object({"labels": prop})

    def parse(
        self, space: LabelSpace, text: str | None, candidates: Sequence[str] | None
    ) -> ParsedOutput:
        return structured_output(self.name, ps.parse_multilabel(text, space.names))
