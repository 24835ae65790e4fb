"""The gate's rows (harness.gate.regression.compare_snapshots) as the gate report writes
them, for the mutants that survived the other tests (statistics.md section 9): a metric's
or a rate's number written unrounded, or NaN where JSON needs null, and the rows of
removed gold sets in an order that changes from one process to the next."""

from __future__ import annotations

import json
import math

from conftest import floats

from harness.config import GateConfig
from harness.gate.regression import compare_snapshots

LABELS = ["pos", "neg"]
BOOT = {"n_boot": 200, "seed": 0, "level": 0.95}
N = 30
TRUTH = ["pos" if i % 3 else "neg" for i in range(N)]


def snapshot(
    gold: dict[str, list[str | None]], run_id: str, failures: int = 0, truth: list[str] = TRUTH
) -> dict:
    """One setup `s` with the given predictions per gold set; its failure rate is stored
    unrounded, as gate/baseline.py writes it (failures / n)."""
    return {
        "run_id": run_id,
        "task_type": "classification",
        "labels": LABELS,
        "gold_sets": {
            gid: {
                "content_hash": "0" * 64,
                "items": [f"i{i}" for i in range(N)],
                "reference": truth,
            }
            for gid in gold
        },
        "setups": {
            "s": {
                "model_entry": "m",
                "gold_sets": {
                    gid: {"predictions": p, "failure_rate": failures / N} for gid, p in gold.items()
                },
            }
        },
    }


def test_the_numbers_of_a_gate_row_are_rounded_to_six_places() -> None:
    # Baseline wrong on items 0 and 1: its kappa has more than 6 decimals. Candidate failed
    # on item 2: failure rate 1/30.
    base_pred = ["pos" if t == "neg" else "neg" if i < 2 else t for i, t in enumerate(TRUTH)]
    cand_pred = [None if i == 2 else t for i, t in enumerate(TRUTH)]
    base = snapshot({"g": base_pred}, "base")
    cand = snapshot({"g": cand_pred}, "cand", failures=1)
    (row,) = compare_snapshots(base, cand, GateConfig(), BOOT)["rows"]
    kappa = next(m for m in row["metrics"] if m["metric"] == "kappa")
    (rate,) = row["rates"]
    # The unrounded figures have more digits, or the checks below would prove nothing.
    assert kappa["baseline"] != round(kappa["baseline"], 3)
    assert rate["candidate"] != round(rate["candidate"], 3)
    assert kappa["baseline"] == round(kappa["baseline"], 6)
    assert rate["candidate"] == round(rate["candidate"], 6) == round(1 / 30, 6)
    assert all(x == round(x, 6) for x in floats(row))


def test_an_undefined_baseline_metric_is_null_not_nan() -> None:
    # Every reference "pos" and the baseline right on all of them: one category only, so
    # the baseline's kappa is undefined (no expected disagreement).
    truth = ["pos"] * N
    base = snapshot({"g": list(truth)}, "base", truth=truth)
    cand = snapshot({"g": ["neg", *truth[1:]]}, "cand", truth=truth)
    (row,) = compare_snapshots(base, cand, GateConfig(), BOOT)["rows"]
    kappa = next(m for m in row["metrics"] if m["metric"] == "kappa")
    assert kappa["baseline"] is None
    json.dumps(row, allow_nan=False)  # strict JSON, as the gate's report is written
    assert not any(math.isnan(x) for x in floats(row))


def test_removed_gold_sets_are_listed_in_sorted_order() -> None:
    # Eight gold sets gone: in a set's iteration order (random per process for strings)
    # they would come out sorted once in 40,320 processes.
    gone = [f"gold-{c}" for c in "hgfedcba"]
    base = snapshot({gid: list(TRUTH) for gid in ["kept", *gone]}, "base")
    cand = snapshot({"kept": list(TRUTH)}, "cand")
    rows = compare_snapshots(base, cand, GateConfig(), BOOT)["rows"]
    removed = [r["gold_set"] for r in rows if r["verdict"] == "removed"]
    assert removed == sorted(gone)
