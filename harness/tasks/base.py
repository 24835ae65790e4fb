"""What every task type answers, and the single-label answers that classification, ordinal
and pairwise share. A task type is one object (harness/tasks/__init__.py lists them); the
rest of prelabel asks it instead of branching on its name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from harness.tasks.parsing import parse_label

if TYPE_CHECKING:  # LabelSpace holds the task's labels and asks its type; a type only here
    import numpy as np

    from harness.config import TaskConfig
    from harness.tasks.labelspace import LabelSpace

Label = str | list[str] | dict[str, str | None]


@dataclass(frozen=True)
class ParsedOutput:
    label: Label | None
    failure: str | None
    method: str | None = None
    confidence: float | None = None
    detail: str | None = None


def json_object(properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema object with every property required and nothing else allowed."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


class TaskType:
    """A single-label task: one label from the task's list per item. Subclasses override
    what differs; the defaults are classification's."""

    name: ClassVar[str]
    # A set, an order or one level per axis (scored by decomposition; see
    # harness/score/structured.py) rather than one label from a list.
    structured: ClassVar[bool] = False
    # Items carry candidates to order (ranking): the call and the parser need their ids.
    uses_candidates: ClassVar[bool] = False
    # How annotators' labels make the reference label, in words for metrics.json.
    reference_method: ClassVar[str] = "majority"
    tie_rule: ClassVar[str] = (
        "majority vote; a tie goes to the adjudicated gold label when the item has one "
        "and it is among the tied labels, else to the tied label listed first in the task"
    )
    # How score/ scores it: "labels" (one label per item), "parts" (decomposed into one
    # single-label task per label or axis, each scored as `part_type`) or "orders" (rankings);
    # and the extra section of metrics.json it adds under its own name (score/tasks.py).
    scoring: ClassVar[str] = "labels"
    part_type: ClassVar[str | None] = None
    section: ClassVar[str | None] = None
    # The label meaning "neither" (pairwise: tie): a split vote between annotators on
    # other labels counts as it in the human ceiling.
    tie_label: ClassVar[str | None] = None
    alpha_level: ClassVar[str] = "nominal"  # Krippendorff's alpha between runs of a setup
    # Label Studio: the control tags that can carry its answer (none: not importable),
    # whether one annotation holds a set of labels, and words that name a label.
    label_studio_controls: ClassVar[tuple[str, ...]] = ()
    label_set: ClassVar[bool] = False
    label_words: ClassVar[Mapping[str, str]] = MappingProxyType({})

    # ------------------------------------------------------------------ gold sets
    def check(
        self, space: LabelSpace, value: Any, fields: Mapping[str, Any]
    ) -> tuple[Label | None, str | None]:
        """Normalise one annotation; (value, None) or (None, what is wrong)."""
        text = str(value).strip()
        return (text, None) if text in space.names else (None, f"unknown label {value!r}")

    def gold_set_problems(self, space: LabelSpace, items: Sequence[Any]) -> list[str]:
        """What is wrong with a gold set as a whole (beyond its items one by one)."""
        return []

    def reference(
        self,
        ratings: np.ndarray,
        n_labels: int,
        majority: np.ndarray,
        no_majority: np.ndarray,
        tie_break: np.ndarray,
        code: Mapping[str, int],
    ) -> np.ndarray:
        """The reference label codes of the items, from the annotators' codes."""
        return majority

    # ------------------------------------------------------------------ calls
    def presentations(self, task: TaskConfig) -> int:
        """How many ways each item is shown to a model (pairwise: both orders)."""
        return 1

    def response_schema(self, space: LabelSpace, fields: Mapping[str, Any]) -> dict[str, Any]:
        return json_object({"label": {"type": "string", "enum": list(space.names)}})

    def parse(
        self, space: LabelSpace, text: str | None, candidates: Sequence[str] | None
    ) -> ParsedOutput:
        p = parse_label(text, space.names)
        return ParsedOutput(p.label, p.failure, p.method, p.confidence, p.detail)
