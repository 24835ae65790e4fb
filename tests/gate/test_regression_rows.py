"""The gate's comparison of two snapshots (harness.gate.regression.compare_snapshots), on
snapshots built by hand: the rows that mutation testing found unguarded (statistics.md
section 9)."""

from __future__ import annotations

from harness.config import GateConfig
from harness.gate.regression import compare_snapshots

LABELS = ["pos", "neg"]
BOOT = {"n_boot": 300, "seed": 0, "level": 0.95}
N = 40
TRUTH = ["pos" if i % 2 else "neg" for i in range(N)]


def snapshot(predictions: dict[str, list[str | None]], **top) -> dict:
    return {
        "run_id": top.pop("run_id", "r"),
        "task_type": top.pop("task_type", "classification"),
        "labels": top.pop("labels", LABELS),
        "gold_sets": {
            "g": {
                "content_hash": "0" * 64,
                "items": [f"i{i}" for i in range(N)],
                "reference": TRUTH,
            }
        },
        "setups": {
            sid: {"model_entry": "m", "gold_sets": {"g": {"predictions": p, "failure_rate": 0.0}}}
            for sid, p in predictions.items()
        },
    }


def rows_of(result: dict) -> dict[str, dict]:
    return {r["setup"]: r for r in result["rows"]}


def test_a_failed_answer_counts_as_wrong_not_as_the_first_label() -> None:
    # The candidate fails (None) on the 20 "neg" items: accuracy 1.0 -> 0.5. Read as code 0
    # instead of missing, a failure would pass as right whenever "neg" is the first label.
    failing = [None if t == "neg" else t for t in TRUTH]
    failing_neg_first = snapshot({"s": failing}, labels=["neg", "pos"])
    for labels, cand in ((LABELS, snapshot({"s": failing})), (["neg", "pos"], failing_neg_first)):
        base = snapshot({"s": list(TRUTH)}, labels=labels)
        (row,) = compare_snapshots(base, cand, GateConfig(), BOOT)["rows"]
        acc = next(m for m in row["metrics"] if m["metric"] == "accuracy")
        assert acc["candidate"] == 0.5 and row["verdict"] == "fail", (labels, acc)


def test_a_label_the_task_does_not_have_counts_as_wrong() -> None:
    cand = ["maybe" if t == "neg" else t for t in TRUTH]
    for labels in (LABELS, ["neg", "pos"]):  # "maybe" must not pass as the first label
        base, new = (
            snapshot({"s": list(TRUTH)}, labels=labels),
            snapshot({"s": cand}, labels=labels),
        )
        result = compare_snapshots(base, new, GateConfig(), BOOT)
        acc = next(m for m in result["rows"][0]["metrics"] if m["metric"] == "accuracy")
        assert acc["candidate"] == 0.5 and result["verdict"] == "fail", labels


def test_new_and_removed_setups_are_named_as_such() -> None:
    base = snapshot({"old": list(TRUTH), "kept": list(TRUTH)}, run_id="base-run")
    cand = snapshot({"new": list(TRUTH), "kept": list(TRUTH)}, run_id="cand-run")
    result = compare_snapshots(base, cand, GateConfig(), BOOT)
    rows = rows_of(result)
    assert rows["new"]["verdict"] == "new" and "not in the baseline" in rows["new"]["reason"]
    assert rows["old"]["verdict"] == "removed" and rows["kept"]["verdict"] == "pass"
    assert result["verdict"] == "removed"  # a removed setup fails the gate
    assert (result["baseline_run"], result["candidate_run"]) == ("base-run", "cand-run")


def test_a_changed_task_type_alone_or_labels_alone_makes_the_run_not_comparable() -> None:
    same = list(TRUTH)
    for change in ({"task_type": "ordinal"}, {"labels": ["pos", "neg", "neu"]}):
        result = compare_snapshots(
            snapshot({"s": same}), snapshot({"s": same}, **change), GateConfig(), BOOT
        )
        star = rows_of(result)["*"]
        assert star["verdict"] == "changed" and "type or labels changed" in star["reason"], change
        assert result["verdict"] == "changed"
    unchanged = compare_snapshots(snapshot({"s": same}), snapshot({"s": same}), GateConfig(), BOOT)
    assert "*" not in rows_of(unchanged) and unchanged["verdict"] == "pass"


def test_a_cost_rise_beyond_the_limit_fails_and_an_unknown_cost_is_not_compared() -> None:
    def priced(cost):
        snap = snapshot({"s": list(TRUTH)})
        snap["setups"]["s"]["gold_sets"]["g"]["cost_usd_per_item"] = cost
        return snap

    # Default limit: 10% above the baseline. Same labels, twice the cost: the gate fails.
    result = compare_snapshots(priced(0.001), priced(0.002), GateConfig(), BOOT)
    (row,) = result["rows"]
    cost = next(r for r in row["rates"] if r["metric"] == "cost_usd_per_item")
    assert cost["verdict"] == "fail" and result["verdict"] == "fail"
    assert "$" in cost["reason"]  # said in dollars, not as 0.002
    ok = compare_snapshots(priced(0.001), priced(0.00105), GateConfig(), BOOT)
    assert ok["verdict"] == "pass"
    for base, cand in ((None, 0.002), (0.001, None)):
        (row,) = compare_snapshots(priced(base), priced(cand), GateConfig(), BOOT)["rows"]
        assert [r["metric"] for r in row["rates"]] == ["failure_rate"]
