"""The loop closed through the CLI: label -> Label Studio tasks -> reviews -> audit, and a
gold set imported from a Label Studio export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import flat, invoke, label_run, label_studio_round, setup_experiment

LS = Path(__file__).parents[1] / "data" / "labelstudio"


def reviewed_label_run(srv, experiment, tmp_path):
    """A label run whose review tasks came back from Label Studio: (exp, run, export)."""
    exp, new = setup_experiment(srv, experiment, tmp_path)
    labelled = invoke("label", str(exp.config), "--input", str(new), "--audit-share", "1")
    assert labelled.exit_code == 0, labelled.output
    run = label_run(exp)
    tasks_path = tmp_path / "tasks.json"
    assert invoke("labelstudio", "export", str(run), "-o", str(tasks_path)).exit_code == 0
    tasks = json.loads(tasks_path.read_text())
    reviewer = {"id": 5, "email": "rev@example.com"}
    say = [(reviewer, {"choices": ["negative"]}, False)]  # every task reviewed, blind or not
    reviews = {t["data"]["prelabel_item_id"]: say for t in tasks}
    export = tmp_path / "reviewed.json"
    control = ("label", "text", "choices")
    export.write_text(json.dumps(label_studio_round(tasks, reviews, control)))
    return exp, run, export


def test_audit_says_where_the_evaluation_estimate_comes_from(srv, experiment, tmp_path):
    exp, run, export = reviewed_label_run(srv, experiment, tmp_path)
    [evaluation] = [d for d in exp.run_dirs() if d != run]
    moved = tmp_path / "elsewhere" / evaluation.name
    moved.parent.mkdir()
    evaluation.rename(moved)  # the evaluation run is no longer beside the label run
    audited = invoke("audit", str(run), "--reviews", str(export))
    assert audited.exit_code == 0, audited.output
    note = flat(audited.output)
    assert f"note: no evaluation estimate given: {evaluation}/metrics.json not found" in note
    assert "pass its folder with `prelabel audit ... --evaluation RUN_DIR`" in note
    assert json.loads((run / "audit.json").read_text())["evaluation"] is None

    given = invoke("audit", str(run), "--reviews", str(export), "--evaluation", str(moved))
    assert given.exit_code == 0, given.output
    assert "no evaluation estimate" not in given.output
    assert "evaluation promised error <= 0.4" in flat(given.output)
    assert json.loads((run / "audit.json").read_text())["evaluation"]["alpha"] == pytest.approx(0.4)

    # An evaluation that promised nothing, or does not hold the setup: each says so.
    metrics = json.loads((moved / "metrics.json").read_text())
    block = metrics["gold_sets"][0]["setups"][0]
    for change, says in [
        (lambda: block["selective"].update(threshold=None), "has no auto-accept threshold for"),
        (lambda: block.update(setup="other@fake"), "has no setup zs@fake"),
    ]:
        change()
        (moved / "metrics.json").write_text(json.dumps(metrics))
        again = invoke("audit", str(run), "--reviews", str(export), "--evaluation", str(moved))
        assert again.exit_code == 0, again.output
        assert f"no evaluation estimate given: {moved}/metrics.json {says}" in flat(again.output)


def test_export_review_and_audit(srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    result = invoke(
        "label", str(exp.config), "--input", str(new), "--blind-share", "0", "--audit-share", "1"
    )
    assert result.exit_code == 0, result.output
    run = label_run(exp)
    tasks_path = tmp_path / "tasks.json"
    exported = invoke("labelstudio", "export", str(run), "-o", str(tasks_path))
    assert exported.exit_code == 0, exported.output
    tasks = json.loads(tasks_path.read_text())
    by_item = {t["data"]["prelabel_item_id"]: t for t in tasks}
    # n3, n4 go to review with their pre-label; n1, n2 (accepted) are audited blind.
    assert set(by_item) == {"n1", "n2", "n3", "n4"}
    assert not by_item["n1"].get("predictions") and not by_item["n2"].get("predictions")
    assert by_item["n3"]["predictions"][0]["model_version"] == "zs@fake"
    reviewer = {"id": 5, "email": "rev@example.com"}
    reviews = {
        "n3": [(reviewer, None, False)],  # kept the pre-label
        "n4": [(reviewer, {"choices": ["negative"]}, False)],  # corrected it
        "n1": [(reviewer, {"choices": ["neutral"]}, False)],  # blind: the LLM was wrong
        "n2": [(reviewer, {"choices": ["negative"]}, False)],  # blind: the LLM was right
    }
    back = label_studio_round(tasks, reviews, ("label", "text", "choices"))
    export = tmp_path / "reviewed.json"
    export.write_text(json.dumps(back))
    audited = invoke("audit", str(run), "--reviews", str(export))
    assert audited.exit_code == 0, audited.output
    a = json.loads((run / "audit.json").read_text())
    assert a["reviewed_items"] == 4
    assert (a["acceptance"]["count"], a["acceptance"]["n"]) == (1, 2)
    assert (a["realised_error"]["count"], a["realised_error"]["n"]) == (1, 2)
    assert a["evaluation"]["alpha"] == pytest.approx(0.4)
    assert "realised error of auto-accepted labels" in audited.output


def test_audit_refuses_a_folder_that_is_not_a_label_run(srv, experiment, tmp_path):
    exp, _ = setup_experiment(srv, experiment, tmp_path)
    [evaluation] = exp.run_dirs()
    result = invoke("audit", str(evaluation), "--reviews", str(LS / "sentiment_export.json"))
    assert result.exit_code == 2 and "not a label run" in result.output


def test_import_without_config_says_what_to_pass(tmp_path):
    out = tmp_path / "gold.jsonl"
    export = LS / "sentiment_export.json"
    result = invoke("labelstudio", "import", str(export), "-o", str(out))
    assert result.exit_code == 2
    text = flat(result.output)
    assert text.startswith("error: ") and "missing --config" in text and "sentiment_export" in text
    example = f"`prelabel labelstudio import {export} --config configs/demo.yaml -o {out}`"
    assert f"hint: pass the config you will run on this gold set, e.g. {example}" in text
    assert not out.exists()


def test_import_a_label_studio_export_as_a_gold_set(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "ls",
                "task": {"type": "classification", "labels": ["positive", "negative", "neutral"]},
                "gold_sets": [{"id": "g", "path": "gold.jsonl"}],
                "models": [{"id": "r", "model": "replay/labels.jsonl"}],
            }
        )
    )
    out = tmp_path / "gold.jsonl"
    result = invoke(
        "labelstudio",
        "import",
        str(LS / "sentiment_export.json"),
        "--config",
        str(config),
        "-o",
        str(out),
        "--labeling-config",
        str(LS / "sentiment_config.xml"),
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text().splitlines() if x and not x.startswith("#")]
    assert rows and all(len(r["annotations"]) >= 2 for r in rows[:1])
    from harness.config import GoldSetConfig
    from harness.inputs.goldset import load_gold_set

    gold = load_gold_set(GoldSetConfig(id="g", path=out), out, ["positive", "negative", "neutral"])
    assert len(gold.items) == len(rows)
