"""Prediction-powered inference: label prevalence on unlabeled data from LLM labels plus a
gold set (statistics.md section 12).

Setting: n gold items with a reference y and the LLM's output f on them, and N unlabeled
items with only f, all drawn from the same population. We want theta = E[y], e.g. the
share of class c (y = 1[reference == c]).

* naive (LLM only): mean of f over the unlabeled items. Its interval only reflects the
  sampling noise of N items and ignores the LLM's bias, so with a biased LLM it is narrow
  and wrong; the report shows it beside the others to make exactly that visible.
* classical (gold only): mean of y over the n gold items. Unbiased, but wide.
* PPI (Angelopoulos et al., Science 2023): theta = mean_N(f) + mean_n(y - f). The gold
  set measures the LLM's bias (the "rectifier" mean_n(y - f)) and removes it, so theta is
  unbiased for *any* f; SE^2 = Var(f)/N + Var(y - f)/n, normal interval. When the LLM is
  good, Var(y - f) is small and the interval is much narrower than the classical one.
* PPI++ (Angelopoulos, Duchi, Zrnic 2023, arXiv 2311.01453): theta_lam = lam * mean_N(f)
  + mean_n(y - lam * f) with lam chosen to minimise the variance, clipped to [0, 1].
  lam = 1 is PPI, lam = 0 is classical, so PPI++ is (asymptotically) never worse than
  either.

Variances are population variances (ddof = 0) as in the reference implementation
``ppi_py`` (``ppi_mean_ci``, ``classical_mean_ci``); for a 0/1 variable that is the
binomial p(1 - p). The tests check our numbers against ``ppi_py`` when it is installed.
With fewer than 2 items on a side that is used the variance is not estimable, so se and
the interval are nan rather than a misleading zero width.

Small gold sets: the normal interval estimates Var(y - f) from the n gold items, which
with an accurate LLM rests on a few disagreements, so it covers less than its level below
about 50 gold items (0.88 at 20; statistics.md section 4). It is kept exactly as ppi_py
computes it; the report's note beside it is ``score.small_n.ppi_note``.

Clustered gold items (``clusters``, statistics.md section 3: e.g. the turns of one
conversation) are not independent, and Var(.)/n then understates the spread of a gold
mean. The gold side's variance -- the rectifier mean_n(y - lam f) of PPI and PPI++, and
the classical mean -- is then the cluster-robust one over the G gold clusters:
sum_k (sum_{i in k} (x_i - mean))^2 / n^2 times G (n - 1) / ((G - 1) n), i.e. CR1 put on
ppi_py's ddof-0 scale, so that with every item its own cluster it is Var(x) / n exactly
(and is computed by that formula). nan below 2 clusters. The unlabeled items stay
independent: they are new items, drawn apart from the gold set's clusters, and their
term Var(f)/N is unchanged (a pool with clusters of its own would need its own ids). The
PPI++ weight lam is still tuned from the unclustered variances: any lam gives an unbiased
estimate, and the interval uses the clustered variance of whichever lam is chosen.

Intervals are not clipped to [0, 1]: a PPI estimate of a rare class can fall slightly
below 0 (the rectifier is noisy), and showing that is more honest than hiding it.

Failed LLM outputs (code -1, or an all-nan row of probabilities) get f = 0 for every
class. PPI stays unbiased: its only requirement is that f be the *same* procedure on the
gold and the unlabeled items, and "fail -> 0" is part of that procedure; the rectifier
mean_n(y - f) then counts a gold failure as a miss of its true class and adds the
expected share back. It does need failures to happen at the same rate on both sets (same
model, prompt and retry policy); a transient outage during the unlabeled run breaks that.
Hence per-class PPI estimates sum to 1 + (gold failure share - unlabeled failure share),
not exactly 1, and ``ClassPrevalence`` carries both failure counts so the mismatch shows.
The naive estimate instead uses answered unlabeled items only (the share a user would
read off the LLM's labels; it sums to 1 over classes for hard labels). Gold items without
a reference (-1) are dropped together with their f.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri  # the normal quantile (scipy.stats.norm.ppf)

from .accuracy import validate_codes
from .clusters import cluster_codes

NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """A mean with its normal interval [low, high] at ``level``.

    ``n`` = gold items used, ``N`` = unlabeled items used (0 when that side is unused:
    N for classical, n for naive), ``lam`` = weight on the LLM's outputs (1 = PPI,
    0 = classical, tuned for PPI++, nan for naive, which is not of that form).
    """

    estimate: float
    low: float
    high: float
    se: float
    n: int
    N: int
    lam: float
    level: float

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class ClassPrevalence:
    """Four estimates of the share of class ``label``; failure counts as in the module doc."""

    label: int
    ppi: Estimate
    ppi_plus_plus: Estimate
    naive: Estimate
    classical: Estimate
    n_failed_gold: int
    n_failed_unlabeled: int


def _vector(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (map failures to 0 first, see module doc)")
    return arr


def _samples(y_gold, f_gold, f_unlabeled) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, fg = _vector(y_gold, "y_gold"), _vector(f_gold, "f_gold")
    if y.shape != fg.shape:
        raise ValueError(f"y_gold and f_gold differ in length: {y.size} vs {fg.size}")
    return y, fg, _vector(f_unlabeled, "f_unlabeled")


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(ndtri(0.5 + level / 2.0))


def _normal(estimate: float, var: float, n: int, N: int, lam: float, level: float) -> Estimate:
    z = _check_level(level)
    se = float(np.sqrt(var)) if np.isfinite(var) else NAN
    return Estimate(float(estimate), estimate - z * se, estimate + z * se, se, n, N, lam, level)


def _var(x: np.ndarray) -> float:
    """Population variance (ddof 0, as ppi_py); nan below 2 items (not estimable)."""
    return float(np.var(x)) if x.size >= 2 else NAN


def _mean_var(x: np.ndarray, group: np.ndarray | None) -> float:
    """Variance of the gold mean of x: Var(x) / n, or its cluster-robust form (module doc)."""
    n = x.size
    if group is None:
        return _var(x) / n
    g = int(group.max()) + 1
    if g < 2:
        return NAN  # one cluster: nothing measures the spread between clusters
    dev = np.bincount(group, weights=x - x.mean(), minlength=g)
    return float(np.sum(dev**2)) / n**2 * (g * (n - 1)) / ((g - 1) * n)


def ppi_mean(
    y_gold: np.ndarray,
    f_gold: np.ndarray,
    f_unlabeled: np.ndarray,
    level: float = 0.95,
    lam: float = 1.0,
    clusters: np.ndarray | None = None,
) -> Estimate:
    """theta_lam = lam * mean_N(f) + mean_n(y - lam * f), with
    SE^2 = lam^2 Var(f_unlabeled) / N + Var(y - lam * f_gold) / n (the two samples are
    independent, so the variances add). lam = 1 is PPI; lam = 0 is exactly the classical
    gold-only estimate (the unlabeled term is then skipped, so N may even be 0).
    ``clusters`` (one id per gold item): the gold term is cluster-robust (module doc).
    """
    y, fg, fu = _samples(y_gold, f_gold, f_unlabeled)
    group = cluster_codes(clusters, y.size, "gold item")
    if not np.isfinite(lam):
        raise ValueError(f"lam must be finite, got {lam}")
    n, N = int(y.size), int(fu.size)
    _check_level(level)
    if n == 0 or (N == 0 and lam != 0):
        return Estimate(NAN, NAN, NAN, NAN, n, N, float(lam), level)
    rectified = y - lam * fg
    estimate = float(rectified.mean())
    var = _mean_var(rectified, group)
    if lam != 0:
        estimate += float(lam * fu.mean())
        var += lam**2 * _var(fu) / N  # the pool's items are independent (module doc)
    return _normal(estimate, var, n, N, float(lam), level)


def power_tuned_lambda(y_gold: np.ndarray, f_gold: np.ndarray, f_unlabeled: np.ndarray) -> float:
    """PPI++ weight for a mean (arXiv 2311.01453, mean estimation), clipped to [0, 1].

    Derivation. With independent samples,
        Var(theta_lam) = lam^2 s_f^2 / N + Var(y - lam f) / n
                       = lam^2 s_f^2 / N + (s_y^2 - 2 lam s_yf + lam^2 s_f^2) / n.
    d/dlam = 2 lam s_f^2 / N - 2 s_yf / n + 2 lam s_f^2 / n = 0 gives
        lam* = (s_yf / n) / (s_f^2 (1/N + 1/n)) = s_yf / ((1 + n/N) s_f^2),
    a minimum (the second derivative 2 s_f^2 (1/N + 1/n) is >= 0). The paper's mean
    example has this form. As in ppi_py, s_yf = Cov(y, f) on the gold set (ddof 0) and
    s_f^2 = Var(f) over gold and unlabeled pooled (ddof 1): f has the same distribution
    on both, and pooling uses all n + N values. Clipping: lam < 0 (f anti-correlated with
    y) would subtract the LLM; 0 falls back to classical. lam > 1 would over-trust it.

    Edge cases: Var(f) = 0 (the LLM gives the same f everywhere, e.g. never says c) or
    N = 0 -> 0; f is then useless (with constant f every lam gives the classical estimate
    anyway). ppi_py returns nan there.
    """
    y, fg, fu = _samples(y_gold, f_gold, f_unlabeled)
    n, N = y.size, fu.size
    if n == 0 or N == 0 or n + N < 2:
        return 0.0
    cov = float(np.mean((y - y.mean()) * (fg - fg.mean())))
    var_f = float(np.var(np.concatenate([fg, fu]), ddof=1))
    if var_f <= 0.0:
        return 0.0
    return float(np.clip(cov / ((1.0 + n / N) * var_f), 0.0, 1.0))


def ppi_plus_plus(
    y_gold: np.ndarray,
    f_gold: np.ndarray,
    f_unlabeled: np.ndarray,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> Estimate:
    """PPI with the power-tuned ``lam`` (``power_tuned_lambda``).

    lam is estimated from the same data; the plug-in interval is asymptotically valid
    (PPI++ paper), slightly optimistic on very small gold sets. The "never worse than
    classical" property is asymptotic: with a few dozen gold items and a weakly correlated
    LLM, noise in lam can make PPI++ worse than classical (Mani et al. 2025, arXiv
    2505.20178), so the report shows all four estimates.
    """
    lam = power_tuned_lambda(y_gold, f_gold, f_unlabeled)
    return ppi_mean(y_gold, f_gold, f_unlabeled, level, lam, clusters)


def naive_mean(f_unlabeled: np.ndarray, level: float = 0.95) -> Estimate:
    """LLM-only mean of f over the N unlabeled items, Wald interval sqrt(Var(f) / N).

    For hard 0/1 labels this is the binomial (Wald) interval of a share. It covers the
    mean of f, not of y: it says nothing about the LLM's bias.
    """
    fu = _vector(f_unlabeled, "f_unlabeled")
    N = int(fu.size)
    _check_level(level)
    if N == 0:
        return Estimate(NAN, NAN, NAN, NAN, 0, 0, NAN, level)
    return _normal(float(fu.mean()), _var(fu) / N, 0, N, NAN, level)


def classical_mean(
    y_gold: np.ndarray, level: float = 0.95, clusters: np.ndarray | None = None
) -> Estimate:
    """Gold-only mean of y with its Wald interval sqrt(Var(y) / n) (ppi_py's
    ``classical_mean_ci``); equals ``ppi_mean(..., lam=0)``, also with ``clusters``."""
    y = _vector(y_gold, "y_gold")
    n = int(y.size)
    group = cluster_codes(clusters, n, "gold item")
    _check_level(level)
    if n == 0:
        return Estimate(NAN, NAN, NAN, NAN, 0, 0, 0.0, level)
    return _normal(float(y.mean()), _mean_var(y, group), n, 0, 0.0, level)


def _class_scores(pred: np.ndarray, n_classes: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(m, K) matrix of f per class and the boolean "answered" mask.

    1-D input: hard codes (-1 = failed), f = one-hot. 2-D input (m, K): the LLM's
    probability of each class; an all-nan row is a failure. Failures get f = 0.
    """
    arr = np.asarray(pred)
    if arr.ndim == 1:
        codes = validate_codes(arr, n_classes, name, ndim=1)
        answered = codes >= 0
        return (codes[:, None] == np.arange(n_classes)).astype(float), answered
    if arr.ndim != 2 or arr.shape[1] != n_classes:
        raise ValueError(f"{name} must be codes (m,) or probabilities (m, {n_classes})")
    prob = arr.astype(float)
    missing = np.isnan(prob)
    failed = missing.all(axis=1)
    if np.any(missing[~failed]):
        raise ValueError(f"{name}: a row is either all nan (failure) or has no nan")
    ok = prob[~failed]
    if ok.size and (not np.all(np.isfinite(ok)) or ok.min() < 0.0 or ok.max() > 1.0):
        raise ValueError(f"{name}: probabilities must lie in [0, 1]")
    return np.where(failed[:, None], 0.0, prob), ~failed


