"""The call station over real HTTP: harness -> litellm -> FakeOpenAIServer on 127.0.0.1.

No mock of litellm: every label here travelled as an HTTP request to the fake server, whose
request count is the ground truth for "how many calls were paid for".
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import (
    GOLD,
    LABELS,
    Reply,
    last_user_text,
    majority,
    per_item,
    read_labels,
    requests_per_item,
    rule_label,
)
from fake_openai import sequence
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import UserError
from harness.run.pipeline import run_experiment

pytestmark = pytest.mark.http

FAST = {"backoff_initial_s": 0.001, "backoff_max_s": 0.01}  # retries without real backoff
IDS = [item_id for item_id, _, _ in GOLD]


def run(exp, **override):
    return run_experiment(exp.config, settings_override={**FAST, **override})


def by_item(records: list[dict]) -> dict[str, dict]:
    out = {r["item"]: r for r in records}
    assert len(out) == len(records), "one record per item"
    return out


# --------------------------------------------------------------------------- happy path


def test_run_labels_every_item_over_http_and_scores_against_the_rule(srv, experiment):
    exp = experiment(srv)
    result = run(exp)

    assert srv.count == len(GOLD)
    assert sorted(requests_per_item(srv)) == sorted(IDS)
    assert all(r["model"] == "fake-model" for r in srv.requests)  # litellm strips openai/
    records = by_item(read_labels(result.run_dir))
    assert sorted(records) == sorted(IDS)
    for item_id, text, _ in GOLD:
        rec = records[item_id]
        assert rec["label"] == rule_label(text), rec
        assert rec["cached"] is False and rec["attempts"] == 1
        assert rec["provider_model"] == "fake-model"
    assert result.totals.calls == len(GOLD) and result.totals.failures == {}

    # The fake model follows a known rule, so every headline number is known in advance.
    reference = [majority(anns) for _, _, anns in GOLD]
    predicted = [rule_label(text) for _, text, _ in GOLD]
    expected_acc = sum(r == p for r, p in zip(reference, predicted, strict=True)) / len(GOLD)
    assert expected_acc == pytest.approx(0.75)  # 9 of 12: g04 sarcasm, g07, g11 wrong
    block = result.metrics["gold_sets"][0]["setups"][0]
    assert block["accuracy"]["estimate"] == pytest.approx(expected_acc, abs=1e-6)
    assert block["accuracy"]["n"] == len(GOLD)
    assert block["accuracy"]["low"] <= expected_acc <= block["accuracy"]["high"]
    assert block["kappa"]["estimate"] == pytest.approx(
        cohen_kappa_score(reference, predicted, labels=LABELS), abs=1e-6
    )
    assert block["coverage"] == {"value": 1.0, "answered": 12, "n": 12}
    assert block["failures"] == {}
    assert block["usage"]["calls_this_run"] == len(GOLD)


def test_logprobs_requested_and_turned_into_label_probabilities(srv, experiment):
    def responder(req, attempt):
        label = rule_label(last_user_text(req))
        a, b = (lab for lab in LABELS if lab != label)
        top = [(label, -0.2), (a, -1.9), (b, -3.0)]
        return Reply(content=label, logprobs=[(label, -0.2, top)])

    srv.responder = responder
    exp = experiment(srv, model={"logprobs": True, "top_logprobs": 3})
    result = run(exp)

    assert srv.count == len(GOLD)
    assert all(r.get("logprobs") is True and r.get("top_logprobs") == 3 for r in srv.requests)
    expected = math.exp(-0.2) / (math.exp(-0.2) + math.exp(-1.9) + math.exp(-3.0))
    for rec in read_labels(result.run_dir):
        assert rec["confidence_source"] == "logprobs", rec
        probs = rec["label_probs"]
        assert set(probs) == set(LABELS)
        assert sum(probs.values()) == pytest.approx(1.0)
        assert rec["confidence"] == pytest.approx(probs[rec["label"]])
        assert rec["confidence"] == pytest.approx(expected)
    cal = result.metrics["gold_sets"][0]["setups"][0]["calibration"]
    assert cal["sources"] == {"logprobs": len(GOLD)}
    assert cal["mean_confidence"] == pytest.approx(expected, abs=1e-5)


# --------------------------------------------------------------------------- retries


def test_429_retry_after_is_honoured_then_label_recorded(srv, experiment):
    srv.responder = per_item(
        {
            "g05": sequence(
                Reply(status=429, content="slow down", headers={"Retry-After": "1"}), "negative"
            )
        }
    )
    exp = experiment(srv)
    result = run(exp)  # backoff ~1 ms: only the header can make the retry wait a second

    records = by_item(read_labels(result.run_dir))
    rec = records["g05"]
    assert rec["label"] == "negative" and rec.get("failure") is None
    assert rec["attempts"] == 2
    assert requests_per_item(srv)["g05"] == 2
    assert rec["finished_at"] - rec["started_at"] >= 0.95, "Retry-After: 1 was not honoured"
    assert all(r["attempts"] == 1 for k, r in records.items() if k != "g05")
    assert srv.count == len(GOLD) + 1


@pytest.mark.parametrize("retries", [0, 2])
def test_persistent_500_gives_up_after_retries_plus_one_requests(srv, experiment, retries):
    srv.responder = per_item({"g05": Reply(status=500, content="boom")})
    exp = experiment(srv, run={"retries": retries})
    result = run(exp)

    rec = by_item(read_labels(result.run_dir))["g05"]
    assert rec["failure"] == "http_500" and rec.get("label") is None
    assert rec["attempts"] == retries + 1
    counts = requests_per_item(srv)
    assert counts["g05"] == retries + 1  # bounded: no hidden litellm/openai SDK retries
    assert all(counts[i] == 1 for i in IDS if i != "g05")
    assert result.metrics is not None  # a failure never stops the run
    block = result.metrics["gold_sets"][0]["setups"][0]
    assert block["failures"] == {"http_500": 1}
    assert block["coverage"]["answered"] == len(GOLD) - 1


GARBAGE = Reply(body="this is not json {", content_type="application/json")


@pytest.mark.parametrize(
    ("reply", "kind", "attempts"),
    [
        pytest.param(GARBAGE, "bad_response", 3, id="garbage-persistent"),
        pytest.param(sequence(GARBAGE, "negative"), None, 2, id="garbage-then-ok"),
        pytest.param(Reply(drop_connection=True), "connection", 3, id="dropped-connection"),
    ],
)
def test_transport_failures_are_named_and_retried(srv, experiment, reply, kind, attempts):
    srv.responder = per_item({"g05": reply})
    exp = experiment(srv, run={"retries": 2})
    result = run(exp)

    rec = by_item(read_labels(result.run_dir))["g05"]
    assert rec["attempts"] == attempts
    assert requests_per_item(srv)["g05"] == attempts
    if kind is None:
        assert rec["label"] == "negative" and rec.get("failure") is None
    else:
        assert rec["failure"] == kind and rec.get("label") is None
    assert result.metrics is not None


def test_unparseable_output_is_a_failure_record_and_the_run_completes(srv, experiment):
    srv.responder = per_item({"g05": "I cannot decide"})
    exp = experiment(srv)
    result = run(exp)

    records = by_item(read_labels(result.run_dir))
    rec = records["g05"]
    assert rec["failure"] == "no_label_found" and rec.get("label") is None
    assert rec["raw"] == "I cannot decide"
    assert rec["attempts"] == 1  # a parse failure is data, not a transport error to retry
    assert sum(r.get("label") is not None for r in records.values()) == len(GOLD) - 1
    assert result.manifest.status == "complete"
    block = result.metrics["gold_sets"][0]["setups"][0]
    assert block["failures"] == {"no_label_found": 1}
    assert block["coverage"]["value"] == pytest.approx(11 / 12, abs=1e-6)


def test_empty_content_is_retried_then_a_failure_and_is_never_cached(srv, experiment):
    srv.responder = per_item({"g05": Reply(content="")})
    exp = experiment(srv)  # retries: 2
    first = run(exp)

    rec = by_item(read_labels(first.run_dir))["g05"]
    assert rec["failure"] == "empty_response"
    assert rec["attempts"] == 3  # retried like a transport fault, within run.retries
    assert requests_per_item(srv)["g05"] == 3
    assert srv.count == len(GOLD) + 2
    assert first.totals.request_errors == {"empty_response": 3}

    srv.reset()
    second = run(exp)
    assert dict(requests_per_item(srv)) == {"g05": 3}  # asked again; the rest was cached
    records = by_item(read_labels(second.run_dir))
    assert records["g05"]["failure"] == "empty_response"
    assert records["g05"]["cached"] is False
    assert sum(r["cached"] for r in records.values()) == len(GOLD) - 1


def test_an_empty_answer_then_a_good_one_gives_a_label_after_one_retry(srv, experiment):
    priced = Reply(content="", prompt_tokens=1000, completion_tokens=0)  # $0.001, paid for
    srv.responder = per_item({"g05": sequence(priced, "negative")})
    exp = experiment(srv, model={"input_cost_per_mtok": 1.0, "output_cost_per_mtok": 0.0})
    result = run(exp)

    rec = by_item(read_labels(result.run_dir))["g05"]
    assert rec["label"] == "negative" and rec.get("failure") is None
    assert rec["attempts"] == 2
    assert requests_per_item(srv)["g05"] == 2
    assert result.totals.request_errors == {"empty_response": 1}
    # The empty answer's price is in the record (so in the run's spend), not in the cache:
    # the cached label costs what its own reply cost.
    srv.reset()
    again = by_item(read_labels(run(exp).run_dir))["g05"]
    assert srv.count == 0 and again["cached"] and again["label"] == "negative"
    assert rec["cost_usd"] == pytest.approx(again["cost_usd"] + 0.001)
    assert again["cost_usd"] > 0


def test_401_stops_the_run_with_a_user_error_naming_the_model(srv, experiment):
    srv.responder = lambda req, attempt: Reply(status=401, content="Incorrect API key provided")
    exp = experiment(srv, model={"id": "fake-gpt"}, run={"concurrency": 2, "retries": 3})
    with pytest.raises(UserError) as info:
        run(exp)
    message = str(info.value)
    assert "fake-gpt" in message and "auth" in message
    # Fatal: not retried, and no further item is tried once the key is known to be bad.
    assert srv.count <= 2


# --------------------------------------------------------------------------- sharing


@pytest.mark.parametrize("concurrency", [24, 3])
def test_two_setups_with_the_same_call_share_one_request_per_item(srv, experiment, concurrency):
    base = {"model": "openai/fake-model", "api_base": srv.base_url}
    exp = experiment(
        srv,
        models=[{"id": "fake", **base}, {"id": "fake_twin", **base}],
        run={"concurrency": concurrency},
    )
    result = run(exp)

    assert srv.count == len(GOLD), "same prompt, model and params must be paid for once"
    records = read_labels(result.run_dir)
    assert len(records) == 2 * len(GOLD)
    first = {r["item"]: r["label"] for r in records if r["setup"] == "zs@fake"}
    twin = {r["item"]: r["label"] for r in records if r["setup"] == "zs@fake_twin"}
    assert first == twin and len(first) == len(GOLD)
    assert sum(not r["cached"] for r in records) == len(GOLD)
    assert result.totals.calls == len(GOLD)


# --------------------------------------------------------------------------- budget


def test_budget_stops_the_run_and_a_rerun_pays_only_for_the_rest(srv, experiment):
    def priced(req, attempt):  # 1000 prompt tokens at $1/Mtok = $0.001 a call
        return Reply(
            content=rule_label(last_user_text(req)), prompt_tokens=1000, completion_tokens=1
        )

    srv.responder = priced
    exp = experiment(
        srv,
        model={"input_cost_per_mtok": 1.0, "output_cost_per_mtok": 0.0},
        run={"concurrency": 1, "budget_usd": 0.0035},
    )

    first = run(exp)
    assert first.totals.stopped == "budget"
    assert first.metrics is None
    assert srv.count == 4  # $0.001, 0.002, 0.003 < 0.0035 <= 0.004: stop before the 5th
    assert first.totals.cost_usd == pytest.approx(0.004)
    manifest = json.loads((first.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "stopped: budget"
    assert manifest["totals"]["stopped"] == "budget"
    assert len(read_labels(first.run_dir)) == 4
    assert not (first.run_dir / "metrics.json").exists()

    # The CLI: cached labels are free, 4 more are paid for, then the budget stops it again.
    result = CliRunner().invoke(app, ["run", str(exp.config), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "budget" in result.output
    assert srv.count == 8

    exp.rewrite(budget_usd=1.0)
    last = run(exp)
    assert last.totals.stopped is None and last.metrics is not None
    assert srv.count == len(GOLD)  # paid only for the 4 items never labelled
    assert sorted(requests_per_item(srv).values()) == [1] * len(GOLD)
    assert last.totals.cached == 8
    assert last.totals.cost_usd == pytest.approx(0.004)
    assert last.metrics["gold_sets"][0]["setups"][0]["coverage"]["value"] == 1.0
