"""`--parquet` on `prelabel run` and `prelabel label` (and `parquet=True` in the Python API):
the JSONL outputs also written as Parquet, row for row; without pyarrow the command stops
before anything is called or written. Over real HTTP to tests/fake_openai.py."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import NEW, flat, invoke, label_run, only_run_dir, read, setup_experiment

import harness

pytestmark = pytest.mark.http
pq = pytest.importorskip("pyarrow.parquet", reason="the parquet extra is not installed")


def table(path):
    return pq.read_table(path).to_pylist()


def test_run_writes_its_labels_as_parquet_too(srv, experiment):
    exp = experiment(srv)
    result = invoke("run", str(exp.config), "--quiet", "--parquet")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(exp)
    rows, jsonl = table(run_dir / "labels.parquet"), read(run_dir / "labels.jsonl")
    assert len(rows) == len(jsonl) == 12
    assert {"setup", "item", "label", "raw", "cache_key"} <= set(rows[0])
    for got, want in zip(rows, jsonl, strict=True):
        for key in (
            "setup",
            "gold_set",
            "item",
            "label",
            "confidence",
            "raw",
            "cache_key",
            "cached",
        ):
            assert got.get(key) == want.get(key), key
    assert "labels.jsonl (and .parquet)" in flat(result.output)


def test_label_writes_prelabels_queue_and_labels_as_parquet(srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    result = invoke("label", str(exp.config), "--input", str(new), "--parquet")
    assert result.exit_code == 0, result.output
    run_dir = label_run(exp)
    assert table(run_dir / "prelabels.parquet") == read(run_dir / "prelabels.jsonl")
    assert table(run_dir / "review_queue.parquet") == read(run_dir / "review_queue.jsonl")
    assert len(table(run_dir / "labels.parquet")) == len(NEW)
    # The same from Python.
    done = harness.label(exp.config, NEW, parquet=True)
    assert table(done.run_dir / "prelabels.parquet") == read(done.run_dir / "prelabels.jsonl")
    assert not list(done.run_dir.glob("*.tmp"))


def test_without_pyarrow_nothing_is_called_or_written(srv, experiment, tmp_path, monkeypatch):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    calls, before = len(srv.requests), set(exp.run_dirs())
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    fresh = {"id": "z9", "text": "A great and new thing."}  # not cached: would be a call
    new.write_text(new.read_text() + f'{{"id": "{fresh["id"]}", "text": "{fresh["text"]}"}}\n')
    for args in (("label", str(exp.config), "--input", str(new)), ("run", str(exp.config))):
        result = invoke(*args, "--parquet")
        assert result.exit_code == 2, result.output
        assert "needs the 'pyarrow' package" in flat(result.output)
        assert "prelabel[parquet]" in flat(result.output)
    with pytest.raises(harness.UserError, match="pyarrow"):
        harness.label(exp.config, [fresh], parquet=True)
    assert len(srv.requests) == calls and set(exp.run_dirs()) == before
