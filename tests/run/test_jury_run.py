"""A jury end to end over HTTP to the fake server: `prelabel plan` shows it with no calls,
`prelabel run` makes no call for it and scores it as a setup whose numbers are those of the
members' labels combined by hand, `prelabel report` rebuilds it, `prelabel label` deploys it."""

from __future__ import annotations

import json
from collections import Counter

import jsonschema
import numpy as np
import pytest
from conftest import GOLD, LABELS, SCHEMA, flat, invoke, last_user_text, majority, read_labels
from fake_openai import Reply
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from harness.gate.baseline import snapshot
from harness.metrics.audit import wilson_interval
from harness.run.store import load_run_context

MEMBERS = ["zs@m1", "zs@m2", "zs@m3"]


def answer(model: str, text: str) -> str:
    low = text.lower()
    if model == "m1":  # the keyword rules, and a quirk no gold item shows: lamps are good
        if "lamp" in low:
            return "positive"
        return "positive" if "great" in low else "negative" if "awful" in low else "neutral"
    if model == "m2":  # sees only praise
        return "positive" if "great" in low or "love" in low else "neutral"
    if "coffee" in low:  # m3 fails on one item: no label in its reply
        return "banana"
    return "negative" if "awful" in low or "broke" in low else "neutral"


def responder(request_json: dict, attempt: int) -> Reply:
    return Reply(answer(request_json["model"].split("/")[-1], last_user_text(request_json)))


def by_hand(labels: list[dict], members: list[str], items: list[str]) -> list[str | None]:
    """One vote per member that answered; this gold set has no tied item (checked)."""
    votes = {(r["setup"], r["item"]): r.get("label") for r in labels}
    out = []
    for item in items:
        counts = Counter(v for s in members if (v := votes.get((s, item))) is not None)
        if not counts:
            out.append(None)
            continue
        (top, n), *rest = counts.most_common()
        assert not rest or rest[0][1] < n, f"{item} is tied: the test needs a clear majority"
        out.append(top)
    return out


@pytest.fixture
def jury_experiment(srv, experiment):
    srv.responder = responder
    models = [
        {
            "id": m,
            "model": f"openai/{m}",
            "api_base": srv.base_url,
            "input_cost_per_mtok": 1.0 + i,
            "output_cost_per_mtok": 2.0,
            "structured_output": "off",
        }
        for i, m in enumerate(["m1", "m2", "m3"])
    ]
    juries = [
        {"id": "panel", "setups": MEMBERS},
        {"id": "wpanel", "setups": MEMBERS, "rule": "weighted"},
    ]
    return experiment(
        srv, models=models, extra={"juries": juries, "report": {"bootstrap": 100, "seed": 0}}
    )


def test_a_jury_costs_no_call_scores_as_its_members_combined_and_deploys(srv, jury_experiment):
    exp = jury_experiment
    planned = invoke("plan", str(exp.config), "--json")
    assert planned.exit_code == 0, planned.output
    estimate = json.loads(planned.stdout)  # stderr may hold a warning (no project boundary)
    rows = {r["setup"]: r for r in estimate["setups"]}
    assert rows["panel"]["calls"] == rows["wpanel"]["calls"] == 0
    assert estimate["total"]["calls"] == 3 * len(GOLD)

    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    [run_dir] = exp.run_dirs()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    # The members' calls and not one more: counted at the server and in the manifest.
    assert srv.count == 3 * len(GOLD)
    assert manifest["totals"]["calls"] == 3 * len(GOLD)
    labels = read_labels(run_dir)
    assert {r["setup"] for r in labels} == set(MEMBERS)  # jury labels are never written

    metrics = json.loads((run_dir / "metrics.json").read_text())
    gs = metrics["gold_sets"][0]
    blocks = {b["setup"]: b for b in gs["setups"]}
    items = [item_id for item_id, _, _ in GOLD]
    ref = [majority(anns) for _, _, anns in GOLD]
    hand = by_hand(labels, MEMBERS, items)
    assert None not in hand
    jury = blocks["panel"]
    assert jury["jury"] == {"members": MEMBERS, "rule": "majority", "extra_calls": 0}
    assert jury["accuracy"]["estimate"] == pytest.approx(
        np.mean([h == r for h, r in zip(hand, ref, strict=True)]), abs=1e-6
    )
    assert jury["kappa"]["estimate"] == pytest.approx(cohen_kappa_score(ref, hand), abs=1e-6)
    cm = confusion_matrix(ref, hand, labels=LABELS)
    assert [row[:3] for row in jury["confusion"]["matrix"]] == cm.tolist()
    assert jury["coverage"]["answered"] == len(GOLD)
    assert jury["usage"]["calls_this_run"] == 0
    # Its cost is the members' summed; m3's failed reply was paid for too.
    spent = sum(r["cost_usd"] for r in labels) / len(GOLD)
    assert jury["usage"]["cost_usd_per_item"] == pytest.approx(spent, rel=1e-3)
    assert blocks["zs@m3"]["coverage"]["answered"] == len(GOLD) - 1
    # A setup like any other: on the leaderboard, compared with each member, recommendable.
    assert {"panel", "wpanel"} <= {r["setup"] for r in metrics["leaderboard"]}
    pairs = {(c["a"], c["b"]) for c in gs["comparisons"]}
    assert all((m, "panel") in pairs for m in MEMBERS)
    assert "panel" in {s["setup"] for s in gs["recommendation"]["setups"]}
    [summary] = [j for j in metrics["juries"] if j["id"] == "wpanel"]
    assert set(summary["deploy_weights"]) == set(MEMBERS)

    jsonschema.validate(metrics, json.loads(SCHEMA.read_text()))
    # The gate sees the jury as a setup, with the labels scoring gave it.
    gated = snapshot(load_run_context(run_dir))["setups"]["panel"]["gold_sets"]["g"]
    assert gated["predictions"] == hand
    # `prelabel report` rebuilds the same jury from the same labels.
    assert invoke("report", str(run_dir)).exit_code == 0
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["gold_sets"][0]["setups"] == gs["setups"]
    # One run for both tests: litellm's import alone takes most of this file's time.
    deploy_the_jury(srv, exp, exp.root / "new.jsonl")


