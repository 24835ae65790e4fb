"""Recalibration (temperature, Platt, isotonic) and its cross-fitted before/after block,
against independent oracles: sklearn fits, a brute-force NLL grid, known miscalibration."""

import json

import numpy as np
import pytest
from scipy.special import expit, logit, softmax

from harness.metrics.calibration import log_loss_top_label
from harness.metrics.cross_fit import cross_fit, fold_ids
from harness.metrics.recalibration import METHODS, Recalibrator, fit_recalibrator
from harness.report.deploy_md import recalibration_md
from harness.score.recalibration import (
    recalibrated_confidence,
    recalibration_block,
)

BOOT = {"n_boot": 200, "seed": 3, "level": 0.95}


def miscalibrated(n, power, seed=0):
    """Items right with probability p_true; stated confidence sigmoid(power * logit(p))."""
    rng = np.random.default_rng(seed)
    p_true = rng.uniform(0.3, 0.97, n)
    correct = rng.random(n) < p_true
    return expit(power * logit(p_true)), correct


def multiclass(n, k=4, sharpen=2.0, seed=0):
    """Label distributions sharpened by 1/T_true = sharpen; references drawn from the truth.

    Returns conf (predicted = argmax), correct, probs, pred, ref.
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, k))
    truth = softmax(logits, axis=1)
    ref = (rng.random((n, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    probs = softmax(sharpen * logits, axis=1)
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(n), pred]
    return conf, pred == ref, probs, pred, ref


# --- fits against oracles -------------------------------------------------------------


@pytest.mark.parametrize(("power", "t_true"), [(2.0, 2.0), (0.5, 0.5)])
def test_binary_temperature_and_platt_recover_known_miscalibration(power, t_true):
    # c = sigmoid(power * logit(p)) is undone by c' = sigmoid(logit(c) / power).
    conf, correct = miscalibrated(200_000, power, seed=1)
    t = fit_recalibrator("temperature", conf, correct)
    assert t.temperature == pytest.approx(t_true, rel=0.05)
    platt = fit_recalibrator("platt", conf, correct)
    assert platt.a == pytest.approx(1 / power, rel=0.05)
    assert platt.b == pytest.approx(0.0, abs=0.05)


def test_platt_equals_sklearn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    conf, correct = miscalibrated(3000, 1.7, seed=2)
    z = logit(np.clip(conf, 1e-6, 1 - 1e-6))[:, None]
    lr = LogisticRegression(C=1e12, tol=1e-12, max_iter=100_000).fit(z, correct)
    r = fit_recalibrator("platt", conf, correct)
    assert r.a == pytest.approx(lr.coef_[0, 0], abs=1e-5)
    assert r.b == pytest.approx(lr.intercept_[0], abs=1e-5)
    assert r.apply(conf) == pytest.approx(lr.predict_proba(z)[:, 1], abs=1e-6)


def test_binary_temperature_equals_logistic_regression_without_intercept():
    from sklearn.linear_model import LogisticRegression

    conf, correct = miscalibrated(3000, 1.4, seed=4)
    z = logit(np.clip(conf, 1e-6, 1 - 1e-6))[:, None]
    lr = LogisticRegression(C=1e12, tol=1e-12, fit_intercept=False, max_iter=100_000)
    lr.fit(z, correct)
    t = fit_recalibrator("temperature", conf, correct)
    assert 1 / t.temperature == pytest.approx(lr.coef_[0, 0], rel=1e-6)


def test_isotonic_is_monotone_and_equals_sklearn():
    from sklearn.isotonic import IsotonicRegression

    conf, correct = miscalibrated(800, 1.5, seed=5)
    r = fit_recalibrator("isotonic", conf, correct)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(conf, correct)
    grid = np.linspace(0, 1, 1001)  # includes points outside the fitted range
    out = r.apply(grid)
    assert np.all(np.diff(out) >= 0)
    assert out == pytest.approx(iso.predict(grid), abs=1e-12)
    assert r.apply(conf) == pytest.approx(iso.predict(conf), abs=1e-12)


def test_multiclass_temperature_matches_brute_force_nll_grid():
    conf, correct, probs, _, ref = multiclass(1500, sharpen=2.0, seed=6)
    log_p = np.log(np.maximum(probs, 1e-6))

    def nll(t: np.ndarray) -> np.ndarray:  # mean NLL of the reference label, per T
        scaled = log_p[None] / t[:, None, None]
        norm = np.logaddexp.reduce(scaled, axis=2)
        return (norm - scaled[:, np.arange(len(ref)), ref]).mean(axis=1)

    coarse = np.exp(np.linspace(np.log(0.2), np.log(10), 2001))
    best = coarse[np.argmin(nll(coarse))]
    fine = np.linspace(best * 0.995, best * 1.005, 2001)
    t_grid = fine[np.argmin(nll(fine))]
    r = fit_recalibrator("temperature", conf, correct, probs=probs, ref_idx=ref)
    assert r.multiclass
    assert r.temperature == pytest.approx(t_grid, rel=1e-4)
    assert r.temperature == pytest.approx(2.0, rel=0.15)  # the sharpening undone
    # apply = the predicted label's entry of softmax(log p / T)
    expected = softmax(log_p / r.temperature, axis=1)[np.arange(len(conf)), probs.argmax(1)]
    assert r.apply(conf, probs) == pytest.approx(expected, abs=1e-12)


def test_multiclass_apply_needs_probs_and_matching_conf():
    conf, correct, probs, _, ref = multiclass(200, seed=7)
    r = fit_recalibrator("temperature", conf, correct, probs=probs, ref_idx=ref)
    with pytest.raises(ValueError, match="probs"):
        r.apply(conf)
    with pytest.raises(ValueError, match="entry"):
        r.apply(np.full_like(conf, 0.123456), probs)
    with pytest.raises(ValueError, match="ref_idx"):
        fit_recalibrator("temperature", conf, correct, probs=probs)


# --- cross-fitting ------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("method", METHODS)
def test_cross_fit_equals_refitting_on_the_other_folds(method, ties):
    """Also with many tied confidences: isotonic sorts all items once and each fold keeps
    its items in that order, which must be the fold's own sort, ties included."""
    conf, correct = miscalibrated(300, 1.8, seed=8)
    if ties:
        conf = np.round(conf, 1)
    out = cross_fit(method, conf, correct, folds=5, seed=11)
    ids = fold_ids(300, 5, 11)
    assert sorted(np.bincount(ids)) == [60] * 5
    for f in range(5):
        rec = fit_recalibrator(method, conf[ids != f], correct[ids != f])
        assert np.array_equal(out[ids == f], rec.apply(conf[ids == f]))
    assert np.array_equal(out, cross_fit(method, conf, correct, folds=5, seed=11))
    assert not np.array_equal(out, cross_fit(method, conf, correct, folds=5, seed=12))


