"""Selection-adjusted intervals for multi-label and ranking gold sets (statistics.md section
2; harness/score/selection_sets.py, harness/metrics/selection.ratio_band): the same band as
classification's on the same items, its coverage after picking the best of 10 equal setups,
and the blocks and sentences of a real run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from fake_openai import FakeOpenAIServer, last_user_text

from harness.metrics.selection import max_t_band, ratio_band, simultaneous_intervals
from harness.run.pipeline import run_experiment

SCHEMA = json.loads((Path(__file__).parents[2] / "harness/schemas/metrics.schema.json").read_text())


def test_a_share_band_is_the_accuracy_band_of_the_same_items():
    rng = np.random.default_rng(3)
    n, k = 120, 4
    truth = rng.integers(0, 3, n)
    preds = np.where(rng.random((n, k)) < 0.7, truth[:, None], rng.integers(0, 3, (n, k)))
    clusters = np.repeat(np.arange(30), 4)
    for groups in (None, clusters):
        want = simultaneous_intervals(
            truth, preds, 3, ("accuracy",), n_boot=300, seed=9, clusters=groups
        )["accuracy"]
        correct = (preds == truth[:, None]).astype(float)
        got = ratio_band(correct, np.ones_like(correct), 300, 9, clusters=groups)
        np.testing.assert_allclose(got.estimate, want.estimate)
        np.testing.assert_allclose(got.low, want.low, atol=1e-12)
        np.testing.assert_allclose(got.high, want.high, atol=1e-12)
        assert got.critical == pytest.approx(want.critical)
        assert (got.n, got.n_clusters) == (want.n, want.n_clusters)


def test_a_mean_over_answered_items_is_banded_on_its_own_scale():
    """Kendall's tau: sum over answered items / answered items, replicated by hand."""
    rng = np.random.default_rng(5)
    n, k, n_boot = 50, 3, 200
    tau = rng.uniform(-1, 1, (n, k))
    answered = rng.random((n, k)) < 0.8
    num, den = np.where(answered, tau, 0.0), answered.astype(float)
    band = ratio_band(num, den, n_boot, 4, share=False, bounds=(-1.0, 1.0))
    draws = np.random.default_rng(4).integers(0, n, (n_boot, n))
    weights = np.stack([np.bincount(d, minlength=n) for d in draws]).astype(float)
    reps = (weights @ num) / (weights @ den)
    estimate = num.sum(axis=0) / den.sum(axis=0)
    low, high, _, critical, _ = max_t_band(estimate, reps, 0.95, (-1.0, 1.0))
    np.testing.assert_allclose(band.estimate, estimate)
    np.testing.assert_allclose(band.low, low)
    np.testing.assert_allclose(band.high, high)
    assert band.critical == pytest.approx(critical)
    assert (band.low <= band.estimate).all() and (band.estimate <= band.high).all()


def test_the_best_of_ten_equal_setups_is_covered(capsys):
    """The winner's curse on exact match (a share) and on a mean tau: 10 setups of equal
    truth, the best observed one picked; its adjusted interval covers the truth >= 0.93."""
    rng = np.random.default_rng(20261206)
    sims, n, k, n_boot = 400, 100, 10, 300
    hits = {"share": 0, "tau": 0}
    own = 0
    truth = float(np.mean(np.clip(np.random.default_rng(0).normal(0.3, 0.5, 400_000), -1, 1)))
    for s in range(sims):
        exact = (rng.random((n, k)) < 0.6).astype(float)
        band = ratio_band(exact, np.ones_like(exact), n_boot, s)
        j = int(np.argmax(band.estimate))
        hits["share"] += band.low[j] <= 0.6 <= band.high[j]
        p = exact[:, j].mean()
        half = 1.96 * np.sqrt(p * (1 - p) / n)
        own += p - half <= 0.6 <= p + half
        tau = np.clip(rng.normal(0.3, 0.5, (n, k)), -1, 1)
        band = ratio_band(tau, np.ones_like(tau), n_boot, s, share=False, bounds=(-1.0, 1.0))
        j = int(np.argmax(band.estimate))
        hits["tau"] += band.low[j] <= truth <= band.high[j]
    share, tau_cov, unadjusted = hits["share"] / sims, hits["tau"] / sims, own / sims
    with capsys.disabled():
        print(
            f"\nbest of {k} equal setups, n={n}, {sims} gold sets: exact match adjusted "
            f"{share:.3f}, own {unadjusted:.3f}; mean tau adjusted {tau_cov:.3f}"
        )
    assert share >= 0.93 and tau_cov >= 0.93
    assert unadjusted < share - 0.1  # what the adjustment is for


TOPICS = ["food", "service", "price"]


