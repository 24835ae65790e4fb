"""Degenerate clusterings (one cluster, every item its own, pairs) on the degenerate gold
sets of tests/test_degenerate.py (one item, one class, every answer failed...): the
metrics.json contract holds and no bootstrap resamples single items."""

from __future__ import annotations

from dataclasses import replace
from itertools import cycle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_degenerate import SETTINGS, TASKS, experiments, score_and_report

from .test_clusters import recording_unclustered

CLUSTERINGS = {
    "one": lambda i: "c",
    "own": lambda i: f"c{i}",
    "pairs": lambda i: f"c{i // 2}",
}
# Each task type with one clustering (in turn), two generated experiments each: every
# clustering and every task type is run, in about ten seconds.
CASES = list(zip(TASKS, cycle(CLUSTERINGS), strict=False))


@pytest.mark.parametrize(("task_type", "how"), CASES)
@settings(SETTINGS, max_examples=2)
@given(data=st.data())
def test_degenerate_clusterings_keep_the_contract(task_type, how, data, tmp_path_factory):
    exp, golds, setups, records = data.draw(experiments(task_type))
    ids = CLUSTERINGS[how]
    golds = [
        replace(g, cluster_by="conv", clusters=tuple(ids(i) for i in range(len(g.items))))
        for g in golds
    ]
    with recording_unclustered() as seen:
        out = score_and_report(exp, golds, setups, records, tmp_path_factory.mktemp("run"))
    assert not seen, "bootstrapped without clusters:\n" + "\n\n".join(seen[:3])
    for gs in out["gold_sets"]:
        assert gs["clustering"]["resampled"] == "clusters"
        assert gs["clustering"]["n_clusters"] == len(
            set(map(ids, range(gs["clustering"]["n_items"])))
        )
