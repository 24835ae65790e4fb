"""Stability across repeated runs and prompt variants (statistics.md section 11)."""

import itertools

import numpy as np
import pytest

from harness.metrics.agreement import krippendorff_alpha, reliability_matrix
from harness.metrics.stability import (
    inter_prompt_stability,
    intra_prompt_stability,
    run_agreement,
)

# 5 items x 3 runs, K = 3 (-1 = failed answer, treated as missing):
#
#   item  runs        answered  flip  share of differing pairs
#     0   0  0  0        3       no    0
#     1   0  1  0        3       yes   1 - 2*1/(3*2) = 2/3
#     2   1  1 -1        2       no    0
#     3   2 -1 -1        1       (fewer than 2 answers: not counted)
#     4   1  2  0        3       yes   1
#
# flip rate 2/4, disagreement (0 + 2/3 + 0 + 1)/4 = 5/12, failure rate 3/15.
# Nominal alpha by the coincidence matrix, o_ck = sum_u (n_uc n_uk - [c=k] n_uc)/(m_u - 1):
#   item 0: o00 += (9-3)/2 = 3;  item 1: o00 += (4-2)/2 = 1, o01 = o10 += 1;
#   item 2: o11 += (4-2)/1 = 2;  item 4: every off-diagonal pair += 1/2.
#   o = [[4, 1.5, .5], [1.5, 2, .5], [.5, .5, 0]], n_c = (6, 4, 1), n = 11,
#   alpha = 1 - (n-1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k = 1 - 10*5/68 = 9/34.
HAND_SAMPLES = np.array([[0, 0, 0], [0, 1, 0], [1, 1, -1], [2, -1, -1], [1, 2, 0]])


def test_intra_prompt_hand_computed():
    result = intra_prompt_stability(HAND_SAMPLES, 3, n_boot=200)
    assert result.alpha == pytest.approx(9 / 34)
    assert result.flip_rate == pytest.approx(0.5)
    assert result.disagreement_rate == pytest.approx(5 / 12)
    assert result.failure_rate == pytest.approx(0.2)
    assert (result.n_items, result.n_alpha, result.n_runs) == (5, 4, 3)
    assert result.level == "nominal"
    assert result.alpha_ci.estimate == result.alpha
    assert result.alpha_ci.n == 5 and result.alpha_ci.level == 0.95


def test_hand_alpha_matches_the_krippendorff_package():
    krippendorff = pytest.importorskip("krippendorff")
    data = reliability_matrix(HAND_SAMPLES)
    want = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert want == pytest.approx(9 / 34)


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_alpha_against_the_krippendorff_package(level):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 200)
    samples = np.where(rng.random((200, 4)) < 0.8, truth[:, None], rng.integers(0, 5, (200, 4)))
    samples[rng.random((200, 4)) < 0.1] = -1
    got = intra_prompt_stability(samples, 5, level=level, n_boot=50).alpha
    want = krippendorff.alpha(
        reliability_data=reliability_matrix(samples),
        level_of_measurement=level,
        value_domain=list(range(5)),
    )
    assert got == pytest.approx(want, rel=1e-9)


def test_disagreement_equals_mean_over_run_pairs_when_complete():
    rng = np.random.default_rng(4)
    samples = rng.integers(0, 3, (60, 4))
    pair_rates = [
        np.mean(samples[:, a] != samples[:, b]) for a, b in itertools.combinations(range(4), 2)
    ]
    result = intra_prompt_stability(samples, 3, n_boot=10)
    assert result.disagreement_rate == pytest.approx(np.mean(pair_rates))
    flips = np.mean([len(set(row)) > 1 for row in samples])
    assert result.flip_rate == pytest.approx(flips)


def test_identical_runs_are_perfectly_stable():
    labels = np.arange(30) % 3
    result = intra_prompt_stability(np.stack([labels] * 4, axis=1), 3, n_boot=100)
    assert result.alpha == 1.0
    assert result.flip_rate == 0.0 and result.disagreement_rate == 0.0
    assert (result.alpha_ci.low, result.alpha_ci.high) == (1.0, 1.0)


def test_one_label_everywhere_gives_undefined_alpha_but_no_flips():
    result = intra_prompt_stability(np.zeros((10, 3), dtype=int), 2, n_boot=20)
    assert np.isnan(result.alpha)
    assert result.flip_rate == 0.0


def test_no_pairable_items():
    result = intra_prompt_stability(np.array([[0, -1], [-1, 1]]), 2, n_boot=20)
    assert result.n_alpha == 0
    assert np.isnan(result.alpha) and np.isnan(result.flip_rate)
    assert result.failure_rate == 0.5


