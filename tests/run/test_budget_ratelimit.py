"""Hard caps on calls and spend, per-model rpm/tpm limits, and AIMD concurrency on 429.

The limiter's schedule is checked on a fake clock (no wall-time assertions); over HTTP the
fake server's request log is the ground truth for what was sent and paid.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from conftest import Reply, last_user_text, read_labels, rule_label
from fake_openai import sequence
from typer.testing import CliRunner

from harness.cli.app import app
from harness.config import ModelConfig, load_experiment
from harness.core.errors import UserError
from harness.core.records import CallSpec
from harness.run.cache import LabelCache
from harness.run.pipeline import run_experiment
from harness.run.plan import make_plan
from harness.run.ratelimit import AIMD, Gate, Stopped, TokenBucket
from harness.run.runner import Runner, RunSettings
from harness.tasks.labelspace import LabelSpace

FAST = {"backoff_initial_s": 0.001, "backoff_max_s": 0.01}
ITEMS = [
    (f"i{i:02d}", f"Review {i:02d}: " + ("great" if i % 2 else "awful") + " lamp.", ["neutral"] * 3)
    for i in range(30)
]
TEXTS = {item_id: text for item_id, text, _ in ITEMS}


def run(exp, **override):
    return run_experiment(exp.config, settings_override={**FAST, **override})


def per_key(srv) -> Counter[str]:
    """Requests per distinct prompt (one prompt per item here)."""
    return Counter(s.key for s in srv.log)


def labelled(delay_s: float = 0.0, **usage):
    def responder(req, attempt):
        return Reply(content=rule_label(last_user_text(req)), delay_s=delay_s, **usage)

    return responder


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- call cap


@pytest.mark.http
def test_max_calls_is_a_hard_cap_that_stops_cleanly_and_resumes(srv, experiment):
    srv.responder = labelled(delay_s=0.05)  # several requests in flight when the cap is hit
    exp = experiment(srv, gold=ITEMS[:12], run={"concurrency": 8, "max_calls": 5})

    first = run(exp)
    assert srv.count == 5, "never more requests than run.max_calls, whatever the concurrency"
    assert first.totals.stopped == "max_calls" and first.metrics is None
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "stopped: max_calls"
    assert manifest["totals"]["calls"] == 5
    records = read_labels(first.run_dir)
    assert len(records) == 5 and all(r["label"] for r in records)  # refused calls: no record

    result = CliRunner().invoke(app, ["run", str(exp.config), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "run.max_calls" in result.output
    assert srv.count == 10  # 5 from the cache for free, 5 more paid

    exp.rewrite(max_calls=None)
    last = run(exp)
    assert last.metrics is not None and last.totals.stopped is None
    assert srv.count == 12 and set(per_key(srv).values()) == {1}
    assert last.totals.cached == 10


@pytest.mark.http
def test_max_calls_counts_retries_and_an_unfinished_item_is_not_recorded(srv, experiment):
    srv.responder = sequence(Reply(status=500, content="boom"), "neutral")  # 2 requests/item
    exp = experiment(srv, gold=ITEMS[:6], run={"concurrency": 1, "retries": 2, "max_calls": 5})
    first = run(exp)
    assert srv.count == 5
    records = read_labels(first.run_dir)
    # Items 1 and 2 took 2 requests each; item 3 got its 500 and its retry was refused.
    assert len(records) == 2 and all(r["label"] == "neutral" for r in records)
    assert first.totals.request_errors == {"http_500": 3}
    assert first.totals.failures == {}  # refused is not failed: the next run makes it

    exp.rewrite(max_calls=None)
    last = run(exp)
    assert last.metrics is not None
    assert {r["item"] for r in read_labels(last.run_dir) if r["label"] == "neutral"} == {
        i for i, _, _ in ITEMS[:6]
    }
    assert last.totals.cached == 2


def test_max_calls_zero_uses_the_cache_only(srv, experiment):
    exp = experiment(srv, gold=ITEMS[:4], run={"max_calls": 0})
    first = run(exp)
    assert srv.count == 0 and first.totals.stopped == "max_calls"


# --------------------------------------------------------------------------- budget


@pytest.mark.http
def test_budget_holds_with_many_calls_in_flight_and_a_rerun_pays_only_the_rest(srv, experiment):
    # The server's usage never exceeds the harness's estimate (chars/4 + 4 per message in,
    # 16 out), so the cap holds exactly: spend never passes the budget.
    srv.responder = labelled(delay_s=0.05)
    price = {"input_cost_per_mtok": 100.0, "output_cost_per_mtok": 100.0}
    budget = 0.02
    exp = experiment(
        srv, gold=ITEMS[:12], model=price, run={"concurrency": 8, "budget_usd": budget}
    )
    first = run(exp)
    assert first.totals.stopped == "budget"
    assert 0 < first.totals.cost_usd <= budget
    assert 2 <= srv.count < 8, "with 8 in flight before the fix, the budget was overshot"
    paid = srv.count

    exp.rewrite(budget_usd=None)
    srv.reset()
    last = run(exp)
    assert last.metrics is not None
    assert srv.count == 12 - paid and set(per_key(srv).values()) == {1}


def test_gate_reserves_the_estimated_cost_of_requests_in_flight():
    model = ModelConfig(
        id="m", model="openai/x", input_cost_per_mtok=1e6, output_cost_per_mtok=0.0
    )  # $1 per input token
    messages = ({"role": "user", "content": "x" * 40},)
    spec = CallSpec("s", "g", "i", 0, "m", "openai/x", messages, {}, None, None, "k")
    # estimate: 40 chars / 4 + 4 = 14 input tokens = $14 (+ 16 output tokens at $0)

    async def scenario():
        gate = Gate({"m": model}, 8, budget_usd=30.0)
        async with gate.slot(spec) as one:
            async with gate.slot(spec) as two:
                with pytest.raises(Stopped, match="budget"):  # 14 + 14 + 14 > 30
                    async with gate.slot(spec):
                        pass
            assert one and two
        return gate

    gate = asyncio.run(scenario())
    assert gate.calls == 2 and gate.stopped == "budget" and gate.in_flight_cost == 0


def test_gate_counts_calls_and_halts():
    model = ModelConfig(id="m", model="openai/x")
    spec = CallSpec("s", "g", "i", 0, "m", "openai/x", (), {}, None, None, "k")

    async def scenario():
        gate = Gate({"m": model}, 2, max_calls=3)
        for _ in range(3):
            async with gate.slot(spec):
                pass
        with pytest.raises(Stopped, match="max_calls"):
            async with gate.slot(spec):
                pass
        other = Gate({"m": model}, 2)
        other.halt()
        with pytest.raises(Stopped, match="halted"):
            async with other.slot(spec):
                pass
        return gate

    assert asyncio.run(scenario()).calls == 3


# --------------------------------------------------------------------------- rate limits


def test_rpm_bucket_spaces_requests_evenly_on_a_fake_clock():
    clock = FakeClock()

    async def scenario():
        bucket = TokenBucket(60, clock=clock, sleep=clock.sleep)  # 1 per second, burst 1
        await asyncio.gather(*(bucket.take(1) for _ in range(5)))
        return bucket.grants

    assert asyncio.run(scenario()) == pytest.approx([0, 1, 2, 3, 4])

    async def burst():
        bucket = TokenBucket(600, clock=clock, sleep=clock.sleep)  # 10/s, burst 10
        start = clock.now
        await asyncio.gather(*(bucket.take(1) for _ in range(13)))
        return [t - start for t in bucket.grants]

    assert asyncio.run(burst()) == pytest.approx([0] * 10 + [0.1, 0.2, 0.3])


def test_tpm_bucket_takes_the_estimate_then_the_correction():
    clock = FakeClock()

    async def scenario():
        bucket = TokenBucket(600, clock=clock, sleep=clock.sleep)  # 10 tokens/s, holds 10
        await bucket.take(10)  # estimated 10 tokens: the bucket is empty
        bucket.adjust(40)  # the reply used 50: 40 tokens of debt
        t1 = await bucket.take(10)  # waits for 50 tokens: 5 s
        await bucket.take(25)  # bigger than the bucket: waits for a full one (1 s), debt 15
        t3 = await bucket.take(1)  # waits for 16 tokens: 1.6 s
        return t1, t3, bucket.taken

    t1, t3, taken = asyncio.run(scenario())
    assert t1 == pytest.approx(5.0)
    assert t3 == pytest.approx(5.0 + 1.0 + 1.6)
    assert taken == pytest.approx(10 + 40 + 10 + 25 + 1)


@pytest.mark.http
def test_rpm_and_tpm_limits_from_the_config_pace_the_run(srv, experiment, tmp_path):
    srv.responder = labelled()
    exp = experiment(srv, gold=ITEMS, model={"rpm": 1200, "tpm": 10**7}, run={"concurrency": 8})
    plan = make_plan(load_experiment(exp.config))
    cache = LabelCache(tmp_path / "rl-cache")
    records = []
    runner = Runner(
        plan.specs,
        plan.models,
        plan.resolved.base,
        cache,
        LabelSpace(plan.resolved.experiment.task),
        RunSettings(concurrency=8, **FAST),
        records.append,
    )
    try:
        totals = asyncio.run(runner.run())
    finally:
        cache.close()
    assert len(records) == len(ITEMS) and all(r.label for r in records)
    limits = runner.gate.limits["fake"]
    # A token bucket's promise: at most capacity + rate * span grants in any span.
    grants, rate, capacity = limits.rpm.grants, 1200 / 60, limits.rpm.capacity
    assert len(grants) == len(ITEMS) == srv.count
    for i in range(len(grants)):
        for j in range(i, len(grants)):
            assert j - i + 1 <= capacity + rate * (grants[j] - grants[i]) + 1e-6
    # tpm: estimates corrected by the usage of each reply, so what was taken is what was used.
    used = sum(r.input_tokens + r.output_tokens for r in records)
    assert limits.tpm.taken == pytest.approx(used)
    assert totals.limits["fake"]["rpm_requests"] == len(ITEMS)
    assert totals.limits["fake"]["tpm_tokens"] == used


# --------------------------------------------------------------------------- AIMD


def test_aimd_halves_once_per_round_and_recovers_additively():
    aimd = AIMD(8)
    assert aimd.on_rate_limited(0) and aimd.limit == 4
    assert not aimd.on_rate_limited(0)  # sent before the cut: the same signal
    assert aimd.on_rate_limited(1) and aimd.limit == 2
    for epoch in (2, 3, 4):
        aimd.on_rate_limited(epoch)
    assert aimd.limit == 1 and aimd.lowest == 1  # floor
    successes = 0
    while aimd.limit < 8:
        aimd.on_success()
        successes += 1
    assert 20 <= successes <= 40  # about sum(1..7): one slot per round of `limit` successes
    assert [k for k, _ in aimd.history].count("grow") == 7


def test_aimd_admits_only_up_to_its_limit():
    async def scenario():
        aimd = AIMD(4)
        aimd.on_rate_limited(0)  # limit 2
        await aimd.acquire()
        await aimd.acquire()
        third = asyncio.ensure_future(aimd.acquire())
        await asyncio.sleep(0)
        assert not third.done() and aimd.active == 2
        aimd.release()
        await asyncio.sleep(0)
        assert third.done() and aimd.active == 2

    asyncio.run(scenario())


@pytest.mark.http
def test_on_429_the_concurrency_backs_off_and_recovers(srv, experiment):
    srv.responder = sequence(Reply(status=429, headers={"Retry-After": "0"}), "neutral")
    exp = experiment(srv, gold=ITEMS[:24], run={"concurrency": 8, "retries": 3})
    result = run(exp)
    assert result.metrics is not None
    assert all(r["label"] == "neutral" for r in read_labels(result.run_dir))
    assert result.totals.request_errors == {"rate_limited": 24}
    assert Counter(s.key for s in srv.log) == Counter({s.key: 2 for s in srv.log})
    assert srv.count == 48  # each item: one 429, then its label
    stats = json.loads((result.run_dir / "manifest.json").read_text())["totals"]["rate_limits"]
    fake = stats["fake"]
    assert fake["concurrency_cuts"] >= 1
    assert fake["lowest_concurrency"] <= 4
    assert fake["final_concurrency"] > fake["lowest_concurrency"]  # recovered after the 429s


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [("run", "max_calls", -1), ("model", "rpm", 0), ("model", "tpm", 0)],
)
def test_limit_keys_are_validated(experiment, where, key, value):
    exp = experiment(**({"run": {key: value}} if where == "run" else {"model": {key: value}}))
    with pytest.raises(UserError, match=key):
        load_experiment(exp.config)
