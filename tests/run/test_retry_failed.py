"""Cached answers that fail to parse: `run --retry-failed` asks exactly those again (keeping
both answers on record), and `cache clear --failed --config CONFIG` removes exactly those.

Over real HTTP to FakeOpenAIServer; its per-item request counts are the ground truth.
"""

from __future__ import annotations

import functools
import json
import re

import pytest
from conftest import GOLD, flat, invoke, per_item, read_labels, requests_per_item, rule_label
from fake_openai import sequence

import harness.run.pipeline
from harness.core.records import ProviderReply
from harness.run.cache import LabelCache
from harness.run.runner import RunSettings

pytestmark = pytest.mark.http

TEXT = {item_id: text for item_id, text, _ in GOLD}
BAD = "I cannot decide"


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    fast = functools.partial(RunSettings, backoff_initial_s=0.001, backoff_max_s=0.01)
    monkeypatch.setattr(harness.run.pipeline, "RunSettings", fast)


def by_item(run_dir, setup: str | None = None) -> dict[str, dict]:
    return {r["item"]: r for r in read_labels(run_dir) if setup in (None, r["setup"])}


def newest(exp, before: set):
    [run_dir] = [d for d in exp.run_dirs() if d not in before]
    return run_dir


def run(exp, *args: str):
    before = set(exp.run_dirs())
    result = invoke("run", str(exp.config), "--quiet", *args)
    assert result.exit_code == 0, result.output
    return result, newest(exp, before)


def test_retry_failed_reasks_exactly_the_unparseable_answers_and_keeps_both(srv, experiment):
    good = {i: sequence(BAD, rule_label(TEXT[i])) for i in ("g05", "g07")}  # bad, then good
    srv.responder = per_item({**good, "g09": BAD})  # g09: the same bad answer every time
    exp = experiment(srv)
    _, first = run(exp)
    assert {i for i, r in by_item(first).items() if r.get("failure")} == {"g05", "g07", "g09"}
    assert by_item(first)["g05"]["attempts"] == 1  # an answer: not retried in the run
    # (srv.reset() would restart the server's per-prompt attempts: count differences instead)
    asked = requests_per_item(srv)
    run(exp)
    assert requests_per_item(srv) == asked  # without the flag a failed answer is reused

    result, retried = run(exp, "--retry-failed")
    assert dict(requests_per_item(srv) - asked) == {"g05": 1, "g07": 1, "g09": 1}
    records = by_item(retried)
    for i in ("g05", "g07"):
        r = records[i]
        assert r["label"] == rule_label(TEXT[i]) and r.get("failure") is None
        assert (r["retried_from"], r["previous_raw"], r["cached"]) == ("no_label_found", BAD, False)
    g09 = records["g09"]  # asked again, answered the same: recorded, still a failure
    assert (g09["failure"], g09["raw"], g09["previous_raw"]) == ("no_label_found", BAD, BAD)
    rest = [r for k, r in records.items() if k not in ("g05", "g07", "g09")]
    assert len(rest) == len(GOLD) - 3 and all(r["cached"] and "retried_from" not in r for r in rest)
    assert "asked 3 failed answers again, 2 now parse" in flat(result.output)
    manifest = json.loads((retried / "manifest.json").read_text())
    assert (manifest["totals"]["retried_failed"], manifest["totals"]["retried_recovered"]) == (3, 2)
    metrics = json.loads((retried / "metrics.json").read_text())
    assert metrics["gold_sets"][0]["setups"][0]["failures"] == {"no_label_found": 1}

    # The new answers are the cached ones now: a plain run asks nothing and uses them.
    asked = requests_per_item(srv)
    _, after = run(exp)
    assert requests_per_item(srv) == asked
    assert by_item(after)["g05"]["label"] == rule_label(TEXT["g05"])


def test_a_failed_answer_shared_by_two_setups_is_asked_once(srv, experiment):
    srv.responder = per_item({"g05": sequence(BAD, "negative")})
    base = {"model": "openai/fake-model", "api_base": srv.base_url}
    exp = experiment(srv, models=[{"id": "fake", **base}, {"id": "twin", **base}])
    run(exp)
    asked = requests_per_item(srv)
    _, retried = run(exp, "--retry-failed")
    assert dict(requests_per_item(srv) - asked) == {"g05": 1}
    for setup in ("zs@fake", "zs@twin"):
        r = by_item(retried, setup)["g05"]
        assert r["label"] == "negative" and r["previous_raw"] == BAD, r


def test_retry_failed_checks_the_api_key_before_a_run_folder_exists(srv, experiment, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-test-123456")
    srv.responder = per_item({"g05": BAD})
    exp = experiment(srv, model={"api_key_env": "FAKE_KEY"})
    run(exp)
    monkeypatch.delenv("FAKE_KEY")
    run(exp)  # every answer is cached: no key needed
    before = set(exp.run_dirs())
    result = invoke("run", str(exp.config), "--quiet", "--retry-failed")
    assert result.exit_code == 2, result.output
    assert "$FAKE_KEY" in flat(result.output) and "api_key_env" in flat(result.output)
    assert set(exp.run_dirs()) == before  # bad input: nothing written under runs/


def test_cache_clear_failed_removes_exactly_the_answers_the_config_cannot_parse(
    srv, experiment, cache_dir
):
    srv.responder = per_item({"g05": BAD, "g09": '{"label": "off-scale"}'})
    exp = experiment(srv)
    run(exp)
    other = "f" * 64  # another experiment's entry, unparseable by anybody's labels
    cache = LabelCache(cache_dir)
    cache.set(other, ProviderReply(content="gibberish"))
    assert len(cache) == len(GOLD) + 1
    cache.close()

    result = invoke("cache", "clear", "--failed", "--config", str(exp.config), "--yes")
    assert result.exit_code == 0, result.output
    assert "removed 2 cached answers that fail to parse" in flat(result.output)
    assert "no_label_found 1, not_in_labels 1" in flat(result.output)
    cache = LabelCache(cache_dir)
    assert len(cache) == len(GOLD) - 1 and cache.get(other) is not None
    cache.close()

    srv.reset()
    srv.responder = per_item({})  # the keyword rules for every item
    _, again = run(exp)
    assert dict(requests_per_item(srv)) == {"g05": 1, "g09": 1}  # only those two were gone
    assert all(r.get("label") for r in by_item(again).values())

    # Nothing fails any more: nothing is removed.
    result = invoke("cache", "clear", "--failed", "--config", str(exp.config), "--yes")
    assert "removed 0 cached answers" in flat(result.output)
    cache = LabelCache(cache_dir)
    assert len(cache) == len(GOLD) + 1
    cache.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--failed"], "--failed needs --config CONFIG"),
        (["--config", "x.yaml"], "--config only goes with --failed"),
    ],
)
def test_cache_clear_failed_without_a_config_is_exit_2(args, message, cache_dir):
    cache = LabelCache(cache_dir)
    cache.set("a" * 64, ProviderReply(content="positive"))
    cache.close()
    result = invoke("cache", "clear", *args, "--yes")
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)
    cache = LabelCache(cache_dir)
    assert len(cache) == 1  # nothing removed
    cache.close()


def test_the_help_says_what_failed_means():
    def words(*args: str) -> str:  # the help without its box drawing and line breaks
        return re.sub(r"[│\s]+", " ", invoke(*args, "--help").output)

    assert "that fail to parse with its labels (needs --config)" in words("cache", "clear")
    assert "fails to parse with this config's labels" in words("run")
