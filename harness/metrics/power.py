"""How many gold items: power and sample size for comparing two setups on the same items
(statistics.md section 8; issue 17 item 8).

Accuracy. Two setups on n items; per item each is right or wrong. Only the discordant items
matter: p10 = P(A right, B wrong), p01 = P(A wrong, B right), the discordance rate
psi = p10 + p01 and the difference delta = p10 - p01 = acc(A) - acc(B). McNemar's test asks
whether b (A-only-right among the m = b + c discordant items) is Binomial(m, 1/2).

- ``connor_sample_size``: Connor (1987), "Sample size for testing differences in proportions
  for the paired-sample design", Biometrics 43:207-211, the unconditional normal
  approximation: n = [z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2)]^2 / delta^2.
  Lachin (1992), Stat Med 11:1239-1251, gives the same unconditional formula and shows it
  is close to exact for the usual alpha and power.
- ``mcnemar_exact_power``: the exact power of the exact test (the one ``compare.mcnemar_exact``
  runs), with nothing approximated: m ~ Binomial(n, psi), and given m, b ~ Binomial(m, pi)
  with pi = p10 / psi; the test rejects when min(b, m - b) <= k_m, where k_m is the largest
  k with 2 P(Binomial(m, 1/2) <= k) <= alpha. So power = sum_m P(m) [F_m(k_m; pi) +
  F_m(k_m; 1 - pi)] (the two tails are disjoint since k_m < m / 2). Lachin (1992) section 3
  computes the same sum conditionally on m; Connor's formula is its normal limit.
- ``mcnemar_sample_size``: the smallest n at which that exact power reaches the target,
  searched upward from near Connor's n. The exact test is conservative and its power is a
  saw-tooth in n, so this n is usually a few items above Connor's.

- ``mcnemar_detectable_difference``: the smallest difference that exact power reaches the
  target for on n items, at the observed discordance: the inverse of the sample size, so
  the two figures agree. ``compare.minimum_detectable_difference`` (the comparisons
  table's column) is the normal approximation of the same question with the observed
  table's SE, (z_{1-alpha/2} + z_{power}) SE; it is reported beside it, not restated.

Kappa. No closed form covers the difference of two kappas on the same items with any number
of labels, so the per-item standard deviation of the difference is estimated from the gold
set itself: sd_1 = SE_boot(kappa_A - kappa_B) x sqrt(n), SE_boot from resampling items
(kappa is asymptotically normal with variance O(1/n): Fleiss, Cohen & Everitt 1969).
``wald_sample_size`` is then the usual two-sided Wald formula n = ((z_{1-alpha/2} +
z_{power}) sd_1 / Delta)^2 (Chow, Shao & Wang, "Sample Size Calculations in Clinical
Research", 2nd ed., section 3.1), assuming the per-item sd stays as observed.

Holm over k pairs: planning at alpha / k (Holm's first step, i.e. Bonferroni) is what a
single true difference among k pairs needs at worst; Holm's later steps are never stricter,
so the power under Holm is at least the figure computed at alpha / k.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import bdtr, gammaln, ndtri

from .accuracy import validate_codes
from .agreement import kappa_from_confusion

# Beyond this many items the exact search stops: Connor's formula is then within an item
# or two of the exact answer, and no one labels that many gold items to plan.
EXACT_MAX_N = 200_000


def _check(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")


def _check_rates(discordance: float, difference: float) -> None:
    if not 0.0 <= discordance <= 1.0 or math.isnan(discordance):
        raise ValueError(f"discordance must be in [0, 1], got {discordance}")
    if math.isnan(difference) or abs(difference) > 1.0:
        raise ValueError(f"difference must be in [-1, 1], got {difference}")


def connor_sample_size(
    discordance: float, difference: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Connor's (1987) n for McNemar's test, unrounded; nan when no n can do it (a zero
    difference, or a difference larger than the discordance: the setups would have to
    disagree on more items than they do)."""
    _check(alpha, power)
    _check_rates(discordance, difference)
    d = abs(difference)
    if d == 0.0 or d > discordance:
        return float("nan")
    za, zb = ndtri(1.0 - alpha / 2.0), ndtri(power)
    return float((za * math.sqrt(discordance) + zb * math.sqrt(discordance - d * d)) ** 2 / d**2)


