"""The Python API (harness/api): the same runs, numbers and errors as the CLI, as objects.
Over real HTTP to tests/fake_openai.py."""

from __future__ import annotations

import json

import pytest
from conftest import GOLD, invoke, only_run_dir

import harness
from harness.api import Evaluation, config_file

pytestmark = pytest.mark.http


def metrics_of(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def test_evaluate_returns_the_run_the_cli_would_write(srv, experiment):
    exp = experiment(srv)
    ev = harness.evaluate(exp.config)
    assert isinstance(ev, Evaluation) and ev.run_dir == only_run_dir(exp)
    assert (ev.run_dir / "report.html").exists() and (ev.run_dir / "report.md").exists()
    metrics = metrics_of(ev.run_dir)
    assert ev.metrics == metrics and ev.recommendation == metrics["recommendation"]
    [row] = ev.leaderboard
    block = metrics["gold_sets"][0]["setups"][0]
    assert (row.setup, row.n_items) == (block["setup"], len(GOLD))
    for name in ("kappa", "accuracy", "macro_f1"):
        got = getattr(row, name)
        want = block[name]
        assert (got.estimate, got.low, got.high, got.n) == (
            want["estimate"],
            want["low"],
            want["high"],
            want["n"],
        )
    assert row.coverage == block["coverage"]["value"]
    assert row.recommended == (metrics["recommendation"]["recommended"] == row.setup)
    # The CLI reads the same folder back the same way.
    assert harness.load_run(ev.run_dir).metrics == metrics


def test_a_dict_config_with_overrides_resolves_paths_from_the_current_folder(
    srv, experiment, monkeypatch
):
    exp = experiment(srv)
    monkeypatch.chdir(exp.root)  # the config's relative paths (gold.jsonl, zero_shot.j2)
    ev = harness.evaluate(exp.data, overrides={"run": {"concurrency": 2}})
    manifest = json.loads((ev.run_dir / "manifest.json").read_text())
    assert manifest["config"]["run"]["concurrency"] == 2
    assert manifest["config"]["models"][0]["api_base"] == srv.base_url
    assert not list(exp.root.glob(".prelabel-api-*"))  # the temporary config is gone


def test_overrides_on_a_path_keep_the_configs_folder_and_leave_it_unchanged(srv, experiment):
    exp = experiment(srv)
    before = exp.config.read_text()
    ev = harness.evaluate(exp.config, overrides={"report": {"bootstrap": 150}})
    assert exp.config.read_text() == before
    assert ev.metrics["bootstrap"]["n_boot"] == 150
    assert not list(exp.root.glob(".prelabel-api-*"))
    with pytest.raises(harness.UserError) as caught:  # named as given, not the temp file
        harness.evaluate(exp.config, overrides={"report": {"bootstrap": 5}})
    [problem] = caught.value.problems
    assert problem.file == f"{exp.config} with overrides" and problem.key == "report.bootstrap"
    assert not list(exp.root.glob(".prelabel-api-*"))


def test_bad_input_raises_the_clis_user_error_and_never_exits(experiment, srv):
    exp = experiment(srv)
    exp.config.write_text(exp.config.read_text().replace("concurrency: 4", "concurrency: -1"))
    with pytest.raises(harness.UserError) as caught:
        harness.evaluate(exp.config)
    problem = caught.value.problems[0]
    assert str(problem.file) == str(exp.config) and problem.line is not None
    assert "concurrency" in str(caught.value)
    with pytest.raises(harness.UserError) as caught:
        harness.evaluate({"name": "x"})
    assert "task" in str(caught.value)


def test_a_run_stopped_by_a_cap_is_an_error_that_names_its_folder(srv, experiment):
    exp = experiment(srv, run={"max_calls": 3})
    with pytest.raises(harness.UserError) as caught:
        harness.evaluate(exp.config)
    assert "stopped short (max_calls)" in str(caught.value)
    assert str(only_run_dir(exp)) in str(caught.value)
    with pytest.raises(harness.UserError, match=r"no metrics\.json"):
        harness.load_run(only_run_dir(exp))


def test_plan_is_the_clis_plan_json(srv, experiment, tmp_path):
    exp = experiment(srv)
    api = harness.plan(exp.config)
    cli = json.loads(invoke("plan", str(exp.config), "--json").stdout)
    assert api == cli
    assert api["total"]["to_call"] == len(GOLD) and api["cache_exists"] is False


def test_compare_gives_the_paired_changes_of_prelabel_compare(srv, experiment, tmp_path):
    exp = experiment(srv)
    first = harness.evaluate(exp.config)
    exp.template.write_text(exp.template.read_text().replace("Reply with", "Answer with"))
    second = harness.evaluate(exp.config)
    out = tmp_path / "compare.json"
    result = invoke("compare", str(first.run_dir), str(second.run_dir), "--json", str(out))
    assert result.exit_code == 0, result.output
    assert first.compare(second) == json.loads(out.read_text())


def test_to_pandas_and_the_notebook_view(srv, experiment):
    pd = pytest.importorskip("pandas", reason="pandas is optional")
    ev = harness.evaluate(experiment(srv).config)
    frame = ev.to_pandas()
    [row] = ev.leaderboard
    assert list(frame["setup"]) == [row.setup]
    assert frame["kappa_low"][0] == row.kappa.low and frame["kappa"][0] == row.kappa.estimate
    assert isinstance(frame, pd.DataFrame)
    view = ev._repr_html_()
    assert row.setup in view and "<table>" in view and "recommended:" in view
    assert f"{row.kappa}" in view


def test_prelabel_run_goes_through_the_api(srv, experiment, monkeypatch):
    import harness.api

    calls = []
    real = harness.api.run

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(harness.api, "run", spy)
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    assert calls == [exp.config]


def test_config_file_hands_a_plain_path_through_untouched(tmp_path):
    path = tmp_path / "c.yaml"
    with config_file(path) as got:
        assert got == path
