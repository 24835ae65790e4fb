"""Clusters reach every interval, comparison and the gate (statistics.md section 3).

The plumbing check records every bootstrap of a scoring run (``intervals._cluster_ids`` is
where each resampling, table or item, ECE or not, learns its clusters): with cluster_by set,
none may resample single items. Degenerate clusterings (one cluster, every item its own,
one item) keep the metrics.json contract: tests/score/test_clusters_degenerate.py.
"""

from __future__ import annotations

import traceback
from contextlib import contextmanager
from unittest.mock import patch

import numpy as np
import pytest

from harness import metrics as m
from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.gate.regression import compare_snapshots
from harness.metrics import ece_intervals, intervals
from harness.metrics.clustered_mcnemar import mcnemar_clustered
from harness.metrics.compare import mcnemar_exact
from harness.score.metrics_json import score_run

LABELS = ["yes", "no"]
N_CLUSTERS, SIZE = 8, 5


@pytest.fixture
def unclustered_bootstraps():
    with recording_unclustered() as seen:
        yield seen


def grouped_gold(clustered: bool = True) -> GoldSet:
    """40 items in 8 conversations of 5; 2 annotator groups; a meta slice of 20 + 20."""
    items = []
    for c in range(N_CLUSTERS):
        for t in range(SIZE):
            label = LABELS[(c + (t == 4)) % 2]
            items.append(
                GoldItem(
                    id=f"conv{c}-t{t}",
                    fields={"text": "x"},
                    annotations={"a": label, "b": label, "c": LABELS[(c + t) % 2]},
                    meta={"conv": f"c{c}", "domain": "d0" if c < 4 else "d1"},
                )
            )
    clusters = tuple(it.meta["conv"] for it in items) if clustered else None
    return GoldSet(
        "g",
        "g.jsonl",
        tuple(items),
        ("a", "b", "c"),
        "0" * 64,
        {"experts": ("a", "b"), "crowd": ("c",)},
        cluster_by="meta.conv" if clustered else None,
        clusters=clusters,
    )


def records(gold: GoldSet) -> list[LabelRecord]:
    """Two setups, two samples each, with confidences; `bad` is wrong on whole conversations
    (the correlation clusters exist for) and fails on two items."""
    out = []
    for n, item in enumerate(gold.items):
        truth = item.annotations["a"]
        conv = int(item.meta["conv"][1:])
        for sid in ("good", "bad"):
            wrong = conv in (1, 2, 5) if sid == "bad" else n % 7 == 0
            label = LABELS[1 - LABELS.index(truth)] if wrong else truth
            for sample in (0, 1):
                failed = sid == "bad" and n in (3, 17)
                out.append(
                    LabelRecord(
                        setup=sid,
                        gold_set="g",
                        item=item.id,
                        sample=sample,
                        label=None if failed else label,
                        failure="timeout" if failed else None,
                        confidence=None if failed else 0.55 + 0.4 * ((n * 7 + sample) % 10) / 10,
                        confidence_source="replay",
                    )
                )
    return out


SETUPS = [Setup("good", "p1", "m"), Setup("bad", "p2", "m")]


def score(gold: GoldSet) -> dict:
    return score_run(
        [gold],
        SETUPS,
        records(gold),
        LABELS,
        n_boot=200,
        seed=3,
        recalibration="platt",
        prompt_groups={"p1": "para", "p2": "para"},
    )["gold_sets"][0]


def test_every_interval_of_a_clustered_gold_set_resamples_clusters(unclustered_bootstraps):
    gs = score(grouped_gold())
    assert not unclustered_bootstraps, "bootstrapped without clusters:\n" + "\n\n".join(
        unclustered_bootstraps
    )
    # The scoring run did exercise the blocks with intervals of their own.
    bad = gs["setups"][1]
    assert bad["slices"]["domain"][0]["accuracy"]["low"] is not None
    assert bad["annotator_groups"] and bad["stability"] and bad["recalibration"]
    assert gs["prompt_stability"] and gs["humans"]["annotator_groups"]
    assert gs["clustering"] == {
        "by": "meta.conv",
        "resampled": "clusters",
        "n_items": 40,
        "n_clusters": N_CLUSTERS,
        "mean_size": SIZE,
        "max_size": SIZE,
        "applies_to": gs["clustering"]["applies_to"],
        "warning": None,
        "note": "only 8 clusters: intervals resampling fewer than about 20 clusters are wide "
        "and may still cover less than their level",
    }


