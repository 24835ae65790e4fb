"""The metric recipe of docs/architecture.md: a toy metric (percent agreement) written as the
recipe says, listed under its properties in test_common, and checked by the common tests
there; a broken variant of it is caught by the same tests."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.accuracy import validate_codes

from . import test_common as common


def percent_agreement(a: np.ndarray, b: np.ndarray, n_classes: int) -> float | None:
    """Share of the items both raters labelled on which they agree; None when there is none."""
    a = validate_codes(a, n_classes, "a", ndim=1)
    b = validate_codes(b, n_classes, "b", ndim=1)
    both = (a >= 0) & (b >= 0)
    return float(np.mean(a[both] == b[both])) if both.any() else None


def first_rater_share(a: np.ndarray, b: np.ndarray, n_classes: int) -> float | None:
    """Broken on purpose: agreement counted over the first rater's items only (a failure of
    the second counts against it), so swapping the raters changes it."""
    a = validate_codes(a, n_classes, "a", ndim=1)
    b = validate_codes(b, n_classes, "b", ndim=1)
    rated = a >= 0
    return float(np.mean(a[rated] == b[rated])) if rated.any() else None


@pytest.fixture
def listed(monkeypatch):
    """Step 2 of the recipe: list the metric under every property it has."""

    def add(name, metric):
        monkeypatch.setitem(common.TWO_RATER_METRICS, name, metric)
        monkeypatch.setitem(common.TWO_RATER_PERFECT, name, 1.0)
        monkeypatch.setitem(common.TWO_RATER_UNDEFINED, name, common._none_answered)
        for prop in ("SYMMETRIC_WITH_MISSING", "LABEL_PERMUTATION_INVARIANT"):
            monkeypatch.setattr(common, prop, [*getattr(common, prop), name])
        return name

    return add


def test_the_toy_metric_has_the_properties_it_is_listed_under(listed):
    name = listed("percent_agreement", percent_agreement)
    common.test_two_rater_undefined_exactly_when_documented(name=name)
    common.test_two_rater_bounded(name=name)
    common.test_two_rater_perfect_agreement(name=name)
    common.test_two_rater_symmetric_with_missing_values(name=name)
    common.test_two_rater_label_permutation_invariant(name=name)


def test_the_common_tests_catch_a_metric_that_breaks_its_listed_property(listed):
    name = listed("first_rater_share", first_rater_share)
    with pytest.raises(AssertionError):
        common.test_two_rater_symmetric_with_missing_values(name=name)
