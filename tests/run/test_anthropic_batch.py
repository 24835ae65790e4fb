"""Batch mode on Anthropic models: Message Batches through the anthropic SDK, over real HTTP to
tests/fake_anthropic_batches.py, whose counters are the ground truth (batches created, the
requests they held, live calls made)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import DEFAULT_LABEL, GOLD, RULES, flat, invoke, read_labels, rule_label
from fake_anthropic_batches import FakeAnthropicServer
from fake_openai import constant, keyword_labeler, last_user_text

import harness.run.pipeline
from harness.run.runner import RunSettings

pytestmark = pytest.mark.http

TEXT = {item_id: text for item_id, text, _ in GOLD}
ITEM = {text: item_id for item_id, text in TEXT.items()}
KNOWN = "anthropic/claude-haiku-4-5"  # in litellm's price map, batch prices included
BATCH_PRICE = (0.5e-6, 2.5e-6)  # USD per input / output token: half the live $1 / $5 per Mtok
UNKNOWN = "anthropic/claude-3-5-haiku-20241022"  # not in it: no native structured output


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    fast = functools.partial(RunSettings, backoff_initial_s=0.001, backoff_max_s=0.01)
    monkeypatch.setattr(harness.run.pipeline, "RunSettings", fast)


@pytest.fixture(autouse=True)
def fake_key(monkeypatch):
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-fake-0123456789")


@pytest.fixture
def asrv():
    with FakeAnthropicServer(keyword_labeler(RULES, DEFAULT_LABEL)) as server:
        yield server


def claude(srv, model: str = KNOWN, **extra) -> dict:
    return {
        "id": "claude",
        "model": model,
        "api_base": srv.base_url,
        "api_key_env": "FAKE_ANTHROPIC_KEY",
        "batch": True,
        **extra,
    }


def batch_experiment(experiment, srv, *, run=None, model=KNOWN, name="exp", **extra):
    return experiment(
        srv,
        models=[claude(srv, model, **extra)],
        run={"batch_poll_s": 0.02, **(run or {})},
        name=name,
    )


def run(exp, *args: str, code: int = 0):
    before = set(exp.run_dirs())
    result = invoke("run", str(exp.config), "--quiet", *args)
    assert result.exit_code == code, result.output
    new = [d for d in exp.run_dirs() if d not in before]
    return result, (new[0] if new else None)


def journals(cache_dir) -> list:
    folder = cache_dir / "batches"
    return sorted(folder.glob("*.json")) if folder.exists() else []


def item(params: dict) -> str:
    return ITEM[last_user_text(params).strip()]


def failing(items: dict[str, str], times: int = 1):
    """request_error: these items fail with their error type on their first `times` tries."""

    def request_error(custom_id, params, attempt):
        return items.get(item(params)) if attempt < times else None

    return request_error


def test_a_batch_run_labels_every_item_in_one_batch_at_the_batch_price(
    asrv, experiment, _isolated_cache
):
    exp = batch_experiment(experiment, asrv)
    _, run_dir = run(exp)
    assert len(asrv.created) == 1 and asrv.live == []  # one batch, no live call
    assert len(asrv.batch_requests) == len(GOLD)
    params = asrv.batch_requests[0]["params"]
    assert params["model"] == "claude-haiku-4-5"  # the provider's own name
    assert params["system"][0]["text"].startswith("You are a sentiment classifier")
    assert [m["role"] for m in params["messages"]] == ["user"]
    assert params["max_tokens"] == 64000  # litellm's default: the model's max output
    assert params["temperature"] == 0.0 and "seed" not in params
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert {i: r["label"] for i, r in records.items()} == {
        i: rule_label(t) for i, t in TEXT.items()
    }
    assert all(not r["cached"] and r["attempts"] == 1 for r in records.values())
    for r in records.values():  # the price map's batch price, on the reply's own tokens
        cost = r["input_tokens"] * BATCH_PRICE[0] + r["output_tokens"] * BATCH_PRICE[1]
        assert r["input_tokens"] > 0 and r["cost_usd"] == pytest.approx(cost)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["totals"]["batches"]["claude"] == {
        "batches": 1,
        "requests": len(GOLD),
        "resumed": 0,
        "retried": 0,
    }
    assert journals(_isolated_cache) == []
    headers = asrv.create_headers[0]  # the key from api_key_env (header name: SDK version's)
    assert any(
        "sk-ant-fake-0123456789" in headers.get(h, "") for h in ("x-api-key", "authorization")
    )

    _, again = run(exp)  # the answers are the cache's: a rerun asks nothing
    assert len(asrv.created) == 1 and asrv.live == []
    assert all(r["cached"] for r in read_labels(again))


@pytest.mark.parametrize("model", [KNOWN, UNKNOWN])
def test_structured_output_asks_what_a_live_call_asks_and_parses_the_same(
    asrv, experiment, monkeypatch, tmp_path, model
):
    """The same experiment live (litellm) and batched, each with its own cache: every batch
    request is the body litellm sent live (a model with native JSON output gets
    `output_format` and its beta flag; another a forced tool whose input is the answer)."""
    asrv.responder = keyword_labeler(RULES, DEFAULT_LABEL, as_json=True)
    entry = claude(asrv, model, structured_output="json_schema")
    live = experiment(asrv, models=[{**entry, "batch": False}], name="live")
    _, live_dir = run(live)
    assert len(asrv.live) == len(GOLD) and asrv.created == []
    monkeypatch.setenv("PRELABEL_CACHE_DIR", str(tmp_path / "another-cache"))
    batched = experiment(asrv, models=[entry], run={"batch_poll_s": 0.02}, name="batched")
    _, run_dir = run(batched)
    assert len(asrv.created) == 1 and len(asrv.live) == len(GOLD)
    sent = {item(r["params"]): r["params"] for r in asrv.batch_requests}
    assert sent == {item(p): p for p in asrv.live}
    params = next(iter(sent.values()))
    if model == KNOWN:
        assert "output_format" in params and "tools" not in params
        assert "structured-outputs" in asrv.create_headers[0]["anthropic-beta"]
    else:
        assert params["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
        assert params["tools"][0]["input_schema"]["required"] == ["label"]
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert {i: r["label"] for i, r in records.items()} == {
        i: rule_label(t) for i, t in TEXT.items()
    }
    assert {i: r["raw"] for i, r in records.items()} == {
        r["item"]: r["raw"] for r in read_labels(live_dir)
    }


def test_batch_answers_and_live_answers_share_the_cache(asrv, experiment):
    live = experiment(asrv, models=[{**claude(asrv), "batch": False}], name="live")
    run(live)
    assert len(asrv.live) == len(GOLD)
    batched = batch_experiment(experiment, asrv, name="batched")
    _, run_dir = run(batched)
    assert asrv.created == [] and all(r["cached"] for r in read_labels(run_dir))


def test_errored_requests_are_retried_in_a_new_batch(asrv, experiment):
    asrv.request_error = failing({"g02": "overloaded_error", "g05": "api_error"})
    exp = batch_experiment(experiment, asrv)
    _, run_dir = run(exp)
    assert len(asrv.created) == 2 and len(asrv.batch_requests) == len(GOLD) + 2
    assert sorted(item(r["params"]) for r in asrv.created[1]["requests"]) == ["g02", "g05"]
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert all(r.get("failure") is None for r in records.values())
    assert (records["g02"]["attempts"], records["g05"]["attempts"]) == (2, 2)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["totals"]["request_errors"] == {"http_529": 1, "http_500": 1}
    assert manifest["totals"]["batches"]["claude"]["retried"] == 2


def test_an_invalid_request_is_a_failure_not_retried(asrv, experiment):
    asrv.request_error = failing({"g03": "invalid_request_error"}, times=99)
    exp = batch_experiment(experiment, asrv)
    _, run_dir = run(exp)
    assert len(asrv.created) == 1
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert records["g03"]["failure"] == "bad_request"
    assert sum(1 for r in records.values() if r.get("failure")) == 1


def test_expired_requests_are_sent_again(asrv, experiment):
    asrv.outcomes, asrv.expire_after = ["expired"], 5
    exp = batch_experiment(experiment, asrv)
    _, run_dir = run(exp)
    assert len(asrv.created) == 2
    assert len(asrv.created[1]["requests"]) == len(GOLD) - 5  # only what never ran
    records = read_labels(run_dir)
    assert all(r.get("failure") is None for r in records) and len(records) == len(GOLD)
    assert sorted(r["attempts"] for r in records) == [1] * 5 + [2] * (len(GOLD) - 5)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["totals"]["request_errors"] == {"batch_expired": len(GOLD) - 5}


def test_a_batch_cancelled_by_someone_else_fails_its_requests_for_good(asrv, experiment):
    asrv.outcome = "canceled"
    exp = batch_experiment(experiment, asrv)
    result, _ = run(exp, code=2)  # nothing answered: no result either
    # (not just "batch_cancelled": the test's own tmp path holds those words)
    assert f"failed: {len(GOLD)} batch_cancelled" in flat(result.output)
    assert len(asrv.created) == 1


def test_kill_9_while_waiting_then_a_rerun_polls_the_same_batch(
    asrv, experiment, cache_dir, tmp_path
):
    asrv.hold.clear()  # the batch stays in progress until released
    exp = batch_experiment(experiment, asrv)
    log = (tmp_path / "run1.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(exp.config), "--quiet"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:  # until the batch exists, its id is written down, and a poll found it running
        while proc.poll() is None and not (asrv.polls and any_batch_id(cache_dir)):
            time.sleep(0.02)
        assert proc.poll() is None, (tmp_path / "run1.log").read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(asrv.created) == 1 and len(journals(cache_dir)) == 1
    [killed] = exp.run_dirs()

    asrv.hold.set()
    run(exp, "--resume", str(killed))
    assert len(asrv.created) == 1 and asrv.live == []  # polled, never sent again
    records = read_labels(killed)
    assert sorted(r["item"] for r in records) == sorted(TEXT)
    assert all(r["label"] == rule_label(TEXT[r["item"]]) for r in records)
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["totals"]["batches"]["claude"]["resumed"] == 1
    assert journals(cache_dir) == []


def any_batch_id(cache_dir) -> bool:
    return any(json.loads(p.read_text()).get("batch_id") for p in journals(cache_dir))


def test_without_the_anthropic_package_batch_mode_says_what_to_install(
    asrv, experiment, monkeypatch
):
    monkeypatch.setitem(sys.modules, "anthropic", None)  # as if not installed: import fails
    exp = batch_experiment(experiment, asrv)
    result, _ = run(exp, code=2)
    text = flat(result.output)
    assert "pip install 'prelabel[anthropic]'" in text and "models.claude.batch" in text
    assert asrv.created == [] and asrv.live == []


def test_an_answer_that_echoes_the_key_is_stored_masked(asrv, experiment, cache_dir):
    asrv.responder = constant("sk-ant-fake-0123456789 positive")
    exp = batch_experiment(experiment, asrv)
    _, run_dir = run(exp)
    assert "sk-ant-fake-0123456789" not in (run_dir / "labels.jsonl").read_text()
    assert all("[secret]" in r["raw"] for r in read_labels(run_dir))
    stored = b"".join(p.read_bytes() for p in cache_dir.rglob("*") if p.is_file())
    assert b"sk-ant-fake-0123456789" not in stored


class Killed(BaseException):
    """The process dies here (raised where a kill would land)."""


def test_a_kill_between_create_and_the_id_write_finds_the_batch_by_time_and_size(
    asrv, experiment, cache_dir, monkeypatch
):
    from harness.run.batch_journal import Journal

    exp = batch_experiment(experiment, asrv)
    real = Journal.stage

    def killed_before_writing_the_batch_id(self, *, file_id=None, batch_id=None):
        if batch_id is not None:
            raise Killed  # the batch exists at Anthropic; its id is lost
        real(self, file_id=file_id)

    monkeypatch.setattr(Journal, "stage", killed_before_writing_the_batch_id)
    with pytest.raises(Killed):
        invoke("run", str(exp.config), "--quiet")
    [journal] = journals(cache_dir)
    assert json.loads(journal.read_text())["batch_id"] is None and len(asrv.created) == 1
    monkeypatch.setattr(Journal, "stage", real)
    _, run_dir = run(exp)
    assert len(asrv.created) == 1 and asrv.live == []  # found, not created again
    records = read_labels(run_dir)
    assert sorted(r["item"] for r in records) == sorted(TEXT)
    assert all(r["label"] == rule_label(TEXT[r["item"]]) for r in records)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["totals"]["batches"]["claude"]["resumed"] == 1
    assert journals(cache_dir) == []


def test_a_lost_batch_looked_up_wrongly_is_not_taken_for_ours(
    asrv, experiment, cache_dir, monkeypatch
):
    """Killed before Anthropic got the batch, while someone else's batch of the same size
    was created in the same minutes: the lookup takes it, its results match none of the
    journal's custom ids, and our requests are sent again (no label from the wrong batch)."""
    import httpx

    from harness.providers.anthropic_batch import AnthropicBatches

    exp = batch_experiment(experiment, asrv)

    async def killed_before_sending(self, lines, stage):
        raise Killed

    real = AnthropicBatches.submit
    monkeypatch.setattr(AnthropicBatches, "submit", killed_before_sending)
    with pytest.raises(Killed):
        invoke("run", str(exp.config), "--quiet")
    assert len(journals(cache_dir)) == 1 and asrv.created == []
    other = [
        {
            "custom_id": f"theirs-{k}",
            "params": {
                "model": "claude-haiku-4-5",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "Awful, just awful."}],
            },
        }
        for k in range(len(GOLD))
    ]
    created = httpx.post(f"{asrv.base_url}/v1/messages/batches", json={"requests": other})
    assert created.status_code == 200
    monkeypatch.setattr(AnthropicBatches, "submit", real)
    _, run_dir = run(exp)
    assert len(asrv.created) == 2  # theirs, then ours sent again
    ours = asrv.created[1]["requests"]
    assert not any(r["custom_id"].startswith("theirs-") for r in ours)
    records = read_labels(run_dir)
    assert sorted(r["item"] for r in records) == sorted(TEXT)
    assert all(r["label"] == rule_label(TEXT[r["item"]]) for r in records)
    assert journals(cache_dir) == []
