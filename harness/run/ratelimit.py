"""What every request passes before it is sent: rate limits, adaptive concurrency, hard caps.

Per model (`models[].rpm`, `models[].tpm`, and always adaptive concurrency):
- `TokenBucket`: requests per minute and tokens per minute. A bucket refills at limit/60 per
  second and holds at most one second's worth (at least one unit), so requests are spread
  evenly instead of bursting a whole minute's quota at once. A take larger than the bucket
  waits for a full bucket and then leaves it in debt, so the calls after it wait; the
  long-run rate never exceeds the limit. Tokens are taken as estimated from the prompt
  (harness/run/estimate.py: input + output) before a call and corrected with the reply's usage.
- `AIMD`: how many of the model's calls may be in progress (a call holds its slot through
  its retries and their backoff, so a call waiting out a Retry-After still counts). It
  starts at `run.concurrency`; a 429 halves it (floor 1) at most once per round of calls (a
  429 from a request sent before the last cut does not cut again: a burst of rejections is
  one signal), and each success adds 1/limit, so it regains about one slot per round of
  `limit` successes, up to `run.concurrency` (TCP's additive increase, multiplicative
  decrease). On top, `run.concurrency` caps the requests in flight over all models.

Per run (`run.max_calls`, `run.budget_usd`), checked by `Gate.slot` right before a request:
- max_calls: requests sent by this run, retries included. Never exceeded.
- budget_usd: a request is sent only if the spend so far plus the estimated cost of the
  requests in flight and of this one stays within the budget. Spend can exceed the budget
  only by what replies cost beyond their estimates (output longer than max_tokens, or no
  max_tokens and more than the default; a prompt tokenized very differently from chars/4).
Refused: `Stopped` is raised; the runner records nothing for that call, so the next run
(same command) makes it. `run.concurrency` stays a cap on requests in flight over all models.

Every wait goes through the injected `clock` and `sleep`, so tests check a limiter's
schedule on a fake clock instead of wall time.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from harness.config import ModelConfig
from harness.core.records import CallSpec, ProviderReply
from harness.run.estimate import cost, output_tokens, prices, rough_input_tokens

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


class Stopped(Exception):
    """A request that was not sent: `reason` is "budget", "max_calls" or "halted"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TokenBucket:
    def __init__(
        self,
        per_minute: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ):
        self.rate = per_minute / 60.0  # units per second
        self.capacity = max(1.0, self.rate)  # one second's worth, at least one unit
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.updated = clock()
        self.taken = 0.0  # units taken in all, corrections included
        self.grants: list[float] = []  # clock time of every grant (the schedule)
        self._lock = asyncio.Lock()  # first come, first served

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def take(self, amount: float) -> float:
        """Wait until `amount` (at most a full bucket) is there, take it; the grant time."""
        async with self._lock:
            need = min(amount, self.capacity)
            self._refill()
            while self.tokens < need - 1e-9:
                await self.sleep((need - self.tokens) / self.rate)
                self._refill()
            self.tokens -= amount
            self.taken += amount
            self.grants.append(self.updated)
            return self.updated

    def adjust(self, amount: float) -> None:
        """Correct the last estimate: take `amount` more (negative: give it back)."""
        self._refill()
        self.tokens = min(self.capacity, self.tokens - amount)
        self.taken += amount


class AIMD:
    """Adaptive concurrency: see the module docstring."""

    def __init__(self, maximum: int, *, decrease: float = 0.5):
        self.maximum = maximum
        self.decrease = decrease
        self.limit = float(maximum)
        self.active = 0
        self.epoch = 0  # number of cuts so far
        self.lowest = float(maximum)
        self.history: list[tuple[str, float]] = []  # ("cut" | "grow", limit after)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def allowed(self) -> int:
        return max(1, int(self.limit))

    async def acquire(self) -> int:
        """Wait for a free slot; returns the epoch the request starts in.

        First come, first served: a freed slot is handed to the longest waiter (counted in
        `active` at once), so a burst of releases wakes exactly as many waiters as there
        are slots, instead of all of them re-checking and queueing again.
        """
        if self.active < self.allowed and not self._waiters:
            self.active += 1
            return self.epoch
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over before the cancellation landed
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        return self.epoch

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self.active < self.allowed and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1  # handed over: the waiter resumes holding the slot
                waiter.set_result(None)

    def on_rate_limited(self, epoch: int) -> bool:
        """A 429 for a request started in `epoch`: cut, unless one cut already answered it."""
        if epoch != self.epoch:
            return False
        self.limit = max(1.0, self.limit * self.decrease)
        self.epoch += 1
        self.lowest = min(self.lowest, self.limit)
        self.history.append(("cut", self.limit))
        return True

    def on_success(self) -> None:
        if self.limit >= self.maximum:
            return
        before = self.allowed
        self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
        if self.allowed > before:
            self.history.append(("grow", self.limit))
            self._wake()


@dataclass
class ModelLimits:
    concurrency: AIMD
    rpm: TokenBucket | None = None
    tpm: TokenBucket | None = None
    price: tuple[float, float] | None = None
    priced: bool = False  # `price` looked up (lazily: it may import litellm)

    def stats(self) -> dict[str, Any]:
        c = self.concurrency
        out: dict[str, Any] = {
            "concurrency_cuts": c.epoch,
            "lowest_concurrency": c.lowest if c.epoch else None,
            "final_concurrency": round(c.limit, 3),
        }
        if self.rpm:
            out["rpm_requests"] = len(self.rpm.grants)
        if self.tpm:
            out["tpm_tokens"] = round(self.tpm.taken)
        return out


