"""The noise-aware regression gate (statistics.md section 8)."""

import numpy as np
import pytest

from harness.metrics.gate import (
    Flips,
    accuracy_metric,
    flip_items,
    gate_metric,
    gate_rate,
    kappa_metric,
)
from harness.metrics.intervals import paired_difference_ci

# --- flips and the change, by hand --------------------------------------------------------
#
#   item  ref  baseline  candidate
#     0    0      0          0       unchanged
#     1    1      1          2       broken  (right -> wrong)
#     2    2      0          2       fixed   (wrong -> right)
#     3    0      1          2       changed (wrong -> wrong)
#     4    1     -1          1       fixed   (failure -> right)
#     5    -      2          0       changed (no reference; not scored)
#
# Scored items 0-4: baseline right on 0, 1 -> 2/5; candidate right on 0, 2, 4 -> 3/5.
REF = np.array([0, 1, 2, 0, 1, -1])
BASE = np.array([0, 1, 0, 1, -1, 2])
CAND = np.array([0, 2, 2, 2, 1, 0])


def test_flips_by_hand():
    flips = flip_items(REF, BASE, CAND)
    assert flips == Flips(fixed=(2, 4), broken=(1,), changed=(3, 5))
    assert flips.n_flipped == 5


def test_change_by_hand():
    gate = gate_metric("accuracy", BASE, CAND, tolerance=0.02, reference=REF, n_boot=200)
    assert gate.n == 5
    assert gate.baseline == pytest.approx(0.4) and gate.candidate == pytest.approx(0.6)
    assert gate.change.estimate == pytest.approx(0.2)
    assert gate.drop == pytest.approx(-0.2)
    assert gate.flips == flip_items(REF, BASE, CAND)
    assert gate.verdict in ("pass", "warn")  # an improvement never fails


def test_kappa_change_matches_the_intervals_module():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 3, 400)
    base = np.where(rng.random(400) < 0.8, ref, rng.integers(0, 3, 400))
    cand = np.where(rng.random(400) < 0.75, ref, rng.integers(0, 3, 400))
    base[:5] = -1  # failures stay in the kappa table as a never-matching category
    gate = gate_metric(
        "kappa", base, cand, 0.02, reference=ref, metric=kappa_metric(3), n_boot=2000
    )
    oracle = paired_difference_ci(ref, cand, base, 3, metric="kappa", n_boot=2000)
    assert gate.change.estimate == pytest.approx(oracle.estimate, rel=1e-12)
    # Index resampling here, multinomial tables there: same distribution, other draws.
    assert gate.change.low == pytest.approx(oracle.low, abs=0.015)
    assert gate.change.high == pytest.approx(oracle.high, abs=0.015)


def test_accuracy_interval_matches_the_intervals_module():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 4, 1000)
    base = np.where(rng.random(1000) < 0.8, ref, rng.integers(0, 4, 1000))
    cand = np.where(rng.random(1000) < 0.8, ref, rng.integers(0, 4, 1000))
    gate = gate_metric("accuracy", base, cand, 0.02, reference=ref, n_boot=2000)
    oracle = paired_difference_ci(ref, cand, base, 4, n_boot=2000)
    assert gate.change.estimate == pytest.approx(oracle.estimate)
    assert gate.change.low == pytest.approx(oracle.low, abs=0.006)
    assert gate.change.high == pytest.approx(oracle.high, abs=0.006)
    assert accuracy_metric(ref, cand) == pytest.approx(gate.candidate)


# --- the requirement: a rerun neither fails nor flaps --------------------------------------


def _setup(seed, n=300, k=3, accuracy=0.8):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < accuracy, ref, rng.integers(0, k, n))
    pred[rng.random(n) < 0.02] = -1
    return rng, ref, pred


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("tolerance", [0.0, 0.01, 0.05])
def test_identical_rerun_always_passes(seed, tolerance):
    _, ref, pred = _setup(seed)
    for metric in (None, kappa_metric(3), kappa_metric(3, "quadratic")):
        gate = gate_metric(
            "m", pred, pred.copy(), tolerance, reference=ref, metric=metric, seed=seed
        )
        assert gate.verdict == "pass", gate.reasons
        assert gate.reasons == ()
        assert gate.flips.n_flipped == 0
        assert (gate.drop, gate.drop_low, gate.drop_high) == (0.0, 0.0, 0.0)
    values = (pred == ref).astype(float)
    assert gate_metric("v", values, values.copy(), tolerance, seed=seed).verdict == "pass"


