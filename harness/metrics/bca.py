"""Bias-corrected and accelerated (BCa) bootstrap bounds (Efron 1987, "Better Bootstrap
Confidence Intervals", JASA 82:171-185; Efron & Tibshirani 1993, ch. 14), as
``scipy.stats.bootstrap(method="BCa")`` computes them (``scipy.stats._resampling``):

- bias correction z0 = Phi^-1(share of replicates below the estimate, ties counting one
  half);
- acceleration a = sum (mean - t_i)^3 / (6 (sum (mean - t_i)^2)^1.5) over the jackknife
  values t_i (the statistic with unit i left out);
- the bounds are the replicates' quantiles at Phi(z0 + (z0 + z) / (1 - a (z0 + z))) for
  z = Phi^-1(tail) and Phi^-1(1 - tail).

The jackknife of a contingency-table statistic needs one value per non-empty cell, not
per item: every item of a cell leaves the same table behind. ``weights`` carries how many
units share each jackknife value, so the sums above run over cells (or clusters).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri


def acceleration(jackknife: np.ndarray, weights: np.ndarray) -> float:
    """a from jackknife values (one per distinct left-out table) and how many units give
    each; undefined values (a statistic that is 0/0 without that unit) are left out, and
    a = 0 when the jackknife values do not vary (no skewness to correct)."""
    values = np.asarray(jackknife, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = ~np.isnan(values) & (w > 0)
    values, w = values[keep], w[keep]
    if w.sum() == 0:
        return 0.0
    d = (values * w).sum() / w.sum() - values
    spread = (w * d**2).sum()
    if spread <= 0 or not np.isfinite(spread):
        return 0.0
    return float((w * d**3).sum() / (6.0 * spread**1.5))


def bca_quantiles(
    estimate: float, replicates: np.ndarray, accel: float, level: float
) -> tuple[float, float]:
    """The two quantile levels of the replicates that bound the BCa interval at ``level``.

    z0 uses the mid-rank share of replicates below the estimate (as scipy does), kept
    within (1/(2B), 1 - 1/(2B)) so that a statistic whose every replicate lies on one side
    of the estimate (an accuracy of 1, where every replicate is 1 too, lies on neither)
    gives the extreme replicate instead of nan.
    """
    b = replicates.size
    share = ((replicates < estimate).sum() + (replicates <= estimate).sum()) / (2.0 * b)
    share = float(np.clip(share, 0.5 / b, 1.0 - 0.5 / b))
    z0 = float(ndtri(share))
    tail = (1.0 - level) / 2.0
    out = []
    for z in (ndtri(tail), ndtri(1.0 - tail)):
        shifted = z0 + z
        denominator = 1.0 - accel * shifted
        # Past the pole of the formula (|a| near 1, far beyond any table statistic) the
        # bound is the extreme replicate on its side.
        if denominator <= 0:
            out.append(0.0 if z < 0 else 1.0)
        else:
            out.append(float(ndtr(z0 + shifted / denominator)))
    return out[0], out[1]
