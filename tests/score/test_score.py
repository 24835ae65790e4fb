"""The scoring station: records + gold sets -> metrics.json, checked against hand counts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import bare_manifest

from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.report.markdown import render_markdown
from harness.score.metrics_json import score_run

LABELS = ["pos", "neg", "neu"]
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "harness/schemas/metrics.schema.json").read_text()
)


def gold_set() -> GoldSet:
    # 6 items, 3 annotators. Reference by majority: pos, pos, neg, neg, neu, and item 6 is a
    # three-way tie broken by its adjudicated gold label "neu".
    rows = [
        ("i1", ("pos", "pos", "pos"), None),
        ("i2", ("pos", "pos", "neu"), None),
        ("i3", ("neg", "neg", "neg"), None),
        ("i4", ("neg", "neu", "neg"), None),
        ("i5", ("neu", "neu", "pos"), None),
        ("i6", ("pos", "neg", "neu"), "neu"),
    ]
    items = tuple(
        GoldItem(
            id=i,
            fields={"text": i},
            annotations=dict(zip("abc", labs, strict=True)),
            gold=g,
            line=n + 1,
        )
        for n, (i, labs, g) in enumerate(rows)
    )
    return GoldSet(
        id="g", path="g.jsonl", items=items, annotators=("a", "b", "c"), content_hash="0" * 64
    )


def rec(setup: str, item: str, label: str | None, **kw) -> LabelRecord:
    return LabelRecord(
        setup=setup,
        gold_set="g",
        item=item,
        label=label,
        failure=None if label else "no_label_found",
        **kw,
    )


def scored(records: list[LabelRecord], setups: list[Setup]) -> dict:
    metrics = score_run([gold_set()], setups, records, LABELS, n_boot=200, seed=1)
    metrics.update(run_id="r", experiment="e")
    return metrics


def test_accuracy_coverage_and_failures_against_hand_counts() -> None:
    setup = Setup("p@m", "p", "m")
    # Predictions: i1 pos (right), i2 neg (wrong), i3 neg (right), i4 failed, i5 neu (right),
    # i6 neu (right: the tie is broken by gold).
    records = [
        rec("p@m", "i1", "pos", confidence=0.9, confidence_source="logprobs"),
        rec("p@m", "i2", "neg", confidence=0.8, confidence_source="logprobs"),
        rec("p@m", "i3", "neg", confidence=0.7, confidence_source="logprobs"),
        rec("p@m", "i4", None),
        rec("p@m", "i5", "neu", confidence=0.6, confidence_source="logprobs"),
        rec("p@m", "i6", "neu", confidence=0.5, confidence_source="logprobs"),
    ]
    m = scored(records, [setup])
    jsonschema.validate(m, SCHEMA)
    b = m["gold_sets"][0]["setups"][0]
    assert b["coverage"] == {"value": pytest.approx(5 / 6), "answered": 5, "n": 6}
    assert b["accuracy"]["estimate"] == pytest.approx(4 / 6)  # failure counts as wrong
    assert b["accuracy"]["n"] == 6
    assert b["accuracy_answered"]["estimate"] == pytest.approx(4 / 5)
    assert b["accuracy_answered"]["n"] == 5
    assert b["accuracy"]["low"] <= b["accuracy"]["estimate"] <= b["accuracy"]["high"]
    assert b["failures"] == {"no_label_found": 1}
    # Confusion rows = reference (pos: i1 i2, neg: i3 i4, neu: i5 i6), last column = failed.
    assert b["confusion"]["matrix"] == [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 2, 0]]
    cal = b["calibration"]
    assert cal["n"] == 5 and cal["sources"] == {"logprobs": 5}
    assert cal["mean_confidence"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.6 + 0.5) / 5)
    # Brier on correctness: (0.9-1)^2 + (0.8-0)^2 + (0.7-1)^2 + (0.6-1)^2 + (0.5-1)^2, / 5
    assert cal["brier"] == pytest.approx((0.01 + 0.64 + 0.09 + 0.16 + 0.25) / 5)
    ece_mass = cal["ece_equal_mass_interval"]
    assert ece_mass["estimate"] == cal["ece_equal_mass"] and ece_mass["n"] == 5
    assert 0 <= ece_mass["low"] <= ece_mass["high"] <= 1


def test_reference_ties_baseline_and_human_block() -> None:
    m = scored([], [Setup("p@m", "p", "m")])
    gs = m["gold_sets"][0]
    humans = gs["humans"]
    assert humans["reference"]["n_no_majority"] == 1
    assert humans["reference_distribution"] == {"pos": 2, "neg": 2, "neu": 2}
    assert humans["label_distribution"] == {"pos": 7, "neg": 6, "neu": 5}
    assert humans["fleiss_kappa"]["value"] is not None  # complete design: 3 ratings each
    assert len(humans["pairwise_kappa"]) == 3
    # Baseline: ties between equally frequent labels go to the first label.
    assert gs["baseline"]["label"] == "pos"
    assert gs["baseline"]["accuracy"]["estimate"] == pytest.approx(2 / 6)
    # A setup with no records at all: every item is a failure, never silently dropped.
    b = gs["setups"][0]
    assert b["coverage"]["answered"] == 0 and b["accuracy"]["estimate"] == 0.0
    assert b["failures"] == {"not_run": 6}


def test_self_consistency_mode_and_confidence_with_samples() -> None:
    setup = Setup("p@m", "p", "m")
    records = [rec("p@m", "i1", lab, sample=s) for s, lab in enumerate(["pos", "neg", "pos"])]
    b = scored(records, [setup])["gold_sets"][0]["setups"][0]
    assert b["samples_per_item"] == 3
    assert b["confusion"]["matrix"][0][0] == 1  # mode "pos" on i1
    assert b["calibration"] is None  # one item with a confidence is not enough
    m = score_run(
        [gold_set()],
        [setup],
        records + [rec("p@m", "i3", lab, sample=s) for s, lab in enumerate(["neg", "neg", "neu"])],
        LABELS,
        n_boot=200,
    )
    cal = m["gold_sets"][0]["setups"][0]["calibration"]
    assert cal["sources"] == {"self_consistency": 2}
    assert cal["mean_confidence"] == pytest.approx(2 / 3)


def test_leaderboard_sorted_by_kappa_and_markdown_shows_n() -> None:
    good, bad = Setup("good@m", "good", "m"), Setup("bad@m", "bad", "m")
    truth = {"i1": "pos", "i2": "pos", "i3": "neg", "i4": "neg", "i5": "neu", "i6": "neu"}
    records = [rec("good@m", i, lab) for i, lab in truth.items()]
    records += [rec("bad@m", i, "pos") for i in truth]
    m = scored(records, [bad, good])
    assert [r["setup"] for r in m["leaderboard"]] == ["good@m", "bad@m"]
    assert m["leaderboard"][0]["kappa"] == pytest.approx(1.0)
    manifest = bare_manifest()
    text = render_markdown(manifest, m)
    assert "| 1 | `good@m` | 6 | 1.000" in text
    assert "majority-class baseline" in text
    assert "(n=6)" in text


def test_failures_lower_the_mean_kappa_against_annotators() -> None:
    # Both setups copy annotator a exactly; one fails on i4. Dropping the failure would
    # leave its kappa against a at 1.0, as if failing on a hard item cost nothing.
    a_labels = {item.id: item.annotations["a"] for item in gold_set().items}
    full, failing = Setup("full@m", "full", "m"), Setup("failing@m", "failing", "m")
    records = [rec("full@m", i, lab) for i, lab in a_labels.items()]
    records += [rec("failing@m", i, None if i == "i4" else lab) for i, lab in a_labels.items()]
    blocks = {b["setup"]: b for b in scored(records, [full, failing])["gold_sets"][0]["setups"]}
    assert blocks["full@m"]["mean_kappa_vs_annotators"]["n_annotators"] == 3
    assert (
        blocks["failing@m"]["mean_kappa_vs_annotators"]["value"]
        < blocks["full@m"]["mean_kappa_vs_annotators"]["value"]
    )


def test_comparisons_say_when_setups_cannot_be_told_apart() -> None:
    truth = {"i1": "pos", "i2": "pos", "i3": "neg", "i4": "neg", "i5": "neu", "i6": "neu"}
    a, b = Setup("a@m", "a", "m"), Setup("b@m", "b", "m")
    records = [rec("a@m", i, lab) for i, lab in truth.items()]
    records += [rec("b@m", i, "pos" if i == "i3" else lab) for i, lab in truth.items()]
    (row,) = scored(records, [a, b])["gold_sets"][0]["comparisons"]
    assert (row["a"], row["b"], row["n"]) == ("a@m", "b@m", 6)
    assert row["mcnemar"]["a_only_right"] == 1 and row["mcnemar"]["b_only_right"] == 0
    assert row["mcnemar"]["p_value"] == 1.0  # one discordant item: binomial p = 1
    assert row["accuracy_difference"]["estimate"] == pytest.approx(1 / 6, abs=1e-6)
    assert row["verdict"] == "cannot be told apart on this gold set"


def test_auto_accept_threshold_from_learn_then_test() -> None:
    # 60 right answers at confidence 0.95 and 20 wrong ones at 0.3: accepting only the
    # confident ones has 0 errors in 60, binomial p = 0.95^60 = 0.046 <= delta 0.1; adding
    # the wrong ones fails. So the threshold is 0.95 and 60 of 80 are auto-accepted.
    items = tuple(
        GoldItem(id=f"i{i}", fields={}, annotations={"a": "pos", "b": "pos"}, line=i)
        for i in range(80)
    )
    gold = GoldSet("g", "g.jsonl", items, ("a", "b"), "0" * 64)
    records = [
        LabelRecord(
            setup="s@m",
            gold_set="g",
            item=f"i{i}",
            label="pos" if i < 60 else "neg",
            confidence=0.95 if i < 60 else 0.3,
            confidence_source="logprobs",
        )
        for i in range(80)
    ]
    metrics = score_run(
        [gold], [Setup("s@m", "s", "m")], records, LABELS, n_boot=200, target_error=0.05, delta=0.1
    )
    sel = metrics["gold_sets"][0]["setups"][0]["selective"]
    assert sel["threshold"] == 0.95
    assert (sel["auto_accepted"], sel["errors_among_accepted"]) == (60, 0)
    assert sel["auto_accept_share"] == pytest.approx(0.75)
    assert sel["cross_fit"]["fit_n"] + sel["cross_fit"]["check_n"] == 80


def test_slices_by_meta_and_the_direction_of_disagreement() -> None:
    # 10 items, meta domain: 6 "books" (all right) and 4 "toys" (all answered "pos", wrong).
    items = tuple(
        GoldItem(
            id=f"i{i}",
            fields={},
            annotations={"a": "neg", "b": "neg"},
            meta={"domain": "books" if i < 6 else "toys"},
            line=i,
        )
        for i in range(10)
    )
    gold = GoldSet("g", "g.jsonl", items, ("a", "b"), "0" * 64)
    records = [rec("s@m", f"i{i}", "neg" if i < 6 else "pos") for i in range(10)]
    block = score_run([gold], [Setup("s@m", "s", "m")], records, LABELS, n_boot=200)["gold_sets"][
        0
    ]["setups"][0]
    books, toys = block["slices"]["domain"]
    assert (books["value"], books["n"], books["accuracy"]["estimate"]) == ("books", 6, 1.0)
    assert (toys["value"], toys["n"]) == ("toys", 4) and "accuracy" not in toys  # n < 5
    bias = {x["label"]: x for x in block["label_bias"]}
    assert bias["pos"]["excess"] == 4 and bias["neg"]["excess"] == -4
    assert bias["pos"]["excess_share"] == pytest.approx(0.4)


def test_one_sample_fast_path_equals_the_general_mode_and_sources():
    """ItemPredictions takes a shortcut for items with one sample; it must give what the
    general per-item code gives, for every shape of record a run or a replay writes."""
    import itertools

    from harness.score.predictions import _item_sources, _single_sources

    labels = ["positive", "negative", "neutral"]
    shapes = itertools.product(
        ["positive", "other", None],  # label: allowed, not allowed, none
        [None, 0.7],  # confidence
        [None, {}, {"logprobs": 0.7}, {"verbalized": 0.9, "logprobs": 0.6}, {"replay": 0.3}],
        [None, "logprobs", "verbalized"],  # confidence_source
        [None, {"positive": 0.65, "negative": 0.2}, {"negative": 0.5}],  # label_probs
    )
    for label, conf, confs, source, probs in shapes:
        r = LabelRecord(
            setup="s", gold_set="g", item="i", label=label, confidence=conf,
            confidences=confs, confidence_source=source, label_probs=probs,
        )  # fmt: skip
        if label not in labels:
            continue
        assert _single_sources(r) == _item_sources([r], label), (conf, confs, source, probs)
