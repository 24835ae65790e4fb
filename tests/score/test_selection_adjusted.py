"""The recommendation after selection (statistics.md section 2): scoring lays out every
setup's simultaneous intervals, the decision checks min_kappa_low against them and carries
the chosen setup's, and the reports show them with their n and what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import bare_manifest

from harness.config import CostConfig, Experiment, ReportConfig
from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.report.decision_md import decision_section
from harness.report.html import render_html
from harness.run.pipeline import score_experiment
from harness.score.decision import recommend

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "harness/schemas/metrics.schema.json").read_text()
)
N_ITEMS = 150


def experiment(n_setups: int, constraints: dict | None = None, seed: int = 4):
    """One gold set of N_ITEMS items (one annotator), n_setups setups right on about 80%."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, N_ITEMS)
    labels = ("no", "yes")
    items = tuple(GoldItem(f"i{i}", {"text": "t"}, {"ann": labels[t]}) for i, t in enumerate(truth))
    gold = GoldSet("g", "g.jsonl", items, ("ann",), "0" * 64)
    setups = [Setup(f"p{j}@m", f"p{j}", "m") for j in range(n_setups)]
    records = []
    for setup in setups:
        right = rng.random(N_ITEMS) < 0.8
        for i, t in enumerate(truth):
            label = labels[t if right[i] else 1 - t]
            records.append(LabelRecord(setup=setup.id, gold_set="g", item=f"i{i}", label=label))
    exp = Experiment.model_validate(
        {
            "name": "selection",
            "task": {"type": "classification", "labels": list(labels)},
            "gold_sets": [{"id": "g", "path": "g.jsonl"}],
            "prompts": [{"id": f"p{j}", "template": "t.j2"} for j in range(n_setups)],
            "models": [{"id": "m", "model": "openai/m"}],
            "report": {"bootstrap": 300, "constraints": constraints or {}},
        }
    )
    return score_experiment(exp, [gold], setups, records)


@pytest.fixture(scope="module")
def ten() -> dict:
    return experiment(10)


def test_every_setup_gets_a_simultaneous_interval_wider_than_its_own(ten):
    jsonschema.validate({**ten, "run_id": "r", "experiment": "selection"}, SCHEMA)
    [gs] = ten["gold_sets"]
    block = gs["selection_adjusted"]
    assert block["n_setups"] == 10 and block["n"] == N_ITEMS and block["n_clusters"] is None
    assert block["level"] == 0.95 and block["method"].startswith("simultaneous bootstrap")
    assert block["critical_value"]["kappa"] > 1.96
    for b in gs["setups"]:
        for name in ("accuracy", "kappa"):
            own, adj = b[name], block["setups"][b["setup"]][name]
            assert adj["estimate"] == own["estimate"] and adj["n"] == N_ITEMS
            assert adj["low"] < own["low"] and adj["high"] > own["high"], (b["setup"], name)


def test_the_recommendation_carries_the_chosen_setups_adjusted_and_own_figures(ten):
    rec = ten["recommendation"]
    sa = rec["selection_adjusted"]
    chosen = rec["recommended"]
    assert sa["setup"] == chosen and sa["n_setups"] == 10 and sa["n"] == N_ITEMS
    [gs] = ten["gold_sets"]
    own = next(b for b in gs["setups"] if b["setup"] == chosen)
    assert sa["unadjusted"] == {"accuracy": own["accuracy"], "kappa": own["kappa"]}
    assert sa["kappa"] == gs["selection_adjusted"]["setups"][chosen]["kappa"]


def test_min_kappa_low_is_checked_against_the_adjusted_bound(ten):
    [gs] = ten["gold_sets"]
    best = max(gs["setups"], key=lambda b: b["kappa"]["low"])
    adj_low = gs["selection_adjusted"]["setups"][best["setup"]]["kappa"]["low"]
    # A floor its own bound clears but its selection-adjusted bound does not.
    floor = round((adj_low + best["kappa"]["low"]) / 2, 4)
    cfg = ReportConfig(constraints={"min_kappa_low": floor})
    r = recommend(gs, cfg, CostConfig())
    checks = {s["setup"]: s["checks"][0] for s in r["setups"]}
    check = checks[best["setup"]]
    assert check["bound"] == "selection_adjusted" and not check["passed"]
    assert check["actual"] == adj_low
    assert check["reason"].endswith("(selection-adjusted over 10 setups)"), check["reason"]
    assert r["recommended"] is None
    # The same gold set without the block (a metrics.json from before it): own bounds.
    old = {k: v for k, v in gs.items() if k != "selection_adjusted"}
    r = recommend(old, cfg, CostConfig())
    check = next(s["checks"][0] for s in r["setups"] if s["setup"] == best["setup"])
    assert check["bound"] == "unadjusted" and check["passed"]
    assert r["recommended"] is not None
    assert r["selection_adjusted"]["method"] is None and r["selection_adjusted"]["note"]


def test_one_setup_keeps_its_own_intervals():
    metrics = experiment(1)
    jsonschema.validate({**metrics, "run_id": "r", "experiment": "selection"}, SCHEMA)
    [gs] = metrics["gold_sets"]
    [b] = gs["setups"]
    sa = metrics["recommendation"]["selection_adjusted"]
    assert sa["n_setups"] == 1 and sa["method"].startswith("none: one setup")
    assert (sa["accuracy"], sa["kappa"]) == (b["accuracy"], b["kappa"])


def test_the_reports_show_the_adjusted_interval_with_its_n_and_its_promise(ten):
    [gs] = ten["gold_sets"]
    sa = ten["recommendation"]["selection_adjusted"]
    text = "\n".join(decision_section(gs))
    [line] = [x for x in text.splitlines() if x.startswith("**After selection**")]
    assert f"(n = {N_ITEMS} items)" in line and "95% simultaneous over the 10 setups" in line
    assert f"[{sa['kappa']['low']:.3f}, {sa['kappa']['high']:.3f}]" in line
    assert "every one of the 10 setups' true accuracy lies in its adjusted interval" in line
    html = render_html(bare_manifest(), {**ten, "run_id": "r", "experiment": "selection"})
    assert "<strong>After selection</strong> (n = 150 items)" in html
    assert f"[{sa['kappa']['low']:.3f}, {sa['kappa']['high']:.3f}]" in html