def mcnemar_critical_counts(m: np.ndarray | int, alpha: float) -> np.ndarray:
    """k_m for each m (an int gives m = 0..m): the largest k with 2 P(Binomial(m, 1/2) <= k)
    <= alpha, i.e. the exact test rejects iff min(b, c) <= k_m; -1 where no table of m
    discordant items can be significant (m < 6 at alpha = 0.05)."""
    m = np.arange(m + 1) if np.ndim(m) == 0 else np.asarray(m, dtype=np.int64)
    # The normal quantile puts k_m within one count of (m - z sqrt(m)) / 2; whole counts
    # around it are checked against the exact binomial CDF (scipy's bdtrik would be exact
    # too, but is ~100x slower).
    guess = np.floor((m - ndtri(1.0 - alpha / 2.0) * np.sqrt(m)) / 2.0).astype(np.int64)
    best = np.full(m.size, -1, dtype=np.int64)
    for shift in range(-3, 4):
        k = guess + shift
        valid = (k >= 0) & (2 * k < m)
        ok = valid & (2.0 * bdtr(np.where(valid, k, 0), m, 0.5) <= alpha)
        best = np.where(ok & (k > best), k, best)
    return best


def _reject_given_m(m: np.ndarray, alpha: float, share_a: float) -> np.ndarray:
    """P(the exact test rejects | m discordant items) for each m."""
    crit = mcnemar_critical_counts(m, alpha)
    k = np.maximum(crit, 0)
    tails = bdtr(k, m, share_a) + bdtr(k, m, 1.0 - share_a)
    return np.where(crit >= 0, tails, 0.0)


def _binomial_pmf(n: int, p: float, m: np.ndarray) -> np.ndarray:
    if p <= 0.0:
        return (m == 0).astype(float)
    if p >= 1.0:
        return (m == n).astype(float)
    log = (
        gammaln(n + 1.0)
        - gammaln(m + 1.0)
        - gammaln(n - m + 1.0)
        + m * math.log(p)
        + (n - m) * math.log1p(-p)
    )
    return np.exp(log)


class _ExactPower:
    """Exact power of the exact McNemar test as a function of n, for fixed rates; the
    rejection probability given m is computed once per m, only where the binomial weights
    of some n asked for are not negligible."""

    def __init__(self, discordance: float, difference: float, alpha: float, m_max: int):
        self.psi, self.alpha = discordance, alpha
        self.share_a = 0.5 + difference / (2.0 * discordance) if discordance > 0 else 0.5
        self.reject = np.full(m_max + 1, np.nan)

    def __call__(self, n: int) -> float:
        if self.psi == 0.0:
            return 0.0
        mean, sd = n * self.psi, math.sqrt(n * self.psi * (1.0 - self.psi))
        # The binomial weights beyond 12 sd are below 1e-30: summing them changes nothing.
        lo = max(0, int(mean - 12.0 * sd) - 10)
        hi = min(n, int(mean + 12.0 * sd) + 10)
        m = np.arange(lo, hi + 1)
        todo = m[np.isnan(self.reject[m])]
        if todo.size:
            self.reject[todo] = _reject_given_m(todo, self.alpha, self.share_a)
        return float(np.clip(np.dot(_binomial_pmf(n, self.psi, m), self.reject[m]), 0.0, 1.0))


def mcnemar_exact_power(
    n: int, discordance: float, difference: float, alpha: float = 0.05
) -> float:
    """Exact power of the exact two-sided McNemar test at level ``alpha`` on n items when
    the setups disagree on a share ``discordance`` of items and acc(A) - acc(B) =
    ``difference`` (module docstring). Equals alpha-or-less when difference is 0."""
    _check(alpha, 0.5)
    _check_rates(discordance, difference)
    if abs(difference) > discordance:
        raise ValueError(f"|difference| ({difference}) cannot exceed discordance ({discordance})")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return _ExactPower(discordance, difference, alpha, n)(n)


