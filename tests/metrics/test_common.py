"""Common properties of the statistics in ``harness.metrics``, one registry per family.

In the style of scikit-learn's ``sklearn/metrics/tests/test_common.py``: each family
(two-rater agreement, multi-rater coefficients, calibration, pairwise preference,
multi-label, ranking, intervals) has a registry ``name -> callable`` with one calling
convention, lists of the names that have a property (symmetric, bounded, invariant to
item / label / annotator order, value at perfect agreement, ...), and one parametrised
test per property, fed by hypothesis strategies. A new metric is covered by adding it to
its registry and to the property lists it belongs to; the ``*_lists_partition`` tests
make sure every metric is placed on one side of each property.

Conventions under test (harness/metrics/__init__.py, statistics.md):

* labels are integer codes 0..K-1 and -1 is the one missing value: a missing rating, an
  item without a reference (dropped) or a failed prediction (end-to-end metrics count it
  as wrong; "answered" metrics drop it); multi-label rows and rankings are missing as a
  whole row of -1;
* an undefined value is nan (``fleiss_kappa``: None for an incomplete design), never a
  made-up 0 or 1. A property is asserted where the value is defined; where it is defined
  is pinned down separately (``*_undefined_exactly_when_documented``), so no property
  holds vacuously on a metric that returns nan.

Hypothesis runs derandomised (the same examples on every run and machine, as in
tests/test_degenerate.py) with a modest number of examples per test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness.metrics import (
    MULTILABEL_METRICS,
    ORDINAL_METRICS,
    PAIRWISE_METRICS,
    RANKING_METRICS,
    accuracy_ci,
    auroc,
    borda_reference,
    brier_top_label,
    classification_metrics,
    cohen_kappa,
    combine_orders,
    confusion,
    ece,
    ece_ci,
    first_position_rate,
    fleiss_kappa,
    gwet_ac1,
    human_ceiling,
    item_label_counts,
    kappa_ci,
    kappa_from_confusion,
    kendall_tau,
    krippendorff_alpha,
    length_bias,
    log_loss_top_label,
    macro_f1_ci,
    majority_vote,
    median_label,
    multilabel_alpha_per_label,
    multilabel_ci,
    multilabel_metrics,
    multilabel_reference,
    ordinal_ci,
    ordinal_human_ceiling,
    ordinal_metrics,
    paired_difference_ci,
    pairwise_agreement,
    pairwise_ci,
    pairwise_kappas,
    position_consistency,
    ranking_against_annotators,
    ranking_ci,
    ranking_human_ceiling,
    ranking_metrics,
    reliability_matrix,
    soft_labels,
    spearman_rho,
    tie_rate,
    unswap,
)

SETTINGS = settings(
    max_examples=50,
    deadline=None,  # a loaded machine is slow, never wrong
    derandomize=True,  # the same examples on every run and machine: CI never flaps
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
N_BOOT = 100  # bootstrap replicates in the interval properties (they hold for any B)
LOG_LOSS_EPS = 1e-6  # log_loss_top_label's default clipping


# ------------------------------------------------------------------------------ helpers


def undefined(value: float | None) -> bool:
    return value is None or math.isnan(value)


def same(x: float | None, y: float | None, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    """Equal up to float rounding, or both undefined (nan / None alike)."""
    if undefined(x) or undefined(y):
        return undefined(x) and undefined(y)
    return math.isclose(x, y, rel_tol=rel, abs_tol=abs_)


def assert_same(x: float | None, y: float | None, what: str = "") -> None:
    assert same(x, y), f"{what}: {x!r} != {y!r}"


def assert_within(value: float, lo: float, hi: float, what: str = "") -> None:
    assert lo - 1e-12 <= value <= hi + 1e-12, f"{what}: {value!r} outside [{lo}, {hi}]"


def relabel(codes: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Apply ``mapping`` (a permutation of 0..K-1) to the codes; -1 stays missing."""
    return np.where(codes >= 0, mapping[np.maximum(codes, 0)], codes)


def reverse_scale(codes: np.ndarray, k: int) -> np.ndarray:
    return np.where(codes >= 0, k - 1 - codes, codes)


def partition(names: set[str], *parts: list[str] | tuple[str, ...]) -> None:
    """Every name of a registry is on exactly one side of a property."""
    flat = [n for part in parts for n in part]
    assert len(flat) == len(set(flat)), "a metric is listed on both sides"
    assert set(flat) == names


# --------------------------------------------------------------------------- strategies
# Arrays are drawn whole (hypothesis.extra.numpy), every element on its own (no fill
# value: a mostly constant array hides ties and disagreement). Each generator mixes three
# regimes, so that extremes are common: a noisy copy of a latent truth (shrinks to perfect
# agreement), pure noise, and systematic disagreement (where bounds are reached).
# Arrays shrink towards zeros: a shrunk failure is small, with label 0 and identity orders.
REGIMES = ("copy", "noise", "disagree")


def vectors(elements: st.SearchStrategy, shape, dtype: type = np.int64) -> st.SearchStrategy:
    return hnp.arrays(dtype, shape, elements=elements, fill=st.nothing())


def flags(shape) -> st.SearchStrategy:
    return vectors(st.booleans(), shape, bool)


@st.composite
def label_pairs(draw, missing: bool = True, min_n: int = 0, max_n: int = 12, max_k: int = 5):
    """(y_true, y_pred, K): codes -1..K-1 (0..K-1 without ``missing``), the prediction a
    noisy copy of the reference so that agreement is anywhere from none to perfect."""
    k = draw(st.integers(2, max_k))
    n = draw(st.integers(min_n, max_n))
    regime = draw(st.sampled_from(REGIMES))
    y_true, noise = draw(vectors(st.integers(-1 if missing else 0, k - 1), (2, n)))
    if regime == "copy":
        y_pred = np.where(draw(flags(n)) | (y_true < 0), noise, y_true)
    elif regime == "noise":
        y_pred = noise
    else:  # never the reference's label (failures kept)
        shift = 1 + np.maximum(noise, 0) % (k - 1)
        y_pred = np.where((noise < 0) | (y_true < 0), noise, (y_true + shift) % k)
    return y_true, y_pred, k


@st.composite
def paired_setups(draw):
    y_true, pred_a, k = draw(label_pairs(max_n=12))
    pred_b = draw(vectors(st.integers(-1, k - 1), y_true.size))
    changed = draw(flags(y_true.size))
    return y_true, pred_a, np.where(changed, pred_b, pred_a), k


@st.composite
def ratings_matrices(
    draw, missing: bool = True, max_items: int = 8, max_annotators: int = 4, max_k: int = 4
):
    """(ratings (n_items, n_annotators), K): ratings copy a latent label, are noise, or
    disagree systematically (annotator j says truth + j). Half the designs are complete;
    K = 1 (a single label, where every coefficient is undefined) is included."""
    k = draw(st.integers(1, max_k))
    n_items = draw(st.integers(0, max_items))
    m = draw(st.integers(1, max_annotators))
    regime = draw(st.sampled_from(REGIMES))
    complete = not missing or draw(st.booleans())
    truth = draw(vectors(st.integers(0, k - 1), n_items))
    noise = draw(vectors(st.integers(0 if complete else -1, k - 1), (n_items, m)))
    if regime == "copy":
        ratings = np.where(draw(flags((n_items, m))), noise, truth[:, None])
    elif regime == "noise":
        ratings = noise
    else:
        ratings = np.where(noise < 0, -1, (truth[:, None] + np.arange(m)) % k)
    return ratings.astype(np.int64), k


@st.composite
def unanimous_ratings(draw, missing: bool = True):
    """Every annotator who rated an item gave it the same label (>= 2 annotators)."""
    k = draw(st.integers(2, 4))
    n_items = draw(st.integers(1, 10))
    m = draw(st.integers(2, 5))
    truth = draw(vectors(st.integers(0, k - 1), n_items))
    ratings = np.repeat(truth[:, None], m, axis=1)
    if missing:
        ratings[draw(flags((n_items, m)))] = -1
    return ratings, truth, k


CONFIDENCE = st.one_of(
    st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]),  # ties, and the ends of the scale
    st.floats(0.0, 1.0, allow_nan=False),
)


@st.composite
def calibration_data(draw, min_n: int = 0, max_n: int = 16):
    n = draw(st.integers(min_n, max_n))
    conf = draw(vectors(CONFIDENCE, n, float))
    return conf, draw(flags(n)).astype(np.int64)


@st.composite
def outcome_pairs(draw, max_n: int = 14):
    """(ref, pred) pairwise outcomes: 0 = A wins, 1 = B wins, 2 = tie, -1 = missing."""
    n = draw(st.integers(0, max_n))
    regime = draw(st.sampled_from(REGIMES))
    ref, noise = draw(vectors(st.integers(-1, 2), (2, n)))
    if regime == "copy":
        return ref, np.where(draw(flags(n)), noise, ref)
    if regime == "noise":
        return ref, noise
    return ref, np.where((ref < 0) | (noise < 0), noise, (ref + 1 + noise % 2) % 3)


@st.composite
def label_sets(draw, missing: bool = True, max_n: int = 10, max_labels: int = 4):
    """(ref, pred): indicator rows (n, L), whole rows of -1 for no reference / failure."""
    n_labels = draw(st.integers(1, max_labels))
    n = draw(st.integers(0, max_n))
    regime = draw(st.sampled_from(REGIMES))
    ref, noise = draw(vectors(st.integers(0, 1), (2, n, n_labels)))
    if regime == "copy":
        pred = np.where(draw(flags(n))[:, None], noise, ref)
    else:
        pred = noise if regime == "noise" else 1 - ref  # the complement set
    if missing:
        gone = draw(flags((2, n)))
        ref[gone[0]], pred[gone[1]] = -1, -1
    return ref, pred


def orders_from_keys(keys: np.ndarray) -> np.ndarray:
    """A permutation of 0..N-1 per row of sort keys (ties by index: equal keys shrink to
    the identity order)."""
    return np.argsort(keys, axis=-1, kind="stable").astype(np.int64)


@st.composite
def ranking_pairs(draw, missing: bool = True, max_n: int = 8, max_candidates: int = 5):
    """(ref, pred): orders (n, N) best first, whole rows of -1 for missing."""
    n_cand = draw(st.integers(1, max_candidates))
    n = draw(st.integers(0, max_n))
    regime = draw(st.sampled_from(REGIMES))
    ref, noise = orders_from_keys(draw(vectors(st.integers(0, 9), (2, n, n_cand))))
    if regime == "copy":
        pred = np.where(draw(flags(n))[:, None], noise, ref)
    else:
        pred = noise if regime == "noise" else ref[:, ::-1].copy()  # the reverse order
    if missing:
        gone = draw(flags((2, n)))
        ref[gone[0]], pred[gone[1]] = -1, -1
    return ref, pred


