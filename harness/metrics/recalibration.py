"""Recalibration of top-label confidence, fitted on one part of the gold set and evaluated
on another (statistics.md section 5).

Inputs follow ``calibration.py``: ``conf`` is the stated probability that the predicted
label is right, in [0, 1]; ``correct`` is boolean or 0/1. Optionally ``probs`` (n x K) is
each item's distribution over the K allowed labels (rows sum to 1), of which ``conf`` is the
predicted label's entry, with ``ref_idx`` the reference label's column.

Methods:

- ``temperature``. With ``probs``: multi-class temperature scaling (Guo et al. 2017,
  "On Calibration of Modern Neural Networks"), p'_k proportional to p_k^(1/T), i.e.
  softmax(log p / T). T minimises the mean negative log-likelihood of the *reference* label
  under the scaled distribution. That is the proper scoring rule for the whole
  distribution and the objective of Guo et al.; the top-label event "predicted label is
  right" uses less of the information and is not convex in 1/T. Without ``probs``: binary
  temperature on the top-label confidence, c' = sigmoid(logit(c) / T), minimising the
  binary log loss of ``correct`` (Platt scaling without intercept). Either loss is convex
  in beta = 1/T, so a bounded scalar search finds the optimum; T is kept within
  [0.01, 100] (a note says when it hits a bound). T > 1 softens, T < 1 sharpens. Binary
  temperature keeps 0.5 at 0.5 and never moves a confidence across it, so it cannot
  repair a setup that is right less than half the time at c > 0.5; Platt can.
- ``platt``: unpenalised logistic regression of ``correct`` on logit(conf) (Platt 1999,
  without his target smoothing), c' = sigmoid(a * logit(c) + b). Perfectly separated data
  has no finite maximum; the slope is then capped and a note says so.
- ``isotonic``: ``sklearn.isotonic.IsotonicRegression(out_of_bounds="clip", y_min=0,
  y_max=1)`` of ``correct`` on ``conf`` (Zadrozny & Elkan 2002), computed the same way
  with scipy's PAVA (tests check it equals sklearn's); kept as its step function's
  thresholds (x, y) and applied by linear interpolation, as sklearn predicts.
  It overfits on small sets (below about 1,000 items).

Confidences are clipped to [1e-6, 1 - 1e-6] before logit, and label probabilities floored
at 1e-6 before log, the same eps as ``calibration.log_loss_top_label``: a label the
provider gave no mass is not treated as impossible.

Degenerate inputs do not raise: with only one class of ``correct`` every method returns
its identity (T = 1; a = 1, b = 0; x = y = (0, 1)); with a single distinct confidence
Platt returns the constant accuracy and isotonic its single step. ``Recalibrator.note``
says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, logit, logsumexp

from .recalibration_solvers import (
    _SLOPE_CAP,
    T_BOUNDS,
    isotonic_thresholds,
    newton_beta,
    newton_logistic,
    softplus,
)

METHODS = ("temperature", "platt", "isotonic")
EPS = 1e-6
_ONE_CLASS = "only one class of correct (all right or all wrong): nothing to fit, identity kept"


@dataclass(frozen=True)
class Recalibrator:
    """A fitted recalibration map; only the fields of its ``method`` are set.

    ``temperature`` with ``multiclass=True`` was fitted on label distributions and needs
    ``probs`` in :meth:`apply`. ``n`` is the number of items it was fitted on.
    """

    method: str
    temperature: float | None = None
    multiclass: bool = False
    a: float | None = None
    b: float | None = None
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    n: int = 0
    note: str | None = None

    def apply(self, conf: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        """Recalibrated confidence of the predicted label, one per item; nan stays nan.

        For multi-class temperature, ``conf[i]`` must be the predicted label's entry of
        ``probs[i]``: c' = exp(log c / T) / sum_k exp(log p_k / T).
        """
        c = np.asarray(conf, dtype=float)
        if c.ndim != 1:
            raise ValueError(f"conf must be 1-D, got shape {c.shape}")
        ok = ~np.isnan(c)
        if np.any((c[ok] < 0) | (c[ok] > 1)):
            raise ValueError("conf must be within [0, 1]")
        out = np.full(c.shape, np.nan)
        if self.method == "temperature" and self.multiclass:
            if probs is None:
                raise ValueError("this temperature was fitted on label distributions: pass probs")
            p = _check_probs(probs, c.size, c, rows=ok)
            ok &= ~np.isnan(p).any(axis=1)
            z = np.log(np.maximum(p[ok], EPS)) / self.temperature
            out[ok] = np.exp(np.log(np.maximum(c[ok], EPS)) / self.temperature - logsumexp(z, 1))
        elif self.method == "temperature":
            out[ok] = expit(_logit(c[ok]) / self.temperature)
        elif self.method == "platt":
            out[ok] = expit(self.a * _logit(c[ok]) + self.b)
        elif self.method == "isotonic":
            # np.interp holds the end values outside [x0, x_last]: out_of_bounds="clip".
            out[ok] = np.interp(c[ok], self.x, self.y)
        else:
            raise ValueError(f"unknown method {self.method!r}")
        return out

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: full-precision floats (json's float repr round-trips exactly)."""
        d: dict[str, Any] = {"method": self.method}
        if self.method == "temperature":
            d |= {"temperature": self.temperature, "multiclass": self.multiclass}
        elif self.method == "platt":
            d |= {"a": self.a, "b": self.b}
        else:
            d |= {"x": list(self.x), "y": list(self.y)}
        return d | {"n": self.n, "note": self.note}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Recalibrator:
        method = d["method"]
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        opt = {k: (None if d.get(k) is None else float(d[k])) for k in ("temperature", "a", "b")}
        return cls(
            method=method,
            multiclass=bool(d.get("multiclass", False)),
            x=tuple(float(v) for v in d.get("x", ())),
            y=tuple(float(v) for v in d.get("y", ())),
            n=int(d.get("n", 0)),
            note=d.get("note"),
            **opt,
        )


