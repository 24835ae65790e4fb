"""Agreement statistics (harness.metrics.agreement) on the cases that mutation testing found
unchecked (statistics.md section 9): Fleiss' kappa of a single item and of none, the ratio
level with the value 0, and an annotator with a single comparable item in the human
ceiling's weighted means."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics import (
    fleiss_kappa,
    human_ceiling,
    krippendorff_alpha,
    reliability_matrix,
)


def test_fleiss_kappa_of_one_item_and_of_none() -> None:
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    # One item rated (0, 0, 1): P = (4 + 1 - 3) / 6 = 1/3, p = (2/3, 1/3), P_e = 5/9,
    # kappa = (1/3 - 5/9) / (4/9) = -1/2.
    one = np.array([[0, 0, 1]])
    table, _ = inter_rater.aggregate_raters(one, n_cat=2)
    assert fleiss_kappa(one, 2) == pytest.approx(-0.5)
    assert fleiss_kappa(one, 2) == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"))
    # No items: no design to speak of (None), not an error.
    assert fleiss_kappa(np.empty((0, 3), dtype=np.int64), 2) is None


def test_ratio_alpha_accepts_the_value_0() -> None:
    # Codes 0..4 used as ratio values: 0 is a valid ratio value (distance 1 to any other).
    # The package's own tests above add 1 to every value, so 0 was never seen.
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 5, 200)
    ratings = np.where(rng.random((200, 4)) < 0.6, truth[:, None], rng.integers(0, 5, (200, 4)))
    reliability = reliability_matrix(ratings)
    assert np.nanmin(reliability) == 0
    expected = krippendorff.alpha(reliability, level_of_measurement="ratio")
    assert krippendorff_alpha(reliability, "ratio") == pytest.approx(expected, abs=1e-10)
    assert krippendorff_alpha(reliability, "ratio", n_values=5) == pytest.approx(expected)


def test_an_annotator_with_one_comparable_item_counts_in_the_ceiling() -> None:
    # Annotator 2 rated item 0 only, against the others' 0: wrong, n = 1. Annotators 0 and
    # 1 are each wrong on item 3 (references 0 and 1 from the others' votes), n = 4.
    ratings = np.array([[0, 0, 1], [0, 0, -1], [1, 1, -1], [1, 0, -1]])
    ceiling = human_ceiling(ratings, np.array([0, 0, 1, 0]), 2)
    rows = ceiling.per_annotator
    assert [r.n for r in rows] == [4, 4, 1]
    assert [r.human_accuracy for r in rows] == [0.75, 0.75, 0.0]
    assert [r.llm_accuracy for r in rows] == [1.0, 0.75, 1.0]
    # Weighted by n over all 9 comparisons, the single one included.
    assert ceiling.human_accuracy == pytest.approx(6 / 9)
    assert ceiling.llm_accuracy == pytest.approx(8 / 9)
    assert ceiling.n_pairs == 9
