"""The task-type registry: one map, the same names as the config schema, clear errors."""

from __future__ import annotations

import typing

import pytest

from harness.config import TaskConfig
from harness.tasks import TASKS, TaskType, task_type


def test_the_config_accepts_exactly_the_registered_task_types():
    accepted = set(typing.get_args(TaskConfig.model_fields["type"].annotation))
    assert accepted == set(TASKS)


def test_each_entry_is_a_task_type_under_its_own_name():
    for name, task in TASKS.items():
        assert isinstance(task, TaskType)
        assert task.name == name


def test_an_unknown_type_names_the_available_ones():
    with pytest.raises(KeyError, match="task types are \\['classification', 'multilabel'"):
        task_type("regression")