@st.composite
def two_orders(draw, max_candidates: int = 6):
    n_cand = draw(st.integers(1, max_candidates))
    a, b = orders_from_keys(draw(vectors(st.integers(0, 9), (2, n_cand))))
    gone = draw(flags(2))
    return (np.full(n_cand, -1) if gone[0] else a), (np.full(n_cand, -1) if gone[1] else b)


@st.composite
def annotator_rankings(draw, max_items: int = 8, max_annotators: int = 4, max_candidates: int = 4):
    """(rankings (n, m, N), pred (n, N)); annotators copy a latent order or rank at random,
    and skip items (-1 rows); the prediction copies it, ranks at random or fails."""
    n_cand = draw(st.integers(1, max_candidates))
    n = draw(st.integers(0, max_items))
    m = draw(st.integers(1, max_annotators))
    keys = draw(vectors(st.integers(0, 9), (n, m + 2, n_cand)))
    noisy, gone = draw(flags((2, n, m + 1)))
    orders = orders_from_keys(keys)
    truth = orders[:, -1:, :]
    rankings = np.where(noisy[:, :, None], orders[:, :-1], truth)
    rankings[gone] = -1
    return rankings[:, :m], rankings[:, m]


@st.composite
def annotator_label_sets(draw, max_items: int = 8, max_annotators: int = 4, max_labels: int = 3):
    """Multi-label ratings (n, m, L) with whole -1 vectors for items an annotator skipped."""
    n_labels = draw(st.integers(1, max_labels))
    n = draw(st.integers(0, max_items))
    m = draw(st.integers(1, max_annotators))
    ratings = draw(vectors(st.integers(0, 1), (n, m, n_labels)))
    ratings[draw(flags((n, m)))] = -1
    return ratings


def permutation_of(data: st.DataObject, n: int) -> np.ndarray:
    return np.array(data.draw(st.permutations(range(n))), dtype=np.int64)


# ===================================================================== two-rater agreement
# Calling convention: metric(y_true, y_pred, K) -> float. For the symmetric coefficients
# (cohen_kappa) the two arguments are just two raters.


def _kappa(weights: str | None) -> Callable:
    def metric(a, b, k):
        return cohen_kappa(a, b, k, weights=weights)

    return metric


def _classification(field: str) -> Callable:
    def metric(y_true, y_pred, k):
        return getattr(classification_metrics(y_true, y_pred, k), field)

    return metric


def _ordinal(field: str) -> Callable:
    def metric(y_true, y_pred, k):
        return getattr(ordinal_metrics(y_true, y_pred, k), field)

    return metric


TWO_RATER_METRICS: dict[str, Callable] = {
    "cohen_kappa": _kappa(None),
    "cohen_kappa_linear": _kappa("linear"),
    "cohen_kappa_quadratic": _kappa("quadratic"),
    "accuracy": _classification("accuracy"),
    "accuracy_answered": _classification("accuracy_answered"),
    "macro_f1": _classification("macro_f1"),
    "macro_f1_answered": _classification("macro_f1_answered"),
    **{f"ordinal_{m}": _ordinal(m) for m in ORDINAL_METRICS},
}
KAPPAS = (
    "cohen_kappa",
    "cohen_kappa_linear",
    "cohen_kappa_quadratic",
    "ordinal_kappa_linear",
    "ordinal_kappa_quadratic",
)


def two_rater_bounds(name: str, k: int) -> tuple[float, float]:
    if name in KAPPAS:
        return -1.0, 1.0
    if name == "ordinal_mae":
        return 0.0, k - 1.0  # scale steps
    return 0.0, 1.0


TWO_RATER_PERFECT = {name: (0.0 if name == "ordinal_mae" else 1.0) for name in TWO_RATER_METRICS}

# Symmetric in (y_true, y_pred) even with missing values: the metrics that drop a position
# missing on either side. The end-to-end ones treat -1 differently on the two sides (no
# reference: dropped; failed prediction: wrong), so they are symmetric on complete data only.
SYMMETRIC_WITH_MISSING = [
    "cohen_kappa",
    "cohen_kappa_linear",
    "cohen_kappa_quadratic",
    "accuracy_answered",
    "macro_f1_answered",
    "ordinal_mae",
]
NOT_SYMMETRIC_WITH_MISSING = [
    "accuracy",
    "macro_f1",
    "ordinal_exact",
    "ordinal_within_one",
    "ordinal_kappa_linear",
    "ordinal_kappa_quadratic",
]
SYMMETRIC_ON_COMPLETE_DATA = NOT_SYMMETRIC_WITH_MISSING  # the others: with missing values too

# Nominal metrics: any renaming of the labels. Ordinal ones use the scale order, so only
# its reversal (c -> K-1-c, which keeps |i - j|) leaves them unchanged.
LABEL_PERMUTATION_INVARIANT = [
    "cohen_kappa",
    "accuracy",
    "accuracy_answered",
    "macro_f1",
    "macro_f1_answered",
    "ordinal_exact",
]
ORDINAL_SCALE = [
    "cohen_kappa_linear",
    "cohen_kappa_quadratic",
    "ordinal_within_one",
    "ordinal_mae",
    "ordinal_kappa_linear",
    "ordinal_kappa_quadratic",
]
SCALE_REVERSAL_INVARIANT = sorted(TWO_RATER_METRICS)
ITEM_ORDER_INVARIANT = sorted(TWO_RATER_METRICS)

# Missing values. -1 in y_true drops the item everywhere. -1 in y_pred is dropped by the
# symmetric/answered metrics (SYMMETRIC_WITH_MISSING) and is an answer that is never right
# for the end-to-end ones (NOT_SYMMETRIC_WITH_MISSING).
REFERENCE_MISSING_DROPPED = sorted(TWO_RATER_METRICS)
FAILURE_DROPPED = SYMMETRIC_WITH_MISSING
FAILURE_COUNTS = NOT_SYMMETRIC_WITH_MISSING
# ... and for the shares of right answers it stays in the denominator.
FAILURE_STAYS_IN_DENOMINATOR = ["accuracy", "ordinal_exact", "ordinal_within_one"]
# Turning a right answer into a failure never raises these. Not the kappas: the failure
# also moves the chance term, e.g. ordinal_metrics([3, 2, 3], [2, 3, 3], 4).kappa_linear
# is -0.5 and becomes -0.25 when the last (right) answer fails.
FAILURE_NEVER_HELPS = ["accuracy", "macro_f1", "ordinal_exact", "ordinal_within_one"]


def _both(y_true, y_pred):
    keep = (y_true >= 0) & (y_pred >= 0)
    return y_true[keep], y_pred[keep]


def _kappa_undefined(a: np.ndarray, b: np.ndarray) -> bool:
    """Documented: nan with fewer than 2 items or when chance agreement is 1, i.e. both
    raters used one and the same label (any other table has expected disagreement > 0)."""
    return a.size < 2 or len(set(a.tolist()) | set(b.tolist())) == 1


def _end_to_end_kappa_undefined(y_true, y_pred, k) -> bool:
    keep = y_true >= 0
    columns = np.where(y_pred[keep] >= 0, y_pred[keep], k)  # failure: a category of its own
    return _kappa_undefined(y_true[keep], columns)


def _no_reference(y_true, y_pred, k) -> bool:
    return not (y_true >= 0).any()


def _none_answered(y_true, y_pred, k) -> bool:
    return not ((y_true >= 0) & (y_pred >= 0)).any()


TWO_RATER_UNDEFINED: dict[str, Callable[..., bool]] = {
    "cohen_kappa": lambda t, p, k: _kappa_undefined(*_both(t, p)),
    "cohen_kappa_linear": lambda t, p, k: _kappa_undefined(*_both(t, p)),
    "cohen_kappa_quadratic": lambda t, p, k: _kappa_undefined(*_both(t, p)),
    "accuracy": _no_reference,
    "accuracy_answered": _none_answered,
    "macro_f1": _no_reference,
    "macro_f1_answered": _none_answered,
    "ordinal_exact": _no_reference,
    "ordinal_within_one": _no_reference,
    "ordinal_mae": _none_answered,
    "ordinal_kappa_linear": _end_to_end_kappa_undefined,
    "ordinal_kappa_quadratic": _end_to_end_kappa_undefined,
}


def test_two_rater_lists_partition():
    names = set(TWO_RATER_METRICS)
    partition(names, SYMMETRIC_WITH_MISSING, NOT_SYMMETRIC_WITH_MISSING)
    partition(names, LABEL_PERMUTATION_INVARIANT, ORDINAL_SCALE)
    partition(names, FAILURE_DROPPED, FAILURE_COUNTS)
    assert set(TWO_RATER_UNDEFINED) == set(TWO_RATER_PERFECT) == names
    assert set(FAILURE_STAYS_IN_DENOMINATOR) | set(FAILURE_NEVER_HELPS) <= set(FAILURE_COUNTS)


@pytest.mark.parametrize("name", sorted(TWO_RATER_METRICS))
@SETTINGS
@given(labels=label_pairs())
def test_two_rater_undefined_exactly_when_documented(name, labels):
    y_true, y_pred, k = labels
    value = TWO_RATER_METRICS[name](y_true, y_pred, k)
    assert undefined(value) == TWO_RATER_UNDEFINED[name](y_true, y_pred, k), value


@pytest.mark.parametrize("name", sorted(TWO_RATER_METRICS))
@SETTINGS
@given(labels=label_pairs())
def test_two_rater_bounded(name, labels):
    y_true, y_pred, k = labels
    value = TWO_RATER_METRICS[name](y_true, y_pred, k)
    if not undefined(value):
        assert_within(value, *two_rater_bounds(name, k), what=name)


@pytest.mark.parametrize("name", SYMMETRIC_ON_COMPLETE_DATA)
@SETTINGS
@given(labels=label_pairs(missing=False))
def test_two_rater_symmetric_on_complete_data(name, labels):
    y_true, y_pred, k = labels
    metric = TWO_RATER_METRICS[name]
    assert_same(metric(y_true, y_pred, k), metric(y_pred, y_true, k), name)