@pytest.mark.parametrize("method", METHODS)
def test_cross_fit_started_from_the_whole_fit_finds_the_same_maps(method):
    """Folds may start their Newton steps from the fit on all items (fewer passes): the
    optimum they reach is the one a cold start reaches."""
    conf, correct = miscalibrated(2_000, 0.6, seed=3)
    whole = fit_recalibrator(method, conf, correct)
    cold = cross_fit(method, conf, correct, folds=5, seed=2)
    warm = cross_fit(method, conf, correct, folds=5, seed=2, start=whole)
    np.testing.assert_allclose(warm, cold, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="start must be a"):
        other = "platt" if method != "platt" else "temperature"
        cross_fit(method, conf, correct, start=fit_recalibrator(other, conf, correct))


@pytest.mark.parametrize("method", METHODS)
def test_cross_fit_value_of_an_item_ignores_its_own_label(method):
    conf, correct = miscalibrated(200, 1.8, seed=9)
    out = cross_fit(method, conf, correct, seed=1)
    for i in (0, 17, 101, 199):
        flipped = correct.copy()
        flipped[i] = ~flipped[i]
        again = cross_fit(method, conf, flipped, seed=1)
        assert again[i] == out[i]  # exactly: i's value never saw i's label
        assert not np.array_equal(again, out)  # but the other folds' values did


def test_multiclass_cross_fit_ignores_an_items_own_reference():
    conf, correct, probs, pred, ref = multiclass(200, seed=10)
    out = cross_fit("temperature", conf, correct, probs=probs, ref_idx=ref)
    for i in (3, 150):
        ref2 = ref.copy()
        ref2[i] = (ref[i] + 1) % 4
        again = cross_fit("temperature", conf, pred == ref2, probs=probs, ref_idx=ref2)
        assert again[i] == out[i]


