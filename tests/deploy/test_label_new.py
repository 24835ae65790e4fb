"""`prelabel label`: new items pre-labelled by the evaluated setup, routed by its threshold,
and the review queue's order; end to end over HTTP to the fake server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import NEW, confident_labeler, invoke, label_run, only_run_dir, read, setup_experiment

from harness.deploy.routing import Evaluation, review_queue, route


def test_new_items_are_routed_by_the_evaluation_threshold(srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    evaluation = only_run_dir(exp)
    metrics = json.loads((evaluation / "metrics.json").read_text())
    threshold = metrics["gold_sets"][0]["setups"][0]["selective"]["threshold"]
    assert threshold == pytest.approx(0.97)  # 5 sure gold items, all right: LTT passes them
    result = invoke("label", str(exp.config), "--input", str(new))
    assert result.exit_code == 0, result.output
    rows = {r["item"]: r for r in read(label_run(exp) / "prelabels.jsonl")}
    assert {k: r["route"] for k, r in rows.items()} == {
        "n1": "accept",
        "n2": "accept",
        "n3": "review",
        "n4": "review",
    }
    assert rows["n1"]["label"] == "positive" and rows["n1"]["threshold"] == threshold
    run_id = evaluation.name
    assert all(r["evaluation_run"] == run_id and r["setup"] == "zs@fake" for r in rows.values())
    queue = read(label_run(exp) / "review_queue.jsonl")
    assert {q["item"] for q in queue if q["queue_reason"] == "below threshold"} == {"n3", "n4"}
    assert all("fields" in q for q in queue)
    # Pool prevalence: for "positive" the pool says 2 of 4 and on the gold set the fake's
    # misses cancel (g04 said positive but is negative, g11 the reverse): 0.5 + 0.
    est = json.loads((label_run(exp) / "estimates.json").read_text())
    pos = next(x for x in est["labels"] if x["label"] == "positive")
    assert pos["ppi"]["estimate"] == pytest.approx(0.5)
    assert (pos["ppi"]["n_gold"], pos["ppi"]["n_unlabeled"]) == (12, 4)
    assert pos["naive_llm_only"]["estimate"] == pytest.approx(0.5)
    assert pos["ppi"]["low"] < 0.5 < pos["ppi"]["high"]
    # 12 gold items is far below where PPI's normal interval keeps its level: said in the
    # file and on the console.
    assert est["small_n"]["figure"] == "ppi" and est["small_n"]["n"] == 12
    assert "PPI on 12" in result.output
    # Labels are cached: labelling again costs nothing.
    calls = len(srv.requests)
    assert invoke("label", str(exp.config), "--input", str(new)).exit_code == 0
    assert len(srv.requests) == calls


def test_a_prompt_changed_since_the_evaluation_is_refused(srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    exp.template.write_text(exp.template.read_text() + "\nBe careful.\n", encoding="utf-8")
    result = invoke("label", str(exp.config), "--input", str(new))
    assert result.exit_code == 2
    assert "changed since evaluation run" in result.output
    bad = invoke("label", str(exp.config), "--input", str(new), "--setup", "nope")
    assert bad.exit_code == 2 and "zs@fake" in bad.output


def test_input_errors_name_the_line(srv, experiment, tmp_path):
    exp, _ = setup_experiment(srv, experiment, tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\n{"text": "no id"}\n{"id": "a", "text": "y"}\n')
    result = invoke("label", str(exp.config), "--input", str(bad))
    assert result.exit_code == 2
    assert "bad.jsonl:2" in result.output and "bad.jsonl:3" in result.output


def ev(threshold, recalibration=None):
    return Evaluation(
        run_dir=None,
        run_id="r",
        setup="s",
        why="recommended",
        threshold=threshold,
        confidence_kind="raw",
        recalibration=recalibration,
        target_error=0.05,
        delta=0.1,
        source="auto",
    )


def test_route_needs_an_answer_a_confidence_and_the_threshold():
    conf = np.array([0.9, 0.9, np.nan, 0.5])
    answered = np.array([True, False, True, True])
    _, routes = route(conf, answered, ev(0.8))
    assert routes == ["accept", "review", "review", "review"]
    _, none = route(conf, answered, ev(None))
    assert none == ["review"] * 4


def test_route_applies_the_recalibration_fitted_on_the_gold_set():
    # A Platt map that pulls every confidence down below the threshold.
    block = {
        "selected": "platt",
        "methods": [{"method": "platt", "params": {"method": "platt", "a": 1.0, "b": -3.0}}],
    }
    from harness.metrics.recalibration import Recalibrator

    params = Recalibrator(method="platt", a=1.0, b=-3.0).to_json()
    block["methods"][0]["params"] = params
    conf, routes = route(np.array([0.9]), np.array([True]), ev(0.8, block))
    assert conf[0] < 0.5 and routes == ["review"]


def rows(spec):
    return [
        {"item": f"{lab}{k}", "label": lab, "confidence": c, "route": route_}
        for k, (lab, c, route_) in enumerate(spec)
    ]


def test_the_queue_puts_failures_first_then_least_confident_with_classes_taking_turns():
    items = rows(
        [
            ("a", 0.30, "review"),
            ("a", 0.20, "review"),
            ("a", 0.25, "review"),
            ("a", 0.10, "review"),
            ("b", 0.60, "review"),
            (None, None, "review"),
            ("a", 0.99, "accept"),
        ]
    )
    queue = review_queue(items, budget=None, blind_share=0.0, audit_share=0.0, seed=0)
    order = [q["item"] for q in queue]
    # The failed item, then round 1: a's least confident (0.10) and b's only item (0.60),
    # then the rest of a from least to most confident. The rare class b is not last.
    assert order == ["None5", "a3", "b4", "a1", "a2", "a0"]
    assert [q["queue_position"] for q in queue] == list(range(1, 7))
    assert queue[0]["blind"] is True  # nothing to show for a failed item


def test_budget_blind_share_and_audit_sample():
    items = rows([("a", 0.1 * k, "review") for k in range(1, 9)] + [("a", 0.99, "accept")] * 20)
    for k, r in enumerate(items):
        r["item"] = f"i{k}"
    queue = review_queue(items, budget=None, blind_share=0.25, audit_share=0.1, seed=3)
    reviews = [q for q in queue if q["queue_reason"] == "below threshold"]
    audits = [q for q in queue if q["queue_reason"] == "audit of auto-accepted"]
    assert sum(q["blind"] for q in reviews) == 2  # 25% of 8, exactly
    assert len(audits) == 2 and all(q["blind"] for q in audits)
    assert queue[-1]["queue_reason"] == "below threshold"  # audits are spread, not appended
    assert len(review_queue(items, budget=3, blind_share=0, audit_share=0, seed=0)) == 3
    again = review_queue(items, budget=None, blind_share=0.25, audit_share=0.1, seed=3)
    assert [q["item"] for q in again] == [q["item"] for q in queue]  # seeded


def test_more_samples_than_the_evaluation_had_is_refused(srv, experiment, tmp_path):
    srv.responder = confident_labeler
    exp = experiment(
        srv,
        model={"confidence": "auto", "structured_output": "off", "params": {"temperature": 0.7}},
        extra={"report": {"bootstrap": 200, "seed": 0, "target_error": 0.4, "delta": 0.1}},
    )
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    exp.rewrite(samples=3)  # the confidence would become self-consistency
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps(NEW[0]) + "\n")
    result = invoke("label", str(exp.config), "--input", str(new), "--setup", "zs@fake")
    assert result.exit_code == 2 and "run.samples" in result.output


def test_one_new_item_does_not_crash_the_pool_estimate(srv, experiment, tmp_path):
    exp, _ = setup_experiment(srv, experiment, tmp_path)
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(NEW[0]) + "\n")
    result = invoke("label", str(exp.config), "--input", str(one))
    assert result.exit_code == 0, result.output
    assert "LLM alone says" in result.output


def test_the_latest_evaluation_is_of_this_experiment_only(tmp_path):
    from harness.deploy.routing import latest_evaluation

    for run_id, name in (
        ("20260101-000000-sent-aaaa", "sent"),
        ("20260102-000000-sent-v2-bbbb", "sent-v2"),
    ):
        d = tmp_path / run_id
        d.mkdir()
        (d / "manifest.json").write_text(
            json.dumps({"status": "complete", "config": {"name": name}})
        )
        (d / "metrics.json").write_text("{}")
    assert latest_evaluation(tmp_path, "sent").name == "20260101-000000-sent-aaaa"
