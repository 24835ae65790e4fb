"""The alt-test's `failures="drop"` leaves out only failed LLM outputs (-1), never label 0
(harness.metrics.alt_test; statistics.md section 9). Mutation testing (bench/mutation.py)
found `llm > 0` in place of `llm >= 0` unnoticed: every item the LLM labelled 0 was dropped."""

from __future__ import annotations

import numpy as np

from harness.metrics.alt_test import alt_test

RATINGS = np.array([[i % 2, (i // 2) % 2, (i // 3) % 2] for i in range(40)])
LLM = RATINGS[:, 0].copy()  # half the items labelled 0, none failed


def test_drop_without_failures_changes_nothing() -> None:
    drop = alt_test(RATINGS, LLM, 2, "expert", failures="drop", min_items=10)
    worst = alt_test(RATINGS, LLM, 2, "expert", failures="worst", min_items=10)
    assert [row.n for row in drop.per_annotator] == [40, 40, 40]
    assert drop.per_annotator == worst.per_annotator and drop.n_failed_items == 0


def test_drop_leaves_out_the_failed_items_only() -> None:
    llm = LLM.copy()
    llm[:4] = -1
    drop = alt_test(RATINGS, llm, 2, "expert", failures="drop", min_items=10)
    assert [row.n for row in drop.per_annotator] == [36, 36, 36]
    assert drop.n_failed_items == 4
