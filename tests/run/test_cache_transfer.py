"""`prelabel cache export` / `cache import`: labels move between machines, checked on arrival.

Over real HTTP (FakeOpenAIServer on 127.0.0.1): a run fills one cache, its labels are
exported, imported into another, and the same config then makes no call there. An import
checks every key against the request beside it, and writes nothing when any entry is bad.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from conftest import read_labels
from typer.testing import CliRunner

from harness.cli.app import app
from harness.run.cache import LabelCache

pytestmark = pytest.mark.http


def invoke(*args: str):
    return CliRunner().invoke(app, [*args], catch_exceptions=False)


def flat(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text)


def run_and_export(srv, experiment, cache_dir: Path, out: Path):
    exp = experiment(srv)
    assert invoke("run", str(exp.config)).exit_code == 0
    first_calls = len(srv.requests)
    assert first_calls == 12
    res = invoke("cache", "export", str(exp.config), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "exported 12 labels" in flat(res.output)
    return exp


def entries(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh.read().splitlines()]


def write_entries(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize("name", ["labels.jsonl", "labels.jsonl.gz"])
def test_exported_labels_make_a_run_elsewhere_free(
    srv, experiment, cache_dir, tmp_path, monkeypatch, name
):
    out = tmp_path / name
    exp = run_and_export(srv, experiment, cache_dir, out)
    [run1] = exp.run_dirs()

    other = tmp_path / "other-cache"  # another machine's cache
    monkeypatch.setenv("PRELABEL_CACHE_DIR", str(other))
    res = invoke("cache", "import", str(out))
    assert res.exit_code == 0, res.output
    assert "12 added, 0 already there, 0 replaced, 0 kept" in flat(res.output)

    before = len(srv.requests)
    assert invoke("run", str(exp.config)).exit_code == 0
    assert len(srv.requests) == before  # every label came from the imported cache
    run2 = next(d for d in exp.run_dirs() if d != run1)
    key = lambda r: (r["setup"], r["item"])  # noqa: E731
    assert {key(r): r["label"] for r in read_labels(run2)} == {
        key(r): r["label"] for r in read_labels(run1)
    }
    assert all(r["cached"] for r in read_labels(run2))

    again = invoke("cache", "import", str(out))  # merging twice is harmless
    assert "0 added, 12 already there" in flat(again.output)


def test_same_labels_give_the_same_file(srv, experiment, cache_dir, tmp_path):
    out = tmp_path / "a.jsonl.gz"
    exp = run_and_export(srv, experiment, cache_dir, out)
    again = tmp_path / "b.jsonl.gz"
    assert invoke("cache", "export", str(exp.config), "-o", str(again)).exit_code == 0
    a, b = entries(out), entries(again)
    assert a[1:] == b[1:]  # entries sorted by key, whatever the order they were made in
    assert [e["key"] for e in a[1:]] == sorted(e["key"] for e in a[1:])


def test_a_differing_label_is_kept_unless_replace(srv, experiment, cache_dir, tmp_path):
    out = tmp_path / "labels.jsonl"
    run_and_export(srv, experiment, cache_dir, out)
    rows = entries(out)
    key = rows[1]["key"]
    cache = LabelCache(cache_dir)
    original = cache.raw(key)
    cache.set_raw(key, json.dumps({**json.loads(original), "content": "neutral!"}))
    cache.close()

    res = invoke("cache", "import", str(out))
    assert res.exit_code == 0
    assert "11 already there, 0 replaced, 1 kept" in flat(res.output)
    assert "--replace" in flat(res.output)
    cache = LabelCache(cache_dir)
    assert json.loads(cache.raw(key))["content"] == "neutral!"
    cache.close()

    res = invoke("cache", "import", str(out), "--replace")
    assert "1 replaced, 0 kept" in flat(res.output)
    cache = LabelCache(cache_dir)
    assert json.loads(cache.raw(key)) == json.loads(original)
    cache.close()


def tampered(rows: list[dict], how: str) -> list[dict]:
    rows = [dict(r) for r in rows]
    entry = dict(rows[3])
    if how == "reply under another request's key":
        entry["key"] = rows[4]["key"]
    elif how == "request edited":
        entry["request"] = {**entry["request"], "sample": 7}
    elif how == "empty answer":
        entry["reply"] = {**entry["reply"], "content": "  "}
    elif how == "not a sha256":
        entry["key"] = "abc"
    elif how == "extra key":
        entry["note"] = 1
    rows[3] = entry
    return rows


@pytest.mark.parametrize(
    "how",
    [
        "reply under another request's key",
        "request edited",
        "empty answer",
        "not a sha256",
        "extra key",
    ],
)
def test_a_bad_entry_is_refused_with_its_line_and_nothing_is_written(
    srv, experiment, cache_dir, tmp_path, monkeypatch, how
):
    out = tmp_path / "labels.jsonl"
    run_and_export(srv, experiment, cache_dir, out)
    bad = tmp_path / "bad.jsonl"
    write_entries(bad, tampered(entries(out), how))
    fresh = tmp_path / "fresh-cache"
    monkeypatch.setenv("PRELABEL_CACHE_DIR", str(fresh))
    res = invoke("cache", "import", str(bad))
    assert res.exit_code == 2
    assert f"{bad}:4" in flat(res.output)
    assert "export it again" in flat(res.output)
    assert not fresh.exists()  # the cache was not even opened


def test_truncated_or_foreign_files_are_refused(srv, experiment, cache_dir, tmp_path):
    out = tmp_path / "labels.jsonl.gz"
    run_and_export(srv, experiment, cache_dir, out)
    data = out.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    res = invoke("cache", "import", str(cut))
    assert res.exit_code == 2 and "damaged" in flat(res.output)

    rows = entries(out)
    short = tmp_path / "short.jsonl"
    write_entries(short, rows[:-2])  # lines lost: the header still says 12
    res = invoke("cache", "import", str(short))
    assert res.exit_code == 2 and "announces 12 entries, the file has 10" in flat(res.output)

    foreign = tmp_path / "foreign.jsonl"
    write_entries(foreign, rows[1:])
    res = invoke("cache", "import", str(foreign))
    assert res.exit_code == 2 and f"{foreign}:1" in flat(res.output)

    res = invoke("cache", "import", str(tmp_path / "missing.jsonl"))
    assert res.exit_code == 2 and "no such file" in flat(res.output)


def test_export_says_what_is_not_cached(srv, experiment, cache_dir, tmp_path):
    exp = experiment(srv)
    out = tmp_path / "labels.jsonl"
    res = invoke("cache", "export", str(exp.config), "-o", str(out))
    assert res.exit_code == 2  # nothing cached yet: no cache folder at all
    assert invoke("run", str(exp.config)).exit_code == 0
    cache = LabelCache(cache_dir)
    for r in read_labels(exp.run_dirs()[0])[:3]:
        cache._cache.delete(r["cache_key"])
    cache.close()
    res = invoke("cache", "export", str(exp.config), "-o", str(out))
    assert res.exit_code == 0
    assert "exported 9 labels" in flat(res.output)
    assert "3 calls of the config(s) are not in" in flat(res.output)
