"""A gold set that the baseline scored and this run does not (harness.gate.regression,
statistics.md sections 8 and 9): the gate must fail and say which gold set went missing,
never pass on the gold sets that are left. Dropping a hard gold set from the config is
the quietest way to make a regression disappear."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.config import GateConfig
from harness.gate.regression import FAILING, compare_snapshots
from harness.report.gate_md import HEADLINE, summary_markdown, write_junit

LABELS = ["pos", "neg"]
BOOT = {"n_boot": 200, "seed": 0, "level": 0.95}
N = 30
TRUTH = ["pos" if i % 3 else "neg" for i in range(N)]


def snapshot(gold_ids: tuple[str, ...], run_id: str) -> dict:
    """One setup answering every item right on each of ``gold_ids``."""
    return {
        "run_id": run_id,
        "task_type": "classification",
        "labels": LABELS,
        "gold_sets": {
            gid: {
                "content_hash": gid[0] * 64,
                "items": [f"{gid}-{i}" for i in range(N)],
                "reference": TRUTH,
            }
            for gid in gold_ids
        },
        "setups": {
            "s": {
                "model_entry": "m",
                "gold_sets": {
                    gid: {"predictions": list(TRUTH), "failure_rate": 0.0} for gid in gold_ids
                },
            }
        },
    }


def test_a_gold_set_missing_from_the_run_fails_the_gate_and_is_named(tmp_path) -> None:
    base = snapshot(("easy", "hard"), "base-run")
    result = compare_snapshots(base, snapshot(("easy",), "cand-run"), GateConfig(), BOOT)

    by_gold = {r["gold_set"]: r for r in result["rows"]}
    assert set(by_gold) == {"easy", "hard"}
    assert by_gold["easy"]["verdict"] == "pass"  # what is left is unchanged
    removed = by_gold["hard"]
    assert removed == {
        "setup": "s",
        "gold_set": "hard",
        "verdict": "removed",
        "reason": "gold set 'hard' is in the baseline but not in this run",
    }
    assert result["verdict"] == "removed" and result["verdict"] in FAILING  # exit code 1

    # The pull-request comment leads with the failure and names the missing gold set.
    text = summary_markdown(result)
    assert text.startswith(f"## prelabel gate: {HEADLINE['removed']}\n")
    (line,) = [x for x in text.splitlines() if "gold set 'hard'" in x]
    assert "| s | hard | removed |" in line

    # CI shows it as a failed test case of its own.
    junit = tmp_path / "gate.xml"
    write_junit(result, junit)
    suite = ET.parse(junit).getroot()
    case = suite.find("testcase[@classname='s.hard']")
    assert case is not None and case.find("failure") is not None
    assert "'hard'" in case.find("failure").get("message")
    assert suite.get("failures") == "1"


def test_the_same_gold_sets_in_both_runs_pass() -> None:
    # The control: the failure above comes from the missing gold set alone.
    both = ("easy", "hard")
    result = compare_snapshots(
        snapshot(both, "base-run"), snapshot(both, "cand-run"), GateConfig(), BOOT
    )
    assert [(r["gold_set"], r["verdict"]) for r in result["rows"]] == [
        ("easy", "pass"),
        ("hard", "pass"),
    ]
    assert result["verdict"] == "pass"