@pytest.mark.parametrize("name", SYMMETRIC_WITH_MISSING)
@SETTINGS
@given(labels=label_pairs())
def test_two_rater_symmetric_with_missing_values(name, labels):
    y_true, y_pred, k = labels
    metric = TWO_RATER_METRICS[name]
    assert_same(metric(y_true, y_pred, k), metric(y_pred, y_true, k), name)


@pytest.mark.parametrize("name", NOT_SYMMETRIC_WITH_MISSING)
def test_two_rater_end_to_end_metrics_are_not_symmetric_with_missing_values(name):
    # A failure (-1 in y_pred) counts as wrong, a missing reference (-1 in y_true) drops
    # the item: swapping the arguments must change the value.
    y_true = np.array([0, 1, 2, 0, 2, 1])
    y_pred = np.array([0, 1, -1, 1, 2, -1])
    metric = TWO_RATER_METRICS[name]
    assert not same(metric(y_true, y_pred, 3), metric(y_pred, y_true, 3))


@pytest.mark.parametrize("name", sorted(TWO_RATER_METRICS))
@SETTINGS
@given(truth=label_pairs())
def test_two_rater_perfect_agreement(name, truth):
    y, _, k = truth
    value = TWO_RATER_METRICS[name](y, y, k)
    if not undefined(value):
        assert value == pytest.approx(TWO_RATER_PERFECT[name], abs=1e-12)


@pytest.mark.parametrize("name", LABEL_PERMUTATION_INVARIANT)
@SETTINGS
@given(labels=label_pairs(), data=st.data())
def test_two_rater_label_permutation_invariant(name, labels, data):
    y_true, y_pred, k = labels
    mapping = permutation_of(data, k)
    metric = TWO_RATER_METRICS[name]
    permuted = metric(relabel(y_true, mapping), relabel(y_pred, mapping), k)
    assert_same(permuted, metric(y_true, y_pred, k), name)


@pytest.mark.parametrize("name", ORDINAL_SCALE)
def test_two_rater_ordinal_metrics_depend_on_the_scale_order(name):
    y_true, y_pred = np.array([2, 1, 1, 0, 0, 0]), np.array([0, 0, 0, 2, 1, 2])
    swap_0_1 = np.array([1, 0, 2])
    metric = TWO_RATER_METRICS[name]
    renamed = metric(relabel(y_true, swap_0_1), relabel(y_pred, swap_0_1), 3)
    assert not same(renamed, metric(y_true, y_pred, 3))


@pytest.mark.parametrize("name", SCALE_REVERSAL_INVARIANT)
@SETTINGS
@given(labels=label_pairs())
def test_two_rater_scale_reversal_invariant(name, labels):
    y_true, y_pred, k = labels
    metric = TWO_RATER_METRICS[name]
    reversed_ = metric(reverse_scale(y_true, k), reverse_scale(y_pred, k), k)
    assert_same(reversed_, metric(y_true, y_pred, k), name)


@pytest.mark.parametrize("name", ITEM_ORDER_INVARIANT)
@SETTINGS
@given(labels=label_pairs(), data=st.data())
def test_two_rater_item_order_invariant(name, labels, data):
    y_true, y_pred, k = labels
    order = permutation_of(data, y_true.size)
    metric = TWO_RATER_METRICS[name]
    assert_same(metric(y_true[order], y_pred[order], k), metric(y_true, y_pred, k), name)


@pytest.mark.parametrize("name", REFERENCE_MISSING_DROPPED)
@SETTINGS
@given(labels=label_pairs())
def test_two_rater_items_without_reference_are_dropped(name, labels):
    y_true, y_pred, k = labels
    keep = y_true >= 0
    metric = TWO_RATER_METRICS[name]
    assert_same(metric(y_true, y_pred, k), metric(y_true[keep], y_pred[keep], k), name)


@pytest.mark.parametrize("name", FAILURE_DROPPED)
@SETTINGS
@given(labels=label_pairs())
def test_two_rater_failed_predictions_are_dropped(name, labels):
    y_true, y_pred, k = labels
    keep = y_pred >= 0
    metric = TWO_RATER_METRICS[name]
    assert_same(metric(y_true, y_pred, k), metric(y_true[keep], y_pred[keep], k), name)


@pytest.mark.parametrize("name", FAILURE_STAYS_IN_DENOMINATOR)
@SETTINGS
@given(labels=label_pairs())
def test_two_rater_failures_stay_in_the_denominator(name, labels):
    # A share of right answers over n referenced items: a failure adds to n, never to the
    # count, so value * n = (value on the answered items) * n_answered.
    y_true, y_pred, k = labels
    metric = TWO_RATER_METRICS[name]
    referenced = y_true >= 0
    answered = referenced & (y_pred >= 0)
    value = metric(y_true, y_pred, k)
    if answered.any():
        on_answered = metric(y_true[answered], y_pred[answered], k)
        assert value * referenced.sum() == pytest.approx(on_answered * answered.sum())
    elif referenced.any():
        assert value == 0.0


@pytest.mark.parametrize("name", FAILURE_NEVER_HELPS)
@SETTINGS
@given(labels=label_pairs(min_n=1), data=st.data())
def test_two_rater_failure_never_beats_a_right_answer(name, labels, data):
    y_true, y_pred, k = labels
    right = np.flatnonzero((y_true >= 0) & (y_pred == y_true))
    if right.size:
        i = data.draw(st.sampled_from(right.tolist()))
        failed = y_pred.copy()
        failed[i] = -1
        metric = TWO_RATER_METRICS[name]
        assert metric(y_true, failed, k) <= metric(y_true, y_pred, k) + 1e-12


@SETTINGS
@given(labels=label_pairs())
def test_kappa_end_to_end_equals_cohen_kappa_without_failures(labels):
    # ordinal_metrics / kappa_ci treat a failure as a never-matching category; with no
    # failure they are Cohen's weighted kappa (three implementations, one number).
    y_true, y_pred, k = labels
    y_pred = np.where(y_pred >= 0, y_pred, 0)
    for weights in ("linear", "quadratic"):
        expected = cohen_kappa(y_true, y_pred, k, weights)
        assert_same(getattr(ordinal_metrics(y_true, y_pred, k), f"kappa_{weights}"), expected)
        assert_same(float(kappa_from_confusion(confusion(y_true, y_pred, k), weights)), expected)


# ================================================================ multi-rater coefficients
# Calling convention: metric(ratings (n_items, n_annotators) int codes, K) -> float | None.


def _alpha(level: str) -> Callable:
    def metric(ratings, k):
        return krippendorff_alpha(reliability_matrix(ratings), level, n_values=k)

    return metric


def _mean_pairwise_kappa(ratings, k):
    """Mean Cohen's kappa over the annotator pairs whose kappa is defined."""
    values = [p.kappa for p in pairwise_kappas(ratings, k) if not math.isnan(p.kappa)]
    return float(np.mean(values)) if values else float("nan")


MULTI_RATER_METRICS: dict[str, Callable] = {
    "fleiss_kappa": fleiss_kappa,
    "krippendorff_alpha_nominal": _alpha("nominal"),
    "krippendorff_alpha_ordinal": _alpha("ordinal"),
    "krippendorff_alpha_interval": _alpha("interval"),
    "krippendorff_alpha_ratio": _alpha("ratio"),
    "gwet_ac1": gwet_ac1,
    "pairwise_kappa_mean": _mean_pairwise_kappa,
}
ALPHAS = [name for name in MULTI_RATER_METRICS if name.startswith("krippendorff")]
# Documented ranges: kappa and AC1 [-1, 1]; alpha (-1, 1].
MULTI_RATER_BOUNDS = {name: (-1.0, 1.0) for name in MULTI_RATER_METRICS}
ANNOTATOR_ORDER_INVARIANT = sorted(MULTI_RATER_METRICS)
MULTI_RATER_ITEM_ORDER_INVARIANT = sorted(MULTI_RATER_METRICS)
MULTI_RATER_LABEL_PERMUTATION_INVARIANT = [
    "fleiss_kappa",
    "krippendorff_alpha_nominal",
    "gwet_ac1",
    "pairwise_kappa_mean",
]
# Reversing the scale keeps ordinal (ranks) and interval (differences) distances; ratio
# distances ((c - k) / (c + k))^2 are anchored at 0 and change.
MULTI_RATER_SCALE_REVERSAL_INVARIANT = [
    "fleiss_kappa",
    "krippendorff_alpha_nominal",
    "krippendorff_alpha_ordinal",
    "krippendorff_alpha_interval",
    "gwet_ac1",
    "pairwise_kappa_mean",
]
NOT_SCALE_REVERSAL_INVARIANT = ["krippendorff_alpha_ratio"]
# Missing ratings (-1). An annotator who rated nothing changes nothing. An item nobody
# rated is dropped (Fleiss: an incomplete design, None). An item with a single rating is
# unpairable (alpha, pairwise kappas drop it), but it enters Gwet's label prevalence pi
# ("mean over rated items") and makes Fleiss' design incomplete.
ALL_MISSING_ANNOTATOR_INVARIANT = sorted(MULTI_RATER_METRICS)
UNRATED_ITEM_INVARIANT = [*ALPHAS, "gwet_ac1", "pairwise_kappa_mean"]
SINGLE_RATING_ITEM_INVARIANT = [*ALPHAS, "pairwise_kappa_mean"]
INCOMPLETE_DESIGN_IS_NONE = ["fleiss_kappa"]


def _undefined_fleiss(ratings, k) -> str:
    counts = item_label_counts(ratings, k)
    per_item = counts.sum(axis=1)
    if per_item.size == 0 or per_item.min() != per_item.max() or per_item[0] < 2:
        return "none"
    return "nan" if (counts.sum(axis=0) > 0).sum() == 1 else "defined"


def _undefined_alpha(ratings, k) -> str:
    pairable = (ratings >= 0).sum(axis=1) >= 2
    values = ratings[pairable][ratings[pairable] >= 0]
    return "nan" if len(set(values.tolist())) < 2 else "defined"


def _undefined_gwet(ratings, k) -> str:
    return "nan" if k < 2 or not ((ratings >= 0).sum(axis=1) >= 2).any() else "defined"


def _undefined_mean_pairwise(ratings, k) -> str:
    m = ratings.shape[1]
    defined = any(
        not _kappa_undefined(*_both(ratings[:, a], ratings[:, b]))
        for a in range(m)
        for b in range(a + 1, m)
    )
    return "defined" if defined else "nan"


