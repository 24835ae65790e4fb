"""Where a local model's calls run: on the event loop when local models are all there is to
call (faster), in a worker thread when a remote model shares the run (so the loop keeps
serving the remote calls while llama.cpp computes). The model itself is not loaded here."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from harness.config import ModelConfig
from harness.core.records import CallSpec, ProviderReply
from harness.providers.local import LocalProvider
from harness.run.cache import LabelCache
from harness.run.runner import Runner, RunSettings

REPO = Path(__file__).resolve().parents[2]
LABELS = ["positive", "negative", "neutral"]


def spec(model_id: str, item: str) -> CallSpec:
    return CallSpec(
        setup_id=f"p@{model_id}",
        gold_set_id="g",
        item_id=item,
        sample=0,
        model_id=model_id,
        model="local/smollm2-135m" if model_id == "local" else "openai/fake",
        messages=({"role": "user", "content": item},),
        params={},
        response_schema=None,
        top_logprobs=None,
        cache_key=f"{model_id}-{item}",
    )


class Remote:
    """A remote provider that, while a local call runs, keeps answering: it counts how many
    of its replies arrived during the local model's (blocking) calls."""

    def __init__(self, local_busy: threading.Event):
        self.local_busy = local_busy
        self.during_local = 0

    async def complete(self, spec: CallSpec, timeout_s: float) -> ProviderReply:
        await asyncio.sleep(0.001)
        self.during_local += self.local_busy.is_set()
        return ProviderReply(content="neutral", input_tokens=1, output_tokens=1)


def run(specs, providers, models, tmp_path: Path):
    cache = LabelCache(tmp_path / "cache")
    records = []
    try:
        runner = Runner(
            specs,
            models,
            REPO,
            cache,
            LABELS,
            RunSettings(concurrency=8, retries=0),
            records.append,
            providers=providers,
        )
        asyncio.run(runner.run())
    finally:
        cache.close()
    return records


def local_provider(threads: list[int], busy: threading.Event, hold_s: float) -> LocalProvider:
    provider = LocalProvider(ModelConfig(id="local", model="local/smollm2-135m"), REPO)

    def fake_llama_call(spec: CallSpec) -> ProviderReply:
        threads.append(threading.get_ident())
        busy.set()
        threading.Event().wait(hold_s)  # blocks like llama.cpp: no await inside
        busy.clear()
        return ProviderReply(content="positive", input_tokens=1, output_tokens=1)

    provider._complete_sync = fake_llama_call  # type: ignore[method-assign]
    return provider


def test_local_calls_run_on_the_event_loop_when_nothing_else_is_called(tmp_path):
    threads: list[int] = []
    provider = local_provider(threads, threading.Event(), 0.0)
    models = {"local": ModelConfig(id="local", model="local/smollm2-135m")}
    records = run([spec("local", f"i{k}") for k in range(5)], {"local": provider}, models, tmp_path)
    assert [r.label for r in records] == ["positive"] * 5
    assert set(threads) == {threading.get_ident()}  # asyncio.run's loop runs on this thread


def test_local_calls_go_to_a_thread_when_a_remote_model_shares_the_run(tmp_path):
    threads: list[int] = []
    busy = threading.Event()
    local = local_provider(threads, busy, 0.05)
    remote = Remote(busy)
    models = {
        "local": ModelConfig(id="local", model="local/smollm2-135m"),
        "remote": ModelConfig(id="remote", model="openai/fake", api_base="http://127.0.0.1:9"),
    }
    specs = [spec("local", f"i{k}") for k in range(2)]
    specs += [spec("remote", f"i{k}") for k in range(40)]
    records = run(specs, {"local": local, "remote": remote}, models, tmp_path)
    assert len(records) == 42 and all(r.label for r in records)
    assert threading.get_ident() not in threads  # worker threads, never the loop's
    # The loop was free while llama.cpp "computed": remote replies arrived meanwhile.
    assert remote.during_local > 0
