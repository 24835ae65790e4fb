"""`prelabel baseline save`, `compare`, `gate` and `canary` end to end, through the real CLI
and litellm over HTTP to the fake OpenAI server."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from conftest import DEFAULT_LABEL, RULES, flat, invoke, keyword_labeler, only_run_dir

DEGRADED = "DEGRADED: most reviews hide a complaint."


def degraded_or_rules(request_json: dict, attempt: int):
    """The fake model follows the keyword rules, unless the system prompt says DEGRADED:
    then it answers "negative" to everything (a prompt change that breaks the labeler)."""
    system = next((m["content"] for m in request_json["messages"] if m["role"] == "system"), "")
    if "DEGRADED" in system:
        return "negative"
    return keyword_labeler(RULES, DEFAULT_LABEL)(request_json, attempt)


def save_baseline(exp, tmp_path):
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    path = tmp_path / "baseline.json"
    result = invoke("baseline", "save", str(only_run_dir(exp)), "--output", str(path))
    assert result.exit_code == 0, result.output
    return path


def gate(exp, baseline, tmp_path, tag):
    summary, junit = tmp_path / f"{tag}.md", tmp_path / f"{tag}.xml"
    result = invoke(
        "gate",
        str(exp.config),
        "--baseline",
        str(baseline),
        "--summary",
        str(summary),
        "--junit",
        str(junit),
        "--json",
        str(tmp_path / f"{tag}.json"),
    )
    return result, summary.read_text(encoding="utf-8"), ET.parse(junit).getroot()


def test_an_unchanged_config_passes_from_the_cache_and_does_not_flap(srv, experiment, tmp_path):
    srv.responder = degraded_or_rules
    exp = experiment(srv)
    baseline = save_baseline(exp, tmp_path)
    data = json.loads(baseline.read_text())
    assert data["setups"]["zs@fake"]["gold_sets"]["g"]["predictions"][0] == "positive"
    calls = len(srv.requests)
    for tag in ("first", "second"):  # the same setup twice: same verdict, nothing paid
        result, summary, junit = gate(exp, baseline, tmp_path, tag)
        assert result.exit_code == 0, result.output
        assert summary.startswith("## prelabel gate: PASS")
        assert junit.get("failures") == "0" and int(junit.get("tests")) >= 3
    assert len(srv.requests) == calls


def test_a_degraded_prompt_fails_with_the_flipped_items_and_pays_only_for_its_labels(
    srv, experiment, tmp_path
):
    srv.responder = degraded_or_rules
    exp = experiment(srv)
    baseline = save_baseline(exp, tmp_path)
    calls = len(srv.requests)
    exp.template.write_text(
        exp.template.read_text().replace("--- system\n", f"--- system\n{DEGRADED}\n"),
        encoding="utf-8",
    )
    result, summary, junit = gate(exp, baseline, tmp_path, "degraded")
    assert result.exit_code == 1, result.output
    assert len(srv.requests) - calls == 12  # the changed prompt's items, nothing else
    assert summary.startswith("## prelabel gate: FAIL: a regression")
    assert "| zs@fake | g | fail | accuracy |" in summary
    # Flipped items with their text: g01 was right ("positive") and became wrong.
    assert "### Flipped items: zs@fake on g" in summary
    assert (
        "| g01 | broken | positive | positive | negative | A great blender, it works well. |"
        in summary
    )
    assert int(junit.get("failures")) >= 2
    comparison = json.loads((tmp_path / "degraded.json").read_text())
    [row] = comparison["rows"]
    assert row["changed_inputs"] == ["prompt_hash"]
    acc = next(m for m in row["metrics"] if m["metric"] == "accuracy")
    assert acc["change"]["high"] < -0.02  # the whole interval is a drop beyond tolerance


def test_a_changed_model_or_gold_set_is_reported_not_compared(srv, experiment, tmp_path):
    exp = experiment(srv)
    baseline = save_baseline(exp, tmp_path)
    exp.data["models"][0]["params"] = {"temperature": 0.0, "max_tokens": 7}
    exp.rewrite()
    result, summary, _ = gate(exp, baseline, tmp_path, "model")
    assert result.exit_code == 1
    assert "not comparable" in summary and "model entry changed" in summary
    exp.data["models"][0].pop("params")
    exp.rewrite()
    exp.gold.write_text(
        exp.gold.read_text().replace('"ann_c": "positive"', '"ann_c": "neutral"', 1)
    )
    result, summary, _ = gate(exp, baseline, tmp_path, "gold")
    assert result.exit_code == 1
    assert "gold set 'g' changed since the baseline" in summary


def test_a_bad_baseline_file_is_exit_2_before_anything_is_spent(srv, experiment, tmp_path):
    exp = experiment(srv)
    bad = tmp_path / "baseline.json"
    bad.write_text("{not json", encoding="utf-8")
    result = invoke("gate", str(exp.config), "--baseline", str(bad))
    assert result.exit_code == 2
    assert "baseline.json" in result.output and "prelabel baseline save" in result.output
    assert srv.requests == [] and exp.run_dirs() == []


def test_compare_two_runs_prints_paired_changes(srv, experiment, tmp_path):
    srv.responder = degraded_or_rules
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    first = only_run_dir(exp)
    exp.template.write_text(
        exp.template.read_text().replace("--- system\n", f"--- system\n{DEGRADED}\n"),
        encoding="utf-8",
    )
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    second = next(d for d in exp.run_dirs() if d != first)
    result = invoke("compare", str(first), str(second), "--summary", str(tmp_path / "c.md"))
    assert result.exit_code == 0, result.output  # compare informs; only the gate decides
    # Headed by what changed, never by a gate verdict.
    summary = (tmp_path / "c.md").read_text(encoding="utf-8")
    assert summary.startswith(
        "## prelabel compare: run B is worse than run A beyond noise and tolerance"
    )
    assert "prelabel gate" not in summary.splitlines()[0]
    assert "FAIL" not in result.output and "PASS" not in result.output
    assert "| zs@fake | g | worse | accuracy |" in summary and "g01" in result.output
    # Its help says what the exit code means.
    help_text = flat(invoke("compare", "--help").output)
    assert "exit 0 whenever the comparison was made" in help_text


def test_the_canary_bypasses_the_cache_and_flags_a_changed_model(srv, experiment, tmp_path):
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    calls = len(srv.requests)
    same = invoke("canary", str(exp.config), "--items", "12")
    assert same.exit_code == 0, same.output
    assert len(srv.requests) - calls == 12  # asked again, not read from the cache
    assert "flipped 0 of 12" in same.output
    srv.responder = lambda request_json, attempt: "negative"  # the provider swapped models
    drift = invoke("canary", str(exp.config), "--items", "12", "--json", str(tmp_path / "c.json"))
    assert drift.exit_code == 1
    result = json.loads((tmp_path / "c.json").read_text())
    [row] = result["setups"]
    assert row["verdict"] == "drift" and row["flips"] == 9  # 3 items were "negative" already
    # The canary never overwrote the stored labels: a normal rerun is still all cached.
    calls = len(srv.requests)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    assert len(srv.requests) == calls


def test_a_renamed_setup_fails_as_removed_and_settings_that_do_not_change_labels_pass(
    srv, experiment, tmp_path
):
    exp = experiment(srv)
    baseline = save_baseline(exp, tmp_path)
    exp.data["models"][0]["rpm"] = 1000  # a rate limit changes no label
    exp.rewrite()
    result, summary, _ = gate(exp, baseline, tmp_path, "rpm")
    assert result.exit_code == 0, summary
    exp.data["prompts"][0]["id"] = "zs_renamed"  # its regression must not hide as "new"
    exp.rewrite()
    result, summary, junit = gate(exp, baseline, tmp_path, "renamed")
    assert result.exit_code == 1
    assert summary.startswith("## prelabel gate: FAIL: setups or gold sets of the baseline")
    assert "| zs@fake |  | removed |" in summary and "| zs_renamed@fake |  | new |" in summary
    assert junit.get("failures") == "1"


def test_the_canary_counts_failed_calls_apart_and_a_provider_refusing_all_is_exit_2(
    srv, experiment, tmp_path
):
    from conftest import Reply, per_item

    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    refused = Reply(status=400, content="bad request")
    # Some calls fail: no evidence of drift either way, so neither flips nor compared.
    srv.responder = per_item({"g01": refused, "g05": refused})
    result = invoke("canary", str(exp.config), "--items", "12", "--json", str(tmp_path / "c.json"))
    assert result.exit_code == 0, result.output
    [row] = json.loads((tmp_path / "c.json").read_text())["setups"]
    assert (row["verdict"], row["failed_calls"], row["flips"], row["n"]) == ("ok", 2, 0, 10)
    # Every call refused: the canary could not ask anything: an error (exit 2), not drift.
    srv.responder = lambda request_json, attempt: refused
    result = invoke("canary", str(exp.config), "--items", "5")
    assert result.exit_code == 2, result.output
    assert "rejected every request as invalid" in flat(result.output)
