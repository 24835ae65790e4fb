"""Classification: one label from a list per item (safety labels, topics, intents)."""

from __future__ import annotations

from harness.tasks.base import TaskType


class Classification(TaskType):
    name = "classification"
    label_studio_controls = ("choices", "taxonomy")
