"""`prelabel label` streams its pool (issue 18): labelled a chunk at a time, with outputs equal
to those of the whole pool in memory, caps that hold across chunks, and every item checked
before the first call. End to end over HTTP to the fake server."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from conftest import NEW, confident_labeler, invoke, label_run, last_user_text, setup_experiment

import harness.deploy.label as label_module
from harness.deploy.pool_outputs import review_order
from harness.deploy.routing import review_queue
from harness.inputs.unlabeled import iter_unlabeled, load_unlabeled, scan_unlabeled

OUTPUTS = ("prelabels.jsonl", "review_queue.jsonl", "estimates.json")


def pool(tmp_path, n=23):
    """n new items of the four NEW kinds; every seventh gets an answer that does not parse."""
    rows = [{"id": f"q{k:02d}", "text": f"{NEW[k % 4]['text']} #{k}", "n": k} for k in range(n)]
    rows[5]["id"] = "é5"  # an id beyond ASCII: ties are broken by id, in code point order
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def labeler(request_json: dict, attempt: int) -> str:
    text = last_user_text(request_json)
    number = int(text.rsplit("#", 1)[1]) if "#" in text else 1
    return "no idea" if number % 7 == 0 else confident_labeler(request_json, attempt)


def queue_as_before(prelabels: list[dict], pool_path, *args) -> list[dict]:
    """The review queue as prelabel wrote it with every row in memory (routing.review_queue)."""
    fields = {it.id: dict(it.fields) for it in load_unlabeled(pool_path).items}
    queue = review_queue([dict(r) for r in prelabels], *args)
    return [{**q, "fields": fields[q["item"]]} for q in queue]


def test_chunks_write_what_the_whole_pool_in_memory_wrote(srv, experiment, tmp_path, monkeypatch):
    exp, _ = setup_experiment(srv, experiment, tmp_path)
    srv.responder = labeler
    items = pool(tmp_path)
    options = ["--audit-share", "0.5", "--blind-share", "0.5", "--seed", "4"]
    assert invoke("label", str(exp.config), "--input", str(items), *options).exit_code == 0
    whole = label_run(exp)
    monkeypatch.setattr(label_module, "CHUNK_ITEMS", 4)
    result = invoke("label", str(exp.config), "--input", str(items), *options)
    assert result.exit_code == 0, result.output
    [chunked] = [d for d in exp.run_dirs() if "-label-" in d.name and d != whole]
    for name in OUTPUTS:
        assert (chunked / name).read_bytes() == (whole / name).read_bytes(), name
    rows = [json.loads(x) for x in (chunked / "prelabels.jsonl").read_text().splitlines()]
    assert [r["item"] for r in rows] == [it.id for it in load_unlabeled(items).items]
    routes = {r["route"] for r in rows}
    assert routes == {"accept", "review"} and any(r["label"] is None for r in rows)
    expected = queue_as_before(rows, items, None, 0.5, 0.5, 4)
    written = (chunked / "review_queue.jsonl").read_text(encoding="utf-8")
    assert written == "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in expected)
    reasons = {q["queue_reason"] for q in expected}
    assert reasons == {"no label", "below threshold", "audit of auto-accepted"}
    manifest = json.loads((chunked / "manifest.json").read_text())
    assert manifest["counts"]["queue"] == len(expected)
    assert not list(chunked.glob("*.tmp"))


def test_the_review_order_is_the_order_of_the_rows_in_memory():
    rng = random.Random(0)
    labels = ["a", "b", "c", "d"]
    for case in range(300):
        n = rng.choice([1, 2, 5, 30, 200])
        confs = [0.2, 0.5, 0.5, 0.9, float("nan")]  # few values: many ties, broken by id
        rows = []
        for k in range(n):
            code = rng.randrange(-1, len(labels))
            conf = rng.choice(confs) if code >= 0 else float("nan")
            accept = code >= 0 and not math.isnan(conf) and conf >= 0.5 and rng.random() < 0.5
            rows.append(
                {
                    "item": f"{rng.choice('aBz')}{rng.randrange(10**6)}-{k}",
                    "label": labels[code] if code >= 0 else None,
                    "confidence": None if math.isnan(conf) else conf,
                    "route": "accept" if accept else "review",
                }
            )
        budget = rng.choice([None, None, 0, 3, n // 2])
        shares = (rng.choice([0, 0.1, 0.5, 1]), rng.choice([0, 0.05, 0.5, 1]))
        seed = rng.randrange(100)
        expected = review_queue([dict(r) for r in rows], budget, *shares, seed)
        index, reason, blind = review_order(
            np.array([labels.index(r["label"]) if r["label"] else -1 for r in rows]),
            np.array([-1.0 if r["confidence"] is None else r["confidence"] for r in rows]),
            np.array([r["route"] == "accept" for r in rows]),
            np.array([r["item"].encode() for r in rows]),
            budget,
            *shares,
            seed,
        )
        got = [
            (rows[i]["item"], ("no label", "below threshold", "audit of auto-accepted")[w], bool(b))
            for i, w, b in zip(index, reason, blind, strict=True)
        ]
        want = [(q["item"], q["queue_reason"], q["blind"]) for q in expected]
        assert got == want, case


def test_max_calls_holds_for_the_whole_pool_not_per_chunk(srv, experiment, tmp_path, monkeypatch):
    exp, _ = setup_experiment(srv, experiment, tmp_path)
    srv.responder = labeler
    exp.data["run"]["max_calls"] = 5
    exp.rewrite()
    srv.reset()
    monkeypatch.setattr(label_module, "CHUNK_ITEMS", 2)
    result = invoke("label", str(exp.config), "--input", str(pool(tmp_path, 12)))
    assert result.exit_code == 0, result.output
    assert len(srv.requests) == 5
    manifest = json.loads((label_run(exp) / "manifest.json").read_text())
    assert manifest["status"] == "stopped: max_calls" and manifest["calls"] == 5
    assert manifest["counts"]["items"] == 12 and manifest["counts"]["no_label"] >= 7


def test_a_bad_item_in_a_later_chunk_fails_before_any_call(srv, experiment, tmp_path, monkeypatch):
    exp, _ = setup_experiment(srv, experiment, tmp_path)
    items = pool(tmp_path, 9)
    rows = [json.loads(x) for x in items.read_text().splitlines()]
    del rows[7]["text"]  # the template needs it: in the fourth chunk of two items
    items.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert [len(p.items) for p in iter_unlabeled(scan_unlabeled(items), 2)] == [2, 2, 2, 2, 1]
    srv.reset()
    monkeypatch.setattr(label_module, "CHUNK_ITEMS", 2)
    result = invoke("label", str(exp.config), "--input", str(items))
    assert result.exit_code == 2
    assert "q07" in result.output and srv.requests == []
    assert not [d for d in exp.run_dirs() if "-label-" in d.name]  # nothing written


def test_an_id_twice_is_found_by_its_hash_and_named_with_its_first_line(tmp_path):
    items = tmp_path / "pool.jsonl"
    ids = ["a", "b", "a", "c", "b", "a"]
    items.write_text("".join(json.dumps({"id": i, "text": "x"}) + "\n" for i in ids))
    with pytest.raises(Exception) as info:
        scan_unlabeled(items)
    assert [(p.message, p.line) for p in info.value.problems] == [
        ("duplicate id 'a' (line 1)", 3),
        ("duplicate id 'b' (line 2)", 5),
        ("duplicate id 'a' (line 1)", 6),
    ]
