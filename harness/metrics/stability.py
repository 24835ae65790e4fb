"""Stability of a pre-labeler's answers (statistics.md section 11).

Barrie, Palaiologou, Tornberg (2024), "Prompt Stability Scoring for Text Annotation with
LLMs", arXiv 2407.02039: treat repeated runs of a setup as coders and measure their
agreement with Krippendorff's alpha.

* Intra-prompt: the same setup sampled k times (temperature > 0): labels (n_items, k).
* Inter-prompt: v paraphrased prompt variants: labels (n_items, v), plus the reference
  so that the accuracy each variant would have reached is shown next to its agreement.

Codes 0..K-1, -1 = missing or failed answer. A failure is treated as a missing rating
for alpha, the flip rate and the disagreement rate (alpha cannot place a failure on the
scale); ``failure_rate`` reports how many there were, and accuracy counts them as wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .accuracy import validate_codes
from .agreement import item_label_counts, krippendorff_alpha, reliability_matrix
from .intervals import Interval, bootstrap_items

STABILITY_LEVELS = ("nominal", "ordinal")


@dataclass(frozen=True)
class RunAgreement:
    """Agreement of repeated answers (runs or variants as coders) on the same items.

    ``alpha``: Krippendorff's alpha with the runs as coders, over the ``n_alpha`` items
    with >= 2 answered runs (``alpha_ci`` resamples all items). ``flip_rate``: share of
    those ``n_alpha`` items whose answers are not all equal. ``disagreement_rate``: per
    item, the share of pairs of answered runs that differ, averaged over the same items
    (with no missing answers, the mean over pairs of runs of their disagreement rate).
    ``failure_rate``: share of the n_items x n_runs answers that are -1.
    """

    alpha: float
    alpha_ci: Interval
    flip_rate: float
    disagreement_rate: float
    failure_rate: float
    n_items: int
    n_alpha: int
    n_runs: int
    level: str


@dataclass(frozen=True)
class VariantAccuracy:
    """End-to-end accuracy of one prompt variant on the ``n`` items with a reference."""

    variant: int
    accuracy: float
    n: int


@dataclass(frozen=True)
class InterPromptStability:
    """Agreement across prompt variants plus each variant's accuracy.

    ``agreement`` as for intra-prompt runs, with the variants as runs. ``accuracy_range``
    = max - min of the variants' accuracies, ``accuracy_std`` their sample standard
    deviation (ddof = 1: the variants are a sample of the paraphrases one could write).
    ``n_reference`` = items with a reference (the accuracy denominator).
    """

    agreement: RunAgreement
    per_variant: list[VariantAccuracy]
    accuracy_range: float
    accuracy_std: float
    n_reference: int


def _check_level(level: str) -> None:
    if level not in STABILITY_LEVELS:
        raise ValueError(f"level must be one of {STABILITY_LEVELS}, got {level!r}")


def run_agreement(
    labels: np.ndarray,
    n_classes: int,
    level: str = "nominal",
    n_boot: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> RunAgreement:
    """Alpha, flip rate and pairwise disagreement of ``labels`` (n_items, n_runs).

    ``level`` is the alpha level ("nominal" or "ordinal", codes in scale order). The
    interval of alpha is a percentile bootstrap over items (``intervals.bootstrap_items``;
    ``clusters`` resamples groups of items together); replicates where alpha is undefined
    are dropped. Raises ValueError with fewer than 2 runs.
    """
    _check_level(level)
    answers = validate_codes(labels, n_classes, "labels", ndim=2)
    n_items, n_runs = answers.shape
    if n_runs < 2:
        raise ValueError(f"stability needs >= 2 runs or variants (columns), got {n_runs}")
    reliability = reliability_matrix(answers)  # (runs, items): the runs are the coders

    def alpha_of(index: np.ndarray) -> float:
        return krippendorff_alpha(reliability[:, index], level, n_values=n_classes)

    alpha_ci = bootstrap_items(alpha_of, n_items, n_boot, seed, ci_level, clusters)

    counts = item_label_counts(answers, n_classes)
    answered = counts.sum(axis=1)
    pairable = answered >= 2
    m, c = answered[pairable], counts[pairable]
    # Distinct values among the answers: more than one means the item flipped.
    flips = (c > 0).sum(axis=1) > 1
    agreeing_pairs = (c * (c - 1)).sum(axis=1) / (m * (m - 1))
    n_alpha = int(pairable.sum())
    return RunAgreement(
        alpha=alpha_ci.estimate,
        alpha_ci=alpha_ci,
        flip_rate=float(flips.mean()) if n_alpha else float("nan"),
        disagreement_rate=float((1.0 - agreeing_pairs).mean()) if n_alpha else float("nan"),
        failure_rate=float((answers < 0).mean()) if answers.size else float("nan"),
        n_items=n_items,
        n_alpha=n_alpha,
        n_runs=n_runs,
        level=level,
    )


def intra_prompt_stability(
    samples: np.ndarray,
    n_classes: int,
    level: str = "nominal",
    n_boot: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> RunAgreement:
    """Stability of one setup sampled k times: ``samples`` is (n_items, k).

    Barrie et al. (2024)'s intra-prompt stability: alpha across the k samples, with the
    flip rate and the mean pairwise disagreement (see :class:`RunAgreement`).
    """
    return run_agreement(samples, n_classes, level, n_boot, seed, ci_level, clusters)


def inter_prompt_stability(
    variants: np.ndarray,
    reference: np.ndarray,
    n_classes: int,
    level: str = "nominal",
    n_boot: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> InterPromptStability:
    """Stability across v prompt variants: ``variants`` (n_items, v), ``reference`` (n,).

    Alpha, flip rate and disagreement across the variants (all items, the reference is
    not needed for them), and each variant's end-to-end accuracy on the items whose
    reference is >= 0 (a failure is wrong), with their range and standard deviation: a
    wide spread says the choice of paraphrase alone moves the headline number.
    """
    answers = validate_codes(variants, n_classes, "variants", ndim=2)
    truth = validate_codes(reference, n_classes, "reference", ndim=1)
    if truth.shape[0] != answers.shape[0]:
        raise ValueError("reference must have one entry per item (row of variants)")
    agreement = run_agreement(answers, n_classes, level, n_boot, seed, ci_level, clusters)
    keep = truth >= 0
    n_reference = int(keep.sum())
    if n_reference:
        correct = (answers[keep] == truth[keep, None]).mean(axis=0)
    else:
        correct = np.full(answers.shape[1], np.nan)
    per_variant = [
        VariantAccuracy(variant=v, accuracy=float(acc), n=n_reference)
        for v, acc in enumerate(correct)
    ]
    return InterPromptStability(
        agreement=agreement,
        per_variant=per_variant,
        accuracy_range=float(correct.max() - correct.min()),
        accuracy_std=float(np.std(correct, ddof=1)),
        n_reference=n_reference,
    )
