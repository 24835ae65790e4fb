"""`prelabel plan CONFIG --power` and the power block of metrics.json (statistics.md
section 8): from the latest run of the config, from a pilot, or an explanation of what to
do when there is neither; bad options exit 2."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import jsonschema
import numpy as np
import pytest
from conftest import SCHEMA, flat, invoke

from harness.metrics.power import (
    mcnemar_detectable_difference,
    mcnemar_exact_power,
    mcnemar_sample_size,
)

LABELS = ["pos", "neg", "neu"]


@pytest.fixture
def replay_exp(tmp_path, monkeypatch):
    """120 gold items, two replayed setups (accuracy about 0.85 and 0.7): no model is called."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 120)
    gold = []
    for i, t in enumerate(truth):
        notes = {a: LABELS[t] if rng.random() < 0.8 else LABELS[rng.integers(0, 3)] for a in "abc"}
        gold.append({"id": f"i{i}", "text": "t", "annotations": notes})
    (tmp_path / "gold.jsonl").write_text("\n".join(json.dumps(g) for g in gold) + "\n")
    for sid, acc in (("good", 0.85), ("bad", 0.7)):
        rows = [
            {"id": f"i{i}", "label": LABELS[t] if rng.random() < acc else LABELS[rng.integers(3)]}
            for i, t in enumerate(truth)
        ]
        (tmp_path / f"{sid}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    config = {
        "name": "pw",
        "task": {"type": "classification", "labels": LABELS},
        "gold_sets": [{"id": "g", "path": "gold.jsonl"}],
        "models": [{"id": s, "model": f"replay/{s}.jsonl"} for s in ("good", "bad")],
        "run": {"runs_dir": str(tmp_path / "runs")},
        "report": {"bootstrap": 200, "power": {"accuracy_differences": [0.05, 0.1]}},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("PRELABEL_PROJECT_ROOT", str(tmp_path))
    return path


def _plan(config, *extra):
    result = invoke("plan", str(config), "--power", *extra)
    return result


def test_no_run_and_no_pilot_explains_what_to_do(replay_exp):
    result = _plan(replay_exp)
    assert result.exit_code == 0
    text = flat(result.stdout)
    assert "nothing to plan from" in text
    assert f"prelabel run {replay_exp}" in text and "--discordance RATE" in text
    as_json = json.loads(_plan(replay_exp, "--json").stdout)
    assert as_json["power"] is None and "--discordance" in as_json["reason"]


def test_pilot_discordance_gives_the_exact_and_connor_sizes(replay_exp):
    result = _plan(replay_exp, "--discordance", "0.2", "--difference", "0.05", "--json")
    assert result.exit_code == 0, result.output
    [plan] = json.loads(result.stdout)["plans"]
    assert plan["pairs"] == 1 and plan["alpha_per_pair"] == 0.05
    [target] = plan["accuracy"]["targets"]
    z = NormalDist().inv_cdf
    connor = (z(0.975) * math.sqrt(0.2) + z(0.8) * math.sqrt(0.2 - 0.05**2)) ** 2 / 0.05**2
    assert target["items_needed_connor"] == math.ceil(connor)
    assert target["items_needed"] == mcnemar_sample_size(0.2, 0.05, 0.05, 0.8)
    assert target["items_needed"] > target["items_needed_connor"]  # the exact test is strict
    assert "needs the bootstrap SE" in plan["kappa"]["note"]  # a pilot rate says nothing of it
    text = flat(_plan(replay_exp, "--discordance", "0.2", "--difference", "0.05").stdout)
    assert f"| accuracy | 0.050 | {target['items_needed']:,} |" in text


def test_plan_from_the_latest_run_matches_its_metrics(replay_exp):
    assert invoke("run", str(replay_exp), "-q").exit_code == 0
    [run_dir] = (replay_exp.parent / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    jsonschema.validate(metrics, json.loads(SCHEMA.read_text()))
    block = metrics["gold_sets"][0]["power"]
    basis = block["basis"]
    assert basis["setups"] == ["good", "bad"] and basis["n"] == 120
    b, c = basis["a_only_right"], basis["b_only_right"]
    psi = (b + c) / 120
    assert block["accuracy"]["discordance"]["estimate"] == pytest.approx(psi, abs=1e-6)
    detectable = block["accuracy"]["detectable_difference"]
    assert detectable == pytest.approx(mcnemar_detectable_difference(120, psi), abs=1e-6)
    t05 = block["accuracy"]["targets"][0]
    assert t05["items_needed"] == mcnemar_sample_size(psi, 0.05)
    assert t05["power_now"] == pytest.approx(mcnemar_exact_power(120, psi, 0.05), abs=1e-6)
    low, high = t05["items_needed_range"]
    assert low < t05["items_needed"] < high
    kappa = block["kappa"]
    # The per-item spread is SE x sqrt(n); the Wald plan scales it back to each n.
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)
    assert kappa["sd_per_item"] == pytest.approx(kappa["se"] * math.sqrt(120), abs=1e-5)
    assert kappa["targets"][0]["difference"] == 0.05
    want = (z * kappa["se"] * math.sqrt(120) / 0.05) ** 2
    assert abs(kappa["targets"][0]["items_needed"] - want) <= 1.01
    assert kappa["detectable_difference"] == pytest.approx(z * kappa["se"], abs=1e-5)
    report = flat((run_dir / "report.md").read_text())
    assert "### How many gold items?" in report
    assert "Smallest difference this gold set can detect (n=120" in report
    assert "How many gold items?" in (run_dir / "report.html").read_text()

    # plan --power recomputes from the stored basis with the options given now.
    result = _plan(replay_exp, "--difference", "0.05", "--json")
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)
    assert planned["run_id"] == metrics["run_id"]
    [plan] = planned["plans"]
    assert plan["basis"] == basis
    assert plan["accuracy"]["targets"] == [t05]
    assert plan["kappa"] == block["kappa"]

    # A run scored before the power block existed: planned from its comparisons row.
    for gs in metrics["gold_sets"]:
        del gs["power"]
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    [old] = json.loads(_plan(replay_exp, "--difference", "0.05", "--json").stdout)["plans"]
    assert old["basis"]["a_only_right"] == b and old["basis"]["b_only_right"] == c
    assert old["accuracy"]["targets"] == [t05]
    assert "needs the bootstrap SE" in old["kappa"]["note"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--discordance", "1.5"], "--discordance must be in (0, 1]"),
        (["--pilot-items", "50"], "--pilot-items goes with --discordance"),
        (["--discordance", "0.2", "--difference", "0"], "--difference must be between 0 and 1"),
    ],
)
def test_bad_options_exit_2_naming_the_option(replay_exp, args, message):
    result = _plan(replay_exp, *args)
    assert result.exit_code == 2
    assert message in flat(result.stderr)


