"""`prelabel label --ray`: the uncached calls of a label run as Ray tasks (deploy station).

`RayCalls` has the face of `harness.run.calls.Calls` (`run()`, `records`, `totals`), so
label.py swaps one for the other. What it does differently is where the calls are made:

- The driver (this process) reads the label cache first: a cached spec never goes to Ray.
  The uncached ones go out in shards (a few hundred specs each, at most one shard per CPU of
  the cluster at a time), each a Ray task that runs the same `Runner` as a local run (retries,
  timeouts, parsing, provider health) with a scratch cache in memory: a worker never writes
  the driver's cache, which may be on another machine.
- Every request of every shard passes the `GlobalLimits` actor (harness/deploy/ray_gate.py):
  the models' rpm and tpm, `run.max_calls` and `run.budget_usd` count for the whole run,
  not per shard.
- Workers send back (cache key, reply JSON, record) in small chunks through an `Outbox`
  actor as the replies arrive (Ray's streaming generators would do, but not through Ray
  Client, `ray://`). The driver stores each reply in the label cache first, then appends the
  record to labels.jsonl, as the local runner does, so a killed driver loses at most the
  chunks in transit, and the same command run again asks only for what is not cached.
- A shard is not retried by Ray (`max_retries=0`): it would ask again what it had already
  sent back. A failed shard fails the command; what arrived is cached for the rerun.

Ray is an optional extra, imported only here and only with --ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.config import ModelConfig, TaskConfig
from harness.core.errors import UserError
from harness.core.records import CallSpec, LabelRecord, ProviderReply
from harness.deploy.ray_gate import GlobalLimits, ShardGate
from harness.run.calls import Calls, ScratchCache
from harness.run.plan import Plan
from harness.run.provider_health import locate
from harness.run.reply_records import to_record
from harness.run.runner import LabelSink, ReplyCache, Runner, RunSettings, RunTotals
from harness.tasks.labelspace import LabelSpace

SHARD_MOST = 500  # specs per shard: small enough to spread, big enough to keep a shard busy
CHUNK = 16  # records per message back to the driver
FLUSH_S = 0.2  # ... or fewer, this often: labels reach the cache soon after they arrive
OUTBOX_MOST = 256  # chunks waiting for the driver before the workers wait (backpressure)


def require_ray() -> Any:
    """The ray module, or a UserError saying how to install it."""
    try:
        import ray  # the optional extra: only --ray needs it
    except ImportError:
        raise UserError.at(
            "--ray needs Ray, which is not installed",
            hint="pip install 'prelabel[ray]'",
        ) from None
    return ray


class Outbox:
    """Chunks of records from the workers, taken by the driver (a Ray async actor)."""

    def __init__(self) -> None:
        self.chunks: list[list[tuple[str | None, dict | None, LabelRecord]]] = []
        self.changed = asyncio.Event()

    async def put(self, chunk: list[tuple[str | None, dict | None, LabelRecord]]) -> None:
        while len(self.chunks) >= OUTBOX_MOST:  # the driver is behind: wait for it
            self.changed.clear()
            await self.changed.wait()
        self.chunks.append(chunk)
        self.changed.set()

    async def take(self, wait_s: float) -> list:
        """Every chunk waiting, after up to `wait_s` for one to come."""
        if not self.chunks and wait_s > 0:
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), wait_s)
        chunks, self.chunks = self.chunks, []
        self.changed.set()
        return chunks


def run_shard(
    specs: list[CallSpec],
    models: dict[str, ModelConfig],
    base: Path,
    task: TaskConfig,
    settings: RunSettings,
    limits: Any,
    outbox: Any,
) -> dict[str, Any]:
    """One shard on a Ray worker: the local runner, its requests admitted by `limits`, its
    records sent to `outbox` as they arrive. Returns its totals and where it ran."""
    import ray

    cache = ScratchCache()
    buffer: list[tuple[str | None, dict | None, LabelRecord]] = []
    ready = asyncio.Event()

    def keep(record: LabelRecord) -> None:
        reply = cache.get(record.cache_key) if record.cache_key else None
        buffer.append((record.cache_key, None if reply is None else reply.to_json(), record))
        if len(buffer) >= CHUNK:
            ready.set()

    async def send(done: asyncio.Event) -> None:
        while buffer or not done.is_set():
            if not buffer:
                with contextlib.suppress(asyncio.TimeoutError):  # then send what there is
                    await asyncio.wait_for(ready.wait(), FLUSH_S)
            ready.clear()
            if buffer:
                chunk = buffer[:]
                del buffer[:]
                await outbox.put.remote(chunk)

    async def main() -> RunTotals:
        # The run-wide limits instead of this process's own.
        gate = ShardGate(models, settings.concurrency, limits, budget_usd=settings.budget_usd)
        runner = Runner(specs, models, base, cache, LabelSpace(task), settings, keep, gate=gate)
        done = asyncio.Event()
        sender = asyncio.ensure_future(send(done))
        try:
            return await runner.run()
        finally:
            done.set()
            ready.set()
            await sender  # every record is in the outbox before the shard ends
            for message in gate.sent:
                await message

    totals = asyncio.run(main())
    return {"totals": totals, "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}


class RayCalls:
    """`Calls` (harness/run/calls.py) with the uncached calls made by Ray tasks. `address`:
    "local" (a Ray instance on this machine: the running one, else a new one), "auto" (the
    cluster this machine is part of), or a cluster address ("ray://head:10001", "head:6379").
    A Ray instance already started in this process is used as it is."""

    def __init__(
        self,
        plan: Plan,
        specs: Iterable[CallSpec],
        settings: RunSettings,
        *,
        cache: ReplyCache,
        labels_file: Path | None = None,
        address: str = "local",
        shard_most: int = SHARD_MOST,
    ):
        self.plan = plan
        self.specs = specs
        self.settings = settings
        self.cache = cache
        self.labels_file = labels_file
        self.address = address
        self.shard_most = shard_most
        self.records: list[LabelRecord] = []
        self.totals = RunTotals()
        self.shards: list[dict[str, Any]] = []  # per finished shard: pid, node, totals
        self.limits: dict[str, Any] = {}  # the GlobalLimits actor's stats at the end
        self._labels = LabelSpace(plan.resolved.experiment.task)
        self._sink: LabelSink | None = None
        self._sharers: dict[str, list[CallSpec]] = {}  # key -> later specs with that key
        self._running: dict[Any, int] = {}  # task -> number of specs
        self._error: BaseException | None = None
        self._limits: Any = None  # the GlobalLimits actor, while it runs

    @classmethod
    def like(cls, calls: Calls, *, address: str) -> RayCalls:
        """The Ray version of a `Calls` built for a local run (what label.py swaps)."""
        return cls(
            calls.plan,
            calls.specs,
            calls.settings,
            cache=calls.cache,
            labels_file=calls.labels_file,
            address=address,
        )

    def run(self) -> RunTotals:
        ray = require_ray()
        self._refuse_batch_models()
        started_here = not ray.is_initialized()
        if started_here:
            self._connect(ray)
        self._sink = LabelSink(self.labels_file) if self.labels_file is not None else None
        actors: list[Any] = []
        try:
            s = self.settings
            limits = ray.remote(num_cpus=0)(GlobalLimits).remote(
                self.plan.models, s.budget_usd, s.max_calls
            )
            outbox = ray.remote(num_cpus=0)(Outbox).remote()
            actors = [limits, outbox]
            self._limits = limits
            self._shards(ray, limits, outbox)
            self.limits = ray.get(limits.stats.remote())
        except UserError as exc:
            locate(exc, self.plan.resolved.path, self.plan.resolved.key_lines)
            raise
        finally:
            for task in self._running:
                ray.cancel(task, force=True)
            for actor in actors:
                ray.kill(actor)
            if self._sink is not None:
                self._sink.close()
            if started_here:
                ray.shutdown()
        self.totals.limits = {m: _no_grants(v) for m, v in self.limits.get("models", {}).items()}
        return self.totals

    def _connect(self, ray: Any) -> None:
        address = None if self.address == "local" else self.address
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="warning",
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError.at(
                f"--ray {self.address}: cannot connect to Ray: {exc}",
                hint="start the cluster first (`ray start --head`), or use --ray local",
            ) from None

    def _refuse_batch_models(self) -> None:
        for model_id, model in self.plan.models.items():
            if model.batch:
                raise UserError.at(
                    f"model '{model_id}' has batch: true, which --ray would call live",
                    file=self.plan.resolved.path,
                    key=f"models.{model_id}.batch",
                    hint="batch mode already hands the work to the provider: label without --ray",
                )

    def _shards(self, ray: Any, limits: Any, outbox: Any) -> None:
        """Cached specs at once; the others in shards, as many at a time as the cluster has
        CPUs; then wait for the last ones."""
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = self.shard_most
        if hasattr(self.specs, "__len__"):  # spread a small pool over the CPUs too
            size = max(1, min(size, math.ceil(len(self.specs) / cpus)))  # type: ignore[arg-type]
        settings = replace(self.settings, batch_dir=None, progress=None)
        remote = ray.remote(num_cpus=1, max_retries=0)(run_shard)
        r = self.plan.resolved
        args = (self.plan.models, r.base, r.experiment.task, settings, limits, outbox)
        asked: set[str] = set()
        shard: list[CallSpec] = []
        for spec in self.specs:
            reply = self.cache.get(spec.cache_key)
            if reply is not None:
                started = time.time()
                self._keep(
                    to_record(spec, reply, self._labels, cached=True, attempts=0, started=started)
                )
            elif spec.cache_key in asked:  # one call for a prompt asked twice
                self._sharers.setdefault(spec.cache_key, []).append(spec)
            else:
                asked.add(spec.cache_key)
                shard.append(spec)
                if len(shard) >= size:
                    self._submit(ray, remote, shard, args, outbox, cpus)
                    shard = []
        if shard:
            self._submit(ray, remote, shard, args, outbox, cpus)
        while self._running:
            self._drain(ray, outbox)
        self._take(ray, outbox, 0)  # what the last shards sent before they returned
        if self._error is not None:
            raise self._error

    def _submit(
        self, ray: Any, remote: Any, shard: list, args: tuple, outbox: Any, cpus: int
    ) -> None:
        while len(self._running) >= cpus:
            self._drain(ray, outbox)
        if self._error is not None or self.totals.stopped:
            return  # a cap or an error ended the run: no new shard
        self._running[remote.remote(shard, *args)] = len(shard)

    def _drain(self, ray: Any, outbox: Any) -> None:
        self._take(ray, outbox, 0.25)
        done, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
        for task in done:
            self._running.pop(task)
            try:
                result = ray.get(task)
            except Exception as exc:  # a shard's failure fails the run, once all have ended
                self._error = self._error or _user_error(exc)
                ray.get(self._limits.halt.remote())  # the other shards ask no further
                continue
            self.shards.append(result)
            self._count(result["totals"])

    def _take(self, ray: Any, outbox: Any, wait_s: float) -> None:
        for chunk in ray.get(outbox.take.remote(wait_s)):
            for key, reply_json, record in chunk:
                reply = None
                if reply_json is not None:
                    reply = ProviderReply.from_json(reply_json)
                    self.cache.set(key, reply)  # first: from here on it is never lost
                self._keep(record)
                for spec in self._sharers.pop(key, []):
                    self._keep(_shared(spec, record, reply, self._labels))

    def _keep(self, record: LabelRecord) -> None:
        if self._sink is not None:
            self._sink.write(record)  # on disk at once: a crash keeps every label paid for
        self.records.append(record)
        self.totals.count(record)

    def _count(self, shard: RunTotals) -> None:
        """A finished shard's requests (its labels were counted as they arrived)."""
        t = self.totals
        t.calls += shard.calls
        t.stopped = t.stopped or shard.stopped
        for kind, n in shard.request_errors.items():
            t.request_errors[kind] = t.request_errors.get(kind, 0) + n


def _shared(
    spec: CallSpec, record: LabelRecord, reply: ProviderReply | None, labels: LabelSpace
) -> LabelRecord:
    """The record of a spec whose prompt another spec asked: the same answer, from the cache
    (or the same failure, not asked again), as the local runner gives it."""
    started = time.time()
    if reply is not None:
        return to_record(spec, reply, labels, cached=True, attempts=0, started=started)
    return record.model_copy(
        update={
            "setup": spec.setup_id,
            "gold_set": spec.gold_set_id,
            "item": spec.item_id,
            "sample": spec.sample,
            "swapped": spec.swapped,
            "attempts": 0,
            "started_at": started,
        }
    )


def _user_error(exc: Exception) -> UserError:
    """What a shard raised: its UserError (a bad key, a model that never answered) as it is,
    anything else (a worker that died) as a UserError saying the rerun resumes."""
    cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError wraps the original
    if isinstance(cause, UserError):
        return cause
    return UserError.at(
        f"a Ray shard failed: {type(cause or exc).__name__}: {cause or exc}",
        hint="every label that reached this machine is cached: run the same command again",
    )


def _no_grants(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k != "rpm_grants"}
