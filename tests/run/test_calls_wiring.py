"""The one runner wiring (harness/run/calls.py) keeps each command's own choices: `label` goes
through the label cache and the run's caps, writing labels.jsonl as records arrive; the
canary bypasses the cache and the caps; `run` reports progress for every record."""

from __future__ import annotations

import json

import pytest
from conftest import invoke, label_run, read, setup_experiment

from harness.run.pipeline import run_experiment

pytestmark = pytest.mark.http


def test_label_obeys_the_run_caps_writes_labels_as_they_arrive_and_reuses_them(
    srv, experiment, tmp_path
):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    exp.rewrite(max_calls=1)  # the evaluation is done: now a cap of one request
    calls = len(srv.requests)
    assert invoke("label", str(exp.config), "--input", str(new)).exit_code == 0
    assert len(srv.requests) - calls == 1
    first = label_run(exp)
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["status"] == "stopped: max_calls" and manifest["calls"] == 1
    [stored] = read(first / "labels.jsonl")  # the one label paid for is on disk
    assert stored["label"] is not None and not stored.get("cached")

    exp.rewrite(max_calls=None)
    calls = len(srv.requests)
    assert invoke("label", str(exp.config), "--input", str(new)).exit_code == 0
    assert len(srv.requests) - calls == 3  # the item labelled before comes from the cache
    # The new folder, found by elimination: two runs in one second sort by a random suffix.
    [second] = [d for d in exp.run_dirs() if "-label-" in d.name and d != first]
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert (manifest["calls"], manifest["cached"]) == (3, 1)
    assert len(read(second / "labels.jsonl")) == 4


def test_the_canary_ignores_the_run_caps(srv, experiment):
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    # Caps that would stop a run after one request (or on its unpriced model's first reply)
    exp.rewrite(max_calls=1, budget_usd=1.0)
    calls = len(srv.requests)
    result = invoke("canary", str(exp.config), "--items", "12")
    assert result.exit_code == 0, result.output
    assert len(srv.requests) - calls == 12
    assert "flipped 0 of 12" in result.output


def test_the_canary_reads_the_stored_labels_but_never_writes_the_cache(srv, experiment):
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    srv.responder = lambda request_json, attempt: "negative"
    assert invoke("canary", str(exp.config), "--items", "12").exit_code == 1  # drift
    calls = len(srv.requests)
    result = run_experiment(exp.config)  # still the labels first paid for, all cached
    assert len(srv.requests) == calls and result.totals.cached == result.totals.labels
    labels = [r["label"] for r in read(result.run_dir / "labels.jsonl")]
    assert labels.count("negative") < len(labels)  # not the canary's "negative" everywhere


def test_run_reports_progress_for_every_record_and_writes_each_to_labels_jsonl(srv, experiment):
    exp = experiment(srv)
    seen = []
    result = run_experiment(exp.config, on_record=seen.append)
    on_disk = read(result.run_dir / "labels.jsonl")
    assert len(seen) == len(on_disk) == result.totals.labels == 12
    assert [r.item for r in seen] == [r["item"] for r in on_disk]
