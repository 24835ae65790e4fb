"""One experiment's labels: the task's label names, axes and candidates field, with its task
type (harness/tasks) answering how a label is checked in a gold set, asked for (JSON schema)
and parsed from model output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.config import TaskConfig
from harness.tasks import task_type
from harness.tasks.base import Label, ParsedOutput, TaskType
from harness.tasks.ranking import candidate_ids

__all__ = ["Label", "LabelSpace", "ParsedOutput"]


class LabelSpace:
    def __init__(self, task: TaskConfig):
        self.type = task.type
        self.task: TaskType = task_type(task.type)
        self.names = task.label_names
        self.axes = {a.name: [lab.name for lab in a.labels] for a in task.axes}
        self.candidates_field = task.ranking.candidates if task.ranking else None

    @property
    def structured(self) -> bool:
        return self.task.structured

    def candidate_ids(self, fields: Mapping[str, Any]) -> list[str] | None:
        """Ranking: the ids of an item's candidates ({id, text} objects, or strings -> A, B..)."""
        return candidate_ids(self, fields)

    def check(self, value: Any, fields: Mapping[str, Any]) -> tuple[Label | None, str | None]:
        """Normalise one annotation; (value, None) or (None, what is wrong)."""
        return self.task.check(self, value, fields)

    def gold_set_problems(self, items: Sequence[Any]) -> list[str]:
        return self.task.gold_set_problems(self, items)

    def response_schema(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self.task.response_schema(self, fields)

    def parse(self, text: str | None, candidates: Sequence[str] | None = None) -> ParsedOutput:
        return self.task.parse(self, text, candidates)