MULTI_RATER_UNDEFINED: dict[str, Callable[..., str]] = {
    "fleiss_kappa": _undefined_fleiss,
    **{name: _undefined_alpha for name in ALPHAS},
    "gwet_ac1": _undefined_gwet,
    "pairwise_kappa_mean": _undefined_mean_pairwise,
}


def test_multi_rater_lists_partition():
    names = set(MULTI_RATER_METRICS)
    partition(names, MULTI_RATER_SCALE_REVERSAL_INVARIANT, NOT_SCALE_REVERSAL_INVARIANT)
    partition(names, SINGLE_RATING_ITEM_INVARIANT, ["gwet_ac1"], INCOMPLETE_DESIGN_IS_NONE)
    partition(names, UNRATED_ITEM_INVARIANT, INCOMPLETE_DESIGN_IS_NONE)
    assert set(MULTI_RATER_UNDEFINED) == set(MULTI_RATER_BOUNDS) == names


def _state(value: float | None) -> str:
    return "none" if value is None else "nan" if math.isnan(value) else "defined"


@pytest.mark.parametrize("name", sorted(MULTI_RATER_METRICS))
@SETTINGS
@given(rated=ratings_matrices())
def test_multi_rater_undefined_exactly_when_documented(name, rated):
    ratings, k = rated
    value = MULTI_RATER_METRICS[name](ratings, k)
    assert _state(value) == MULTI_RATER_UNDEFINED[name](ratings, k), value


@pytest.mark.parametrize("name", sorted(MULTI_RATER_METRICS))
@SETTINGS
@given(rated=ratings_matrices())
def test_multi_rater_bounded(name, rated):
    ratings, k = rated
    value = MULTI_RATER_METRICS[name](ratings, k)
    if not undefined(value):
        assert_within(value, *MULTI_RATER_BOUNDS[name], what=name)
        if name in ALPHAS:
            assert value > -1.0, "documented range of alpha: (-1, 1]"


@pytest.mark.parametrize("name", sorted(MULTI_RATER_METRICS))
@SETTINGS
@given(unanimous=unanimous_ratings())
def test_multi_rater_perfect_agreement(name, unanimous):
    ratings, _, k = unanimous
    value = MULTI_RATER_METRICS[name](ratings, k)
    if not undefined(value):
        assert value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", ANNOTATOR_ORDER_INVARIANT)
@SETTINGS
@given(rated=ratings_matrices(), data=st.data())
def test_multi_rater_annotator_order_invariant(name, rated, data):
    ratings, k = rated
    order = permutation_of(data, ratings.shape[1])
    metric = MULTI_RATER_METRICS[name]
    assert_same(metric(ratings[:, order], k), metric(ratings, k), name)


@pytest.mark.parametrize("name", MULTI_RATER_ITEM_ORDER_INVARIANT)
@SETTINGS
@given(rated=ratings_matrices(), data=st.data())
def test_multi_rater_item_order_invariant(name, rated, data):
    ratings, k = rated
    order = permutation_of(data, ratings.shape[0])
    metric = MULTI_RATER_METRICS[name]
    assert_same(metric(ratings[order], k), metric(ratings, k), name)


@pytest.mark.parametrize("name", MULTI_RATER_LABEL_PERMUTATION_INVARIANT)
@SETTINGS
@given(rated=ratings_matrices(), data=st.data())
def test_multi_rater_label_permutation_invariant(name, rated, data):
    ratings, k = rated
    mapping = permutation_of(data, k)
    metric = MULTI_RATER_METRICS[name]
    assert_same(metric(relabel(ratings, mapping), k), metric(ratings, k), name)


@pytest.mark.parametrize("name", MULTI_RATER_SCALE_REVERSAL_INVARIANT)
@SETTINGS
@given(rated=ratings_matrices())
def test_multi_rater_scale_reversal_invariant(name, rated):
    ratings, k = rated
    metric = MULTI_RATER_METRICS[name]
    assert_same(metric(reverse_scale(ratings, k), k), metric(ratings, k), name)


@pytest.mark.parametrize("name", NOT_SCALE_REVERSAL_INVARIANT)
def test_multi_rater_ratio_alpha_is_anchored_at_zero(name):
    ratings = np.array([[0, 1], [1, 1], [2, 3], [3, 3], [0, 0]])
    metric = MULTI_RATER_METRICS[name]
    assert not same(metric(reverse_scale(ratings, 4), 4), metric(ratings, 4))


# Levels of measurement: alpha depends on the values only through what the level keeps.
def _injective(data, values):  # nominal: any renaming
    return np.array(data.draw(st.permutations(range(10, 10 + values.size))), dtype=float)


def _increasing(data, values):  # ordinal: any strictly increasing recoding
    return np.cumsum(data.draw(vectors(st.floats(0.5, 10.0), values.size, float)))


def _affine(data, values):  # interval: a * x + b, a != 0 (a < 0 reverses the scale)
    a = data.draw(st.sampled_from([-3.0, -1.0, 0.5, 2.0, 7.0]))
    return a * values + data.draw(st.sampled_from([-5.0, 0.0, 3.0]))


def _scale(data, values):  # ratio: a * x, a > 0
    return data.draw(st.sampled_from([0.5, 2.0, 7.0])) * values


LEVEL_INVARIANCE = {
    "nominal": _injective,
    "ordinal": _increasing,
    "interval": _affine,
    "ratio": _scale,
}


@pytest.mark.parametrize("level", sorted(LEVEL_INVARIANCE))
@SETTINGS
@given(rated=ratings_matrices(), data=st.data())
def test_krippendorff_alpha_invariant_to_the_transformations_its_level_allows(level, rated, data):
    ratings, k = rated
    reliability = reliability_matrix(ratings)
    new_values = LEVEL_INVARIANCE[level](data, np.arange(k, dtype=float))
    codes = np.nan_to_num(reliability).astype(int)
    recoded = np.where(np.isnan(reliability), np.nan, new_values[codes])
    assert_same(krippendorff_alpha(recoded, level), krippendorff_alpha(reliability, level), level)


@pytest.mark.parametrize("name", ALL_MISSING_ANNOTATOR_INVARIANT)
@SETTINGS
@given(rated=ratings_matrices(), data=st.data())
def test_multi_rater_annotator_who_rated_nothing_changes_nothing(name, rated, data):
    ratings, k = rated
    at = data.draw(st.integers(0, ratings.shape[1]))
    widened = np.insert(ratings, at, -1, axis=1)
    metric = MULTI_RATER_METRICS[name]
    assert_same(metric(widened, k), metric(ratings, k), name)


@pytest.mark.parametrize("name", UNRATED_ITEM_INVARIANT)
@SETTINGS
@given(rated=ratings_matrices(), data=st.data())
def test_multi_rater_unrated_item_changes_nothing(name, rated, data):
    ratings, k = rated
    at = data.draw(st.integers(0, ratings.shape[0]))
    longer = np.insert(ratings, at, -1, axis=0)
    metric = MULTI_RATER_METRICS[name]
    assert_same(metric(longer, k), metric(ratings, k), name)


@pytest.mark.parametrize("name", SINGLE_RATING_ITEM_INVARIANT)
@SETTINGS
@given(rated=ratings_matrices(), data=st.data())
def test_multi_rater_item_with_a_single_rating_is_unpairable(name, rated, data):
    ratings, k = rated
    row = np.full(ratings.shape[1], -1)
    row[data.draw(st.integers(0, ratings.shape[1] - 1))] = data.draw(st.integers(0, k - 1))
    longer = np.vstack([ratings, row])
    metric = MULTI_RATER_METRICS[name]
    assert_same(metric(longer, k), metric(ratings, k), name)


def test_gwet_ac1_counts_single_ratings_in_label_prevalence():
    # Documented: pi_k is a mean over *rated* items, so an unpairable single rating still
    # moves chance agreement (unlike alpha, which drops the unit).
    ratings = np.array([[0, 0], [1, 1], [0, 1], [0, 0]])
    longer = np.vstack([ratings, [[1, -1]]])
    assert not same(gwet_ac1(longer, 2), gwet_ac1(ratings, 2))
    assert same(_alpha("nominal")(longer, 2), _alpha("nominal")(ratings, 2))


@pytest.mark.parametrize("name", INCOMPLETE_DESIGN_IS_NONE)
@SETTINGS
@given(rated=ratings_matrices(missing=False), data=st.data())
def test_fleiss_kappa_is_none_for_an_incomplete_design(name, rated, data):
    ratings, k = rated
    if ratings.shape[1] >= 2 and ratings.shape[0] >= 2:  # one item: always "complete"
        incomplete = ratings.copy()
        incomplete[data.draw(st.integers(0, ratings.shape[0] - 1)), 0] = -1
        assert MULTI_RATER_METRICS[name](incomplete, k) is None


# Reference labels from several annotators: functions of each item's multiset of ratings.
REFERENCE_FUNCTIONS: dict[str, Callable] = {
    "majority_vote": lambda r, k: majority_vote(r, k)[0],
    "majority_vote_no_majority": lambda r, k: majority_vote(r, k)[1],
    "median_label": median_label,
    "soft_labels": soft_labels,
    "item_label_counts": item_label_counts,
}


@pytest.mark.parametrize("name", sorted(REFERENCE_FUNCTIONS))
@SETTINGS
@given(rated=ratings_matrices(), data=st.data())
def test_reference_labels_annotator_order_invariant_and_ignore_empty_annotators(name, rated, data):
    ratings, k = rated
    function = REFERENCE_FUNCTIONS[name]
    expected = function(ratings, k)
    shuffled = ratings[:, permutation_of(data, ratings.shape[1])]
    np.testing.assert_array_equal(function(shuffled, k), expected)
    np.testing.assert_array_equal(function(np.insert(ratings, 0, -1, axis=1), k), expected)


@SETTINGS
@given(unanimous=unanimous_ratings())
def test_reference_labels_of_unanimous_annotators_are_their_label(unanimous):
    ratings, truth, k = unanimous
    rated = (ratings >= 0).any(axis=1)
    expected = np.where(rated, truth, -1)
    np.testing.assert_array_equal(majority_vote(ratings, k)[0], expected)
    np.testing.assert_array_equal(median_label(ratings, k), expected)


# Leave-one-annotator-out ceilings: ceiling(ratings, prediction, K) -> aggregate fields.
def _aggregates(result) -> dict[str, float]:
    return {k: v for k, v in vars(result).items() if k != "per_annotator"}