def test_identical_rerun_passes_even_when_the_change_is_undefined():
    ref = np.zeros(10, dtype=int)  # one class: kappa undefined on every resample
    pred = np.zeros(10, dtype=int)
    gate = gate_metric("kappa", pred, pred.copy(), 0.0, reference=ref, metric=kappa_metric(2))
    assert gate.verdict == "pass"


def test_same_inputs_and_seed_give_the_same_verdict():
    rng, ref, base = _setup(7)
    cand = np.where(rng.random(ref.size) < 0.1, rng.integers(0, 3, ref.size), base)
    a = gate_metric("acc", base, cand, 0.01, reference=ref, seed=3)
    b = gate_metric("acc", base, cand, 0.01, reference=ref, seed=3)
    assert a == b


def test_strongly_degraded_candidate_fails():
    rng, ref, base = _setup(11, n=500, accuracy=0.9)
    cand = np.where(rng.random(500) < 0.6, ref, rng.integers(0, 3, 500))
    for metric in (None, kappa_metric(3)):
        gate = gate_metric("m", base, cand, 0.02, reference=ref, metric=metric)
        assert gate.verdict == "fail"
        assert gate.drop_low > 0 and gate.drop > 0.02
        assert "dropped by" in gate.reasons[0]
        assert len(gate.flips.broken) > len(gate.flips.fixed)


def test_noise_within_tolerance_does_not_fail():
    # Exactly as many items fixed as broken: the drop is 0, so the drop rule cannot fire,
    # however the resamples fall.
    for seed in range(10):
        rng, ref, base = _setup(seed, n=400)
        right = np.flatnonzero(base == ref)
        wrong = np.flatnonzero(base != ref)
        flip = min(20, wrong.size)
        cand = base.copy()
        cand[rng.choice(right, flip, replace=False)] = -1
        fixed = rng.choice(wrong, flip, replace=False)
        cand[fixed] = ref[fixed]
        gate = gate_metric("acc", base, cand, 0.02, reference=ref, seed=seed)
        assert gate.drop == pytest.approx(0.0, abs=1e-12)
        assert gate.verdict != "fail"
        assert len(gate.flips.fixed) == len(gate.flips.broken) == flip


def test_small_real_drop_within_tolerance_passes():
    # 3 net broken items out of 1000 (0.3 points) against a 2-point tolerance.
    rng, ref, base = _setup(12, n=1000)
    cand = base.copy()
    cand[rng.choice(np.flatnonzero(base == ref), 3, replace=False)] = -1
    gate = gate_metric("acc", base, cand, 0.02, reference=ref)
    assert gate.drop == pytest.approx(0.003)
    assert gate.verdict == "pass"


def test_warn_when_the_interval_merely_contains_the_tolerance():
    # n = 100: 10 items broken, 6 fixed -> drop 0.04, SE = sqrt(16 - 16/100)/100 ~ 0.04,
    # so the interval of the drop spans 0 and the 0.02 tolerance: not shown, but possible.
    ref = np.zeros(100, dtype=int)
    base = np.r_[np.zeros(80, dtype=int), np.ones(20, dtype=int)]
    cand = base.copy()
    cand[:10] = 1  # broken
    cand[80:86] = 0  # fixed
    gate = gate_metric("acc", base, cand, 0.02, reference=ref, metric=None)
    assert gate.drop == pytest.approx(0.04)
    assert gate.drop_low < 0 < 0.02 < gate.drop_high
    assert gate.verdict == "warn"
    assert "may have dropped" in gate.reasons[0]


def test_a_drop_shown_but_within_tolerance_does_not_fail():
    # 15 broken, 0 fixed of 1000: the drop (0.015) is certainly > 0 but <= 0.05.
    ref = np.zeros(1000, dtype=int)
    base = ref.copy()
    cand = ref.copy()
    cand[:15] = 1
    gate = gate_metric("acc", base, cand, 0.05, reference=ref)
    assert gate.drop_low > 0
    assert gate.verdict == "pass"
    assert gate_metric("acc", base, cand, 0.01, reference=ref).verdict == "fail"


# --- floor, direction, values mode --------------------------------------------------------


def test_floor_on_the_candidates_lower_bound():
    _, ref, base = _setup(13, n=300, accuracy=0.7)
    gate = gate_metric(
        "kappa", base, base.copy(), 0.02, floor=0.9, reference=ref, metric=kappa_metric(3)
    )
    # An unchanged setup under an absolute floor fails on every rerun (deterministically).
    assert gate.verdict == "fail"
    assert "crosses floor" in gate.reasons[0]
    assert gate.candidate_interval.low < 0.9
    ok = gate_metric(
        "kappa", base, base.copy(), 0.02, floor=0.2, reference=ref, metric=kappa_metric(3)
    )
    assert ok.verdict == "pass" and ok.candidate_interval.low > 0.2