@pytest.mark.parametrize("method", METHODS)
def test_out_of_fold_log_loss_improves_on_miscalibrated_data(method):
    conf, correct = miscalibrated(3000, 2.5, seed=12)  # overconfident
    out = cross_fit(method, conf, correct)
    assert log_loss_top_label(out, correct) < log_loss_top_label(conf, correct) - 0.05


# --- degenerate inputs and serialisation --------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "case",
    ["all_right", "all_wrong", "one_confidence", "all_half", "separable", "two_items"],
)
def test_degenerate_inputs_do_not_crash(method, case):
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 0.9, 50)
    correct = rng.random(50) < 0.6
    if case == "all_right":
        correct[:] = True
    elif case == "all_wrong":
        correct[:] = False
    elif case == "one_confidence":
        conf[:] = 0.8
    elif case == "all_half":
        conf[:] = 0.5
    elif case == "separable":
        correct = conf > 0.5
    elif case == "two_items":
        conf, correct = conf[:2], np.array([True, False])
    r = fit_recalibrator(method, conf, correct)
    out = r.apply(np.linspace(0, 1, 11))
    assert np.all(np.isfinite(out)) and np.all((out >= 0) & (out <= 1))
    if case in ("all_right", "all_wrong"):
        assert "one class" in r.note
        assert r.apply(conf) == pytest.approx(conf, abs=1e-6)  # identity
    if case == "one_confidence" and method != "temperature":
        assert r.apply(np.array([0.1, 0.95])) == pytest.approx([0.6, 0.6], abs=0.2)
        assert r.note and "single distinct" in r.note
    if case == "all_half" and method == "temperature":
        assert r.temperature == 1.0 and r.note
    if case == "separable" and method == "platt":
        assert "separates" in r.note


@pytest.mark.parametrize("method", METHODS)
def test_json_round_trip_applies_identically(method):
    conf, correct = miscalibrated(500, 1.6, seed=13)
    r = fit_recalibrator(method, conf, correct)
    back = Recalibrator.from_json(json.loads(json.dumps(r.to_json())))
    assert back == r
    grid = np.concatenate([np.linspace(0, 1, 501), conf])
    assert np.array_equal(back.apply(grid), r.apply(grid))


def test_multiclass_json_round_trip_and_nan_passthrough():
    conf, correct, probs, _, ref = multiclass(300, seed=14)
    r = fit_recalibrator("temperature", conf, correct, probs=probs, ref_idx=ref)
    back = Recalibrator.from_json(json.loads(json.dumps(r.to_json())))
    assert back == r and back.multiclass
    conf2, probs2 = conf.copy(), probs.copy()
    conf2[0], probs2[1] = np.nan, np.nan
    out = back.apply(conf2, probs2)
    assert np.isnan(out[:2]).all()
    assert np.array_equal(out[2:], r.apply(conf[2:], probs[2:]))


# --- the before/after block -------------------------------------------------------------


def test_block_shape_best_and_warning():
    conf, correct = miscalibrated(400, 2.2, seed=15)
    block = recalibration_block(conf, correct, "platt", BOOT)
    assert set(block) == {"n", "folds", "selected", "before", "methods", "best", "warning"}
    assert (block["n"], block["folds"], block["selected"]) == (400, 5, "platt")
    assert [e["method"] for e in block["methods"]] == list(METHODS)
    metric_keys = {"ece", "ece_equal_mass", "brier", "log_loss", "auroc", "mean_confidence"}
    assert set(block["before"]) == metric_keys
    assert set(block["before"]["ece"]) == {"estimate", "low", "high", "n", "level"}
    losses = {}
    for e in block["methods"]:
        assert set(e) == {"method", "params", "after", "note"}
        assert set(e["after"]) == metric_keys
        oof = cross_fit(e["method"], conf, correct, folds=5, seed=BOOT["seed"])
        losses[e["method"]] = log_loss_top_label(oof, correct)
        assert e["after"]["log_loss"] == pytest.approx(losses[e["method"]], abs=1e-6)
        if e["method"] != "isotonic":  # isotonic may overfit at n=400: that is the warning
            assert e["after"]["log_loss"] < block["before"]["log_loss"]
        assert Recalibrator.from_json(e["params"]) == fit_recalibrator(e["method"], conf, correct)
    assert block["best"] == min(losses, key=losses.get)
    assert block["warning"] == "isotonic overfits below about 1,000 items"
    assert json.loads(json.dumps(block)) == block  # plain JSON, no nan
    big = recalibration_block(*miscalibrated(1000, 2.0, seed=16), "none", BOOT)
    assert big["warning"] is None


