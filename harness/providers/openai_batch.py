"""OpenAI's Batch API and every OpenAI-compatible server with `/v1/files` + `/v1/batches`
(OpenAI, hosted vLLM, ...), and Azure OpenAI's (`AzureBatches`), through the official `openai`
client (a dependency of litellm).

A request line is the live call's body (harness/providers/litellm_provider.request_params),
so a batch answer and a live answer of one spec share one cache entry. The model name in a
line is the provider's own (`gpt-4o-mini`, not `openai/gpt-4o-mini`), as litellm resolves it.
"""

from __future__ import annotations

import json
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

# litellm provider names whose servers speak OpenAI's Batch API at `api_base`.
OPENAI_COMPATIBLE = frozenset({"openai", "hosted_vllm", "custom_openai"})
LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)
# litellm arguments a config may put under params that say where and how to call, which a
# batch line must not carry in its body.
CLIENT_PARAMS = ("api_version", "api_key", "api_base", "base_url")
AZURE_API_VERSION = "2024-10-21"  # the first GA version with the Batch API


class OpenAIBatches:
    PROVIDERS = OPENAI_COMPATIBLE
    URL = "/v1/chat/completions"  # where each line of the batch goes

    def __init__(self, model: ModelConfig):
        self.config = model
        litellm = _litellm()
        self._litellm = litellm
        try:
            name, provider, _, _ = litellm.get_llm_provider(model.model, api_base=model.api_base)
        except Exception:  # litellm does not know the model string at all
            name, provider = model.model, None
        if provider not in self.PROVIDERS:
            raise UserError.at(
                f"model '{model.id}' ({model.model}) has no OpenAI-compatible batch endpoint "
                f"(litellm provider {provider or 'unknown'})",
                key=f"models.{model.id}.batch",
                hint="batch mode covers openai/..., azure/..., hosted_vllm/... and any "
                "OpenAI-compatible server with /v1/batches (set api_base), and anthropic/...; "
                "remove batch: true to call this model live",
            )
        self.model_name = name
        key = LiteLLMProvider(model).api_key  # the live provider's checks: env var, host
        self.api_key, self.client = self._client(model, key)
        self.endpoint = str(self.client.base_url).rstrip("/")
        self.limits = LIMITS
        self.prices = batch_prices(model)[0]

    def _client(self, model: ModelConfig, key: str | None) -> tuple[str | None, Any]:
        from openai import AsyncOpenAI

        # The client's own retries (2) cover a dropped poll; the runner retries the rest.
        return key, AsyncOpenAI(api_key=key, base_url=model.api_base, timeout=120.0)

    def line(self, custom_id: str, spec: CallSpec) -> bytes:
        body = {"model": self.model_name, "messages": [dict(m) for m in spec.messages]}
        body.update(request_params(spec))
        for name in CLIENT_PARAMS:  # how to reach the model, not part of the question
            body.pop(name, None)
        request = {"custom_id": custom_id, "method": "POST", "url": self.URL, "body": body}
        return json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    async def _api(self, call: Any) -> Any:
        try:
            return await call
        except Exception as exc:
            raise classify(exc, self._litellm, secret=self.api_key) from None

    async def submit(self, lines: Sequence[bytes], stage: Any) -> str:
        data = b"".join(lines)
        upload = await self._api(
            self.client.files.create(file=("prelabel-batch.jsonl", data), purpose="batch")
        )
        stage(file_id=upload.id)
        batch = await self._api(
            self.client.batches.create(
                input_file_id=upload.id,
                endpoint=self.URL,
                completion_window="24h",
                metadata={"created_by": "prelabel"},
            )
        )
        stage(batch_id=batch.id)
        return str(batch.id)

    async def find(self, lost: LostBatch) -> str | None:
        if lost.file_id is None:  # killed before the upload finished: no batch can exist
            return None
        page = await self._api(self.client.batches.list(limit=100))
        while True:
            for batch in page.data:
                if batch.input_file_id == lost.file_id:
                    return str(batch.id)
            if not page.has_next_page():
                return None
            page = await self._api(page.get_next_page())

    async def state(self, batch_id: str) -> BatchState:
        b = await self._api(self.client.batches.retrieve(batch_id))
        counts = b.request_counts
        errors = getattr(getattr(b, "errors", None), "data", None) or []
        detail = "; ".join(str(getattr(e, "message", e)) for e in errors)
        return BatchState(
            id=str(b.id),
            status=str(b.status),
            total=getattr(counts, "total", 0) or 0,
            completed=getattr(counts, "completed", 0) or 0,
            failed=getattr(counts, "failed", 0) or 0,
            detail=mask_secrets(detail, self.api_key)[:300],
        )

    async def results(self, batch_id: str) -> AsyncIterator[Result]:
        b = await self._api(self.client.batches.retrieve(batch_id))
        for file_id in (b.output_file_id, b.error_file_id):
            if not file_id:
                continue
            content = await self._api(self.client.files.content(file_id))
            for raw in content.text.splitlines():
                if raw.strip():
                    yield self._result(raw)

    def _result(self, raw: str) -> Result:
        try:
            row = json.loads(raw)
            custom_id = str(row["custom_id"])
        except (ValueError, KeyError, TypeError):
            return "", ProviderError("bad_response", f"unreadable result line: {raw[:200]}", True)
        response = row.get("response") or {}
        error = row.get("error")
        status = response.get("status_code")
        body = response.get("body")
        if status == 200 and isinstance(body, dict) and not error:
            try:
                reply = completion_reply(body, self._cost(body))
            except ProviderError as exc:
                return custom_id, exc
            if reply.content and self.api_key:
                reply.content = mask_secrets(reply.content, self.api_key)
            return custom_id, reply
        message = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = str(body["error"].get("message", ""))
        if isinstance(error, dict):
            message = message or str(error.get("message", ""))
        code = error.get("code") if isinstance(error, dict) else None
        text = mask_secrets(message or f"status {status}", self.api_key)[:300]
        return custom_id, _status_error(status, text, code)

    def _cost(self, body: dict[str, Any]) -> float | None:
        if self.prices is None:
            return None
        usage = body.get("usage") or {}
        tin, tout = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        return tin * self.prices[0] + tout * self.prices[1]

    async def cancel(self, batch_id: str) -> None:
        await self._api(self.client.batches.cancel(batch_id))


