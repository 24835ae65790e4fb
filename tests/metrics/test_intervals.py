"""Bootstrap intervals: the multinomial table bootstrap against a plain index bootstrap,
coverage, seeding, pairing, clusters and scale."""

import math

import numpy as np
import pytest

from harness.metrics import (
    Interval,
    accuracy_ci,
    bootstrap_items,
    bootstrap_table_stat,
    classification_metrics,
    cohen_kappa,
    ece,
    ece_ci,
    kappa_ci,
    macro_f1_ci,
    macro_f1_from_confusion,
    paired_difference_ci,
)
from harness.metrics.accuracy import confusion


def labelled(seed, n=300, k=3, hit=0.75, failure_rate=0.05):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < hit, y_true, rng.integers(0, k, n))
    y_pred[rng.random(n) < failure_rate] = -1
    return y_true, y_pred


def index_bootstrap(statistic, n, n_boot, seed, level=0.95):
    """Textbook bootstrap: resample item indices, recompute the statistic each time."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_boot)])
    tail = (1 - level) / 2
    return np.quantile(values, [tail, 1 - tail])


def test_accuracy_ci_agrees_with_index_bootstrap():
    y_true, y_pred = labelled(0)
    ci = accuracy_ci(y_true, y_pred, n_boot=4000, seed=1)
    low, high = index_bootstrap(lambda i: np.mean(y_true[i] == y_pred[i]), 300, 4000, seed=2)
    assert ci.estimate == pytest.approx(np.mean(y_true == y_pred))
    assert (ci.n, ci.n_boot, ci.level) == (300, 4000, 0.95)
    # Monte Carlo error of a 2.5% quantile with B = 4000 and n = 300 is ~0.004.
    assert ci.low == pytest.approx(low, abs=0.015)
    assert ci.high == pytest.approx(high, abs=0.015)


def test_macro_f1_and_kappa_ci_agree_with_index_bootstrap():
    y_true, y_pred = labelled(3)
    f1 = macro_f1_ci(y_true, y_pred, 3, n_boot=4000, seed=1)
    f1_low, f1_high = index_bootstrap(
        lambda i: classification_metrics(y_true[i], y_pred[i], 3).macro_f1, 300, 2000, seed=2
    )
    assert f1.estimate == pytest.approx(classification_metrics(y_true, y_pred, 3).macro_f1)
    assert (f1.low, f1.high) == pytest.approx((f1_low, f1_high), abs=0.02)
    answered = y_pred >= 0
    yt, yp = y_true[answered], y_pred[answered]
    kappa = kappa_ci(yt, yp, 3, n_boot=4000, seed=1)
    k_low, k_high = index_bootstrap(lambda i: cohen_kappa(yt[i], yp[i], 3), yt.size, 2000, seed=2)
    assert kappa.estimate == pytest.approx(cohen_kappa(yt, yp, 3))
    assert (kappa.low, kappa.high) == pytest.approx((k_low, k_high), abs=0.02)


def test_kappa_ci_treats_failures_as_disagreement_and_supports_weights():
    y_true, y_pred = labelled(4, k=5)
    with_failures = kappa_ci(y_true, y_pred, 5, n_boot=200)
    answered = y_pred >= 0
    assert with_failures.estimate < cohen_kappa(y_true, y_pred, 5)
    quadratic = kappa_ci(y_true[answered], y_pred[answered], 5, weights="quadratic", n_boot=200)
    assert quadratic.estimate == pytest.approx(cohen_kappa(y_true, y_pred, 5, weights="quadratic"))
    assert quadratic.low < quadratic.estimate < quadratic.high
    with pytest.raises(ValueError):
        kappa_ci(y_true, y_pred, 5, weights="cubic")


def test_percentile_interval_coverage_is_near_nominal():
    rng = np.random.default_rng(42)
    covered = 0
    for rep in range(300):
        correct = (rng.random(200) < 0.7).astype(int)
        ci = accuracy_ci(np.ones(200, dtype=int), correct, n_boot=1000, seed=rep)
        covered += ci.low <= 0.7 <= ci.high
    assert 0.89 <= covered / 300 <= 0.99


def test_seeding_is_deterministic():
    y_true, y_pred = labelled(5)
    assert macro_f1_ci(y_true, y_pred, 3, seed=7) == macro_f1_ci(y_true, y_pred, 3, seed=7)
    other = macro_f1_ci(y_true, y_pred, 3, seed=8)
    assert (other.low, other.high) != pytest.approx(
        (macro_f1_ci(y_true, y_pred, 3, seed=7).low, macro_f1_ci(y_true, y_pred, 3, seed=7).high),
        abs=1e-12,
    )
    clusters = np.arange(300) // 3
    assert accuracy_ci(y_true, y_pred, clusters=clusters, seed=3) == accuracy_ci(
        y_true, y_pred, clusters=clusters, seed=3
    )


def test_level_controls_width():
    y_true, y_pred = labelled(6)
    narrow = accuracy_ci(y_true, y_pred, level=0.5)
    wide = accuracy_ci(y_true, y_pred, level=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high
    with pytest.raises(ValueError):
        accuracy_ci(y_true, y_pred, level=1.5)


def correlated_setups(seed, n=500, k=3):
    """Setup B equals setup A except on ~5% of items: strongly correlated errors."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    pred_a = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, k, n))
    pred_b = np.where(rng.random(n) < 0.05, rng.integers(0, k, n), pred_a)
    return y_true, pred_a, pred_b


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "kappa"])
def test_paired_difference_is_narrower_than_unpaired(metric):
    y_true, pred_a, pred_b = correlated_setups(0)
    paired = paired_difference_ci(y_true, pred_a, pred_b, 3, metric=metric, seed=1)
    single = {
        "accuracy": lambda p: accuracy_ci(y_true, p, seed=2),
        "macro_f1": lambda p: macro_f1_ci(y_true, p, 3, seed=2),
        "kappa": lambda p: kappa_ci(y_true, p, 3, seed=2),
    }[metric]
    wa, wb = single(pred_a).width, single(pred_b).width
    unpaired_width = math.hypot(wa, wb)  # independent samples: widths add in quadrature
    assert paired.width < 0.5 * unpaired_width
    assert paired.estimate == pytest.approx(single(pred_a).estimate - single(pred_b).estimate)


