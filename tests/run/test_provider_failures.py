"""A provider that never answered is an error, not a result (exit 2), and found out fast.

Over real HTTP (litellm -> FakeOpenAIServer, or a port where nothing listens): `run`,
`gate`, `label` and `canary` end with exit 2 and a message naming the setup, the model, its
api_base, the cause and the fix; no report is written; the run folder says why in
manifest.json. A model that answered badly (parse failures) still gets its report.
"""

from __future__ import annotations

import functools
import json
import socket
from pathlib import Path

import pytest
from conftest import (
    GOLD,
    Reply,
    flat,
    invoke,
    line_of,
    only_run_dir,
    per_item,
    read_labels,
    requests_per_item,
)

import harness.deploy.label
import harness.gate.canary
import harness.run.pipeline
from harness.config import ModelConfig
from harness.core.records import LabelRecord
from harness.providers import ProviderError
from harness.run.provider_health import FAIL_FAST_AFTER, Health
from harness.run.runner import RunSettings

pytestmark = pytest.mark.http

RETRIES = 6  # without failing fast, a dead server would take (6 + 1) x 12 = 84 requests
REPORTS = ("metrics.json", "report.md", "report.html")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    """Retries without real backoff, in every command (a test counts requests, not time)."""
    fast = functools.partial(RunSettings, backoff_initial_s=0.001, backoff_max_s=0.01)
    for module in (harness.run.pipeline, harness.deploy.label, harness.gate.canary):
        monkeypatch.setattr(module, "RunSettings", fast)


def dead_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then closed): connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failed_runs(exp) -> list[Path]:
    """Run folders whose manifest says the run did not finish."""
    return [
        d
        for d in exp.run_dirs()
        if json.loads((d / "manifest.json").read_text())["status"] == "interrupted"
    ]


def check_failed_run(exp, result, *parts: str) -> dict:
    """Exit 2, every part of the message, no report, the reason kept in the manifest."""
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    for part in parts:
        assert part in text, (part, text)
    assert "recommended" not in text and "reports:" not in text
    [run_dir] = failed_runs(exp)
    assert not any((run_dir / name).exists() for name in REPORTS)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert parts[0] in manifest["error"] and "hint:" in manifest["error"]
    return manifest


def test_a_refused_connection_fails_fast_with_exit_2_and_says_what_to_fix(experiment):
    port = dead_port()
    base = f"http://127.0.0.1:{port}/v1"
    exp = experiment(model={"api_base": base}, run={"retries": RETRIES, "concurrency": 2})
    result = invoke("run", str(exp.config), "--quiet")

    line = line_of(exp.config, "api_base")
    manifest = check_failed_run(
        exp,
        result,
        "setup 'zs@fake'",
        "model 'fake' (openai/fake-model at " + base + ")",
        f"connection refused at {base}: is the server running? check models[0].api_base",
        f"{exp.config}:{line}",
        "every answer received so far is cached",
    )
    # Failed fast: a few requests, not retries x items (the runner counts what it sent).
    calls = manifest["totals"]["calls"]
    assert FAIL_FAST_AFTER <= calls <= FAIL_FAST_AFTER + 2 < (RETRIES + 1) * len(GOLD)
    assert manifest["totals"]["request_errors"] == {"connection": calls}


def test_dropped_connections_reached_the_server_so_are_retried_in_full_then_exit_2(srv, experiment):
    """A server that accepts and then drops every connection may be restarting: no fail
    fast, every retry is made; with no answer at all it is still an error, not a report."""
    srv.responder = lambda req, attempt: Reply(drop_connection=True)
    exp = experiment(srv, run={"retries": 1, "concurrency": 2})
    result = invoke("run", str(exp.config), "--quiet")
    check_failed_run(
        exp,
        result,
        "setup 'zs@fake'",
        f"no connection to {srv.base_url}: is the server running and reachable from here?",
        "failed: 12 connection",
    )
    assert srv.count == 2 * len(GOLD)


@pytest.mark.parametrize(
    ("reply", "parts"),
    [
        pytest.param(
            Reply(status=401, content="Incorrect API key provided"),
            ["authentication failed", "set models[0].api_key_env to the variable"],
            id="401",
        ),
        pytest.param(
            Reply(status=404, content="The model `fake-model` does not exist"),
            ["model 'openai/fake-model' not found", "check models[0].model"],
            id="404",
        ),
        pytest.param(
            Reply(
                status=429,
                body=json.dumps(
                    {
                        "error": {
                            "message": "You exceeded your current quota, please check your "
                            "plan and billing details.",
                            "type": "insufficient_quota",
                            "param": None,
                            "code": "insufficient_quota",
                        }
                    }
                ),
            ),
            ["quota or credit is used up", "add credit"],
            id="429-insufficient-quota",
        ),
    ],
)
def test_a_provider_that_refuses_every_call_is_exit_2_after_one_request(
    srv, experiment, reply, parts
):
    srv.responder = lambda req, attempt: reply
    exp = experiment(srv, run={"retries": RETRIES, "concurrency": 2})
    result = invoke("run", str(exp.config), "--quiet")

    check_failed_run(exp, result, "setup 'zs@fake'", f"openai/fake-model at {srv.base_url}", *parts)
    assert srv.count <= 2  # not retried, and no further item once the first one said so


