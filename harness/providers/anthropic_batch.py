"""Anthropic's Message Batches (providers station), through the official `anthropic` SDK
(the optional extra `prelabel[anthropic]`).

A request is the body litellm sends for the same spec live: its own Anthropic transformation
(`get_optional_params` + `AnthropicConfig.transform_request`, the pair litellm's own Claude
batch rows are built with) turns the chat messages into Anthropic's (system messages to
`system`, the model's default `max_tokens`, `temperature`/`top_p`/`stop_sequences`), and a
response schema into what the live call asks for on that model: `output_format` where the
model has native structured output (with its `anthropic-beta` flag), else a forced tool
(`json_tool_call`). A result is read back with litellm's parser of a live reply, so a batch
answer and a live answer of one spec are the same text and share one cache entry.

Anthropic has no log-probabilities and no seed: both are left out of a request (a live call
through litellm refuses a seed for Anthropic models).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from harness.core.errors import UserError
from harness.core.records import CallSpec
from harness.providers import ProviderError, batch_prices
from harness.providers.batches import (
    BatchLimits,
    BatchState,
    LostBatch,
    Result,
    completion_reply,
)
from harness.providers.batches import status_error as _status_error
from harness.providers.litellm_provider import (
    LiteLLMProvider,
    _litellm,
    classify,
    mask_secrets,
    request_params,
)

if TYPE_CHECKING:
    from harness.config import ModelConfig

LIMITS = BatchLimits(max_requests=100_000, max_bytes=256 * 1024 * 1024)
SKEW_S = 300.0  # how far the provider's clock may be behind ours when a lost batch is sought
# Not a parameter of an Anthropic request (seed: one answer per sample needs it, and litellm
# refuses it for Anthropic; log-probabilities: Anthropic has none).
DROPPED = ("seed", "logprobs", "top_logprobs")
# An errored request's error type -> the HTTP status of the same error on a live call
# (https://docs.anthropic.com/en/api/errors), so it is retried or not like that call.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicBatches:
    def __init__(self, model: ModelConfig):
        self.config = model
        litellm = _litellm()
        self._litellm = litellm
        try:
            from anthropic import AsyncAnthropic
        except ImportError:  # an optional extra: only batch mode on Anthropic needs it
            raise UserError.at(
                f"model '{model.id}' ({model.model}) sends batches through Anthropic's SDK, "
                "which is not installed",
                key=f"models.{model.id}.batch",
                hint="pip install 'prelabel[anthropic]' (or remove batch: true to call this "
                "model live)",
            ) from None
        self.model_name = model.model.split("/", 1)[1]
        # The live provider's checks: the key variable is set, and it goes only to a host
        # the environment allows. A config-chosen api_base without api_key_env never gets
        # ANTHROPIC_API_KEY (the live call does not send it there either).
        key = LiteLLMProvider(model).api_key or os.environ.get("ANTHROPIC_API_KEY")
        self.api_key = key
        # The SDK appends /v1/messages/batches; litellm takes api_base with or without /v1.
        base = (model.api_base or "").rstrip("/").removesuffix("/v1/messages").removesuffix("/v1")
        # The client's own retries (2) cover a dropped poll; the runner retries the rest.
        self.client = AsyncAnthropic(api_key=key, base_url=base or None, timeout=120.0)
        self.endpoint = str(self.client.base_url).rstrip("/")
        self.limits = LIMITS
        self.prices = batch_prices(model)[0]
        self._optional: dict[str, dict[str, Any]] = {}  # params + schema -> litellm's mapping
        self.betas: set[str] = set()  # anthropic-beta flags the requests sent so far need

    # ------------------------------------------------------------------ requests
    def params(self, spec: CallSpec) -> tuple[dict[str, Any], set[str]]:
        """The Messages API body litellm would send for `spec` live, and the beta flags
        (the `anthropic-beta` header) it needs."""
        from litellm.llms.anthropic.chat.transformation import AnthropicConfig

        kwargs = {k: v for k, v in request_params(spec).items() if k not in DROPPED}
        messages = [dict(m) for m in spec.messages]
        memo = json.dumps(kwargs, sort_keys=True, default=str)
        optional = self._optional.get(memo)
        if optional is None:  # the same for every spec of a model: mapped once, checked once
            optional = self._optional[memo] = self._map(kwargs, messages)
        headers: dict[str, str] = {}
        body = AnthropicConfig().transform_request(
            model=self.model_name,
            messages=messages,
            optional_params=copy.deepcopy(optional),  # litellm may edit it (tools, schema)
            litellm_params={},
            headers=headers,
        )
        betas = {b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip()}
        return dict(body), betas

    def _map(self, kwargs: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
        from litellm.utils import get_optional_params

        try:
            optional = get_optional_params(
                model=self.model_name, custom_llm_provider="anthropic", messages=messages, **kwargs
            )
        except Exception as exc:  # a parameter this model refuses (litellm's own check)
            text = str(exc).removeprefix("litellm.UnsupportedParamsError: ").splitlines()[0]
            text = text.split(" To drop unsupported params")[0]  # litellm's advice, not ours
            raise UserError.at(
                f"model '{self.config.id}' ({self.config.model}) refuses a request parameter: "
                f"{text[:300]}",
                key=f"models.{self.config.id}.params",
                hint="set that parameter under params to a value the model accepts (prelabel "
                "sends temperature 0 unless params sets it)",
            ) from None
        return {k: v for k, v in optional.items() if k != "json_mode"}

    def line(self, custom_id: str, spec: CallSpec) -> bytes:
        params, betas = self.params(spec)
        self.betas |= betas
        request = {"custom_id": custom_id, "params": params}
        return json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    async def _api(self, call: Any) -> Any:
        try:
            return await call
        except Exception as exc:
            raise classify(exc, self._litellm, secret=self.api_key) from None

    async def submit(self, lines: Sequence[bytes], stage: Any) -> str:
        requests = [json.loads(line) for line in lines]
        # One header for the batch: every flag any of its requests needs (an unneeded flag
        # changes nothing).
        headers = {"anthropic-beta": ",".join(sorted(self.betas))} if self.betas else None
        batch = await self._api(
            self.client.messages.batches.create(requests=requests, extra_headers=headers)
        )
        stage(batch_id=batch.id)
        return str(batch.id)

    async def find(self, lost: LostBatch) -> str | None:
        """A batch created at most SKEW_S before the journal's clock said it was sent (the
        provider's clock may be behind ours) or any time after, holding as many requests,
        that no other journal claims; the closest in time if several. Custom ids are unique
        to their journal, so a wrong pick can only give results that match no request: the
        lane then sends those requests again (harness/run/batch.py)."""
        best: tuple[float, str] | None = None
        page = await self._api(self.client.messages.batches.list(limit=100))
        while True:
            for b in page.data:  # newest first
                created = b.created_at.timestamp()
                if created < lost.since - SKEW_S:
                    return best[1] if best else None
                c = b.request_counts
                total = c.processing + c.succeeded + c.errored + c.canceled + c.expired
                if total == lost.n and str(b.id) not in lost.claimed:
                    gap = abs(created - lost.since)
                    best = min(best, (gap, str(b.id))) if best else (gap, str(b.id))
            if not page.has_next_page():
                return best[1] if best else None
            page = await self._api(page.get_next_page())

    # ------------------------------------------------------------------ state and results
    async def state(self, batch_id: str) -> BatchState:
        b = await self._api(self.client.messages.batches.retrieve(batch_id))
        counts = b.request_counts
        status = str(b.processing_status)
        if status == "ended" and counts.canceled:
            status = "cancelled"  # someone cancelled it: what it did not run fails for good
        elif status == "ended" and counts.expired:
            status = "expired"  # the 24 h window closed: what it did not run is sent again
        elif status == "canceling":
            status = "cancelling"
        return BatchState(
            id=str(b.id),
            status=status,
            total=counts.processing
            + counts.succeeded
            + counts.errored
            + counts.canceled
            + counts.expired,
            completed=counts.succeeded,
            failed=counts.errored,
        )

    async def results(self, batch_id: str) -> AsyncIterator[Result]:
        decoder = await self._api(self.client.messages.batches.results(batch_id))
        try:
            async for row in decoder:  # streamed: a batch's results may be large
                result = self._result(row)
                if result is not None:
                    yield result
        except ProviderError:
            raise
        except Exception as exc:  # the stream broke off: the lane reads it all again
            raise classify(exc, self._litellm, secret=self.api_key) from None

    def _result(self, row: Any) -> Result | None:
        custom_id, result = str(row.custom_id), row.result
        kind = getattr(result, "type", None)
        if kind == "succeeded":
            try:
                return custom_id, self._reply(result.message.to_dict())
            except ProviderError as exc:
                return custom_id, exc
        if kind == "errored":
            error = getattr(getattr(result, "error", None), "error", None)
            etype = str(getattr(error, "type", "") or "")
            message = str(getattr(error, "message", "") or etype or "errored")
            text = mask_secrets(message, self.api_key)[:300]
            return custom_id, _status_error(ERROR_STATUS.get(etype), text, etype or None)
        # expired or canceled: never run. No result, as for OpenAI's batches: the lane
        # fails or resends it by the batch's state (expired -> sent again).
        return None

    def _reply(self, message: dict[str, Any]) -> Any:
        """A succeeded request's message as a live call's reply: litellm's own parser of an
        Anthropic answer (a forced tool's input becomes the JSON text of the answer)."""
        import httpx
        from litellm.llms.anthropic.chat.transformation import AnthropicConfig
        from litellm.types.utils import ModelResponse

        try:
            response = AnthropicConfig().transform_parsed_response(
                completion_response=message,
                raw_response=httpx.Response(200, json=message),
                model_response=ModelResponse(),
                json_mode=True,  # only a response-format tool is ever in a request
            )
        except Exception as exc:
            raise ProviderError("bad_response", f"unreadable message: {exc}"[:300], True) from None
        body = response.model_dump()
        reply = completion_reply(body, self._cost(body))
        if reply.content and self.api_key:
            reply.content = mask_secrets(reply.content, self.api_key)
        return reply

    def _cost(self, body: dict[str, Any]) -> float | None:
        if self.prices is None:
            return None
        usage = body.get("usage") or {}
        tin, tout = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        return tin * self.prices[0] + tout * self.prices[1]

    async def cancel(self, batch_id: str) -> None:
        await self._api(self.client.messages.batches.cancel(batch_id))
