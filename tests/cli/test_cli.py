"""The CLI as users and CI scripts see it: exit codes, messages, and the run directory."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import (
    GOLD,
    LABELS,
    SCHEMA,
    Reply,
    flat,
    invoke,
    line_of,
    majority,
    only_run_dir,
    per_item,
    read_labels,
)

from harness.config import load_experiment

pytestmark = pytest.mark.http


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=cwd,
    )


# --------------------------------------------------------------------------- validate


def test_validate_ok_reports_counts_and_writes_nothing(srv, experiment, cache_dir):
    exp = experiment(srv)
    result = invoke("validate", str(exp.config))
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)  # stderr warns: a tmp folder has no project boundary
    assert out.startswith("OK ")
    assert "1 gold set(s), 12 items, 1 setup(s), 12 calls (0 cached, 12 to make)" in out
    assert srv.count == 0
    assert not exp.runs_dir.exists()

    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    result = invoke("validate", str(exp.config))
    assert result.exit_code == 0
    assert "12 calls (12 cached, 0 to make)" in flat(result.output)
    assert srv.count == 12


# --------------------------------------------------------------------------- bad input
# Each case breaks one input. `where` is what the message must contain to locate the
# problem: (file name, line or key).


def _yaml_syntax(exp):
    text = exp.config.read_text()
    exp.config.write_text(text.replace("  concurrency: 4", "  concurrency: [4, 5"))
    line = line_of(exp.config, "concurrency: [4")
    # PyYAML reports where it noticed the problem: the unclosed line or the next one.
    return "YAML syntax error", rf"experiment\.yaml:({line}|{line + 1})\b"


def _unknown_key(exp):
    exp.data["run"]["concurency"] = 3
    exp.rewrite()
    return (
        "unknown key 'concurency'",
        rf"experiment\.yaml:{line_of(exp.config, 'concurency:')}, key 'run\.concurency'",
    )


def _wrong_type(exp):
    exp.data["run"]["retries"] = "many"
    exp.rewrite()
    return "retries", rf"experiment\.yaml:{line_of(exp.config, 'retries:')}, key 'run\.retries'"


def _missing_gold(exp):
    exp.data["gold_sets"][0]["path"] = "nowhere/gold-missing.jsonl"
    exp.rewrite()
    return (
        "does not exist",
        rf"experiment\.yaml:{line_of(exp.config, 'nowhere/')}, key 'gold_sets\[0\]\.path'"
        r".*nowhere/gold-missing\.jsonl",
    )


def _template_syntax(exp):
    exp.template.write_text(exp.template.read_text() + "{% if item.text %}\n{{ item.id }\n")
    return "template syntax error", rf"zero_shot\.j2:{line_of(exp.template, '{{ item.id }')}\b"


def _template_unknown_variable(exp):
    exp.template.write_text(exp.template.read_text().replace("{{ item.text }}", "{{ review }}"))
    return "review", rf"zero_shot\.j2:{line_of(exp.template, '{{ review }}')}\b"


def _template_missing_field(exp):
    exp.template.write_text(exp.template.read_text().replace("item.text", "item.title"))
    return "title", rf"zero_shot\.j2:{line_of(exp.template, '--- user') + 1}\b"


def _gold_unknown_label(exp):
    text = exp.gold.read_text().replace('"ann_b": "neutral"', '"ann_b": "neutrall"', 1)
    exp.gold.write_text(text)
    return "neutrall", rf"gold\.jsonl:{line_of(exp.gold, 'neutrall')}\b"


def _unknown_local_model(exp):
    exp.data["models"][0] = {"id": "tiny", "model": "local/no-such-model"}
    exp.rewrite()
    return "local/no-such-model", r"experiment\.yaml(:\d+|.*key 'models)"


def _missing_api_key(exp):
    exp.data["models"][0]["api_key_env"] = "PRELABEL_TEST_UNSET_KEY"
    exp.rewrite()
    return "PRELABEL_TEST_UNSET_KEY", r"experiment\.yaml.*key 'models[.\[]"


BAD_INPUTS = {
    "yaml-syntax": _yaml_syntax,
    "unknown-key": _unknown_key,
    "wrong-type": _wrong_type,
    "missing-gold-file": _missing_gold,
    "template-syntax": _template_syntax,
    "template-unknown-variable": _template_unknown_variable,
    "template-missing-item-field": _template_missing_field,
    "gold-unknown-label": _gold_unknown_label,
    "unknown-local-model": _unknown_local_model,
    "missing-api-key-env": _missing_api_key,
}


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_before_anything_is_written(
    srv, experiment, monkeypatch, cache_dir, command, case
):
    monkeypatch.delenv("PRELABEL_TEST_UNSET_KEY", raising=False)
    exp = experiment(srv)
    what, _ = BAD_INPUTS[case](exp)

    result = invoke(command, str(exp.config), *(["--quiet"] if command == "run" else []))
    assert result.exit_code == 2, result.output
    out = flat(result.output)
    assert "error" in out and what in out, out
    assert "Traceback" not in out
    assert not exp.runs_dir.exists() or not any(exp.runs_dir.iterdir())
    assert srv.count == 0


@pytest.mark.parametrize(
    "case",
    list(BAD_INPUTS),
)
def test_bad_input_message_names_the_file_and_the_line_or_key(srv, experiment, monkeypatch, case):
    monkeypatch.delenv("PRELABEL_TEST_UNSET_KEY", raising=False)
    exp = experiment(srv)
    _, where = BAD_INPUTS[case](exp)
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 2, result.output
    assert re.search(where, flat(result.stderr)), result.stderr


def test_gold_errors_list_every_bad_line(experiment, cache_dir):
    exp = experiment()
    text = exp.gold.read_text()
    text = text.replace('"ann_a": "negative"', '"ann_a": "negatve"', 1)
    text = text.replace('"ann_c": "positive"}', '"ann_c": "positve"}', 1)
    exp.gold.write_text(text)
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 2
    out = flat(result.output)
    for needle in ("negatve", "positve"):
        assert f"gold.jsonl:{line_of(exp.gold, needle)}" in out, out
    assert not exp.runs_dir.exists()


# --------------------------------------------------------------------------- report


def test_report_rebuilds_metrics_markdown_and_html_identically_without_calls(srv, experiment):
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    run_dir = only_run_dir(exp)
    metrics = (run_dir / "metrics.json").read_bytes()
    report = (run_dir / "report.md").read_bytes()
    html = (run_dir / "report.html").read_bytes()
    (run_dir / "metrics.json").unlink()
    (run_dir / "report.md").write_text("stale")
    (run_dir / "report.html").write_text("stale")
    calls = srv.count

    done = cli("report", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert (run_dir / "metrics.json").read_bytes() == metrics
    assert (run_dir / "report.md").read_bytes() == report
    assert (run_dir / "report.html").read_bytes() == html
    assert srv.count == calls
    # It says what it rewrote: all three files, the HTML page included.
    assert f"rewrote {run_dir}/metrics.json, report.md and report.html" in flat(done.stdout)


def test_report_of_a_run_made_with_a_relative_config_path_works_from_elsewhere(
    srv, experiment, tmp_path, monkeypatch
):
    exp = experiment(srv)
    monkeypatch.chdir(exp.root)
    assert invoke("run", exp.config.name, "--quiet").exit_code == 0
    run_dir = only_run_dir(exp)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli("report", str(run_dir), cwd=elsewhere)
    assert done.returncode == 0, done.stderr


def test_report_on_a_folder_that_is_not_a_run_exits_2(tmp_path):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    result = invoke("report", str(folder))
    assert result.exit_code == 2
    assert "not a run directory" in flat(result.output)
    assert list(folder.iterdir()) == []


# --------------------------------------------------------------------------- replay


def test_replay_scores_an_existing_labels_file_without_any_request(srv, experiment):
    exp = experiment(srv)
    refs = {item_id: majority(anns) for item_id, _, anns in GOLD}
    lines = ["# labels from a vendor"]
    for item_id, label in refs.items():
        if item_id == "g12":
            continue  # missing from the file
        if item_id == "g05":
            label = "maybe"  # not a label of the task
        if item_id == "g01":
            label = "Positive"  # normalised to the task's spelling
        lines.append(json.dumps({"id": item_id, "label": label, "confidence": 0.9}))
    (exp.root / "vendor.jsonl").write_text("\n".join(lines) + "\n")
    exp.data["models"] = [{"id": "vendor", "model": "replay/vendor.jsonl"}]
    exp.rewrite()

    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    assert srv.count == 0
    run_dir = only_run_dir(exp)
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert len(records) == len(GOLD)
    assert records["g12"]["failure"] == "missing_in_replay"
    assert records["g05"]["failure"] == "no_label_found" and "label" not in records["g05"]
    assert records["g01"]["label"] == "positive"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    [block] = metrics["gold_sets"][0]["setups"]
    assert block["setup"] == "vendor"
    assert block["coverage"] == {"value": pytest.approx(10 / 12, abs=1e-6), "answered": 10, "n": 12}
    assert block["failures"] == {"missing_in_replay": 1, "no_label_found": 1}
    assert block["accuracy_answered"]["estimate"] == 1.0
    assert block["accuracy"]["estimate"] == pytest.approx(10 / 12, abs=1e-6)


# --------------------------------------------------------------------------- run directory


def test_run_directory_contract(srv, experiment):
    srv.responder = per_item({"g05": Reply(status=400, content="unsupported input")})
    exp = experiment(srv)
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    assert "reports:" in result.stdout and "zs@fake" in result.stdout  # the leaderboard
    run_dir = only_run_dir(exp)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "labels.jsonl",
        "manifest.json",
        "metrics.json",
        "report.html",
        "report.md",
    ]

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["run_id"] == run_dir.name
    assert manifest["status"] == "complete"
    assert manifest["config_hash"] == load_experiment(exp.config).config_hash
    assert manifest["gold_set_hashes"] == {"g": hashlib.sha256(exp.gold.read_bytes()).hexdigest()}
    assert manifest["prompt_hashes"] == {
        "zs": hashlib.sha256(exp.template.read_text().encode()).hexdigest()
    }
    assert manifest["totals"]["labels"] == 12 and manifest["totals"]["failures"] == {
        "bad_request": 1
    }

    records = read_labels(run_dir)
    assert sorted(r["item"] for r in records) == sorted(i for i, _, _ in GOLD)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(metrics)
    assert metrics["run_id"] == run_dir.name and metrics["labels"] == LABELS

    report = (run_dir / "report.md").read_text()
    assert "### Leaderboard" in report
    assert "| # | setup | n | kappa | accuracy |" in report
    assert re.search(r"^\| 1 \| `zs@fake` \| 12 \| ", report, re.MULTILINE)


def test_api_key_never_written_to_runs_or_cache(srv, experiment, cache_dir, monkeypatch):
    key = "sk-prelabel-TEST-9f3c1e7a5b2d4c6e8a0b"
    monkeypatch.setenv("PRELABEL_TEST_API_KEY", key)

    def echo_auth(req, attempt):  # a careless server that echoes the caller's credentials
        auth = srv.request_headers[-1]["Authorization"]
        # Once whole, once where a 300-character cut of litellm's message would split it.
        head = f"litellm.BadRequestError: OpenAIException - bad request for {auth}; "
        return Reply(status=400, content=head[43:] + "-" * (262 - len(head)) + f" {auth}")

    srv.responder = per_item({"g05": echo_auth, "g06": Reply(status=500, content="oops")})
    exp = experiment(srv, model={"api_key_env": "PRELABEL_TEST_API_KEY"}, run={"retries": 1})
    done = invoke("run", str(exp.config), "--quiet")
    assert done.exit_code == 0, done.output
    assert all(h.get("Authorization") == f"Bearer {key}" for h in srv.request_headers)

    written = [p for root in (exp.runs_dir, cache_dir) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "labels.jsonl" for p in written) and any(
        p.parent == cache_dir for p in written
    )
    for path in written:
        data = path.read_bytes()
        at = data.find(key[:20].encode())  # not even a prefix of the key
        assert at < 0, (path, data[max(0, at - 300) : at + 60])
    assert key not in done.output
    records = {r["item"]: r for r in read_labels(only_run_dir(exp))}
    assert records["g05"]["failure"] == "bad_request"
    assert records["g06"]["failure"] == "http_500"
    yaml.safe_load(exp.config.read_text())  # the config itself never held the key
    assert key not in exp.config.read_text()


def test_cache_commands_use_the_cache_that_run_uses(srv, experiment, cache_dir):
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    info = invoke("cache", "info")  # no argument: $PRELABEL_CACHE_DIR, as `run` used it
    assert info.exit_code == 0 and "12 cached replies" in flat(info.output)
    cleared = invoke("cache", "clear", "--yes")
    assert cleared.exit_code == 0 and "removed 12" in flat(cleared.output)
    assert "0 cached replies" in flat(invoke("cache", "info").output)
