"""The auto-accept threshold on recalibrated confidences (harness.score.deploy): fitted on
the gold items' out-of-fold values, never on the recalibrator's own training data."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.records import GoldItem, GoldSet, LabelRecord, Setup
from harness.metrics.cross_fit import cross_fit
from harness.metrics.recalibration import fit_recalibrator
from harness.metrics.selective import learn_then_test
from harness.score.metrics_json import score_run

TARGET_ERROR, DELTA, SEED = 0.15, 0.1, 2


def scored_setup(method: str, clusters=None) -> tuple[dict, np.ndarray, np.ndarray]:
    """400 items; the setup is right with probability 1 / (1 + exp(-12 (conf - 0.7)))."""
    rng = np.random.default_rng(5)
    n = 400
    truth = ["pos" if i % 2 else "neg" for i in range(n)]
    items = tuple(
        GoldItem(id=f"i{i}", fields={"text": f"t{i}"}, annotations={"x": t, "y": t}, line=i + 1)
        for i, t in enumerate(truth)
    )
    gs = GoldSet(
        id="g",
        path="g.jsonl",
        items=items,
        annotators=("x", "y"),
        content_hash="0" * 64,
        cluster_by=None if clusters is None else "meta.group",
        clusters=None if clusters is None else tuple(f"c{k}" for k in clusters),
    )
    conf = rng.uniform(0.5, 1.0, n)
    right = rng.random(n) < 1 / (1 + np.exp(-12 * (conf - 0.7)))
    flip = {"pos": "neg", "neg": "pos"}
    records = [
        LabelRecord(
            setup="s@m",
            gold_set="g",
            item=f"i{i}",
            label=t if right[i] else flip[t],
            confidence=float(conf[i]),
            confidence_source="logprobs",
        )
        for i, t in enumerate(truth)
    ]
    metrics = score_run(
        [gs],
        [Setup("s@m", "s", "m")],
        records,
        ["pos", "neg"],
        n_boot=100,
        seed=SEED,
        recalibration=method,
        target_error=TARGET_ERROR,
        delta=DELTA,
    )
    return metrics["gold_sets"][0]["setups"][0], conf, right


def test_auto_accept_threshold_is_fitted_on_out_of_fold_recalibrated_confidences() -> None:
    block, conf, right = scored_setup("platt")
    sel = block["selective"]
    assert sel["confidence"] == "recalibrated (platt, out-of-fold)"
    assert sel["n"] == 400

    # The same threshold from an independent path: each item's value from a Platt map
    # fitted on the other folds (the block's folds, the run's seed), then Learn then Test.
    folds = block["recalibration"]["folds"]
    oof = cross_fit("platt", conf, right.astype(float), folds=folds, seed=SEED)
    expected = learn_then_test(oof, right, TARGET_ERROR, DELTA)
    assert expected.threshold is not None
    assert sel["threshold"] == pytest.approx(expected.threshold, abs=1e-6)
    assert sel["auto_accepted"] == expected.n_accepted
    assert sel["errors_among_accepted"] == expected.errors

    # ... and not the one the raw confidences or the in-sample map would give: out of
    # fold, the items' order changes, so the accepted set does too.
    raw = learn_then_test(conf, right, TARGET_ERROR, DELTA)
    in_sample = fit_recalibrator("platt", conf, right.astype(float)).apply(conf)
    fitted_in_sample = learn_then_test(in_sample, right, TARGET_ERROR, DELTA)
    assert expected.n_accepted != raw.n_accepted
    assert expected.n_accepted != fitted_in_sample.n_accepted
    assert sel["threshold"] != pytest.approx(fitted_in_sample.threshold, abs=1e-6)

    # Without recalibration the same data gives the raw threshold, labelled as such.
    plain = scored_setup("none")[0]["selective"]
    assert plain["confidence"] == "raw"
    assert plain["threshold"] == pytest.approx(raw.threshold, abs=1e-6)
    assert plain["auto_accepted"] == raw.n_accepted


def test_with_clusters_the_folds_hold_whole_clusters() -> None:
    """cluster_by: the out-of-fold values come from maps fitted without the item's cluster
    (metrics.cross_fit), and Learn then Test counts clusters; item folds would let a
    cluster's other items train the map that scores it."""
    groups = np.arange(400) // 8  # 50 clusters of 8
    block, conf, right = scored_setup("platt", clusters=groups)
    sel, recal = block["selective"], block["recalibration"]
    assert sel["confidence"] == "recalibrated (platt, out-of-fold by cluster)"
    assert recal["folds_by"] == "clusters"

    oof = cross_fit("platt", conf, right.astype(float), recal["folds"], SEED, clusters=groups)
    expected = learn_then_test(oof, right, TARGET_ERROR, DELTA, clusters=groups)
    assert sel["threshold"] == pytest.approx(expected.threshold, abs=1e-6)
    assert sel["auto_accepted"] == expected.n_accepted
    by_item = cross_fit("platt", conf, right.astype(float), recal["folds"], SEED)
    assert not np.allclose(oof, by_item)  # the fold split is not the items' one
    assert "folds_by" not in scored_setup("platt")[0]["recalibration"]
