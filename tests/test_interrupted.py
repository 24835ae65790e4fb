"""Interrupted runs: a run whose process is gone is seen as interrupted (`report`, `compare`,
`baseline save` and `label --run` say what is missing, and how to finish it), and
`prelabel run CONFIG --resume [RUN]` finishes the same folder from the cache.

The kill -9 test kills a real `python -m harness.cli run` against the fake server, as a user
would meet it (tests/run/test_resume.py shows the pattern); the server holds every request after
the first few, so the run is certainly alive when it is checked and killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import (
    LABELS,
    NEW,
    RULES,
    SCHEMA,
    confident_labeler,
    flat,
    invoke,
    keyword_labeler,
    per_item,
)
from fake_openai import Reply
from run.test_resume import ITEMS, cli, item_counts
from tasks.test_task_types import write_pairwise

from harness.config import load_experiment
from harness.core.errors import UserError
from harness.core.records import LabelRecord, RunManifest
from harness.run.cache import LabelCache
from harness.run.manifest import process_alive, process_identity
from harness.run.pipeline import prepare, run_experiment
from harness.run.plan import make_plan
from harness.run.resume import open_resume
from harness.run.store import expected_labels, record_key

pytestmark = pytest.mark.http

FREE = 10  # requests the server answers before it holds the rest


class Hold:
    """Responder: answers the first `free` requests; holds later ones until `release()`."""

    def __init__(self, free: int):
        self.labeler = keyword_labeler(RULES, "neutral")
        self.free = free
        self.seen = 0  # only touched on the server's event loop
        self.released = threading.Event()

    async def __call__(self, req: dict, attempt: int):
        self.seen += 1
        if self.seen > self.free:
            while not self.released.is_set():
                await asyncio.sleep(0.01)
        return self.labeler(req, attempt)

    def release(self) -> None:
        self.released.set()


def records_of(run_dir: Path) -> list[LabelRecord]:
    text = (run_dir / "labels.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [LabelRecord.model_validate_json(line) for line in text.splitlines()]


def cached(cache_dir: Path, keys: dict[str, str]) -> set[str]:
    cache = LabelCache(cache_dir)
    try:
        return {item for item, key in keys.items() if cache.get(key) is not None}
    finally:
        cache.close()


def manifest_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))


def test_kill_9_report_says_interrupted_and_resume_finishes_the_same_folder(
    srv, experiment, cache_dir, tmp_path
):
    hold = Hold(FREE)
    srv.responder = hold
    exp = experiment(srv, gold=ITEMS, run={"concurrency": 2})
    keys = {s.item_id: s.cache_key for s in make_plan(load_experiment(exp.config)).specs}
    log = (tmp_path / "run1.log").open("w")
    proc = subprocess.Popen(
        cli("run", str(exp.config), "--quiet"), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        while srv.count <= FREE and proc.poll() is None:  # until a request is held
            time.sleep(0.02)
        assert proc.poll() is None, (tmp_path / "run1.log").read_text()
        [run_dir] = exp.run_dirs()
        manifest = manifest_of(run_dir)
        assert manifest["status"] == "running"
        assert manifest["process"]["pid"] == proc.pid
        assert manifest["process"]["host"] == socket.gethostname()

        # Alive: a report says it has not finished; resuming it is refused.
        live = invoke("report", str(run_dir))
        assert live.exit_code == 0
        assert f"is still running (pid {proc.pid} on host" in flat(live.stderr)
        assert "Wait for it to finish" in flat(live.stderr) and "--resume" not in live.stderr
        refused = invoke("run", str(exp.config), "--resume", str(run_dir))
        assert refused.exit_code == 2
        assert "is still running" in flat(refused.output)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        hold.release()
    assert proc.returncode == -signal.SIGKILL
    srv.wait_idle()  # what the dead process had asked is answered (to nobody)

    # On disk the killed run still says "running"; every reader sees that it is not.
    assert manifest_of(run_dir)["status"] == "running"
    stored = cached(cache_dir, keys)
    written = records_of(run_dir)
    assert {r.item for r in written} <= stored and len(written) < len(ITEMS)
    report = invoke("report", str(run_dir))
    assert report.exit_code == 0
    warning = flat(report.stderr)
    config = str(exp.config.resolve())
    assert "warning" in warning and "was interrupted" in warning
    assert f"pid {proc.pid} on host {socket.gethostname()}) is gone" in warning
    missing = len(ITEMS) - len(written)
    assert f"{missing} of {len(ITEMS)} expected labels" in warning
    assert "scored, each missing label counts as a failure" in warning
    assert shlex.join(["prelabel", "run", config, "--resume", str(run_dir)]) in warning
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run_status"]["status"] == "interrupted"
    assert metrics["run_status"]["missing_labels"] == missing
    assert metrics["run_status"]["missing_by_setup"] == {"zs@fake": missing}
    assert "Run not finished." in (run_dir / "report.md").read_text().split("\n## ")[0]
    assert "Run not finished." in (run_dir / "report.html").read_text()

    # A kill can tear the last line; a record written twice is kept once.
    kept = (run_dir / "labels.jsonl").read_text(encoding="utf-8")
    first = kept.splitlines()[0]
    with (run_dir / "labels.jsonl").open("a", encoding="utf-8") as f:
        f.write(first + "\n" + first[:40])

    srv.reset()
    srv.responder = keyword_labeler(RULES, "neutral")
    done = subprocess.run(
        cli("run", str(exp.config), "--resume", str(run_dir), "--quiet"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resumed {run_dir}: it had {len(written)} labels" in flat(done.stderr)
    assert exp.run_dirs() == [run_dir]  # the same folder, no new run
    # Paid only for what the cache lacked, each once.
    asked = item_counts(srv.requests)
    assert set(asked) == set(keys) - stored and set(asked.values()) == {1}
    text = (run_dir / "labels.jsonl").read_text(encoding="utf-8")
    assert text.startswith(kept)  # the lines it had, untouched, then the rest
    records = records_of(run_dir)
    assert sorted(record_key(r) for r in records) == sorted(
        ("zs@fake", "g", item, 0, False) for item in keys
    )
    manifest = manifest_of(run_dir)
    assert manifest["status"] == "complete" and len(manifest["resumed_at"]) == 1
    assert manifest["process"]["pid"] != proc.pid
    assert manifest["totals"]["labels"] == len(ITEMS)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "run_status" not in metrics
    assert metrics["gold_sets"][0]["setups"][0]["coverage"]["value"] == 1.0
    after = invoke("report", str(run_dir))
    assert after.exit_code == 0 and "warning" not in after.stderr


def stopped_run(srv, experiment, before=None, run=None, **kw) -> tuple:
    """A run stopped by run.max_calls after 5 of its 12 labels: resumable, on disk.
    `before(exp)`: to change the experiment's files before it runs; `run`: more run settings."""
    exp = experiment(srv, run={"max_calls": 5, **(run or {})}, **kw)
    if before:
        before(exp)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 1
    [run_dir] = exp.run_dirs()
    assert manifest_of(run_dir)["status"] == "stopped: max_calls"
    assert len(records_of(run_dir)) == 5
    return exp, run_dir


