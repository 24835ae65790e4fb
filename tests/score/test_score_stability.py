"""Stability and the Alternative Annotator Test as they appear in metrics.json."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
from conftest import bare_manifest

from harness.core.records import (
    GoldItem,
    GoldSet,
    LabelRecord,
    Setup,
)
from harness.metrics.alt_test import alt_test
from harness.report.markdown import render_markdown
from harness.score.metrics_json import score_run
from harness.score.predictions import CodedGoldSet

from .test_score import LABELS, SCHEMA, gold_set, rec


def test_samples_give_intra_prompt_stability_with_hand_counts():
    # Two samples per item; items i1 and i3 flip between them, the others agree.
    first = {"i1": "pos", "i2": "pos", "i3": "neg", "i4": "neg", "i5": "neu", "i6": "neu"}
    second = {**first, "i1": "neg", "i3": "pos"}
    records = [rec("s", i, lab, sample=0) for i, lab in first.items()]
    records += [rec("s", i, lab, sample=1) for i, lab in second.items()]
    m = score_run([gold_set()], [Setup("s", "p", "m")], records, LABELS, n_boot=200)
    jsonschema.validate({**m, "run_id": "r", "experiment": "e"}, SCHEMA)
    st = m["gold_sets"][0]["setups"][0]["stability"]
    assert st["runs"] == 2 and st["n_items"] == 6
    assert st["flip_rate"] == pytest.approx(2 / 6, abs=1e-6)
    assert st["alpha"]["low"] <= st["alpha"]["estimate"] <= st["alpha"]["high"]
    text = render_markdown(bare_manifest(), {**m, "run_id": "r", "experiment": "e"})
    assert "Stability over 2 samples per item (n=6 items)" in text


def test_one_sample_has_no_intra_prompt_block():
    records = [rec("s", f"i{k}", "pos") for k in range(1, 7)]
    m = score_run([gold_set()], [Setup("s", "p", "m")], records, LABELS, n_boot=200)
    assert m["gold_sets"][0]["setups"][0]["stability"] is None


def test_paraphrase_groups_give_inter_prompt_stability():
    a = {"i1": "pos", "i2": "pos", "i3": "neg", "i4": "neg", "i5": "neu", "i6": "neu"}
    b = {**a, "i2": "neu"}  # one flip; accuracy 6/6 vs 5/6 against the reference
    other = dict.fromkeys(a, "pos")
    records = [rec("pa@m", i, x) for i, x in a.items()] + [rec("pb@m", i, x) for i, x in b.items()]
    records += [rec("solo@m", i, x) for i, x in other.items()]
    setups = [Setup("pa@m", "pa", "m"), Setup("pb@m", "pb", "m"), Setup("solo@m", "solo", "m")]
    m = score_run(
        [gold_set()],
        setups,
        records,
        LABELS,
        n_boot=200,
        prompt_groups={"pa": "para", "pb": "para"},
    )
    jsonschema.validate({**m, "run_id": "r", "experiment": "e"}, SCHEMA)
    [block] = m["gold_sets"][0]["prompt_stability"]
    assert block["group"] == "para" and block["setups"] == ["pa@m", "pb@m"]
    assert block["flip_rate"] == pytest.approx(1 / 6, abs=1e-6)
    accs = {x["setup"]: x["accuracy"] for x in block["accuracy"]}
    assert accs == {"pa@m": pytest.approx(1.0), "pb@m": pytest.approx(5 / 6, abs=1e-6)}
    assert block["accuracy_range"] == pytest.approx(1 / 6, abs=1e-6)


def test_the_alt_test_is_refused_with_a_reason_on_a_small_gold_set():
    records = [rec("s", f"i{k}", "pos") for k in range(1, 7)]
    m = score_run([gold_set()], [Setup("s", "p", "m")], records, LABELS, n_boot=200)
    block = m["gold_sets"][0]["setups"][0]["alt_test"]
    assert "refused" in block and "30" in block["refused"]
    assert "annotator a: 6" in block["refused"]  # named as in the gold set, not by column


def big_gold(n: int, seed: int = 0) -> tuple[GoldSet, np.ndarray]:
    """n items, 3 annotators who each agree with a hidden truth 70% of the time."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    items = []
    for i in range(n):
        notes = {}
        for a in "abc":
            lab = truth[i] if rng.random() < 0.7 else rng.integers(0, 3)
            notes[a] = LABELS[lab]
        items.append(GoldItem(id=f"x{i}", fields={"text": str(i)}, annotations=notes))
    return GoldSet("g", "g.jsonl", tuple(items), ("a", "b", "c"), "0" * 64), truth


def test_the_alt_test_block_matches_the_statistic_it_reports():
    gold, truth = big_gold(120)
    records = [
        LabelRecord(setup="s", gold_set="g", item=f"x{i}", label=LABELS[t])
        for i, t in enumerate(truth)
    ]
    m = score_run(
        [gold],
        [Setup("s", "p", "m")],
        records,
        LABELS,
        n_boot=200,
        alt_test={"annotators": "crowd", "q": 0.05, "min_items": 30},
    )
    jsonschema.validate({**m, "run_id": "r", "experiment": "e"}, SCHEMA)
    block = m["gold_sets"][0]["setups"][0]["alt_test"]
    coded = CodedGoldSet(gold, LABELS)
    direct = alt_test(coded.ratings, truth, 3, 0.1, q=0.05, min_items=30)
    assert block["epsilon"] == 0.1 and "crowd" in block["epsilon_basis"]
    assert block["passed"] is direct.passed
    assert block["winning_rate"] == pytest.approx(direct.winning_rate, abs=1e-6)
    assert [r["annotator"] for r in block["per_annotator"]] == ["a", "b", "c"]
    # An LLM that knows the hidden truth beats annotators who are right 70% of the time.
    assert block["passed"] is True