def mcnemar_sample_size(
    discordance: float, difference: float, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """The smallest n whose exact power (``mcnemar_exact_power``) reaches ``power``, searched
    upward from 70% of Connor's n in coarse steps, then bisected. None when no n can
    (see ``connor_sample_size``) or when it exceeds ``EXACT_MAX_N``."""
    approx = connor_sample_size(discordance, difference, alpha, power)
    if math.isnan(approx) or approx > EXACT_MAX_N:
        return None
    # The exact power is within a few points of the normal limit's: twice Connor's n is
    # far beyond where the search can end (it gives up there rather than loop on).
    cap = min(EXACT_MAX_N, int(2.0 * approx) + 200)
    exact = _ExactPower(discordance, difference, alpha, cap)
    n = max(1, int(0.7 * approx))
    while n > 1 and exact(n) >= power:  # rare: start below the target
        n = max(1, n // 2)
    step = max(1, n // 100)
    prev = n
    while exact(n) < power:
        prev, n = n, n + step
        if n > cap:
            return None
    # Bisect the last coarse step for the crossing: n - 1 below the target, n at or above
    # (the saw-tooth within one step is far smaller than a step's rise).
    lo, hi = prev, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if exact(mid) >= power else (mid, hi)
    return hi


def mcnemar_detectable_difference(
    n: int, discordance: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest |acc(A) - acc(B)| the exact test detects with probability ``power`` on n
    items at this discordance: the inverse of ``mcnemar_sample_size`` in the difference
    (bisection; the power grows with the difference). nan when even a difference equal to
    the discordance (one setup right on every discordant item) is not detected."""
    _check(alpha, power)
    _check_rates(discordance, 0.0)
    if n < 1 or discordance == 0.0:
        return float("nan")

    def reaches(d: float) -> bool:
        return _ExactPower(discordance, d, alpha, n)(n) >= power

    if not reaches(discordance):
        return float("nan")
    lo, hi = 0.0, discordance
    while hi - lo > 1e-5:  # well below the 3 decimals any report shows
        mid = (lo + hi) / 2.0
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


def wald_sample_size(
    sd_per_item: float, difference: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """n = ((z_{1-alpha/2} + z_{power}) sd_1 / difference)^2, unrounded; nan when the sd is
    not a positive finite number or the difference is 0."""
    _check(alpha, power)
    if not math.isfinite(sd_per_item) or sd_per_item <= 0.0 or difference == 0.0:
        return float("nan")
    z = ndtri(1.0 - alpha / 2.0) + ndtri(power)
    return float((z * sd_per_item / difference) ** 2)


def wald_detectable_difference(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """(z_{1-alpha/2} + z_{power}) SE: the difference a two-sided Wald test with this SE
    detects with the given power (nan for a non-finite SE)."""
    _check(alpha, power)
    if not math.isfinite(se) or se < 0.0:
        return float("nan")
    return float((ndtri(1.0 - alpha / 2.0) + ndtri(power)) * se)


def bootstrap_se_differences(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_classes: int,
    n_boot: int = 1000,
    seed: int = 0,
    clusters: np.ndarray | None = None,
) -> tuple[float, float]:
    """Bootstrap SEs of accuracy(A) - accuracy(B) and kappa(A) - kappa(B) (end-to-end: a
    failure -1 is wrong, and its own category for kappa), resampling items jointly as
    ``intervals.paired_difference_ci`` does, or whole clusters when ``clusters`` (one id per
    item) is given; nan when fewer than 2 replicates are defined. Items whose reference is
    -1 are left out."""
    truth = validate_codes(y_true, n_classes, "y_true")
    a = validate_codes(pred_a, n_classes, "pred_a")
    b = validate_codes(pred_b, n_classes, "pred_b")
    if not truth.shape == a.shape == b.shape:
        raise ValueError("y_true, pred_a and pred_b must have the same length")
    keep = truth >= 0
    k, c = n_classes, n_classes + 1
    col_a = np.where(a[keep] < 0, k, a[keep])
    col_b = np.where(b[keep] < 0, k, b[keep])
    cells = (truth[keep] * c + col_a) * c + col_b
    n = cells.size
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if clusters is None:
        p = np.bincount(cells, minlength=k * c * c) / n
        tables = rng.multinomial(n, p, size=n_boot)
    else:
        group = np.unique(np.asarray(clusters)[keep], return_inverse=True)[1].ravel()
        g = int(group.max()) + 1
        per_group = np.bincount(group * (k * c * c) + cells, minlength=g * k * c * c)
        per_group = per_group.reshape(g, k * c * c)
        draws = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot)
        tables = draws @ per_group
    tables = tables.reshape(-1, k, c, c)
    total = tables.sum(axis=(1, 2, 3)).astype(float)
    diagonal = np.arange(k)
    right_a = tables.sum(axis=3)[:, diagonal, diagonal].sum(axis=1)
    right_b = tables.sum(axis=2)[:, diagonal, diagonal].sum(axis=1)
    acc = (right_a - right_b) / total
    kap = kappa_from_confusion(tables.sum(axis=3)) - kappa_from_confusion(tables.sum(axis=2))

    def sd(x: np.ndarray) -> float:
        x = x[np.isfinite(x)]
        return float(np.std(x, ddof=1)) if x.size >= 2 else float("nan")

    return sd(acc), sd(kap)
