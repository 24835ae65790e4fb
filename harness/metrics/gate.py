"""A noise-aware regression gate: candidate vs committed baseline on the same items.

statistics.md section 8. A gate that compares point estimates flaps: on a few hundred
gold items a rerun moves accuracy by a point or two by chance. So a metric fails only
when the *paired* bootstrap interval of the change shows a real drop that also matters:

    drop = worsening of the metric (baseline - candidate when higher is better),
    [drop_low, drop_high] = its paired percentile bootstrap interval (items resampled
    once per replicate and applied to both setups, statistics.md section 4).

    fail  when drop_low > 0 (the interval excludes no drop) and drop > tolerance,
          or when the candidate's own interval crosses an absolute ``floor`` (its lower
          bound is below the floor; its upper bound above it when lower is better);
    warn  otherwise when drop_high > tolerance: a drop beyond the tolerance is possible
          but not shown (the interval contains the tolerance); also when the change or
          the candidate's bound cannot be computed;
    pass  otherwise.

"warn" uses drop_high > tolerance (strict), not "contains": with tolerance 0 an unchanged
candidate has interval [0, 0], which would otherwise warn on every rerun. A candidate
whose predictions (or values) equal the baseline's on every item skips the drop rule
altogether, so a rerun of the same setup never fails or warns on it; the floor still
applies (it is a product requirement, not a regression, so an unchanged baseline that
is already under the floor fails on rerun too, deterministically). Given the same
inputs and ``seed`` the verdict is always the same.

Scalar rates (parse-failure rate, cost per item) have no per-item pairing here, so they
get a plain rule: fail when candidate > baseline * (1 + relative) + absolute. The
absolute part matters when the baseline is 0: one parse failure would otherwise fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .accuracy import confusion
from .agreement import kappa_from_confusion
from .intervals import Interval, bootstrap_items

VERDICTS = ("pass", "warn", "fail")


@dataclass(frozen=True)
class Flips:
    """Items whose prediction changed between baseline and candidate (original indices).

    With a reference: ``fixed`` = baseline wrong, candidate right; ``broken`` = baseline
    right, candidate wrong; ``changed`` = both wrong (or the item has no reference).
    With per-item values instead: ``fixed`` = improved, ``broken`` = worsened (in the
    metric's good direction), ``changed`` is empty.
    """

    fixed: tuple[int, ...]
    broken: tuple[int, ...]
    changed: tuple[int, ...]

    @property
    def n_flipped(self) -> int:
        return len(self.fixed) + len(self.broken) + len(self.changed)


@dataclass(frozen=True)
class MetricGate:
    """Verdict for one metric; ``reasons`` says why (empty for a plain pass).

    ``change`` = candidate - baseline with its paired interval; ``drop`` and
    [``drop_low``, ``drop_high``] = the same in the worsening direction (positive =
    worse). ``candidate_interval`` is the candidate's own interval (for the floor).
    ``n`` = items compared (items without a reference are dropped).
    """

    name: str
    verdict: str
    reasons: tuple[str, ...]
    baseline: float
    candidate: float
    change: Interval
    candidate_interval: Interval
    drop: float
    drop_low: float
    drop_high: float
    tolerance: float
    floor: float | None
    higher_is_better: bool
    flips: Flips
    n: int


@dataclass(frozen=True)
class RateGate:
    """Verdict for a scalar rate where lower is better: fail iff candidate > ``limit``,
    ``limit`` = baseline * (1 + relative_tolerance) + absolute_tolerance."""

    name: str
    verdict: str
    reason: str
    baseline: float
    candidate: float
    limit: float
    relative_tolerance: float
    absolute_tolerance: float


def accuracy_metric(reference: np.ndarray, prediction: np.ndarray) -> float:
    """End-to-end accuracy: share of items with prediction == reference (-1 is wrong)."""
    return float(np.mean(prediction == reference)) if reference.size else float("nan")


def kappa_metric(
    n_classes: int, weights: str | None = None
) -> Callable[[np.ndarray, np.ndarray], float]:
    """Cohen's kappa as a gate metric, end-to-end: a failure is its own never-matching
    category (as ``intervals.kappa_ci``). ``weights`` None | "linear" | "quadratic"."""

    def kappa(reference: np.ndarray, prediction: np.ndarray) -> float:
        return float(kappa_from_confusion(confusion(reference, prediction, n_classes), weights))

    return kappa


def flip_items(reference: np.ndarray, baseline: np.ndarray, candidate: np.ndarray) -> Flips:
    """Split the items whose prediction changed into fixed / broken / changed."""
    ref, base, cand = (np.asarray(a) for a in (reference, baseline, candidate))
    if not ref.shape == base.shape == cand.shape or ref.ndim != 1:
        raise ValueError("reference, baseline and candidate must be 1-D of equal length")
    moved = base != cand
    scored = ref >= 0
    base_right = scored & (base == ref)
    cand_right = scored & (cand == ref)
    return Flips(
        fixed=_indices(moved & cand_right & ~base_right),
        broken=_indices(moved & base_right & ~cand_right),
        changed=_indices(moved & ~base_right & ~cand_right),
    )


def _indices(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.flatnonzero(mask))


def _value_flips(baseline: np.ndarray, candidate: np.ndarray, higher_is_better: bool) -> Flips:
    better = candidate > baseline if higher_is_better else candidate < baseline
    worse = candidate < baseline if higher_is_better else candidate > baseline
    return Flips(fixed=_indices(better), broken=_indices(worse), changed=())


def gate_metric(
    name: str,
    baseline: np.ndarray,
    candidate: np.ndarray,
    tolerance: float,
    floor: float | None = None,
    higher_is_better: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    *,
    reference: np.ndarray | None = None,
    metric: Callable[..., float] | None = None,
    clusters: np.ndarray | None = None,
) -> MetricGate:
    """Gate one metric of ``candidate`` against ``baseline`` on the same items.

    Two input modes:

    * predictions: pass ``reference`` (codes, -1 = no reference: item dropped) and the
      two setups' predictions (-1 = failure). ``metric(reference, prediction) -> float``
      is recomputed on every resample, so non-additive metrics work
      (:func:`kappa_metric`); default :func:`accuracy_metric`.
    * per-item values: no ``reference``; ``baseline``/``candidate`` are per-item values
      (0/1 correctness, absolute error, ...) and ``metric(values) -> float`` defaults
      to the mean.

    ``tolerance`` (>= 0) is in the metric's units; ``floor`` is an absolute bound on the
    candidate's interval. Rules: module docstring. ``clusters`` resamples groups.
    """
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    base, cand = np.asarray(baseline), np.asarray(candidate)
    if base.ndim != 1 or base.shape != cand.shape:
        raise ValueError("baseline and candidate must be 1-D arrays of equal length")
    group = None if clusters is None else np.asarray(clusters)
    if group is not None and group.shape != base.shape:
        raise ValueError("clusters must have one entry per item")
    if reference is None:
        flips = _value_flips(base, cand, higher_is_better)
        ref = None
    else:
        ref = np.asarray(reference)
        flips = flip_items(ref, base, cand)
        keep = ref >= 0  # items without a reference cannot be scored
        ref, base, cand = ref[keep], base[keep], cand[keep]
        group = None if group is None else group[keep]

    def score(values: np.ndarray, index: np.ndarray) -> float:
        if ref is None:
            return float(np.mean(values[index]) if metric is None else metric(values[index]))
        return float((metric or accuracy_metric)(ref[index], values[index]))

    n = int(base.size)
    if n == 0:
        raise ValueError(f"gate {name!r}: no items to compare")

    def change_of(index: np.ndarray) -> float:
        return score(cand, index) - score(base, index)

    # The same seed draws the same resamples for both, so the candidate's interval and
    # the change come from identical item draws.
    change = bootstrap_items(change_of, n, n_boot, seed, level, group)
    cand_ci = bootstrap_items(lambda index: score(cand, index), n, n_boot, seed, level, group)
    base_value = score(base, np.arange(n))

    sign = 1.0 if higher_is_better else -1.0
    drop = -sign * change.estimate
    drop_low, drop_high = sorted((-sign * change.low, -sign * change.high))
    fails: list[str] = []
    warns: list[str] = []
    if np.array_equal(base, cand):
        pass  # identical answers: nothing changed, the drop rule cannot apply
    elif not (math.isfinite(drop) and math.isfinite(drop_low) and math.isfinite(drop_high)):
        warns.append(f"{name}: change could not be computed on these items")
    elif drop_low > 0 and drop > tolerance:
        fails.append(
            f"{name} dropped by {drop:.4g} (interval of the drop [{drop_low:.4g}, "
            f"{drop_high:.4g}] excludes 0), more than the tolerance {tolerance:.4g}"
        )
    elif drop_high > tolerance:
        warns.append(
            f"{name} may have dropped by more than the tolerance {tolerance:.4g}: interval "
            f"of the drop [{drop_low:.4g}, {drop_high:.4g}], estimate {drop:.4g}"
        )
    if floor is not None:
        bound = cand_ci.low if higher_is_better else cand_ci.high
        crossed = bound < floor if higher_is_better else bound > floor
        side = "lower" if higher_is_better else "upper"
        if math.isnan(bound):
            warns.append(f"{name}: the candidate's interval is undefined, floor not checked")
        elif crossed:
            fails.append(f"{name}: candidate's {side} bound {bound:.4g} crosses floor {floor:.4g}")
    verdict = "fail" if fails else "warn" if warns else "pass"
    return MetricGate(
        name=name,
        verdict=verdict,
        reasons=tuple(fails + warns),
        baseline=base_value,
        candidate=cand_ci.estimate,
        change=change,
        candidate_interval=cand_ci,
        drop=drop,
        drop_low=drop_low,
        drop_high=drop_high,
        tolerance=float(tolerance),
        floor=floor,
        higher_is_better=higher_is_better,
        flips=flips,
        n=n,
    )


def gate_rate(
    name: str,
    baseline: float,
    candidate: float,
    relative_tolerance: float = 0.0,
    absolute_tolerance: float = 0.0,
) -> RateGate:
    """Gate a scalar rate where lower is better (parse-failure rate, cost per item).

    fail iff candidate > baseline * (1 + relative_tolerance) + absolute_tolerance, else
    pass; an equal candidate (a rerun) always passes. "warn" when either value is nan
    (e.g. cost not reported): the rule cannot be applied, which is not a regression.
    """
    if relative_tolerance < 0 or absolute_tolerance < 0:
        raise ValueError("tolerances must be >= 0")
    base, cand = float(baseline), float(candidate)
    limit = base * (1.0 + relative_tolerance) + absolute_tolerance
    if math.isnan(base) or math.isnan(cand):
        verdict, reason = "warn", f"{name}: not measured for both setups"
    elif cand > limit:
        verdict, reason = "fail", f"{name} rose from {base:.4g} to {cand:.4g} > limit {limit:.4g}"
    else:
        verdict, reason = "pass", ""
    return RateGate(
        name=name,
        verdict=verdict,
        reason=reason,
        baseline=base,
        candidate=cand,
        limit=limit,
        relative_tolerance=float(relative_tolerance),
        absolute_tolerance=float(absolute_tolerance),
    )
