"""The alt-test block of metrics.json and the report on a gold set with cluster_by
(issue 17 item 3; statistics.md section 3): the clustered test is named beside the result,
each annotator's clusters are counted, one cluster gives a null t with its note, and an
unclustered block is unchanged. The statistic itself: tests/metrics/test_alt_test_clusters.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
from conftest import bare_manifest

from harness.core.records import LabelRecord, Setup
from harness.metrics.alt_test import CLUSTERED_T_TEST
from harness.report.markdown import render_markdown
from harness.score.metrics_json import score_run

from .test_score import LABELS, SCHEMA
from .test_score_stability import big_gold


def _score(gold, truth, clusters):
    if clusters is not None:
        gold = replace(gold, cluster_by="conv", clusters=tuple(clusters))
    records = [
        LabelRecord(setup="s", gold_set="g", item=f"x{i}", label=LABELS[t])
        for i, t in enumerate(truth)
    ]
    m = score_run(
        [gold],
        [Setup("s", "p", "m")],
        records,
        LABELS,
        n_boot=50,
        alt_test={"annotators": "crowd", "min_items": 30},
    )
    full = {**m, "run_id": "r", "experiment": "e"}
    jsonschema.validate(full, SCHEMA)
    json.dumps(full, allow_nan=False)  # no inf or nan reaches metrics.json
    return m["gold_sets"][0]["setups"][0]["alt_test"], render_markdown(bare_manifest(), full)


def test_metrics_json_and_report_name_the_clustered_test():
    gold, truth = big_gold(120, seed=4)
    plain, plain_md = _score(gold, truth, None)
    assert "test" not in plain and all("n_clusters" not in r for r in plain["per_annotator"])
    assert CLUSTERED_T_TEST not in plain_md
    block, text = _score(gold, truth, [f"c{i // 4}" for i in range(120)])
    assert block["test"] == CLUSTERED_T_TEST
    assert [r["n_clusters"] for r in block["per_annotator"]] == [30, 30, 30]
    assert f"{CLUSTERED_T_TEST}, over the gold set's clusters" in text
    assert "(n=120, 30 clusters)" in text
    # Same d on the same items: only the t and p move.
    for a, b in zip(plain["per_annotator"], block["per_annotator"], strict=True):
        assert a["mean_difference"] == b["mean_difference"] and a["n"] == b["n"]
    # One cluster: t is null with its note, p = 1, and nothing non-finite.
    one, _ = _score(gold, truth, ["c"] * 120)
    for row in one["per_annotator"]:
        assert row["t"] is None and "one cluster" in row["note"]
        assert row["p_value"] == 1.0 and not row["rejected"]
    assert one["passed"] is False
