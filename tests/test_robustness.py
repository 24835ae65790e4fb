"""Money, secrets and broken files: the behaviours a review found missing, pinned."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import Reply, last_user_text, read_labels, rule_label
from typer.testing import CliRunner

from harness.cli.app import app
from harness.config import ModelConfig
from harness.core.errors import UserError
from harness.core.records import GoldItem, GoldSet
from harness.providers.litellm_provider import mask_secrets
from harness.run.pipeline import run_experiment
from harness.score.predictions import CodedGoldSet


def run(exp):
    return run_experiment(exp.config, runs_dir=exp.runs_dir)


def test_a_cached_label_keeps_the_price_it_was_bought_at(srv, experiment):
    srv.responder = lambda req, attempt: Reply(
        content=rule_label(last_user_text(req)), prompt_tokens=1000, completion_tokens=0
    )
    exp = experiment(srv, model={"input_cost_per_mtok": 2.0, "output_cost_per_mtok": 0.0})
    first, second = run(exp), run(exp)
    u1 = first.metrics["gold_sets"][0]["setups"][0]["usage"]
    u2 = second.metrics["gold_sets"][0]["setups"][0]["usage"]
    assert u1["cost_usd_per_item"] == pytest.approx(0.002)  # 1000 tokens at $2 / Mtok
    assert u2["cost_usd_per_item"] == pytest.approx(0.002)  # the same from the cache
    assert u1["cost_usd_this_run"] == pytest.approx(0.024)
    assert u2["cost_usd_this_run"] == 0.0 and second.totals.cost_usd == 0.0


def test_a_budget_with_an_unknown_price_stops_after_one_call(srv, experiment):
    exp = experiment(srv, run={"concurrency": 1, "budget_usd": 1.0})  # fake-model: no price
    with pytest.raises(UserError, match="price of model 'fake' is unknown"):
        run(exp)
    assert srv.count == 1
    labels = read_labels(exp.run_dirs()[0])
    assert len(labels) == 1 and labels[0]["label"]  # the paid reply is kept


def test_an_empty_reply_still_counts_its_cost(srv, experiment):
    srv.responder = lambda req, attempt: Reply(content="", prompt_tokens=1000)
    exp = experiment(srv, model={"input_cost_per_mtok": 1.0, "output_cost_per_mtok": 0.0})
    fast = {"backoff_initial_s": 0.001, "backoff_max_s": 0.01}
    result = run_experiment(exp.config, runs_dir=exp.runs_dir, settings_override=fast)
    assert result.totals.failures == {"empty_response": 12}
    # Each empty reply is retried (run.retries: 2), and every one of them was paid for.
    assert srv.count == 36
    assert result.totals.cost_usd == pytest.approx(0.036)


@pytest.mark.parametrize(
    "param", ["aws_secret_access_key", "azure_ad_token", "api_token", "vertex_credentials"]
)
def test_provider_credentials_in_params_are_refused(param):
    with pytest.raises(ValueError, match="secrets never go in a config file"):
        ModelConfig(id="m", model="bedrock/x", params={param: "s3cr3t-value"})
    ModelConfig(id="m", model="openai/x", params={"max_tokens": 8, "max_completion_tokens": 9})


def test_credentials_in_api_base_are_refused():
    with pytest.raises(ValueError, match="must not carry credentials"):
        ModelConfig(id="m", model="openai/x", api_base="https://user:pw@llm.example/v1")
    ModelConfig(id="m", model="openai/x", api_base="http://127.0.0.1:8000/v1")


def test_secret_environment_values_are_masked(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-picked-up-by-litellm-123")
    text = mask_secrets("bad key sk-picked-up-by-litellm-123 and cfg-key-4567", "cfg-key-4567")
    assert "sk-picked" not in text and "cfg-key" not in text
    assert text.count("[secret]") == 2


def test_a_rotated_or_new_secret_in_the_environment_is_masked_too(monkeypatch):
    """Which variable names look secret is remembered; their values must not be."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-first-value-1234")
    assert mask_secrets("a sk-first-value-1234 b") == "a [secret] b"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-rotated-value-5678")  # same names, new value
    assert mask_secrets("c sk-rotated-value-5678 d") == "c [secret] d"
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-brand-new-9999")  # a new name
    assert mask_secrets("e tok-brand-new-9999 f") == "e [secret] f"
    monkeypatch.delenv("MY_SERVICE_TOKEN")
    assert mask_secrets("g tok-brand-new-9999 h") == "g tok-brand-new-9999 h"


def test_broken_run_files_are_user_errors_with_exit_2(srv, experiment):
    exp = experiment(srv)
    run_dir = run(exp).run_dir
    (run_dir / "labels.jsonl").write_bytes(b'{"setup": "\xff"}\n')
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 2 and "not UTF-8" in result.output
    (run_dir / "manifest.json").write_text('{"run_id": 1}')
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 2 and "unreadable manifest" in result.output


def test_long_csv_cells_load(tmp_path):
    from harness.config import CsvColumns, GoldSetConfig
    from harness.inputs.goldset import load_gold_set

    path = tmp_path / "long.csv"
    path.write_text('id,annotator,label,text\n1,a,x,"' + "w" * 300_000 + '"\n1,b,y,z\n')
    cfg = GoldSetConfig(id="g", path=path, columns=CsvColumns(fields=["text"]))
    gold = load_gold_set(cfg, path, ["x", "y"])
    assert len(gold.items[0].fields["text"]) == 300_000


def pairwise_gold(annotations: dict[str, str], gold: str | None) -> GoldSet:
    item = GoldItem(id="p", fields={}, annotations=annotations, gold=gold)
    return GoldSet("g", "g", (item,), tuple(sorted(annotations)), "0" * 64)


@pytest.mark.parametrize(
    ("votes", "gold", "reference"),
    [
        ({"x": "A", "y": "B"}, None, "tie"),  # a split crowd is a tie, not "A"
        ({"x": "A", "y": "B"}, "tie", "tie"),
        ({"x": "B", "y": "tie"}, "A", "A"),  # adjudicated outside the tied verdicts
        ({"x": "B", "y": "B", "z": "A"}, None, "B"),
    ],
)
def test_pairwise_reference_of_split_votes(votes, gold, reference):
    coded = CodedGoldSet(pairwise_gold(votes, gold), ["A", "B", "tie"], "pairwise")
    assert coded.labels[int(coded.reference[0])] == reference


def test_the_leaderboard_puts_a_constant_setup_above_a_contrarian(srv, experiment):
    flip = {"positive": "negative", "negative": "positive", "neutral": "positive"}
    exp = experiment(
        srv,
        models=[
            {"id": "constant", "model": "openai/constant", "api_base": srv.base_url},
            {"id": "contrarian", "model": "openai/contrarian", "api_base": srv.base_url},
        ],
    )
    srv.responder = lambda req, attempt: (
        "neutral" if req["model"] == "constant" else flip[rule_label(last_user_text(req))]
    )
    result = run(exp)
    board = [r["setup"] for r in result.metrics["leaderboard"]]
    assert board == ["zs@constant", "zs@contrarian"]
    report = (result.run_dir / "report.md").read_text()
    assert report.index("`zs@constant`") < report.index("`zs@contrarian`")
    kappas = {r["setup"]: r["kappa"] for r in result.metrics["leaderboard"]}
    assert kappas["zs@constant"] == 0.0 and kappas["zs@contrarian"] < 0
    assert np.isfinite(kappas["zs@contrarian"])
    assert json.loads((result.run_dir / "metrics.json").read_text())["leaderboard"]