def test_a_quota_error_is_not_a_rate_limit_but_a_plain_429_still_is(srv, experiment):
    """A 429 without quota wording is retried (and then labels); only quota is fatal."""
    srv.responder = per_item({"g05": Reply(status=429, content="Rate limit reached")})
    exp = experiment(srv, run={"retries": 2})
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    assert requests_per_item(srv)["g05"] == 3
    assert (only_run_dir(exp) / "metrics.json").exists()


def test_a_setup_whose_every_call_timed_out_is_an_error_and_the_others_stay_cached(srv, experiment):
    srv.responder = slow_when_sampled
    fast = {"model": "openai/fake-model", "api_base": srv.base_url}
    gold = GOLD[:4]
    exp = experiment(
        srv,
        models=[{"id": "ok", **fast}, {"id": "slow", **fast, "params": {"temperature": 0.5}}],
        run={"retries": 0, "timeout_s": 0.5},
        gold=gold,
    )
    result = invoke("run", str(exp.config), "--quiet")

    check_failed_run(
        exp,
        result,
        "setup 'zs@slow'",
        "model 'slow'",
        "every call timed out after 0.5 s",
        "raise run.timeout_s",
    )
    assert "zs@ok" not in flat(result.output)  # the setup that answered is not blamed
    records = read_labels(only_run_dir(exp))
    assert {r["setup"] for r in records if r.get("label")} == {"zs@ok"}
    # What the healthy setup received stays cached: without the slow model, no request.
    srv.reset()
    exp.data["models"] = exp.data["models"][:1]
    exp.rewrite()
    again = invoke("run", str(exp.config), "--quiet")
    assert again.exit_code == 0, again.output
    assert srv.count == 0


def slow_when_sampled(req: dict, attempt: int) -> Reply:
    """Answers at once, but past the client's timeout when sampled (temperature > 0)."""
    return Reply(content="neutral", delay_s=2.0 if req.get("temperature") else 0.0)


def test_a_model_that_only_answers_badly_still_gets_its_report(srv, experiment):
    srv.responder = lambda req, attempt: Reply(content="I would rather not say")
    exp = experiment(srv, run={"retries": RETRIES})
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    assert srv.count == len(GOLD)  # answered: a parse failure is not retried
    metrics = json.loads((only_run_dir(exp) / "metrics.json").read_text())
    assert metrics["gold_sets"][0]["setups"][0]["failures"] == {"no_label_found": len(GOLD)}


# --------------------------------------------------------------------------- other commands


def _stop(srv) -> None:
    """From here on the server's port refuses connections (what a crashed server does)."""
    srv.stop()


def test_gate_on_a_dead_server_is_exit_2_not_a_regression(srv, experiment, tmp_path):
    exp = experiment(srv, run={"retries": RETRIES})
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    baseline = tmp_path / "baseline.json"
    assert invoke("baseline", "save", str(only_run_dir(exp)), "-o", str(baseline)).exit_code == 0
    exp.template.write_text(exp.template.read_text() + "Answer carefully.\n")  # new calls
    _stop(srv)
    result = invoke("gate", str(exp.config), "--baseline", str(baseline))
    assert result.exit_code == 2, result.output
    assert f"connection refused at {srv.base_url}" in flat(result.output)
    [failed] = failed_runs(exp)
    assert not (failed / "metrics.json").exists()
    calls = json.loads((failed / "manifest.json").read_text())["totals"]["calls"]
    assert calls <= FAIL_FAST_AFTER + 2 < (RETRIES + 1) * len(GOLD)