def _logit(c: np.ndarray) -> np.ndarray:
    return logit(np.clip(c, EPS, 1 - EPS))


def _check_probs(
    probs: np.ndarray, n: int, conf: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """Validate an n x K label distribution matrix; nan rows are allowed outside ``rows``."""
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 2:
        raise ValueError(f"probs must be (n={n}, K>=2), got shape {p.shape}")
    use = np.ones(n, bool) if rows is None else rows
    use = use & ~np.isnan(p).any(axis=1)
    q = p[use]
    if not np.all(np.isfinite(q)) or np.any(q < 0) or not np.allclose(q.sum(1), 1, atol=1e-4):
        raise ValueError("probs rows must be finite, non-negative and sum to 1")
    # conf must be one of the row's entries (the predicted label's), else the scaled
    # confidence would belong to no label: catches e.g. self-consistency conf mixed in.
    if not np.all(np.isclose(q, conf[use, None], rtol=0, atol=1e-4).any(axis=1)):
        raise ValueError("each conf must equal its predicted label's entry in probs")
    return p


def _inputs(
    conf: np.ndarray,
    correct: np.ndarray,
    probs: np.ndarray | None,
    ref_idx: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    c = np.asarray(conf, dtype=float)
    hit = np.asarray(correct)
    if c.ndim != 1 or hit.shape != c.shape or c.size == 0:
        raise ValueError(f"need two non-empty 1-D arrays of equal length, {c.shape}, {hit.shape}")
    if not np.all(np.isfinite(c)) or c.min() < 0 or c.max() > 1:
        raise ValueError("conf must be finite and within [0, 1]")
    if not np.all((hit == 0) | (hit == 1)):
        raise ValueError("correct must be boolean or 0/1")
    if probs is None:
        return c, hit.astype(float), None, None
    p = _check_probs(probs, c.size, c)
    if np.isnan(p).any():
        raise ValueError("probs must be given for every item")
    if ref_idx is None:
        raise ValueError("multi-class temperature needs ref_idx, the reference label's column")
    ref = np.asarray(ref_idx)
    if ref.shape != c.shape or ref.min() < 0 or ref.max() >= p.shape[1]:
        raise ValueError(f"ref_idx must hold one column index in 0..{p.shape[1] - 1} per item")
    return c, hit.astype(float), p, ref.astype(np.int64)


def _fit_temperature(
    c: np.ndarray,
    hit: np.ndarray,
    p: np.ndarray | None,
    ref: np.ndarray | None,
    start: Recalibrator | None = None,
) -> Recalibrator:
    n = c.size
    if p is None:
        z = _logit(c)

        def loss(beta: float) -> float:  # binary log loss of sigmoid(beta * z)
            return float(np.mean(softplus(beta * z) - hit * beta * z))

        flat = not np.any(z)
    else:
        zk = np.log(np.maximum(p, EPS))
        z_ref = zk[np.arange(n), ref]

        def loss(beta: float) -> float:  # NLL of the reference label under softmax(beta * zk)
            return float(np.mean(logsumexp(beta * zk, axis=1) - beta * z_ref))

        flat = np.all(zk.max(1) == zk.min(1))
    multi = p is not None
    if flat:
        note = "every item's distribution is uniform: temperature has no effect, T = 1 kept"
        return Recalibrator("temperature", temperature=1.0, multiclass=multi, n=n, note=note)
    if p is None:  # binary: damped Newton on the convex loss, a few passes over n
        warm = start is not None and start.temperature and not start.multiclass
        beta = newton_beta(z, hit, loss, 1 / start.temperature if warm else 1.0)
        if beta is not None:
            return Recalibrator("temperature", temperature=1 / beta, multiclass=False, n=n)
    # Convex in beta, hence unimodal in log(beta): bounded Brent search on log(beta).
    lo, hi = -np.log(T_BOUNDS[1]), -np.log(T_BOUNDS[0])
    res = minimize_scalar(
        lambda u: loss(np.exp(u)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}
    )
    t = float(np.exp(-res.x))
    note = None
    if min(res.x - lo, hi - res.x) < 1e-6:
        note = f"T = {t:.3g} is at the bound of its search range {T_BOUNDS}"
    return Recalibrator("temperature", temperature=t, multiclass=multi, n=n, note=note)


def _fit_platt(c: np.ndarray, hit: np.ndarray, start: Recalibrator | None = None) -> Recalibrator:
    n = c.size
    z = _logit(c)
    mu, sd = float(z.mean()), float(z.std())
    if np.all(z == z[0]):  # not sd == 0: the std of equal values can be a rounding residue
        note = "a single distinct confidence: constant output = the accuracy"
        return Recalibrator("platt", a=0.0, b=float(logit(hit.mean())), n=n, note=note)
    s = (z - mu) / sd  # standardised for conditioning; mapped back below

    def nll(w: np.ndarray) -> tuple[float, np.ndarray]:
        eta = w[0] * s + w[1]
        r = expit(eta) - hit
        return float(np.mean(softplus(eta) - hit * eta)), np.array([np.mean(r * s), np.mean(r)])

    w0 = np.array([1.0, 0.0])
    if start is not None and start.a is not None and start.b is not None:
        # The nearby fit's map, in this fit's standardised coordinates.
        warm = np.array([start.a * sd, start.b + start.a * mu])
        if np.all(np.isfinite(warm)) and abs(warm[0]) < _SLOPE_CAP:
            w0 = warm
    w = newton_logistic(s, hit, w0)
    if w is None:  # no interior optimum within the cap (e.g. separable): bounded search
        res = minimize(
            nll,
            x0=np.array([1.0, 0.0]),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_SLOPE_CAP, _SLOPE_CAP), (None, None)],
            options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10_000},
        )
        w = res.x
    a_std, b_std = (float(v) for v in w)
    note = None
    if abs(a_std) >= _SLOPE_CAP * (1 - 1e-9):
        note = "confidence separates right from wrong perfectly: slope capped (no finite MLE)"
    elif a_std < 0:
        note = "negative slope: higher confidence goes with more errors"
    return Recalibrator("platt", a=a_std / sd, b=b_std - a_std * mu / sd, n=n, note=note)


