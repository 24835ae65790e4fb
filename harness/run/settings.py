"""Run settings, totals and the labels.jsonl sink (run station): what the runner
(harness/run/runner.py) and its batch lane (harness/run/batch.py) share with the commands
that start them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.core.records import LabelRecord, ProviderReply


@dataclass
class RunSettings:
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 4
    budget_usd: float | None = None
    max_calls: int | None = None  # requests this run may send, retries included
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    retry_failed: bool = False  # re-ask specs whose cached reply fails to parse
    # Batch mode (harness/run/batch.py). batch_dir: where batch journals live, beside the
    # label cache; None (no shared cache, e.g. the canary) calls batch models live.
    batch_dir: Path | None = None
    batch_poll_s: float = 30.0
    batch_deadline_h: float = 24.0
    batch_retry: str = "batch"  # "batch" | "live"
    progress: Callable[[str], None] | None = None  # batch progress lines (default: stderr)


@dataclass
class RunTotals:
    calls: int = 0  # requests sent, retries included
    labels: int = 0
    cached: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    stopped: str | None = None  # "budget" or "max_calls" if a cap stopped the run
    # Failed requests by kind, retried or not (`failures` counts only the records that
    # ended as failures), and per model what the rate limiter did.
    request_errors: dict[str, int] = field(default_factory=dict)
    limits: dict[str, dict] = field(default_factory=dict)
    retried: int = 0  # --retry-failed: cached failed replies asked again
    recovered: int = 0  # ... whose new reply parses
    # Batch mode, per model: batches and requests submitted, batches of an earlier process
    # resumed, requests retried after failing inside a batch.
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)

    def batch_stats(self, model_id: str) -> dict[str, Any]:
        return self.batches.setdefault(
            model_id, {"batches": 0, "requests": 0, "resumed": 0, "retried": 0}
        )

    def count(self, record: LabelRecord) -> None:
        self.labels += 1
        self.cached += record.cached
        if record.failure:
            self.failures[record.failure] = self.failures.get(record.failure, 0) + 1
        if not record.cached:
            self.cost_usd += record.cost_usd or 0.0
            self.input_tokens += record.input_tokens or 0
            self.output_tokens += record.output_tokens or 0


class LabelSink:
    """labels.jsonl, appended one whole line at a time and flushed as results arrive."""

    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: LabelRecord) -> None:
        self._file.write(record.model_dump_json(exclude_none=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class ReplyCache(Protocol):
    """What a run needs of a cache: the label cache (harness/run/cache.py), or a scratch one
    in memory that bypasses it (the drift canary, harness/run/calls.py)."""

    def get(self, key: str) -> ProviderReply | None: ...
    def contains(self, key: str) -> bool: ...
    def set(self, key: str, reply: ProviderReply) -> None: ...