def test_paired_accuracy_difference_agrees_with_index_bootstrap_and_sign():
    y_true, pred_a, pred_b = correlated_setups(1)
    pred_b[:40] = (y_true[:40] + 1) % 3  # make B clearly worse
    ci = paired_difference_ci(y_true, pred_a, pred_b, 3, n_boot=4000, seed=1)
    assert ci.estimate == pytest.approx(np.mean(pred_a == y_true) - np.mean(pred_b == y_true))
    assert ci.low > 0  # positive = A better
    low, high = index_bootstrap(
        lambda i: np.mean(pred_a[i] == y_true[i]) - np.mean(pred_b[i] == y_true[i]),
        500,
        4000,
        seed=2,
    )
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=0.01)
    with pytest.raises(ValueError):
        paired_difference_ci(y_true, pred_a, pred_b, 3, metric="auroc")


def test_clusters_of_singletons_match_item_bootstrap():
    y_true, y_pred = labelled(7, n=400)
    items = accuracy_ci(y_true, y_pred, n_boot=4000, seed=1)
    singletons = accuracy_ci(y_true, y_pred, n_boot=4000, seed=2, clusters=np.arange(400))
    assert (singletons.low, singletons.high) == pytest.approx((items.low, items.high), abs=0.015)


def test_clusters_of_identical_items_widen_the_interval():
    base_true, base_pred = labelled(8, n=100)
    y_true, y_pred = np.repeat(base_true, 9), np.repeat(base_pred, 9)
    clusters = np.repeat(np.arange(100), 9)
    naive = macro_f1_ci(y_true, y_pred, 3, seed=1)
    clustered = macro_f1_ci(y_true, y_pred, 3, seed=1, clusters=clusters)
    per_source = macro_f1_ci(base_true, base_pred, 3, seed=1)
    assert clustered.width > 2.0 * naive.width  # ~sqrt(9) = 3 times wider
    assert clustered.width == pytest.approx(per_source.width, rel=0.2)
    assert clustered.n == 900


