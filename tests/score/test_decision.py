"""The deploy decision (harness.score.decision): cost of the hybrid pipeline, constraint checks, the
recommendation and its runner-up, the Pareto front, and the whole path through the CLI."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jsonschema
import pytest
from conftest import Reply, flat, per_item
from typer.testing import CliRunner

from harness.cli.app import app
from harness.config import Constraints, CostConfig, ReportConfig
from harness.report.decision_md import decision_md
from harness.score.decision import cost_block, decide, pareto_front, recommend

SCHEMA = Path(__file__).resolve().parents[2] / "harness" / "schemas" / "metrics.schema.json"
COSTS = CostConfig(human_label_usd=0.10, human_review_usd=0.04, labels_per_item=2)


def block(
    setup: str = "s",
    *,
    n: int = 200,
    answered: int = 190,
    accepted: int | None = 80,
    errors: int = 1,
    llm: float | None = 0.002,
    accuracy: float = 0.8,
    kappa: tuple[float | None, float | None] = (0.6, 0.5),
    ece: float | None = 0.05,
    latency: float | None = 1.0,
) -> dict:
    """A classification setup block as score.setup_block lays it out (the keys decided on).
    accepted=None: no Learn-then-Test block (fewer than 10 items with a confidence)."""
    selective = (
        None
        if accepted is None
        else {
            "n": answered,
            "target_error": 0.05,
            "delta": 0.1,
            "threshold": 0.9 if accepted else None,
            "auto_accept_share": accepted / answered,
            "auto_accepted": accepted,
            "errors_among_accepted": errors if accepted else 0,
            "cross_fit": {"check_error_rate": 0.02},
        }
    )
    return {
        "setup": setup,
        "n_items": n,
        "coverage": {"value": answered / n, "answered": answered, "n": n},
        "accuracy": {"estimate": accuracy, "low": None, "high": None, "n": n, "level": 0.95},
        "kappa": {"estimate": kappa[0], "low": kappa[1], "high": None, "n": n, "level": 0.95},
        "calibration": None if ece is None else {"n": answered, "ece": {"estimate": ece}},
        "selective": selective,
        "usage": {"cost_usd_per_item": llm, "latency_s": {"p50": latency, "p95": None, "n": n}},
    }


def report(**constraints) -> ReportConfig:
    return ReportConfig(constraints=Constraints(**constraints))


def gold_set(*blocks: dict, comparisons: list | None = None) -> dict:
    return {"id": "g", "setups": list(blocks), "comparisons": comparisons or []}


# ------------------------------------------------------------------------------ costs


def test_cost_block_by_hand():
    c = cost_block(block(), COSTS)
    # 190 answered of 200, 80 auto-accepted: 110 reviews and 10 full labels.
    assert c["auto_accept"]["share"] == pytest.approx(0.4)
    assert c["auto_accept"]["observed_error"] == pytest.approx(1 / 80)
    assert "Learn-then-Test" in c["auto_accept"]["basis"] and "190" in c["auto_accept"]["basis"]
    assert c["humans_per_1k"] == {
        "reviews": pytest.approx(550),
        "full_labels": pytest.approx(50),
        "total": pytest.approx(600),
        "basis": "190 of 200 items answered, 80 auto-accepted",
    }
    assert c["llm"]["per_1k"] == pytest.approx(2.0)
    # 0.002 + 0.04 * 110/200 + 0.10 * 10/200 = 0.029 per item
    assert c["hybrid"]["per_item"] == pytest.approx(0.029)
    assert c["hybrid"]["per_1k"] == pytest.approx(29.0)
    assert c["all_human"]["per_1k"] == pytest.approx(200.0)  # 0.10 x 2 labels per item
    assert c["savings"]["per_1k"] == pytest.approx(171.0)
    assert c["savings"]["share"] == pytest.approx(0.855)
    assert c["cost_per_correct_label"]["value"] == pytest.approx(0.0025)
    assert c["n_items"] == 200 and c["notes"] == []


def test_missing_human_costs_leave_human_parts_empty_and_name_the_keys():
    c = cost_block(block(), CostConfig())
    assert c["hybrid"]["per_1k"] is None and c["all_human"]["per_1k"] is None
    assert c["savings"] == {"per_1k": None, "share": None}
    assert c["llm"]["per_1k"] == pytest.approx(2.0)
    assert any("costs.human_label_usd and costs.human_review_usd" in n for n in c["notes"])

    only_review_missing = cost_block(block(), CostConfig(human_label_usd=0.1))
    assert only_review_missing["all_human"]["per_1k"] == pytest.approx(100.0)
    assert only_review_missing["hybrid"]["per_1k"] is None
    [note] = only_review_missing["notes"]
    assert "costs.human_review_usd" in note and "costs.human_label_usd" not in note


def test_unknown_llm_price_says_so():
    c = cost_block(block(llm=None), COSTS)
    assert c["llm"]["per_1k"] is None and c["hybrid"]["per_1k"] is None
    assert c["cost_per_correct_label"]["value"] is None
    assert c["all_human"]["per_1k"] == pytest.approx(200.0)
    assert any("input_cost_per_mtok" in n for n in c["notes"])


def test_no_threshold_sends_every_answered_item_to_review():
    c = cost_block(block(accepted=0), COSTS)
    assert c["auto_accept"]["share"] == 0 and c["humans_per_1k"]["total"] == pytest.approx(1000)
    assert c["hybrid"]["per_1k"] == pytest.approx(2 + 40 * 190 / 200 + 100 * 10 / 200)
    assert "no confidence threshold" in c["auto_accept"]["note"]


def structured_block(setup: str, llm: float) -> dict:
    """A combined multi-label / rubric setup: no selective, no calibration, no kappa bounds."""
    b = block(setup, n=10, answered=9, llm=llm, kappa=(0.7, None), ece=None)
    del b["selective"]
    return b


def test_structured_setups_without_selective_or_calibration():
    c = cost_block(structured_block("m", 0.01), COSTS)
    assert (
        c["auto_accept"]["share"] == 0
        and "not computed for this task type" in (c["auto_accept"]["note"])
    )
    assert c["hybrid"]["per_1k"] == pytest.approx(10 + 40 * 9 / 10 + 100 * 1 / 10)

    gs = {"id": "ml", "setups": [structured_block("m", 0.01), structured_block("n", 0.02)]}
    r = recommend(gs, report(min_kappa_low=0.3, max_ece=0.2, min_auto_accept_share=0.1), COSTS)
    assert r["recommended"] is None
    for s in r["setups"]:
        assert [c["passed"] for c in s["checks"]] == [False, False, False]
        assert all(m.startswith("not available: ") for m in s["misses"])
    assert "not computed for this task type" in r["setups"][0]["misses"][2]

    r = recommend(gs, report(min_coverage=0.8), COSTS)  # no comparisons block at all
    assert (r["recommended"], r["runner_up"]) == ("m", "n")
    assert r["vs_runner_up"]["can_tell_apart"] is None


# ------------------------------------------------------------------------------ checks


def only_check(b: dict, **constraint) -> dict:
    r = recommend(gold_set(b), report(**constraint), COSTS)
    [check] = r["setups"][0]["checks"]
    return check


@pytest.mark.parametrize(
    ("overrides", "constraint", "passed", "reason"),
    [
        (
            {"kappa": (0.29, 0.181609)},
            {"min_kappa_low": 0.4},
            False,
            "kappa lower bound 0.182 < 0.40",
        ),
        ({"kappa": (0.6, 0.5)}, {"min_kappa_low": 0.4}, True, "kappa lower bound 0.500 >= 0.40"),
        ({"ece": 0.368}, {"max_ece": 0.15}, False, "ECE 0.368 > 0.15"),
        ({"ece": 0.05}, {"max_ece": 0.15}, True, "ECE 0.050 <= 0.15"),
        (
            {},
            {"min_auto_accept_share": 0.3},
            True,
            "auto-accept share (accepted labels >= 95% accurate with 90% confidence) 0.400 >= 0.30",
        ),
        (
            {"accepted": 0},
            {"min_auto_accept_share": 0.3},
            False,
            "auto-accept share (accepted labels >= 95% accurate with 90% confidence) 0.000 < 0.30",
        ),
        ({}, {"max_cost_per_1k_usd": 20}, False, "hybrid cost per 1,000 items $29.00 > $20.00"),
        ({}, {"max_cost_per_1k_usd": 29}, True, "hybrid cost per 1,000 items $29.00 <= $29.00"),
        ({}, {"min_coverage": 0.99}, False, "coverage 0.950 < 0.99"),
        ({}, {"min_coverage": 0.95}, True, "coverage 0.950 >= 0.95"),
        # A figure that is not available fails, saying why.
        ({"ece": None}, {"max_ece": 0.15}, False, "not available: no confidences for this setup"),
        (
            {"accepted": None},
            {"min_auto_accept_share": 0.1},
            False,
            "not available: no auto-accept threshold: fewer than 10 answered items have a "
            "confidence",
        ),
        ({"kappa": (0.3, None)}, {"min_kappa_low": 0.1}, False, "not available: no interval"),
        ({"llm": None}, {"max_cost_per_1k_usd": 50}, False, "not available: LLM price unknown"),
    ],
)
def test_each_constraint_passes_or_fails_with_its_reason(overrides, constraint, passed, reason):
    check = only_check(block(**overrides), **constraint)
    [(name, required)] = constraint.items()
    assert check["constraint"] == name and check["required"] == required
    assert check["passed"] is passed
    assert check["reason"].startswith(reason), check["reason"]
    assert (check["actual"] is None) == reason.startswith("not available")


def test_cost_constraint_uses_the_llm_cost_when_human_costs_are_unknown():
    r = recommend(gold_set(block()), report(max_cost_per_1k_usd=5), CostConfig())
    [check] = r["setups"][0]["checks"]
    assert check["passed"] and check["actual"] == pytest.approx(2.0)
    assert "LLM cost per 1,000 items (human costs not configured)" in check["reason"]
    assert r["pareto"][0]["cost_basis"] == "llm"


def recalibrated(selected: str) -> dict:
    b = block(ece=0.30)
    b["recalibration"] = {
        "selected": selected,
        "methods": [
            {"method": "none", "after": {"ece": {"estimate": 0.25}}},
            {"method": "temperature", "after": {"ece": {"estimate": 0.2}}},
            {"method": "platt", "after": {"ece": {"estimate": 0.04}}},
        ],
    }
    return b


def test_max_ece_uses_the_selected_recalibration_out_of_fold():
    check = only_check(recalibrated("platt"), max_ece=0.1)
    assert check["passed"] and check["actual"] == 0.04
    assert check["reason"] == "ECE after platt recalibration (out-of-fold) 0.040 <= 0.10"
    raw = only_check(recalibrated("none"), max_ece=0.1)
    assert not raw["passed"] and raw["actual"] == 0.30 and raw["reason"] == "ECE 0.300 > 0.10"


# ------------------------------------------------------------------------------ recommendation


def test_recommends_the_cheapest_qualifying_setup_and_the_next_as_runner_up():
    # Hybrid cost per 1,000 items follows the LLM's cost: cheap 27.5, b 29, c 28, d 31.
    setups = [
        block("cheap", llm=0.0005, kappa=(0.5, 0.2)),  # the cheapest, but misses kappa
        block("b", llm=0.002),
        block("c", llm=0.001),
        block("d", llm=0.004),
    ]
    row = {
        "a": "b",
        "b": "c",
        "n": 200,
        "accuracy_difference": {"estimate": -0.1, "low": -0.15, "high": -0.05, "n": 200},
        "mcnemar": {"a_only_right": 3, "b_only_right": 23, "p_value": 0.001, "p_holm": 0.004},
        "verdict": "c better",
    }
    r = recommend(gold_set(*setups, comparisons=[row]), report(min_kappa_low=0.4), COSTS)
    assert (r["recommended"], r["runner_up"]) == ("c", "b")
    assert [s["qualifies"] for s in r["setups"]] == [False, True, True, True]
    assert r["constraints"] == {"min_kappa_low": 0.4}
    assert r["reason"].startswith("`c` is the cheapest setup meeting all 1 constraint(s): $28.00")
    assert "Runner-up: `b`, $29.00" in r["reason"] and "can be told apart" in r["reason"]
    v = r["vs_runner_up"]
    assert v["can_tell_apart"] is True and v["verdict"] == "c better" and v["p_holm"] == 0.004
    # Turned round to recommended minus runner-up.
    assert (v["accuracy_difference"]["estimate"], v["accuracy_difference"]["low"]) == (0.1, 0.05)
    assert v["accuracy_difference"]["high"] == 0.15


def test_equal_costs_go_to_the_higher_kappa_lower_bound_then_kappa():
    setups = [block("a", kappa=(0.7, 0.45)), block("b", kappa=(0.6, 0.5)), block("c")]
    r = recommend(gold_set(*setups), report(min_coverage=0.9), COSTS)
    assert (r["recommended"], r["runner_up"]) == ("b", "c")  # c: (0.6, 0.5) but listed later
    assert "chosen by the order of the setups" in r["reason"]
    setups[2] = block("c", kappa=(0.55, 0.5))
    r = recommend(gold_set(*setups), report(min_coverage=0.9), COSTS)
    assert (r["recommended"], r["runner_up"]) == ("b", "c") and "chosen by kappa." in r["reason"]
    r = recommend(gold_set(setups[0], setups[2]), report(), COSTS)
    assert r["recommended"] == "c" and "chosen by kappa's lower bound" in r["reason"]


def test_without_constraints_the_choice_is_by_cost_then_kappa():
    setups = [block("a", llm=0.003, kappa=(0.9, 0.8)), block("b", llm=0.001, kappa=(0.2, 0.1))]
    r = recommend(gold_set(*setups), report(), COSTS)
    assert r["constraints"] == {} and all(s["checks"] == [] for s in r["setups"])
    assert (r["recommended"], r["runner_up"]) == ("b", "a")
    assert "no constraints are set" in r["reason"]


def test_a_setup_of_unknown_cost_ranks_after_every_priced_one():
    setups = [block("unpriced", llm=None, kappa=(0.9, 0.8)), block("priced", llm=0.01)]
    r = recommend(gold_set(*setups), report(), COSTS)
    assert (r["recommended"], r["runner_up"]) == ("priced", "unpriced")
    assert "cost unknown" in r["reason"]


def test_none_qualifies_lists_what_each_setup_misses():
    setups = [block("a", kappa=(0.29, 0.18), ece=0.37), block("b", kappa=(0.19, 0.06))]
    r = recommend(gold_set(*setups), report(min_kappa_low=0.4, max_ece=0.15), COSTS)
    assert r["recommended"] is None and r["runner_up"] is None and r["vs_runner_up"] is None
    # These blocks carry no `selection_adjusted` (as a metrics.json from before it): the
    # check says it used each setup's own bound.
    own = " (own interval, not selection-adjusted)"
    assert r["setups"][0]["misses"] == [f"kappa lower bound 0.180 < 0.40{own}", "ECE 0.370 > 0.15"]
    assert r["setups"][1]["misses"] == [f"kappa lower bound 0.060 < 0.40{own}"]
    assert r["reason"] == (
        f"No setup meets the constraints: `a` misses kappa lower bound 0.180 < 0.40{own}, "
        f"ECE 0.370 > 0.15; `b` misses kappa lower bound 0.060 < 0.40{own}."
    )
    md = "\n".join(decision_md({"gold_sets": [{**gold_set(*setups), "recommendation": r}]}))
    assert "**No setup qualifies.**" in md
    assert "| `a` | **no** | **fail** 0.180 | **fail** 0.370 |" in md


def test_decide_adds_cost_and_recommendation_in_place():
    metrics = {"gold_sets": [gold_set(block("a")), gold_set(block("b"))]}
    metrics["gold_sets"][1]["id"] = "h"

    class Exp:  # decide() reads .costs and .report only
        costs = COSTS
        report = ReportConfig(constraints=Constraints(max_ece=0.1))

    assert decide(metrics, Exp()) is metrics
    assert all("cost" in b for gs in metrics["gold_sets"] for b in gs["setups"])
    assert [gs["recommendation"]["recommended"] for gs in metrics["gold_sets"]] == ["a", "b"]
    assert metrics["recommendation"]["gold_set"] == "g"
    assert metrics["gold_sets"][0]["setups"][0]["cost"]["hybrid"]["per_1k"] == pytest.approx(29)


# ------------------------------------------------------------------------------ Pareto

SENSE = {"quality": 1, "cost": -1, "latency": -1}


def brute_force_front(rows: list[dict]) -> dict[str, list[str]]:
    """Oracle: y is dominated by x iff x is at least as good on every axis and the two
    points differ (then x is strictly better somewhere)."""
    out = {}
    for y in rows:
        gy = [SENSE[a] * y[a] for a in SENSE]
        out[y["setup"]] = [
            x["setup"]
            for x in rows
            if x is not y
            and all(SENSE[a] * x[a] >= g for a, g in zip(SENSE, gy, strict=True))
            and [SENSE[a] * x[a] for a in SENSE] != gy
        ]
    return out


@pytest.mark.parametrize("seed", range(25))
def test_pareto_front_matches_a_brute_force_oracle(seed):
    rng = random.Random(seed)
    # Few distinct values, so ties on one or more axes are common.
    rows = [
        {
            "setup": f"s{i}",
            "quality": rng.choice([0.2, 0.4, 0.6]),
            "cost": rng.choice([10.0, 20.0, 30.0]),
            "latency": rng.choice([0.5, 1.0]),
        }
        for i in range(rng.randint(1, 9))
    ]
    oracle = brute_force_front(rows)
    for p in pareto_front(rows):
        assert p["dominated_by"] == oracle[p["setup"]]
        assert p["on_front"] is (not oracle[p["setup"]])
    assert any(p["on_front"] for p in pareto_front(rows))


def test_pareto_unknown_values():
    rows = [
        {"setup": "a", "quality": 0.6, "cost": 10.0, "latency": None},
        {"setup": "b", "quality": 0.5, "cost": 20.0, "latency": None},
        {"setup": "c", "quality": 0.4, "cost": None, "latency": None},
    ]
    front = {p["setup"]: p for p in pareto_front(rows)}
    # Latency unknown for all: judged on quality and cost. c's cost is unknown: incomparable.
    assert front["b"]["dominated_by"] == ["a"] and not front["b"]["on_front"]
    assert front["a"]["on_front"] and front["c"]["on_front"]
    assert pareto_front([]) == []


# ------------------------------------------------------------------------------ end to end


@pytest.mark.http
def test_run_writes_the_recommendation_to_metrics_and_report(srv, experiment):
    srv.responder = per_item({"g05": Reply(status=400, content="unsupported input")})
    base = {"api_base": srv.base_url, "output_cost_per_mtok": 0.0}
    exp = experiment(
        srv,
        models=[
            {"id": "pricey", "model": "openai/fake-a", "input_cost_per_mtok": 400.0, **base},
            {"id": "cheap", "model": "openai/fake-b", "input_cost_per_mtok": 100.0, **base},
        ],
        extra={
            "costs": {"human_label_usd": 0.5, "human_review_usd": 0.2, "labels_per_item": 3},
            "report": {
                "bootstrap": 200,
                "seed": 0,
                "constraints": {"min_coverage": 0.9, "max_cost_per_1k_usd": 500},
            },
        },
    )
    result = CliRunner().invoke(app, ["run", str(exp.config), "--quiet"])
    assert result.exit_code == 0, result.output
    [run_dir] = exp.run_dirs()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(metrics)

    gs = metrics["gold_sets"][0]
    r = gs["recommendation"]
    assert metrics["recommendation"] == r
    assert r["constraints"] == {"min_coverage": 0.9, "max_cost_per_1k_usd": 500.0}
    assert (r["recommended"], r["runner_up"]) == ("zs@cheap", "zs@pricey")
    assert r["vs_runner_up"]["can_tell_apart"] is False  # the same labels from both
    for b in gs["setups"]:
        c, n = b["cost"], b["n_items"]
        assert b["coverage"]["answered"] == 11 and n == 12  # g05 failed: one full label
        llm = b["usage"]["cost_usd_per_item"]
        assert llm > 0 and c["llm"]["per_1k"] == pytest.approx(llm * 1000, abs=1e-6)
        reviews = (11 - c["auto_accept"]["accepted"]) / n
        expected = llm + 0.2 * reviews + 0.5 * 1 / n
        assert c["hybrid"]["per_1k"] == pytest.approx(1000 * expected, abs=1e-5)
        assert c["all_human"]["per_1k"] == pytest.approx(1500.0)
    costs = {s["setup"]: s["cost"]["hybrid"]["per_1k"] for s in r["setups"]}
    assert costs["zs@cheap"] < costs["zs@pricey"]

    text = (run_dir / "report.md").read_text()
    assert "### Recommendation" in text and "**Recommended: `zs@cheap`**" in text
    assert "#### Cost per setup" in text and "#### Quality-cost-latency Pareto front" in text
    assert text.index("### Leaderboard") < text.index("### Recommendation")
    assert re.search(r"^\| `zs@cheap` \| yes \| pass \$[0-9.]+ \| pass 0\.917 \|", text, re.M)
    # Each statement once: the reason says the two cannot be told apart, the next line
    # gives the evidence without repeating it (report.md, report.html and the console).
    section = text[text.index("### Recommendation") : text.index("#### Cost per setup")]
    html = (run_dir / "report.html").read_text()
    callout = html[html.index('<div class="callout">') : html.index("<h4>Constraints</h4>")]
    for where in (section, callout, flat(result.output)):
        assert where.count("cannot be told apart") == 1, where
    assert "Recommended vs runner-up on the same 12 items: accuracy difference" in section

    # `prelabel report` rescoring keeps the decision.
    (run_dir / "metrics.json").unlink()
    assert CliRunner().invoke(app, ["report", str(run_dir)]).exit_code == 0
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["recommendation"] == r
