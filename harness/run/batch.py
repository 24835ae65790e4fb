"""Batch mode (run station): one model's uncached calls as provider batches, not live calls.

For a model with `batch: true` the runner hands its pending specs to a `BatchLane`:

1. Specs sharing a cache key are one request. Requests already in a batch that an earlier
   process submitted (its journal is open: harness/run/batch_journal.py) are not sent again;
   that batch is polled instead.
2. The rest go out in batches split by the provider's limits on requests and bytes, each
   counted against run.max_calls and run.budget_usd before it is sent (a cap that refuses a
   request leaves it unsent and unrecorded, like a live call: the next run sends it).
3. Every `run.batch_poll_s` the open batches are asked for their state and a progress line
   is printed. An ended batch's results are stored in the cache one by one (a label is
   never lost once it is there), then become records exactly as live replies do; its
   journal is removed after that.
4. Requests that failed inside a batch, or that an expired batch never ran, are retried
   within `run.retries`: in a new batch, or live with `run.batch_retry: live`; a cancelled
   or rejected batch fails its requests for good. After `run.batch_deadline_h` the process
   stops waiting and the run stops short ("stopped: batch_deadline"); the batches go on at
   the provider and the same command (or `--resume`) collects them.

Errors of the batch endpoint itself (upload, create, poll) are retried with backoff like
live calls; a fatal one (a bad key) or one that outlasts the retries stops the run, and the
journals keep what was submitted.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from harness.core.errors import UserError
from harness.core.records import CallSpec, ProviderReply
from harness.providers import ProviderError
from harness.providers.batches import BatchAPI, BatchState, LostBatch
from harness.run.batch_journal import Journal, open_journals
from harness.run.ratelimit import Stopped

PROGRESS_EVERY_S = 60.0  # a progress line at least this often while nothing changes


class BatchLane:
    """One model's specs through batches. `runner` is the `Runner` (harness/run/runner.py),
    whose cache, caps, totals and records the lane shares; typed loosely because the runner
    imports this module, not the other way round."""

    def __init__(
        self, runner: Any, model_ids: Sequence[str], specs: Sequence[CallSpec], api: BatchAPI
    ):
        self.runner = runner
        self.model_ids = list(model_ids)  # entries sending the same requests to one endpoint
        self.model_id = model_ids[0]  # named in journals, totals and progress
        self.api = api
        self.settings = runner.settings
        self.folder = runner.settings.batch_dir
        self.waiting: dict[str, list[CallSpec]] = {}  # cache key -> its specs, unanswered
        for spec in specs:
            self.waiting.setdefault(spec.cache_key, []).append(spec)
        self.rounds: dict[str, int] = {}  # cache key -> requests made for it so far
        self.estimates: dict[str, float] = {}  # cache key -> cost held by the caps
        self.open: list[Journal] = []
        self.live: list[CallSpec] = []  # to call live (run.batch_retry: live)
        self.started = time.monotonic()
        self._said = ("", 0.0)
        self.states: dict[str, BatchState] = {}  # batch id -> its last known state
        self.stats = runner.totals.batch_stats(self.model_id)

    async def run(self) -> list[CallSpec]:
        """Label every spec or stop; returns the specs left to call live."""
        if self.settings.budget_usd is not None and getattr(self.api, "prices", 0) is None:
            self.runner.gate.halt()  # a budget needs a price before anything is sent
            self.runner._fatal = self.runner._fatal or UserError.at(
                f"run.budget_usd is set but the batch price of model '{self.model_id}' is "
                "unknown, so the budget cannot be enforced",
                key=f"models.{self.model_id}",
                hint="set input_cost_per_mtok and output_cost_per_mtok for this model",
            )
            return []
        mine = [
            j
            for j in open_journals(self.folder, self.api.endpoint)
            if not self.waiting.keys().isdisjoint(j.keys.values())
        ]
        taken: set[str] = set()
        for journal in mine:  # submitted by an earlier process: poll, never send again
            if await self._reattach(journal):
                taken.update(journal.keys.values())
                self.stats["resumed"] += 1
        await self._submit([k for k in self.waiting if k not in taken], round=0)
        deadline = self.started + self.settings.batch_deadline_h * 3600
        while self.open and not self.runner._fatal:
            if time.monotonic() >= deadline:
                self.runner.totals.stopped = self.runner.totals.stopped or "batch_deadline"
                self._progress(force=True)
                return []
            await asyncio.sleep(
                min(self.settings.batch_poll_s, max(0.0, deadline - time.monotonic()))
            )
            for journal in list(self.open):
                state = await self._api(lambda j=journal: self.api.state(j.batch_id))
                if state is None:
                    return []  # the endpoint failed for good: the runner reports it
                self._seen(journal, state)
                if state.ended:
                    await self._collect(journal, state)
            self._progress()
        return self.live

    # ------------------------------------------------------------------ submitting
    async def _reattach(self, journal: Journal) -> bool:
        """An earlier process's batch: keep polling it if it exists at the provider."""
        if journal.batch_id is None:  # killed before its id was written: look it up
            claimed = frozenset(
                j.batch_id
                for j in open_journals(self.folder, self.api.endpoint)
                if j.batch_id is not None
            )
            lost = LostBatch(journal.file_id, journal.created_at, len(journal.keys), claimed)
            found = await self._api(lambda: self.api.find(lost))
            if isinstance(found, str):  # not None (failed) nor True (_api's "no value")
                journal.stage(batch_id=found)
        if journal.batch_id is None:  # killed before the batch existed: nothing was sent
            journal.done()
            return False
        for key in journal.keys.values():
            self.rounds[key] = max(self.rounds.get(key, 0), journal.round + 1)
        self.open.append(journal)
        return True

    async def _submit(self, keys: list[str], round: int) -> None:
        """Send `keys` in as many batches as the provider's limits need."""
        gate, limits = self.runner.gate, self.api.limits
        chunk: dict[str, str] = {}
        lines: list[bytes] = []
        size = 0
        # Custom ids unique to their batch's journal: results of a batch that is not the
        # journal's (a lost Anthropic batch is found by time and size) match none of them.
        token = uuid.uuid4().hex[:10]
        for key in keys:
            spec = self.waiting[key][0]
            try:
                self.estimates[key] = gate.reserve(spec)
            except Stopped as stop:
                if stop.reason != "halted":
                    self.runner.totals.stopped = self.runner.totals.stopped or stop.reason
                break  # the rest are not sent, not recorded: the next run sends them
            custom_id = f"{token}-r{len(chunk)}"
            line = self.api.line(custom_id, spec)
            if chunk and (len(chunk) >= limits.max_requests or size + len(line) > limits.max_bytes):
                await self._send(chunk, lines, round)
                chunk, lines, size = {}, [], 0
                token = uuid.uuid4().hex[:10]
                custom_id = f"{token}-r0"
                line = self.api.line(custom_id, spec)
            chunk[custom_id], size = key, size + len(line)
            lines.append(line)
        if chunk:
            await self._send(chunk, lines, round)

    async def _send(self, chunk: dict[str, str], lines: list[bytes], round: int) -> None:
        if self.runner._fatal:
            return
        journal = Journal.new(self.folder, self.api.endpoint, self.model_id, chunk, round)
        batch_id = await self._api(lambda: self.api.submit(lines, journal.stage))
        if batch_id is None:
            if journal.file_id is None:
                journal.done()  # nothing reached the provider
            return
        self.runner.totals.calls += len(chunk)
        for key in chunk.values():
            self.rounds[key] = self.rounds.get(key, 0) + 1
        self.stats["batches"] += 1
        self.stats["requests"] += len(chunk)
        self.open.append(journal)
        self._progress(force=True)

    # ------------------------------------------------------------------ collecting
    async def _collect(self, journal: Journal, state: BatchState) -> None:
        got: set[str] = set()
        failed: dict[str, ProviderError] = {}

        foreign = 0

        async def read() -> None:
            nonlocal foreign
            async for custom_id, result in self.api.results(journal.batch_id):
                key = journal.keys.get(custom_id)
                foreign += key is None
                if key is None or key in got:
                    continue
                got.add(key)
                if isinstance(result, ProviderReply) and not (result.content or "").strip():
                    failed[key] = ProviderError(
                        "empty_response",
                        "the model returned no text",
                        True,
                        cost_usd=result.cost_usd,
                    )
                elif isinstance(result, ProviderReply):
                    self._answered(key, result)
                else:
                    failed[key] = result

        if await self._api(read) is None:
            return  # results could not be read: the journal stays, a rerun reads them
        if foreign and not got:  # a lost batch looked up wrongly: not ours, send ours again
            self.open.remove(journal)
            journal.done()
            keys = [k for k in journal.keys.values() if k in self.waiting]
            await self._submit(keys, round=journal.round)
            return
        for key in journal.keys.values():
            if key not in got and key in self.waiting:
                failed[key] = _unrun(state)
        self.open.remove(journal)
        journal.done()
        retry = []
        errors = self.runner.totals.request_errors
        for key, error in failed.items():
            errors[error.kind] = errors.get(error.kind, 0) + 1
            self.runner.gate.settle(self.estimates.pop(key, 0.0), error.cost_usd)
            if key not in self.waiting:
                continue
            if error.retryable and self.rounds.get(key, 1) <= self.settings.retries:
                retry.append(key)
            else:
                self._failed(key, error)
        if retry:
            self.stats["retried"] += len(retry)
            if self.settings.batch_retry == "live":
                for key in retry:
                    self.live.extend(self.waiting.pop(key))
            else:
                await self._submit(retry, round=journal.round + 1)

    def _answered(self, key: str, reply: ProviderReply) -> None:
        """Into the cache first (paid for: never lost), then one record per spec."""
        self.runner.cache.set(key, reply)
        self.runner.gate.settle(self.estimates.pop(key, 0.0), reply.cost_usd)
        for model_id in self.model_ids:
            self.runner.health.answered(model_id)
        specs = self.waiting.pop(key, None)
        if specs is None:  # another run's request in the same batch: cached for it
            return
        started = time.time()
        attempts = self.rounds.get(key, 1)
        for i, spec in enumerate(specs):  # the first pays; sharers read it, like live calls
            self.runner.emit(self.runner._record(spec, reply, i > 0, attempts * (i == 0), started))

    def _failed(self, key: str, error: ProviderError) -> None:
        error.attempts = self.rounds.get(key, 1)
        for spec in self.waiting.pop(key, []):
            self.runner.emit(self.runner._failure(spec, error, error.attempts, time.time()))

    # ------------------------------------------------------------------ the endpoint
    async def _api(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """A call to the batch endpoint with the runner's retries and backoff. None (or
        False for a call that returns nothing) once it has failed for good; a fatal error
        or one that outlasted the retries stops the run."""
        s = self.settings
        for attempt in range(s.retries + 1):
            try:
                result = await call()
                return True if result is None else result
            except ProviderError as error:
                errors = self.runner.totals.request_errors
                errors[error.kind] = errors.get(error.kind, 0) + 1
                if error.fatal or not error.retryable or attempt == s.retries:
                    for model_id in self.model_ids:
                        self.runner._stop(model_id, error.kind)
                    return None
                wait = min(s.backoff_max_s, s.backoff_initial_s * 2**attempt)
                await asyncio.sleep(error.retry_after_s or wait)
        return None

    # ------------------------------------------------------------------ progress
    def _seen(self, journal: Journal, state: BatchState) -> None:
        self.states[state.id] = state

    def _progress(self, force: bool = False) -> None:
        states = [self.states[j.batch_id] for j in self.open if j.batch_id in self.states]
        done = sum(s.completed for s in states)
        bad = sum(s.failed for s in states)
        elapsed = time.monotonic() - self.started
        text = (
            f"batch {self.model_id}: {self.stats['requests']} requests in "
            f"{self.stats['batches']} batches submitted, {len(self.open)} open "
            f"({done} completed, {bad} failed so far), {len(self.waiting)} labels to come"
        )
        last, at = self._said
        if force or text != last or elapsed - at >= PROGRESS_EVERY_S:
            self._said = (text, elapsed)
            say = self.settings.progress or (lambda line: print(line, file=sys.stderr))
            say(f"{text}, {_clock(elapsed)} elapsed")


def _unrun(state: BatchState) -> ProviderError:
    """A request an ended batch holds no result for."""
    if state.status == "expired":  # the window closed first: worth asking again
        return ProviderError("batch_expired", "the batch expired before this request ran", True)
    if state.status == "cancelled":
        return ProviderError("batch_cancelled", "the batch was cancelled", False)
    detail = f": {state.detail}" if state.detail else ""
    return ProviderError(f"batch_{state.status}", f"the batch {state.status}{detail}", False)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