def test_the_unclustered_run_is_the_control(unclustered_bootstraps):
    gs = score(grouped_gold(clustered=False))
    assert unclustered_bootstraps  # the recorder sees item bootstraps when there are some
    assert gs["clustering"]["resampled"] == "items"
    assert gs["clustering"]["n_clusters"] == 40 and gs["clustering"]["by"] is None


def test_clustered_intervals_are_the_cluster_bootstrap_of_the_same_items():
    gold = grouped_gold()
    gs, plain = score(gold), score(grouped_gold(clustered=False))
    ref = np.array([LABELS.index(it.annotations["a"]) for it in gold.items])
    bad = gs["setups"][1]
    pred = np.array(
        [
            -1 if n in (3, 17) else (1 - r if int(it.meta["conv"][1:]) in (1, 2, 5) else r)
            for n, (it, r) in enumerate(zip(gold.items, ref, strict=True))
        ]
    )
    groups = np.array(gold.clusters)
    boot = {"n_boot": 200, "seed": 3, "level": 0.95}
    expected = m.accuracy_ci(ref, pred, clusters=groups, **boot)
    assert bad["accuracy"]["low"] == pytest.approx(expected.low, abs=1e-6)
    assert bad["accuracy"]["high"] == pytest.approx(expected.high, abs=1e-6)
    answered = pred >= 0
    only = m.accuracy_ci(ref[answered], pred[answered], clusters=groups[answered], **boot)
    assert bad["accuracy_answered"]["low"] == pytest.approx(only.low, abs=1e-6)
    # Wrong on whole conversations: resampling items understates the spread.
    width = bad["accuracy"]["high"] - bad["accuracy"]["low"]
    plain_bad = plain["setups"][1]["accuracy"]
    assert width > 1.3 * (plain_bad["high"] - plain_bad["low"])


def test_comparisons_use_the_clustered_test_and_interval():
    gs, plain = score(grouped_gold()), score(grouped_gold(clustered=False))
    (row,), (plain_row,) = gs["comparisons"], plain["comparisons"]
    assert row["mcnemar"]["test"].startswith("clustered McNemar")
    assert row["mcnemar"]["n_clusters"] == N_CLUSTERS
    assert plain_row["mcnemar"]["test"] == "exact"
    # Three whole conversations wrong are weaker evidence than 15 independent items.
    assert row["mcnemar"]["p_value"] > plain_row["mcnemar"]["p_value"]
    iv, plain_iv = row["accuracy_difference"], plain_row["accuracy_difference"]
    assert iv["high"] - iv["low"] > plain_iv["high"] - plain_iv["low"]


def test_clustered_mcnemar_is_mcnemar_without_correction_on_singletons():
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(0)
    a, b = rng.random(200) < 0.7, rng.random(200) < 0.6
    test = mcnemar_clustered(a, b, np.arange(200))
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    reference = mcnemar(table, exact=False, correction=False)
    assert test.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert test.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert (test.b, test.c) == (mcnemar_exact(a, b).b, mcnemar_exact(a, b).c)


