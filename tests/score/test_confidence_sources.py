"""Confidence sources per setup: every source a reply supports is kept, the configured one
feeds calibration and auto-accept, and all of them are scored head to head."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import GOLD, LABELS, Reply, last_user_text, majority, read_labels, rule_label

from harness import metrics as m
from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.metrics.selective import risk_coverage
from harness.report.deploy_md import confidence_sources_md
from harness.run.pipeline import run_experiment
from harness.score.confidence import confidence_sources_block
from harness.score.metrics_json import score_run
from harness.score.predictions import CodedGoldSet, ItemPredictions

TASK_LABELS = ["pos", "neg", "neu"]
BOOT = {"n_boot": 200, "seed": 3, "level": 0.95}
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "harness/schemas/metrics.schema.json").read_text()
)


def gold(references: list[str], labels_name: str = "g") -> GoldSet:
    """One item per reference label, which both annotators gave."""
    items = tuple(
        GoldItem(id=f"i{i}", fields={}, annotations={"a": lab, "b": lab}, line=i + 1)
        for i, lab in enumerate(references)
    )
    return GoldSet(labels_name, "g.jsonl", items, ("a", "b"), "0" * 64)


def sample(item: str, label: str | None, n: int = 0, **kw) -> LabelRecord:
    """A record as runner.to_record writes it: the auto choice plus every source."""
    conf = kw.pop("confidences", None)
    if conf and "confidence" not in kw:
        kw["confidence_source"] = "logprobs" if "logprobs" in conf else "verbalized"
        kw["confidence"] = conf[kw["confidence_source"]]
    return LabelRecord(
        setup="s",
        gold_set="g",
        item=item,
        sample=n,
        label=label,
        failure=None if label else "no_label_found",
        confidences=conf,
        **kw,
    )


def preds_of(references, records, source="auto", labels=TASK_LABELS, task="classification"):
    return ItemPredictions(CodedGoldSet(gold(references), labels, task), records, source=source)


# --------------------------------------------------------------------------- ItemPredictions


def test_one_sample_keeps_every_source_and_the_requested_one_is_selected() -> None:
    records = [
        sample("i0", "pos", confidences={"logprobs": 0.9, "verbalized": 0.6}),
        sample("i1", "neg", confidences={"logprobs": 0.7}),  # no number in the reply
        sample("i2", "neu", confidences={"verbalized": 0.4}),  # no log-probs
        sample("i3", None),
    ]
    auto = preds_of(["pos", "neg", "neu", "pos"], records)
    assert list(auto.by_source) == ["logprobs", "verbalized"]
    np.testing.assert_allclose(auto.by_source["logprobs"], [0.9, 0.7, np.nan, np.nan])
    np.testing.assert_allclose(auto.by_source["verbalized"], [0.6, np.nan, 0.4, np.nan])
    # auto: the record's own choice, log-probs before verbalized (as before this feature)
    np.testing.assert_allclose(auto.confidence, [0.9, 0.7, 0.4, np.nan])
    assert auto.sources == {"logprobs": 2, "verbalized": 1}

    verbalized = preds_of(["pos", "neg", "neu", "pos"], records, source="verbalized")
    # i1 has log-probs only: it gets no confidence, never the log-prob in its place
    np.testing.assert_allclose(verbalized.confidence, [0.6, np.nan, 0.4, np.nan])
    assert verbalized.sources == {"verbalized": 2}
    assert verbalized.pred.tolist() == auto.pred.tolist() == [0, 1, 2, -1]

    logprobs = preds_of(["pos", "neg", "neu", "pos"], records, source="logprobs")
    np.testing.assert_allclose(logprobs.confidence, [0.9, 0.7, np.nan, np.nan])
    # no item has several samples: self-consistency is not available, so all NaN
    sc = preds_of(["pos", "neg", "neu", "pos"], records, source="self_consistency")
    assert "self_consistency" not in sc.by_source
    assert np.isnan(sc.confidence).all() and sc.sources == {}


@pytest.mark.parametrize("seed", range(4))
def test_one_pass_for_single_samples_equals_the_general_path(seed) -> None:
    """Most runs have one record per item: ItemPredictions reads them in one pass. Whatever
    the records hold (legacy records without `confidences`, label distributions with and
    without the label, failures, labels outside the task, items not in the gold set), that
    pass must give what the general per-item path gives."""

    from collections import defaultdict

    rng = np.random.default_rng(seed)
    n = 60
    refs = [TASK_LABELS[j] for j in rng.integers(0, 3, n)]
    records = []
    for i in rng.permutation(n + 5):  # 5 records of items the gold set does not have
        kind = rng.integers(0, 7)
        label = TASK_LABELS[rng.integers(0, 3)]
        c = float(rng.uniform(0.3, 1))
        if kind == 0:
            records.append(sample(f"i{i}", None))
        elif kind == 1:
            records.append(sample(f"i{i}", "maybe"))  # not a task label
        elif kind == 2:  # written before `confidences` existed
            records.append(sample(f"i{i}", label, confidence=c, confidence_source="verbalized"))
        elif kind == 3:
            conf = {"logprobs": c}
            # normalised over the task's labels: not the raw log-prob confidence
            p = 0.9 * c + 0.05
            probs = {x: (p if x == label else (1 - p) / 2) for x in TASK_LABELS}
            records.append(sample(f"i{i}", label, confidences=conf, label_probs=probs))
        elif kind == 4:  # a distribution without the chosen label
            probs = {"pos": 0.5, "neg": 0.5} if label == "neu" else None
            conf = {"logprobs": c, "verbalized": 0.8}
            records.append(sample(f"i{i}", label, confidences=conf, label_probs=probs))
        elif kind == 5:
            records.append(sample(f"i{i}", label))  # no confidence at all
        else:
            records.append(sample(f"i{i}", label, confidences={"verbalized": c}))
    coded = CodedGoldSet(gold(refs), TASK_LABELS)
    fast = ItemPredictions(coded, records)
    by_item = defaultdict(list)
    for r in records:
        if r.item in coded.index:
            by_item[coded.index[r.item]].append(r)
    pred, table, auto_from = fast._modes(coded, by_item, swapped=False)
    assert fast.pred.tolist() == pred.tolist()
    assert set(fast.by_source) == {k for k in table if k != "auto" and not np.isnan(table[k]).all()}
    for name, values in fast.by_source.items():
        np.testing.assert_array_equal(values, table[name])
    np.testing.assert_array_equal(fast.confidence, table["auto"])
    assert fast.sources == {k: auto_from.count(k) for k in set(auto_from) - {None}}
    assert fast.samples == 1 and len(fast.records) == n
    assert sum(fast.failures.values()) == int((pred < 0).sum())


def test_several_samples_logprobs_of_the_mode_verbalized_of_its_voters_and_agreement() -> None:
    probs = [
        {"pos": 0.8, "neg": 0.1, "neu": 0.1},
        {"pos": 0.6, "neg": 0.3, "neu": 0.1},
        {"pos": 0.3, "neg": 0.6, "neu": 0.1},  # chose neg, still says P(pos) = 0.3
    ]
    labels = ["pos", "pos", "neg"]
    verbal = [0.9, 0.7, 0.95]
    records = [
        sample(
            "i0",
            lab,
            n,
            confidences={"logprobs": p[lab], "verbalized": v},
            label_probs=p,
        )
        for n, (lab, p, v) in enumerate(zip(labels, probs, verbal, strict=True))
    ]
    records.append(sample("i0", None, 3))  # a failed sample still counts as not agreeing
    for source in ("auto", "logprobs", "verbalized", "self_consistency"):
        preds = preds_of(["pos"], records, source=source)
        assert preds.pred.tolist() == [0] and preds.samples == 4
        assert list(preds.by_source) == ["logprobs", "verbalized", "self_consistency"]
        assert preds.by_source["logprobs"][0] == pytest.approx((0.8 + 0.6 + 0.3) / 3)
        assert preds.by_source["verbalized"][0] == pytest.approx((0.9 + 0.7) / 2)  # not 0.95
        assert preds.by_source["self_consistency"][0] == pytest.approx(2 / 4)
        expected = "self_consistency" if source == "auto" else source
        assert preds.confidence[0] == preds.by_source[expected][0]
        assert preds.sources == {expected: 1}


def test_records_without_confidences_and_replayed_labels_keep_their_single_source() -> None:
    records = [
        # written before `confidences` existed: only the auto choice
        LabelRecord(
            setup="s", gold_set="g", item="i0", label="pos", confidence=0.8,
            confidence_source="logprobs",
        ),
        LabelRecord(
            setup="s", gold_set="g", item="i1", label="neg", confidence=0.7,
            confidence_source="replay", cached=True,
        ),
    ]  # fmt: skip
    preds = preds_of(["pos", "neg"], records)
    assert list(preds.by_source) == ["logprobs", "replay"]
    np.testing.assert_allclose(preds.by_source["logprobs"], [0.8, np.nan])
    np.testing.assert_allclose(preds.by_source["replay"], [np.nan, 0.7])
    np.testing.assert_allclose(preds.confidence, [0.8, 0.7])


def test_a_record_whose_confidence_was_cleared_carries_no_source() -> None:
    # The parts of a structured label are copies with `confidence` cleared: the whole label's
    # verbalized number must not turn into a confidence for each part.
    cleared = sample("i0", "pos", confidences={"verbalized": 0.9}, confidence=None)
    preds = preds_of(["pos"], [cleared], source="verbalized")
    assert preds.by_source == {} and np.isnan(preds.confidence).all()


def test_pairwise_orders_average_per_source_and_a_conflict_has_no_confidence() -> None:
    def verdict(item, label, swapped, lp, vb):
        return sample(item, label, swapped=swapped, confidences={"logprobs": lp, "verbalized": vb})

    records = [
        verdict("i0", "A", False, 0.9, 0.8),
        verdict("i0", "A", True, 0.7, 0.6),  # same verdict in both orders
        verdict("i1", "A", False, 0.9, 0.9),
        verdict("i1", "B", True, 0.8, 0.7),  # conflict: a tie neither order chose
        sample("i2", "B", confidences={"logprobs": 0.6}),  # verbalized in neither order
        sample("i2", "B", swapped=True, confidences={"logprobs": 0.8, "verbalized": 0.5}),
    ]
    for source in ("logprobs", "verbalized"):
        preds = preds_of(["A", "tie", "B"], records, source, ["A", "B", "tie"], "pairwise")
        assert preds.pred.tolist() == [0, 2, 1]
        np.testing.assert_allclose(preds.by_source["logprobs"], [0.8, np.nan, 0.7])
        np.testing.assert_allclose(preds.by_source["verbalized"], [0.7, np.nan, np.nan])
        np.testing.assert_array_equal(preds.confidence, preds.by_source[source])


# --------------------------------------------------------------------------- the block


def twelve_items() -> tuple[list[str], list[LabelRecord]]:
    """12 items, 9 labelled right. Log-probs on 11, verbalized on 7 (share 0.58), and the
    last item replayed with a confidence of its own."""
    references = ["pos", "neg", "neu"] * 4
    wrong = {2, 5, 9}
    records = []
    for i, ref in enumerate(references):
        label = ("neu" if ref == "pos" else "pos") if i in wrong else ref
        conf = {"logprobs": 0.55 + 0.03 * i}
        if i < 7:
            conf["verbalized"] = 0.3 if i in wrong else 0.95
        records.append(sample(f"i{i}", label, confidences=conf))
    records[11] = records[11].model_copy(
        update={"confidences": None, "confidence": 0.5, "confidence_source": "replay"}
    )
    return references, records


def direct(preds: ItemPredictions, coded: CodedGoldSet, source: str) -> dict:
    """The statistics of one source computed straight from harness.metrics."""
    conf = preds.by_source[source]
    has = ~np.isnan(conf) & (preds.pred >= 0)
    c, correct = conf[has], (preds.pred[has] == coded.reference[has]).astype(float)
    # Resamples of the gold set's items, each scored on the source's items it drew.
    hit = (preds.pred == coded.reference).astype(float)

    def on_source_items(idx: np.ndarray) -> float:
        kept = idx[has[idx]]
        return m.ece(conf[kept], hit[kept], n_bins=10, strategy="uniform")

    ece_iv = m.bootstrap_items(on_source_items, len(conf), **BOOT)
    return {
        "n": int(has.sum()),
        "ece": ece_iv,
        "ece_equal_mass": m.ece(c, correct, n_bins=10, strategy="quantile"),
        "brier": m.brier_top_label(c, correct),
        "log_loss": m.log_loss_top_label(c, correct),
        "auroc": m.auroc(c, correct),
        "aurc": risk_coverage(c, correct).aurc,
        "accuracy": correct.mean(),
    }


def test_block_values_equal_direct_metric_calls_and_the_best_source() -> None:
    references, records = twelve_items()
    coded = CodedGoldSet(gold(references), TASK_LABELS)
    preds = ItemPredictions(coded, records, source="verbalized")
    block = confidence_sources_block(coded.reference, preds.pred, preds, "verbalized", BOOT)

    assert (block["requested"], block["selected"]) == ("verbalized", "verbalized")
    rows = {r["source"]: r for r in block["sources"]}
    assert list(rows) == ["logprobs", "verbalized", "replay"]
    for source in ("logprobs", "verbalized"):
        want, row = direct(preds, coded, source), rows[source]
        assert row["n"] == want["n"] and row["share"] == pytest.approx(want["n"] / 12, abs=1e-6)
        assert row["ece"]["estimate"] == pytest.approx(want["ece"].estimate, abs=1e-6)
        assert row["ece"]["low"] == pytest.approx(want["ece"].low, abs=1e-6)
        assert row["ece"]["high"] == pytest.approx(want["ece"].high, abs=1e-6)
        assert row["ece"]["n"] == want["n"]
        for key in ("ece_equal_mass", "brier", "log_loss", "auroc", "aurc", "accuracy"):
            assert row[key] == pytest.approx(want[key], abs=1e-6), (source, key)
    assert (rows["logprobs"]["n"], rows["verbalized"]["n"]) == (11, 7)
    assert rows["replay"] == {"source": "replay", "n": 1, "share": pytest.approx(1 / 12, abs=1e-6)}
    # verbalized separates right from wrong here, the spread-out log-probs do not
    assert rows["verbalized"]["ece"]["estimate"] < rows["logprobs"]["ece"]["estimate"]
    assert block["best"] == "verbalized"
    assert "missing on 5 of 12 items" in block["note"]


def test_a_source_on_less_than_half_the_items_is_never_the_best() -> None:
    references, records = twelve_items()
    # verbalized on 5 items only (share 0.42): still lower ECE, but not eligible
    records = [
        r.model_copy(update={"confidences": {"logprobs": r.confidences["logprobs"]}})
        if r.item in ("i5", "i6")
        else r
        for r in records
    ]
    coded = CodedGoldSet(gold(references), TASK_LABELS)
    preds = ItemPredictions(coded, records)
    block = confidence_sources_block(coded.reference, preds.pred, preds, "auto", BOOT)
    rows = {r["source"]: r for r in block["sources"]}
    assert rows["verbalized"]["n"] == 5
    assert rows["verbalized"]["ece"]["estimate"] < rows["logprobs"]["ece"]["estimate"]
    assert block["best"] == "logprobs"
    # auto: the majority of the auto choices, here log-probs on 11 items and replay on 1
    assert block["selected"] == "logprobs"
    assert "auto mixes sources" in block["note"]


def test_a_requested_source_no_item_has_gets_an_empty_row_and_no_best() -> None:
    coded = CodedGoldSet(gold(["pos", "neg"]), TASK_LABELS)
    records = [sample("i0", "pos", confidences={"logprobs": 0.9}), sample("i1", "neg")]
    preds = ItemPredictions(coded, records, source="verbalized")
    block = confidence_sources_block(coded.reference, preds.pred, preds, "verbalized", BOOT)
    assert block["sources"] == [
        {"source": "logprobs", "n": 1, "share": 0.5},
        {"source": "verbalized", "n": 0, "share": 0.0},
    ]
    assert block["selected"] == "verbalized" and block["best"] is None
    lines = confidence_sources_md(block)
    assert any("| verbalized (selected) | 0 |" in line for line in lines)


def test_score_run_feeds_the_selected_source_to_calibration_and_auto_accept() -> None:
    references, records = twelve_items()
    g = gold(references)
    setups = [Setup("s", "p", "m", confidence="verbalized")]
    metrics = score_run([g], setups, records, TASK_LABELS, n_boot=200, seed=3)
    metrics.update(run_id="r", experiment="e")
    jsonschema.validate(metrics, SCHEMA)
    block = metrics["gold_sets"][0]["setups"][0]
    cs = block["confidence_sources"]
    verbalized = next(r for r in cs["sources"] if r["source"] == "verbalized")
    cal = block["calibration"]
    assert cal["sources"] == {"verbalized": 7} and cal["n"] == 7
    assert cal["ece"] == verbalized["ece"]  # the same items, bins and bootstrap
    assert cal["brier"] == verbalized["brier"]
    assert block["selective"] is None  # 7 items with a verbalized confidence are below 10

    auto = score_run([g], [Setup("s", "p", "m")], records, TASK_LABELS, n_boot=200, seed=3)
    auto_block = auto["gold_sets"][0]["setups"][0]
    assert auto_block["calibration"]["sources"] == {"logprobs": 11, "replay": 1}
    assert auto_block["confidence_sources"]["requested"] == "auto"
    assert auto_block["selective"]["n"] == 12


def test_markdown_table_marks_the_selected_source() -> None:
    references, records = twelve_items()
    coded = CodedGoldSet(gold(references), TASK_LABELS)
    preds = ItemPredictions(coded, records, source="verbalized")
    block = confidence_sources_block(coded.reference, preds.pred, preds, "verbalized", BOOT)
    text = "\n".join(confidence_sources_md(block))
    assert "| source | n | share | ECE [interval] | Brier | AUROC | AURC |" in text
    lines = text.splitlines()
    [selected] = [line for line in lines if "(selected)" in line]
    assert selected.startswith("| verbalized (selected) | 7 | 0.58 | ")
    assert "| logprobs | 11 | 0.92 | " in text
    assert "| replay | 1 | 0.08 | – | – | – | – |" in text
    assert "best calibrated by ECE among sources covering half the items or more: verbalized" in (
        text
    )
    assert confidence_sources_md(None) == []


# --------------------------------------------------------------------------- over HTTP

WRONG_BY_RULE = {i for i, text, anns in GOLD if rule_label(text) != majority(anns)}


def test_end_to_end_verbalized_selected_and_logprobs_compared(srv, experiment) -> None:
    """The fake model states a confidence and returns log-probs; the config selects
    verbalized. Right labels get 0.95, wrong ones 0.05, so verbalized calibration is known."""
    text_to_id = {text: i for i, text, _ in GOLD}

    def responder(req, attempt):
        text = last_user_text(req).strip()
        label = rule_label(text)
        stated = 0.05 if text_to_id[text] in WRONG_BY_RULE else 0.95
        head, tail = '{"label": "', f'", "confidence": {stated}}}'
        a, b = (lab for lab in LABELS if lab != label)
        top = [(label, -0.2), (a, -1.9), (b, -3.0)]
        tokens = [(head, -0.01, []), (label, -0.2, top), (tail, -0.01, [])]
        return Reply(content=head + label + tail, logprobs=tokens)

    srv.responder = responder
    exp = experiment(srv, model={"logprobs": True, "top_logprobs": 3, "confidence": "verbalized"})
    result = run_experiment(exp.config, settings_override={"backoff_initial_s": 0.001})

    assert srv.count == len(GOLD)
    p_label = math.exp(-0.2) / (math.exp(-0.2) + math.exp(-1.9) + math.exp(-3.0))
    for rec in read_labels(result.run_dir):
        stated = 0.05 if rec["item"] in WRONG_BY_RULE else 0.95
        assert rec["confidences"] == {
            "logprobs": pytest.approx(p_label),
            "verbalized": pytest.approx(stated),
        }
        assert rec["confidence_source"] == "logprobs"  # the auto choice, unchanged

    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(metrics)
    block = metrics["gold_sets"][0]["setups"][0]
    cs = block["confidence_sources"]
    assert (cs["requested"], cs["selected"]) == ("verbalized", "verbalized")
    rows = {r["source"]: r for r in cs["sources"]}
    assert list(rows) == ["logprobs", "verbalized"]
    assert rows["logprobs"]["n"] == rows["verbalized"]["n"] == len(GOLD)
    assert len(WRONG_BY_RULE) == 3 and rows["verbalized"]["accuracy"] == pytest.approx(0.75)
    # one confidence for every item: ECE = |accuracy - confidence|
    assert rows["logprobs"]["ece"]["estimate"] == pytest.approx(abs(0.75 - p_label), abs=1e-6)
    # 9 right at 0.95 and 3 wrong at 0.05: each bin is off by 0.05
    assert rows["verbalized"]["ece"]["estimate"] == pytest.approx(0.05, abs=1e-6)
    assert rows["verbalized"]["auroc"] == 1.0 and rows["logprobs"]["auroc"] == 0.5
    assert cs["best"] == "verbalized" and cs["note"] is None
    assert block["calibration"]["sources"] == {"verbalized": len(GOLD)}
    assert block["calibration"]["ece"] == rows["verbalized"]["ece"]
    assert block["calibration"]["mean_confidence"] == pytest.approx((9 * 0.95 + 3 * 0.05) / 12)