def test_block_none_when_too_few_or_one_class():
    conf, correct = miscalibrated(19, 2.0)
    assert recalibration_block(conf, correct, "none", BOOT) is None
    conf, _ = miscalibrated(100, 2.0)
    assert recalibration_block(conf, np.ones(100, bool), "none", BOOT) is None
    # nan confidences are dropped before counting
    conf, correct = miscalibrated(25, 2.0)
    conf[:6] = np.nan
    assert recalibration_block(conf, correct, "none", BOOT) is None
    with pytest.raises(ValueError, match="selected"):
        recalibration_block(conf, correct, "beta", BOOT)


def test_block_multiclass_temperature_and_consistency_checks():
    conf, correct, probs, pred, ref = multiclass(300, seed=17)
    block = recalibration_block(conf, correct, "temperature", BOOT, probs, pred, ref)
    params = block["methods"][0]["params"]
    assert params["multiclass"] is True
    direct = fit_recalibrator("temperature", conf, correct, probs=probs, ref_idx=ref)
    assert params["temperature"] == direct.temperature
    with pytest.raises(ValueError, match="pred_idx"):
        recalibration_block(conf, correct, "none", BOOT, probs, (pred + 1) % 4, ref)


def test_recalibrated_confidence_applies_the_selected_method():
    conf, correct = miscalibrated(300, 2.0, seed=18)
    new = np.linspace(0.05, 0.99, 50)
    block = recalibration_block(conf, correct, "isotonic", BOOT)
    expected = fit_recalibrator("isotonic", conf, correct).apply(new)
    assert np.array_equal(recalibrated_confidence(block, new), expected)
    assert np.array_equal(recalibrated_confidence(block["methods"][2]["params"], new), expected)
    none = recalibration_block(conf, correct, "none", BOOT)
    assert np.array_equal(recalibrated_confidence(none, new), new)
    assert np.array_equal(recalibrated_confidence(None, new), new)


def test_markdown_marks_selected_and_best_and_shows_warning():
    conf, correct = miscalibrated(300, 2.0, seed=19)
    block = recalibration_block(conf, correct, "temperature", BOOT)
    text = "\n".join(recalibration_md(block))
    assert "| method | ECE [95% CI] | equal-mass ECE | Brier | log loss | AUROC |" in text
    assert "temperature (selected" in text
    assert f"{block['best']} (" in text and "best)" in text
    assert "Warning: isotonic overfits below about 1,000 items (n=300)." in text
    assert text.count("\n| ") == 5  # header, "none" and the three methods
    assert recalibration_md(None)[0].startswith("- Recalibration: not fitted")


@pytest.mark.parametrize("power", [0.5, 1.0, 3.0])
def test_binary_temperature_by_newton_equals_the_bounded_search_and_falls_back_at_bounds(power):
    from scipy.optimize import minimize_scalar

    from harness.metrics import recalibration as rc
    from harness.metrics.recalibration_solvers import newton_beta

    rng = np.random.default_rng(30)
    conf = rng.uniform(0.5, 0.99, 3000)
    correct = (rng.random(3000) < conf**power).astype(float)
    z = rc._logit(conf)

    def loss(beta):
        return float(np.mean(np.logaddexp(0.0, beta * z) - correct * beta * z))

    lo, hi = -np.log(rc.T_BOUNDS[1]), -np.log(rc.T_BOUNDS[0])
    ref = minimize_scalar(
        lambda u: loss(np.exp(u)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}
    )
    beta = newton_beta(z, correct, loss)
    assert beta is not None and beta == pytest.approx(np.exp(ref.x), rel=1e-6)
    assert fit_recalibrator("temperature", conf, correct).temperature == pytest.approx(1 / beta)
    # Confidence that points the wrong way: the optimum is beyond the bounds, Newton gives
    # up and the bounded search reports the bound.
    wrong = (conf < 0.75).astype(float)

    def wrong_loss(beta):
        return float(np.mean(np.logaddexp(0.0, beta * z) - wrong * beta * z))

    assert newton_beta(z, wrong, wrong_loss) is None
    assert "at the bound" in (fit_recalibrator("temperature", conf, wrong).note or "")
