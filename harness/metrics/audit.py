"""Production audit of routed pre-labels (issue 7 item 4): is the deployed setup still as
good as the evaluation said?

Each deployed item has a pre-label (LLM code, -1 = failed), a route ("accept" =
auto-accepted, "review" = sent to a reviewer who sees the pre-label), a ``blind`` flag and,
when a human looked at it, a human label (-1 = no human label yet). A share of the
auto-accepted items is sent *blind* to humans (labelled without seeing the pre-label), as
a uniform random sample: that is what makes its error rate an unbiased estimate of the
error among all auto-accepted items. Reviewers who see the pre-label are anchored by it,
so their agreement is reported as acceptance, never as accuracy.

Figures (each a ``Proportion`` carrying its count and n):

* accept_share: auto-accepted / all items (compare with the evaluation's coverage).
* acceptance: among review-route items shown the pre-label and already labelled, the
  share where the reviewer kept it (human == pre-label); correction = 1 - acceptance,
  same n. A failed pre-label (-1) that a human labelled counts as a correction. Blind
  review-route items are left out (the reviewer saw nothing to keep) and counted.
* realised_error: among blind auto-accepted items with a human label, the share where the
  human label differs from the pre-label. With no such item it is *unknown*: estimate
  and bounds are nan, n = 0, and a note says so; never 0.
* per class: the same, by ``classes`` (default: the pre-label, the class known when the
  item was routed; pass the human label to see it by true class). Items of class -1 count
  in the totals but have no row. An empty class has n = 0 and nan rates.

Intervals: Wilson score (default) or Clopper-Pearson (exact, conservative). Wilson keeps
sensible bounds at 0 or n events, where the Wald interval collapses to a point.

Comparison with the evaluation (``EvaluationEstimate``: the target alpha and the gold-set
errors among the items the deployed threshold would auto-accept, e.g. from
``selective.learn_then_test`` or better the held-out half of ``cross_fit_ltt``, since the
in-sample LTT error was used to pick the threshold and is optimistic):

* above_target = the realised error's interval lies entirely above alpha (low > alpha):
  the Learn-then-Test guarantee is shown to be broken on production data.
* above_evaluation = Newcombe's interval (built on Wilson intervals whatever ``method``)
  for (blind agreement - gold accuracy among accepted) lies entirely below 0 (high < 0):
  realised error minus gold error is shown to be > 0 (the Wilson interval of 1 - p is
  1 minus that of p, so the two differences have mirrored intervals). This uses both
  samples' noise, unlike comparing with the gold estimate as if it were exact. It can
  fire while the error is still below alpha: an early warning that production differs
  from the gold set.
* drift = above_target or above_evaluation; None when the realised error is unknown or no
  evaluation was given (not assessed, which is not the same as "no drift").

Agreement is compared like with like: blind items are drawn from auto-accepted items, so
the gold figure is the accuracy among gold items above the threshold, not the overall
accuracy. A two-sided interval at level 0.95 lying above a value is a one-sided test at
2.5 %; re-running the audit every week repeats that test, so expect an occasional false
flag over many audits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv, ndtri  # beta.ppf and norm.ppf of scipy.stats

from .accuracy import validate_codes

NAN = float("nan")
ROUTES = ("accept", "review")
METHODS = ("wilson", "clopper-pearson")


@dataclass(frozen=True)
class Proportion:
    """count / n with an interval [low, high] at ``level``; all nan when n = 0."""

    estimate: float
    low: float
    high: float
    count: int
    n: int
    level: float
    method: str


@dataclass(frozen=True)
class Difference:
    """p1 - p2 of two independent proportions (count1/n1 - count2/n2), Newcombe interval."""

    estimate: float
    low: float
    high: float
    count1: int
    n1: int
    count2: int
    n2: int
    level: float


@dataclass(frozen=True)
class EvaluationEstimate:
    """What the evaluation promised: target error ``alpha`` and, on the gold set, ``errors``
    among the ``n_accepted`` items the deployed threshold auto-accepts."""

    alpha: float
    errors: int
    n_accepted: int

    @classmethod
    def from_ltt(cls, result) -> EvaluationEstimate:
        """From a ``selective.LTTResult`` (in-sample; see the module doc)."""
        return cls(float(result.alpha), int(result.errors), int(result.n_accepted))

    @property
    def expected_error(self) -> float:
        return self.errors / self.n_accepted if self.n_accepted else NAN


@dataclass(frozen=True)
class ClassAudit:
    """Figures for items of class ``label``; ``n_items`` counts all of them, any route."""

    label: int
    n_items: int
    n_accepted: int
    acceptance: Proportion
    correction: Proportion
    realised_error: Proportion


@dataclass(frozen=True)
class Audit:
    """The audit; see the module doc for every definition. ``n_review_pending`` /
    ``n_blind_pending``: review-route / blind accepted items without a human label yet
    (left out of the rates); ``n_blind_review``: blind review-route items (left out)."""

    n_items: int
    accept_share: Proportion
    acceptance: Proportion
    correction: Proportion
    realised_error: Proportion
    n_review_pending: int
    n_blind_pending: int
    n_blind_review: int
    evaluation: EvaluationEstimate | None
    agreement_difference: Difference | None
    above_target: bool | None
    above_evaluation: bool | None
    drift: bool | None
    per_class: tuple[ClassAudit, ...]
    notes: tuple[str, ...]


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(ndtri(0.5 + level / 2.0))


def _counts(count: int, n: int) -> tuple[int, int]:
    count, n = int(count), int(n)
    if n < 0 or not 0 <= count <= n:
        raise ValueError(f"need 0 <= count <= n, got count={count}, n={n}")
    return count, n


def wilson_interval(count: int, n: int, level: float = 0.95) -> Proportion:
    """Wilson score interval: the p with |p_hat - p| <= z sqrt(p (1 - p) / n), i.e.
    center = (p_hat + z^2/2n) / (1 + z^2/n),
    half = z / (1 + z^2/n) * sqrt(p_hat (1 - p_hat) / n + z^2 / 4n^2)."""
    count, n = _counts(count, n)
    z = _z(level)
    if n == 0:
        return Proportion(NAN, NAN, NAN, 0, 0, level, "wilson")
    p = count / n
    shrink = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / shrink
    half = z / shrink * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Clip float noise: the exact bounds are 0 at count 0 and 1 at count n.
    low, high = max(0.0, center - half), min(1.0, center + half)
    return Proportion(p, float(low), float(high), count, n, level, "wilson")


def clopper_pearson_interval(count: int, n: int, level: float = 0.95) -> Proportion:
    """Exact (Clopper-Pearson) interval from Beta quantiles; never below nominal coverage."""
    count, n = _counts(count, n)
    _z(level)
    if n == 0:
        return Proportion(NAN, NAN, NAN, 0, 0, level, "clopper-pearson")
    tail = (1.0 - level) / 2.0
    low = 0.0 if count == 0 else float(betaincinv(count, n - count + 1, tail))
    high = 1.0 if count == n else float(betaincinv(count + 1, n - count, 1.0 - tail))
    return Proportion(count / n, low, high, count, n, level, "clopper-pearson")


def proportion(count: int, n: int, level: float = 0.95, method: str = "wilson") -> Proportion:
    """count / n with the interval of ``method`` ("wilson" | "clopper-pearson")."""
    if method == "wilson":
        return wilson_interval(count, n, level)
    if method == "clopper-pearson":
        return clopper_pearson_interval(count, n, level)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def newcombe_difference(
    count1: int, n1: int, count2: int, n2: int, level: float = 0.95
) -> Difference:
    """p1 - p2 with Newcombe's hybrid score interval (Newcombe 1998, method 10): with
    Wilson intervals [l1, u1], [l2, u2] of each proportion,
    low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2).
    nan when either n is 0."""
    a, b = wilson_interval(count1, n1, level), wilson_interval(count2, n2, level)
    if a.n == 0 or b.n == 0:
        return Difference(NAN, NAN, NAN, a.count, a.n, b.count, b.n, level)
    d = a.estimate - b.estimate
    # Clip float noise: a difference of proportions lies in [-1, 1].
    low = max(-1.0, d - float(np.hypot(a.estimate - a.low, b.high - b.estimate)))
    high = min(1.0, d + float(np.hypot(a.high - a.estimate, b.estimate - b.low)))
    return Difference(d, low, high, a.count, a.n, b.count, b.n, level)


def _inputs(pre_label, human_label, route, blind, classes, n_classes):
    pre = validate_codes(pre_label, n_classes, "pre_label", ndim=1)
    human = validate_codes(human_label, n_classes, "human_label", ndim=1)
    routes = np.asarray(route).astype(str)
    flags = np.asarray(blind)
    cls = pre if classes is None else validate_codes(classes, n_classes, "classes", ndim=1)
    if not pre.shape == human.shape == routes.shape == flags.shape == cls.shape:
        raise ValueError("pre_label, human_label, route, blind and classes must be equally long")
    bad = sorted(set(routes.tolist()) - set(ROUTES))
    if bad:
        raise ValueError(f"route must be one of {ROUTES}, got {bad}")
    if not np.all((flags == 0) | (flags == 1)):
        raise ValueError("blind must be boolean or 0/1")
    return pre, human, routes == "accept", flags.astype(bool), cls


def _rates(mask_shown, mask_blind, kept, wrong, level, method):
    """acceptance, correction and realised error over the items selected by the masks."""
    n_shown, n_kept = int(mask_shown.sum()), int((mask_shown & kept).sum())
    acceptance = proportion(n_kept, n_shown, level, method)
    correction = proportion(n_shown - n_kept, n_shown, level, method)
    n_blind = int(mask_blind.sum())
    error = proportion(int((mask_blind & wrong).sum()), n_blind, level, method)
    return acceptance, correction, error


def audit(
    pre_label: np.ndarray,
    human_label: np.ndarray,
    route: np.ndarray,
    blind: np.ndarray,
    n_classes: int,
    evaluation: EvaluationEstimate | None = None,
    classes: np.ndarray | None = None,
    level: float = 0.95,
    method: str = "wilson",
) -> Audit:
    """Audit reviewed production items (one entry per item in every array).

    ``route`` holds "accept" / "review"; ``blind`` is boolean; ``classes`` defaults to
    ``pre_label``. See the module doc for every figure and flag.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    pre, human, accepted, blind_, cls = _inputs(
        pre_label, human_label, route, blind, classes, n_classes
    )
    labelled = human >= 0
    kept = labelled & (human == pre)
    wrong = labelled & (human != pre)
    # Review-route items shown the pre-label and labelled; blind auto-accepted labelled.
    shown = ~accepted & ~blind_ & labelled
    blind_sample = accepted & blind_ & labelled
    acceptance, correction, realised = _rates(shown, blind_sample, kept, wrong, level, method)
    n_items = int(pre.size)
    notes: list[str] = []
    if not accepted.any():
        notes.append("no item was auto-accepted: realised error unknown")
    elif realised.n == 0:
        notes.append(
            "no blind sample of auto-accepted items with a human label: realised error "
            "unknown (not 0); send a random share of accepted items to blind review"
        )
    n_blind_pending = int((accepted & blind_ & ~labelled).sum())
    if n_blind_pending:
        notes.append(
            f"{n_blind_pending} blind items still lack a human label and are left out; if "
            "the hard ones are skipped, the realised error is underestimated"
        )

    difference, above_target, above_evaluation = None, None, None
    if evaluation is None:
        notes.append("no evaluation estimate given: drift not assessed")
    elif realised.n:
        above_target = bool(realised.low > evaluation.alpha)
        if evaluation.n_accepted:
            gold_correct = evaluation.n_accepted - evaluation.errors
            difference = newcombe_difference(
                realised.n - realised.count, realised.n, gold_correct, evaluation.n_accepted, level
            )
            above_evaluation = bool(difference.high < 0)
        else:
            notes.append("the evaluation auto-accepted no gold item: no estimate to compare with")
    flags = [f for f in (above_target, above_evaluation) if f is not None]
    drift = any(flags) if flags else None
    if above_target:
        notes.append(
            f"realised error interval [{realised.low:.3f}, {realised.high:.3f}] lies above "
            f"the target {evaluation.alpha:g}"
        )
    if above_evaluation:
        notes.append("blind agreement is below the gold-set accuracy among auto-accepted items")

    per_class = []
    for c in range(n_classes):
        in_c = cls == c
        acc_c, cor_c, err_c = _rates(shown & in_c, blind_sample & in_c, kept, wrong, level, method)
        per_class.append(
            ClassAudit(c, int(in_c.sum()), int((accepted & in_c).sum()), acc_c, cor_c, err_c)
        )
    return Audit(
        n_items=n_items,
        accept_share=proportion(int(accepted.sum()), n_items, level, method),
        acceptance=acceptance,
        correction=correction,
        realised_error=realised,
        n_review_pending=int((~accepted & ~blind_ & ~labelled).sum()),
        n_blind_pending=n_blind_pending,
        n_blind_review=int((~accepted & blind_).sum()),
        evaluation=evaluation,
        agreement_difference=difference,
        above_target=above_target,
        above_evaluation=above_evaluation,
        drift=drift,
        per_class=tuple(per_class),
        notes=tuple(notes),
    )
