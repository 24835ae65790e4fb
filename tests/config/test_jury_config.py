"""`juries` in a config: members must be setups of the experiment, ids unique and not a
setup's, at least two members, one label per item; each error names its key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.config import load_experiment
from harness.core.errors import UserError

BASE = {
    "name": "j",
    "task": {"type": "classification", "labels": ["a", "b"]},
    "gold_sets": [{"id": "g", "path": "gold.jsonl"}],
    "prompts": [{"id": "zs", "template": "zs.j2"}],
    "models": [
        {"id": "m1", "model": "openai/m1"},
        {"id": "m2", "model": "openai/m2"},
        {"id": "old", "model": "replay/old.jsonl"},
    ],
}


def load(tmp_path: Path, juries, **extra):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({**BASE, **extra, "juries": juries}), encoding="utf-8")
    return load_experiment(path)


def error(tmp_path: Path, juries, **extra) -> str:
    with pytest.raises(UserError) as info:
        load(tmp_path, juries, **extra)
    return str(info.value)


def test_a_jury_of_setups_loads_and_setup_ids_are_the_plans(tmp_path):
    exp = load(tmp_path, [{"id": "panel", "setups": ["zs@m1", "zs@m2", "old"]}]).experiment
    assert exp.juries[0].rule == "majority"
    assert exp.setup_ids() == ["zs@m1", "zs@m2", "old"]


@pytest.mark.parametrize(
    ("juries", "key", "fragment"),
    [
        ([{"id": "p", "setups": ["zs@m1", "zs@m3"]}], "juries[0].setups[1]", "zs@m3"),
        ([{"id": "p", "setups": ["zs@m1", "m2"]}], "juries[0].setups[1]", "name a setup id"),
        (
            [{"id": "p", "setups": ["zs@m1", "zs@m2"]}, {"id": "p", "setups": ["zs@m1", "old"]}],
            "juries[1].id",
            "duplicate juries id",
        ),
        ([{"id": "old", "setups": ["zs@m1", "zs@m2"]}], "juries[0].id", "also a setup's id"),
        ([{"id": "p", "setups": ["zs@m1", "zs@m1"]}], "juries[0].setups[1]", "twice"),
        ([{"id": "p", "setups": ["zs@m1"]}], "juries[0].setups", "at least 2"),
        (
            [{"id": "p", "setups": ["zs@m1", "zs@m2"]}, {"id": "q", "setups": ["p", "zs@m1"]}],
            "juries[1].setups[0]",
            "not other juries",
        ),
        ([{"id": "p", "setups": ["zs@m1", "zs@m2"], "rule": "mean"}], "juries[0].rule", ""),
    ],
)
def test_a_bad_jury_names_its_key_and_what_to_do(tmp_path, juries, key, fragment):
    message = error(tmp_path, juries)
    assert f"key '{key}'" in message and "exp.yaml" in message
    assert fragment in message


def test_a_jury_needs_one_label_per_item(tmp_path):
    task = {"type": "multilabel", "labels": ["a", "b"]}
    message = error(tmp_path, [{"id": "p", "setups": ["zs@m1", "zs@m2"]}], task=task)
    assert "key 'juries'" in message and "remove 'juries'" in message


def test_explicit_setups_are_the_members_to_name(tmp_path):
    setups = [{"prompt": "zs", "model": "m1"}, {"model": "old"}]
    ok = load(tmp_path, [{"id": "p", "setups": ["zs@m1", "old"]}], setups=setups)
    assert ok.experiment.setup_ids() == ["zs@m1", "old"]
    message = error(tmp_path, [{"id": "p", "setups": ["zs@m1", "zs@m2"]}], setups=setups)
    assert "juries[0].setups[1]" in message