CEILINGS: dict[str, Callable] = {
    "human_ceiling": human_ceiling,
    "ordinal_human_ceiling": ordinal_human_ceiling,
}
INF = math.inf
CEILING_BOUNDS: dict[str, Callable[[int], dict[str, tuple[float, float]]]] = {
    "human_ceiling": lambda k: {
        "human_accuracy": (0, 1),
        "llm_accuracy": (0, 1),
        "human_kappa": (-1, 1),
        "llm_kappa": (-1, 1),
        "ratio_accuracy": (0, INF),
        "ratio_kappa": (-INF, INF),
    },
    "ordinal_human_ceiling": lambda k: {
        **{f"{w}_{m}": (0, 1) for w in ("human", "llm") for m in ("exact", "within_one")},
        **{f"{w}_mae": (0, k - 1) for w in ("human", "llm")},
        **{f"{w}_kappa_quadratic": (-1, 1) for w in ("human", "llm")},
        "ratio_exact": (0, INF),
        "ratio_within_one": (0, INF),
        "ratio_mae": (0, INF),
        "ratio_kappa_quadratic": (-INF, INF),
    },
}
CEILING_PERFECT = {
    "human_ceiling": {"human_accuracy": 1, "llm_accuracy": 1, "ratio_accuracy": 1},
    "ordinal_human_ceiling": {"human_exact": 1, "llm_exact": 1, "human_mae": 0, "llm_mae": 0},
}


@st.composite
def ratings_and_prediction(draw):
    ratings, k = draw(ratings_matrices())
    noise = draw(vectors(st.integers(-1, k - 1), ratings.shape[0]))
    noisy = draw(flags(ratings.shape[0]))
    prediction = np.where(noisy, noise, majority_vote(ratings, k)[0])
    return ratings, prediction, k


@pytest.mark.parametrize("name", sorted(CEILINGS))
@SETTINGS
@given(case=ratings_and_prediction())
def test_ceiling_bounded(name, case):
    ratings, prediction, k = case
    result = CEILINGS[name](ratings, prediction, k)
    for field, (lo, hi) in CEILING_BOUNDS[name](k).items():
        value = getattr(result, field)
        if not undefined(value):
            assert_within(value, lo, hi, field)
    assert result.n_pairs <= int((ratings >= 0).sum())


@pytest.mark.parametrize("name", sorted(CEILINGS))
@SETTINGS
@given(case=ratings_and_prediction(), data=st.data())
def test_ceiling_annotator_and_item_order_invariant(name, case, data):
    ratings, prediction, k = case
    ceiling = CEILINGS[name]
    expected = _aggregates(ceiling(ratings, prediction, k))
    by_annotator = _aggregates(
        ceiling(ratings[:, permutation_of(data, ratings.shape[1])], prediction, k)
    )
    items = permutation_of(data, ratings.shape[0])
    by_item = _aggregates(ceiling(ratings[items], prediction[items], k))
    for field, value in expected.items():
        assert_same(by_annotator[field], value, f"{field} (annotator order)")
        assert_same(by_item[field], value, f"{field} (item order)")


@pytest.mark.parametrize("name", sorted(CEILINGS))
@SETTINGS
@given(case=ratings_and_prediction())
def test_ceiling_missing_annotator_and_unrated_item_change_nothing(name, case):
    ratings, prediction, k = case
    ceiling = CEILINGS[name]
    expected = _aggregates(ceiling(ratings, prediction, k))
    widened = _aggregates(ceiling(np.insert(ratings, 0, -1, axis=1), prediction, k))
    longer = _aggregates(
        ceiling(
            np.vstack([ratings, np.full((1, ratings.shape[1]), -1)]), np.append(prediction, 0), k
        )
    )
    for field, value in expected.items():
        assert_same(widened[field], value, f"{field} (annotator who rated nothing)")
        assert_same(longer[field], value, f"{field} (unrated item)")


@pytest.mark.parametrize("name", sorted(CEILINGS))
@SETTINGS
@given(unanimous=unanimous_ratings(missing=False))
def test_ceiling_perfect_agreement(name, unanimous):
    ratings, truth, k = unanimous
    result = CEILINGS[name](ratings, truth, k)
    for field, value in CEILING_PERFECT[name].items():
        assert getattr(result, field) == pytest.approx(value, abs=1e-12), field


# ============================================================================ calibration
# Calling convention: metric(confidence in [0, 1], correct 0/1) -> float.

CALIBRATION_METRICS: dict[str, Callable] = {
    "ece_uniform": lambda c, y: ece(c, y, strategy="uniform"),
    "ece_quantile": lambda c, y: ece(c, y, strategy="quantile"),
    "ece_uniform_3_bins": lambda c, y: ece(c, y, n_bins=3),
    "brier_top_label": brier_top_label,
    "log_loss_top_label": log_loss_top_label,
    "auroc": auroc,
}
CALIBRATION_BOUNDS = {
    **{name: (0.0, 1.0) for name in CALIBRATION_METRICS},
    "log_loss_top_label": (0.0, -math.log(LOG_LOSS_EPS)),
}
# Confidence equal to correctness (1 when right, 0 when wrong): no calibration error, and
# confidence separates right from wrong perfectly. log loss is clipped at eps, not 0.
CALIBRATION_PERFECT = {
    "ece_uniform": 0.0,
    "ece_quantile": 0.0,
    "ece_uniform_3_bins": 0.0,
    "brier_top_label": 0.0,
    "log_loss_top_label": -math.log(1 - LOG_LOSS_EPS),
    "auroc": 1.0,
}
CALIBRATION_ITEM_ORDER_INVARIANT = sorted(CALIBRATION_METRICS)
# Ranking metrics of confidence: any strictly increasing recoding of it changes nothing.
CONFIDENCE_RANK_INVARIANT = ["auroc"]
CONFIDENCE_VALUE_DEPENDENT = [n for n in CALIBRATION_METRICS if n not in CONFIDENCE_RANK_INVARIANT]


def test_calibration_lists_partition():
    names = set(CALIBRATION_METRICS)
    partition(names, CONFIDENCE_RANK_INVARIANT, CONFIDENCE_VALUE_DEPENDENT)
    assert set(CALIBRATION_BOUNDS) == set(CALIBRATION_PERFECT) == names


# Equal-mass bins of no items once raised IndexError (np.quantile of nothing) in ece,
# reliability_bins and ece_ci instead of the documented nan (issue 17; reliability_bins:
# tests/metrics/test_small_n.py).
@pytest.mark.parametrize("name", sorted(CALIBRATION_METRICS))
def test_calibration_of_no_items_is_undefined(name):
    assert undefined(CALIBRATION_METRICS[name](np.array([]), np.array([], dtype=np.int64)))


@pytest.mark.parametrize("name", sorted(CALIBRATION_METRICS))
@SETTINGS
@given(case=calibration_data(min_n=1))
def test_calibration_undefined_exactly_when_documented(name, case):
    conf, correct = case
    value = CALIBRATION_METRICS[name](conf, correct)
    if name == "auroc":  # nan if all right or all wrong
        assert undefined(value) == (len(set(correct.tolist())) < 2)
    else:  # nan for empty input only (test_calibration_of_no_items_is_undefined)
        assert not undefined(value)


@pytest.mark.parametrize("name", sorted(CALIBRATION_METRICS))
@SETTINGS
@given(case=calibration_data(min_n=1))
def test_calibration_bounded(name, case):
    value = CALIBRATION_METRICS[name](*case)
    if not undefined(value):
        assert_within(value, *CALIBRATION_BOUNDS[name], what=name)


@pytest.mark.parametrize("name", sorted(CALIBRATION_METRICS))
@SETTINGS
@given(correct=calibration_data(min_n=1).map(lambda case: case[1]))
def test_calibration_perfect_confidence(name, correct):
    value = CALIBRATION_METRICS[name](correct.astype(float), correct)
    if not undefined(value):
        assert value == pytest.approx(CALIBRATION_PERFECT[name], abs=1e-12)


@pytest.mark.parametrize("name", CALIBRATION_ITEM_ORDER_INVARIANT)
@SETTINGS
@given(case=calibration_data(min_n=1), data=st.data())
def test_calibration_item_order_invariant(name, case, data):
    conf, correct = case
    order = permutation_of(data, conf.size)
    metric = CALIBRATION_METRICS[name]
    assert_same(metric(conf[order], correct[order]), metric(conf, correct), name)


@pytest.mark.parametrize("name", CONFIDENCE_RANK_INVARIANT)
@SETTINGS
@given(case=calibration_data(min_n=1))
def test_calibration_rank_metrics_ignore_increasing_recodings(name, case):
    conf, correct = case
    metric = CALIBRATION_METRICS[name]
    # strictly increasing even in floating point (conf**3 would merge tiny values into 0)
    distinct, rank = np.unique(conf, return_inverse=True)
    recoded = np.sqrt((rank.ravel() + 1.0) / (distinct.size + 1.0))
    assert_same(metric(recoded, correct), metric(conf, correct), name)
    # ... and reversing what is detected reverses the area: AUROC(wrong) = 1 - AUROC(right)
    flipped = metric(conf, 1 - correct)
    if not undefined(flipped):
        assert flipped == pytest.approx(1 - metric(conf, correct))


@SETTINGS
@given(case=calibration_data(min_n=1))
def test_ece_at_most_root_brier(case):
    # Within a bin, mean squared gaps >= squared mean gap (Jensen), so sum_m w_m gap_m^2
    # <= Brier, and ECE = sum_m w_m |gap_m| <= sqrt(that): for any binning.
    conf, correct = case
    brier = brier_top_label(conf, correct)
    for name in ("ece_uniform", "ece_quantile", "ece_uniform_3_bins"):
        value = CALIBRATION_METRICS[name](conf, correct)
        if not undefined(value):
            assert value <= math.sqrt(brier) + 1e-9, name


@pytest.mark.parametrize("name", sorted(CALIBRATION_METRICS))
@pytest.mark.parametrize(
    ("conf", "correct"),
    [([0.9, np.nan], [1, 0]), ([0.9, 0.4], [1, -1])],
    ids=["nan-confidence", "missing-correctness"],
)
def test_calibration_rejects_missing_values(name, conf, correct):
    # No -1 / nan convention here: items without a confidence (failed outputs) are left
    # out by the caller, and the report counts them separately (coverage).
    with pytest.raises(ValueError):
        CALIBRATION_METRICS[name](np.array(conf), np.array(correct))


# ===================================================================== pairwise preference
# Rates return (share, n). Two-sequence rates: rate(x, y); outcomes 0 A, 1 B, 2 tie, -1 missing.

