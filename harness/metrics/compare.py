"""Comparing two setups on the same items (statistics.md section 7).

Two setups A and B labelled the same n items. Per item each is right or wrong, giving the
paired 2x2 table; only the discordant cells carry information about the difference:

    b = A right and B wrong,   c = A wrong and B right,   acc(A) - acc(B) = (b - c) / n.

- ``mcnemar_exact``: McNemar's exact test, i.e. a two-sided exact binomial test of
  b ~ Binomial(b + c, 1/2) (McNemar 1947; exact form as in Agresti, "Categorical Data
  Analysis", 3rd ed., section 11.1). p = 1 when there are no discordant pairs.
- ``holm``: Holm-Bonferroni step-down adjusted p-values (Holm 1979), for several metrics
  or several comparisons at once.
- ``se_accuracy_difference``: standard error of acc(A) - acc(B) from the paired table,
  sqrt(b + c - (c - b)^2 / n) / n. This is the multinomial variance of the difference of
  two dependent proportions, [(b + c)/n - ((c - b)/n)^2] / n (Agresti, section 11.1.1;
  Miller 2024, "Adding Error Bars to Evals", arXiv 2411.00640, paired differences).
- ``minimum_detectable_difference``: (z_{1-alpha/2} + z_{power}) * SE, the usual
  normal-approximation power formula for a two-sided level-alpha Wald test (e.g. Chow,
  Shao & Wang, "Sample Size Calculations in Clinical Research", ch. 3; Connor 1987 for
  paired proportions). It plugs in the observed SE as if it held under the alternative,
  so it is a planning figure, not an exact power calculation. With n = 500 and 10%
  discordant items (b = c = 25) it gives about 0.04, i.e. 4 accuracy points. On clustered
  items the SE is the independent-items one times the square root of the design effect
  (``design_effect``, never below 1), as the power section's sizes are.
- ``design_effect``: Kish's (1965) design effect of acc(A) - acc(B), the cluster
  bootstrap's variance over ``se_accuracy_difference``'s.
- ``can_tell_apart``: whether an interval of a difference excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import bdtr, ndtri  # no scipy.stats: 0.45 s of every CLI start


@dataclass(frozen=True)
class McNemar:
    """Paired right/wrong table summary and McNemar's exact two-sided p-value.

    ``b`` = A right & B wrong, ``c`` = A wrong & B right, ``n`` = items compared.
    ``difference`` = acc(A) - acc(B) = (b - c) / n (nan when n == 0).
    """

    b: int
    c: int
    n: int
    p_value: float

    @property
    def discordant(self) -> int:
        return self.b + self.c

    @property
    def difference(self) -> float:
        return (self.b - self.c) / self.n if self.n else float("nan")


def _as_bool_vector(values: np.ndarray | Sequence[bool], name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must contain only booleans or 0/1")
    return arr.astype(bool)


def mcnemar_exact(
    correct_a: np.ndarray | Sequence[bool], correct_b: np.ndarray | Sequence[bool]
) -> McNemar:
    """McNemar's exact test on per-item correctness of setups A and B (same items, same order).

    p-value: two-sided exact binomial test of b out of b + c discordant pairs against 1/2;
    1.0 when b + c == 0 (no evidence either way).
    """
    a = _as_bool_vector(correct_a, "correct_a")
    bb = _as_bool_vector(correct_b, "correct_b")
    if a.shape != bb.shape:
        raise ValueError(f"correct_a and correct_b differ in length: {a.shape} vs {bb.shape}")
    b = int(np.count_nonzero(a & ~bb))
    c = int(np.count_nonzero(~a & bb))
    # Exact two-sided binomial test at 1/2 (scipy.stats.binomtest): symmetric, so twice
    # the smaller tail, at most 1.
    p = 1.0 if b + c == 0 else min(1.0, 2.0 * float(bdtr(min(b, c), b + c, 0.5)))
    return McNemar(b=b, c=c, n=int(a.size), p_value=min(1.0, p))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in input order.

    Sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max_{j<=i} min(1, (m-j+1) p_(j)).
    Reject H_i at family-wise level alpha iff its adjusted p-value <= alpha.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p_values must be in [0, 1] (no nan)")
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted_sorted = np.maximum.accumulate(scaled)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return [float(x) for x in adjusted]


def _check_counts(b: int, c: int, n: int) -> None:
    if b < 0 or c < 0 or n < 0:
        raise ValueError(f"b, c, n must be >= 0, got b={b}, c={c}, n={n}")
    if b + c > n:
        raise ValueError(f"b + c ({b + c}) cannot exceed n ({n})")


def se_accuracy_difference(b: int, c: int, n: int) -> float:
    """SE of acc(A) - acc(B) from discordant counts: sqrt(b + c - (c - b)^2 / n) / n.

    nan when n == 0; 0 when there are no discordant pairs.
    """
    _check_counts(b, c, n)
    if n == 0:
        return float("nan")
    return math.sqrt(max(0.0, b + c - (c - b) ** 2 / n)) / n


def design_effect(se_clustered: float, b: int, c: int, n: int) -> float:
    """Kish's design effect of acc(A) - acc(B): se_clustered^2 over the independent-items
    variance se_accuracy_difference(b, c, n)^2; nan when either is 0 or undefined."""
    iid = se_accuracy_difference(b, c, n)
    if not (iid > 0 and math.isfinite(se_clustered)):
        return float("nan")
    return (se_clustered / iid) ** 2


def minimum_detectable_difference(
    b: int,
    c: int,
    n: int,
    alpha: float = 0.05,
    power: float = 0.8,
    design_effect: float | None = None,
) -> float:
    """Smallest accuracy difference detectable with this paired table's SE:
    (z_{1-alpha/2} + z_{power}) * se_accuracy_difference(b, c, n) (two-sided test), the SE
    times sqrt(design_effect) on clustered items.

    nan when n == 0. See the module docstring for the formula's source and caveat. A design
    effect below 1 or undefined (one cluster, no discordant item) leaves the SE as it is: a
    smaller estimate is noise, and clustering never adds information.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    se = se_accuracy_difference(b, c, n)
    if design_effect is not None and math.isfinite(design_effect) and design_effect > 1.0:
        se *= math.sqrt(design_effect)
    return float((ndtri(1.0 - alpha / 2.0) + ndtri(power)) * se)


def can_tell_apart(ci_low: float, ci_high: float) -> bool:
    """True when the interval [ci_low, ci_high] of a difference excludes 0.

    An interval with a nan endpoint cannot tell anything apart (False).
    """
    if math.isnan(ci_low) or math.isnan(ci_high):
        return False
    if ci_low > ci_high:
        raise ValueError(f"ci_low ({ci_low}) > ci_high ({ci_high})")
    return ci_low > 0.0 or ci_high < 0.0
