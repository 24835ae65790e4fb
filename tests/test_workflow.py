"""The GitHub Actions workflow in the repo is valid YAML and uses only commands, options
and files that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml
from typer.testing import CliRunner

from harness.cli.app import app
from harness.config import load_experiment
from harness.gate.baseline import load_baseline

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github/workflows/prelabel-gate.yml"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def prelabel_calls(flow: dict) -> list[list[str]]:
    env = flow["env"]
    calls = []
    for step in flow["jobs"]["gate"]["steps"]:
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            line = re.sub(r'"\$(\w+)"', lambda m: env.get(m.group(1), m.group(0)), line.strip())
            for part in line.split("||"):
                words = shlex.split(part)
                if words and words[0] == "prelabel":
                    calls.append(words[1:])
    return calls


def test_the_workflow_is_valid_and_runs_the_gate():
    flow = workflow()
    assert flow["name"] == "prelabel gate"
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as true
    steps = flow["jobs"]["gate"]["steps"]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert {"actions/checkout", "actions/cache/restore", "actions/cache/save"} <= set(uses)
    calls = prelabel_calls(flow)
    assert [c[0] for c in calls] == ["cache", "plan", "gate"]


def test_every_prelabel_command_and_option_in_the_workflow_exists():
    for call in prelabel_calls(workflow()):
        command, options = call[0], [w for w in call[1:] if w.startswith("--")]
        help_text = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
        assert help_text.exit_code == 0, f"prelabel {command} does not exist"
        for option in options:
            assert option in help_text.output, f"prelabel {command} has no {option}"


def test_the_files_the_workflow_names_exist_and_load():
    env = workflow()["env"]
    assert (ROOT / env["SHIPPED_LABELS"]).is_file()
    experiment = load_experiment(ROOT / env["CONFIG"]).experiment
    baseline = load_baseline(ROOT / env["BASELINE"])
    assert baseline["experiment"] == experiment.name
    assert set(baseline["gold_sets"]) == {g.id for g in experiment.gold_sets}


def test_the_committed_baseline_still_compares_with_the_demo_config():
    """A stale baseline would make the workflow's gate fail as "not comparable": its prompt
    hashes, model identities and gold-set hash must match the config as it is now."""
    from harness.gate.baseline import model_identity
    from harness.run.pipeline import prepare

    env = workflow()["env"]
    plan = prepare(ROOT / env["CONFIG"])
    baseline = load_baseline(ROOT / env["BASELINE"])
    models = {m.id: m.model_dump(mode="json") for m in plan.resolved.experiment.models}
    for setup in plan.setups:
        saved = baseline["setups"][setup.id]
        assert saved["prompt_hash"] == plan.templates[setup.prompt_id].content_hash, setup.id
        assert saved["model_entry"] == model_identity(models[setup.model_id]), setup.id
    for gold in plan.gold_sets:
        assert baseline["gold_sets"][gold.id]["content_hash"] == gold.content_hash
