"""Batch mode (`batch: true`): calls go to the provider's Files + Batches endpoints, over real
HTTP to tests/fake_batches.py, whose counters are the ground truth: how many batches were
created, which lines they held, how many live calls were made."""

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
from conftest import GOLD, NEW, flat, invoke, item_of, label_run, read, read_labels, rule_label
from fake_batches import FakeBatchServer
from fake_openai import keyword_labeler

import harness.run.pipeline
from harness.providers import openai_batch
from harness.providers.batches import BatchLimits
from harness.run.batch_journal import Journal
from harness.run.runner import RunSettings

pytestmark = pytest.mark.http

TEXT = {item_id: text for item_id, text, _ in GOLD}
PRICED = {"input_cost_per_mtok": 2.0, "output_cost_per_mtok": 8.0}  # live prices


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    fast = functools.partial(RunSettings, backoff_initial_s=0.001, backoff_max_s=0.01)
    monkeypatch.setattr(harness.run.pipeline, "RunSettings", fast)


@pytest.fixture
def bsrv():
    from conftest import DEFAULT_LABEL, RULES

    with FakeBatchServer(keyword_labeler(RULES, DEFAULT_LABEL)) as server:
        yield server


def batch_experiment(experiment, srv, *, run=None, model=None, **kw):
    return experiment(
        srv,
        model={"batch": True, **PRICED, **(model or {})},
        run={"batch_poll_s": 0.02, **(run or {})},
        **kw,
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


def test_a_batch_run_labels_every_item_in_one_batch_at_the_batch_price(
    bsrv, experiment, _isolated_cache
):
    exp = batch_experiment(experiment, bsrv)
    _, run_dir = run(exp)
    assert len(bsrv.created) == 1 and bsrv.count == 0  # one batch, no live call
    assert len(bsrv.batch_lines) == len(GOLD)
    line = bsrv.batch_lines[0]
    assert line["url"] == "/v1/chat/completions" and line["body"]["model"] == "fake-model"
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert {i: r["label"] for i, r in records.items()} == {
        i: rule_label(t) for i, t in TEXT.items()
    }
    assert all(not r["cached"] and r["attempts"] == 1 for r in records.values())
    # Half the live price: from the reply's own token counts.
    for r in records.values():
        live = (r["input_tokens"] * 2.0 + r["output_tokens"] * 8.0) / 1e6
        assert r["cost_usd"] == pytest.approx(live / 2)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["totals"]["batches"]["fake"] == {
        "batches": 1,
        "requests": len(GOLD),
        "resumed": 0,
        "retried": 0,
    }
    assert manifest["totals"]["calls"] == len(GOLD)
    assert journals(_isolated_cache) == []  # collected: nothing left open

    # The answers are the cache's: a rerun asks nothing, live or batch.
    _, again = run(exp)
    assert len(bsrv.created) == 1 and bsrv.count == 0
    assert all(r["cached"] for r in read_labels(again))


def test_batch_answers_and_live_answers_share_the_cache(bsrv, experiment):
    live = experiment(bsrv, model=PRICED, name="live")
    run(live)
    assert bsrv.count == len(GOLD)
    batched = batch_experiment(experiment, bsrv, name="batched")
    _, run_dir = run(batched)
    assert bsrv.created == [] and all(r["cached"] for r in read_labels(run_dir))


def test_requests_shared_by_two_setups_are_one_line(bsrv, experiment):
    base = {"model": "openai/fake-model", "api_base": bsrv.base_url, "batch": True, **PRICED}
    exp = experiment(
        bsrv, models=[{"id": "a", **base}, {"id": "b", **base}], run={"batch_poll_s": 0.02}
    )
    _, run_dir = run(exp)
    assert len(bsrv.batch_lines) == len(GOLD)  # the same request for both setups: sent once
    records = read_labels(run_dir)
    assert len(records) == 2 * len(GOLD)
    assert sum(not r["cached"] for r in records) == len(GOLD)


def test_the_plan_shows_the_batch_price_and_the_saving(bsrv, experiment):
    exp = batch_experiment(experiment, bsrv)
    result = invoke("plan", str(exp.config), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    [row] = plan["setups"]
    assert row["batch"] is True
    assert row["cost_usd"] == pytest.approx(row["live_cost_usd"] / 2)
    assert row["saving_usd"] == pytest.approx(row["live_cost_usd"] / 2)
    assert "batch" in row["price_source"]
    text = invoke("plan", str(exp.config))
    assert "batch" in flat(text.output) and "saving" in flat(text.output)


def test_kill_9_while_waiting_then_a_rerun_polls_the_same_batch(
    bsrv, experiment, cache_dir, tmp_path
):
    bsrv.hold.clear()  # the batch stays in progress until released
    exp = batch_experiment(experiment, bsrv)
    log = (tmp_path / "run1.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(exp.config), "--quiet"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Until the batch exists and its id is written down, and a poll found it running.
        while proc.poll() is None and not (bsrv.polls and any_batch_id(cache_dir)):
            time.sleep(0.02)
        assert proc.poll() is None, (tmp_path / "run1.log").read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(bsrv.created) == 1 and len(journals(cache_dir)) == 1
    [killed] = exp.run_dirs()

    bsrv.hold.set()
    run(exp, "--resume", str(killed))
    assert len(bsrv.created) == 1 and bsrv.count == 0  # polled, never sent again
    records = read_labels(killed)
    assert sorted(r["item"] for r in records) == sorted(TEXT)
    assert all(r["label"] == rule_label(TEXT[r["item"]]) for r in records)
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["totals"]["batches"]["fake"]["resumed"] == 1
    assert journals(cache_dir) == []


def any_batch_id(cache_dir) -> bool:
    return any(json.loads(p.read_text()).get("batch_id") for p in journals(cache_dir))


class Killed(BaseException):
    """The process dies here (a BaseException: nothing on the way catches it)."""


def test_a_kill_between_the_upload_and_the_batch_id_finds_the_batch_by_its_file(
    bsrv, experiment, cache_dir, monkeypatch
):
    exp = batch_experiment(experiment, bsrv)
    real = Journal.stage

    def killed_before_writing_the_batch_id(self, *, file_id=None, batch_id=None):
        if batch_id is not None:
            raise Killed  # the batch exists at the provider; its id is lost
        real(self, file_id=file_id)

    monkeypatch.setattr(Journal, "stage", killed_before_writing_the_batch_id)
    with pytest.raises(Killed):
        invoke("run", str(exp.config), "--quiet")
    [journal] = journals(cache_dir)
    assert json.loads(journal.read_text())["batch_id"] is None
    assert len(bsrv.created) == 1
    monkeypatch.setattr(Journal, "stage", real)
    _, run_dir = run(exp)
    assert len(bsrv.created) == 1  # found by its input file, not created again
    assert len(read_labels(run_dir)) == len(GOLD)
    assert all(r.get("failure") is None for r in read_labels(run_dir))


def test_an_expired_batch_keeps_what_ran_and_sends_the_rest_again(bsrv, experiment):
    bsrv.outcomes, bsrv.expire_after = ["expired"], 5
    exp = batch_experiment(experiment, bsrv)
    _, run_dir = run(exp)
    assert len(bsrv.created) == 2
    second = [line for line in bsrv.batch_lines[len(GOLD) :]]
    assert len(second) == len(GOLD) - 5  # only what the window left unrun
    records = read_labels(run_dir)
    assert all(r.get("failure") is None for r in records) and len(records) == len(GOLD)
    assert sorted(r["attempts"] for r in records) == [1] * 5 + [2] * (len(GOLD) - 5)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["totals"]["batches"]["fake"]["retried"] == len(GOLD) - 5
    assert manifest["totals"]["request_errors"] == {"batch_expired": len(GOLD) - 5}


def failing(items: dict[str, int], times: int = 1):
    """line_status: these items fail with their status on their first `times` attempts."""

    def line_status(custom_id, body, attempt):
        text = body["messages"][-1]["content"].strip()
        item = next((i for i, t in TEXT.items() if t == text), None)
        return items.get(item) if attempt < times else None

    return line_status


def test_failed_lines_are_retried_in_a_new_batch(bsrv, experiment):
    bsrv.line_status = failing({"g02": 500, "g05": 429})
    exp = batch_experiment(experiment, bsrv)
    _, run_dir = run(exp)
    assert len(bsrv.created) == 2 and len(bsrv.batch_lines) == len(GOLD) + 2
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert all(r.get("failure") is None for r in records.values())
    assert (records["g02"]["attempts"], records["g05"]["attempts"]) == (2, 2)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["totals"]["request_errors"] == {"http_500": 1, "rate_limited": 1}


def test_failed_lines_go_live_with_batch_retry_live(bsrv, experiment):
    bsrv.line_status = failing({"g02": 500, "g05": 500})
    exp = batch_experiment(experiment, bsrv, run={"batch_retry": "live"})
    _, run_dir = run(exp)
    assert len(bsrv.created) == 1 and bsrv.count == 2  # the two failed lines, live
    assert sorted(item_of(r) for r in bsrv.requests) == ["g02", "g05"]
    assert all(r.get("failure") is None for r in read_labels(run_dir))


def test_a_request_the_provider_rejects_is_a_failure_not_retried(bsrv, experiment):
    bsrv.line_status = failing({"g03": 400}, times=99)
    exp = batch_experiment(experiment, bsrv)
    _, run_dir = run(exp)
    assert len(bsrv.created) == 1
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert records["g03"]["failure"] == "bad_request"
    assert sum(1 for r in records.values() if r.get("failure")) == 1


def test_retries_stop_at_run_retries(bsrv, experiment):
    bsrv.line_status = failing({"g03": 500}, times=99)
    exp = batch_experiment(experiment, bsrv, run={"retries": 2})
    _, run_dir = run(exp)
    assert len(bsrv.created) == 3  # the first batch and two retries
    records = {r["item"]: r for r in read_labels(run_dir)}
    assert (records["g03"]["failure"], records["g03"]["attempts"]) == ("http_500", 3)


def test_a_rejected_batch_is_an_error_not_a_report(bsrv, experiment):
    bsrv.outcome = "failed"
    exp = batch_experiment(experiment, bsrv)
    result, run_dir = run(exp, code=2)
    assert "the provider rejected the batch as a whole" in flat(result.output)
    assert "the batch failed: the input was rejected" in flat(result.output)
    assert "zs@fake" in flat(result.output)
    assert not (run_dir / "metrics.json").exists()


def test_a_batch_cancelled_by_someone_else_fails_its_requests_for_good(bsrv, experiment):
    bsrv.outcome = "cancelled"
    exp = batch_experiment(experiment, bsrv)
    result, _ = run(exp, code=2)  # nothing answered: no result either
    assert "failed: 12 batch_cancelled" in flat(
        result.output
    )  # not just the words: the tmp path has them
    assert len(bsrv.created) == 1


def test_the_deadline_stops_the_run_and_the_batch_is_collected_later(bsrv, experiment, cache_dir):
    bsrv.hold.clear()
    exp = batch_experiment(experiment, bsrv, run={"batch_deadline_h": 0.5 / 3600})
    result, run_dir = run(exp, code=1)
    assert "stopped: batch_deadline" in flat(result.output)
    assert f"--resume {run_dir}" in flat(result.output)
    assert (
        json.loads((run_dir / "manifest.json").read_text())["status"] == "stopped: batch_deadline"
    )
    assert read_labels(run_dir) == [] and len(journals(cache_dir)) == 1
    bsrv.hold.set()
    run(exp, "--resume", str(run_dir))
    assert len(bsrv.created) == 1
    assert len(read_labels(run_dir)) == len(GOLD)


def test_batches_are_split_by_the_providers_limits(bsrv, experiment, monkeypatch):
    monkeypatch.setattr(openai_batch, "LIMITS", BatchLimits(max_requests=5, max_bytes=10**9))
    exp = batch_experiment(experiment, bsrv)
    _, run_dir = run(exp)
    assert [len(b["_lines"]) for b in bsrv.batches.values()] == [5, 5, 2]
    assert len(read_labels(run_dir)) == len(GOLD)
    size = max(len(json.dumps(line)) for line in bsrv.batch_lines) + 1
    bsrv_bytes = BatchLimits(max_requests=10**6, max_bytes=3 * size)
    monkeypatch.setattr(openai_batch, "LIMITS", bsrv_bytes)
    other = batch_experiment(experiment, bsrv, name="other", model={"params": {"seed": 1}})
    created = len(bsrv.created)
    run(other)
    sizes = [len(b["_lines"]) for b in list(bsrv.batches.values())[created:]]
    assert sum(sizes) == len(GOLD) and max(sizes) <= 3 and len(sizes) >= 4


def test_max_calls_caps_the_requests_a_batch_sends(bsrv, experiment):
    exp = batch_experiment(experiment, bsrv, run={"max_calls": 4})
    result, run_dir = run(exp, code=1)
    assert len(bsrv.batch_lines) == 4
    assert "stopped: max_calls" in flat(result.output)
    assert len(read_labels(run_dir)) == 4


def test_progress_lines_name_the_batches_and_counts(bsrv, experiment):
    exp = batch_experiment(experiment, bsrv)
    result = invoke("run", str(exp.config))
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert f"batch fake: {len(GOLD)} requests in 1 batches submitted, 1 open" in text
    assert "0 labels to come" in text and "elapsed" in text


def test_batch_on_a_model_without_a_batch_api_is_bad_input(experiment):
    exp = experiment(None, models=[{"id": "m", "model": "local/smollm2-135m", "batch": True}])
    result = invoke("validate", str(exp.config))
    assert result.exit_code == 2
    assert "models[0].batch" in flat(result.output) or "batch" in flat(result.output)
    assert "batch API" in flat(result.output)


def test_batch_on_a_provider_without_an_openai_batch_endpoint_is_bad_input(experiment, bsrv):
    exp = experiment(
        bsrv,
        models=[
            {"id": "g", "model": "gemini/gemini-2.0-flash", "batch": True, "api_key_env": "NOPE"}
        ],
    )
    import os as _os

    _os.environ["NOPE"] = "sk-xxxxxxxxxxxx"
    try:
        result = invoke("run", str(exp.config), "--quiet")
    finally:
        del _os.environ["NOPE"]
    assert result.exit_code == 2, result.output
    assert "no OpenAI-compatible batch endpoint" in flat(result.output)
    assert "models.g.batch" in flat(result.output) or "batch" in flat(result.output)


def test_prelabel_label_sends_a_pool_as_a_batch(bsrv, experiment, tmp_path):
    exp = batch_experiment(experiment, bsrv)
    run(exp)
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(row) + "\n" for row in NEW), encoding="utf-8")
    result = invoke("label", str(exp.config), "--input", str(pool))
    assert result.exit_code == 0, result.output
    assert len(bsrv.created) == 2 and bsrv.count == 0
    assert len(bsrv.batch_lines) == len(GOLD) + len(NEW)
    rows = read(label_run(exp) / "prelabels.jsonl")
    assert {r["item"]: r["label"] for r in rows} == {n["id"]: rule_label(n["text"]) for n in NEW}


def test_a_budget_counts_batch_requests_at_the_batch_price(bsrv, experiment):
    # Each call is estimated at about 60 input and 5 output tokens: at $2/$8 per Mtok live
    # that is ~$0.00016, in batch ~$0.00008; a $0.0005 budget admits a handful, not all 12.
    exp = batch_experiment(experiment, bsrv, run={"budget_usd": 0.0005})
    result, run_dir = run(exp, code=1)
    sent = len(bsrv.batch_lines)
    assert 0 < sent < len(GOLD)
    assert "stopped: budget" in flat(result.output)
    spent = sum(r["cost_usd"] for r in read_labels(run_dir))
    assert spent <= 0.0005


def test_a_budget_without_a_batch_price_is_refused_before_anything_is_sent(bsrv, experiment):
    exp = experiment(bsrv, model={"batch": True}, run={"batch_poll_s": 0.02, "budget_usd": 1.0})
    result, _ = run(exp, code=2)
    assert bsrv.created == [] and bsrv.uploads == 0
    assert "batch price of model 'fake' is unknown" in flat(result.output)


def test_prelabel_gate_labels_a_changed_prompt_in_a_batch(bsrv, experiment, tmp_path):
    exp = batch_experiment(experiment, bsrv)
    run(exp)
    baseline = tmp_path / "baseline.json"
    [first] = exp.run_dirs()
    assert invoke("baseline", "save", str(first), "-o", str(baseline)).exit_code == 0
    changed = exp.template.read_text().replace("Reply with", "Answer with")  # new calls
    exp.template.write_text(changed, encoding="utf-8")
    result = invoke("gate", str(exp.config), "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    assert len(bsrv.created) == 2 and bsrv.count == 0  # the changed prompt: one more batch


def test_quiet_silences_the_progress_lines(bsrv, experiment):
    exp = batch_experiment(experiment, bsrv)
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    assert "batch fake:" not in result.output


def test_an_upload_whose_batch_was_never_created_is_sent_again(
    bsrv, experiment, cache_dir, monkeypatch
):
    """Killed after the input file was uploaded but before the batch was created: the
    lookup by file finds nothing, so the requests go out in a new batch (a lookup that
    found nothing once became the batch id `True`, polled until the run failed)."""
    exp = batch_experiment(experiment, bsrv)
    real_stage = Journal.stage

    def killed_after_the_upload(self, *, file_id=None, batch_id=None):
        real_stage(self, file_id=file_id, batch_id=batch_id)
        if file_id is not None:
            raise Killed  # the file is uploaded; the batch is not created

    monkeypatch.setattr(Journal, "stage", killed_after_the_upload)
    with pytest.raises(Killed):
        invoke("run", str(exp.config), "--quiet")
    [journal] = journals(cache_dir)
    data = json.loads(journal.read_text())
    assert data["file_id"] and data["batch_id"] is None and bsrv.created == []
    monkeypatch.setattr(Journal, "stage", real_stage)
    _, run_dir = run(exp)
    assert len(bsrv.created) == 1
    records = read_labels(run_dir)
    assert len(records) == len(GOLD) and all(r.get("failure") is None for r in records)
    assert journals(cache_dir) == []
