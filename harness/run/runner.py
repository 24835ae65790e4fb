"""Call: run every call spec through the cache or a provider, concurrently, never paying twice.

- Cached replies are served first, without a provider (so without importing litellm).
- Uncached calls run with retries and exponential backoff with jitter (tenacity) that
  honour Retry-After, and a timeout per call. Every request passes `Gate.slot`
  (harness/run/ratelimit.py): the model's rpm/tpm limits and adaptive concurrency (halved on a
  429), `run.concurrency` in flight in all, and the hard caps `run.max_calls` and
  `run.budget_usd`. A request the caps refuse stops the run cleanly: that call is not
  recorded, so the same command later makes it.
- A reply is stored in the cache the moment it arrives, before it is parsed or written
  anywhere else: a kill after that point loses nothing that was paid for.
- Every spec ends as exactly one `LabelRecord` appended to labels.jsonl: a label or a
  failure with its reason. A failure never stops the run; a fatal provider error
  (bad key, unknown model, no quota left) does, since every further call would fail the
  same way, and so do a few identical refused connections of a model that never answered
  (harness/run/provider_health.py). A setup that got no answer at all ends the run with an
  error too: there is nothing to score.
- `retry_failed`: cached replies that fail to parse are asked again; the new record keeps
  the old failure and text (`retried_from`, `previous_raw`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from harness.config import ModelConfig
from harness.core.errors import UserError
from harness.core.records import CallSpec, LabelRecord, ProviderReply
from harness.providers import Provider, ProviderError, make_provider
from harness.run.batch import BatchLane
from harness.run.provider_health import Health
from harness.run.ratelimit import Gate, Stopped
from harness.run.reply_records import SWAP, failure_record, to_record
from harness.run.settings import LabelSink, ReplyCache, RunSettings, RunTotals
from harness.tasks.labelspace import LabelSpace

__all__ = [
    "SWAP",
    "LabelSink",
    "ReplyCache",
    "RunSettings",
    "RunTotals",
    "Runner",
    "failure_record",
    "to_record",
]

RETRY_AFTER_CAP_S = 120.0


class Runner:
    def __init__(
        self,
        specs: Sequence[CallSpec],
        models: dict[str, ModelConfig],
        base: Path,
        cache: ReplyCache,
        labels: Sequence[str] | LabelSpace,
        settings: RunSettings,
        on_record: Callable[[LabelRecord], None],
        providers: dict[str, Provider] | None = None,
        gate: Gate | None = None,  # limits shared beyond this runner (a Ray shard's)
    ):
        self.specs = specs
        self.models = models
        self.base = base
        self.cache = cache
        self.labels = labels if isinstance(labels, LabelSpace) else list(labels)
        self.settings = settings
        self.on_record = on_record
        self.providers: dict[str, Provider] = dict(providers or {})
        self.totals = RunTotals()
        self._inflight: dict[str, asyncio.Future[ProviderReply]] = {}
        self._fatal: UserError | None = None
        self.health = Health(models)
        # --retry-failed: key -> the cached record that failed to parse, and the new replies
        # (a key shared by two specs is asked once: until its new reply is stored, the cache
        # still holds the old one, so a sharer reads `_fresh`, never the cache).
        self._retry: dict[str, LabelRecord] = {}
        self._fresh: dict[str, ProviderReply] = {}
        self.gate = gate or Gate(
            models,
            settings.concurrency,
            budget_usd=settings.budget_usd,
            max_calls=settings.max_calls,
        )

    def emit(self, record: LabelRecord) -> None:
        self.totals.count(record)
        self.health.record(record)
        self.on_record(record)

    def _record(
        self, spec: CallSpec, reply: ProviderReply, cached: bool, attempts: int, started: float
    ) -> LabelRecord:
        record = to_record(
            spec, reply, self.labels, cached=cached, attempts=attempts, started=started
        )
        self._retried(spec, record)
        return record

    def _retried(self, spec: CallSpec, record: LabelRecord) -> None:
        """A re-asked failed reply: keep the old failure and text beside the new answer."""
        old = self._retry.get(spec.cache_key)
        if old is not None:
            record.retried_from, record.previous_raw = old.failure, old.raw
            self.totals.recovered += record.failure is None

    async def run(self) -> RunTotals:
        pending: list[CallSpec] = []
        for spec in self.specs:  # cached first: no provider, no network, no litellm import
            started = time.time()
            reply = self.cache.get(spec.cache_key)
            if reply is None:
                pending.append(spec)
                continue
            record = to_record(spec, reply, self.labels, cached=True, attempts=0, started=started)
            if self.settings.retry_failed and record.failure is not None:
                self._retry[spec.cache_key] = record
                self.totals.retried += 1
                pending.append(spec)
            else:
                self.emit(record)
        if pending:
            for model_id in dict.fromkeys(s.model_id for s in pending):
                if model_id not in self.providers:
                    self.providers[model_id] = make_provider(self.models[model_id], self.base)
            by_model: dict[str, list[CallSpec]] = {}
            for spec in pending:
                by_model.setdefault(spec.model_id, []).append(spec)
            # Local models block while they compute: inline (faster) when nothing else runs.
            active = [self.providers[model_id] for model_id in by_model]
            alone = all(hasattr(p, "inline") for p in active)
            for provider in active:
                if hasattr(provider, "inline"):
                    provider.inline = alone  # type: ignore[attr-defined]
            lanes = [self._feed(specs) for specs in self._batch_groups(by_model).pop(None, [])]
            lanes += [self._batched(ids, specs) for ids, specs in self._batches(by_model)]
            try:
                await asyncio.gather(*lanes)
            finally:
                self.totals.limits = self.gate.stats()
        dead = self.health.unanswered()
        if dead and not self._fatal:  # nothing to score for these setups: not a result
            self._fatal = self.health.error(self._models_of(dead), self.settings.timeout_s)
        if self._fatal:
            raise self._fatal
        return self.totals

    def _models_of(self, setups: Sequence[str]) -> dict[str, str]:
        """Setup id -> model id, in the order given (only on the error path: scans specs)."""
        wanted = set(setups)
        model = {s.setup_id: s.model_id for s in self.specs if s.setup_id in wanted}
        return {setup: model[setup] for setup in setups if setup in model}

    def _stop(self, model_id: str, kind: str) -> None:
        """No further request for anyone: this model's every call would fail the same way."""
        self.gate.halt()
        if not self._fatal:
            setups = list(dict.fromkeys(s.setup_id for s in self.specs if s.model_id == model_id))
            self._fatal = self.health.error(
                dict.fromkeys(setups, model_id), self.settings.timeout_s, kind
            )

    def _batch_groups(self, by_model: dict[str, list[CallSpec]]) -> dict[Any, list]:
        """None -> the live models' spec lists; (model, api_base, key) -> the batch models
        that send the same requests to the same endpoint (one lane: a request two model
        entries share is one line, as it is one live call)."""
        groups: dict[Any, list] = {}
        for model_id, specs in by_model.items():
            m = self.models[model_id]
            if not (m.batch and self.settings.batch_dir is not None):
                groups.setdefault(None, []).append(specs)
            else:
                groups.setdefault((m.model, m.api_base, m.api_key_env), []).append(model_id)
        return groups

    def _batches(self, by_model: dict[str, list[CallSpec]]) -> list[tuple[list[str], list]]:
        groups = self._batch_groups(by_model)
        groups.pop(None, None)
        return [(ids, [s for i in ids for s in by_model[i]]) for ids in groups.values()]

    async def _batched(self, model_ids: list[str], specs: list[CallSpec]) -> None:
        """Batch models' calls (harness/run/batch.py); those handed back go live."""
        api = self.models[model_ids[0]].kind.batch(self.models[model_ids[0]])
        live = await BatchLane(self, model_ids, specs, api).run()
        if live:
            await self._feed(live)

    async def _feed(self, specs: list[CallSpec]) -> None:
        """One model's calls, in order, as tasks started a window at a time: enough to keep
        every slot its limits allow busy, without a waiting task (and its retry state) per
        call of a 100,000-item run held in memory from the start. Each model has its own
        window, so a model held back by its limits never holds back another."""
        free = asyncio.Semaphore(max(32, 2 * self.settings.concurrency))
        running: set[asyncio.Task[None]] = set()
        errors: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            free.release()
            if not task.cancelled() and task.exception() is not None:
                errors.append(task.exception())  # type: ignore[arg-type]

        try:
            for spec in specs:
                await free.acquire()
                if errors:
                    break  # an unexpected error ends the run, as before
                task = asyncio.ensure_future(self._one(spec))
                running.add(task)
                task.add_done_callback(finished)
            await asyncio.gather(*running)
            if errors:
                raise errors[0]
        finally:
            for task in running:
                task.cancel()

    async def _one(self, spec: CallSpec) -> None:
        if self._fatal or self.gate.stopped:
            return  # not called, not recorded: the next run picks it up
        started = time.time()
        # Two specs with one key (the same prompt in two setups) share one call: while
        # it is in flight, or, once its reply has arrived, through the cache (a re-asked
        # failed reply: through `_fresh`).
        if spec.cache_key in self._retry:
            reply = self._fresh.get(spec.cache_key)
        else:
            reply = self.cache.get(spec.cache_key)
        if reply is not None:
            self.emit(self._record(spec, reply, True, 0, started))
            return
        if spec.cache_key in self._inflight:
            try:
                reply = await asyncio.shield(self._inflight[spec.cache_key])
            except Stopped:
                return  # the sharer's call was refused by a cap: nothing to record
            except ProviderError as error:
                self.emit(self._failure(spec, error, 0, started))
                return
            self.emit(self._record(spec, reply, True, 0, started))
            return
        future: asyncio.Future[ProviderReply] = asyncio.get_running_loop().create_future()
        self._inflight[spec.cache_key] = future
        try:
            reply, attempts, wasted = await self._call_with_retries(spec)
        except Stopped as stop:
            future.set_exception(stop)
            future.exception()
            if stop.reason != "halted":
                self.totals.stopped = self.totals.stopped or stop.reason
            return  # not (or not fully) called, not recorded: the next run makes it
        except ProviderError as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: sharing specs may not exist
            if error.fatal:  # auth, unknown model, no quota: every call would fail alike
                self._stop(spec.model_id, error.kind)
            self.emit(self._failure(spec, error, error.attempts, started))
            return
        finally:
            self._inflight.pop(spec.cache_key, None)
        # Store before anything else: from here on the label can never be lost. A re-asked
        # failed reply is replaced too (the newest answer wins; the old one stays on record).
        self.cache.set(spec.cache_key, reply)
        if spec.cache_key in self._retry:
            self._fresh[spec.cache_key] = reply
        future.set_result(reply)
        if self.settings.budget_usd is not None and reply.cost_usd is None:
            self.gate.halt()
            self._fatal = self._fatal or UserError.at(
                f"run.budget_usd is set but the price of model '{spec.model_id}' is "
                "unknown, so the budget cannot be enforced",
                key=f"models.{spec.model_id}",
                hint="set input_cost_per_mtok and output_cost_per_mtok for this model "
                "(the reply received is cached)",
            )
        record = self._record(spec, reply, False, attempts, started)
        if wasted:  # empty answers before this one were paid for too (not in the cache)
            record.cost_usd = (record.cost_usd or 0.0) + wasted
        self.emit(record)

    def _failure(
        self, spec: CallSpec, error: ProviderError, attempts: int, started: float
    ) -> LabelRecord:
        record = failure_record(spec, error, attempts, started)
        self._retried(spec, record)
        return record

    async def _call_with_retries(self, spec: CallSpec) -> tuple[ProviderReply, int, float]:
        provider = self.providers[spec.model_id]
        s = self.settings
        attempts, wasted = 0, 0.0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(s.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
            reraise=True,
        )
        try:
            async with self.gate.call(spec):  # held through the retries and their backoff
                async for attempt in retrying:
                    with attempt:
                        attempts += 1
                        try:
                            reply = await self._attempt(provider, spec)
                        except ProviderError as error:
                            wasted += error.cost_usd or 0.0  # an empty answer is paid for
                            raise
        except ProviderError as error:
            error.attempts = attempts
            error.cost_usd = wasted or error.cost_usd
            raise
        return reply, attempts, wasted

    async def _attempt(self, provider: Provider, spec: CallSpec) -> ProviderReply:
        """One request, through the gate (limits and caps; raises `Stopped` if refused)."""
        async with self.gate.slot(spec) as ticket:
            self.totals.calls += 1
            try:
                reply = await self._call_once(provider, spec)
            except ProviderError as error:
                ticket.failed(error.kind, error.cost_usd)
                errors = self.totals.request_errors
                errors[error.kind] = errors.get(error.kind, 0) + 1
                if self.health.failed(spec.model_id, error):  # never reached: fail fast
                    self._stop(spec.model_id, error.kind)
                raise
            ticket.answered(reply)
            self.health.answered(spec.model_id)
            return reply

    async def _call_once(self, provider: Provider, spec: CallSpec) -> ProviderReply:
        try:
            reply = await asyncio.wait_for(
                provider.complete(spec, self.settings.timeout_s),
                timeout=self.settings.timeout_s * 1.5 + 1,
            )
        except asyncio.TimeoutError:
            raise ProviderError(
                "timeout", f"no answer within {self.settings.timeout_s}s", retryable=True
            ) from None
        if reply.content is None or not reply.content.strip():
            # Retried like a transport fault (a server under load may answer nothing once),
            # within run.retries; never cached, so the next run asks again too.
            raise ProviderError(
                "empty_response",
                "the model returned no text",
                retryable=True,
                cost_usd=reply.cost_usd,
            )
        return reply

    def _wait(self, state: RetryCallState) -> float:
        import random

        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderError) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, RETRY_AFTER_CAP_S)
        s = self.settings
        base = min(s.backoff_max_s, s.backoff_initial_s * 2 ** (state.attempt_number - 1))
        return base * (0.5 + random.random() / 2)  # "equal jitter": spreads retries out
