"""`report.reference: majority | dawid_skene` through the scorer: both references reported,
where they differ, the one chosen is the one every setup is scored against; each annotator's
and each setup's estimated accuracy (score/reference.py, statistics.md section 6)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import bare_manifest

from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.score.json_numbers import finite_tree
from harness.score.metrics_json import score_run
from harness.score.reference import ALONE

LABELS = ["yes", "no"]
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "harness/schemas/metrics.schema.json").read_text()
)


def _gold(ratings: np.ndarray, names: str) -> GoldSet:
    items = tuple(
        GoldItem(
            id=f"i{i:02d}",
            fields={"text": str(i)},
            annotations={a: LABELS[c] for a, c in zip(names, row, strict=True) if c >= 0},
            line=i + 1,
        )
        for i, row in enumerate(ratings)
    )
    return GoldSet(
        id="g", path="g.jsonl", items=items, annotators=tuple(names), content_hash="0" * 64
    )


def careless_crowd(n: int = 80, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Two careful annotators (a, b: 95% right) outvoted now and then by three careless
    ones (c, d, e: coin flips)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    good = np.where(rng.random((n, 2)) < 0.95, truth[:, None], 1 - truth[:, None])
    return truth, np.column_stack([good, rng.integers(0, 2, (n, 3))])


def _records(setup: str, labels: list[int | None]) -> list[LabelRecord]:
    return [
        LabelRecord(
            setup=setup,
            gold_set="g",
            item=f"i{i:02d}",
            label=None if c is None else LABELS[c],
            failure="timeout" if c is None else None,
        )
        for i, c in enumerate(labels)
    ]


def _score(gold: GoldSet, records: list[LabelRecord], setups: list[Setup], reference: str):
    metrics = score_run([gold], setups, records, LABELS, n_boot=200, seed=0, reference=reference)
    metrics.update(run_id="r", experiment="e")
    return metrics


def test_dawid_skene_reference_outweighs_careless_annotators_and_is_scored_against():
    truth, ratings = careless_crowd()
    gold = _gold(ratings, "abcde")
    setups = [Setup("truth", "p", "m"), Setup("flaky", "p", "m")]
    flaky = [int(c) if i % 4 else None for i, c in enumerate(truth)]  # every 4th item fails
    records = _records("truth", [int(c) for c in truth]) + _records("flaky", flaky)
    by_ref = {ref: _score(gold, records, setups, ref) for ref in ("majority", "dawid_skene")}
    for ref, metrics in by_ref.items():
        jsonschema.validate(metrics, SCHEMA)
        assert finite_tree(metrics) == []
        humans = metrics["gold_sets"][0]["humans"]
        block = humans["dawid_skene"]
        assert block["reference_used"] == humans["reference"]["used"] == ref
        assert block["majority_rule"] == "majority"
        # Majority vote follows the careless three where they agree; Dawid-Skene does not.
        assert block["n_changed"] > 0 and len(block["changed_examples"]) == min(
            5, block["n_changed"]
        )
        example = block["changed_examples"][0]
        i = int(example["item"][1:])
        assert example["dawid_skene"] == LABELS[truth[i]] != example["majority"]
        acc = {r["annotator"]: r["accuracy"] for r in block["annotators"]}
        assert min(acc["a"]["estimate"], acc["b"]["estimate"]) > 0.85
        assert max(acc[x]["estimate"] for x in "cde") < 0.65
        for a in acc.values():
            assert a["low"] <= a["estimate"] <= a["high"] and a["n"] == len(truth)
    changed = by_ref["majority"]["gold_sets"][0]["humans"]["dawid_skene"]["n_changed"]
    majority, dawid = (by_ref[r]["gold_sets"][0]["setups"][0] for r in ("majority", "dawid_skene"))
    # The reference every setup is scored against is the chosen one: a setup that answers
    # the truth gains against Dawid-Skene's, by at most the items whose reference changed.
    gain = dawid["accuracy"]["estimate"] - majority["accuracy"]["estimate"]
    assert 0 < gain * len(truth) <= changed + 1e-6


def test_the_llm_is_one_more_annotator_with_its_failures_missing():
    truth, ratings = careless_crowd()
    gold = _gold(ratings, "abcde")
    flaky = [int(c) if i % 4 else None for i, c in enumerate(truth)]
    coin = [int(c) for c in np.random.default_rng(9).integers(0, 2, len(truth))]
    setups = [Setup("flaky", "p", "m"), Setup("coin", "p", "m")]
    metrics = _score(gold, _records("flaky", flaky) + _records("coin", coin), setups, "majority")
    flaky_block, coin_block = metrics["gold_sets"][0]["setups"]
    acc = flaky_block["dawid_skene"]["accuracy"]
    assert acc["n"] == sum(c is not None for c in flaky)  # failed answers are missing
    assert acc["low"] <= acc["estimate"] <= acc["high"] and acc["estimate"] > 0.9
    assert coin_block["dawid_skene"]["accuracy"]["estimate"] < 0.7
    assert flaky_block["dawid_skene"]["model"]["converged"]


def test_the_report_shows_each_raters_estimated_accuracy_with_interval_and_n():
    truth, ratings = careless_crowd()
    records = _records("flaky", [int(c) if i % 4 else None for i, c in enumerate(truth)])
    metrics = _score(_gold(ratings, "abcde"), records, [Setup("flaky", "p", "m")], "dawid_skene")
    manifest = bare_manifest()
    block = metrics["gold_sets"][0]["humans"]["dawid_skene"]
    a = block["annotators"][0]["accuracy"]
    llm = metrics["gold_sets"][0]["setups"][0]["dawid_skene"]["accuracy"]
    text = render_markdown(manifest, metrics)
    assert "scored against the **dawid_skene** reference" in text
    assert f"differ on {block['n_changed']} of 80 items" in text
    assert f"| a | 80 | {a['estimate']:.3f} [{a['low']:.3f}, {a['high']:.3f}] |" in text
    assert f"| LLM `flaky` | 60 | {llm['estimate']:.3f} [{llm['low']:.3f}," in text
    html = render_html(manifest, metrics)
    assert "Dawid-Skene reference" in html and "LLM <code>flaky</code>" in html
    assert f'<span class="est">{a["estimate"]:.3f}</span>' in html


def test_every_failed_answer_leaves_the_llm_without_an_estimate():
    _, ratings = careless_crowd(n=20)
    metrics = _score(
        _gold(ratings, "abcde"),
        _records("dead", [None] * 20),
        [Setup("dead", "p", "m")],
        "majority",
    )
    acc = metrics["gold_sets"][0]["setups"][0]["dawid_skene"]["accuracy"]
    assert acc["estimate"] is None and acc["n"] == 0 and acc["note"]


@pytest.mark.parametrize(
    "ratings, names",
    [
        (np.array([[0], [1], [1]]), "a"),  # one annotator: nothing to check them against
        (np.array([[0, 0], [0, 0], [0, 0]]), "ab"),  # one class used, everyone agreeing
        (np.array([[1, 0, -1]]), "abc"),  # one item, a tie
        (np.array([[0, -1], [-1, 1]]), "ab"),  # no item shared
    ],
)
def test_degenerate_gold_sets_give_finite_numbers_or_nulls_with_reasons(ratings, names):
    n = len(ratings)
    records = _records("s", [0] * n)
    metrics = _score(_gold(ratings, names), records, [Setup("s", "p", "m")], "dawid_skene")
    jsonschema.validate(metrics, SCHEMA)
    assert finite_tree(metrics) == []
    block = metrics["gold_sets"][0]["humans"]["dawid_skene"]
    for row in block["annotators"]:
        acc = row["accuracy"]
        assert (acc["estimate"] is None) == bool(acc.get("note"))
    if ratings.shape[1] == 1 or (ratings >= 0).sum(axis=1).max() == 1:
        assert all(r["accuracy"]["note"] == ALONE for r in block["annotators"])


def test_an_unknown_reference_is_refused():
    _, ratings = careless_crowd(n=5)
    with pytest.raises(ValueError, match="reference"):
        _score(_gold(ratings, "abcde"), [], [], "median")


@pytest.mark.parametrize(
    "task,labels",
    [
        ({"type": "ordinal", "labels": ["1", "2", "3", "4"]}, ["1", "2", "3", "4"]),
        ({"type": "pairwise"}, ["A", "B", "tie"]),
    ],
)
def test_dawid_skene_reference_on_ordinal_and_pairwise_gold_sets(task, labels):
    """The task rule (the median of an ordered scale; the pairwise vote with its ties) is
    the majority reference; Dawid-Skene outweighs three careless annotators there too, and
    a setup answering the truth is scored against the reference chosen."""
    from harness.config.task import TaskConfig

    rng = np.random.default_rng(11)
    n, k = 90, len(labels)
    truth = rng.integers(0, k, n)
    good = np.where(rng.random((n, 2)) < 0.95, truth[:, None], (truth[:, None] + 1) % k)
    ratings = np.column_stack([good, rng.integers(0, k, (n, 3))])
    items = tuple(
        GoldItem(
            id=f"i{i:02d}",
            fields={"text": str(i), "response_a": "x", "response_b": "y"},
            annotations={a: labels[c] for a, c in zip("abcde", row, strict=True)},
            line=i + 1,
        )
        for i, row in enumerate(ratings)
    )
    gold = GoldSet(
        id="g", path="g.jsonl", items=items, annotators=tuple("abcde"), content_hash="0" * 64
    )
    setups = [Setup("truth", "p", "m")]
    records = [
        LabelRecord(setup="truth", gold_set="g", item=f"i{i:02d}", label=labels[c])
        for i, c in enumerate(truth)
    ]
    scored = {}
    for ref in ("majority", "dawid_skene"):
        metrics = score_run(
            [gold], setups, records, labels, n_boot=100, task=TaskConfig(**task), reference=ref
        )
        metrics.update(run_id="r", experiment="e")
        jsonschema.validate(metrics, SCHEMA)
        assert finite_tree(metrics) == []
        scored[ref] = metrics["gold_sets"][0]
    block = scored["dawid_skene"]["humans"]["dawid_skene"]
    assert block["reference_used"] == "dawid_skene" and block["n_changed"] > 0
    acc = {r["annotator"]: r["accuracy"]["estimate"] for r in block["annotators"]}
    assert min(acc["a"], acc["b"]) > 0.85 > 0.6 > max(acc[x] for x in "cde")
    against = {r: scored[r]["setups"][0]["accuracy"]["estimate"] for r in scored}
    assert against["dawid_skene"] > against["majority"]
    assert against["dawid_skene"] > 0.9