def test_bad_power_config_names_file_and_key(replay_exp):
    config = json.loads(replay_exp.read_text())
    config["report"]["power"] = {"accuracy_differences": [0.05, 1.5]}
    replay_exp.write_text(json.dumps(config))
    result = _plan(replay_exp)
    assert result.exit_code == 2
    text = flat(result.stderr)
    assert "exp.yaml" in text and "report.power.accuracy_differences" in text


def test_holm_over_the_pairs_is_planned_at_alpha_over_k():
    from harness.score.power import pilot_basis, power_block

    basis = pilot_basis(0.2, 300, pairs=6)
    holm = power_block(basis, {"accuracy_differences": [0.05]})
    plain = power_block(basis, {"accuracy_differences": [0.05], "holm": False})
    assert holm["alpha_per_pair"] == pytest.approx(0.05 / 6, abs=1e-6)
    assert plain["alpha_per_pair"] == 0.05
    [t_holm], [t_plain] = holm["accuracy"]["targets"], plain["accuracy"]["targets"]
    assert t_holm["items_needed"] == mcnemar_sample_size(0.2, 0.05, 0.05 / 6)
    assert t_plain["items_needed"] == mcnemar_sample_size(0.2, 0.05, 0.05)
    assert t_holm["items_needed"] > t_plain["items_needed"]
    assert "Holm over 6 pairs" in holm["multiplicity"]
    # The pilot's size gives the detectable difference, at alpha / 6 as well.
    d = holm["accuracy"]["detectable_difference"]
    assert d == pytest.approx(mcnemar_detectable_difference(300, 0.2, 0.05 / 6), abs=1e-6)


def test_clustered_items_multiply_the_sizes_by_the_design_effect():
    from harness.score.power import power_basis, power_block

    rng = np.random.default_rng(2)
    ref = np.repeat(rng.integers(0, 3, 40), 5)  # 40 clusters of 5 identical items
    good = np.where(np.repeat(rng.random(40) < 0.85, 5), ref, (ref + 1) % 3)
    bad = np.where(np.repeat(rng.random(40) < 0.6, 5), ref, (ref + 2) % 3)
    preds = {"good": good, "bad": bad}
    boot = {"n_boot": 2000, "seed": 0, "level": 0.95}
    cfg = {"accuracy_differences": [0.1]}
    plain = power_block(power_basis(ref, preds, 3, boot), cfg)
    basis = power_basis(ref, preds, 3, boot, clusters=np.repeat(np.arange(40), 5))
    clustered = power_block(basis, cfg)
    deff = basis["design_effect"]
    assert basis["n_clusters"] == 40 and deff == pytest.approx(5, rel=0.25)
    [t_plain], [t_cl] = plain["accuracy"]["targets"], clustered["accuracy"]["targets"]
    assert t_cl["items_needed"] == math.ceil(t_plain["items_needed"] * deff)
    assert "40 clusters" in clustered["assumption"]
    # The gold set's own figures are those of its 200 / deff independent-item equivalent.
    n_eff = int(200 / deff)
    psi = clustered["accuracy"]["discordance"]["estimate"]
    want = mcnemar_detectable_difference(n_eff, psi)
    assert clustered["accuracy"]["detectable_difference"] == pytest.approx(want, abs=1e-5)
    assert clustered["kappa"]["se"] > plain["kappa"]["se"]
