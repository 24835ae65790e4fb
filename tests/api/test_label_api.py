"""`harness.label` (harness/api/labelled.py): new items pre-labelled from Python, with the
same rows, routes and errors as `prelabel label` (which is built on it). Over real HTTP to
tests/fake_openai.py."""

from __future__ import annotations

import asyncio
import json
import tempfile

import pytest
from conftest import NEW, invoke, label_run, only_run_dir, read, setup_experiment

import harness

pytestmark = pytest.mark.http

RUN_SPECIFIC = ("evaluation_run",)


def rows_of(run_dir):
    return read(run_dir / "prelabels.jsonl")


def test_items_from_python_give_the_rows_the_cli_gives_from_a_file(srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    assert invoke("label", str(exp.config), "--input", str(new)).exit_code == 0
    by_cli = label_run(exp)
    done = harness.label(exp.config, (dict(item) for item in NEW))  # a generator, read once
    assert isinstance(done, harness.Labelled) and done.run_dir != by_cli
    assert rows_of(done.run_dir) == rows_of(by_cli)
    assert read(done.run_dir / "review_queue.jsonl") == read(by_cli / "review_queue.jsonl")
    # What was labelled stays beside its labels: the items, as given.
    kept = done.run_dir / "input.jsonl"
    assert read(kept) == NEW and done.manifest["input"]["path"] == str(kept)
    assert done.manifest["input"]["n"] == len(NEW)
    # The typed view matches the files.
    assert len(done) == len(NEW) and list(done) == rows_of(done.run_dir)
    assert done.setup == "zs@fake" and done.counts["items"] == len(NEW)
    assert done.counts["accept"] == sum(r["route"] == "accept" for r in done)
    assert len(done.review_queue) == done.counts["queue"] == len(list(done.review_queue))
    assert done.estimates == json.loads((done.run_dir / "estimates.json").read_text())
    assert done.threshold == rows_of(done.run_dir)[0]["threshold"]
    frame = done.to_pandas()
    assert list(frame["item"]) == [r["id"] for r in NEW]
    page = done._repr_html_()
    assert "zs@fake" in page and f"{len(NEW)} items" in page and "positive" in page
    assert harness.load_label(done.run_dir).manifest == done.manifest
    # No call was made again: the CLI's labels were cached.
    assert done.calls == 0 and done.cached == len(NEW)


def test_a_path_is_labelled_in_place_without_a_copy(srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    done = harness.label(exp.config, new, setup="zs@fake", evaluation=only_run_dir(exp))
    assert done.manifest["input"]["path"] == str(new)
    assert not (done.run_dir / "input.jsonl").exists()
    assert [r["item"] for r in done] == [r["id"] for r in NEW]


def test_bad_items_are_named_by_their_position_and_leave_nothing(
    srv, experiment, tmp_path, monkeypatch
):
    exp, _ = setup_experiment(srv, experiment, tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = {d.name for d in exp.run_dirs()}
    cases = [
        ([NEW[0], {"text": "no id"}, NEW[1]], "items[1]", "needs an 'id'"),
        ([NEW[0], NEW[1], dict(NEW[0])], "items[2]", "duplicate id 'n1'"),
        ([NEW[0], "just text"], "items[1]", "not a dict"),
        ([NEW[0], {"id": "x", "text": float("nan")}], "items[1]", "NaN or infinite"),
        ([NEW[0], {"id": "x", "text": object()}], "items[1]", "JSON"),
    ]
    for items, where, what in cases:
        with pytest.raises(harness.UserError) as caught:
            harness.label(exp.config, items)
        problem = caught.value.problems[0]
        assert (problem.file, problem.line) == (where, None), caught.value
        assert what in str(caught.value)
    with pytest.raises(harness.UserError, match="path or an iterable"):
        harness.label(exp.config, {"id": "n1", "text": "a dict, not a list"})
    with pytest.raises(harness.UserError, match="blind_share"):
        harness.label(exp.config, NEW, blind_share=2)
    assert not list(scratch.iterdir())  # the temporary items files are gone
    assert {d.name for d in exp.run_dirs()} == before  # and no run folder was started


def test_it_runs_under_a_running_event_loop_as_a_notebook_cell_does(srv, experiment, tmp_path):
    exp, _ = setup_experiment(srv, experiment, tmp_path)

    async def cell():
        asyncio.get_running_loop()  # Jupyter's kernel runs one; label starts its own
        return harness.label(exp.config, NEW)

    done = asyncio.run(cell())
    assert [r["item"] for r in done] == [r["id"] for r in NEW]
    assert all(r["label"] for r in done)


def test_a_label_folder_that_is_not_one_is_refused(srv, experiment, tmp_path):
    exp, _ = setup_experiment(srv, experiment, tmp_path)
    with pytest.raises(harness.UserError, match="not a label run"):
        harness.load_label(only_run_dir(exp))
    with pytest.raises(harness.UserError, match="missing"):
        harness.load_label(tmp_path / "nowhere")