def _fit_isotonic(c: np.ndarray, hit: np.ndarray, order: np.ndarray | None = None) -> Recalibrator:
    xs, ys = isotonic_thresholds(c, hit, order)
    x = tuple(float(v) for v in xs)
    y = tuple(float(v) for v in ys)
    note = "a single distinct confidence: constant output = the accuracy" if len(x) == 1 else None
    return Recalibrator("isotonic", x=x, y=y, n=c.size, note=note)


def identity(
    method: str, multiclass: bool = False, n: int = 0, note: str | None = None
) -> Recalibrator:
    """The recalibrator of ``method`` that changes nothing (up to the eps clipping)."""
    if method == "temperature":
        return Recalibrator(method, temperature=1.0, multiclass=multiclass, n=n, note=note)
    if method == "platt":
        return Recalibrator(method, a=1.0, b=0.0, n=n, note=note)
    if method == "isotonic":
        return Recalibrator(method, x=(0.0, 1.0), y=(0.0, 1.0), n=n, note=note)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def fit_recalibrator(
    method: str,
    conf: np.ndarray,
    correct: np.ndarray,
    probs: np.ndarray | None = None,
    ref_idx: np.ndarray | None = None,
    start: Recalibrator | None = None,
) -> Recalibrator:
    """Fit ``method`` on all given items (see module doc).

    ``probs`` (n x K, with ``ref_idx``) makes temperature scaling multi-class; Platt and
    isotonic use ``conf`` only and ignore them. ``start``: a fit of the same method on
    mostly the same items (all gold items, for a cross-fit fold): binary temperature and
    Platt start their Newton steps from it. The optimum is the same; it takes fewer passes.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method != "temperature":
        probs = ref_idx = None
    if start is not None and start.method != method:
        raise ValueError(f"start must be a {method} fit, got {start.method}")
    return _fit(method, *_inputs(conf, correct, probs, ref_idx), start)


def _fit(
    method: str,
    c: np.ndarray,
    hit: np.ndarray,
    p: np.ndarray | None,
    ref: np.ndarray | None,
    start: Recalibrator | None = None,
    order: np.ndarray | None = None,
) -> Recalibrator:
    """``fit_recalibrator`` on validated inputs (``order``: isotonic's sort, if known)."""
    if hit.min() == hit.max():
        return identity(method, p is not None, c.size, _ONE_CLASS)
    if method == "temperature":
        return _fit_temperature(c, hit, p, ref, start)
    if method == "platt":
        return _fit_platt(c, hit, start)
    return _fit_isotonic(c, hit, order)