def test_clustered_mcnemar_by_hand_and_degenerate():
    # Cluster discordance b_k - c_k = 2, 1, -1: X2 = 2^2 / (4 + 1 + 1) = 2/3.
    a = [1, 1, 1, 1, 0, 1]
    b = [0, 0, 1, 0, 1, 1]
    test = mcnemar_clustered(a, b, ["x", "x", "y", "y", "z", "z"])
    assert test.n_clusters == 3 and test.statistic == pytest.approx(2 / 3)
    assert mcnemar_clustered([1, 1], [1, 1], [0, 0]).p_value == 1.0  # no discordant item
    assert mcnemar_clustered([], [], []).p_value == 1.0
    one = mcnemar_clustered([1, 1, 0], [0, 0, 0], [0, 0, 0])  # one cluster: X2 = 1
    assert one.statistic == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mcnemar_clustered([1, 0], [0, 1], [0])


def _snapshot(gold: GoldSet, pred: list[str | None]) -> dict:
    gold_entry = {
        "content_hash": gold.content_hash,
        "items": [it.id for it in gold.items],
        "reference": [it.annotations["a"] for it in gold.items],
    }
    if gold.clusters is not None:
        gold_entry |= {"cluster_by": gold.cluster_by, "clusters": list(gold.clusters)}
    return {
        "task_type": "classification",
        "labels": LABELS,
        "gold_sets": {"g": gold_entry},
        "setups": {
            "s": {
                "model_entry": "m",
                "gold_sets": {"g": {"predictions": pred, "failure_rate": 0.0}},
            }
        },
    }


def test_the_gate_resamples_the_candidates_clusters():
    from harness.config import GateConfig

    gold = grouped_gold()
    truth = [it.annotations["a"] for it in gold.items]
    # The candidate breaks two whole conversations: 10 of 40 items.
    broken = [
        LABELS[1 - LABELS.index(t)] if int(it.meta["conv"][1:]) in (0, 3) else t
        for it, t in zip(gold.items, truth, strict=True)
    ]
    gate = GateConfig()
    boot = {"n_boot": 300, "seed": 0, "level": 0.95}
    rows = {}
    for name, g in (("clustered", gold), ("items", grouped_gold(clustered=False))):
        (row,) = compare_snapshots(_snapshot(g, truth), _snapshot(g, broken), gate, boot)["rows"]
        rows[name] = row
    assert rows["clustered"]["clustering"] == {"by": "meta.conv", "n_clusters": N_CLUSTERS}
    assert rows["items"]["clustering"] == {"by": None, "n_clusters": 40}

    def width(row):
        change = next(x for x in row["metrics"] if x["metric"] == "accuracy")["change"]
        return change["high"] - change["low"]

    assert width(rows["clustered"]) > 1.3 * width(rows["items"])


@contextmanager
def recording_unclustered():
    """Every bootstrap of items that was given no clusters, with where it was called from."""
    seen: list[str] = []
    original = intervals._cluster_ids

    def record(clusters, n):
        if clusters is None and n > 0:
            seen.append("".join(traceback.format_stack(limit=6)[:-1]))
        return original(clusters, n)

    with (
        patch.object(intervals, "_cluster_ids", record),
        patch.object(ece_intervals, "_cluster_ids", record),
    ):
        yield seen


def test_the_reports_state_the_clustering_or_the_grouping_warning():
    from dataclasses import replace

    from conftest import bare_manifest

    from harness.report.html import render_html
    from harness.report.markdown import render_markdown

    def reports(gold: GoldSet) -> tuple[str, str]:
        metrics = score_run([gold], SETUPS, records(gold), LABELS, n_boot=50)
        metrics.update(run_id="r", experiment="e")
        return render_markdown(bare_manifest(), metrics), render_html(bare_manifest(), metrics)

    md, html = reports(grouped_gold())
    statement = "Clustered items: 40 items in 8 clusters by `meta.conv` (mean size 5.0"
    assert statement in md and "Note: only 8 clusters" in md
    assert "Clustered items: 40 items in 8 clusters by <code>meta.conv</code>" in html
    warned = replace(grouped_gold(clustered=False), grouping_warning="items look grouped (x)")
    md, html = reports(warned)
    assert "**Warning:** items look grouped (x)." in md and "Clustered items" not in md
    assert "Warning: items look grouped (x)" in html