def deploy_the_jury(srv, exp, new) -> None:
    """`prelabel label --setup panel`: the members label the new items (one call each per
    item), and their votes are combined as on the gold set."""
    texts = ["A great toaster.", "Awful kettle, it broke.", "It is a lamp.", "Great but awful."]
    new.write_text(
        "".join(json.dumps({"id": f"n{i}", "text": t}) + "\n" for i, t in enumerate(texts)),
        encoding="utf-8",
    )
    before = srv.count
    result = invoke("label", str(exp.config), "--input", str(new), "--setup", "panel")
    assert result.exit_code == 0, result.output
    assert srv.count - before == 3 * len(texts)  # each member once per new item
    [label_dir] = [d for d in exp.run_dirs() if "-label-" in d.name]
    rows = [json.loads(x) for x in (label_dir / "prelabels.jsonl").read_text().splitlines()]
    hand = by_hand(read_labels(label_dir), MEMBERS, [f"n{i}" for i in range(len(texts))])
    assert [r["label"] for r in rows] == hand
    assert hand[2] == "neutral"  # the lamp: m2 and m3 outvote m1
    made_of = json.loads((label_dir / "manifest.json").read_text())["jury"]
    assert made_of["members"] == MEMBERS and made_of["rule"] == "majority"
    assert all(r["setup"] == "panel" for r in rows)
    # The weighted jury reuses the members' cached labels: no call at all.
    before = srv.count
    assert invoke("label", str(exp.config), "--input", str(new), "--setup", "wpanel").exit_code == 0
    assert srv.count == before
    # A jury the evaluation did not score (other members) has no weights to deploy.
    exp.data["juries"][0]["setups"] = MEMBERS[:2]
    exp.rewrite()
    refused = invoke("label", str(exp.config), "--input", str(new), "--setup", "panel")
    assert refused.exit_code == 2
    assert "is not the jury evaluation run" in flat(refused.output)


def test_the_reports_say_what_each_jury_is_made_of(srv, jury_experiment):
    """report.md and report.html name each jury's members, rule, that it made no call, how
    its weights stay out of fold, and each member's record behind its weight, with its n."""
    exp = jury_experiment
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    [run_dir] = exp.run_dirs()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    by_id = {j["id"]: j for j in metrics["juries"]}
    md = (run_dir / "report.md").read_text()
    section = md[md.index("## Juries") :]
    assert "`panel`: majority vote of `zs@m1`, `zs@m2`, `zs@m3`" in section
    assert "`wpanel`: weighted vote of" in section
    assert "It made 0 calls" in section and "other folds of 5" in section
    for member in by_id["wpanel"]["gold_sets"][0]["members"]:
        right, n = member["right"], member["answered"]
        iv = wilson_interval(right, n)
        row = (
            f"| `g` | `{member['setup']}` | {right} / {n} | "
            f"{right / n:.3f} [{iv.low:.3f}, {iv.high:.3f}] |"
        )
        assert row in section  # the record behind each weight, with its n and interval
        weight = by_id["wpanel"]["deploy_weights"][member["setup"]]
        assert f"{weight:.3f} |" in section
    html = (run_dir / "report.html").read_text()
    block = html[html.index('id="juries"') :]
    assert "<code>panel</code>: majority vote of" in block
    assert "<code>wpanel</code>: weighted vote of" in block
    assert block.count("<tr><td>g</td>") == 2 * len(MEMBERS)
