"""The direct OpenAI-compatible client (harness/providers/openai_client.py): the prices it
reads from litellm's price map file equal litellm's own, and errors map as through litellm.
Over real HTTP to tests/fake_openai.py."""

from __future__ import annotations

import asyncio
import os

import pytest
from fake_openai import FakeOpenAIServer, Reply

from harness.config import ModelConfig
from harness.core.records import CallSpec
from harness.providers import ProviderError, make_provider
from harness.providers.openai_client import OpenAIProvider, map_prices

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def test_map_prices_equal_litellms_get_model_info_for_openai_models():
    import litellm

    names = [
        k
        for k, v in litellm.model_cost.items()
        if isinstance(v, dict)
        and v.get("litellm_provider") == "openai"
        and v.get("mode") == "chat"
        and v.get("input_cost_per_token") is not None
    ]
    assert len(names) > 20
    for name in names:
        info = litellm.get_model_info(f"openai/{name}")
        want = (float(info["input_cost_per_token"]), float(info["output_cost_per_token"] or 0))
        assert map_prices(f"openai/{name}") == pytest.approx(want), name
    assert map_prices("openai/my-own-fine-tune") is None  # unknown: cost unknown, not zero


def spec(text: str = "hello") -> CallSpec:
    return CallSpec(
        setup_id="s",
        gold_set_id="g",
        item_id="i",
        sample=0,
        model_id="m",
        model="openai/fake-model",
        messages=({"role": "user", "content": text},),
        params={"temperature": 0.0},
        response_schema=None,
        top_logprobs=None,
        cache_key="k",
    )


def ask(srv, reply, timeout_s: float = 5.0):
    srv.responder = lambda body, attempt: reply
    model = ModelConfig(id="m", model="openai/fake-model", api_base=srv.base_url)
    provider = make_provider(model, base=None)
    assert isinstance(provider, OpenAIProvider)
    return asyncio.run(provider.complete(spec(), timeout_s))


@pytest.mark.parametrize(
    ("reply", "kind", "retryable"),
    [
        (
            Reply(status=400, content="This model's maximum context length is 8 tokens"),
            "bad_request",
            False,
        ),
        (
            Reply(status=429, content="slow down", headers={"Retry-After": "3"}),
            "rate_limited",
            True,
        ),
        (Reply(status=401, content="bad key"), "auth", False),
        (Reply(status=404, content="no such model"), "not_found", False),
        (Reply(status=500, content="boom"), "http_500", True),
        (Reply(body='{"choices": [{"message": '), "bad_response", True),
        (Reply(content="x", delay_s=2.0), "timeout", True),
    ],
)
def test_errors_map_as_through_litellm(reply, kind, retryable):
    with FakeOpenAIServer() as srv, pytest.raises(ProviderError) as caught:
        ask(srv, reply, timeout_s=0.5)
    assert (caught.value.kind, caught.value.retryable) == (kind, retryable)
    if kind == "rate_limited":
        assert caught.value.retry_after_s == 3.0


def test_a_context_length_error_is_a_context_window_failure():
    body = (
        '{"error": {"message": "maximum context length is 8", "type": "invalid_request_error",'
        ' "param": "messages", "code": "context_length_exceeded"}}'
    )
    with FakeOpenAIServer() as srv, pytest.raises(ProviderError) as caught:
        ask(srv, Reply(status=400, body=body))
    assert (caught.value.kind, caught.value.retryable) == ("context_window", False)


def test_a_reply_carries_tokens_cost_and_model():
    with FakeOpenAIServer() as srv:
        srv.responder = lambda body, attempt: Reply(
            content="positive", prompt_tokens=100, completion_tokens=2
        )
        model = ModelConfig(
            id="m",
            model="openai/fake-model",
            api_base=srv.base_url,
            input_cost_per_mtok=1.0,
            output_cost_per_mtok=4.0,
        )
        reply = asyncio.run(make_provider(model, base=None).complete(spec(), 5.0))
    assert reply.content == "positive"
    assert (reply.input_tokens, reply.output_tokens) == (100, 2)
    assert reply.cost_usd == pytest.approx((100 * 1.0 + 2 * 4.0) / 1e6)
    assert reply.provider_model == "fake-model" and reply.latency_s > 0