class AzureBatches(OpenAIBatches):
    """Azure OpenAI's Batch API: the same Files and Batches calls, under `{endpoint}/openai/`
    with an `api-version` and the `api-key` header (the `openai` package's AsyncAzureOpenAI),
    each line addressed to `/chat/completions` with the deployment as its model. Endpoint,
    key and version as litellm takes them for a live azure/... call: api_base, api_key_env
    and params.api_version, else $AZURE_API_BASE, $AZURE_API_KEY and $AZURE_API_VERSION."""

    PROVIDERS = frozenset({"azure"})
    URL = "/chat/completions"

    def _client(self, model: ModelConfig, key: str | None) -> tuple[str | None, Any]:
        import os

        from openai import AsyncAzureOpenAI

        endpoint = model.api_base or os.environ.get("AZURE_API_BASE")
        if not endpoint:
            raise UserError.at(
                f"model '{model.id}' ({model.model}) needs its Azure endpoint for batch mode",
                key=f"models.{model.id}.api_base",
                hint="set api_base to https://<resource>.openai.azure.com (or export "
                "AZURE_API_BASE)",
            )
        key = key or os.environ.get("AZURE_API_KEY")
        version = str(
            model.params.get("api_version")
            or os.environ.get("AZURE_API_VERSION")
            or AZURE_API_VERSION
        )
        client = AsyncAzureOpenAI(
            api_key=key, azure_endpoint=endpoint, api_version=version, timeout=120.0
        )
        return key, client
