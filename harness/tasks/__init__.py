"""Tasks: what a label is for each task type, one module per type, listed in `TASKS`.

A task type is an object (harness/tasks/base.py says what it answers): how a gold label is
checked, how a model is asked (JSON schema) and parsed, how annotators' labels make the
reference, how many ways an item is shown, and how Label Studio carries its answer. The
rest of prelabel looks the type up here instead of branching on its name; the config schema
(harness/config/task.py) lists the same names, and a test holds the two lists equal.
"""

from __future__ import annotations

from harness.tasks.base import TaskType
from harness.tasks.classification import Classification
from harness.tasks.multilabel import Multilabel
from harness.tasks.ordinal import Ordinal
from harness.tasks.pairwise import Pairwise
from harness.tasks.ranking import Ranking
from harness.tasks.rubric import Rubric

# The one explicit map, the way lm-evaluation-harness maps output types to classes.
TASKS: dict[str, TaskType] = {
    t.name: t for t in (Classification(), Ordinal(), Pairwise(), Multilabel(), Ranking(), Rubric())
}


DEFAULT = Classification.name  # scoring without a task config (tests, old runs)


def task_type(name: str) -> TaskType:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task type {name!r}; task types are {sorted(TASKS)}") from None


__all__ = ["DEFAULT", "TASKS", "TaskType", "task_type"]
