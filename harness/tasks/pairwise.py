"""Pairwise preference: which of two responses is better (A, B, or tie), for RLHF and DPO.
Each pair can be asked in both orders to expose position bias."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from harness.tasks.base import TaskType

if TYPE_CHECKING:
    import numpy as np

    from harness.config import TaskConfig


class Pairwise(TaskType):
    name = "pairwise"
    tie_rule = (
        "majority vote; a split vote goes to the adjudicated gold verdict when the item has "
        "one, else it is a tie"
    )
    section = "pairs"
    tie_label = "tie"
    label_studio_controls = ("pairwise", "choices")
    label_words = MappingProxyType({"a": "A", "left": "A", "b": "B", "right": "B", "tie": "tie"})

    def reference(
        self,
        ratings: np.ndarray,
        n_labels: int,
        majority: np.ndarray,
        no_majority: np.ndarray,
        tie_break: np.ndarray,
        code: Mapping[str, int],
    ) -> np.ndarray:
        if self.tie_label not in code:
            return majority
        # numpy and the metrics load when scoring starts, not when a config is read:
        # `prelabel validate` stays quick (tests/test_startup.py).
        import numpy as np

        # A crowd split between A and B is no verdict for either: call it a tie rather
        # than favour the first-listed outcome (which would bias the reference to A).
        adjudicated = np.where(tie_break >= 0, tie_break, code[self.tie_label])
        return np.where(no_majority, adjudicated, majority)

    def presentations(self, task: TaskConfig) -> int:
        return 2 if task.pairwise is not None and task.pairwise.swap else 1
