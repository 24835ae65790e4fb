"""Small gold sets (issue 17 item 4; docs/statistics.md section 4): BCa below BCA_BELOW
units, the debiased ECE and its interval, PPI's coverage, and the equal-mass bins of no
items.

The coverage figures printed here (``pytest -s tests/metrics/test_small_n.py``) are the
ones in statistics.md section 4. Accuracy and kappa coverage is computed exactly over the
sampling distribution of the table (every table weighted by its multinomial probability),
so its only Monte Carlo error is the bootstrap's own (1,000 seeded replicates, as shipped);
ECE and PPI coverage is a share of R simulated data sets, with its standard error printed.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binom, bootstrap, multinomial

from harness.metrics import accuracy_ci, ece_ci, ece_ci_many, kappa_ci, macro_f1_ci
from harness.metrics.accuracy import macro_f1_from_confusion
from harness.metrics.agreement import kappa_from_confusion
from harness.metrics.bca import acceleration
from harness.metrics.calibration import (
    ece,
    ece_debiased,
    ece_debiased_squared,
    reliability_bins,
)
from harness.metrics.intervals import BCA_BELOW, bootstrap_items, bootstrap_table_stat
from harness.metrics.ppi import ppi_mean
from harness.score.small_n import PPI_BELOW


def _share(tables: np.ndarray) -> np.ndarray:
    return tables[:, 1] / tables.sum(axis=1)


def _accuracy_coverage(n: int, ps: np.ndarray, method: str) -> np.ndarray:
    """Exact coverage of the shipped interval at each true accuracy in ``ps``: the interval
    depends on the data only through k correct of n, so weight each k by Binomial(n, p)."""
    ks = np.arange(n + 1)
    bounds = np.array(
        [
            (iv.low, iv.high)
            for iv in (
                bootstrap_table_stat(np.repeat([1, 0], [k, n - k]), 2, _share, method=method)
                for k in ks
            )
        ]
    )
    covered = (bounds[None, :, 0] <= ps[:, None]) & (ps[:, None] <= bounds[None, :, 1])
    return (binom.pmf(ks[None, :], n, ps[:, None]) * covered).sum(axis=1)


# True accuracies from 0.6 to 0.85: where a model makes enough mistakes for any bootstrap
# to see them (near 1, see test_no_bootstrap_interval_covers_a_near_perfect_accuracy).
GRID = np.linspace(0.6, 0.85, 26)


@pytest.mark.parametrize("n", [15, 20, 30, 40])
def test_bca_covers_accuracy_on_small_gold_sets_where_percentile_falls_short(n):
    percentile = _accuracy_coverage(n, GRID, "percentile").mean()
    bca = _accuracy_coverage(n, GRID, "bca").mean()
    print(
        f"accuracy n={n}: mean coverage over p in [0.6, 0.85]: "
        f"percentile {percentile:.3f}, bca {bca:.3f}"
    )
    assert bca >= 0.95 > percentile


def test_no_bootstrap_interval_covers_a_near_perfect_accuracy():
    # With no error in the sample every resample is perfect: the interval is [1, 1]. At a
    # true 0.95 and n = 20 that happens 36% of the time, so coverage stays near 0.64: the
    # reason the small-n note counts the wrong items, not just n.
    bca = _accuracy_coverage(20, np.array([0.95]), "bca")[0]
    print(f"accuracy 0.95, n=20: bca coverage {bca:.3f}")
    assert bca < 1 - binom.pmf(20, 20, 0.95) + 0.01


def _kappa_coverage(n: int, cells: np.ndarray, min_pmf: float) -> tuple[float, float]:
    """Coverage of the shipped kappa interval (2 labels) over every table of n items with
    probability >= min_pmf, and the probability mass those tables hold."""
    truth = float(kappa_from_confusion((cells.reshape(1, 2, 2) * 1e9).astype(np.int64))[0])
    covered = mass = 0.0
    for a, b, c in itertools.product(range(n + 1), repeat=3):
        counts = [a, b, c, n - a - b - c]
        if counts[3] < 0:
            continue
        p = multinomial.pmf(counts, n, cells)
        if p < min_pmf:
            continue
        iv = kappa_ci(np.repeat([0, 0, 1, 1], counts), np.repeat([0, 1, 0, 1], counts), 2)
        mass += p
        covered += p * (iv.low <= truth <= iv.high) if not np.isnan(iv.low) else 0.0
    return covered / mass, mass


def test_bca_covers_kappa_on_a_small_gold_set():
    # Prevalence 0.3, accuracy 0.8 on either class (kappa 0.558). Tables left out (each
    # below 2e-4) count as misses, so the asserted figure is a lower bound.
    cells = np.array([0.7 * 0.8, 0.7 * 0.2, 0.3 * 0.2, 0.3 * 0.8])
    coverage, mass = _kappa_coverage(20, cells, 2e-4)
    print(
        f"kappa 0.558, n=20: bca coverage {coverage:.3f} on {mass:.3f} of the tables' "
        f"mass, at least {coverage * mass:.3f}"
    )
    assert coverage * mass >= 0.93


def test_bca_acceleration_over_cells_is_the_item_jackknife():
    rng = np.random.default_rng(3)
    y, f = rng.integers(0, 3, 25), rng.integers(0, 3, 25)
    k = 3
    cells = y * (k + 1) + f

    def kappa(tables):
        return kappa_from_confusion(tables.reshape(-1, k, k + 1))

    counts = np.bincount(cells, minlength=k * (k + 1))
    per_item = np.array(
        [kappa(np.bincount(np.delete(cells, i), minlength=k * (k + 1))[None])[0] for i in range(25)]
    )
    filled = np.flatnonzero(counts)
    by_cell = kappa(counts[None] - np.eye(k * (k + 1), dtype=np.int64)[filled])
    d = per_item.mean() - per_item
    direct = (d**3).sum() / (6 * (d**2).sum() ** 1.5)
    assert acceleration(by_cell, counts[filled]) == pytest.approx(direct, rel=1e-9)


def test_bca_bounds_are_scipys_on_the_same_replicates():
    # scipy.stats.bootstrap(method="BCa")'s own step (its private _bca_interval), fed our
    # replicates and the items as data: the same quantile levels, so the same bounds.
    from scipy.stats._resampling import _bca_interval

    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, 30)
    f = np.where(rng.uniform(size=30) < 0.7, y, rng.integers(0, 3, 30))
    k = 3
    seen = []

    def kappa(tables):
        values = kappa_from_confusion(tables.reshape(-1, k, k + 1))
        seen.append(values)
        return values

    ours = bootstrap_table_stat(y * (k + 1) + f, k * (k + 1), kappa, n_boot=2000, method="bca")
    replicates = seen[1]

    def item_kappa(index, axis=-1):  # paired items, as scipy's paired=True passes them
        cells = y[index] * (k + 1) + f[index]
        onehot = (cells[..., None] == np.arange(k * (k + 1))).sum(axis=-2)
        return kappa_from_confusion(onehot.reshape(-1, k, k + 1)).reshape(cells.shape[:-1])

    q_low, q_high, _ = _bca_interval(
        (np.arange(30),), item_kappa, -1, 0.025, replicates[None, :], None, np
    )
    expected = np.quantile(replicates, [float(np.squeeze(q_low)), float(np.squeeze(q_high))])
    assert ours.method == "bca"
    assert (ours.low, ours.high) == pytest.approx(tuple(expected), abs=1e-12)


def test_bca_accuracy_matches_scipy_bca():
    # Discrete replicates: both land on the same order statistics at this many resamples.
    data = np.repeat([1, 0], [16, 4])
    ours = bootstrap_table_stat(data, 2, _share, n_boot=20_000, method="bca")
    theirs = bootstrap(
        (data,), np.mean, method="BCa", n_resamples=20_000, random_state=0
    ).confidence_interval
    assert (ours.low, ours.high) == (theirs.low, theirs.high)


def test_bca_applies_below_the_threshold_only_and_leaves_larger_sets_alone():
    rng = np.random.default_rng(0)
    for n in (BCA_BELOW - 1, BCA_BELOW, 130):
        y = rng.integers(0, 2, n)
        f = np.where(rng.uniform(size=n) < 0.8, y, 1 - y)
        for iv in (accuracy_ci(y, f), macro_f1_ci(y, f, 2), kappa_ci(y, f, 2)):
            assert iv.method == ("bca" if n < BCA_BELOW else "percentile")
    # At the demo's n the interval is the percentile one, bound for bound.
    y = rng.integers(0, 2, 130)
    cells = (y == np.where(rng.uniform(size=130) < 0.8, y, 1 - y)).astype(int)
    auto = bootstrap_table_stat(cells, 2, _share)
    assert auto == bootstrap_table_stat(cells, 2, _share, method="percentile")
    with pytest.raises(ValueError, match="method"):
        bootstrap_table_stat(cells, 2, _share, method="studentized")


def test_bca_with_clusters_counts_clusters_and_takes_their_jackknife():
    cells = np.repeat([1, 0], [150, 50])
    clusters = np.arange(200) % 20  # 200 items, 20 clusters: few units
    iv = bootstrap_table_stat(cells, 2, _share, clusters=clusters)
    assert iv.method == "bca" and iv.low <= 0.75 <= iv.high


def _kumar_unbiased_square_ce(conf, hit, n_bins=10):
    """Kumar et al.'s ``unbiased_square_ce`` on equal-width bins, item by item."""
    edges = np.linspace(0, 1, n_bins + 1)
    index = np.searchsorted(edges[1:-1], conf, side="left")
    total = 0.0
    for b in range(n_bins):
        c, h = conf[index == b], hit[index == b]
        if c.size < 2:
            continue
        total += (
            c.size
            / conf.size
            * ((c.mean() - h.mean()) ** 2 - h.mean() * (1 - h.mean()) / (c.size - 1))
        )
    return total


