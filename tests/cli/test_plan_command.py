"""`prelabel plan CONFIG`: calls, cached share, tokens and estimated cost, before any spend.

Expected numbers are computed independently here: litellm.token_counter on each call's
messages, the prices given in the config or litellm's own price table.
"""

from __future__ import annotations

import json
import os

import litellm
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.config import ModelConfig, load_experiment
from harness.core.money import usd
from harness.run.estimate import DEFAULT_OUTPUT_TOKENS, prices, rough_input_tokens
from harness.run.pipeline import run_experiment
from harness.run.plan import make_plan

PRICED = {"input_cost_per_mtok": 2.0, "output_cost_per_mtok": 8.0, "params": {"max_tokens": 5}}


def plan_json(exp, *extra: str) -> dict:
    result = CliRunner().invoke(app, ["plan", str(exp.config), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stderr may hold a warning (no project boundary)


def counted(exp, keep=lambda spec: True) -> int:
    specs = make_plan(load_experiment(exp.config)).specs
    return sum(
        litellm.token_counter(model=s.model, messages=[dict(m) for m in s.messages])
        for s in specs
        if keep(s)
    )


def test_plan_prints_calls_tokens_and_cost_and_spends_nothing(srv, experiment, cache_dir):
    exp = experiment(srv, model=PRICED)
    data = plan_json(exp)
    [row] = data["setups"]
    tokens_in = counted(exp)
    assert tokens_in > 12 * 10  # a real count, not zero
    assert row["setup"] == "zs@fake" and row["calls"] == 12 and row["to_call"] == 12
    assert row["cached"] == 0 and row["cached_share"] == 0.0
    assert row["input_tokens"] == tokens_in
    assert row["output_tokens"] == 12 * 5 and row["output_token_basis"] == "max_tokens"
    assert row["cost_usd"] == pytest.approx(tokens_in * 2e-6 + 60 * 8e-6)
    assert row["price_source"] == "config"
    assert data["total"]["cost_usd"] == pytest.approx(row["cost_usd"])
    assert "token_counter" in data["method"]["input_tokens"]

    # Nothing was called, written or created.
    assert srv.count == 0
    assert not exp.runs_dir.exists() and not cache_dir.exists()

    table = CliRunner().invoke(app, ["plan", str(exp.config)])
    assert table.exit_code == 0, table.output
    assert "zs@fake" in table.output and usd(row["cost_usd"]) in table.output
    assert f"{tokens_in:,}" in table.output and "0 (0%)" in table.output


def test_plan_after_a_partial_run_counts_only_the_calls_left(srv, experiment):
    exp = experiment(srv, model=PRICED, run={"max_calls": 5, "concurrency": 1})
    first = run_experiment(exp.config)
    assert first.totals.stopped == "max_calls" and srv.count == 5
    done = {r["messages"][-1]["content"] for r in srv.requests}

    data = plan_json(exp)
    [row] = data["setups"]
    assert (row["calls"], row["cached"], row["to_call"]) == (12, 5, 7)
    assert row["cached_share"] == pytest.approx(5 / 12)
    left = counted(exp, lambda s: s.messages[-1]["content"] not in done)
    assert row["input_tokens"] == left and row["output_tokens"] == 7 * 5
    assert srv.count == 5
    result = CliRunner().invoke(app, ["plan", str(exp.config)])
    assert "run.max_calls 5 < 7 calls to make" in result.output


def test_unknown_price_is_unknown_and_default_output_tokens_are_stated(srv, experiment):
    exp = experiment(srv, run={"budget_usd": 1.0})  # openai/fake-model: no price anywhere
    data = plan_json(exp)
    [row] = data["setups"]
    assert row["cost_usd"] is None and row["price_source"] == "unknown"
    assert row["output_tokens"] == 12 * DEFAULT_OUTPUT_TOKENS
    assert row["output_token_basis"] == f"default {DEFAULT_OUTPUT_TOKENS}"
    assert data["total"]["cost_unknown_for"] == ["zs@fake"]
    table = CliRunner().invoke(app, ["plan", str(exp.config)])
    assert "unknown" in table.output and "price unknown for zs@fake" in table.output
    assert "stops after its first call" in table.output  # budget + unknown price


def test_price_from_litellms_table_and_a_budget_warning(experiment, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-used-by-plan")
    exp = experiment(model={"model": "openai/gpt-4o-mini"}, run={"budget_usd": 1e-6})
    data = plan_json(exp)
    [row] = data["setups"]
    info = litellm.model_cost["gpt-4o-mini"]
    tokens_in = counted(exp)
    expected = tokens_in * info["input_cost_per_token"] + 12 * 16 * info["output_cost_per_token"]
    assert row["price_source"] == "litellm price map"
    assert row["cost_usd"] == pytest.approx(expected)
    table = CliRunner().invoke(app, ["plan", str(exp.config)])
    assert "exceeds it" in table.output


def test_a_call_two_setups_share_is_counted_once(srv, experiment):
    base = {"model": "openai/fake-model", "api_base": srv.base_url, **PRICED}
    exp = experiment(srv, models=[{"id": "a", **base}, {"id": "b", **base}])
    data = plan_json(exp)
    a, b = data["setups"]
    assert (a["to_call"], a["shared"], b["to_call"], b["shared"]) == (12, 0, 0, 12)
    assert data["total"]["calls"] == 24 and data["total"]["to_call"] == 12
    assert data["total"]["input_tokens"] == a["input_tokens"] == counted(exp) // 2


def test_bad_config_exits_2(experiment):
    exp = experiment()
    exp.config.write_text("name: [unclosed\n")
    result = CliRunner().invoke(app, ["plan", str(exp.config)])
    assert result.exit_code == 2 and "YAML" in result.output


def test_estimates_for_local_models_and_rough_tokens():
    messages = [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 9}]
    assert rough_input_tokens(messages) == 49 // 4 + 8
    assert prices(ModelConfig(id="m", model="local/smollm2-135m")) == ((0.0, 0.0), "local")
    priced = ModelConfig(id="m", model="openai/x", input_cost_per_mtok=3.0)
    assert prices(priced) == ((3e-6, 0.0), "config")
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"  # prices are never fetched