def test_cluster_table_bootstrap_agrees_with_cluster_index_bootstrap():
    rng = np.random.default_rng(9)
    clusters = rng.integers(0, 60, 600)
    effect = rng.random(60) < 0.6  # cluster-level correctness shares a cause
    correct = np.where(rng.random(600) < 0.8, effect[clusters], ~effect[clusters]).astype(int)
    table = accuracy_ci(np.ones(600, dtype=int), correct, n_boot=4000, seed=1, clusters=clusters)
    index = bootstrap_items(lambda idx: correct[idx].mean(), 600, 4000, seed=2, clusters=clusters)
    assert table.estimate == pytest.approx(index.estimate)
    assert (table.low, table.high) == pytest.approx((index.low, index.high), abs=0.02)


def test_bootstrap_table_stat_drops_nan_replicates_and_counts_them():
    y = np.array([0] * 19 + [1])
    ci = kappa_ci(y, y, 2, n_boot=2000, seed=0)
    # replicates that miss the single 1 have a constant table -> kappa undefined
    assert ci.estimate == pytest.approx(1.0)
    assert 1000 < ci.n_boot < 1600  # expected 2000 * (1 - (19/20)^20) ~ 1283
    assert (ci.low, ci.high) == (1.0, 1.0)


def test_bootstrap_table_stat_edge_cases():
    def share(tables):
        return tables[:, 1] / tables.sum(axis=1)

    empty = bootstrap_table_stat(np.array([], dtype=int), 2, share)
    assert empty.n == 0 and math.isnan(empty.estimate) and math.isnan(empty.low)
    with pytest.raises(ValueError):
        bootstrap_table_stat(np.array([0, 2]), 2, share)
    with pytest.raises(ValueError):
        bootstrap_table_stat(np.array([0, 1]), 2, share, clusters=np.array([0]))
    constant = bootstrap_table_stat(np.ones(50, dtype=int), 2, share, n_boot=100)
    assert constant == Interval(1.0, 1.0, 1.0, 50, 100, 0.95)


def test_ece_ci_equals_bootstrap_items_over_ece():
    rng = np.random.default_rng(10)
    conf = rng.uniform(0.5, 1.0, 400)
    correct = rng.random(400) < conf - 0.1
    ci = ece_ci(conf, correct, n_boot=300, seed=1)
    assert ci.estimate == pytest.approx(ece(conf, correct))
    assert ci.low < ci.estimate < ci.high and ci.n_boot == 300
    # the way a caller bootstraps a scalar statistic: one 1-D index array per replicate
    by_hand = bootstrap_items(lambda idx: ece(conf[idx], correct[idx]), 400, 300, seed=1)
    # The same resamples; the sums run in another order (a matrix product), so a few ulps.
    assert (ci.n, ci.n_boot, ci.level) == (by_hand.n, by_hand.n_boot, by_hand.level)
    for got, want in (
        (ci.estimate, by_hand.estimate),
        (ci.low, by_hand.low),
        (ci.high, by_hand.high),
    ):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def _expanded_ece(conf, hit, positions, row, strategy):
    """ece itself on one resample's items: each item repeated by its multiplicity."""
    w = row[positions].astype(int)
    if w.sum() == 0:
        return float("nan")
    return ece(np.repeat(conf, w), np.repeat(hit, w), 10, strategy)


