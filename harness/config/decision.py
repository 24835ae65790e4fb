"""The report and decision parts of an experiment config: statistics settings, auto-accept
target, recalibration, the recommendation's constraints, human costs, the gate's rule."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from harness.config.task import Strict


class AltTestConfig(Strict):
    """The Alternative Annotator Test: may the LLM replace one of the annotators?"""

    # Cost-benefit margin epsilon; default by who the annotators are (Calderon et al. 2025).
    annotators: Literal["expert", "skilled", "crowd"] = "skilled"
    epsilon: float | None = Field(default=None, gt=0, lt=1)  # overrides the default
    q: float = Field(default=0.05, gt=0, lt=1)  # Benjamini-Yekutieli FDR level
    min_items: int = Field(default=30, ge=5)  # per annotator
    # A failed LLM answer: the worst score for that item (`worst`, prelabel's default), or
    # the item left out of the test (`drop`, as the authors' code does).
    failures: Literal["worst", "drop"] = "worst"


class PowerConfig(Strict):
    """How many gold items: the differences worth telling apart, at what level and power
    (`prelabel plan --power` and the report's power section; statistics.md section 8)."""

    power: float = Field(default=0.8, gt=0, lt=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)  # two-sided, as the comparisons use
    # Plan at alpha / k over the k pairs of setups compared, as Holm's first step does.
    holm: bool = True
    accuracy_differences: list[float] = Field(default=[0.02, 0.05, 0.1], max_length=20)
    kappa_differences: list[float] = Field(default=[0.05, 0.1], max_length=20)

    @field_validator("accuracy_differences", "kappa_differences")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not 0 < x < 1]
        if bad:
            raise ValueError(f"differences must be between 0 and 1 (exclusive), got {bad}")
        return v


class Constraints(Strict):
    """What a setup must meet to be recommended (unset = not required)."""

    min_kappa_low: float | None = Field(default=None, ge=-1, le=1)  # lower interval bound
    max_ece: float | None = Field(default=None, ge=0, le=1)
    min_auto_accept_share: float | None = Field(default=None, ge=0, le=1)  # at target_error
    max_cost_per_1k_usd: float | None = Field(default=None, ge=0)  # hybrid pipeline
    min_coverage: float | None = Field(default=None, ge=0, le=1)  # share of items labelled


class ReportConfig(Strict):
    bootstrap: int = Field(default=1000, ge=100, le=100_000)
    seed: int = 0
    level: float = Field(default=0.95, gt=0.5, lt=1.0)
    # Auto-accept: the error rate allowed among auto-accepted labels, and 1 - the confidence
    # that the chosen threshold keeps it (Learn then Test).
    target_error: float = Field(default=0.05, gt=0, lt=1)
    delta: float = Field(default=0.1, gt=0, lt=1)
    # Recalibration applied to confidence before auto-accept thresholds and the ECE
    # constraint; all methods are always reported before/after, cross-fitted.
    recalibration: Literal["none", "temperature", "platt", "isotonic"] = "none"
    constraints: Constraints = Constraints()
    alt_test: AltTestConfig = AltTestConfig()
    power: PowerConfig = PowerConfig()
    # The reference label of an item: the annotators' majority, or the Dawid-Skene posterior
    # mode (annotators weighted by their estimated confusion matrices). Both are reported.
    reference: Literal["majority", "dawid_skene"] = "majority"


class GateMetric(Strict):
    """A gated metric: fail when it drops by more than `tolerance` beyond noise, or its
    lower bound falls under `floor`."""

    tolerance: float = Field(default=0.02, ge=0)
    floor: float | None = None


class GateConfig(Strict):
    """`prelabel gate`: what counts as a regression against the baseline."""

    kappa: GateMetric = GateMetric()
    accuracy: GateMetric = GateMetric()
    # Rates compared directly: fail above baseline * (1 + relative) + absolute.
    failure_rate_absolute: float = Field(default=0.02, ge=0)
    cost_relative: float = Field(default=0.10, ge=0)
    # `prelabel canary`: items re-asked per gold set, bypassing the cache, and the flip rate
    # against the stored labels that counts as drift (when its interval's low end is above).
    canary_items: int = Field(default=20, ge=1, le=10_000)
    canary_max_flip_rate: float = Field(default=0.1, ge=0, lt=1)


class CostConfig(Strict):
    """What humans cost, to price the hybrid pipeline against labelling everything by hand."""

    human_label_usd: float | None = Field(default=None, ge=0)  # one human label of one item
    human_review_usd: float | None = Field(default=None, ge=0)  # one review of a pre-label
    labels_per_item: int = Field(default=1, ge=1, le=20)  # humans per item when all-human