PAIRWISE_RATES: dict[str, Callable] = {
    "agreement_with_ties": lambda x, y: pairwise_agreement(x, y, with_ties=True),
    "agreement_without_ties": lambda x, y: pairwise_agreement(x, y, with_ties=False),
    "position_consistency": position_consistency,
    "first_position_rate": first_position_rate,
}
PAIRWISE_SYMMETRIC = sorted(PAIRWISE_RATES)
PAIRWISE_PERFECT = {
    "agreement_with_ties": 1.0,
    "agreement_without_ties": 1.0,
    "position_consistency": 1.0,
}
# Renaming A <-> B (unswap on both sides) leaves agreement unchanged and mirrors the
# share of first-position picks.
AB_SWAP_INVARIANT = ["agreement_with_ties", "agreement_without_ties", "position_consistency"]
AB_SWAP_MIRRORED = ["first_position_rate"]
# Pairs with a missing outcome (-1) on either side are left out of n ...
PAIRWISE_MISSING_DROPPED = ["agreement_with_ties", "agreement_without_ties", "position_consistency"]
# ... and where ties are left out anyway, a missing verdict is left out like a tie
# (first_position_rate pools the verdicts of both runs, so one missing run drops one verdict).
PAIRWISE_MISSING_LIKE_TIE = ["agreement_without_ties", "first_position_rate"]
PAIRWISE_POOLED = ["first_position_rate"]  # n counts verdicts, up to 2 per pair


def test_pairwise_lists_partition():
    partition(set(PAIRWISE_RATES), AB_SWAP_INVARIANT, AB_SWAP_MIRRORED)


@pytest.mark.parametrize("name", sorted(PAIRWISE_RATES))
@SETTINGS
@given(case=outcome_pairs())
def test_pairwise_rates_bounded_and_nan_exactly_without_pairs(name, case):
    share, n = PAIRWISE_RATES[name](*case)
    assert 0 <= n <= (2 if name in PAIRWISE_POOLED else 1) * case[0].size
    assert undefined(share) == (n == 0)
    if n:
        assert_within(share, 0.0, 1.0, name)


@pytest.mark.parametrize("name", PAIRWISE_SYMMETRIC)
@SETTINGS
@given(case=outcome_pairs())
def test_pairwise_rates_symmetric(name, case):
    x, y = case
    a, b = PAIRWISE_RATES[name](x, y), PAIRWISE_RATES[name](y, x)
    assert a[1] == b[1]
    assert_same(a[0], b[0], name)


@pytest.mark.parametrize("name", sorted(PAIRWISE_PERFECT))
@SETTINGS
@given(case=outcome_pairs())
def test_pairwise_perfect_agreement(name, case):
    share, n = PAIRWISE_RATES[name](case[0], case[0])
    if n:
        assert share == PAIRWISE_PERFECT[name]


@pytest.mark.parametrize("name", sorted(PAIRWISE_RATES))
@SETTINGS
@given(case=outcome_pairs(), data=st.data())
def test_pairwise_rates_item_order_invariant(name, case, data):
    x, y = case
    order = permutation_of(data, x.size)
    a, b = PAIRWISE_RATES[name](x[order], y[order]), PAIRWISE_RATES[name](x, y)
    assert a[1] == b[1]
    assert_same(a[0], b[0], name)


@pytest.mark.parametrize("name", AB_SWAP_INVARIANT + AB_SWAP_MIRRORED)
@SETTINGS
@given(case=outcome_pairs())
def test_pairwise_rates_under_renaming_a_and_b(name, case):
    x, y = case
    (share, n), (renamed, n_renamed) = (
        PAIRWISE_RATES[name](x, y),
        PAIRWISE_RATES[name](unswap(x), unswap(y)),
    )
    assert n_renamed == n
    assert_same(renamed, share if name in AB_SWAP_INVARIANT else 1.0 - share, name)


@pytest.mark.parametrize("name", PAIRWISE_MISSING_DROPPED)
@SETTINGS
@given(case=outcome_pairs())
def test_pairwise_rates_leave_out_missing_outcomes(name, case):
    x, y = case
    keep = (x >= 0) & (y >= 0)
    a, b = PAIRWISE_RATES[name](x, y), PAIRWISE_RATES[name](x[keep], y[keep])
    assert a[1] == b[1]
    assert_same(a[0], b[0], name)


@pytest.mark.parametrize("name", PAIRWISE_MISSING_LIKE_TIE)
@SETTINGS
@given(case=outcome_pairs())
def test_pairwise_rates_leave_out_missing_verdicts_like_ties(name, case):
    x, y = case
    tie = 2
    a = PAIRWISE_RATES[name](x, y)
    b = PAIRWISE_RATES[name](np.where(x < 0, tie, x), np.where(y < 0, tie, y))
    assert a[1] == b[1]
    assert_same(a[0], b[0], name)


@SETTINGS
@given(case=outcome_pairs(), data=st.data())
def test_single_sequence_rates(case, data):
    x, other = case
    # tie_rate: in [0, 1] over answered outcomes, blind to A/B names, order and missing.
    share, n = tie_rate(x)
    assert n == int((x >= 0).sum()) and undefined(share) == (n == 0)
    if n:
        assert_within(share, 0.0, 1.0, "tie_rate")
    order = permutation_of(data, x.size)
    for variant in (unswap(x), x[order], x[x >= 0]):
        assert tie_rate(variant)[1] == n and same(tie_rate(variant)[0], share)
    # length_bias: a share of decided pairs; swapping the two responses (their lengths and
    # the verdict) changes nothing.
    len_a = data.draw(vectors(st.integers(0, 200), x.size))
    len_b = data.draw(vectors(st.integers(0, 200), x.size))
    share, n = length_bias(len_a, len_b, x)
    assert undefined(share) == (n == 0) and n <= int(np.isin(x, (0, 1)).sum())
    if n:
        assert_within(share, 0.0, 1.0, "length_bias")
    swapped = length_bias(len_b, len_a, unswap(x))
    assert swapped[1] == n and same(swapped[0], share)
    # combine_orders: symmetric in the two orders; consistent where both agree
    final, consistent = combine_orders(x, other)
    final_swapped, consistent_swapped = combine_orders(other, x)
    np.testing.assert_array_equal(final, final_swapped)
    np.testing.assert_array_equal(consistent, consistent_swapped)
    share, n = position_consistency(x, other)
    assert int(consistent.sum()) == (round(share * n) if n else 0)


# ============================================================================= multi-label
# Calling convention: multilabel_metrics(ref (n, L), pred (n, L)) -> field; -1 rows missing.

MULTILABEL_FIELDS = [
    "exact_match",
    "jaccard",
    "micro_f1",
    "macro_f1",
    "exact_match_answered",
    "jaccard_answered",
    "micro_f1_answered",
    "macro_f1_answered",
]


def _field_of(function: Callable, field: str) -> Callable:
    def metric(ref, pred):
        return getattr(function(ref, pred), field)

    return metric


MULTILABEL_SCORES: dict[str, Callable] = {
    field: _field_of(multilabel_metrics, field) for field in MULTILABEL_FIELDS
}
MULTILABEL_SYMMETRIC_WITH_MISSING = [f for f in MULTILABEL_FIELDS if f.endswith("_answered")]
MULTILABEL_NOT_SYMMETRIC_WITH_MISSING = [
    f for f in MULTILABEL_FIELDS if not f.endswith("_answered")
]
MULTILABEL_LABEL_PERMUTATION_INVARIANT = MULTILABEL_FIELDS
MULTILABEL_ITEM_ORDER_INVARIANT = MULTILABEL_FIELDS
# Failure rule (module docstring): a failed row is an empty prediction for F1 ...
FAILURE_IS_AN_EMPTY_SET = ["micro_f1", "macro_f1"]
# ... and a miss for the set scores: no answer scores lower than a failure.
FAILURE_IS_THE_WORST_SET = ["exact_match", "jaccard"]


def _multilabel_undefined(field: str, ref: np.ndarray, pred: np.ndarray) -> bool:
    has_ref = ref[:, 0] >= 0
    answered = pred[:, 0] >= 0
    items = has_ref & answered if field.endswith("_answered") else has_ref
    if field.startswith(("exact_match", "jaccard")):
        return not items.any()
    positive = (ref[items] == 1) | ((pred[items] == 1) & answered[items][:, None])
    return not positive.any()  # F1 undefined when no cell is positive in either


def test_multilabel_lists_partition():
    partition(
        set(MULTILABEL_FIELDS),
        MULTILABEL_SYMMETRIC_WITH_MISSING,
        MULTILABEL_NOT_SYMMETRIC_WITH_MISSING,
    )


@pytest.mark.parametrize("name", MULTILABEL_FIELDS)
@SETTINGS
@given(case=label_sets())
def test_multilabel_bounded_and_undefined_exactly_when_documented(name, case):
    value = MULTILABEL_SCORES[name](*case)
    assert undefined(value) == _multilabel_undefined(name, *case), value
    if not undefined(value):
        assert_within(value, 0.0, 1.0, name)


@pytest.mark.parametrize("name", MULTILABEL_NOT_SYMMETRIC_WITH_MISSING)
@SETTINGS
@given(case=label_sets(missing=False))
def test_multilabel_symmetric_on_complete_data(name, case):
    ref, pred = case
    metric = MULTILABEL_SCORES[name]
    assert_same(metric(ref, pred), metric(pred, ref), name)


@pytest.mark.parametrize("name", MULTILABEL_SYMMETRIC_WITH_MISSING)
@SETTINGS
@given(case=label_sets())
def test_multilabel_answered_scores_symmetric_with_missing_rows(name, case):
    ref, pred = case
    metric = MULTILABEL_SCORES[name]
    assert_same(metric(ref, pred), metric(pred, ref), name)


@pytest.mark.parametrize("name", MULTILABEL_FIELDS)
@SETTINGS
@given(case=label_sets())
def test_multilabel_perfect_agreement(name, case):
    value = MULTILABEL_SCORES[name](case[0], case[0])
    if not undefined(value):
        assert value == 1.0


@pytest.mark.parametrize("name", MULTILABEL_LABEL_PERMUTATION_INVARIANT)
@SETTINGS
@given(case=label_sets(), data=st.data())
def test_multilabel_label_permutation_invariant(name, case, data):
    ref, pred = case
    columns = permutation_of(data, ref.shape[1])
    metric = MULTILABEL_SCORES[name]
    assert_same(metric(ref[:, columns], pred[:, columns]), metric(ref, pred), name)


