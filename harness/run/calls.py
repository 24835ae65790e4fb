"""Call (run station): the one wiring of the runner, shared by `prelabel run`
(harness/run/pipeline.py), `prelabel label` (harness/deploy/label.py) and the drift canary
(harness/gate/canary.py): providers, the cache, the caps, provider health, labels.jsonl and
progress as records arrive, and a UserError pointed at the config line it is about.

What differs between the three is a parameter of `Calls`, not a copy of this code:

- `cache`: the label cache, or None to bypass it (the canary): fresh replies then go to a
  scratch cache in memory, so the shared cache is neither read nor written.
- `labels_file`: a run folder's labels.jsonl, each record appended the moment it arrives
  (run, label); the canary keeps its records in memory only.
- `on_record`: progress (`prelabel run` on a terminal).
- `providers`: made by the caller beforehand (`run` makes them before its folder exists, so
  a missing API key leaves no folder behind); else made here, where a failure is the
  caller's to record (`label` notes it in its manifest).
- `prior`, `replayed`: a resumed run's labels (answers already, first in `records`) and
  replayed labels (emitted before any call).
- the settings, `run_settings(exp.run, caps=...)`: the canary calls without the caps that
  bound a full run (run.budget_usd, run.max_calls).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.core.aio import run_sync
from harness.core.errors import UserError
from harness.core.records import CallSpec, LabelRecord, ProviderReply
from harness.providers import Provider, make_provider
from harness.run.batch_journal import folder_of
from harness.run.plan import Plan
from harness.run.provider_health import locate
from harness.run.runner import LabelSink, ReplyCache, Runner, RunSettings, RunTotals
from harness.tasks.labelspace import LabelSpace


class ScratchCache:
    """In-memory stand-in for the label cache: misses until this process stores a reply."""

    def __init__(self) -> None:
        self._replies: dict[str, ProviderReply] = {}

    def get(self, key: str) -> ProviderReply | None:
        return self._replies.get(key)

    def contains(self, key: str) -> bool:
        return key in self._replies

    def set(self, key: str, reply: ProviderReply) -> None:
        self._replies[key] = reply


def cache_folder(option: Path | None, run: RunConfig) -> Path:
    """The label cache: --cache-dir, else $PRELABEL_CACHE_DIR, else the config's run.cache_dir."""
    return Path(option or os.environ.get("PRELABEL_CACHE_DIR") or run.cache_dir)


def run_settings(run: RunConfig, *, caps: bool = True) -> dict[str, Any]:
    """`RunSettings` fields from the config's `run:`. Keyword arguments rather than a
    RunSettings: each command builds its own from its module's `RunSettings` (with its extra
    fields, e.g. retry_failed), which tests replace there to shorten the backoff.
    `caps=False`: without run.budget_usd and run.max_calls (the canary's few calls)."""
    settings: dict[str, Any] = {
        "concurrency": run.concurrency,
        "timeout_s": run.timeout_s,
        "retries": run.retries,
    }
    if caps:
        settings.update(budget_usd=run.budget_usd, max_calls=run.max_calls)
        # Batch mode waits for hours: a full run's matter. The canary's few calls go live.
        settings.update(
            batch_poll_s=run.batch_poll_s,
            batch_deadline_h=run.batch_deadline_h,
            batch_retry=run.batch_retry,
        )
    return settings


def make_providers(
    plan: Plan,
    cache: ReplyCache,
    refresh: Collection[str] = (),
    *,
    specs: Sequence[CallSpec] | None = None,
) -> dict[str, Provider]:
    """Providers of the models that still have calls to make (none for a cached run, so no
    litellm import); creating one checks its API key, so a missing key is a UserError.
    `refresh`: cache keys to ask again although cached (`run --retry-failed`). `specs`: the
    calls to make, if not all of the plan's."""
    needed = dict.fromkeys(
        s.model_id
        for s in (plan.specs if specs is None else specs)
        if s.cache_key in refresh or not cache.contains(s.cache_key)
    )
    providers: dict[str, Provider] = {}
    for model_id in needed:
        try:
            providers[model_id] = make_provider(plan.models[model_id], plan.resolved.base)
        except UserError as exc:
            for problem in exc.problems:  # the key path is in the config file
                problem.file = problem.file or plan.resolved.path
            raise
    return providers


class Calls:
    """Call specs of a plan through the runner. `run()` returns the totals; when it raises,
    `records` and `totals` still hold what arrived, for the caller's manifest."""

    def __init__(
        self,
        plan: Plan,
        specs: Sequence[CallSpec],
        settings: RunSettings,
        *,
        cache: ReplyCache | None,
        labels_file: Path | None = None,
        on_record: Callable[[LabelRecord], None] | None = None,
        providers: dict[str, Provider] | None = None,
        prior: Sequence[LabelRecord] = (),
        replayed: Iterable[LabelRecord] = (),
    ):
        self.plan = plan
        self.specs = specs
        self.settings = settings
        self.cache: ReplyCache = ScratchCache() if cache is None else cache
        self.labels_file = labels_file
        self.on_record = on_record
        self.providers = providers
        self.prior = prior
        self.replayed = replayed
        self.records: list[LabelRecord] = list(prior)
        self.totals = RunTotals()  # the runner's own once it exists: partial on a failure

    def run(self) -> RunTotals:
        return run_sync(self.arun())  # also from a notebook's cell (harness/core/aio.py)

    async def arun(self) -> RunTotals:
        """`run()` in the caller's event loop (`prelabel label` runs its chunks in one loop,
        so its providers' connections serve every chunk)."""
        plan = self.plan
        sink = LabelSink(self.labels_file) if self.labels_file is not None else None

        def keep(record: LabelRecord) -> None:
            if sink is not None:
                sink.write(record)  # on disk at once: a crash keeps every label paid for
            self.records.append(record)
            if self.on_record is not None:
                self.on_record(record)

        directory = getattr(self.cache, "directory", None)
        if self.settings.batch_dir is None and directory is not None:
            self.settings.batch_dir = folder_of(directory)  # journals beside the cache
        try:
            providers = self.providers
            if providers is None:  # a missing API key: raised where the caller records it
                providers = make_providers(plan, self.cache, specs=self.specs)
            runner = Runner(
                self.specs,
                plan.models,
                plan.resolved.base,
                self.cache,
                LabelSpace(plan.resolved.experiment.task),
                self.settings,
                keep,
                providers,
            )
            self.totals = runner.totals
            for record in self.prior:
                runner.health.record(record)  # answers already in the folder count as answers
            for record in self.replayed:
                runner.emit(record)
            return await runner.run()
        except UserError as exc:  # e.g. a provider that never answered: say where it is set
            locate(exc, plan.resolved.path, plan.resolved.key_lines)
            raise
        finally:
            if sink is not None:
                sink.close()
