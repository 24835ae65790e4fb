"""The solvers behind ``recalibration``'s fits: damped Newton for binary temperature and
for Platt scaling, and scikit-learn's isotonic thresholds by scipy's PAVA. Each fit is a
handful of passes over up to 100,000 items, run 18 times per setup (three methods, on all
items and on five cross-fit folds), so these are written for few passes."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

T_BOUNDS = (0.01, 100.0)
_SLOPE_CAP = 50.0  # on the standardised logit: far beyond any real calibration slope
# A Newton step whose predicted decrease of a mean log loss is below this cannot be checked
# against the loss (its rounding noise is about 1e-16 per unit).
_UNSEEN_DECREASE = 1e-14


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) = ``np.logaddexp(0, x)`` by the same formula, in vectorised steps (half
    the time of logaddexp's scalar loop: the fits evaluate it a few dozen times per set)."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def newton_beta(z: np.ndarray, hit: np.ndarray, loss, beta: float = 1.0) -> float | None:
    """The minimiser beta of the convex binary loss by Newton's method from ``beta`` (1, or
    a nearby fit's), each step halved until it stays inside the temperature bounds and
    lowers the loss; None (the bounded search then decides, and notes a bound) if it does
    not settle inside them. A handful of passes over the items instead of about 20."""
    low, high = 1 / T_BOUNDS[1], 1 / T_BOUNDS[0]
    if not low < beta < high:
        beta = 1.0
    current = loss(beta)
    for _ in range(100):
        s = 0.5 * (1.0 + np.tanh(0.5 * beta * z))  # sigmoid(beta z) without overflow
        grad = float(np.mean((s - hit) * z))
        curv = float(np.mean(s * (1.0 - s) * z * z))
        if not curv > 0:
            return None
        step = grad / curv
        if abs(step) <= 1e-12 * beta or (
            grad * step < _UNSEEN_DECREASE and low < beta - step < high
        ):  # converged, or too close for the loss to tell (see newton_logistic)
            beta -= step
            if abs(step) <= 1e-12 * beta:
                return None if min(beta / low, high / beta) < 1 + 1e-6 else beta
            continue
        for _ in range(60):
            new = beta - step
            if low < new < high and (value := loss(new)) <= current:
                break
            step /= 2
        else:
            return None
        beta, current = new, value
        if abs(step) <= 1e-12 * beta:
            # At (or pressing against) a bound, let the bounded search say so.
            return None if min(beta / low, high / beta) < 1 + 1e-6 else beta
    return None


def newton_logistic(s: np.ndarray, hit: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """The maximum-likelihood (slope, intercept) of hit ~ sigmoid(slope * s + intercept) by
    Newton's method with step halving, from ``w``: a handful of passes over the items where
    a quasi-Newton search takes hundreds (a second per fit at 100,000 items). None when it
    does not settle inside the slope cap (separable data has no finite optimum)."""

    def nll(v: np.ndarray) -> float:
        eta = v[0] * s + v[1]
        return float(np.mean(softplus(eta) - hit * eta))

    current = nll(w)
    for _ in range(100):
        p = expit(w[0] * s + w[1])
        r, q = p - hit, p * (1.0 - p)
        grad = np.array([np.mean(r * s), np.mean(r)])
        qs = q * s
        hess = np.array([[np.mean(qs * s), np.mean(qs)], [np.mean(qs), np.mean(q)]])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return None
        if np.max(np.abs(step)) < 1e-12:  # converged
            w = w - step
            return None if abs(w[0]) >= _SLOPE_CAP else w
        if float(grad @ step) < _UNSEEN_DECREASE:
            # So close that the loss cannot see the step (its predicted decrease is below
            # rounding): halving would chase noise for dozens of passes. Newton's full step
            # is safe this close; the next one is below 1e-12.
            w = w - step
            continue
        t = 1.0
        while t > 1e-10:  # halve until the log loss does not rise (Newton can overshoot)
            trial = w - t * step
            value = nll(trial)
            if value <= current:
                break
            t /= 2
        else:
            return None
        w, current = trial, value
        if abs(w[0]) >= _SLOPE_CAP:
            return None
        if np.max(np.abs(t * step)) < 1e-12 or np.max(np.abs(grad)) < 1e-13:
            return w
    return None


def isotonic_thresholds(
    c: np.ndarray, hit: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(c, hit)``'s
    ``X_thresholds_`` and ``y_thresholds_``, step by step as scikit-learn 1.x computes them
    (sort, average ``hit`` over equal confidences, scipy's PAVA, clip, drop the interior
    points of flat runs), without importing scikit-learn (a quarter second per process).
    ``order``: ``np.lexsort((hit, c))``, if known (cross-fit sorts all items once)."""
    from scipy.optimize import isotonic_regression

    order = np.lexsort((hit, c)) if order is None else order
    x, y = c[order], hit[order]
    # sklearn's _make_unique: a new value starts where x - (its group's first x) >= eps.
    eps = np.finfo(np.float64).resolution
    gaps = np.diff(x)
    if np.any((gaps > 0) & (gaps < eps)):  # near-equal values: merge as sklearn's loop does
        starts, first = [0], x[0]
        for j in range(1, x.size):
            if x[j] - first >= eps:
                starts.append(j)
                first = x[j]
        start = np.array(starts)
    else:
        start = np.concatenate([[0], np.flatnonzero(gaps >= eps) + 1])
    weight = np.diff(np.append(start, x.size)).astype(np.float64)
    unique_x = x[start]
    unique_y = np.add.reduceat(y, start) / weight  # 0/1 sums: exact, as sklearn's
    fitted = np.asarray(isotonic_regression(unique_y, weights=weight, increasing=True).x)
    np.clip(fitted, 0.0, 1.0, fitted)
    keep = np.ones(fitted.size, dtype=bool)
    keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return unique_x[keep], fitted[keep]
