"""The recipes of docs/architecture.md, followed to the letter: each builds a toy one and
runs it. The task type and the command are built in a scratch copy of the package and run
as `python -m harness.cli`; the test counts the files the recipe touched."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.records import ProviderReply
from harness.providers import PROVIDERS, ProviderKind, register
from harness.run.pipeline import run_experiment

REPO = Path(__file__).resolve().parents[1]


def scratch_package(tmp_path: Path) -> Path:
    """A copy of harness/ to edit, and the root to put on PYTHONPATH."""
    root = tmp_path / "src"
    shutil.copytree(
        REPO / "harness", root / "harness", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"the recipe's anchor {old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def touched(root: Path) -> list[str]:
    """Files of the scratch package that differ from the repository's, or are new."""
    out = []
    for path in sorted((root / "harness").rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root)
        original = REPO / rel
        if not original.exists() or not filecmp.cmp(path, original, shallow=False):
            out.append(str(rel))
    return out


def prelabel(root: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=1800,
    )


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GOLD = [
    {"id": f"i{i}", "text": f"item {i}", "annotations": {"a1": lab, "a2": lab, "a3": other}}
    for i, (lab, other) in enumerate(
        [("yes", "yes"), ("no", "no"), ("yes", "no"), ("no", "no"), ("yes", "yes"), ("no", "yes")]
    )
]


# --------------------------------------------------------------------- a task type
TOY_TASK = '''"""Toy: a yes/no question, the recipe's example of a task type."""

from __future__ import annotations

from harness.tasks.base import TaskType


class Toy(TaskType):
    name = "toy"
'''


def test_a_task_type_by_the_recipe_touches_three_files_and_runs(tmp_path):
    root = scratch_package(tmp_path)
    pkg = root / "harness"
    # 1. its module; 2. its entry in the one map; 3. its name in the config schema.
    (pkg / "tasks" / "toy.py").write_text(TOY_TASK)
    edit(
        pkg / "tasks" / "__init__.py",
        "from harness.tasks.rubric import Rubric\n",
        "from harness.tasks.rubric import Rubric\nfrom harness.tasks.toy import Toy\n",
    )
    edit(pkg / "tasks" / "__init__.py", "Ranking(), Rubric())", "Ranking(), Rubric(), Toy())")
    edit(pkg / "config" / "task.py", '"ranking", "rubric"]', '"ranking", "rubric", "toy"]')
    assert touched(root) == [
        "harness/config/task.py",
        "harness/tasks/__init__.py",
        "harness/tasks/toy.py",
    ]

    work = tmp_path / "work"
    work.mkdir()
    write_jsonl(work / "gold.jsonl", GOLD)
    answers = ["yes", "no", "yes", "yes", "yes", "no"]  # one of six differs from the majority
    write_jsonl(
        work / "llm.jsonl",
        [{"id": g["id"], "label": a} for g, a in zip(GOLD, answers, strict=True)],
    )
    (work / "toy.yaml").write_text(
        'name: toy\ntask:\n  type: toy\n  labels: ["yes", "no"]\n'
        "gold_sets:\n  - id: g\n    path: gold.jsonl\n"
        "models:\n  - id: old_tool\n    model: replay/llm.jsonl\n"
    )
    done = prelabel(root, "run", "toy.yaml", "--quiet", cwd=work)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (work / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (block,) = metrics["gold_sets"][0]["setups"]
    assert block["accuracy"]["estimate"] == pytest.approx(5 / 6)
    assert json.loads((run_dir / "manifest.json").read_text())["config"]["task"]["type"] == "toy"


# --------------------------------------------------------------------- a provider
class FirstLabel:
    """The recipe's toy provider: answers every call with the label its model string names."""

    def __init__(self, model, base):
        self.label = model.model.removeprefix("first/")
        self.calls = 0

    async def complete(self, spec, timeout_s):
        return ProviderReply(content=json.dumps({"label": self.label}), provider_model=spec.model)


@pytest.fixture
def first_provider():
    kind = register(ProviderKind("first", "first/", FirstLabel))
    yield kind
    del PROVIDERS["first"]


def test_a_provider_by_the_recipe_is_called_and_asked(first_provider, tmp_path):
    write_jsonl(tmp_path / "gold.jsonl", GOLD)
    (tmp_path / "ask.j2").write_text("--- user\nyes or no? {{ item.text }}\n")
    (tmp_path / "exp.yaml").write_text(
        'name: toyprovider\ntask:\n  labels: ["yes", "no"]\n'
        "gold_sets:\n  - id: g\n    path: gold.jsonl\n"
        "prompts:\n  - id: p\n    template: ask.j2\n"
        "models:\n  - id: always_yes\n    model: first/yes\n"
        f"run:\n  cache_dir: {tmp_path / 'cache'}\n"
    )
    result = run_experiment(tmp_path / "exp.yaml", runs_dir=tmp_path / "runs")
    assert result.totals.calls == len(GOLD)
    (block,) = result.metrics["gold_sets"][0]["setups"]
    assert block["accuracy"]["estimate"] == pytest.approx(3 / 6)  # three majorities are yes
    # What plan and estimate ask of it: called, not in process, no price, no token counter.
    assert first_provider.called and not first_provider.in_process
    assert not first_provider.priced and first_provider.count_tokens is None


def test_a_second_provider_on_a_taken_prefix_is_refused(first_provider):
    with pytest.raises(ValueError, match="has the prefix of 'first'"):
        register(ProviderKind("other", "first/", FirstLabel))


# --------------------------------------------------------------------- a command
HELLO = '''"""`prelabel hello NAME`: the recipe's example of a command family."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("hello")
    def hello(name: Annotated[str, typer.Argument(help="who to greet")]) -> None:
        """Say hello."""
        typer.echo(f"hello {name}")
'''


def test_a_command_by_the_recipe_touches_two_files_and_runs(tmp_path):
    root = scratch_package(tmp_path)
    pkg = root / "harness"
    (pkg / "cli" / "hello.py").write_text(HELLO)
    edit(
        pkg / "cli" / "app.py",
        "cli_gate.register(app)\n",
        "cli_gate.register(app)\ncli_hello.register(app)\n",
    )
    edit(
        pkg / "cli" / "app.py",
        "from harness.cli import gate as cli_gate\n",
        "from harness.cli import gate as cli_gate\nfrom harness.cli import hello as cli_hello\n",
    )
    assert touched(root) == ["harness/cli/app.py", "harness/cli/hello.py"]
    done = prelabel(root, "hello", "world", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello world\n"