@pytest.mark.parametrize("n", [1, 2, 9, 60, 400])
def test_debiased_ece_is_kumar_et_al_unbiased_square_ce(n):
    rng = np.random.default_rng(n)
    conf = rng.uniform(0.3, 1.0, n)
    hit = (rng.uniform(size=n) < conf).astype(float)
    assert ece_debiased_squared(conf, hit) == pytest.approx(
        _kumar_unbiased_square_ce(conf, hit), abs=1e-12
    )
    assert ece_debiased(conf, hit) == pytest.approx(
        np.sqrt(max(ece_debiased_squared(conf, hit), 0))
    )


def test_debiased_ece_replicates_are_those_of_bootstrap_items():
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.4, 1.0, 80)
    hit = (rng.uniform(size=80) < conf).astype(float)
    batched = ece_ci(conf, hit, strategy="debiased", n_boot=300, seed=2)
    plain = bootstrap_items(lambda i: ece_debiased_squared(conf[i], hit[i]), 80, 300, 2)
    assert batched.estimate == plain.estimate
    assert batched.low == pytest.approx(plain.low, abs=1e-12)
    assert batched.high == pytest.approx(plain.high, abs=1e-12)


def test_calibration_of_no_items_is_nan_for_every_binning():
    empty, none = np.array([]), np.array([], dtype=np.int64)
    assert reliability_bins(empty, none, strategy="quantile") == []
    assert np.isnan(ece(empty, none, strategy="quantile"))
    assert np.isnan(ece_debiased_squared(empty, none)) and np.isnan(ece_debiased(empty, none))
    iv = ece_ci(empty, none, strategy="debiased")
    assert (iv.n, iv.n_boot) == (0, 0) and np.isnan(iv.estimate)


