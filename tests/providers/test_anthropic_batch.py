"""Anthropic's Message Batches (harness/providers/anthropic_batch.py): a batch request is the
request litellm sends live, checked against what litellm really sends to a local Anthropic
server (tests/fake_anthropic_batches.py); the batch price; what bad input is told."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from fake_anthropic_batches import FakeAnthropicServer
from fake_openai import constant

from harness.config import ModelConfig
from harness.core.errors import UserError
from harness.core.records import CallSpec
from harness.providers import batch_prices, live_prices
from harness.providers.anthropic_batch import AnthropicBatches
from harness.providers.litellm_provider import LiteLLMProvider

pytestmark = pytest.mark.http

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["positive", "negative"]}},
    "required": ["label"],
    "additionalProperties": False,
}
FEW_SHOT = (
    {"role": "system", "content": "Label the review."},
    {"role": "user", "content": "Great kettle."},
    {"role": "assistant", "content": "positive"},
    {"role": "user", "content": "Awful lid."},
)


@pytest.fixture(autouse=True)
def fake_key(monkeypatch):
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-fake-0123456789")


def model_of(srv, model: str = "anthropic/claude-haiku-4-5", api_base=None) -> ModelConfig:
    return ModelConfig(
        id="claude",
        model=model,
        api_base=api_base or (srv.base_url if srv else None),
        api_key_env="FAKE_ANTHROPIC_KEY",
        batch=True,
    )


def spec_of(params: dict, schema: dict | None = None, model: str = "") -> CallSpec:
    return CallSpec("s", "g", "i1", 0, "claude", model, FEW_SHOT, params, schema, None, "k")


@pytest.mark.parametrize(
    ("model", "params", "schema"),
    [
        ("anthropic/claude-haiku-4-5", {"temperature": 0.0}, None),
        (
            "anthropic/claude-haiku-4-5",
            {"temperature": 0.3, "top_p": 0.9, "stop": ["END"], "max_tokens": 20},
            SCHEMA,
        ),
        ("anthropic/claude-3-5-haiku-20241022", {"temperature": 0.0}, SCHEMA),
    ],
)
def test_a_batch_request_is_the_body_litellm_sends_live(model, params, schema):
    with FakeAnthropicServer(constant('{"label": "positive"}')) as srv:
        config = model_of(srv, model)
        spec = spec_of(params, schema, model)
        asyncio.run(LiteLLMProvider(config).complete(spec, timeout_s=10))
        [live] = srv.live
        batch, betas = AnthropicBatches(config).params(spec)
        assert batch == live
        # What the conversion must have done, spelled out (litellm's Anthropic mapping):
        assert batch["system"] == [{"type": "text", "text": "Label the review."}]
        assert [m["role"] for m in batch["messages"]] == ["user", "assistant", "user"]
        assert batch["max_tokens"] == params.get("max_tokens", 64000 if "4-5" in model else 128000)
        assert batch["temperature"] == params["temperature"]
        assert batch.get("stop_sequences") == params.get("stop")
        assert bool(betas) == (schema is not None and "4-5" in model)


def test_seed_and_logprobs_are_not_sent_to_anthropic():
    config = model_of(None)
    plain = AnthropicBatches(config).params(spec_of({"temperature": 0.0}))[0]
    seeded = replace(spec_of({"temperature": 0.0, "seed": 7}), top_logprobs=5)
    assert AnthropicBatches(config).params(seeded)[0] == plain


def test_the_batch_price_is_half_the_live_price_from_litellms_price_map():
    config = model_of(None)
    live, _ = live_prices(config)
    batch, source = batch_prices(config)
    assert live == (pytest.approx(1e-6), pytest.approx(5e-6))
    assert batch == (pytest.approx(live[0] / 2), pytest.approx(live[1] / 2))
    assert source == "litellm price map (batch)"
    assert AnthropicBatches(config).prices == batch


def test_a_parameter_the_model_refuses_is_bad_input_naming_the_params():
    api = AnthropicBatches(model_of(None, "anthropic/claude-opus-4-7"))
    with pytest.raises(UserError) as err:
        api.line("r0", spec_of({"temperature": 0.0}))
    text = str(err.value)
    assert "models.claude.params" in text and "temperature" in text


def test_the_sdk_gets_the_api_base_without_v1_and_the_configured_key():
    with FakeAnthropicServer() as srv:
        for base in (srv.base_url, srv.base_url + "/v1", srv.base_url + "/v1/messages/"):
            api = AnthropicBatches(model_of(None, api_base=base))
            assert api.endpoint == srv.base_url
            assert api.client.api_key == "sk-ant-fake-0123456789"


def test_without_a_key_anthropic_models_are_bad_input(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = ModelConfig(id="claude", model="anthropic/claude-haiku-4-5", batch=True)
    with pytest.raises(UserError) as err:
        AnthropicBatches(config)
    assert "ANTHROPIC_API_KEY" in str(err.value)


def test_the_key_goes_to_a_custom_api_base_only_on_an_allowed_host(monkeypatch):
    monkeypatch.delenv("PRELABEL_ALLOWED_API_HOSTS", raising=False)
    config = model_of(None, api_base="https://collector.example.com")
    with pytest.raises(UserError) as err:
        AnthropicBatches(config)
    assert "collector.example.com" in str(err.value)
    monkeypatch.setenv("PRELABEL_ALLOWED_API_HOSTS", "collector.example.com")
    assert AnthropicBatches(config).endpoint == "https://collector.example.com"