def prevalence(
    gold_ref: np.ndarray,
    gold_pred: np.ndarray,
    unlabeled_pred: np.ndarray,
    n_classes: int,
    level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> list[ClassPrevalence]:
    """Share of each class 0..K-1 among the unlabeled population, four ways.

    ``gold_ref``: reference codes of the gold items (-1 = no reference, dropped).
    ``gold_pred`` / ``unlabeled_pred``: the LLM's output on the gold / unlabeled items,
    either both hard codes (1-D, -1 = failed) or both probabilities (2-D, (m, K), all-nan
    row = failed); mixing the two would make f a different function on each side, which
    PPI cannot correct. Failures: see the module doc. ``clusters``: one cluster id per
    gold item (aligned with ``gold_ref``; None = independent items); the gold side's
    variance is then cluster-robust, the unlabeled items stay independent (module doc).
    """
    ref = validate_codes(gold_ref, n_classes, "gold_ref", ndim=1)
    if np.asarray(gold_pred).ndim != np.asarray(unlabeled_pred).ndim:
        raise ValueError("gold_pred and unlabeled_pred must both be codes or both probabilities")
    f_gold, answered_gold = _class_scores(gold_pred, n_classes, "gold_pred")
    f_unl, answered_unl = _class_scores(unlabeled_pred, n_classes, "unlabeled_pred")
    if f_gold.shape[0] != ref.size:
        raise ValueError(f"gold_ref and gold_pred differ in length: {ref.size} vs {len(f_gold)}")
    keep = ref >= 0
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.shape != ref.shape:
            raise ValueError(f"clusters must have one entry per gold item ({ref.size})")
        clusters = clusters[keep]
    y = (ref[keep, None] == np.arange(n_classes)).astype(float)
    f_gold, answered_gold = f_gold[keep], answered_gold[keep]
    n_failed_gold = int((~answered_gold).sum())
    n_failed_unl = int((~answered_unl).sum())
    rows = []
    for c in range(n_classes):
        yc, fg, fu = y[:, c], f_gold[:, c], f_unl[:, c]
        rows.append(
            ClassPrevalence(
                label=c,
                ppi=ppi_mean(yc, fg, fu, level, clusters=clusters),
                ppi_plus_plus=ppi_plus_plus(yc, fg, fu, level, clusters),
                naive=naive_mean(fu[answered_unl], level),
                classical=classical_mean(yc, level, clusters),
                n_failed_gold=n_failed_gold,
                n_failed_unlabeled=n_failed_unl,
            )
        )
    return rows
