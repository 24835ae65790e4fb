"""Batch mode on Azure OpenAI models (harness/providers/openai_batch.AzureBatches): the Files
and Batches calls under {endpoint}/openai/ with an api-version and the api-key header, lines
addressed to /chat/completions with the deployment as the model. Over real HTTP to
tests/fake_batches.py, whose Azure routes refuse a call without an api-version."""

from __future__ import annotations

import functools
import json
import re

import pytest
from conftest import GOLD, flat, invoke, read_labels, rule_label
from fake_batches import FakeBatchServer
from fake_openai import keyword_labeler

import harness.run.pipeline
from harness.run.runner import RunSettings

pytestmark = pytest.mark.http

TEXT = {item_id: text for item_id, text, _ in GOLD}
KEY = "azure-fake-key-0123456789"


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    fast = functools.partial(RunSettings, backoff_initial_s=0.001, backoff_max_s=0.01)
    monkeypatch.setattr(harness.run.pipeline, "RunSettings", fast)


@pytest.fixture
def bsrv(monkeypatch):
    from conftest import DEFAULT_LABEL, RULES

    monkeypatch.setenv("FAKE_AZURE_KEY", KEY)
    monkeypatch.delenv("AZURE_API_BASE", raising=False)
    monkeypatch.delenv("AZURE_API_VERSION", raising=False)
    with FakeBatchServer(keyword_labeler(RULES, DEFAULT_LABEL)) as server:
        yield server


def azure_experiment(experiment, srv, **model):
    entry = {
        "id": "az",
        "model": "azure/my-gpt4o-mini",
        "api_base": srv.base_url.removesuffix("/v1"),
        "api_key_env": "FAKE_AZURE_KEY",
        "params": {"api_version": "2025-01-01-preview"},
        "batch": True,
        "input_cost_per_mtok": 0.15,
        "output_cost_per_mtok": 0.6,
        **model,
    }
    return experiment(srv, models=[entry], run={"batch_poll_s": 0.02})


def test_an_azure_batch_labels_every_item_through_azures_routes(bsrv, experiment):
    exp = azure_experiment(experiment, bsrv)
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    [run_dir] = exp.run_dirs()
    records = read_labels(run_dir)
    assert sorted(r["item"] for r in records) == sorted(TEXT)
    assert all(r["label"] == rule_label(TEXT[r["item"]]) for r in records)
    assert bsrv.requests == []  # no live call
    # Every call went to Azure's paths, with the configured version and the key header.
    paths = {(m, re.sub(r"/(batch|file)_?-?\d+", "/{id}", p)) for m, p, _, _ in bsrv.azure_calls}
    assert paths == {
        ("POST", "/openai/files"),
        ("POST", "/openai/batches"),
        ("GET", "/openai/batches/{id}"),  # polled, then read
        ("GET", "/openai/files/{id}/content"),  # the output file
    }
    assert {v for _, _, v, _ in bsrv.azure_calls} == {"2025-01-01-preview"}
    assert {k for _, _, _, k in bsrv.azure_calls} == {KEY}
    # One batch of lines addressed as Azure wants them; how to call is not in the body.
    [created] = bsrv.created
    assert created["endpoint"] == "/chat/completions"
    assert len(bsrv.batch_lines) == len(GOLD)
    for line in bsrv.batch_lines:
        assert line["url"] == "/chat/completions"
        assert line["body"]["model"] == "my-gpt4o-mini"
        assert "api_version" not in line["body"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["totals"]["batches"]["az"]["requests"] == len(GOLD)


def test_the_version_comes_from_the_environment_or_the_default(bsrv, experiment, monkeypatch):
    monkeypatch.setenv("AZURE_API_VERSION", "2024-12-01-preview")
    exp = azure_experiment(experiment, bsrv, params={})
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    assert {v for _, _, v, _ in bsrv.azure_calls} == {"2024-12-01-preview"}


def test_without_an_endpoint_batch_mode_says_where_to_set_it(bsrv, experiment):
    exp = azure_experiment(experiment, bsrv, api_base=None)
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 2, result.output
    assert "needs its Azure endpoint" in flat(result.output)
    assert "AZURE_API_BASE" in flat(result.output)
    assert bsrv.azure_calls == []