def _ece_sets(n: int, r: int, shift: float, seed: int):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, (r, n))
    hit = (rng.uniform(size=(r, n)) < conf - shift).astype(float)
    return conf, hit


def test_debiased_ece_interval_holds_zero_for_a_calibrated_model():
    # R = 400 data sets of 100 items: standard error of a share near 0.95 is 0.011. The
    # data sets share one seed's resamples, which does not bias the share.
    r, n = 400, 100
    conf, hit = _ece_sets(n, r, 0.0, 100)
    debiased = ece_ci_many([(conf[j], hit[j], "debiased") for j in range(r)])
    plug_in = ece_ci_many([(conf[j], hit[j], "uniform") for j in range(r)])
    holds = np.mean([iv.low <= 0.0 for iv in debiased])
    plug_holds = np.mean([iv.low <= 0.0 for iv in plug_in])
    print(
        f"calibrated, n={n}: debiased interval holds 0 in {holds:.3f} (SE 0.011); "
        f"plug-in {plug_holds:.3f}"
    )
    assert holds >= 0.93 and plug_holds == 0.0


def test_debiased_ece_interval_covers_a_miscalibrated_model():
    # Overconfident by 0.1 everywhere: the squared binned error is 0.1^2 = 0.01. R = 300
    # (SE 0.013 near 0.95).
    r, n = 300, 100
    conf, hit = _ece_sets(n, r, 0.1, 101)
    debiased = ece_ci_many([(conf[j], hit[j], "debiased") for j in range(r)])
    covers = np.mean([iv.low <= 0.01 <= iv.high for iv in debiased])
    bias = np.mean([iv.estimate for iv in debiased]) - 0.01
    print(f"overconfident by 0.1, n={n}: coverage {covers:.3f} (SE 0.013), mean bias {bias:+.4f}")
    assert covers >= 0.93 and abs(bias) < 0.002