@pytest.mark.parametrize(
    "shape", ["items", "ties", "subset", "small", "tiny-window", "clusters", "tiny"]
)
def test_resampled_ece_of_every_ask_equals_ece_on_the_drawn_items(shape):
    """Both binnings, several asks (all items, a subset, recalibrated values) on rows of
    multiplicities: each value is ece() of the items the row draws. Heavy ties, a small set
    and a tiny window send rows down the plain path; the answer must not change."""
    from harness.metrics.ece_resampling import ResampledEce

    rng = np.random.default_rng(21)
    n = {"small": 30, "tiny": 3}.get(shape, 2000)
    conf = rng.uniform(0.2, 1, n)
    if shape == "ties":  # many equal confidences: edges fall on values and bins merge
        conf = np.round(conf * 4) / 4
    hit = rng.random(n) < conf
    mask = rng.random(n) < (0.8 if shape == "subset" else 1.0)
    pos = np.flatnonzero(mask)
    shifted = np.clip(conf[pos] * 0.9 + 0.08, 0, 1)
    asks = [
        (np.arange(n), conf, hit, "uniform"),
        (np.arange(n), conf, hit, "quantile"),
        (pos, shifted, hit[pos], "uniform"),
        (pos, shifted, hit[pos], "quantile"),
    ]
    spread = 2.0 if shape == "tiny-window" else None
    prepared = ResampledEce(asks, n, 10, spread)
    if shape == "clusters":  # whole clusters drawn: multiplicities shared, sizes vary
        group = rng.integers(0, n // 7, n)
        counts = np.array(
            [
                np.bincount(rng.integers(0, n // 7, n // 7), minlength=n // 7)[group]
                for _ in range(25)
            ],
            dtype=float,
        )
    else:
        counts = np.array(
            [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(25)], dtype=float
        )
    got = prepared.evaluate(counts)
    assert got.shape == (25, 4)
    for j, (positions, c, h, strategy) in enumerate(asks):
        want = [_expanded_ece(c, h, positions, row, strategy) for row in counts]
        np.testing.assert_allclose(got[:, j], want, rtol=1e-10, atol=1e-14)
    # Kept resamples come as one-byte integers (windows are gathered from those): the same.
    np.testing.assert_array_equal(prepared.evaluate(counts.astype(np.uint8)), got)


def test_resampled_ece_with_no_drawn_items_is_nan():
    from harness.metrics.ece_resampling import ResampledEce

    conf, hit = np.array([0.9, 0.6, 0.7]), np.array([1, 0, 1])
    asks = [(np.array([0, 2]), conf[[0, 2]], hit[[0, 2]], s) for s in ("uniform", "quantile")]
    got = ResampledEce(asks, 3, 10).evaluate(np.array([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0]]))
    assert np.isnan(got[0]).all()
    assert got[1] == pytest.approx(
        [ece(conf[[0, 2]], hit[[0, 2]], 10, s) for s in ("uniform", "quantile")]
    )


def test_bootstrap_items_scalar_and_batched_modes_agree():
    rng = np.random.default_rng(12)
    correct = (rng.random(400) < 0.7).astype(int)
    seen_shapes = []

    def batched_mean(index):
        seen_shapes.append(index.shape)
        return correct[index].mean(axis=1)

    def scalar_mean(index):
        assert index.shape == (400,)
        return correct[index].mean()

    batched = bootstrap_items(batched_mean, 400, n_boot=500, seed=3, batched=True)
    assert seen_shapes == [(1, 400), (500, 400)]
    scalar = bootstrap_items(scalar_mean, 400, n_boot=500, seed=3)
    assert scalar.low == pytest.approx(batched.low) and scalar.high == pytest.approx(batched.high)
    reference = accuracy_ci(np.ones(400, dtype=int), correct, n_boot=4000, seed=4)
    assert (scalar.low, scalar.high) == pytest.approx((reference.low, reference.high), abs=0.02)


def test_hundred_thousand_items_and_thousand_replicates():
    n, k = 100_000, 4
    rng = np.random.default_rng(11)
    y_true = rng.integers(0, k, n)
    pred_a = np.where(rng.random(n) < 0.8, y_true, rng.integers(0, k, n))
    pred_a[rng.random(n) < 0.02] = -1
    pred_b = np.where(rng.random(n) < 0.05, rng.integers(0, k, n), pred_a)
    clusters = np.arange(n) // 10
    f1 = macro_f1_ci(y_true, pred_a, k, n_boot=1000)
    assert f1.n == n and f1.n_boot == 1000
    assert f1.estimate == pytest.approx(
        float(macro_f1_from_confusion(confusion(y_true, pred_a, k)))
    )
    assert f1.low < f1.estimate < f1.high and f1.width < 0.02
    kappa = kappa_ci(y_true, pred_a, k, n_boot=1000, clusters=clusters)
    assert kappa.low < kappa.estimate < kappa.high
    paired = paired_difference_ci(y_true, pred_a, pred_b, k, "macro_f1", n_boot=1000)
    assert paired.low < paired.estimate < paired.high and paired.width < 0.01


@pytest.mark.parametrize("clustered", [False, True])
def test_ece_ci_many_equals_separate_ece_ci_calls(clustered):
    """One set of resamples for several ECE intervals: the same intervals as one call each."""
    from harness.metrics import ece_intervals as intervals

    rng = np.random.default_rng(3)
    n = 300
    hit = (rng.random(n) < 0.7).astype(float)
    confs = [rng.uniform(0.3, 1.0, n), np.clip(rng.normal(0.7, 0.1, n), 0, 1)]
    clusters = rng.integers(0, 60, n) if clustered else None
    boot = {"n_boot": 200, "seed": 5, "level": 0.9, "clusters": clusters}
    asks = [(c, hit, strategy) for c in confs for strategy in ("uniform", "quantile")]
    many = intervals.ece_ci_many(asks, 10, **boot)
    one = [
        intervals.ece_ci(c, hit, 10, strategy, **boot)
        for c in confs
        for strategy in ("uniform", "quantile")
    ]
    for got, want in zip(many, one, strict=True):  # the same up to the order of summation
        assert (got.n, got.n_boot, got.level) == (want.n, want.n_boot, want.level)
        assert [got.estimate, got.low, got.high] == pytest.approx(
            [want.estimate, want.low, want.high], rel=1e-12
        )
    assert len({(iv.low, iv.high) for iv in many}) == 4  # four different intervals
    with pytest.raises(ValueError, match="same items"):
        intervals.ece_ci_many([(confs[0], hit, "uniform"), (confs[1][:-1], hit[:-1], "uniform")])
    # Clustered or not, each interval is bootstrap_items' over ece (the same draws).
    for (c, _h, strategy), iv in zip(asks, many, strict=True):
        by_hand = bootstrap_items(
            lambda idx, c=c, s=strategy: ece(c[idx], hit[idx], 10, s), n, 200, 5, 0.9, clusters
        )
        assert [iv.low, iv.high] == pytest.approx([by_hand.low, by_hand.high], rel=1e-10)


def test_ece_batch_resamples_the_gold_items_and_scores_each_ask_on_its_own():
    """A setup's answered items are a subset of the gold set: each resample of the gold
    items is scored on the subset's items it drew (bootstrap_items over all items, the
    statistic restricted by the mask), and several setups share the resamples."""
    from harness.metrics.ece_intervals import EceBatch

    rng = np.random.default_rng(4)
    n = 500
    hit = rng.random(n) < 0.7
    conf = rng.uniform(0.3, 1, n)
    answered = rng.random(n) < 0.85
    batch = EceBatch(n, n_boot=150, seed=9, level=0.9)
    tickets = {
        (name, strategy): batch.ask(conf[mask], hit[mask], strategy, within=mask)
        for name, mask in (("all", np.ones(n, bool)), ("answered", answered))
        for strategy in ("uniform", "quantile")
    }
    again = batch.ask(conf[answered], hit[answered], "quantile", within=answered)
    assert again == tickets["answered", "quantile"] and len(batch.asks) == 4
    resolved = batch.resolve()
    for (name, strategy), ticket in tickets.items():
        mask = np.ones(n, bool) if name == "all" else answered

        def on_subset(idx, mask=mask, strategy=strategy):
            kept = idx[mask[idx]]
            return ece(conf[kept], hit[kept], 10, strategy)

        want = bootstrap_items(on_subset, n, 150, 9, 0.9)
        got = resolved[ticket]
        assert got.n == mask.sum() and got.n_boot == 150
        assert got.estimate == pytest.approx(ece(conf[mask], hit[mask], 10, strategy))
        assert [got.low, got.high] == pytest.approx([want.low, want.high], rel=1e-10)
    with pytest.raises(ValueError, match="one confidence per item"):
        batch.ask(conf, hit, within=answered)


def test_ece_batch_in_several_passes_gives_the_same_intervals(monkeypatch):
    """More asks than fit one matrix product: several passes over the same resamples."""
    from harness.metrics import ece_intervals

    rng = np.random.default_rng(5)
    n = 400
    hit = rng.random(n) < 0.6
    confs = [rng.uniform(0, 1, n) for _ in range(4)]

    def intervals():
        batch = ece_intervals.EceBatch(n, n_boot=120, seed=2)
        for c in confs:
            for strategy in ("uniform", "quantile"):
                batch.ask(c, hit, strategy)
        return batch, batch.resolve()

    batch, one_pass = intervals()
    assert len(batch._groups(range(len(batch.asks)))) == 1
    monkeypatch.setattr(ece_intervals, "_CELLS_BYTES", n * 8 * 35)
    batch, passes = intervals()
    assert len(batch._groups(range(len(batch.asks)))) == 8 // 2
    for a, b in zip(one_pass, passes, strict=True):
        assert [a.low, a.high] == pytest.approx([b.low, b.high], rel=1e-12)
    monkeypatch.setattr(ece_intervals, "_KEPT_BYTES", 0)  # drawn again each pass
    redrawn = intervals()[1]
    assert [x for iv in redrawn for x in (iv.low, iv.high)] == pytest.approx(
        [x for iv in passes for x in (iv.low, iv.high)], rel=1e-12
    )


def test_ece_batch_started_in_the_background_gives_the_same_intervals(monkeypatch):
    """`start` after each setup's asks evaluates them on a background thread while the caller
    goes on; the intervals equal those of one resolve at the end, with the resamples kept
    between passes or drawn again (background batches take float32 products: equal up to
    its rounding, see the next test)."""
    from harness.metrics import ece_intervals

    rng = np.random.default_rng(6)
    n = 300
    hit = rng.random(n) < 0.65
    setups = [(rng.uniform(0.2, 1, n), rng.random(n) < 0.9) for _ in range(3)]

    def intervals(background: bool):
        batch = ece_intervals.EceBatch(n, n_boot=90, seed=4, background=background)
        tickets = []
        for conf, answered in setups:
            for strategy in ("uniform", "quantile"):
                tickets.append(batch.ask(conf[answered], hit[answered], strategy, within=answered))
            if background:
                batch.start()
        started = len(batch._passes)
        resolved = batch.resolve()
        return started, [resolved[t] for t in tickets]

    started, at_once = intervals(background=False)
    assert started == 0
    monkeypatch.setattr(ece_intervals, "_BACKGROUND_ELEMENTS", 0)
    monkeypatch.setattr(ece_intervals, "_workers", lambda: 2)
    monkeypatch.setattr(ece_intervals, "_PASS_COLUMNS", 1)
    started, in_background = intervals(background=True)
    assert started == 3  # one pass per setup, before resolve
    monkeypatch.setattr(ece_intervals, "_PASS_COLUMNS", 60)  # two setups' asks per pass
    started, grouped = intervals(background=True)
    assert started == 1

    def bounds(ivs):
        return [x for iv in ivs for x in (iv.estimate, iv.low, iv.high, iv.n, iv.n_boot)]

    assert bounds(in_background) == pytest.approx(bounds(at_once), rel=1e-6, abs=1e-7)
    assert bounds(grouped) == pytest.approx(bounds(at_once), rel=1e-6, abs=1e-7)
    monkeypatch.setattr(ece_intervals, "_KEPT_BYTES", 0)  # each pass draws again
    assert bounds(intervals(background=True)[1]) == pytest.approx(bounds(grouped), rel=1e-12)


@pytest.mark.parametrize("shape", ["spread", "ties", "subset"])
def test_resampled_ece_in_float32_is_within_its_rounding_and_keeps_counts_exact(shape):
    """Large batches take the bin sums as a float32 product: each resample's ECE within
    1e-7 of the float64 one (about 1e-8 seen: float32 rounding of the gaps and their
    sums), while the counts stay whole numbers, so the equal-mass edges and which rows
    take the plain path are the same."""
    from harness.metrics import ece_resampling
    from harness.metrics.ece_resampling import ResampledEce

    rng = np.random.default_rng(8)
    n = 20_000
    conf = np.clip(rng.beta(5, 2, n), 0.34, 0.999)
    if shape == "ties":
        conf = np.round(conf, 2)
    hit = rng.random(n) < conf * 0.9
    pos = np.flatnonzero(rng.random(n) < (0.8 if shape == "subset" else 1.0))
    shifted = np.clip(conf[pos] * 0.8 + 0.1, 0, 1)
    asks = [
        (np.arange(n), conf, hit, "uniform"),
        (np.arange(n), conf, hit, "quantile"),
        (pos, shifted, hit[pos], "uniform"),
        (pos, shifted, hit[pos], "quantile"),
    ]
    counts = np.array([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(30)])
    small = counts.astype(np.uint8)
    plain_rows = []
    original = ece_resampling.equal_mass_from_ranked_counts

    def spy(ranked, gap, rows, n_bins):
        plain_rows.append(rows.shape[0])
        return original(ranked, gap, rows, n_bins)

    results = {}
    for dtype in (np.float64, np.float32):
        plain_rows.clear()
        ece_resampling.equal_mass_from_ranked_counts = spy
        try:
            results[dtype] = ResampledEce(asks, n, 10, dtype=dtype).evaluate(small)
        finally:
            ece_resampling.equal_mass_from_ranked_counts = original
        results[dtype, "plain"] = list(plain_rows)
    np.testing.assert_allclose(results[np.float32], results[np.float64], rtol=0, atol=1e-7)
    assert not np.array_equal(results[np.float32], results[np.float64])  # float32 it was
    assert results[np.float32, "plain"] == results[np.float64, "plain"]


def test_ece_batch_close_stops_its_background_thread(monkeypatch):
    """An owner that gives up (an error while scoring) closes the batch: the pass in flight
    stops at its next block and no thread is left behind."""
    import threading

    from harness.metrics import ece_intervals

    monkeypatch.setattr(ece_intervals, "_BACKGROUND_ELEMENTS", 0)
    monkeypatch.setattr(ece_intervals, "_workers", lambda: 2)
    monkeypatch.setattr(ece_intervals, "_CHUNK_ELEMENTS", 2_000)  # many small blocks
    monkeypatch.setattr(ece_intervals, "_PASS_COLUMNS", 1)
    rng = np.random.default_rng(7)
    n = 2_000
    batch = ece_intervals.EceBatch(n, n_boot=3_000, seed=1, background=True)
    batch.ask(rng.uniform(0, 1, n), rng.random(n) < 0.5, "quantile")
    batch.start()
    batch.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("prelabel-ece")]
    _, done = batch._passes[0]
    assert done.cancelled() or isinstance(done.exception(), RuntimeError)


def test_ece_batch_takes_float32_products_only_for_background_batches(monkeypatch):
    """float32 only where it pays (background batches) and where counts stay exact: every
    resample's multiplicities must sum below 2**24, N draws of items, or of clusters each
    as large as the largest one."""
    from harness.metrics import ece_intervals

    monkeypatch.setattr(ece_intervals, "_BACKGROUND_ELEMENTS", 0)
    monkeypatch.setattr(ece_intervals, "_workers", lambda: 2)

    def dtype_of(n, clusters=None, background=True):
        batch = ece_intervals.EceBatch(n, n_boot=2, clusters=clusters, background=background)
        batch.close()
        return batch._dtype

    assert dtype_of(1000) == np.float32
    assert dtype_of(1000, background=False) == np.float64
    few_big = np.repeat(np.arange(2), [1, 999])  # 2 draws of up to 999 items: exact
    assert dtype_of(1000, few_big) == np.float32
    monkeypatch.setattr(ece_intervals, "_counts_limit", lambda: 1000)
    assert dtype_of(1000, few_big) == np.float64  # 2 x 999 > the (lowered) limit
    assert dtype_of(999) == np.float32


def test_ece_batch_without_background_starts_no_threads(monkeypatch):
    """One or two setups (a 100,000-item run's peak memory is this batch): no worker
    threads, whose allocator arenas each kept hundreds of MB, even on several cores."""
    from harness.metrics import ece_intervals

    started = []

    class Counting(ece_intervals.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            started.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(ece_intervals, "ThreadPoolExecutor", Counting)
    monkeypatch.setattr(ece_intervals, "_workers", lambda: 4)
    monkeypatch.setattr(ece_intervals, "_BACKGROUND_ELEMENTS", 0)
    rng = np.random.default_rng(2)
    n = 500
    conf, hit = rng.uniform(0.3, 1, n), rng.random(n) < 0.7

    def resolve(background: bool):
        batch = ece_intervals.EceBatch(n, n_boot=50, seed=3, background=background)
        batch.ask(conf, hit, "uniform")
        batch.ask(conf, hit, "quantile")
        batch.start()
        return batch.resolve()

    plain = resolve(background=False)
    assert started == []
    assert resolve(background=True) and started  # the background batch does use them
    want = ece_intervals.ece_ci(conf, hit, n_boot=50, seed=3)
    assert (plain[0].low, plain[0].high) == pytest.approx((want.low, want.high), rel=1e-12)
