"""Learn-then-Test on clustered items (statistics.md section 3): the design-effect p-values
keep P(error among accepted > target) <= delta where the binomial ones do not, the halves
of the cross-fit keep clusters whole, and the unclustered path is unchanged.

    python -m pytest -q -s -p no:cacheprovider tests/metrics/test_ltt_clusters.py
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betainc
from scipy.stats import binom

from harness.metrics.selective import cross_fit_ltt, learn_then_test

ALPHA, DELTA = 0.1, 0.1


def _step(z: np.ndarray) -> np.ndarray:
    # The 10% most confident items err ten times less: LTT has something to accept, and
    # past them the error among accepted stays near the target, where clustering matters.
    return np.where(z >= 0.9, 0.1, 1.0)


def _violation_rates(
    n_clusters: int, size: int, reps: int, mean=0.12, icc=0.6, seed=7
) -> dict[str, tuple[float, float]]:
    """Share of gold sets whose deployed threshold has a population error above ALPHA, and
    the mean coverage, for LTT without and with the clusters."""
    rng = np.random.default_rng(seed)
    a, b = mean * (1 / icc - 1), (1 - mean) * (1 / icc - 1)
    # The population's error among accepted at any threshold, from 10^6 items of 10^5
    # fresh clusters (each item's error probability, not its draw).
    z_pop = rng.random((100_000, 10))
    p_pop = np.minimum(1.0, rng.beta(a, b, 100_000)[:, None] * _step(z_pop)).ravel()
    order = np.argsort(-z_pop.ravel())
    z_desc = z_pop.ravel()[order]
    risk_desc = np.cumsum(p_pop[order]) / np.arange(1, p_pop.size + 1)

    def risk(t: float) -> float:
        return risk_desc[np.searchsorted(-z_desc, -t, side="right") - 1]

    groups = np.repeat(np.arange(n_clusters), size)
    over = {"items": 0, "clusters": 0}
    cover = {"items": 0.0, "clusters": 0.0}
    for _ in range(reps):
        rate = rng.beta(a, b, n_clusters)[groups]
        z = rng.random(groups.size)
        wrong = rng.random(groups.size) < np.minimum(1.0, rate * _step(z))
        for key, clusters in (("items", None), ("clusters", groups)):
            res = learn_then_test(z, ~wrong, ALPHA, DELTA, clusters=clusters)
            if res.threshold is not None:
                over[key] += risk(res.threshold) > ALPHA
                cover[key] += res.coverage / reps
    return {k: (over[k] / reps, cover[k]) for k in over}


def test_design_effect_keeps_the_guarantee_where_the_binomial_breaks_it() -> None:
    reps = 1000
    se = np.sqrt(DELTA * (1 - DELTA) / reps)
    rates = _violation_rates(40, 20, reps)
    print(
        f"\n40 clusters x 20 items, ICC 0.6, target {ALPHA}, delta {DELTA}, {reps} gold sets: "
        f"P(error among accepted > target) without clusters {rates['items'][0]:.3f} "
        f"(coverage {rates['items'][1]:.3f}), with clusters {rates['clusters'][0]:.3f} "
        f"(coverage {rates['clusters'][1]:.3f}); MC SE at delta {se:.4f}"
    )
    assert rates["items"][0] > DELTA + 4 * se
    assert rates["clusters"][0] <= DELTA + 2 * se
    assert rates["clusters"][1] > 0.1  # it still accepts items


def test_forty_clusters_of_ten_items_too() -> None:
    reps = 1000
    rates = _violation_rates(40, 10, reps, mean=0.115, icc=0.8, seed=8)
    print(
        f"\n40 clusters x 10 items, ICC 0.8: without clusters {rates['items'][0]:.3f} "
        f"(coverage {rates['items'][1]:.3f}), with {rates['clusters'][0]:.3f} "
        f"(coverage {rates['clusters'][1]:.3f})"
    )
    se = np.sqrt(DELTA * (1 - DELTA) / reps)
    assert rates["items"][0] > DELTA + 3 * se
    assert rates["clusters"][0] <= DELTA + 2 * se


def _data(n: int = 300, seed: int = 3):
    rng = np.random.default_rng(seed)
    conf = rng.random(n)
    correct = rng.random(n) < 0.8 + 0.2 * conf
    return conf, correct


def test_without_clusters_p_values_are_the_binomial_cdf() -> None:
    conf, correct = _data()
    thresholds = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    res = learn_then_test(conf, correct, ALPHA, 0.5, thresholds=thresholds)
    for t, p in zip(res.thresholds_tested, res.p_values, strict=True):
        acc = conf >= t
        assert p == pytest.approx(binom.cdf((~correct[acc]).sum(), acc.sum(), ALPHA), rel=1e-12)
    assert res.n_clusters is None and res.design_effect is None


def test_every_item_its_own_cluster_is_the_unclustered_test() -> None:
    conf, correct = _data()
    plain = learn_then_test(conf, correct, ALPHA, DELTA)
    own = learn_then_test(conf, correct, ALPHA, DELTA, clusters=np.arange(conf.size))
    assert own.threshold == plain.threshold
    assert np.array_equal(own.p_values, plain.p_values)
    a = cross_fit_ltt(conf, correct, ALPHA, DELTA, seed=5)
    assert cross_fit_ltt(conf, correct, ALPHA, DELTA, seed=5, clusters=np.arange(300)) == a


def test_clustered_p_value_is_the_binomial_cdf_at_the_effective_size() -> None:
    # 6 clusters of 5 items, all accepted at threshold 0: errors 3, 0, 1, 0, 2, 0.
    clusters = np.repeat(np.arange(6), 5)
    wrong = np.zeros(30, bool)
    wrong[[0, 1, 2, 10, 20, 21]] = True
    conf = np.linspace(1, 0.5, 30)
    res = learn_then_test(conf, ~wrong, 0.3, 0.9, thresholds=np.array([0.0]), clusters=clusters)
    e_k = np.array([3, 0, 1, 0, 2, 0])
    r = 6 / 30
    deff = 6 / 5 * ((e_k - r * 5) ** 2).sum() / 30**2 / (r * (1 - r) / 30)
    n_eff, e_eff = 30 / deff, 6 / deff
    assert deff > 1
    assert res.design_effect == pytest.approx(deff)
    assert res.p_values[0] == pytest.approx(betainc(n_eff - e_eff, e_eff + 1, 0.7))
    assert res.p_values[0] > binom.cdf(6, 30, 0.3)


def test_no_error_among_accepted_uses_the_clusters_correlation() -> None:
    # Errors only in the two least confident clusters, each wholly wrong: the intra-cluster
    # correlation over all items is 1, so accepted items count as their clusters.
    clusters = np.repeat(np.arange(30), 4)
    conf = 1 - clusters / 30
    correct = clusters < 28
    res = learn_then_test(
        conf, correct, 0.1, 0.2, thresholds=np.array([conf[100]]), clusters=clusters
    )
    assert res.design_effect == pytest.approx(4.0)
    assert res.p_values[0] == pytest.approx(0.9**26)


def test_cross_fit_splits_whole_clusters() -> None:
    conf, correct = _data(66)
    clusters = np.repeat(np.arange(11), 6)
    out = cross_fit_ltt(conf, correct, ALPHA, DELTA, seed=2, clusters=clusters)
    # Half of 11 clusters is 6 of them, 36 items; an item split would give 33.
    assert (out["fit_n"], out["check_n"]) == (36, 30)
    with pytest.raises(ValueError, match="1 clusters"):
        cross_fit_ltt(conf, correct, ALPHA, DELTA, clusters=np.zeros(66, int))


def test_degenerate_clusterings_give_finite_results() -> None:
    conf, correct = _data(50)
    one = learn_then_test(conf, correct, ALPHA, DELTA, clusters=np.zeros(50, int))
    assert one.threshold is None  # one cluster is one observation: nothing passes
    assert np.all(np.isfinite(one.p_values))
    for clusters in (np.arange(50) // 2, np.arange(50) % 2, np.arange(50) // 25):
        res = learn_then_test(conf, correct, ALPHA, DELTA, clusters=clusters)
        assert np.all(np.isfinite(res.p_values)) and np.all(res.p_values <= 1)
    # No error anywhere: the correlation is not estimable, each cluster counts as one item.
    more, right = _data(100)[0], np.ones(100, bool)
    all_right = learn_then_test(more, right, ALPHA, DELTA, clusters=np.arange(100) // 2)
    assert all_right.threshold is not None and np.isfinite(all_right.design_effect)
    assert (
        learn_then_test(more, right, ALPHA, DELTA, clusters=np.arange(100) // 5).threshold is None
    )
    with pytest.raises(ValueError, match="one cluster per item"):
        learn_then_test(conf, correct, ALPHA, DELTA, clusters=np.zeros(3))


def test_scoring_passes_the_gold_sets_clusters_to_the_threshold() -> None:
    from score.test_clusters import grouped_gold, score

    clustered = score(grouped_gold())["setups"][1]["selective"]
    plain = score(grouped_gold(clustered=False))["setups"][1]["selective"]
    assert clustered["clusters"] == {"n_clusters": 8, "design_effect": None}
    assert "clusters" not in plain
    # 38 answered items in 8 conversations of 5 (two failed): halves of whole conversations.
    assert clustered["cross_fit"]["fit_n"] == 20 and plain["cross_fit"]["fit_n"] == 19


def test_one_cluster_has_no_cross_fit_halves_but_a_block() -> None:
    from harness.score.selective import selective_block

    conf, correct = _data(40)
    ref = np.zeros(40, int)
    block = selective_block(ref, 1 - correct.astype(int), conf, 0.1, 0.1, 0, np.zeros(40, int))
    assert block["threshold"] is None and block["clusters"]["n_clusters"] == 1
    assert (block["cross_fit"]["fit_n"], block["cross_fit"]["check_n"]) == (40, 0)