def _ppi_coverage(n: int, r: int = 4000, big_n: int = 2000, theta: float = 0.3) -> float:
    """Share of r data sets whose PPI interval holds theta (LLM right 85% of the time).
    ``ppi_mean``'s arithmetic, vectorised over the data sets (checked against it below)."""
    rng = np.random.default_rng(n)
    y = rng.uniform(size=(r, n)) < theta
    f = np.where(rng.uniform(size=(r, n)) < 0.85, y, ~y).astype(float)
    yu = rng.uniform(size=(r, big_n)) < theta
    fu = np.where(rng.uniform(size=(r, big_n)) < 0.85, yu, ~yu).astype(float)
    rectifier = y - f
    estimate = fu.mean(axis=1) + rectifier.mean(axis=1)
    se = np.sqrt(fu.var(axis=1) / big_n + rectifier.var(axis=1) / n)
    one = ppi_mean(y[0].astype(float), f[0], fu[0])
    assert (one.estimate, one.se) == pytest.approx((estimate[0], se[0]), rel=1e-12)
    z = (one.high - one.estimate) / one.se
    return float(np.mean(np.abs(estimate - theta) <= z * se))


@pytest.mark.parametrize(("n", "expected"), [(20, "below"), (PPI_BELOW, "meets")])
def test_ppi_coverage_on_small_gold_sets(n, expected):
    # Share 0.3, 2,000 unlabeled items, R = 4,000 data sets (SE 0.004).
    coverage = _ppi_coverage(n)
    print(f"PPI n={n}: coverage {coverage:.3f} (SE 0.004)")
    assert (coverage < 0.90) if expected == "below" else (coverage >= 0.93)


