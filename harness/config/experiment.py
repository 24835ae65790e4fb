"""The experiment config: YAML -> validated pydantic models.

Unknown keys are rejected; every error names the file, the key path and its line, and says
what to do. Input paths in a config (gold sets, templates, pools, replay files) are relative
to the config file's own folder, so a config reads the same inputs from any working
directory. Outputs (`run.runs_dir`, `run.cache_dir`) are relative to the working directory,
like every command-line tool's outputs, so one cache serves every config of a project.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.config.decision import (  # re-exported: part of the config's public names
    AltTestConfig,
    Constraints,
    CostConfig,
    GateConfig,
    GateMetric,
    ReportConfig,
)
from harness.config.pii import PiiConfig
from harness.config.tracking import TrackingConfig
from harness.providers import ProviderKind, provider_of

# litellm passes provider credentials as params (aws_secret_access_key, azure_ad_token,
# vertex_credentials, api_token...): none of them may sit in a config that runs/ copies.
SECRET_PARAM = re.compile(
    r"secret|credential|password|authorization|api_?key|(^|_)key$|(^|_)token$", re.IGNORECASE
)
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

from harness.config.task import (  # noqa: E402  (re-exported: the config's public names)
    PAIRWISE_LABELS,
    STRUCTURED_TYPES,
    AxisSpec,
    LabelSpec,
    LocatedValueError,
    PairwiseConfig,
    RankingConfig,
    Strict,
    TaskConfig,
)

__all__ = [
    "PAIRWISE_LABELS",
    "STRUCTURED_TYPES",
    "AltTestConfig",
    "AxisSpec",
    "Constraints",
    "CostConfig",
    "GateConfig",
    "GateMetric",
    "LabelSpec",
    "LocatedValueError",
    "PairwiseConfig",
    "RankingConfig",
    "ReportConfig",
    "Strict",
    "TaskConfig",
]


ConfidenceSource = Literal["auto", "logprobs", "verbalized", "self_consistency"]


class CsvColumns(Strict):
    """Column mapping of a long-format CSV gold set: one row per (item, annotator) rating."""

    item: str = "id"
    annotator: str = "annotator"
    label: str = "label"
    gold: str | None = None
    fields: list[str] = Field(default_factory=list)
    meta: list[str] = Field(default_factory=list)


class GoldSetConfig(Strict):
    id: str = Field(pattern=ID_PATTERN)
    path: Path
    # jsonl | csv | parquet | hf (a folder from datasets' save_to_disk); default from the
    # file's suffix (a folder: hf)
    format: Literal["jsonl", "csv", "parquet", "hf"] | None = None
    columns: CsvColumns | None = None
    limit: int | None = Field(default=None, ge=1)
    # Groups of annotators (e.g. experts / crowd, or by language): the setup is also scored
    # against each group's own majority, and each group's agreement is reported.
    annotator_groups: dict[str, list[str]] | None = None
    # An item whose input fields exceed this (UTF-8 bytes) is refused with its line: 1 MB is
    # ~250k tokens, beyond most context windows; bigger is usually a pasted log or file.
    max_item_bytes: int = Field(default=1_000_000, ge=1, le=50_000_000)
    # Items that come in groups (turns of one conversation, answers to one source) are not
    # independent: every interval, comparison and the gate then resample whole groups. An
    # input field name or `meta.<field>`.
    cluster_by: str | None = Field(default=None, min_length=1)

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        suffix = self.path.suffix.lower()
        return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "jsonl")


class FewShotConfig(Strict):
    k: int = Field(ge=1, le=64)
    pool: Path
    strategy: Literal["fixed", "stratified", "similar"] = "fixed"
    seed: int = 0


class PromptConfig(Strict):
    id: str = Field(pattern=ID_PATTERN)
    template: Path
    few_shot: FewShotConfig | None = None
    description: str | None = None
    # Paraphrases of one prompt share a group: the report measures how much labels move
    # between them (inter-prompt stability).
    group: str | None = Field(default=None, pattern=ID_PATTERN)


class ModelConfig(Strict):
    id: str = Field(pattern=ID_PATTERN)
    model: str = Field(min_length=1, description="litellm model string, local/..., or replay/...")
    params: dict[str, Any] = Field(default_factory=dict)
    api_base: str | None = None
    api_key_env: str | None = None
    input_cost_per_mtok: float | None = Field(default=None, ge=0)
    output_cost_per_mtok: float | None = Field(default=None, ge=0)
    structured_output: Literal["auto", "json_schema", "off"] = "auto"
    logprobs: bool | None = None
    top_logprobs: int = Field(default=5, ge=1, le=20)
    # Which confidence feeds calibration, auto-accept and routing; every available source is
    # still compared head to head in the report. auto: self-consistency with samples > 1,
    # else label log-probabilities, else a verbalized number.
    confidence: ConfidenceSource = "auto"
    # Client-side limits for this model (harness/run/ratelimit.py): requests and tokens (input +
    # output, estimated from the prompt before a call, corrected by the reply's usage) per
    # minute. Unset: no limit; a 429 still backs the model's concurrency off (AIMD).
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    # Mask e-mails, phones, card numbers, IPs (and own regexes) in item text before it is
    # sent to this model (harness/inputs/pii.py): true, or {kinds: [...], patterns: {name: regex}}.
    mask_pii: PiiConfig | None = None
    # Batch mode (harness/run/batch.py): uncached calls go to the provider's batch API (half
    # the price, no live rate limits, answered within 24 h) instead of live calls.
    batch: bool = False
    # auto: openai/... models through the openai client itself (harness/providers/
    # openai_client.py, twice litellm's speed), every other model through litellm;
    # litellm: this model through litellm whatever it is.
    client: Literal["auto", "litellm"] = "auto"
    batch_discount: float = Field(default=0.5, ge=0, lt=1)  # off the live price

    @field_validator("mask_pii", mode="before")
    @classmethod
    def _mask_pii_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {} if value else None
        if value is not None and not isinstance(value, dict | PiiConfig):
            raise ValueError("mask_pii is true, false or a mapping {kinds: [...], patterns: {}}")
        return value

    @model_validator(mode="after")
    def _mask_pii_needs_calls(self) -> ModelConfig:
        if self.mask_pii is not None and not self.kind.called:
            raise LocatedValueError(
                "mask_pii has no effect on replayed labels (nothing is sent); remove it",
                ("mask_pii",),
            )
        return self

    @model_validator(mode="after")
    def _batch_needs_a_batch_api(self) -> ModelConfig:
        if self.batch and self.kind.batch is None:
            raise LocatedValueError(
                f"batch: true needs a provider with a batch API; {self.kind.name} models "
                "are not called over one (remove batch: true)",
                ("batch",),
            )
        return self

    @field_validator("params")
    @classmethod
    def _no_secrets_in_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key.lower() in {"headers", "extra_headers", "key"} or SECRET_PARAM.search(key):
                raise ValueError(
                    f"'{key}' must not be in params: secrets never go in a config file; "
                    "name an environment variable with 'api_key_env' instead"
                )
        return value

    @field_validator("api_base")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        if value and "@" in value.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError(
                "api_base must not carry credentials (user:password@): they would be copied "
                "into every run's manifest; name an environment variable with 'api_key_env'"
            )
        return value

    @property
    def kind(self) -> ProviderKind:
        """The registered provider serving this model string (harness.providers)."""
        return provider_of(self.model)

    @property
    def provider(self) -> str:
        return self.kind.name


class SetupConfig(Strict):
    prompt: str | None = None
    model: str
    confidence: ConfidenceSource | None = None  # overrides the model's


class RunConfig(Strict):
    concurrency: int = Field(default=8, ge=1, le=1024)
    samples: int = Field(default=1, ge=1, le=100)
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=4, ge=0, le=20)
    cache_dir: Path = Path(".prelabel-cache")
    runs_dir: Path = Path("runs")
    budget_usd: float | None = Field(default=None, ge=0)
    # Hard cap on the requests this run sends (retries included; cached labels are free).
    # Reached: the run stops like for the budget, resumable; 0 = use the cache only.
    max_calls: int | None = Field(default=None, ge=0)
    # Batch mode (models with batch: true): how often to ask a batch's state, how long to
    # wait for it in this process (the batch goes on at the provider; rerun to collect it),
    # and whether requests that failed inside a batch are retried in a new batch or live.
    batch_poll_s: float = Field(default=30.0, gt=0)
    batch_deadline_h: float = Field(default=24.0, gt=0)
    batch_retry: Literal["batch", "live"] = "batch"


class JuryConfig(Strict):
    """A panel of setups whose cached labels are combined into one more setup, with no
    extra call: `majority` (one vote each) or `weighted` (by each member's reliability,
    estimated out-of-fold on the gold set)."""

    id: str = Field(pattern=ID_PATTERN)
    setups: list[str]
    rule: Literal["majority", "weighted"] = "majority"

    @field_validator("setups")
    @classmethod
    def _a_panel(cls, value: list[str]) -> list[str]:
        if len(value) < 2:
            raise ValueError(
                f"a jury needs at least 2 member setups, this one has {len(value)}: name "
                "two or more setup ids, or compare the setup on its own"
            )
        return value


class Experiment(Strict):
    name: str = Field(pattern=ID_PATTERN)
    description: str | None = None
    task: TaskConfig
    gold_sets: list[GoldSetConfig] = Field(min_length=1)
    prompts: list[PromptConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(min_length=1)
    setups: list[SetupConfig] | None = None
    run: RunConfig = RunConfig()
    report: ReportConfig = ReportConfig()
    costs: CostConfig = CostConfig()
    gate: GateConfig = GateConfig()
    juries: list[JuryConfig] = Field(default_factory=list)
    tracking: TrackingConfig = TrackingConfig()  # MLflow (harness/api/tracking.py)

    @model_validator(mode="after")
    def _cross_references(self) -> Experiment:
        if self.task.type in STRUCTURED_TYPES:
            for i, prompt in enumerate(self.prompts):
                if prompt.few_shot:
                    raise LocatedValueError(
                        f"few-shot examples are not supported yet for {self.task.type} tasks",
                        ("prompts", i, "few_shot"),
                    )
        if self.run.samples > 1:
            for i, model in enumerate(self.models):
                temperature = model.params.get("temperature", 0)
                if model.kind.called and not (
                    isinstance(temperature, int | float) and temperature > 0
                ):
                    raise LocatedValueError(
                        f"run.samples is {self.run.samples} but model '{model.id}' samples at "
                        "temperature 0: every sample would be the same answer, paid for again; "
                        "set params.temperature > 0 or samples: 1",
                        ("models", i, "params"),
                    )
        for kind, items in (
            ("gold_sets", self.gold_sets),
            ("prompts", self.prompts),
            ("models", self.models),
        ):
            ids = [x.id for x in items]
            for i, item_id in enumerate(ids):
                if item_id in ids[:i]:
                    raise LocatedValueError(
                        f"duplicate {kind} id {item_id!r}: ids must be unique, rename one",
                        (kind, i, "id"),
                    )
        prompt_ids = {p.id for p in self.prompts}
        model_ids = {m.id for m in self.models}
        for i, setup in enumerate(self.setups or []):
            if setup.model not in model_ids:
                raise LocatedValueError(
                    f"setup names model '{setup.model}', not one of {sorted(model_ids)}",
                    ("setups", i, "model"),
                )
            if setup.prompt is not None and setup.prompt not in prompt_ids:
                raise LocatedValueError(
                    f"setup names prompt '{setup.prompt}', not one of {sorted(prompt_ids)}",
                    ("setups", i, "prompt"),
                )
        for i, m in enumerate(self.models):
            if not self.prompts and m.kind.called:
                raise LocatedValueError(
                    "models that are called need at least one entry under 'prompts'",
                    ("models", i, "model"),
                )
        self._check_juries()
        if self.report.reference == "dawid_skene" and self.task.ranking is not None:
            # A ranking has no class an annotator is right or wrong about: no confusion
            # matrix to estimate. Refused rather than silently scored against the rule.
            raise LocatedValueError(
                "report.reference: dawid_skene needs labels from a fixed set; a ranking task "
                "has none (its reference is the Borda count): use majority",
                ("report", "reference"),
            )
        return self

    def setup_ids(self) -> list[str]:
        """The setups' ids as `harness/run/plan.py:build_setups` names them: `prompt@model`,
        or the model's id for replayed labels (which had no prompt of ours)."""
        models = {m.id: m for m in self.models}
        if self.setups:
            pairs = [(s.prompt, s.model) for s in self.setups]
        else:
            pairs = [
                (p.id, m.id) if m.kind.called else (None, m.id)
                for m in self.models
                for p in (self.prompts if m.kind.called else [None])
            ]
        return [
            f"{prompt}@{model}" if models[model].kind.called else model for prompt, model in pairs
        ]

    def _check_juries(self) -> None:
        if not self.juries:
            return
        if self.task.type in STRUCTURED_TYPES:
            raise LocatedValueError(
                f"juries combine one label per item; a {self.task.type} task has several: "
                "remove 'juries'",
                ("juries",),
            )
        setup_ids = self.setup_ids()
        jury_ids: list[str] = []
        for i, jury in enumerate(self.juries):
            if jury.id in setup_ids:
                raise LocatedValueError(
                    f"jury id {jury.id!r} is also a setup's id: the jury is scored as a setup "
                    "of its own, so rename the jury",
                    ("juries", i, "id"),
                )
            if jury.id in jury_ids:
                raise LocatedValueError(
                    f"duplicate juries id {jury.id!r}: ids must be unique, rename one",
                    ("juries", i, "id"),
                )
            jury_ids.append(jury.id)
            for j, member in enumerate(jury.setups):
                if member in jury.setups[:j]:
                    raise LocatedValueError(
                        f"jury {jury.id!r} names setup {member!r} twice: a member votes "
                        "once; remove the repeat",
                        ("juries", i, "setups", j),
                    )
                if member not in setup_ids:
                    hint = (
                        "a jury's members are setups, not other juries"
                        if member in jury_ids or member in {x.id for x in self.juries}
                        else f"one of {setup_ids}"
                    )
                    raise LocatedValueError(
                        f"jury {jury.id!r} names setup {member!r}, which this experiment "
                        f"does not have: name a setup id ({hint})",
                        ("juries", i, "setups", j),
                    )
