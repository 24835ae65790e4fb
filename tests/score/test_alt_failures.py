"""Failed LLM answers in the Alternative Annotator Test (issue 17 item 5; statistics.md
section 5): `report.alt_test.failures: worst` scores a failure as the worst answer, `drop`
leaves the item out as the authors' code does; metrics.json and the report say which."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
from conftest import bare_manifest
from scipy.stats import ttest_1samp

from harness.core.records import LabelRecord, Setup
from harness.metrics.alt_test import alt_test
from harness.report.markdown import render_markdown
from harness.score.metrics_json import score_run

from .test_score import LABELS, SCHEMA
from .test_score_stability import big_gold


def _panel(seed: int, n: int = 150, m: int = 4, k: int = 3, fail: float = 0.15):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    ratings = np.where(rng.random((n, m)) < 0.3, rng.integers(0, k, (n, m)), truth[:, None])
    ratings[rng.random((n, m)) < 0.2] = -1
    llm = np.where(rng.random(n) < 0.85, truth, rng.integers(0, k, n))
    llm[rng.random(n) < fail] = -1
    return ratings, llm


def _authors_procedure(humans, llm, scoring, epsilon, q=0.05, min_instances=30):
    """The authors' procedure written from its description (dicts of annotator -> item ->
    label, the LLM's dict holding only answered items): keep items with >= 2 annotators
    and an LLM answer, leave each annotator out in turn, one-sided t-tests, BY step-up.
    Returns (winning_rate, advantage_probability)."""
    per_item: dict[int, list] = {}
    for h, anns in humans.items():
        for i in anns:
            per_item.setdefault(i, []).append(h)
    keep = {i for i, hs in per_item.items() if len(hs) >= 2 and i in llm}

    def align(x, others):
        if scoring == "nominal":
            return float(np.mean([x == o for o in others]))
        return -float(np.sqrt(np.mean([(x - o) ** 2 for o in others])))

    p_values, advantages = [], []
    for h, anns in humans.items():
        items = [i for i in anns if i in keep]
        if len(items) < min_instances:
            continue
        d, wins = [], []
        for i in items:
            rest = [humans[g][i] for g in per_item[i] if g != h]
            s_h, s_f = align(anns[i], rest), align(llm[i], rest)
            wins.append(int(s_f >= s_h))
            d.append(int(s_h >= s_f) - int(s_f >= s_h))
        p_values.append(ttest_1samp(d, epsilon, alternative="less").pvalue)
        advantages.append(np.mean(wins))
    m = len(p_values)
    order = np.argsort(p_values)
    harmonic = np.sum(1.0 / np.arange(1, m + 1))
    passing = [r for r in range(m) if p_values[order[r]] <= (r + 1) / m * q / harmonic]
    rejected = passing[-1] + 1 if passing else 0
    return rejected / m, float(np.mean(advantages))


def _as_dicts(ratings, llm):
    humans = {
        j: {i: int(ratings[i, j]) for i in range(ratings.shape[0]) if ratings[i, j] >= 0}
        for j in range(ratings.shape[1])
    }
    return humans, {i: int(x) for i, x in enumerate(llm) if x >= 0}


@pytest.mark.parametrize("scoring", ["nominal", "ordinal"])
def test_drop_equals_the_authors_procedure_on_the_answered_items(scoring):
    for seed in range(4):
        ratings, llm = _panel(seed)
        eps = (0.1, 0.15, 0.2, 0.05)[seed]
        got = alt_test(ratings, llm, 3, epsilon=eps, scoring=scoring, failures="drop")
        omega, rho = _authors_procedure(*_as_dicts(ratings, llm), scoring, eps)
        assert got.winning_rate == pytest.approx(omega)
        assert got.advantage_probability == pytest.approx(rho, rel=1e-12)
        # ... and equals the test run on the answered items alone, row by row.
        answered = llm >= 0
        alone = alt_test(ratings[answered], llm[answered], 3, epsilon=eps, scoring=scoring)
        assert [(r.n, r.p_value, r.p_by) for r in got.per_annotator] == [
            (r.n, r.p_value, r.p_by) for r in alone.per_annotator
        ]


def test_worst_and_drop_differ_as_documented():
    ratings, llm = _panel(9, fail=0.2)
    worst = alt_test(ratings, llm, 3, epsilon=0.15)
    drop = alt_test(ratings, llm, 3, epsilon=0.15, failures="drop")
    assert (worst.failures, drop.failures) == ("worst", "drop")
    shared = (ratings >= 0).sum(axis=1) >= 2
    assert worst.n_failed_items == drop.n_failed_items == int((shared & (llm < 0)).sum()) > 0
    for w, d in zip(worst.per_annotator, drop.per_annotator, strict=True):
        # Same failures counted; under worst they are inside n, under drop outside it.
        assert w.n_llm_failed == d.n_llm_failed > 0
        assert d.n == w.n - w.n_llm_failed
        # A failure never wins for the LLM against an answering human (nominal: the human
        # scores >= 0 = the failure's score, a tie at worst), so dropping them can only
        # raise the LLM's advantage.
        assert d.llm_advantage > w.llm_advantage
    assert drop.advantage_probability > worst.advantage_probability


def test_no_failures_means_both_conventions_agree():
    ratings, llm = _panel(3, fail=0.0)
    worst = alt_test(ratings, llm, 3, epsilon=0.15)
    drop = alt_test(ratings, llm, 3, epsilon=0.15, failures="drop")
    assert worst.n_failed_items == 0
    assert worst.per_annotator == drop.per_annotator


def test_bad_failures_value_is_refused():
    ratings, llm = _panel(1)
    with pytest.raises(ValueError, match="failures"):
        alt_test(ratings, llm, 3, epsilon=0.15, failures="ignore")


def test_metrics_json_and_report_state_the_convention():
    gold, truth = big_gold(120, seed=2)
    failed = set(range(0, 120, 6))  # 20 failures
    records = [
        LabelRecord(
            setup="s",
            gold_set="g",
            item=f"x{i}",
            label=None if i in failed else LABELS[t],
            failure="no_label_found" if i in failed else None,
        )
        for i, t in enumerate(truth)
    ]
    blocks = {}
    for failures in ("worst", "drop"):
        m = score_run(
            [gold],
            [Setup("s", "p", "m")],
            records,
            LABELS,
            n_boot=100,
            alt_test={"annotators": "crowd", "min_items": 30, "failures": failures},
        )
        full = {**m, "run_id": "r", "experiment": "e"}
        jsonschema.validate(full, SCHEMA)
        blocks[failures] = block = m["gold_sets"][0]["setups"][0]["alt_test"]
        assert block["failures"] == failures and block["n_failed_items"] == 20
        text = render_markdown(bare_manifest(), full)
        assert f"Failed answers: {block['failures_note']}" in text
    assert "scored as the worst" in blocks["worst"]["failures_note"]
    assert "left out" in blocks["drop"]["failures_note"]
    n_worst = [r["n"] for r in blocks["worst"]["per_annotator"]]
    n_drop = [r["n"] for r in blocks["drop"]["per_annotator"]]
    assert n_worst == [120] * 3 and n_drop == [100] * 3
    adv = {f: b["advantage_probability"] for f, b in blocks.items()}
    assert adv["drop"] > adv["worst"]
