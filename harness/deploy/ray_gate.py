"""Limits shared by every shard of a `prelabel label --ray` run (deploy station).

One Ray actor, `GlobalLimits`, holds what must be counted once for the whole run, wherever its
shards run: each model's rpm and tpm token buckets, `run.max_calls` and `run.budget_usd`. It
is the run station's `Gate` (harness/run/ratelimit.py) split where the network passes through
it: `admit` is the part of `Gate.slot` before a request (wait for the buckets, check the caps,
count the request), `settle` the part after (the spend, the tpm correction).

Each shard's runner gets a `ShardGate`: a `Gate` whose `slot` asks the actor before every
request (retries included), so no request is sent that the run's limits refuse. What stays
per shard: adaptive concurrency and `run.concurrency` in flight, since they protect the
machine that sends the requests as much as the provider; a 429 halves the shard that got it.

A refusal says why ("max_calls", "budget", "halted"); a shard's fatal provider error (a bad
key) halts the actor, so every other shard stops asking too.

No Ray import here: the actor is an ordinary class that ray_shards.py makes remote, so this
module loads without the optional package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from harness.config import ModelConfig
from harness.core.records import CallSpec, ProviderReply
from harness.run.estimate import cost, output_tokens, prices, rough_input_tokens
from harness.run.ratelimit import AIMD, Gate, ModelLimits, Stopped, Ticket


class GlobalLimits:
    """The run's buckets and caps (a Ray async actor: its methods run on one event loop, so
    the counters need no lock, and a request waiting for its bucket blocks no other call)."""

    def __init__(
        self,
        models: dict[str, ModelConfig],
        budget_usd: float | None,
        max_calls: int | None,
    ):
        # concurrency is the shards' business; this Gate's semaphore is never used
        self.gate = Gate(models, 1, budget_usd=budget_usd, max_calls=max_calls)
        self.open: dict[int, tuple[str, int, float]] = {}  # ticket -> model, tokens, estimate
        self.last = 0

    async def admit(self, model_id: str, tokens: int, estimate: float) -> int | str:
        """A ticket number once the request may be sent, or the reason it may not."""
        gate = self.gate
        limits = gate.model(model_id)
        try:
            gate.check(estimate)  # refuse at once, without waiting
            if limits.rpm:
                await limits.rpm.take(1)
            if limits.tpm:
                await limits.tpm.take(tokens)
            gate.check(estimate)  # again: the caps may have been reached while it waited
        except Stopped as stop:
            return stop.reason
        gate.calls += 1
        gate.in_flight_cost += estimate
        self.last += 1
        self.open[self.last] = (model_id, tokens, estimate)
        return self.last

    def settle(self, ticket: int, cost_usd: float | None, used_tokens: int | None) -> None:
        """A request that ended: its estimate is replaced by what it cost (once)."""
        entry = self.open.pop(ticket, None)
        if entry is None:
            return
        model_id, tokens, estimate = entry
        gate = self.gate
        gate.in_flight_cost -= estimate
        gate.spent += cost_usd or 0.0
        tpm = gate.model(model_id).tpm
        if tpm is not None and used_tokens is not None:
            tpm.adjust(used_tokens - tokens)

    def halt(self) -> None:
        self.gate.halt()

    def stats(self) -> dict[str, Any]:
        """What the run's manifest and the tests read: requests admitted, dollars spent, why
        it stopped, and per model the bucket counts and every rpm grant (the schedule)."""
        gate = self.gate
        models = {}
        for model_id, limits in gate.limits.items():
            entry: dict[str, Any] = {}
            if limits.rpm:
                entry.update(rpm_requests=len(limits.rpm.grants), rpm_grants=limits.rpm.grants)
            if limits.tpm:
                entry["tpm_tokens"] = round(limits.tpm.taken)
            models[model_id] = entry
        return {
            "calls": gate.calls,
            "spent_usd": gate.spent,
            "stopped": gate.stopped,
            "models": models,
        }


@dataclass
class ShardTicket(Ticket):
    """A request admitted by the actor; settling it there is a message, sent once."""

    number: int = 0

    def answered(self, reply: ProviderReply) -> None:
        used = None
        if reply.input_tokens is not None:
            used = reply.input_tokens + (reply.output_tokens or 0)
        self._settle(reply.cost_usd, used)
        self.limits.concurrency.on_success()

    def _settle(self, cost_usd: float | None, used_tokens: int | None = None) -> None:
        if not self.settled:
            self.settled = True
            gate = self.gate
            assert isinstance(gate, ShardGate)
            gate.spent += cost_usd or 0.0
            gate.sent.append(gate.limits_actor.settle.remote(self.number, cost_usd, used_tokens))


class ShardGate(Gate):
    """A shard's gate: adaptive concurrency and `run.concurrency` here, every limit that
    counts for the whole run in the `GlobalLimits` actor."""

    def __init__(
        self,
        models: dict[str, ModelConfig],
        concurrency: int,
        limits_actor: Any,
        *,
        budget_usd: float | None,
    ):
        super().__init__(models, concurrency)  # no local caps: the actor holds them
        self.limits_actor = limits_actor
        self.global_budget = budget_usd
        self.sent: list[Any] = []  # settle messages: awaited before the shard returns

    def model(self, model_id: str) -> ModelLimits:
        if model_id not in self.limits:  # no local buckets: rpm and tpm are the actor's
            self.limits[model_id] = ModelLimits(AIMD(self.concurrency))
        return self.limits[model_id]

    def halt(self) -> None:
        """A fatal error in this shard stops every shard (the same key fails everywhere)."""
        if not self.stopped:
            self.sent.append(self.limits_actor.halt.remote())
        super().halt()

    def _estimate(self, spec: CallSpec, limits: ModelLimits) -> tuple[int, float]:
        """As `Gate._estimate`, for the run's budget and tpm (held by the actor)."""
        if self.global_budget is None and not self.models[spec.model_id].tpm:
            return 0, 0.0
        tokens_in = rough_input_tokens(spec.messages)
        tokens_out, _ = output_tokens(spec)
        if self.global_budget is not None and not limits.priced:
            limits.price, limits.priced = prices(self.models[spec.model_id])[0], True
        return tokens_in + tokens_out, cost(limits.price, tokens_in, tokens_out) or 0.0

    @asynccontextmanager
    async def slot(self, spec: CallSpec) -> AsyncIterator[Ticket]:
        """One request: a slot of this shard, then the actor's admission (raises `Stopped`
        when the run's caps refuse it)."""
        limits = self.model(spec.model_id)
        tokens, estimate = self._estimate(spec, limits)
        self.check()
        async with self._semaphore:
            self.check()
            answer = await self.limits_actor.admit.remote(spec.model_id, tokens, estimate)
            if isinstance(answer, str):
                self.stopped = self.stopped or answer
                raise Stopped(answer)
            self.calls += 1
            ticket = ShardTicket(self, limits, limits.concurrency.epoch, tokens, estimate)
            ticket.number = answer
            try:
                yield ticket
            finally:
                ticket._settle(None)