def test_label_and_canary_on_a_dead_server_are_exit_2(srv, experiment, tmp_path):
    exp = experiment(
        srv,
        run={"retries": RETRIES},
        extra={"report": {"bootstrap": 200, "seed": 0, "target_error": 0.4, "delta": 0.1}},
    )
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    new = tmp_path / "new.jsonl"
    new.write_text('{"id": "n1", "text": "A lamp."}\n{"id": "n2", "text": "A mug."}\n')
    _stop(srv)

    label = invoke("label", str(exp.config), "--input", str(new))
    assert label.exit_code == 2, label.output
    assert f"connection refused at {srv.base_url}" in flat(label.output)
    [label_dir] = [d for d in exp.run_dirs() if "-label-" in d.name]
    assert not (label_dir / "prelabels.jsonl").exists()
    manifest = json.loads((label_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "connection refused" in manifest["error"]

    canary = invoke("canary", str(exp.config), "--items", "12")
    assert canary.exit_code == 2, canary.output  # not "no data" (1): the provider is down
    assert f"connection refused at {srv.base_url}" in flat(canary.output)
    assert f"{exp.config}:{line_of(exp.config, 'api_base')}" in flat(canary.output)


# --------------------------------------------------------------------------- decision logic

MODELS = {
    "a": ModelConfig(id="a", model="openai/a", api_base="http://127.0.0.1:9/v1"),
    "b": ModelConfig(id="b", model="openai/b"),
}


def rec(setup: str, *, label: str | None = None, raw: str | None = None, failure=None):
    return LabelRecord(setup=setup, gold_set="g", item="i", label=label, raw=raw, failure=failure)


def refused(detail: str = "Connection error. (refused)") -> ProviderError:
    return ProviderError("connection", detail, True, unreachable="refused")


def test_fail_fast_needs_identical_unreachable_failures_and_no_answer_yet():
    health = Health(MODELS)
    assert [health.failed("a", refused()) for _ in range(FAIL_FAST_AFTER)] == [False] * (
        FAIL_FAST_AFTER - 1
    ) + [True]
    # Another failure in between breaks the streak; a different detail starts a new one.
    health = Health(MODELS)
    for _ in range(FAIL_FAST_AFTER - 1):
        assert not health.failed("a", refused())
    assert not health.failed("a", ProviderError("http_500", "boom", True))
    assert not health.failed("a", refused("other"))
    assert not any(health.failed("a", refused()) for _ in range(FAIL_FAST_AFTER - 1))
    # A dropped connection reached the server: never a reason to fail fast.
    drop = ProviderError("connection", "Connection error.", True)
    assert not any(health.failed("b", drop) for _ in range(3 * FAIL_FAST_AFTER))
    # A model that answered once is in a transient outage: retried as usual.
    health = Health(MODELS)
    health.answered("a")
    assert not any(health.failed("a", refused()) for _ in range(3 * FAIL_FAST_AFTER))


def test_a_setup_is_unanswered_only_with_no_answer_and_only_provider_failures():
    health = Health(MODELS)
    for r in [
        rec("dead", failure="connection"),
        rec("dead", failure="timeout"),
        rec("dead", failure="http_503"),
        rec("spoke_badly", raw="no idea", failure="no_label_found"),
        rec("spoke_badly", failure="connection"),
        rec("empty", failure="empty_response"),  # the model answered nothing: its doing
        rec("half", label="positive", raw="positive"),
        rec("half", failure="connection"),
        rec("replayed", label="positive"),
        rec("replay_gap", failure="missing_in_replay"),
        rec("quota", failure="quota"),
    ]:
        health.record(r)
    assert health.unanswered() == ["dead", "quota"]
    err = health.error({"dead": "a", "quota": "b"}, timeout_s=5)
    assert [p.key for p in err.problems] == ["models[0].api_base", "models[1]"]
    text = str(err)
    assert "setup 'dead', model 'a' (openai/a at http://127.0.0.1:9/v1)" in text
    assert "no connection to http://127.0.0.1:9/v1" in text  # no error object: cause unknown
    assert "failed: 1 connection, 1 http_503, 1 timeout" in text
    assert "the provider's endpoint for openai/b" in text and "quota" in text


def test_a_resumed_run_counts_the_answers_already_in_its_folder(srv, experiment):
    """Answers received before the interruption are answers: a setup whose remaining calls
    all time out after a resume has a (partial) result, not an error."""
    exp = experiment(srv, run={"retries": 0, "concurrency": 1, "max_calls": 4, "timeout_s": 0.5})
    assert invoke("run", str(exp.config), "--quiet").exit_code == 1  # stopped: max_calls
    srv.responder = lambda req, attempt: Reply(content="neutral", delay_s=2.0)
    exp.rewrite(max_calls=None, concurrency=8)
    result = invoke("run", str(exp.config), "--quiet", "--resume")
    assert result.exit_code == 0, result.output
    metrics = json.loads((only_run_dir(exp) / "metrics.json").read_text())
    assert metrics["gold_sets"][0]["setups"][0]["failures"] == {"timeout": len(GOLD) - 4}
