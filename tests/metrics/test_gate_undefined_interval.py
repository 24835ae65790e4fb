"""A floor on a metric whose candidate interval cannot be computed (harness.metrics.gate,
statistics.md sections 8 and 9). Kappa is 0/0 when the reference and the answers use one
and the same label on every item (chance agreement is 1), on the full set and on every
resample, so the candidate's interval is undefined. NaN compares False with anything: a
gate that only asked "is the bound below the floor?" would pass a floor it never checked.
It must warn (the floor is not shown to be met, nor crossed) and say why."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from harness.config import GateConfig, GateMetric
from harness.gate.regression import FAILING, compare_snapshots
from harness.metrics.gate import gate_metric, kappa_metric
from harness.report.gate_md import summary_markdown, write_junit

N = 30
REF = np.zeros(N, dtype=np.int64)  # every item's reference is label 0
UNDEFINED = "kappa: the candidate's interval is undefined, floor not checked"


def kappa_gate(baseline: np.ndarray, candidate: np.ndarray, floor: float | None):
    return gate_metric(
        "kappa",
        baseline,
        candidate,
        0.02,
        floor=floor,
        n_boot=200,
        reference=REF,
        metric=kappa_metric(2),
    )


def test_an_undefined_candidate_interval_warns_instead_of_passing_the_floor() -> None:
    same = np.zeros(N, dtype=np.int64)  # a rerun answering label 0 everywhere
    gate = kappa_gate(same, same.copy(), floor=0.6)
    iv = gate.candidate_interval
    assert math.isnan(gate.candidate) and math.isnan(iv.low) and math.isnan(iv.high)
    assert gate.verdict == "warn" and gate.reasons == (UNDEFINED,)
    # Without a floor there is nothing to check: an unchanged rerun passes silently.
    plain = kappa_gate(same, same.copy(), floor=None)
    assert plain.verdict == "pass" and plain.reasons == ()


def test_an_undefined_change_and_floor_are_both_named() -> None:
    # The baseline answered label 1 once (kappa 0, defined); the candidate never does
    # (kappa undefined), so neither the change nor the candidate's bound exists.
    base = np.zeros(N, dtype=np.int64)
    base[4] = 1
    gate = kappa_gate(base, np.zeros(N, dtype=np.int64), floor=0.6)
    assert gate.baseline == 0.0 and math.isnan(gate.drop)
    assert gate.verdict == "warn"
    assert gate.reasons == ("kappa: change could not be computed on these items", UNDEFINED)


def test_the_gate_summary_says_the_floor_was_not_checked(tmp_path) -> None:
    labels = ["pos", "neg"]
    snap = {
        "run_id": "r",
        "task_type": "classification",
        "labels": labels,
        "gold_sets": {
            "g": {
                "content_hash": "0" * 64,
                "items": [f"i{i}" for i in range(N)],
                "reference": ["pos"] * N,
            }
        },
        "setups": {
            "s": {
                "model_entry": "m",
                "gold_sets": {"g": {"predictions": ["pos"] * N, "failure_rate": 0.0}},
            }
        },
    }
    gate = GateConfig(kappa=GateMetric(floor=0.6))
    boot = {"n_boot": 200, "seed": 0, "level": 0.95}
    result = compare_snapshots(snap, snap, gate, boot)
    (row,) = result["rows"]
    kappa = next(m for m in row["metrics"] if m["metric"] == "kappa")
    assert kappa["verdict"] == "warn" and kappa["reasons"] == [UNDEFINED]
    assert kappa["candidate"] is None and kappa["candidate_interval"]["low"] is None
    assert result["verdict"] == "warn" and result["verdict"] not in FAILING  # exit 0
    (line,) = [x for x in summary_markdown(result).splitlines() if "| kappa |" in x]
    assert "| warn |" in line and "floor 0.6; " + UNDEFINED in line
    write_junit(result, tmp_path / "gate.xml")
    case = ET.parse(tmp_path / "gate.xml").getroot().find("testcase[@name='kappa']")
    assert case.find("failure") is None and case.find("system-out").text == "warn: " + UNDEFINED