@pytest.mark.parametrize("name", MULTILABEL_ITEM_ORDER_INVARIANT)
@SETTINGS
@given(case=label_sets(), data=st.data())
def test_multilabel_item_order_invariant(name, case, data):
    ref, pred = case
    rows = permutation_of(data, ref.shape[0])
    metric = MULTILABEL_SCORES[name]
    assert_same(metric(ref[rows], pred[rows]), metric(ref, pred), name)


@pytest.mark.parametrize("name", MULTILABEL_FIELDS)
@SETTINGS
@given(case=label_sets())
def test_multilabel_items_without_reference_are_dropped(name, case):
    ref, pred = case
    keep = ref[:, 0] >= 0
    metric = MULTILABEL_SCORES[name]
    assert_same(metric(ref, pred), metric(ref[keep], pred[keep]), name)


@pytest.mark.parametrize("name", FAILURE_IS_AN_EMPTY_SET)
@SETTINGS
@given(case=label_sets())
def test_multilabel_failure_counts_as_an_empty_prediction_for_f1(name, case):
    ref, pred = case
    empty = np.where(pred[:, :1] >= 0, pred, 0)
    metric = MULTILABEL_SCORES[name]
    assert_same(metric(ref, pred), metric(ref, empty), name)


@pytest.mark.parametrize("name", FAILURE_IS_THE_WORST_SET)
@SETTINGS
@given(case=label_sets(), data=st.data())
def test_multilabel_failure_scores_below_any_answer(name, case, data):
    ref, pred = case
    failed = pred[:, 0] < 0
    if failed.any():
        metric = MULTILABEL_SCORES[name]
        value = metric(ref, pred)
        drawn = data.draw(vectors(st.integers(0, 1), pred.shape))
        for answer in (np.zeros_like(pred), np.ones_like(pred), np.maximum(ref, 0), drawn):
            answered = np.where(failed[:, None], answer, pred)
            other = metric(ref, answered)
            assert value <= other + 1e-12 or (undefined(value) and undefined(other))


@SETTINGS
@given(ratings=annotator_label_sets(), data=st.data())
def test_multilabel_reference_and_alpha_annotator_order_and_label_columns(ratings, data):
    reference = multilabel_reference(ratings)
    alphas = multilabel_alpha_per_label(ratings)
    for alpha in alphas:
        if not undefined(alpha):
            assert -1.0 < alpha <= 1.0 + 1e-12
    annotators = permutation_of(data, ratings.shape[1])
    np.testing.assert_array_equal(multilabel_reference(ratings[:, annotators]), reference)
    for got, want in zip(multilabel_alpha_per_label(ratings[:, annotators]), alphas, strict=True):
        assert_same(got, want, "alpha (annotator order)")
    skipped_all = np.insert(ratings, 0, -1, axis=1)  # an annotator who labelled nothing
    np.testing.assert_array_equal(multilabel_reference(skipped_all), reference)
    columns = permutation_of(data, ratings.shape[2])
    np.testing.assert_array_equal(
        multilabel_reference(ratings[:, :, columns]), reference[:, columns]
    )
    for got, want in zip(
        multilabel_alpha_per_label(ratings[:, :, columns]), np.array(alphas)[columns], strict=True
    ):
        assert_same(got, want, "alpha (label order)")


# ================================================================================ ranking

RANK_CORRELATIONS: dict[str, Callable] = {"kendall_tau": kendall_tau, "spearman_rho": spearman_rho}


@pytest.mark.parametrize("name", sorted(RANK_CORRELATIONS))
@SETTINGS
@given(case=two_orders(), data=st.data())
def test_rank_correlation_properties(name, case, data):
    a, b = case
    n_cand = a.size
    metric = RANK_CORRELATIONS[name]
    value = metric(a, b)
    # undefined exactly when documented: a missing ranking or fewer than 2 candidates
    assert undefined(value) == (a[0] < 0 or b[0] < 0 or n_cand < 2)
    if undefined(value):
        return
    assert_within(value, -1.0, 1.0, name)
    assert_same(metric(b, a), value, f"{name} symmetric")
    assert metric(a, a) == pytest.approx(1.0)
    assert metric(a, a[::-1]) == pytest.approx(-1.0)  # the reverse order
    rename = permutation_of(data, n_cand)  # candidate ids renamed alike in both
    assert_same(metric(rename[a], rename[b]), value, f"{name} candidate names")


RANKING_FIELDS = ["top1", "top1_answered", "tau", "rho"]
RANKING_SCORES: dict[str, Callable] = {
    field: _field_of(ranking_metrics, field) for field in RANKING_FIELDS
}
RANKING_BOUNDS = {"top1": (0, 1), "top1_answered": (0, 1), "tau": (-1, 1), "rho": (-1, 1)}
RANKING_SYMMETRIC_WITH_MISSING = ["top1_answered", "tau", "rho"]
RANKING_NOT_SYMMETRIC_WITH_MISSING = ["top1"]  # a failure is a miss, a missing reference dropped
RANKING_FAILURE_DROPPED = RANKING_SYMMETRIC_WITH_MISSING


def _ranking_undefined(field: str, ref: np.ndarray, pred: np.ndarray) -> bool:
    has_ref = ref[:, 0] >= 0
    answered = has_ref & (pred[:, 0] >= 0)
    if field == "top1":
        return not has_ref.any()
    if field == "top1_answered":
        return not answered.any()
    return not answered.any() or ref.shape[1] < 2


def test_ranking_lists_partition():
    partition(
        set(RANKING_FIELDS), RANKING_SYMMETRIC_WITH_MISSING, RANKING_NOT_SYMMETRIC_WITH_MISSING
    )


@pytest.mark.parametrize("name", RANKING_FIELDS)
@SETTINGS
@given(case=ranking_pairs())
def test_ranking_bounded_and_undefined_exactly_when_documented(name, case):
    value = RANKING_SCORES[name](*case)
    assert undefined(value) == _ranking_undefined(name, *case), value
    if not undefined(value):
        assert_within(value, *RANKING_BOUNDS[name], what=name)


@pytest.mark.parametrize("name", RANKING_NOT_SYMMETRIC_WITH_MISSING)
@SETTINGS
@given(case=ranking_pairs(missing=False))
def test_ranking_symmetric_on_complete_data(name, case):
    ref, pred = case
    metric = RANKING_SCORES[name]
    assert_same(metric(ref, pred), metric(pred, ref), name)


@pytest.mark.parametrize("name", RANKING_SYMMETRIC_WITH_MISSING)
@SETTINGS
@given(case=ranking_pairs())
def test_ranking_symmetric_with_missing_rows(name, case):
    ref, pred = case
    metric = RANKING_SCORES[name]
    assert_same(metric(ref, pred), metric(pred, ref), name)


@pytest.mark.parametrize("name", RANKING_FIELDS)
@SETTINGS
@given(case=ranking_pairs())
def test_ranking_perfect_agreement(name, case):
    value = RANKING_SCORES[name](case[0], case[0])
    if not undefined(value):
        assert value == pytest.approx(1.0)


@pytest.mark.parametrize("name", RANKING_FIELDS)
@SETTINGS
@given(case=ranking_pairs(), data=st.data())
def test_ranking_item_order_and_candidate_names_invariant(name, case, data):
    ref, pred = case
    metric = RANKING_SCORES[name]
    expected = metric(ref, pred)
    rows = permutation_of(data, ref.shape[0])
    assert_same(metric(ref[rows], pred[rows]), expected, f"{name} item order")
    rename = permutation_of(data, ref.shape[1])
    renamed = metric(relabel(ref, rename), relabel(pred, rename))
    assert_same(renamed, expected, f"{name} candidate names")


@pytest.mark.parametrize("name", RANKING_FIELDS)
@SETTINGS
@given(case=ranking_pairs())
def test_ranking_items_without_reference_are_dropped(name, case):
    ref, pred = case
    keep = ref[:, 0] >= 0
    metric = RANKING_SCORES[name]
    assert_same(metric(ref, pred), metric(ref[keep], pred[keep]), name)


@pytest.mark.parametrize("name", RANKING_FAILURE_DROPPED)
@SETTINGS
@given(case=ranking_pairs())
def test_ranking_failed_predictions_are_dropped(name, case):
    ref, pred = case
    keep = pred[:, 0] >= 0
    metric = RANKING_SCORES[name]
    assert_same(metric(ref, pred), metric(ref[keep], pred[keep]), name)


@SETTINGS
@given(case=ranking_pairs())
def test_ranking_failure_is_a_top1_miss(case):
    ref, pred = case
    # a failure scores as a ranking whose best candidate is wrong (N >= 2)
    if ref.shape[1] >= 2:
        wrong = np.where(pred[:, :1] >= 0, pred, np.roll(np.maximum(ref, 0), -1, axis=1))
        wrong = np.where(ref[:, :1] >= 0, wrong, np.arange(ref.shape[1]))
        assert_same(RANKING_SCORES["top1"](ref, pred), RANKING_SCORES["top1"](ref, wrong))


RANKING_AGGREGATES: dict[str, Callable] = {
    "borda_reference": lambda rankings, pred: borda_reference(rankings),
    "ranking_against_annotators": ranking_against_annotators,
    "ranking_human_ceiling": lambda rankings, pred: _aggregates(
        ranking_human_ceiling(rankings, pred)
    ),
}


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(RANKING_AGGREGATES))
@SETTINGS
@given(case=annotator_rankings(), data=st.data())
def test_ranking_annotator_aggregates_annotator_order_invariant(name, case, data):
    rankings, pred = case
    function = RANKING_AGGREGATES[name]
    expected = function(rankings, pred)
    annotators = permutation_of(data, rankings.shape[1])
    assert _equal(function(rankings[:, annotators], pred), expected)
    nobody = np.insert(rankings, 0, -1, axis=1)  # an annotator who ranked nothing
    assert _equal(function(nobody, pred), expected)


