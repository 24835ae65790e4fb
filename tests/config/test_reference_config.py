"""`report.reference` in a config: dawid_skene needs a fixed label set, so a ranking task
refuses it with the key and the fix instead of silently scoring against the Borda count."""

from __future__ import annotations

import pytest
import yaml

from harness.config import load_experiment
from harness.core.errors import UserError


def _write(tmp_path, task, reference):
    config = {
        "name": "r",
        "task": task,
        "gold_sets": [{"id": "g", "path": "gold.jsonl"}],
        "prompts": [{"id": "zs", "template": "zs.j2"}],
        "models": [{"id": "m1", "model": "openai/m1"}],
        "report": {"reference": reference},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_dawid_skene_is_refused_for_a_ranking_naming_the_key(tmp_path):
    task = {"type": "ranking", "ranking": {"candidates": "candidates"}}
    with pytest.raises(UserError) as info:
        load_experiment(_write(tmp_path, task, "dawid_skene"))
    message = str(info.value)
    assert "reference" in message and "use majority" in message


def test_dawid_skene_loads_for_classification(tmp_path):
    task = {"type": "classification", "labels": ["a", "b"]}
    exp = load_experiment(_write(tmp_path, task, "dawid_skene")).experiment
    assert exp.report.reference == "dawid_skene"
