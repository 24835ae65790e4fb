"""Crash safety: `kill -9` at seeded random moments, then the same command; and two runs that
share one cache directory at the same time.

`prelabel run` runs in its own process, forked from a "zygote" that has imported litellm
once (that import costs ~4 s of CPU per process, which would make these tests slow);
tests/run/test_resume.py kills a plain `python -m harness.cli run` too. The fake server runs in
a thread of the test process, so it outlives every kill and its log says what was paid
for, run by run. "Paid"
means the server produced a successful reply: a provider bills it whether or not the
client lived to read it. What must hold:
- a label that reached the cache (so every label in labels.jsonl, which is written after the
  cache) is never requested again;
- the only labels paid twice are replies that were in flight at a kill (produced, not yet
  stored), at most `run.concurrency` per kill, and within one run no label is paid twice;
- every labels.jsonl, even a killed run's, holds whole lines only, one per
  (setup, gold_set, item, sample, swapped); the cache opens and passes SQLite's
  integrity check after every kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from conftest import RULES, Reply, last_user_text, rule_label
from fake_openai import keyword_labeler

import harness.run.pipeline
from harness.config import load_experiment
from harness.core.records import LabelRecord
from harness.run.cache import LabelCache
from harness.run.pipeline import run_experiment
from harness.run.plan import make_plan

pytestmark = pytest.mark.http

N_ITEMS = 48
CONCURRENCY = 4
KILLS = 2
ITEMS = [
    (
        f"k{i:02d}",
        f"Lamp {i:02d}: " + ("great." if i % 3 == 0 else "awful." if i % 3 == 1 else "fine."),
        ["positive", "negative", "neutral"],
    )
    for i in range(N_ITEMS)
]
TEXT_TO_ID = {text: item_id for item_id, text, _ in ITEMS}
RECORD_KEY = ("setup", "gold_set", "item", "sample", "swapped")


ZYGOTE = """
import json, os, sys
import litellm, harness.cli.app, harness.run.pipeline, harness.providers.litellm_provider
print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "wait":
        print(os.waitstatus_to_exitcode(os.waitpid(cmd["pid"], 0)[1]), flush=True)
        continue
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        continue
    code = 1
    try:  # the child: `prelabel ARGS` with ENV, output to the log file
        os.environ.update(cmd["env"])
        log = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.argv = ["prelabel", *cmd["args"]]
        try:
            harness.cli.app.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
"""


class Zygote:
    """Forks `prelabel` processes that start in milliseconds; reaps them for their status."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def _send(self, **cmd) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def start(self, log: Path, *args: str) -> int:
        env = {"PRELABEL_CACHE_DIR": os.environ["PRELABEL_CACHE_DIR"]}  # this test's cache
        return int(self._send(op="run", log=str(log), args=list(args), env=env))

    def wait(self, pid: int) -> int:
        """Exit code; -9 when killed."""
        return int(self._send(op="wait", pid=pid))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Killer:
    """Responder wrapper: SIGKILLs process `pid` `after` seconds after the server receives
    this run's request number `at`; every reply takes `delay_s`."""

    def __init__(self, delay_s: float = 0.05):
        self.labeler = keyword_labeler(RULES, "neutral")
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.pid = 0
        self.at = 0
        self.after = 0.0
        self.seen = 0

    def arm(self, pid: int = 0, at: int = 0, after: float = 0.0) -> None:
        with self.lock:
            self.pid, self.at, self.after, self.seen = pid, at, after, 0

    def __call__(self, req: dict, attempt: int) -> Reply:
        with self.lock:
            self.seen += 1
            pid = self.pid if self.at and self.seen == self.at else 0
        if pid:
            threading.Timer(self.after, kill, (pid,)).start()
        reply = self.labeler(req, attempt)
        return Reply(content=reply.content, delay_s=self.delay_s)


def item_of_key(srv, key: str) -> str:
    return TEXT_TO_ID[last_user_text({"messages": json.loads(key)}).strip()]


def paid(srv, since: int) -> Counter[str]:
    """Items with a successful reply produced by the server since log entry `since`."""
    return Counter(item_of_key(srv, s.key) for s in srv.log[since:] if s.status == 200)


def asked(srv, since: int) -> set[str]:
    return {item_of_key(srv, s.key) for s in srv.log[since:]}


