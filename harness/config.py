"""The experiment config: YAML -> validated pydantic models.

Unknown keys are rejected; every error names the file, the key path and its line, and says
what to do. Input paths in a config (gold sets, templates, pools, replay files) are relative
to the config file's own folder, so a config reads the same inputs from any working
directory. Outputs (`run.runs_dir`, `run.cache_dir`) are relative to the working directory,
like every command-line tool's outputs, so one cache serves every config of a project.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from harness.errors import Problem, UserError
from harness.pii import PiiConfig
from harness.safe_yaml import compose_checked

# litellm passes provider credentials as params (aws_secret_access_key, azure_ad_token,
# vertex_credentials, api_token...): none of them may sit in a config that runs/ copies.
SECRET_PARAM = re.compile(
    r"secret|credential|password|authorization|api_?key|(^|_)key$|(^|_)token$", re.IGNORECASE
)
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

from harness.task_config import (  # noqa: E402  (re-exported: the config's public names)
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
    "AxisSpec",
    "LabelSpec",
    "LocatedValueError",
    "PairwiseConfig",
    "RankingConfig",
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
    format: Literal["jsonl", "csv"] | None = None
    columns: CsvColumns | None = None
    limit: int | None = Field(default=None, ge=1)
    # Groups of annotators (e.g. experts / crowd, or by language): the setup is also scored
    # against each group's own majority, and each group's agreement is reported.
    annotator_groups: dict[str, list[str]] | None = None
    # An item whose input fields exceed this (UTF-8 bytes) is refused with its line: 1 MB is
    # ~250k tokens, beyond most context windows; bigger is usually a pasted log or file.
    max_item_bytes: int = Field(default=1_000_000, ge=1, le=50_000_000)

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        return "csv" if self.path.suffix.lower() == ".csv" else "jsonl"


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
    # Client-side limits for this model (harness/ratelimit.py): requests and tokens (input +
    # output, estimated from the prompt before a call, corrected by the reply's usage) per
    # minute. Unset: no limit; a 429 still backs the model's concurrency off (AIMD).
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    # Mask e-mails, phones, card numbers, IPs (and own regexes) in item text before it is
    # sent to this model (harness/pii.py): true, or {kinds: [...], patterns: {name: regex}}.
    mask_pii: PiiConfig | None = None

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
        if self.mask_pii is not None and self.provider == "replay":
            raise LocatedValueError(
                "mask_pii has no effect on replayed labels (nothing is sent); remove it",
                ("mask_pii",),
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
    def provider(self) -> Literal["litellm", "local", "replay"]:
        if self.model.startswith("local/"):
            return "local"
        if self.model.startswith("replay/"):
            return "replay"
        return "litellm"


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


class AltTestConfig(Strict):
    """The Alternative Annotator Test: may the LLM replace one of the annotators?"""

    # Cost-benefit margin epsilon; default by who the annotators are (Calderon et al. 2025).
    annotators: Literal["expert", "skilled", "crowd"] = "skilled"
    epsilon: float | None = Field(default=None, gt=0, lt=1)  # overrides the default
    q: float = Field(default=0.05, gt=0, lt=1)  # Benjamini-Yekutieli FDR level
    min_items: int = Field(default=30, ge=5)  # per annotator


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
                if model.provider != "replay" and not (
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
            if not self.prompts and m.provider != "replay":
                raise LocatedValueError(
                    "models that are called need at least one entry under 'prompts'",
                    ("models", i, "model"),
                )
        return self


class ResolvedExperiment:
    """An `Experiment` plus where it came from: paths resolved against the config's folder."""

    def __init__(self, experiment: Experiment, path: Path, text: str):
        self.experiment = experiment
        self.path = path
        self.base = path.absolute().parent  # stays right if the process changes directory
        self.text = text

    def resolve(self, p: Path | str) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    @functools.cached_property
    def key_lines(self) -> dict[str, int]:
        """'models[1].model' -> its line in the config file (empty if there is no text)."""
        try:
            node = yaml.compose(self.text, Loader=yaml.SafeLoader) if self.text else None
        except yaml.YAMLError:
            return {}
        return {_key_path(k): line for k, line in _key_lines(node).items()}

    @property
    def config_hash(self) -> str:
        canonical = json.dumps(self.experiment.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_experiment(path: Path | str) -> ResolvedExperiment:
    """Read and validate an experiment YAML; raise UserError naming file, key and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError.at(
            "config file not found",
            file=path,
            hint="check the path; configs usually live under configs/",
        ) from None
    except UnicodeDecodeError as exc:
        raise UserError.at(
            f"not valid UTF-8 (byte {exc.start})",
            file=path,
            line=exc.object[: exc.start].count(b"\n") + 1,
            hint="save the config as UTF-8",
        ) from None
    except OSError as exc:
        raise UserError.at(
            f"cannot read config: {exc.strerror}",
            file=path,
            hint="name a YAML file the user running prelabel can read",
        ) from None
    try:
        node = compose_checked(text, path)  # safe_yaml.py: no alias bombs, no runaway nesting
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError.at(
            f"YAML syntax error: {problem}",
            file=path,
            line=line,
            hint="fix the YAML at that line (indentation, quotes, colons)",
        ) from None
    if not isinstance(data, dict):
        raise UserError.at(
            "the config must be a YAML mapping (key: value pairs)",
            file=path,
            hint="see configs/demo.yaml for the expected shape",
        )
    lines = _key_lines(node)
    duplicates = _duplicate_keys(node, path)
    if duplicates:
        raise UserError(duplicates, hint="each key may appear once in a mapping; remove one")
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        raise UserError(
            _problems(exc, path, lines), hint="see the config reference in README.md"
        ) from None
    return ResolvedExperiment(experiment, path, text)


def _problems(exc: ValidationError, path: Path, lines: dict[tuple, int]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        # pydantic appends union/validator branch names to loc; keep the data path only.
        data_loc = tuple(x for x in loc if isinstance(x, int) or "[" not in str(x))
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, LocatedValueError):
            data_loc += error.loc
        key = _key_path(data_loc)
        line = _nearest_line(lines, data_loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{data_loc[-1]}' (check its spelling; unknown keys are rejected)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        problems.append(Problem(msg, path, line, key or None))
    return problems


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nearest_line(lines: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _duplicate_keys(node: yaml.Node | None, path: Path, prefix: tuple = ()) -> list[Problem]:
    """A key given twice in one mapping: YAML keeps the last silently, so say so."""
    problems: list[Problem] = []
    children = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = (*prefix, key_node.value)
            if key_node.value in seen:
                line = key_node.start_mark.line + 1
                problems.append(Problem("duplicate key", path, line, _key_path(key)))
            seen.add(key_node.value)
            children.append((value_node, key))
    elif isinstance(node, yaml.SequenceNode):
        children = [(child, (*prefix, i)) for i, child in enumerate(node.value)]
    for child, key in children:
        problems += _duplicate_keys(child, path, key)
    return problems


def _key_lines(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path of a composed YAML document to its 1-based line number."""
    out: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, key_node.value)
            out[path] = key_node.start_mark.line + 1
            out.update(_key_lines(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            out[(*prefix, i)] = child.start_mark.line + 1
            out.update(_key_lines(child, (*prefix, i)))
    return out