@SETTINGS
@given(case=annotator_rankings())
def test_ranking_ceiling_bounded_and_perfect(case):
    rankings, pred = case
    result = ranking_human_ceiling(rankings, pred)
    for field in ("top1", "tau", "rho"):
        lo, hi = RANKING_BOUNDS[field]
        for who in ("human", "llm"):
            value = getattr(result, f"{who}_{field}")
            if not undefined(value):
                assert_within(value, lo, hi, f"{who}_{field}")
    tau, rho, _ = ranking_against_annotators(rankings, pred)
    for value in (tau, rho):
        if not undefined(value):
            assert_within(value, -1.0, 1.0, "against annotators")
    # unanimous annotators and an LLM that agrees: everything perfect where defined
    truth = np.where(pred[:, :1] >= 0, pred, np.arange(pred.shape[1]))
    unanimous = np.repeat(truth[:, None, :], max(rankings.shape[1], 2), axis=1)
    perfect = ranking_human_ceiling(unanimous, truth)
    np.testing.assert_array_equal(borda_reference(unanimous), truth)
    for field, value in _aggregates(perfect).items():
        if field != "n_pairs" and not undefined(value):
            assert value == pytest.approx(1.0), field


# ============================================================================== intervals
# Every *_ci of the package, as IntervalCase(strategy, ci, point, n_items, bounds):
# ``ci(case, seed)`` is the Interval, ``point(case)`` the metric it bootstraps (the
# estimate must be that value), ``n_items(case)`` the items it is documented to count and
# ``bounds(case)`` the metric's range, which every replicate and so both ends respect.


class IntervalCase(NamedTuple):
    strategy: st.SearchStrategy
    ci: Callable
    point: Callable
    n_items: Callable
    bounds: Callable


def _referenced(case) -> int:
    return int((case[0] >= 0).sum())


def _referenced_rows(case) -> int:
    return int((case[0][:, 0] >= 0).sum()) if case[0].size else 0


def _end_to_end_kappa(weights: str | None) -> Callable:
    def metric(t, p, k):
        return float(kappa_from_confusion(confusion(t, p, k), weights))

    return metric


def _label_interval(name: str, ci: Callable, point: Callable, bounds: Callable) -> IntervalCase:
    return IntervalCase(
        label_pairs(),
        lambda case, seed: ci(*case, n_boot=N_BOOT, seed=seed),
        lambda case: point(*case),
        _referenced,
        lambda case: bounds(case[2]),
    )


def _unit(k=None) -> tuple[float, float]:
    return 0.0, 1.0


def _signed(k=None) -> tuple[float, float]:
    return -1.0, 1.0


def _paired_interval(metric: str, point: Callable, bound: float) -> IntervalCase:
    return IntervalCase(
        paired_setups(),
        lambda case, seed: paired_difference_ci(*case, metric=metric, n_boot=N_BOOT, seed=seed),
        lambda case: point(case[0], case[1], case[3]) - point(case[0], case[2], case[3]),
        _referenced,
        lambda case: (-bound, bound),
    )


def _kappa_interval(weights: str | None) -> IntervalCase:
    def ci(t, p, k, **boot):
        return kappa_ci(t, p, k, weights=weights, **boot)

    return _label_interval("kappa", ci, _end_to_end_kappa(weights), _signed)


def _ordinal_interval(metric: str) -> IntervalCase:
    def ci(t, p, k, **boot):
        return ordinal_ci(t, p, k, metric=metric, **boot)

    def bounds(k):
        return two_rater_bounds(f"ordinal_{metric}", k)

    return _label_interval(metric, ci, TWO_RATER_METRICS[f"ordinal_{metric}"], bounds)


def _pairwise_interval(metric: str) -> IntervalCase:
    return IntervalCase(
        outcome_pairs(),
        lambda case, seed: pairwise_ci(*case, metric, n_boot=N_BOOT, seed=seed),
        lambda case: PAIRWISE_RATES[metric](*case)[0],
        lambda case: PAIRWISE_RATES[metric](*case)[1],
        _unit,
    )


def _multilabel_interval(metric: str) -> IntervalCase:
    return IntervalCase(
        label_sets(),
        lambda case, seed: multilabel_ci(*case, metric, n_boot=N_BOOT, seed=seed),
        lambda case: MULTILABEL_SCORES[metric](*case),
        _referenced_rows,
        _unit,
    )


def _ranking_interval(metric: str) -> IntervalCase:
    return IntervalCase(
        ranking_pairs(),
        lambda case, seed: ranking_ci(*case, metric, n_boot=N_BOOT, seed=seed),
        lambda case: RANKING_SCORES[metric](*case),
        _referenced_rows,
        lambda case: RANKING_BOUNDS[metric],
    )


def _ece_interval(strategy: str) -> IntervalCase:
    return IntervalCase(
        calibration_data(min_n=1),
        lambda case, seed: ece_ci(*case, strategy=strategy, n_boot=N_BOOT, seed=seed),
        lambda case: CALIBRATION_METRICS[f"ece_{strategy}"](*case),
        lambda case: case[0].size,
        _unit,
    )


def _accuracy_ci(t, p, k, **boot):
    return accuracy_ci(t, p, **boot)


INTERVALS: dict[str, IntervalCase] = {
    "accuracy_ci": _label_interval("accuracy", _accuracy_ci, TWO_RATER_METRICS["accuracy"], _unit),
    "macro_f1_ci": _label_interval("macro_f1", macro_f1_ci, TWO_RATER_METRICS["macro_f1"], _unit),
    **{f"kappa_ci_{w or 'unweighted'}": _kappa_interval(w) for w in (None, "linear", "quadratic")},
    **{f"ordinal_ci_{m}": _ordinal_interval(m) for m in ORDINAL_METRICS},
    "paired_difference_ci_accuracy": _paired_interval("accuracy", TWO_RATER_METRICS["accuracy"], 1),
    "paired_difference_ci_macro_f1": _paired_interval("macro_f1", TWO_RATER_METRICS["macro_f1"], 1),
    "paired_difference_ci_kappa": _paired_interval("kappa", _end_to_end_kappa(None), 2),
    **{f"pairwise_ci_{m}": _pairwise_interval(m) for m in PAIRWISE_METRICS},
    **{f"multilabel_ci_{m}": _multilabel_interval(m) for m in MULTILABEL_METRICS},
    **{f"ranking_ci_{m}": _ranking_interval(m) for m in RANKING_METRICS},
    **{f"ece_ci_{s}": _ece_interval(s) for s in ("uniform", "quantile")},
}
# The percentile interval of ECE need not contain the estimate: ECE is biased upward, so on
# well-calibrated data nearly every replicate exceeds the estimate (statistics.md section 5).
ESTIMATE_MAY_FALL_OUTSIDE = ["ece_ci_uniform", "ece_ci_quantile"]
CONTAINS_ESTIMATE = [name for name in INTERVALS if name not in ESTIMATE_MAY_FALL_OUTSIDE]
# Resampled as multinomial draws over a contingency table, these depend on the items only
# through the table, so not on their order (bootstrap_items-based ones draw item indices).
TABLE_BOOTSTRAP = [
    name
    for name in INTERVALS
    if name.startswith(("accuracy", "macro_f1", "kappa", "ordinal", "paired", "pairwise"))
]
ORDER_TOLERANCE = 1e-9  # replicates are summed in another order than the estimate


def _interval_fields(interval) -> tuple:
    return interval.estimate, interval.low, interval.high, interval.n, interval.n_boot


@pytest.mark.parametrize("name", sorted(INTERVALS))
@SETTINGS
@given(data=st.data())
def test_interval_is_seeded_estimates_the_metric_and_ends_are_ordered_and_bounded(name, data):
    case_ = INTERVALS[name]
    case = data.draw(case_.strategy)
    interval = case_.ci(case, 0)
    again = case_.ci(case, 0)  # seeded: the same replicates again
    pairs = zip(_interval_fields(interval), _interval_fields(again), strict=True)
    assert all(same(a, b) for a, b in pairs)
    assert_same(interval.estimate, case_.point(case), f"{name} estimate")
    assert interval.n == case_.n_items(case)
    assert 0 <= interval.n_boot <= N_BOOT and interval.level == 0.95
    if interval.n_boot == 0:  # no defined replicate: no interval
        assert undefined(interval.low) and undefined(interval.high)
        return
    lo, hi = case_.bounds(case)
    assert interval.low <= interval.high
    assert_within(interval.low, lo, hi, f"{name} low")
    assert_within(interval.high, lo, hi, f"{name} high")
    if name in CONTAINS_ESTIMATE and not undefined(interval.estimate):
        assert interval.low - ORDER_TOLERANCE <= interval.estimate
        assert interval.estimate <= interval.high + ORDER_TOLERANCE


@pytest.mark.parametrize("name", ESTIMATE_MAY_FALL_OUTSIDE)
def test_interval_of_a_biased_statistic_can_exclude_its_estimate(name):
    # Calibrated in its one occupied bin (ECE 0); almost no resample is.
    interval = INTERVALS[name].ci((np.full(2000, 0.5), np.arange(2000) % 2), 0)
    assert interval.estimate == 0.0 < interval.low


@pytest.mark.parametrize("name", TABLE_BOOTSTRAP)
@SETTINGS
@given(data=st.data())
def test_table_bootstrap_interval_item_order_invariant(name, data):
    case_ = INTERVALS[name]
    case = data.draw(case_.strategy)
    order = permutation_of(data, case[0].shape[0])
    shuffled = tuple(x[order] if isinstance(x, np.ndarray) else x for x in case)
    first, again = _interval_fields(case_.ci(case, 3)), _interval_fields(case_.ci(shuffled, 3))
    assert all(same(a, b) for a, b in zip(first, again, strict=True)), (first, again)


EMPTY_CASES = {
    "labels": (np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3),
    "paired": (np.array([], dtype=np.int64),) * 3 + (3,),
    "outcomes": (np.array([], dtype=np.int64), np.array([], dtype=np.int64)),
    "rows": (np.zeros((0, 3), dtype=np.int64), np.zeros((0, 3), dtype=np.int64)),
    "calibration": (np.array([], dtype=float), np.array([], dtype=np.int64)),
}


def _empty_case(name: str) -> tuple:
    if name.startswith("paired"):
        return EMPTY_CASES["paired"]
    if name.startswith("pairwise"):
        return EMPTY_CASES["outcomes"]
    if name.startswith(("multilabel", "ranking")):
        return EMPTY_CASES["rows"]
    if name.startswith("ece"):
        return EMPTY_CASES["calibration"]
    return EMPTY_CASES["labels"]


@pytest.mark.parametrize("name", sorted(INTERVALS))
def test_interval_over_no_items_is_undefined(name):
    interval = INTERVALS[name].ci(_empty_case(name), 0)
    assert (interval.n, interval.n_boot) == (0, 0)
    assert undefined(interval.estimate) and undefined(interval.low) and undefined(interval.high)
