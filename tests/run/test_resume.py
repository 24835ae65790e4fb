"""Resume after a hard kill, and the free (litellm-less) fully cached rerun.

`prelabel run` runs as a real subprocess against the fake server; the server's request log
says which labels were paid for in which run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import RULES, Reply, invoke, last_user_text, rule_label
from fake_openai import keyword_labeler

from harness.core.records import LabelRecord

pytestmark = pytest.mark.http

N_ITEMS = 30
CONCURRENCY = 2
ITEMS = [
    (
        f"i{i:02d}",
        f"Review {i:02d}: "
        + ("a great lamp." if i % 3 == 0 else "an awful lamp." if i % 3 == 1 else "a lamp."),
        ["positive", "positive", "neutral"],
    )
    for i in range(N_ITEMS)
]
TEXT_TO_ID = {text: item_id for item_id, text, _ in ITEMS}


def item_counts(requests: list[dict]) -> Counter[str]:
    return Counter(TEXT_TO_ID[last_user_text(r).strip()] for r in requests)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def slow(delay_s: float):
    labeler = keyword_labeler(RULES, "neutral")

    def responder(req, attempt):
        reply = labeler(req, attempt)
        return Reply(content=reply.content, delay_s=delay_s)

    return responder


def parse_lines(path: Path, *, allow_torn_last: bool) -> list[LabelRecord]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" or allow_torn_last, "labels.jsonl must end with a newline"
    records = [LabelRecord.model_validate_json(line) for line in lines[:-1]]
    if lines[-1]:  # the line a kill cut short (or cut just before its newline)
        with contextlib.suppress(ValueError):
            records.append(LabelRecord.model_validate_json(lines[-1]))
    return records


def test_resume_after_sigkill_never_pays_twice_for_a_stored_label(srv, experiment, tmp_path):
    srv.responder = slow(0.2)
    exp = experiment(srv, gold=ITEMS, run={"concurrency": CONCURRENCY})
    cmd = cli("run", str(exp.config), "--quiet")

    log1 = (tmp_path / "run1.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while srv.count < 8 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the first run finished before it could be killed"
        assert srv.count >= 8, "the first run never got going"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log1.close()
    assert proc.returncode == -signal.SIGKILL

    # What the first run paid for, and what it wrote down before dying.
    first_requests = item_counts(srv.requests)
    [run1] = exp.run_dirs()
    manifest1 = json.loads((run1 / "manifest.json").read_text())
    assert manifest1["run_id"] == run1.name
    written = parse_lines(run1 / "labels.jsonl", allow_torn_last=True)
    stored = {r.item for r in written}
    assert stored, "no label reached labels.jsonl before the kill"
    assert all(r.label == rule_label(dict((i, t) for i, t, _ in ITEMS)[r.item]) for r in written)
    assert all(n == 1 for n in first_requests.values())
    assert stored <= set(first_requests)
    assert len(stored) < N_ITEMS

    srv.reset()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    second_requests = item_counts(srv.requests)

    # Every reply that reached labels.jsonl is in the cache: never requested again.
    assert not (set(second_requests) & stored), sorted(set(second_requests) & stored)
    assert all(n == 1 for n in second_requests.values())
    # Items the first run never asked for are asked now; at most the calls in flight at the
    # kill (their replies never reached the cache) are paid twice.
    all_ids = {item_id for item_id, _, _ in ITEMS}
    assert all_ids - set(first_requests) <= set(second_requests)
    paid_twice = set(first_requests) & set(second_requests)
    assert len(paid_twice) <= CONCURRENCY
    assert sum(first_requests.values()) + sum(second_requests.values()) <= N_ITEMS + CONCURRENCY

    run2 = next(p for p in exp.run_dirs() if p != run1)
    records = parse_lines(run2 / "labels.jsonl", allow_torn_last=False)
    assert sorted(r.item for r in records) == sorted(all_ids)  # each item exactly once
    assert all(r.label is not None and r.failure is None for r in records)
    assert {r.item for r in records if r.cached} >= stored
    manifest2 = json.loads((run2 / "manifest.json").read_text())
    assert manifest2["status"] == "complete"
    assert manifest2["totals"]["calls"] == sum(second_requests.values())


# A wrapper around the CLI that reports, at exit, whether litellm was ever imported.
IMPORT_PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
def report():
    with open(out, "w") as f:
        json.dump(sorted(m for m in sys.modules if m.split(".")[0] == "litellm"), f)
atexit.register(report)
from harness.cli.app import main
sys.argv[0] = "prelabel"
main()
"""


def test_fully_cached_rerun_makes_no_request_and_never_imports_litellm(srv, experiment, tmp_path):
    exp = experiment(srv, model={"client": "litellm"})  # openai/ models skip litellm anyway

    def probe_run(tag: str) -> list[str]:
        out = tmp_path / f"modules-{tag}.json"
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE, str(out), "run", str(exp.config), "--quiet"],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(out.read_text())

    assert "litellm" in probe_run("first")  # the probe does see litellm when it is used
    assert srv.count == 12
    [first] = exp.run_dirs()

    srv.reset()
    assert probe_run("second") == []
    assert srv.count == 0
    [second] = [p for p in exp.run_dirs() if p != first]
    records = [json.loads(line) for line in (second / "labels.jsonl").read_text().splitlines()]
    assert len(records) == 12 and all(r["cached"] for r in records)
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["totals"]["calls"] == 0 and manifest["totals"]["cached"] == 12


def test_an_openai_model_is_called_without_importing_litellm(srv, experiment, tmp_path):
    """openai/... models go through the openai client (harness/providers/openai_client.py):
    litellm's 2-3 s import is not paid, and the labels are the same as through litellm."""
    exp = experiment(srv)
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(out), "run", str(exp.config), "--quiet"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(out.read_text()) == [] and srv.count == 12
    [direct] = exp.run_dirs()
    via = experiment(srv, model={"client": "litellm"}, name="via")
    assert (
        invoke("run", str(via.config), "--quiet", "--cache-dir", str(tmp_path / "c2")).exit_code
        == 0
    )
    [through] = [d for d in via.run_dirs() if d != direct]
    keep = ("item", "label", "raw", "failure", "input_tokens", "output_tokens", "cost_usd")

    def rows(run_dir):
        lines = (run_dir / "labels.jsonl").read_text().splitlines()
        return sorted(tuple(json.loads(x).get(k) for k in keep) for x in lines)

    assert rows(direct) == rows(through)
    bodies = [json.dumps(r, sort_keys=True) for r in srv.requests]
    assert len(bodies) == 24
    assert sorted(bodies[:12]) == sorted(bodies[12:])  # the very same requests either way