def run_two_setups(tmp_path, task, rows, answer, template):
    """Two models on one fake server: the responder answers by the model asked."""
    (tmp_path / "t.j2").write_text(template)
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def responder(req, attempt):
        return answer(req["model"], last_user_text(req))

    with FakeOpenAIServer(responder) as srv:
        models = [
            {"id": m, "model": f"openai/{m}", "api_base": srv.base_url} for m in ("good", "poor")
        ]
        config = {
            "name": "structured",
            "task": task,
            "gold_sets": [{"id": "g", "path": "g.jsonl"}],
            "prompts": [{"id": "p", "template": "t.j2"}],
            "models": models,
            "run": {"retries": 0},
            "report": {"bootstrap": 200},
        }
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        result = run_experiment(tmp_path / "c.yaml", runs_dir=tmp_path / "runs")
    jsonschema.validate(result.metrics, SCHEMA)
    return result.metrics, (result.run_dir / "report.md").read_text()


def test_a_multilabel_run_adjusts_exact_match_and_says_kappa_is_not(tmp_path):
    rows = [
        {"id": f"i{i}", "text": " ".join(TOPICS[: i % 4]), "annotations": {"x": TOPICS[: i % 4]}}
        for i in range(24)
    ]

    def answer(model, text):
        words = text.split("Text: ")[1].split()
        chosen = [t for t in TOPICS if t in words]
        if model == "poor" and len(chosen) > 1:
            chosen = chosen[:1]
        return json.dumps({"labels": chosen})

    metrics, report = run_two_setups(
        tmp_path,
        {"type": "multilabel", "labels": TOPICS},
        rows,
        answer,
        "--- user\nTopics: {{ label_names | join(', ') }}\nText: {{ item.text }}\n",
    )
    gs = metrics["gold_sets"][0]
    block = gs["selection_adjusted"]
    assert block["statistics"] == {"accuracy": "exact match", "kappa": None}
    assert block["n_setups"] == 2 and block["n"] == 24 and block["critical_value"]["accuracy"]
    for b in gs["setups"]:
        adj = block["setups"][b["setup"]]
        assert adj["accuracy"]["estimate"] == pytest.approx(b["accuracy"]["estimate"])
        # Simultaneous over two setups: never narrower than the setup's own interval.
        own = b["accuracy"]
        if own["low"] is not None and own["high"] > own["low"]:
            assert adj["accuracy"]["high"] - adj["accuracy"]["low"] >= own["high"] - own["low"]
        assert adj["kappa"]["estimate"] is None and "mean over" in adj["kappa"]["note"]
    rec = gs["recommendation"]["selection_adjusted"]
    assert rec["method"] is not None and rec["statistics"]["accuracy"] == "exact match"
    assert "**After selection** (n = 24 items): exact match" in report
    assert "kappa not adjusted: a mean over the labels' parts" in report


def test_a_ranking_run_adjusts_top1_and_tau(tmp_path):
    cands = [{"id": c, "text": c * (i + 1)} for i, c in enumerate("ABC")]
    rows = [
        {
            "id": f"k{i}",
            "prompt": f"q{i}",
            "candidates": cands,
            "annotations": {"x": ["C", "B", "A"], "y": ["C", "A", "B"]},
        }
        for i in range(20)
    ]

    def answer(model, text):
        q = int(text.split("\n")[0][1:])
        if model == "poor" and q % 2:
            return json.dumps({"ranking": ["A", "B", "C"]})
        return json.dumps({"ranking": ["C", "B", "A"]})

    metrics, report = run_two_setups(
        tmp_path,
        {"type": "ranking"},
        rows,
        answer,
        "--- user\n{{ item.prompt }}\n{% for c in item.candidates %}{{ c.id }}: "
        "{{ c.text }}\n{% endfor %}",
    )
    gs = metrics["gold_sets"][0]
    block = gs["selection_adjusted"]
    assert block["statistics"] == {"accuracy": "top-1 agreement", "kappa": "Kendall's tau"}
    for b in gs["setups"]:
        adj = block["setups"][b["setup"]]
        for name in ("accuracy", "kappa"):  # the leaderboard's top-1 and tau columns
            assert adj[name]["estimate"] == pytest.approx(b[name]["estimate"])
            assert adj[name]["low"] <= adj[name]["estimate"] <= adj[name]["high"]
    poor = block["setups"]["p@poor"]["kappa"]
    assert poor["low"] < poor["estimate"] < poor["high"]  # it varies: a real band
    rec = gs["recommendation"]["selection_adjusted"]
    if rec["setup"] is not None:
        assert rec["statistics"]["kappa"] == "Kendall's tau"
        assert "top-1 agreement" in report and "Kendall's tau" in report
