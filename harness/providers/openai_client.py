"""OpenAI-compatible endpoints (`openai/...` models) through the `openai` client directly.

litellm is the way to every provider, but for the one protocol most pre-labelling runs
speak (OpenAI's chat completions, at OpenAI or at any compatible server via `api_base`) its
per-call work halves the client's speed: measured on one 2-core machine against a 50 ms
stub, a bare `litellm.acompletion` loop made 134-150 calls/s where a bare `AsyncOpenAI`
loop made 257-310 (docs/benchmarks.md). This provider makes the same request (the same
body as litellm sends: harness/providers/litellm_provider.request_params), reads the
response JSON itself (no pydantic model per reply), and maps errors through the same
`classify`, so retries, fail-fast, the cache key and the record are unchanged. It also
starts in 0.4 s where importing litellm takes 2-3 s.

Prices come from the config, else from litellm's own price map file read as JSON (no
litellm import), looked up as litellm's `get_model_info` does for OpenAI models. A model
entry with `client: litellm` goes through litellm instead.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import UserError
from harness.core.records import CallSpec, ProviderReply
from harness.providers import Prices, ProviderError
from harness.providers.batches import completion_reply
from harness.providers.litellm_provider import (
    check_key_destination,
    classify,
    mask_secrets,
    request_params,
)

if TYPE_CHECKING:
    from harness.config import ModelConfig

PREFIX = "openai/"


class _Errors:
    """The exception classes `classify` checks, from the openai client (no litellm import).
    litellm's own classes subclass these, so `classify` reads them the same way."""

    def __init__(self) -> None:
        import openai

        self.RateLimitError = openai.RateLimitError
        self.AuthenticationError = openai.AuthenticationError
        self.Timeout = openai.APITimeoutError
        self.NotFoundError = openai.NotFoundError
        self.BadRequestError = openai.BadRequestError
        self.APIConnectionError = openai.APIConnectionError
        # litellm's own class for this has no openai counterpart; a 400 says it there.
        self.ContextWindowExceededError = _Never


class _Never(Exception):
    pass


class OpenAIProvider:
    def __init__(self, model: ModelConfig):
        self.config = model
        self.api_key = _api_key(model)
        from openai import AsyncOpenAI

        # max_retries=0: the runner retries (with backoff that honours Retry-After), so one
        # place counts attempts and a budget is never overshot by hidden retries.
        self.client = AsyncOpenAI(api_key=self.api_key, base_url=model.api_base, max_retries=0)
        self.name = model.model[len(PREFIX) :]
        self.errors = _Errors()
        self.prices = _prices(model)

    async def complete(self, spec: CallSpec, timeout_s: float) -> ProviderReply:
        body = {"model": self.name, "messages": [dict(m) for m in spec.messages]}
        body.update(request_params(spec))
        start = time.perf_counter()
        try:
            # The client's generic `post`, not `chat.completions.create`: the same request,
            # without the per-call walk over the typed parameters (a fifth of a call's CPU
            # time, measured with cProfile on bench/live_path.py) and without a pydantic
            # model of the response. Auth, headers, timeouts and error classes are the same.
            text = await self.client.post(
                "/chat/completions", cast_to=str, body=body, options={"timeout": timeout_s}
            )
        except Exception as exc:
            if "context_length_exceeded" in str(getattr(exc, "code", "") or ""):
                detail = mask_secrets(str(exc), self.api_key).splitlines()[0][:300]
                raise ProviderError("context_window", detail, retryable=False) from None
            raise classify(exc, self.errors, secret=self.api_key) from None
        latency = time.perf_counter() - start
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProviderError("bad_response", f"Expecting value: {exc}", True) from None
        if not isinstance(data, dict):
            raise ProviderError("bad_response", "the response is not a JSON object", True)
        reply = completion_reply(data, self._cost(data))
        reply.latency_s = latency
        if reply.content and self.api_key:
            # A server (or a prompt-injected model) may echo the credentials in its answer;
            # the reply is cached and written to labels.jsonl, so mask them first.
            reply.content = mask_secrets(reply.content, self.api_key)
        return reply

    def _cost(self, data: dict[str, Any]) -> float | None:
        if self.prices is None:
            return None
        usage = data.get("usage") or {}
        tin, tout = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        return tin * self.prices[0] + tout * self.prices[1]


def _api_key(cfg: ModelConfig) -> str:
    """As the litellm provider resolves it: api_key_env, else any key for a server of one's
    own (api_base), else $OPENAI_API_KEY."""
    if cfg.api_key_env:
        key = os.environ.get(cfg.api_key_env)
        if not key:
            raise UserError.at(
                f"model '{cfg.id}' needs an API key in ${cfg.api_key_env}, which is not set",
                key=f"models.{cfg.id}.api_key_env",
                hint=f"export {cfg.api_key_env}=... (keys never go in the config)",
            )
        check_key_destination(cfg)
        return key
    if cfg.api_base:
        return "sk-no-key"  # OpenAI-compatible local servers accept any key
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise UserError.at(
            f"model '{cfg.id}' ({cfg.model}) needs OPENAI_API_KEY in the environment",
            key=f"models.{cfg.id}",
            hint="export OPENAI_API_KEY=... or set api_key_env",
        )
    return key


def _prices(cfg: ModelConfig) -> Prices | None:
    if cfg.input_cost_per_mtok is not None or cfg.output_cost_per_mtok is not None:
        return (cfg.input_cost_per_mtok or 0.0) / 1e6, (cfg.output_cost_per_mtok or 0.0) / 1e6
    return map_prices(cfg.model)


def map_prices(model: str) -> Prices | None:
    """USD per (input, output) token of an OpenAI model in litellm's price map, read from
    the map's JSON file: `openai/gpt-4o-mini` and `gpt-4o-mini` name the same entry, as in
    litellm's get_model_info. None for a model the map does not list (a server's own)."""
    table = _price_map()
    name = model[len(PREFIX) :] if model.startswith(PREFIX) else model
    for key in (model, name):
        info = table.get(key)
        if isinstance(info, dict) and info.get("litellm_provider") in ("openai", None):
            per_in, per_out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
            if per_in is not None or per_out is not None:
                return float(per_in or 0.0), float(per_out or 0.0)
    return None


@functools.cache
def _price_map() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations)))
    try:
        table = json.loads((path / "model_prices_and_context_window_backup.json").read_text())
    except (OSError, ValueError):
        return {}
    # As litellm expands its map when it loads it: a row `{"alias_of": owner}` is served as
    # the owner's row, and an owner's `aliases` list names it too.
    expanded = dict(table)
    for name, row in table.items():
        if not isinstance(row, dict):
            continue
        owner = row.get("alias_of")
        if isinstance(owner, str) and isinstance(table.get(owner), dict):
            expanded[name] = table[owner]
        for alias in row.get("aliases") or []:
            if isinstance(alias, str) and alias not in table:
                expanded[alias] = row
    return expanded
