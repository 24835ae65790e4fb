"""`prelabel label --ray`: shards as Ray tasks on a local Ray instance that these tests start
(one for the module: Ray takes seconds to start), calling the fake OpenAI server over HTTP
from the Ray worker processes; the driver writes the cache and the outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import NEW, Reply, confident_labeler, flat, invoke, label_run, last_user_text, read
from conftest import setup_experiment as evaluated

from harness.run.cache import LabelCache
from harness.run.calls import run_settings
from harness.run.pipeline import prepare
from harness.run.runner import RunSettings

ray = pytest.importorskip("ray")

TIMING = ("started_at", "finished_at", "latency_s")
KEY = "PRELABEL_RAY_TEST_KEY"  # set in the Ray workers' environment only


@pytest.fixture(scope="module")
def ray_address():
    env = {"env_vars": {KEY: "sk-on-ray"}}
    ray.init("local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=env)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def pool(tmp_path: Path, n: int = 12) -> tuple[Path, dict[str, str]]:
    """n new items (the NEW reviews, numbered); returns the file and text -> item id."""
    rows = [{"id": f"p{k:02d}", "text": f"{NEW[k % 4]['text']} #{k}"} for k in range(n)]
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path, {r["text"]: r["id"] for r in rows}


def asked(srv, ids: dict[str, str]) -> list[str]:
    """The pool items the server was asked about, one entry per request."""
    return [ids[t] for t in (last_user_text(r).strip() for r in srv.requests) if t in ids]


def bearer(headers: dict[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == "authorization"), None)


def no_timing(records: list[dict]) -> list[dict]:
    rows = [{k: v for k, v in r.items() if k not in TIMING} for r in records]
    return sorted(rows, key=lambda r: (r["item"], r.get("sample", 0)))


def test_label_on_ray_writes_what_a_local_label_run_writes(
    ray_address, srv, experiment, tmp_path, cache_dir, monkeypatch
):
    exp, _ = evaluated(srv, experiment, tmp_path)
    items, ids = pool(tmp_path)
    # A key the workers do not have: their error, told by the driver, at its config key.
    exp.data["models"][0]["api_key_env"] = "PRELABEL_RAY_NO_KEY"
    exp.rewrite()
    result = invoke("label", str(exp.config), "--input", str(items), "--ray", "local")
    assert result.exit_code == 2
    said = flat(result.output)
    assert (
        "experiment.yaml, key 'models.fake.api_key_env'" in said and "$PRELABEL_RAY_NO_KEY" in said
    )
    # The key is in the workers' environment, not here: only calls made on Ray can succeed.
    exp.data["models"][0]["api_key_env"] = KEY
    exp.rewrite()
    srv.reset()
    result = invoke("label", str(exp.config), "--input", str(items), "--ray", "local")
    assert result.exit_code == 0, result.output
    assert sorted(asked(srv, ids)) == sorted(ids.values())  # each item asked once
    assert {bearer(h) for h in srv.request_headers} == {"Bearer sk-on-ray"}
    on_ray = label_run(exp)
    records = read(on_ray / "labels.jsonl")
    assert len(records) == len(ids) and not any(r["cached"] for r in records)
    cache = LabelCache(cache_dir)  # every reply is in the driver's cache
    try:
        assert all(cache.get(r["cache_key"]).content == r["raw"] for r in records)
    finally:
        cache.close()
    # The same command on this machine, with a cache of its own, writes the same files.
    local_cache = tmp_path / "local-cache"
    monkeypatch.setenv(KEY, "sk-here")
    before = set(exp.run_dirs())
    result = invoke(
        "label", str(exp.config), "--input", str(items), "--cache-dir", str(local_cache)
    )
    assert result.exit_code == 0, result.output
    [local] = set(exp.run_dirs()) - before  # ids of one second sort by a random suffix
    assert local != on_ray
    for name in ("prelabels.jsonl", "review_queue.jsonl"):
        assert read(on_ray / name) == read(local / name), name
    assert json.loads((on_ray / "estimates.json").read_text()) == json.loads(
        (local / "estimates.json").read_text()
    )
    assert no_timing(read(on_ray / "labels.jsonl")) == no_timing(read(local / "labels.jsonl"))
    # Again on Ray: everything is cached, so nothing goes to Ray or to the server.
    srv.reset()
    before = set(exp.run_dirs())
    assert invoke("label", str(exp.config), "--input", str(items), "--ray", "local").exit_code == 0
    assert srv.requests == []
    [again] = set(exp.run_dirs()) - before
    assert all(r["cached"] for r in read(again / "labels.jsonl"))


def test_shards_run_on_ray_workers_and_share_one_rpm_limit(
    ray_address, srv, experiment, tmp_path, cache_dir
):
    from harness.deploy.ray_shards import RayCalls

    rpm = 240  # 4 a second, at most 4 at once: 12 calls take 2 s whatever the shards
    exp = experiment(srv, model={"rpm": rpm})
    plan = prepare(exp.config)
    cache = LabelCache(cache_dir)
    settings = RunSettings(**run_settings(plan.resolved.experiment.run))
    calls = RayCalls(plan, plan.specs, settings, cache=cache, labels_file=tmp_path / "l.jsonl")
    try:
        totals = calls.run()
    finally:
        cache.close()
    assert totals.labels == len(plan.specs) == 12 and totals.calls == len(srv.requests) == 12
    # Two shards, each in a Ray worker process, not in this one.
    pids = {s["pid"] for s in calls.shards}
    assert len(calls.shards) == 2 and len(pids) == 2 and os.getpid() not in pids
    assert all(s["totals"].calls > 0 for s in calls.shards)
    # Every request of both shards was admitted by the one limiter, whose grants (on its own
    # clock) never exceed the bucket: at most 4 at once plus 4 a second.
    limits = calls.limits
    assert limits["calls"] == len(srv.requests)
    grants = sorted(limits["models"]["fake"]["rpm_grants"])
    assert len(grants) == len(srv.requests)
    rate = rpm / 60
    for i in range(len(grants)):
        for j in range(i, len(grants)):
            assert j - i + 1 <= rate + rate * (grants[j] - grants[i]) + 1e-6, (i, j)
    assert [r["label"] for r in read(tmp_path / "l.jsonl")]  # written by the driver


def test_max_calls_stops_every_shard_and_the_rerun_asks_only_the_rest(
    ray_address, srv, experiment, tmp_path
):
    exp, _ = evaluated(srv, experiment, tmp_path)
    items, ids = pool(tmp_path)
    exp.rewrite(max_calls=5)  # the cap is the run's: 5 requests in all, not 5 per shard
    srv.reset()
    result = invoke("label", str(exp.config), "--input", str(items), "--ray", "local")
    assert result.exit_code == 0, result.output
    first = asked(srv, ids)
    assert len(first) == 5
    stopped = label_run(exp)
    assert json.loads((stopped / "manifest.json").read_text())["status"] == "stopped: max_calls"
    assert sorted(r["item"] for r in read(stopped / "labels.jsonl")) == sorted(first)
    exp.rewrite(max_calls=None)
    srv.reset()
    assert invoke("label", str(exp.config), "--input", str(items), "--ray", "local").exit_code == 0
    rest = asked(srv, ids)
    assert sorted(rest) == sorted(set(ids.values()) - set(first))
    rows = read(label_run(exp) / "prelabels.jsonl")
    assert len(rows) == 12 and all(r["label"] is not None for r in rows)


def test_a_killed_driver_resumes_from_the_cache(ray_address, srv, experiment, tmp_path):
    exp, _ = evaluated(srv, experiment, tmp_path)
    exp.rewrite(timeout_s=120)  # held requests wait for the kill, not for a timeout
    items, ids = pool(tmp_path)
    fast = {f"p{k:02d}" for k in range(6)}
    release = threading.Event()

    def responder(request, attempt):
        answer = confident_labeler(request, attempt)
        item = ids.get(last_user_text(request).strip())
        return Reply(answer, hold=None if item in fast else release)

    srv.responder = responder
    before = set(exp.run_dirs())
    command = ["label", str(exp.config), "--input", str(items), "--ray", ray_address]
    with (tmp_path / "driver.log").open("wb") as log:
        driver = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", *command], stdout=log, stderr=log
        )
    try:
        labels = wait_for_labels(exp, before, driver, len(fast), tmp_path / "driver.log")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        release.set()
    srv.wait_idle()
    answered = {r["item"] for r in read(labels)}
    assert answered == fast  # held items were never answered, so never cached
    srv.reset()
    result = invoke("label", str(exp.config), "--input", str(items), "--ray", "local")
    assert result.exit_code == 0, result.output
    assert sorted(asked(srv, ids)) == sorted(set(ids.values()) - fast)
    records = read(label_run(exp) / "labels.jsonl")
    assert {r["item"] for r in records if r["cached"]} == fast


def wait_for_labels(exp, before: set, driver: subprocess.Popen, n: int, log: Path) -> Path:
    """labels.jsonl of the new label run once it has n lines (a hang guard, not a timing)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert driver.poll() is None, log.read_text()
        new = [d for d in exp.run_dirs() if d not in before and (d / "labels.jsonl").is_file()]
        if new and len((new[0] / "labels.jsonl").read_text().splitlines()) >= n:
            return new[0] / "labels.jsonl"
        time.sleep(0.05)
    raise AssertionError("the driver wrote no labels")


def test_without_ray_installed_the_command_says_how_to_get_it(
    srv, experiment, tmp_path, monkeypatch
):
    exp = experiment(srv)
    items, _ = pool(tmp_path, 2)
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    result = invoke("label", str(exp.config), "--input", str(items), "--ray", "local")
    assert result.exit_code == 2
    assert "pip install 'prelabel[ray]'" in result.output
    assert exp.run_dirs() == []  # refused before a run folder was made