def test_lower_is_better_values_mode():
    rng = np.random.default_rng(14)
    error = rng.uniform(0, 1, 400)  # per-item absolute error
    worse = error + 0.3
    better = error - 0.3
    assert gate_metric("mae", error, worse, 0.05, higher_is_better=False).verdict == "fail"
    gate = gate_metric("mae", error, better, 0.05, higher_is_better=False)
    assert gate.verdict == "pass" and gate.drop == pytest.approx(-0.3)
    assert len(gate.flips.fixed) == 400 and gate.flips.changed == ()
    capped = gate_metric("mae", error, better, 0.05, floor=0.1, higher_is_better=False)
    assert capped.verdict == "fail"  # upper bound of the candidate's MAE > 0.1


def test_values_mode_with_correctness_and_custom_statistic():
    base = np.array([1] * 90 + [0] * 10)
    cand = np.array([1] * 60 + [0] * 40)
    gate = gate_metric("acc", base, cand, 0.02)
    assert gate.verdict == "fail" and gate.drop == pytest.approx(0.3)
    assert gate.flips.broken == tuple(range(60, 90)) and gate.flips.fixed == ()
    median = gate_metric("med", base, cand, 0.02, metric=np.median)
    assert median.baseline == 1.0 and median.candidate == 1.0


def test_items_without_reference_are_not_scored_but_listed():
    ref = np.array([0, 1, -1, -1])
    base = np.array([0, 1, 0, 1])
    cand = np.array([0, 1, 1, 0])
    gate = gate_metric("acc", base, cand, 0.0, reference=ref)
    assert gate.n == 2 and gate.verdict == "pass"
    assert gate.flips.changed == (2, 3)


def test_bad_arguments():
    a = np.zeros(5)
    with pytest.raises(ValueError, match="tolerance"):
        gate_metric("x", a, a, -0.1)
    with pytest.raises(ValueError, match="equal length"):
        gate_metric("x", a, a[:-1], 0.1)
    with pytest.raises(ValueError, match="no items"):
        gate_metric("x", a, a, 0.1, reference=np.full(5, -1))
    with pytest.raises(ValueError, match="clusters"):
        gate_metric("x", a, a, 0.1, clusters=np.zeros(3))


# --- scalar rates -------------------------------------------------------------------------


def test_rate_gate_by_hand():
    # limit = 0.02 * 1.1 + 0.001 = 0.023
    fail = gate_rate(
        "parse_failure_rate", 0.02, 0.025, relative_tolerance=0.1, absolute_tolerance=0.001
    )
    assert fail.limit == pytest.approx(0.023)
    assert fail.verdict == "fail" and "0.025" in fail.reason
    assert gate_rate("p", 0.02, 0.022, 0.1, 0.001).verdict == "pass"
    assert gate_rate("p", 0.02, 0.023, 0.1, 0.001).verdict == "pass"  # at the limit
    # A zero baseline needs the absolute part, or any failure fails.
    assert gate_rate("p", 0.0, 0.004, 0.5, 0.005).verdict == "pass"
    assert gate_rate("p", 0.0, 0.004, 0.5, 0.0).verdict == "fail"
    # Cost per item: 10% more allowed.
    assert gate_rate("cost", 0.0012, 0.00131, relative_tolerance=0.1).verdict == "pass"
    assert gate_rate("cost", 0.0012, 0.00133, relative_tolerance=0.1).verdict == "fail"


def test_rate_gate_rerun_and_missing_values():
    for value in (0.0, 0.013, 2.5):
        assert gate_rate("r", value, value).verdict == "pass"
    assert gate_rate("cost", float("nan"), 0.1).verdict == "warn"
    with pytest.raises(ValueError, match="tolerances"):
        gate_rate("r", 0.1, 0.1, relative_tolerance=-0.1)


def test_a_pure_improvement_never_warns_even_at_zero_tolerance():
    # One fixed item of 100: a third of the resamples miss it, so the interval of the drop
    # ends exactly at 0 = tolerance. "warn" needs the drop to possibly *exceed* it.
    ref = np.zeros(100, dtype=int)
    base = np.r_[np.zeros(90, dtype=int), np.ones(10, dtype=int)]
    cand = base.copy()
    cand[95] = 0
    gate = gate_metric("acc", base, cand, 0.0, reference=ref)
    assert gate.drop_high == 0.0
    assert gate.verdict == "pass"
