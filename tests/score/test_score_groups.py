"""Annotator groups: each group's own reference, agreement, and a setup scored against it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.config import GoldSetConfig
from harness.core.errors import UserError
from harness.core.records import GoldItem, GoldSet
from harness.inputs.goldset import load_gold_set
from harness.score.groups import GroupReferences
from harness.score.predictions import CodedGoldSet

LABELS = ["yes", "no"]
BOOT = {"n_boot": 200, "seed": 0, "level": 0.95}

# Experts e1, e2 say "yes" on items 0-5; the crowd c1, c2, c3 says "no" on items 0-2.
# Item 6 was labelled by the crowd only.
ROWS = [
    {"e1": "yes", "e2": "yes", "c1": "no", "c2": "no", "c3": "yes"},
    {"e1": "yes", "e2": "yes", "c1": "no", "c2": "no", "c3": "no"},
    {"e1": "yes", "e2": "yes", "c1": "no", "c2": "yes", "c3": "no"},
    {"e1": "yes", "e2": "yes", "c1": "yes", "c2": "yes", "c3": "yes"},
    {"e1": "no", "e2": "no", "c1": "no", "c2": "no", "c3": "no"},
    {"e1": "no", "e2": "yes", "c1": "no", "c2": "no", "c3": "no"},
    {"c1": "yes", "c2": "yes", "c3": "no"},
]


def gold(groups):
    items = tuple(
        GoldItem(id=f"i{i}", fields={"text": f"t{i}"}, annotations=notes)
        for i, notes in enumerate(ROWS)
    )
    names = tuple(sorted({a for notes in ROWS for a in notes}))
    return GoldSet("g", "g.jsonl", items, names, "0" * 64, annotator_groups=groups)


GROUPS = {"experts": ("e1", "e2"), "crowd": ("c1", "c2", "c3")}


def test_each_group_gets_its_own_majority_reference_on_the_items_it_labelled():
    coded = CodedGoldSet(gold(GROUPS), LABELS)
    refs = GroupReferences(coded)
    pos, experts = refs.groups["experts"]
    assert pos.tolist() == [0, 1, 2, 3, 4, 5]  # item 6 has no expert label
    # Item 5 splits the experts 1-1: the tie goes to the label listed first ("yes").
    assert [LABELS[c] for c in experts.reference] == ["yes", "yes", "yes", "yes", "no", "yes"]
    pos, crowd = refs.groups["crowd"]
    assert pos.tolist() == list(range(7))
    assert [LABELS[c] for c in crowd.reference] == ["no", "no", "no", "yes", "no", "no", "yes"]


def test_a_setup_is_scored_against_each_group():
    coded = CodedGoldSet(gold(GROUPS), LABELS)
    refs = GroupReferences(coded)
    # The setup says "yes" everywhere: it matches the experts on 5 of 6, the crowd on 2 of 7.
    pred = np.zeros(7, dtype=np.int64)
    rows = {r["group"]: r for r in refs.setup(pred, 2, BOOT)}
    assert rows["experts"]["n"] == 6
    assert rows["experts"]["accuracy"]["estimate"] == pytest.approx(5 / 6)
    assert rows["crowd"]["accuracy"]["estimate"] == pytest.approx(2 / 7)
    assert rows["crowd"]["accuracy"]["low"] <= 2 / 7 <= rows["crowd"]["accuracy"]["high"]


def test_group_agreement_and_distance_from_the_overall_reference():
    coded = CodedGoldSet(gold(GROUPS), LABELS)
    humans = {r["group"]: r for r in GroupReferences(coded).humans(coded, BOOT)}
    assert humans["experts"]["annotators"] == ["e1", "e2"]
    assert humans["experts"]["krippendorff_alpha"]["n_items"] == 6
    assert humans["crowd"]["n_items"] == 7
    # Overall majority (5 raters): yes no yes yes no no yes; the crowd's: no no no yes no no yes.
    # Agreement 5/7; P(yes) overall 4/7, crowd 2/7: pe = 8/49 + 15/49 = 23/49,
    # kappa = (35/49 - 23/49) / (26/49) = 12/26.
    assert humans["crowd"]["kappa_vs_reference"]["estimate"] == pytest.approx(12 / 26, abs=1e-6)
    assert humans["experts"]["kappa_vs_reference"]["estimate"] < 1.0


def test_a_single_annotator_group_has_no_alpha():
    coded = CodedGoldSet(gold({"solo": ("e1",)}), LABELS)
    (row,) = GroupReferences(coded).humans(coded, BOOT)
    assert row["krippendorff_alpha"]["value"] is None


def test_no_groups_means_no_block():
    coded = CodedGoldSet(gold(None), LABELS)
    refs = GroupReferences(coded)
    assert refs.humans(coded, BOOT) is None
    assert refs.setup(np.zeros(7, dtype=np.int64), 2, BOOT) == []


def test_a_group_naming_an_unknown_annotator_is_a_clear_error(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"id": f"i{i}", "text": "x", "annotations": r}) for i, r in enumerate(ROWS)
        )
    )
    cfg = GoldSetConfig(id="g", path=path, annotator_groups={"experts": ["e1", "e9"]})
    with pytest.raises(UserError) as err:
        load_gold_set(cfg, path, LABELS)
    text = str(err.value)
    assert "e9" in text and "experts" in text and "annotator_groups" in text
    ok = GoldSetConfig(id="g", path=path, annotator_groups={"experts": ["e1", "e2"]})
    assert load_gold_set(ok, path, LABELS).annotator_groups == {"experts": ("e1", "e2")}


def test_groups_appear_in_metrics_json_and_validate():
    import jsonschema

    from harness.core.records import LabelRecord, Setup
    from harness.score.metrics_json import score_run

    from .test_score import SCHEMA

    records = [LabelRecord(setup="s", gold_set="g", item=f"i{i}", label="yes") for i in range(7)]
    m = score_run([gold(GROUPS)], [Setup("s", "p", "m")], records, LABELS, n_boot=200)
    jsonschema.validate({**m, "run_id": "r", "experiment": "e"}, SCHEMA)
    gs = m["gold_sets"][0]
    assert [g["group"] for g in gs["humans"]["annotator_groups"]] == ["experts", "crowd"]
    rows = {g["group"]: g for g in gs["setups"][0]["annotator_groups"]}
    assert rows["experts"]["accuracy"]["estimate"] == pytest.approx(5 / 6)
