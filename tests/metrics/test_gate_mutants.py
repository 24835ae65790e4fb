"""The rate gate's default relative tolerance (harness.metrics.gate.gate_rate; statistics.md
section 9). The gate's failure-rate check passes only an absolute tolerance and relies on the
relative one being 0; mutation testing found that a default of 1.0 (a doubled failure rate
allowed) went unnoticed, since every other test passes both tolerances."""

from __future__ import annotations

from harness.config import GateConfig
from harness.gate.regression import compare_snapshots
from harness.metrics.gate import gate_rate

N = 40
TRUTH = ["pos" if i % 2 else "neg" for i in range(N)]


def test_without_a_relative_tolerance_only_the_absolute_one_applies() -> None:
    # 0.10 -> 0.15 with 0.02 absolute: limit 0.12, a fail. With a relative tolerance of 1.0
    # the limit would be 0.22, a pass.
    r = gate_rate("failure_rate", 0.10, 0.15, absolute_tolerance=0.02)
    assert r.verdict == "fail" and r.limit == 0.10 + 0.02
    assert gate_rate("failure_rate", 0.10, 0.12, absolute_tolerance=0.02).verdict == "pass"


def snapshot(failure_rate: float) -> dict:
    return {
        "run_id": "r",
        "task_type": "classification",
        "labels": ["pos", "neg"],
        "gold_sets": {
            "g": {
                "content_hash": "0" * 64,
                "items": [f"i{i}" for i in range(N)],
                "reference": TRUTH,
            }
        },
        "setups": {
            "s": {
                "model_entry": "m",
                "gold_sets": {"g": {"predictions": list(TRUTH), "failure_rate": failure_rate}},
            }
        },
    }


def test_the_gate_fails_a_failure_rate_rising_by_more_than_its_absolute_tolerance() -> None:
    # The default config: failure rate 0.10 -> 0.15 is above 0.10 + 0.02.
    boot = {"n_boot": 100, "seed": 0, "level": 0.95}
    (row,) = compare_snapshots(snapshot(0.10), snapshot(0.15), GateConfig(), boot)["rows"]
    (rate,) = row["rates"]
    assert rate["metric"] == "failure_rate" and rate["verdict"] == "fail"
    assert row["verdict"] == "fail"
