"""Calibration of a pre-labeler's confidence in its own label (top-label calibration).

``confidence`` is the stated probability that the predicted label is right, in [0, 1];
``correct`` is 1/True when it was. Where the confidence comes from (renormalised label
log-probabilities, verbalized, self-consistency) is decided upstream. statistics.md 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BIN_STRATEGIES = ("uniform", "quantile")


@dataclass(frozen=True)
class Bin:
    """One reliability-diagram bin (low, high]; rates in [0, 1], ``n`` >= 1 items."""

    low: float
    high: float
    n: int
    mean_confidence: float
    accuracy: float


def _inputs(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct)
    if conf.ndim != 1 or hit.shape != conf.shape:
        raise ValueError(f"need two 1-D arrays of equal length, got {conf.shape}, {hit.shape}")
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidence must be finite and within [0, 1]")
    if hit.size and not np.all((hit == 0) | (hit == 1)):
        raise ValueError("correct must be boolean or 0/1")
    return conf, hit.astype(float)


def _bin_edges(conf: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        if conf.size == 0:  # no items, no quantiles: any edges bin nothing
            return np.linspace(0.0, 1.0, n_bins + 1)
        edges = np.quantile(conf, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
        return edges
    raise ValueError(f"strategy must be one of {BIN_STRATEGIES}, got {strategy!r}")


def _binned(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int, strategy: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edges (n_bins+1,) and per-bin count, confidence sum and hit sum (n_bins,)."""
    conf, hit = _inputs(confidence, correct)
    edges = _bin_edges(conf, n_bins, strategy)
    # Bins are (low, high], the first also holding 0: Guo et al.'s ((m-1)/M, m/M],
    # the same assignment as sklearn.calibration.calibration_curve.
    index = np.searchsorted(edges[1:-1], conf, side="left")
    count = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(index, weights=hit, minlength=n_bins)
    return edges, count, conf_sum, hit_sum


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10, strategy: str = "uniform"
) -> list[Bin]:
    """Non-empty bins of a reliability diagram, in order of confidence.

    ``strategy="uniform"``: n_bins equal-width bins on [0, 1] (Guo et al. 2017, "On
    Calibration of Modern Neural Networks"). ``"quantile"``: edges at the quantiles of
    ``confidence`` so bins hold about n / n_bins items (equal mass, Nixon et al. 2019,
    "Measuring Calibration in Deep Learning"); tied confidences always share a bin, so
    with many ties fewer, larger bins remain. Bins are (low, high], the first closed.
    """
    edges, count, conf_sum, hit_sum = _binned(confidence, correct, n_bins, strategy)
    return [
        Bin(
            low=float(edges[m]),
            high=float(edges[m + 1]),
            n=int(count[m]),
            mean_confidence=float(conf_sum[m] / count[m]),
            accuracy=float(hit_sum[m] / count[m]),
        )
        for m in np.flatnonzero(count)
    ]


def ece(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10, strategy: str = "uniform"
) -> float:
    """Expected calibration error, sum_m |B_m| / n * |acc(B_m) - conf(B_m)|, in [0, 1].

    Bins as in :func:`reliability_bins` (uniform: Guo et al. 2017; quantile: Nixon et
    al. 2019). Biased upward on small n; give it a bootstrap interval
    (``ece_intervals.ece_ci``; many at once: ``ece_resampling``). nan for empty input.
    """
    _, count, conf_sum, hit_sum = _binned(confidence, correct, n_bins, strategy)
    n = count.sum()
    if n == 0:
        return float("nan")
    return float(np.abs(hit_sum - conf_sum).sum() / n)


def ece_debiased_squared(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """Debiased estimate of the squared L2 calibration error over equal-width bins,
    sum_m |B_m| / n * [(acc_m - conf_m)^2 - acc_m (1 - acc_m) / (|B_m| - 1)], a bin of
    fewer than 2 items counting 0: Kumar, Liang & Ma (NeurIPS 2019, "Verified Uncertainty
    Calibration", section 5), their ``calibration`` package's ``unbiased_square_ce``.

    The plug-in (acc_m - conf_m)^2 overstates the true squared gap of a bin by the sampling
    variance of acc_m; subtracting its unbiased estimate removes that bias, so the result
    is about 0 on average for a calibrated model and can be negative (which
    ``ece_debiased`` clips). nan for empty input.
    """
    _, count, conf_sum, hit_sum = _binned(confidence, correct, n_bins, "uniform")
    n = count.sum()
    if n == 0:
        return float("nan")
    return float(_debiased_bins(count, hit_sum, hit_sum - conf_sum).sum() / n)


def _debiased_bins(count: np.ndarray, hit_sum: np.ndarray, gap_sum: np.ndarray) -> np.ndarray:
    """|B_m| times each bin's debiased squared gap (any leading shape; 0 below 2 items)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = hit_sum / count
        term = gap_sum**2 / count - count * acc * (1.0 - acc) / (count - 1.0)
    return np.where(count >= 2, term, 0.0)


def ece_debiased(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """The debiased L2 calibration error, sqrt(max(``ece_debiased_squared``, 0)) (Kumar et
    al. 2019's ``unbiased_l2_ce``), in [0, 1]; nan for empty input."""
    squared = ece_debiased_squared(confidence, correct, n_bins)
    return float(np.sqrt(max(squared, 0.0))) if np.isfinite(squared) else float("nan")


def brier_top_label(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Top-label Brier score mean((confidence - correct)^2), in [0, 1]; lower is better.

    Brier (1950) applied to the binary event "the predicted label is right". nan for
    empty input.
    """
    conf, hit = _inputs(confidence, correct)
    return float(np.mean((conf - hit) ** 2)) if conf.size else float("nan")


def log_loss_top_label(confidence: np.ndarray, correct: np.ndarray, eps: float = 1e-6) -> float:
    """Mean negative log-likelihood of correctness under the confidence, in nats (>= 0):
    -mean(c * log p + (1 - c) * log(1 - p)), with p clipped to [eps, 1 - eps] so a confident
    mistake costs log(1/eps) instead of infinity. nan for no items."""
    conf, corr = _inputs(confidence, correct)
    if conf.size == 0:
        return float("nan")
    p = np.clip(conf, eps, 1 - eps)
    return float(-np.mean(corr * np.log(p) + (1 - corr) * np.log(1 - p)))


def auroc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Area under the ROC curve of confidence as a detector of correct labels, in [0, 1]:
    the probability that a correct item has higher confidence than a wrong one, ties
    counting one half (the Mann-Whitney U statistic / (n_correct * n_wrong); Hanley & McNeil
    1982). 0.5 = confidence says nothing about correctness; nan if all right or all wrong."""
    conf, corr = _inputs(confidence, correct)
    n_pos = int(corr.sum())
    n_neg = int(corr.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # U = pairs (right, wrong) with the right one more confident, ties counting one half:
    # count them from the two sorted groups (exact integers, as the rank sum is).
    right, wrong = np.sort(conf[corr == 1]), np.sort(conf[corr == 0])
    below = int(np.searchsorted(wrong, right, side="left").sum())
    tied = int(np.searchsorted(wrong, right, side="right").sum()) - below
    return float((below + 0.5 * tied) / (n_pos * n_neg))
