"""Runs under injected faults: every item ends labelled or with an explicit failure record,
retries are bounded, and the run's summary counts each kind of failure.

The fake server decides each request's fault from (seed, messages, attempt) alone, so every
outcome is predicted before the run (`predict`) and checked exactly: which items fail and
why, how many requests each item took, and the counts in manifest.json and the CLI output.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass

import pytest
from conftest import GOLD, RULES, read_labels, rule_label
from fake_openai import FAULT_KINDS, Faults
from typer.testing import CliRunner

import harness.run.pipeline
from harness.cli.app import app
from harness.config import load_experiment
from harness.run.pipeline import run_experiment
from harness.run.plan import make_plan
from harness.run.runner import RunSettings

pytestmark = pytest.mark.http

FAST = {"backoff_initial_s": 0.001, "backoff_max_s": 0.01}
# The failure kind each fault becomes in labels.jsonl and the summaries.
FAILURE = {
    "429": "rate_limited",
    "500": "http_500",
    "503": "http_503",
    "slow": "timeout",
    "drop": "connection",
    "malformed": "bad_response",
    "empty": "empty_response",
    "off_scale": "not_in_labels",
}
# An empty answer is retried like a transport fault; an off-scale answer is an answer.
RETRIED = {"429", "500", "503", "slow", "drop", "malformed", "empty"}
TIMEOUT_S = 2.0  # a "slow" reply comes after 2 x this


@dataclass
class Outcome:
    label: str | None
    failure: str | None
    attempts: int
    faults: list[str]  # fault of each request, in order (requests that failed)


def predict(faults: Faults, messages: list[dict], retries: int, label: str) -> Outcome:
    seen: list[str] = []
    for attempt in range(retries + 1):
        kind = faults.pick(messages, attempt)
        if kind is None:
            return Outcome(label, None, attempt + 1, seen)
        seen.append(kind)
        if kind not in RETRIED:  # answered, but no label: not retried
            return Outcome(None, FAILURE[kind], attempt + 1, seen)
    return Outcome(None, FAILURE[seen[-1]], retries + 1, seen)


def item_messages(exp) -> dict[str, list[dict]]:
    plan = make_plan(load_experiment(exp.config))
    return {s.item_id: [dict(m) for m in s.messages] for s in plan.specs}


def choose_seed(rates, messages, texts, retries, good) -> tuple[Faults, dict[str, Outcome]]:
    """The first seed whose predicted run exercises what the test is about (`good`)."""
    for seed in range(200):
        faults = Faults(rates, seed=seed, slow_s=2 * TIMEOUT_S)
        outcomes = {
            i: predict(faults, m, retries, rule_label(texts[i])) for i, m in messages.items()
        }
        if good(outcomes):
            return faults, outcomes
    raise AssertionError("no seed exercises the case")


def check_run(srv, run_dir, outcomes: dict[str, Outcome], retries: int) -> dict:
    """Everything a run under faults must satisfy; returns the manifest."""
    records = read_labels(run_dir)
    by_item = {r["item"]: r for r in records}
    assert len(by_item) == len(records) == len(outcomes), "one record per item, no more"
    for item, want in outcomes.items():
        rec = by_item[item]
        assert (rec.get("label"), rec.get("failure"), rec["attempts"]) == (
            want.label,
            want.failure,
            want.attempts,
        ), (item, rec, want)
        assert (rec.get("label") is None) != (rec.get("failure") is None), rec
        if rec.get("failure"):
            assert rec.get("failure_detail"), "a failure says what happened"

    # Bounded retries: the server saw exactly the predicted requests, never more than
    # retries + 1 per item.
    per_key = Counter(s.key for s in srv.log)
    assert max(per_key.values()) <= retries + 1
    assert sum(per_key.values()) == sum(o.attempts for o in outcomes.values()) == srv.count
    injected = Counter(k for o in outcomes.values() for k in o.faults)
    assert srv.injected == injected

    # The summary counts each kind: failed requests (retried or not) and failed records.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    totals = manifest["totals"]
    assert totals["request_errors"] == {
        FAILURE[k]: n for k, n in sorted(injected.items()) if k != "off_scale"
    }
    assert totals["failures"] == dict(Counter(o.failure for o in outcomes.values() if o.failure))
    assert totals["calls"] == srv.count
    assert manifest["status"] == "complete"
    return manifest


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_ends_in_a_label_or_an_explicit_failure(srv, experiment, kind):
    retries = 1
    exp = experiment(srv, run={"retries": retries, "timeout_s": TIMEOUT_S})
    texts = {item_id: text for item_id, text, _ in GOLD}

    def exercised(outcomes: dict[str, Outcome]) -> bool:
        failed = [o for o in outcomes.values() if o.failure]
        clean = [o for o in outcomes.values() if not o.faults]
        recovered = [o for o in outcomes.values() if o.faults and o.label]
        # At least one item fails for good, one is clean, and (retried kinds) one recovers.
        return bool(failed and clean and (recovered or kind not in RETRIED))

    messages = item_messages(exp)
    srv.faults, outcomes = choose_seed({kind: 0.4}, messages, texts, retries, exercised)
    result = run_experiment(exp.config, settings_override=FAST)

    assert {srv._key(m) for m in messages.values()} == {s.key for s in srv.log}
    manifest = check_run(srv, result.run_dir, outcomes, retries)
    assert set(manifest["totals"]["failures"]) == {FAILURE[kind]}
    # The metrics name the failures too, per setup.
    block = result.metrics["gold_sets"][0]["setups"][0]
    assert block["failures"] == manifest["totals"]["failures"]


ITEMS = [
    (
        f"m{i:02d}",
        f"Item {i:02d}: " + ("great" if i % 3 == 0 else "awful" if i % 3 == 1 else "ok"),
        ["positive", "negative", "neutral"],
    )
    for i in range(40)
]


def test_a_mix_of_every_fault_at_30_percent_is_counted_kind_by_kind(srv, experiment, monkeypatch):
    retries = 2
    exp = experiment(srv, gold=ITEMS, run={"retries": retries, "timeout_s": TIMEOUT_S})
    texts = {item_id: text for item_id, text, _ in ITEMS}
    rates = {k: 0.3 / len(FAULT_KINDS) for k in FAULT_KINDS}

    def exercised(outcomes: dict[str, Outcome]) -> bool:
        kinds = Counter(k for o in outcomes.values() for k in o.faults)
        return set(kinds) == set(FAULT_KINDS)  # every kind at least once

    srv.faults, outcomes = choose_seed(rates, item_messages(exp), texts, retries, exercised)
    # Through the CLI, with the runner's backoff shortened (Retry-After is "0" here).
    monkeypatch.setattr(harness.run.pipeline, "RunSettings", functools.partial(RunSettings, **FAST))
    result = CliRunner().invoke(app, ["run", str(exp.config), "--quiet"])
    assert result.exit_code == 0, result.output
    [run_dir] = exp.run_dirs()
    manifest = check_run(srv, run_dir, outcomes, retries)

    share = srv.count and sum(srv.injected.values()) / srv.count
    assert 0.15 < share < 0.45, share  # about 30% of the requests were faulty
    totals = manifest["totals"]
    for kind, n in totals["request_errors"].items():
        assert f"{kind} {n}" in result.output, (kind, result.output)
    for kind, n in totals["failures"].items():
        assert f"{kind} {n}" in result.output, (kind, result.output)
    assert "failed requests:" in result.output and "failures:" in result.output
    assert all(
        r["label"] == rule_label(texts[r["item"]]) for r in read_labels(run_dir) if r.get("label")
    )
    assert RULES  # the fake model labels by keyword (conftest.RULES)


def test_a_rerun_retries_only_what_failed_in_transport(srv, experiment):
    """Failures that were not answers (5xx, timeouts, empty) are asked again next run;
    an answer outside the labels (off-scale) was paid for and stays cached."""
    retries = 0
    exp = experiment(srv, run={"retries": retries, "timeout_s": TIMEOUT_S})
    texts = {item_id: text for item_id, text, _ in GOLD}
    rates = {"500": 0.2, "empty": 0.2, "off_scale": 0.2}

    def exercised(outcomes):
        return {o.failure for o in outcomes.values()} >= {"http_500", "empty_response", None}

    messages = item_messages(exp)
    srv.faults, outcomes = choose_seed(rates, messages, texts, retries, exercised)
    first = run_experiment(exp.config, settings_override=FAST)
    check_run(srv, first.run_dir, outcomes, retries)

    srv.faults = None
    srv.reset()
    second = run_experiment(exp.config, settings_override=FAST)
    asked = {s.key for s in srv.log}
    again = {i for i, o in outcomes.items() if o.failure in ("http_500", "empty_response")}
    assert asked == {srv._key(messages[i]) for i in again}
    records = {r["item"]: r for r in read_labels(second.run_dir)}
    assert all(records[i]["label"] == rule_label(texts[i]) for i in again)
    off = [i for i, o in outcomes.items() if o.failure == "not_in_labels"]
    assert all(records[i]["failure"] == "not_in_labels" and records[i]["cached"] for i in off)


def test_fault_switch_is_validated_and_deterministic():
    with pytest.raises(ValueError, match="unknown fault kinds"):
        Faults({"teapot": 0.1})
    with pytest.raises(ValueError, match="add up to at most 1"):
        Faults({"500": 0.6, "503": 0.6})
    f = Faults({"500": 0.5}, seed=3)
    msgs = [{"role": "user", "content": "x"}]
    picks = [f.pick(msgs, a) for a in range(200)]
    assert picks == [Faults({"500": 0.5}, seed=3).pick(msgs, a) for a in range(200)]
    assert 60 < picks.count("500") < 140
    assert all(Faults({"drop": 1.0}).pick(msgs, a) == "drop" for a in range(20))
    assert all(Faults({}).pick(msgs, a) is None for a in range(20))