def _coverage_tables(kappa_reps: int) -> None:  # pragma: no cover - the docs' figures
    """The coverage-vs-n tables of statistics.md section 4 (the switch to BCa below 100)."""
    print("accuracy, exact over Binomial(n, p): mean coverage for p in [0.6, 0.85] | at 0.8 | 0.95")
    for n in (10, 15, 20, 30, 40, 50, 60, 80, 100, 150):
        row = [f"n={n:>3}"]
        for method in ("percentile", "bca"):
            mid = _accuracy_coverage(n, GRID, method).mean()
            at = _accuracy_coverage(n, np.array([0.8, 0.95]), method)
            row.append(f"{method} {mid:.3f} | {at[0]:.3f} | {at[1]:.3f}")
        print("  ".join(row), flush=True)
    print(f"kappa and macro-F1 (2 labels, prevalence 0.3), {kappa_reps} data sets per cell")
    for acc in (0.8, 0.95):
        cells = np.array([0.7 * acc, 0.7 * (1 - acc), 0.3 * (1 - acc), 0.3 * acc])
        table = (cells.reshape(1, 2, 2) * 1e9).astype(np.int64)
        truth = {"kappa": kappa_from_confusion(table)[0]}
        truth["macro_f1"] = macro_f1_from_confusion(np.concatenate([table, 0 * table[..., :1]], 2))[
            0
        ]
        for n in (15, 20, 30, 40, 60, 80, 100):
            found = {}
            for method in ("percentile", "bca"):
                for name, ci in (("kappa", kappa_ci), ("macro_f1", macro_f1_ci)):
                    hits = kept = 0
                    for j in range(kappa_reps):
                        drawn = np.random.default_rng([n, j]).choice(4, size=n, p=cells)
                        y, f = drawn // 2, drawn % 2
                        with_method = _with_method(ci, method)
                        iv = with_method(y, f, 2, seed=j)
                        if not np.isnan(iv.low):
                            kept += 1
                            hits += iv.low <= truth[name] <= iv.high
                    found[f"{name} {method}"] = f"{hits / kept:.3f}"
            print(f"accuracy {acc} n={n:>3}: {found}", flush=True)
    print("debiased ECE (calibrated: share of intervals holding 0; R = 400, SE <= 0.015)")
    for n in (30, 50, 100, 200, 500):
        conf, hit = _ece_sets(n, 400, 0.0, n)
        ivs = ece_ci_many([(conf[j], hit[j], "debiased") for j in range(400)])
        plug = ece_ci_many([(conf[j], hit[j], "uniform") for j in range(400)])
        print(
            f"n={n:>3}: debiased holds 0 {np.mean([iv.low <= 0 for iv in ivs]):.3f}, "
            f"plug-in {np.mean([iv.low <= 0 for iv in plug]):.3f}",
            flush=True,
        )
    print("plug-in ECE, overconfident by 0.05 (true ECE 0.05): coverage, R = 200 (SE <= 0.035)")
    for n in (100, 200, 500, 1000):
        conf, hit = _ece_sets(n, 200, 0.05, n)
        ivs = ece_ci_many([(conf[j], hit[j], "uniform") for j in range(200)])
        print(f"n={n:>4}: {np.mean([iv.low <= 0.05 <= iv.high for iv in ivs]):.3f}", flush=True)
    print("PPI (share 0.3, LLM right 85%, 2,000 unlabeled; R = 4,000, SE 0.004)")
    for n in (10, 20, 30, 50, 100, 200):
        print(f"n={n:>3}: {_ppi_coverage(n):.3f}", flush=True)


def _with_method(ci, method: str):
    """``ci`` with the table bootstrap forced to ``method`` (for the comparison only)."""
    from harness.metrics import intervals

    def run(*args, **kwargs):
        saved = intervals.BCA_BELOW
        intervals.BCA_BELOW = 10**9 if method == "bca" else 0
        try:
            return ci(*args, **kwargs)
        finally:
            intervals.BCA_BELOW = saved

    return run


if __name__ == "__main__":  # pragma: no cover
    import sys

    _coverage_tables(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