def test_ordinal_alpha_penalises_far_flips_more():
    # Same flips, but in the second set the flips jump across the whole scale.
    base = np.arange(40) % 5
    near = np.stack([base, np.where(base % 2 == 0, base, np.clip(base + 1, 0, 4))], axis=1)
    far = np.stack([base, np.where(base % 2 == 0, base, 4 - base)], axis=1)
    a_near = intra_prompt_stability(near, 5, level="ordinal", n_boot=20).alpha
    a_far = intra_prompt_stability(far, 5, level="ordinal", n_boot=20).alpha
    assert a_near > a_far


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 3, 150)
    samples = np.where(rng.random((150, 3)) < 0.7, truth[:, None], rng.integers(0, 3, (150, 3)))
    a = intra_prompt_stability(samples, 3, n_boot=300, seed=1)
    b = intra_prompt_stability(samples, 3, n_boot=300, seed=1)
    c = intra_prompt_stability(samples, 3, n_boot=300, seed=2)
    assert a == b
    assert a.alpha_ci != c.alpha_ci
    assert a.alpha_ci.low < a.alpha < a.alpha_ci.high
    assert a.alpha_ci.n_boot == 300


def test_clusters_are_passed_to_the_bootstrap():
    rng = np.random.default_rng(9)
    truth = np.repeat(rng.integers(0, 3, 20), 10)  # 20 sources x 10 items each
    samples = np.where(rng.random((200, 3)) < 0.7, truth[:, None], rng.integers(0, 3, (200, 3)))
    plain = run_agreement(samples, 3, n_boot=200)
    grouped = run_agreement(samples, 3, n_boot=200, clusters=np.repeat(np.arange(20), 10))
    assert grouped.alpha == plain.alpha
    assert grouped.alpha_ci != plain.alpha_ci


def test_bad_arguments():
    with pytest.raises(ValueError, match=">= 2 runs"):
        intra_prompt_stability(np.zeros((5, 1), dtype=int), 2)
    with pytest.raises(ValueError, match="level"):
        intra_prompt_stability(np.zeros((5, 2), dtype=int), 2, level="interval")
    with pytest.raises(ValueError, match="codes"):
        intra_prompt_stability(np.full((5, 2), 3), 2)


# --- inter-prompt -----------------------------------------------------------------------
#
#   item  ref   v0  v1  v2
#     0    0     0   0   0
#     1    1     1   1   2
#     2    2     2   1   2
#     3    0     0  -1   0     v1 failed: wrong for accuracy, missing for alpha
#     4    -     1   1   2     no reference: in alpha/flips, not in accuracy
#
# accuracy on items 0-3: v0 4/4 = 1, v1 2/4 = .5, v2 3/4 = .75; range .5,
# std (ddof 1) = sqrt((.25^2 + .25^2 + 0)/2) = .25. Flips: items 1, 2, 4 of 5 = .6.
VARIANTS = np.array([[0, 0, 0], [1, 1, 2], [2, 1, 2], [0, -1, 0], [1, 1, 2]])
REFERENCE = np.array([0, 1, 2, 0, -1])


def test_inter_prompt_hand_computed():
    result = inter_prompt_stability(VARIANTS, REFERENCE, 3, n_boot=100)
    assert [v.accuracy for v in result.per_variant] == pytest.approx([1.0, 0.5, 0.75])
    assert [v.variant for v in result.per_variant] == [0, 1, 2]
    assert all(v.n == 4 for v in result.per_variant)
    assert result.n_reference == 4
    assert result.accuracy_range == pytest.approx(0.5)
    assert result.accuracy_std == pytest.approx(0.25)
    assert result.agreement.flip_rate == pytest.approx(0.6)
    assert result.agreement.n_alpha == 5 and result.agreement.n_runs == 3
    want = krippendorff_alpha(reliability_matrix(VARIANTS), "nominal", n_values=3)
    assert result.agreement.alpha == pytest.approx(want)


def test_inter_prompt_identical_variants():
    ref = np.arange(20) % 4
    pred = np.where(np.arange(20) < 15, ref, (ref + 1) % 4)
    result = inter_prompt_stability(np.stack([pred] * 3, axis=1), ref, 4, n_boot=50)
    assert result.accuracy_range == 0.0 and result.accuracy_std == 0.0
    assert all(v.accuracy == 0.75 for v in result.per_variant)
    assert result.agreement.alpha == 1.0 and result.agreement.flip_rate == 0.0


def test_inter_prompt_bad_reference_length():
    with pytest.raises(ValueError, match="one entry per item"):
        inter_prompt_stability(VARIANTS, REFERENCE[:-1], 3)