def cached_items(cache_dir: Path, keys: dict[str, str]) -> set[str]:
    """Items whose reply is in the cache; the cache must open and be intact."""
    with sqlite3.connect(cache_dir / "cache.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    cache = LabelCache(cache_dir)
    try:
        return {item for item, key in keys.items() if cache.get(key) is not None}
    finally:
        cache.close()


def whole_lines(run_dir: Path) -> list[LabelRecord]:
    """labels.jsonl: every line whole and parseable, no (setup, item, ...) twice."""
    text = (run_dir / "labels.jsonl").read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "a torn last line"
    records = [LabelRecord.model_validate_json(line) for line in text.splitlines()]
    keys = [tuple(getattr(r, k) for k in RECORD_KEY) for r in records]
    assert len(keys) == len(set(keys)), "a duplicate line"
    return records


def test_kill_9_at_random_moments_then_resume_never_pays_a_stored_label_twice(
    srv, experiment, cache_dir, tmp_path, zygote
):
    rng = random.Random(20240606)
    killer = Killer()
    srv.responder = killer
    exp = experiment(srv, gold=ITEMS, run={"concurrency": CONCURRENCY, "retries": 1})
    keys = {s.item_id: s.cache_key for s in make_plan(load_experiment(exp.config)).specs}
    texts = {item_id: text for item_id, text, _ in ITEMS}

    stored: set[str] = set()  # items in the cache after the last kill
    lost: list[set[str]] = []  # per kill: paid in that run, not in the cache after it
    kills = 0
    seen_dirs: set[Path] = set()
    for cycle in range(KILLS + 1):
        start = len(srv.log)
        remaining = N_ITEMS - len(stored)
        log = tmp_path / f"run{cycle}.log"
        pid = zygote.start(log, "run", str(exp.config), "--quiet")
        if cycle < KILLS:  # after a random number of requests, plus a random moment
            killer.arm(pid, rng.randint(1, max(1, remaining // 3)), rng.uniform(0, 0.05))
        else:
            killer.arm()  # the last run goes to the end
        returncode = zygote.wait(pid)
        srv.wait_idle()  # what the dead process had sent is served (and billed) too
        run_dir = next(p for p in exp.run_dirs() if p not in seen_dirs)
        seen_dirs.add(run_dir)

        # Nothing stored before this run was asked for again.
        assert not (asked(srv, start) & stored), sorted(asked(srv, start) & stored)
        this_run = paid(srv, start)
        assert all(n == 1 for n in this_run.values()), "paid twice within one run"
        records = whole_lines(run_dir)
        assert all(r.label == rule_label(texts[r.item]) for r in records)
        now_stored = cached_items(cache_dir, keys)
        assert {r.item for r in records} <= now_stored, "written to labels.jsonl, not cached"
        assert stored <= now_stored

        print(f"run {cycle}: exit {returncode}, paid {len(this_run)}, stored {len(now_stored)}")
        if returncode == -signal.SIGKILL:
            kills += 1
            lost.append(set(this_run) - now_stored)
            print(f"  in flight at the kill: {sorted(lost[-1])}, written {len(records)}")
            assert len(lost[-1]) <= CONCURRENCY, lost[-1]
            stored = now_stored
            continue
        assert returncode == 0, log.read_text()
        assert cycle == KILLS, "a run finished before its kill"
        assert now_stored == set(keys)
        assert sorted(r.item for r in records) == sorted(keys)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "complete"
        assert manifest["totals"]["calls"] == sum(this_run.values())

    assert kills == KILLS
    total = paid(srv, 0)
    assert set(total) == set(keys)
    for item, n in total.items():  # paid twice only if in flight at a kill
        assert n <= 1 + sum(item in batch for batch in lost), item
    assert sum(total.values()) <= N_ITEMS + sum(len(batch) for batch in lost)


def test_two_runs_sharing_one_cache_at_once_both_complete(
    srv, experiment, cache_dir, tmp_path, zygote
):
    srv.responder = Killer(delay_s=0.1)  # never armed: a slow, correct labeler
    exp = experiment(srv, gold=ITEMS[:30], run={"concurrency": CONCURRENCY})
    keys = {s.item_id: s.cache_key for s in make_plan(load_experiment(exp.config)).specs}
    texts = {item_id: text for item_id, text, _ in ITEMS}

    logs = [tmp_path / f"run{i}.log" for i in range(2)]
    pids = [zygote.start(log, "run", str(exp.config), "--quiet") for log in logs]
    codes = [zygote.wait(pid) for pid in pids]
    assert codes == [0, 0], [log.read_text() for log in logs]
    assert min(s.attempt for s in srv.log) == 0 and len(srv.log) >= len(keys)

    run_dirs = exp.run_dirs()
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        records = whole_lines(run_dir)
        assert any(not r.cached for r in records), "the runs did not overlap"
        assert sorted(r.item for r in records) == sorted(keys)
        assert all(r.label == rule_label(texts[r.item]) for r in records)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "complete"
    # Each process pays at most once per label (the two may each pay for one label).
    assert max(paid(srv, 0).values()) <= 2
    assert cached_items(cache_dir, keys) == set(keys)

    srv.reset()
    third = run_experiment(exp.config)
    assert srv.count == 0 and third.totals.cached == len(keys)


def test_two_runs_drawing_the_same_run_id_get_two_folders(srv, experiment, monkeypatch):
    ids = iter(["20250101-000000-exp-abcd", "20250101-000000-exp-abcd", "20250101-000000-exp-ef01"])
    monkeypatch.setattr(harness.run.pipeline, "new_run_id", lambda name: next(ids))
    exp = experiment(srv)
    first = run_experiment(exp.config)
    second = run_experiment(exp.config)  # drew a taken id: draws again instead of crashing
    assert first.run_dir.name == "20250101-000000-exp-abcd"
    assert second.run_dir.name == "20250101-000000-exp-ef01"
    assert second.manifest.status == "complete"
