"""Ordinal: one level of an ordered scale per item (Likert ratings, severity). The reference
is the annotators' median level, and agreement between runs is measured on the ordinal scale."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from harness.tasks.base import TaskType

if TYPE_CHECKING:
    import numpy as np


class Ordinal(TaskType):
    name = "ordinal"
    reference_method = "median"
    tie_rule = "median of the annotators' levels; with an even count, the lower median"
    alpha_level = "ordinal"
    section = "levels"
    label_studio_controls = ("rating", "choices")

    def reference(
        self,
        ratings: np.ndarray,
        n_labels: int,
        majority: np.ndarray,
        no_majority: np.ndarray,
        tie_break: np.ndarray,
        code: Mapping[str, int],
    ) -> np.ndarray:
        # numpy and the metrics load when scoring starts, not when a config is read:
        # `prelabel validate` stays quick (tests/test_startup.py).
        from harness import metrics as m

        return m.median_label(ratings, n_labels)  # the lower median on ties