@dataclass
class Ticket:
    """One admitted request: what it was expected to take, to correct once it is answered."""

    gate: Gate
    limits: ModelLimits
    epoch: int
    tokens: int
    cost: float
    settled: bool = False

    def answered(self, reply: ProviderReply) -> None:
        self._settle(reply.cost_usd)
        self.limits.concurrency.on_success()
        if self.limits.tpm and reply.input_tokens is not None:
            used = reply.input_tokens + (reply.output_tokens or 0)
            self.limits.tpm.adjust(used - self.tokens)

    def failed(self, kind: str, cost_usd: float | None) -> None:
        """A request that failed; its estimated tokens stay taken (the server may count them)."""
        self._settle(cost_usd)
        if kind == "rate_limited":
            self.limits.concurrency.on_rate_limited(self.epoch)

    def _settle(self, cost_usd: float | None) -> None:
        if not self.settled:
            self.settled = True
            self.gate.spent += cost_usd or 0.0


class Gate:
    """Per-model limits plus the run's caps: `call(spec)` wraps a call with its retries,
    `slot(spec)` each request of it."""

    def __init__(
        self,
        models: dict[str, ModelConfig],
        concurrency: int,
        *,
        budget_usd: float | None = None,
        max_calls: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ):
        self.models = models
        self.concurrency = concurrency
        self.budget_usd = budget_usd
        self.max_calls = max_calls
        self.clock, self.sleep = clock, sleep
        self.limits: dict[str, ModelLimits] = {}
        self.calls = 0  # requests admitted (= sent) by this run
        self.spent = 0.0  # dollars of answered requests
        self.in_flight_cost = 0.0  # estimated dollars of requests sent, not yet answered
        self.stopped: str | None = None
        self._semaphore = asyncio.Semaphore(concurrency)

    def model(self, model_id: str) -> ModelLimits:
        if model_id not in self.limits:
            m = self.models[model_id]
            bucket = lambda n: TokenBucket(n, clock=self.clock, sleep=self.sleep)  # noqa: E731
            self.limits[model_id] = ModelLimits(
                AIMD(self.concurrency),
                bucket(m.rpm) if m.rpm else None,
                bucket(m.tpm) if m.tpm else None,
            )
        return self.limits[model_id]

    def halt(self) -> None:
        """Refuse every further request (a fatal provider error)."""
        self.stopped = self.stopped or "halted"

    def check(self, cost_usd: float = 0.0) -> None:
        """Raise `Stopped` if a request expected to cost `cost_usd` may not be sent now."""
        if self.stopped:
            raise Stopped(self.stopped)
        if self.max_calls is not None and self.calls >= self.max_calls:
            self.stopped = "max_calls"
        elif self.budget_usd is not None and (
            self.spent >= self.budget_usd
            or self.spent + self.in_flight_cost + cost_usd > self.budget_usd
        ):
            self.stopped = "budget"
        if self.stopped:
            raise Stopped(self.stopped)

    def _estimate(self, spec: CallSpec, limits: ModelLimits) -> tuple[int, float]:
        if self.budget_usd is None and limits.tpm is None:
            return 0, 0.0
        tokens_in = rough_input_tokens(spec.messages)
        tokens_out, _ = output_tokens(spec)
        if self.budget_usd is not None and not limits.priced:
            limits.price, limits.priced = prices(self.models[spec.model_id])[0], True
        # An unknown price counts as free here; the runner stops at the first reply instead.
        return tokens_in + tokens_out, cost(limits.price, tokens_in, tokens_out) or 0.0

    @asynccontextmanager
    async def call(self, spec: CallSpec) -> AsyncIterator[None]:
        """A call, retries included: waits for one of the model's (adaptive) call slots."""
        limits = self.model(spec.model_id)
        self.check()  # refuse at once, without waiting
        await limits.concurrency.acquire()
        try:
            yield
        finally:
            limits.concurrency.release()

    @asynccontextmanager
    async def slot(self, spec: CallSpec) -> AsyncIterator[Ticket]:
        """One request: wait for the model's rpm and tpm, then a run-wide slot; check the
        caps last, right before the request is sent (raises `Stopped`)."""
        limits = self.model(spec.model_id)
        tokens, estimate = self._estimate(spec, limits)
        self.check(estimate)
        if limits.rpm:
            await limits.rpm.take(1)
        if limits.tpm:
            await limits.tpm.take(tokens)
        async with self._semaphore:
            self.check(estimate)
            self.calls += 1
            self.in_flight_cost += estimate
            ticket = Ticket(self, limits, limits.concurrency.epoch, tokens, estimate)
            try:
                yield ticket
            finally:
                self.in_flight_cost -= estimate
                ticket._settle(None)

    def reserve(self, spec: CallSpec) -> float:
        """A request sent in a batch: counted against the caps now (raises `Stopped` if they
        refuse it), its estimated cost held until `settle`. No rpm, tpm or slot: a batch is
        not a live call."""
        _, estimate = self._estimate(spec, self.model(spec.model_id))
        self.check(estimate)
        self.calls += 1
        self.in_flight_cost += estimate
        return estimate

    def settle(self, estimate: float, cost_usd: float | None) -> None:
        """A batch request has its result: the estimate is replaced by what it cost."""
        self.in_flight_cost -= estimate
        self.spent += cost_usd or 0.0

    def stats(self) -> dict[str, Any]:
        return {model_id: limits.stats() for model_id, limits in self.limits.items()}