def with_guidelines(exp) -> None:
    """The template shows guidelines from a file: a file the config only names."""
    (exp.root / "guide.md").write_text("Sarcasm counts as negative.\n")
    exp.template.write_text(exp.template.read_text() + "{{ guidelines }}\n")


def test_resume_refuses_changed_inputs_and_a_complete_run(srv, experiment):
    task = {"type": "classification", "labels": LABELS, "guidelines_file": "guide.md"}
    exp, run_dir = stopped_run(srv, experiment, with_guidelines, extra={"task": task})
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    config, template, gold = (p.read_text() for p in (exp.config, exp.template, exp.gold))

    def refused(fragment: str, where: Path) -> None:
        result = invoke("run", str(exp.config), "--resume", str(run_dir))
        assert result.exit_code == 2, result.output
        out = flat(result.output)
        assert fragment in out and str(where) in out and "hint: a resumed run keeps" in out
        assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before  # untouched

    changed = {**exp.data, "models": [{**exp.data["models"][0], "params": {"max_tokens": 5}}]}
    exp.config.write_text(yaml.safe_dump(changed, sort_keys=False))
    refused("the config changed since run", exp.config)
    assert "models[0].params" in flat(invoke("run", str(exp.config), "--resume").output)
    exp.config.write_text(config)
    exp.template.write_text(template + "\nBe brief.\n")
    refused("prompt 'zs' changed since run", exp.template)
    exp.template.write_text(template)
    exp.gold.write_text(gold.replace("A great blender", "A fine blender"))
    refused("gold set 'g' changed since run", exp.gold)
    exp.gold.write_text(gold)
    guide = (exp.root / "guide.md").read_text()
    (exp.root / "guide.md").write_text("Sarcasm counts as positive.\n")
    refused("the calls this config makes changed since run", exp.config)
    (exp.root / "guide.md").write_text(guide)

    # A second `--resume` that took the folder over after this one checked it: refused.
    plan = prepare(exp.config)
    resume = open_resume(plan, exp.runs_dir, run_dir)
    manifest = RunManifest.model_validate(manifest_of(run_dir))
    taken = manifest.model_copy(update={"status": "running", "process": process_identity()})
    (run_dir / "manifest.json").write_text(taken.model_dump_json())
    with pytest.raises(UserError, match="another process took over this run"):
        run_experiment(exp.config, plan=plan, resume=resume)
    (run_dir / "manifest.json").write_bytes(before["manifest.json"])
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before

    # How calls are made may change (here the cap that stopped it); without RUN, the newest
    # stopped run of the experiment is the one resumed.
    srv.reset()
    exp.rewrite(max_calls=None, concurrency=2)
    result = invoke("run", str(exp.config), "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert exp.run_dirs() == [run_dir]
    assert srv.count == 12 - 5  # the 5 it had came from its own labels.jsonl, not a call
    manifest = manifest_of(run_dir)
    assert manifest["status"] == "complete"
    assert manifest["config"]["run"]["max_calls"] is None
    assert len(records_of(run_dir)) == 12

    complete = invoke("run", str(exp.config), "--resume", str(run_dir))
    assert complete.exit_code == 2
    assert f"run {run_dir.name} is complete: nothing to resume" in flat(complete.output)
    none_left = invoke("run", str(exp.config), "--resume")
    assert none_left.exit_code == 2
    assert "no interrupted or stopped run of experiment 'exp'" in flat(none_left.output)
    stray = invoke("run", str(exp.config), str(run_dir))
    assert stray.exit_code == 2 and "without --resume" in flat(stray.output)


def test_compare_baseline_and_label_warn_about_a_run_that_stopped_short(srv, experiment, tmp_path):
    srv.responder = confident_labeler
    exp, stopped = stopped_run(
        srv,
        experiment,
        model={"confidence": "verbalized", "structured_output": "off"},
        extra={"report": {"bootstrap": 200, "seed": 0, "target_error": 0.4, "delta": 0.1}},
    )
    exp.rewrite(max_calls=None)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    [full] = [d for d in exp.run_dirs() if d != stopped]
    command = shlex.join(["prelabel", "run", str(exp.config.resolve()), "--resume", str(stopped)])

    def warns(result) -> None:
        assert result.exit_code == 0, result.output
        text = flat(result.stderr)
        assert f"run {stopped.name} stopped short (stopped: max_calls)" in text
        assert "7 of 12 expected labels" in text and command in text

    warns(invoke("compare", str(full), str(stopped)))
    warns(invoke("baseline", "save", str(stopped), "-o", str(tmp_path / "b.json")))
    clean = invoke("baseline", "save", str(full), "-o", str(tmp_path / "full.json"))
    assert clean.exit_code == 0 and clean.stderr == ""
    assert json.loads((tmp_path / "full.json").read_text())["setups"]

    new = tmp_path / "new.jsonl"
    new.write_text("\n".join(json.dumps(r) for r in NEW) + "\n", encoding="utf-8")
    label = ("label", str(exp.config), "-i", str(new), "--run", str(stopped), "--setup", "zs@fake")
    unscored = invoke(*label)  # no metrics.json: nothing to deploy from
    assert unscored.exit_code == 2
    assert "evaluation run" in flat(unscored.output) and command in flat(unscored.output)
    assert invoke("report", str(stopped)).exit_code == 0
    metrics = json.loads((stopped / "metrics.json").read_text())
    assert metrics["run_status"]["resume_command"] == command
    jsonschema.validate(metrics, json.loads(SCHEMA.read_text()))  # run_status is documented
    warns(invoke(*label))
    assert "threshold were fitted with those labels missing" in flat(invoke(*label).stderr)


def test_a_run_recorded_on_another_host_cannot_be_checked_and_is_not_resumed_here(srv, experiment):
    exp, run_dir = stopped_run(srv, experiment)
    manifest = manifest_of(run_dir)
    elsewhere = {**process_identity(), "host": "gpu-box-7"}
    manifest.update(status="running", process=elsewhere)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    report = invoke("report", str(run_dir))
    assert report.exit_code == 0
    text = flat(report.stderr)
    assert f"run {run_dir.name} is running on host gpu-box-7 (cannot check from here)" in text
    assert "If that process is gone, finish the run on its host with: prelabel run" in text
    refused = invoke("run", str(exp.config), "--resume", str(run_dir))
    assert refused.exit_code == 2
    assert "cannot check from here" in flat(refused.output)
    assert "resume it on its own host" in flat(refused.output)


def test_a_recorded_process_is_alive_only_while_that_very_process_runs(tmp_path):
    me = process_identity()
    assert process_alive(me) is True
    assert process_alive({**me, "started": me["started"] + 1}) is False  # a reused pid
    assert process_alive({**me, "host": "elsewhere"}) is None  # cannot check another host
    assert process_alive({**me, "boot_id": "another-boot"}) is False
    assert process_alive(None) is None
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_identity(child.pid)
        assert process_alive(started) is True
        child.kill()
        while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z":
            time.sleep(0.01)
        assert process_alive(started) is False  # killed, not yet reaped: a zombie is gone
    finally:
        child.kill()
        child.wait()
    assert process_alive(started) is False


def test_expected_labels_match_the_plan_with_samples_pairwise_orders_and_replay(srv, tmp_path):
    path = write_pairwise(tmp_path, srv)
    data = yaml.safe_load(path.read_text())
    data["models"][0]["params"] = {"temperature": 0.7}
    data["run"]["samples"] = 3
    (tmp_path / "replayed.jsonl").write_text('{"id": "p1", "label": "A"}\n')
    data["models"].append({"id": "old", "model": "replay/replayed.jsonl"})
    path.write_text(yaml.safe_dump(data))
    plan = make_plan(load_experiment(path))
    exp = plan.resolved.experiment
    expected = expected_labels(exp, plan.gold_sets, plan.setups)
    counted = {s.id: sum(spec.setup_id == s.id for spec in plan.specs) for s in plan.setups}
    items = sum(len(g.items) for g in plan.gold_sets)
    counted.update({sid: items for sid in plan.replay_files})
    assert expected == counted
    assert sorted(expected.values()) == [items, items * 3 * 2]


def test_resume_asks_again_where_the_provider_never_answered(srv, experiment):
    """A failure without an answer (here a 503 on g01, retries off) is not a label to keep:
    the resumed run asks that item again; answers already received are kept as they are."""
    srv.responder = per_item({"g01": Reply(status=503)})
    exp, run_dir = stopped_run(srv, experiment, run={"retries": 0})
    failed = [r for r in records_of(run_dir) if r.failure]
    assert [(r.item, r.failure) for r in failed] == [("g01", "http_503")]
    srv.reset()
    srv.responder = per_item({})
    exp.rewrite(max_calls=None)
    result = invoke("run", str(exp.config), "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    records = records_of(run_dir)
    assert len(records) == 12 and not [r for r in records if r.failure]
    assert srv.count == 12 - 4  # g01 again, and the 7 never asked
