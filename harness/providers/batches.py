"""Batch APIs (providers station): what the runner needs of a provider's batch endpoint.

OpenAI's Batch API (and every OpenAI-compatible server with `/v1/files` + `/v1/batches`)
and Anthropic's Message Batches take many calls at once, answer within a window (24 h) at
half the live price, and do not count against live rate limits. Each implementation
(harness/providers/openai_batch.py, harness/providers/anthropic_batch.py) turns call specs
into request lines, submits them, reports the batch's state, and hands back one result per
request: a `ProviderReply` or a `ProviderError`, exactly what a live call would give, so the
runner stores, retries and counts them the same way (harness/run/batch.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harness.core.records import CallSpec, ProviderReply
from harness.providers import ProviderError

# The batch has ended: every request is answered, failed or will never be run.
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled", "ended"})


@dataclass(frozen=True)
class BatchLimits:
    """How much one batch may hold (OpenAI: 50,000 requests and a 200 MB input file;
    Anthropic: 100,000 requests and 256 MB)."""

    max_requests: int
    max_bytes: int


@dataclass
class BatchState:
    """A batch as the provider reports it."""

    id: str
    status: str  # validating, in_progress, finalizing, completed, failed, expired, cancelled...
    total: int = 0
    completed: int = 0
    failed: int = 0
    detail: str = ""  # why a batch failed as a whole (e.g. its input file was rejected)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


Result = tuple[str, ProviderReply | ProviderError]  # (custom id, what it got)


@dataclass(frozen=True)
class LostBatch:
    """What a journal knows of a batch whose id it never got: the input file (if one was
    uploaded), when the request to create it was about to be sent (unix seconds), how many
    requests it held, and the batch ids other journals already claim."""

    file_id: str | None
    since: float
    n: int
    claimed: frozenset[str]


class BatchAPI(Protocol):
    """One model's batch endpoint. Every method may raise `ProviderError` (the runner
    retries transient ones and stops on fatal ones, like a live call)."""

    limits: BatchLimits
    endpoint: str  # where batches go (a journal names it, so a rerun finds its batches)

    def line(self, custom_id: str, spec: CallSpec) -> bytes:
        """One request of the batch input, serialised (its size counts against max_bytes)."""
        ...

    async def submit(self, lines: Sequence[bytes], stage: Any) -> str:
        """Send a batch and return its id. `stage(**fields)` is called with each id the
        provider assigns on the way (an input `file_id`, then `batch_id`) the moment it is
        known, so a process killed in between never submits the same batch twice."""
        ...

    async def find(self, lost: LostBatch) -> str | None:
        """The batch a killed process created but did not write down, if any: by its
        uploaded input file (OpenAI), else by when it was sent and how many requests it
        held (Anthropic, whose batches have no input file)."""
        ...

    async def state(self, batch_id: str) -> BatchState: ...

    def results(self, batch_id: str) -> AsyncIterator[Result]:
        """Every result the provider holds for an ended batch (requests it never ran, e.g.
        of an expired batch, are simply absent)."""
        ...

    async def cancel(self, batch_id: str) -> None: ...


def status_error(status: int | None, message: str, kind: str | None = None) -> ProviderError:
    """A failed request inside a batch, classified like the same HTTP error of a live call
    (harness/providers/litellm_provider.py: classify); fatal errors (a bad key) end the
    batch as a whole before any request is run, so here they only fail the request."""
    if status == 429:
        return ProviderError("rate_limited", message, retryable=True)
    if status is not None and status >= 500:
        return ProviderError(f"http_{status}", message, retryable=True)
    if status in (400, 422):
        return ProviderError("bad_request", message, retryable=False)
    if status == 404:
        return ProviderError("not_found", message, retryable=False)
    if status in (401, 403):
        return ProviderError("auth", message, retryable=False)
    return ProviderError(kind or "batch_error", message, retryable=True)


def completion_reply(body: dict[str, Any], cost_usd: float | None) -> ProviderReply:
    """A chat completion's JSON (a batch result's body) as the reply a live call gives."""
    from harness.providers.litellm_provider import _token_logprobs

    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ProviderError("bad_response", f"no choices in the result: {exc}", True) from None
    usage = body.get("usage") or {}
    return ProviderReply(
        content=content,
        token_logprobs=_token_logprobs(choice.get("logprobs")),
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        cost_usd=cost_usd,
        provider_model=body.get("model"),
        latency_s=None,  # a batch has no per-call latency
    )
