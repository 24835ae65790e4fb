"""The records that travel between stations.

`GoldItem` (load) -> `CallSpec` (plan/render) -> `ProviderReply` (call, cached) ->
`LabelRecord` (parse; one line of labels.jsonl) -> metrics. `RunManifest` is the provenance
of a run directory. These are the contracts; no station passes loose dicts to another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True, slots=True)
class GoldItem:
    """One gold item: input fields, each annotator's label, optional adjudicated gold."""

    id: str
    fields: Mapping[str, Any]
    annotations: Mapping[str, Any]  # str; a list (multilabel, ranking) or dict (rubric)
    gold: Any = None
    meta: Mapping[str, str] = field(default_factory=dict)
    line: int = 0  # where it came from, for error messages


@dataclass(frozen=True, slots=True)
class GoldSet:
    id: str
    path: str
    items: tuple[GoldItem, ...]
    annotators: tuple[str, ...]
    content_hash: str  # sha256 of the file's bytes
    annotator_groups: dict[str, tuple[str, ...]] | None = None  # group -> its annotators
    # `cluster_by` of the config and each item's cluster id (aligned with `items`): items of
    # one cluster are resampled together by every interval, comparison and the gate.
    cluster_by: str | None = None
    clusters: tuple[str, ...] | None = None
    # Set when no cluster_by is given but the ids or a meta field look grouped.
    grouping_warning: str | None = None


@dataclass(frozen=True, slots=True)
class Setup:
    """A prompt variant x a model: the unit that is compared and recommended."""

    id: str
    prompt_id: str | None  # None for replayed labels, which had no prompt of ours
    model_id: str
    confidence: str = "auto"  # the confidence source that feeds decisions (config/experiment.py)


@dataclass(frozen=True, slots=True)
class CallSpec:
    """One model call to make (or to find in the cache)."""

    setup_id: str
    gold_set_id: str
    item_id: str
    sample: int
    model_id: str
    model: str  # provider model string, e.g. "openai/gpt-4o-mini" or "local/smollm2-135m"
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any]  # output-affecting decoding params
    response_schema: Mapping[str, Any] | None  # JSON schema to constrain output, if supported
    top_logprobs: int | None  # ask for log-probabilities with this many alternatives
    cache_key: str
    swapped: bool = False  # pairwise: shown with A and B swapped; the verdict is mapped back
    candidates: tuple[str, ...] | None = None  # ranking: the item's candidate ids


@dataclass(frozen=True, slots=True)
class TokenLogprobRecord:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


@dataclass(slots=True)
class ProviderReply:
    """What a provider answered: the part of a call worth caching (never an error)."""

    content: str | None
    token_logprobs: list[TokenLogprobRecord] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    provider_model: str | None = None
    latency_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "token_logprobs": None
            if self.token_logprobs is None
            else [[t.token, t.logprob, [list(a) for a in t.top]] for t in self.token_logprobs],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "provider_model": self.provider_model,
            "latency_s": self.latency_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProviderReply:
        lps = data.get("token_logprobs")
        return cls(
            content=data.get("content"),
            token_logprobs=None
            if lps is None
            else [
                TokenLogprobRecord(tok, lp, tuple((a, b) for a, b in top)) for tok, lp, top in lps
            ],
            input_tokens=data.get("input_tokens"),
            output_tokens=data.get("output_tokens"),
            cost_usd=data.get("cost_usd"),
            provider_model=data.get("provider_model"),
            latency_s=data.get("latency_s"),
        )


class LabelRecord(BaseModel):
    """One line of labels.jsonl: one sample of one setup on one item, label or failure."""

    model_config = ConfigDict(extra="forbid")

    setup: str
    gold_set: str
    item: str
    sample: int = 0
    swapped: bool = False  # pairwise: asked with A and B swapped; `label` is mapped back
    label: str | list[str] | dict[str, str | None] | None = None  # per task type
    failure: str | None = None  # e.g. "no_label_found", "timeout", "rate_limited", "http_500"
    failure_detail: str | None = None
    parse_method: str | None = None
    confidence: float | None = None
    confidence_source: str | None = None  # "logprobs" | "verbalized" | "replay"
    # Every per-sample source the reply supported ("logprobs", "verbalized"), so sources can
    # be compared on the same labels; `confidence` above stays the auto choice among them.
    confidences: dict[str, float] | None = None
    label_probs: dict[str, float] | None = None
    raw: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    cached: bool = False
    attempts: int = 0
    started_at: float | None = None  # unix seconds
    finished_at: float | None = None
    provider_model: str | None = None
    cache_key: str | None = None
    # `run --retry-failed`: this reply re-asks a cached one that failed to parse; that one's
    # failure and text (the cache keeps the newest reply; both stay on record here).
    retried_from: str | None = None
    previous_raw: str | None = None


# Records held by the thousand (a run keeps every label through scoring) share what pydantic
# would give each one: the set of given field names (a set of 26 names per record, 2.2 kB)
# and the attribute dict's key table. A dict built by pydantic holds its own keys (0.83 kB at
# 26 fields); a copy of an instance dict of a plain class is a key-sharing dict (CPython's
# split table: 8 bytes per value, 0.3 kB), and assigning a key it has keeps it so. 0.5 kB
# per label of a 100,000-item run's peak, with every value, and so every output, the same.
_LABEL_FIELDS = tuple(LabelRecord.model_fields)
_ALL_LABEL_FIELDS = set(_LABEL_FIELDS)  # adding a name to a set of all names is a no-op


class _KeyHolder:
    """A plain instance whose attribute dict is a key-sharing one, to be copied."""


def _key_sharing_dict(names: tuple[str, ...]) -> dict[str, Any]:
    holder = _KeyHolder()
    for name in names:
        setattr(holder, name, None)
    return holder.__dict__


_LABEL_VALUES = _key_sharing_dict(_LABEL_FIELDS)


def compact_record(record: LabelRecord) -> LabelRecord:
    """`record` itself, holding its values in a key-sharing dict and the shared set of field
    names: the same values, dump and equality. Every field counts as given (nothing reads
    which were: labels.jsonl is written with `exclude_none`)."""
    values = _LABEL_VALUES.copy()
    values.update(record.__dict__)  # every field is there: pydantic fills in the defaults
    object.__setattr__(record, "__dict__", values)
    object.__setattr__(record, "__pydantic_fields_set__", _ALL_LABEL_FIELDS)
    return record


class RunManifest(BaseModel):
    """manifest.json: what ran, on what, with what, when."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    # "running" | "complete" | "interrupted" | "stopped: budget" | "stopped: max_calls". A
    # killed run stays "running" on disk; readers compare `process` with the living ones.
    status: str
    prelabel_version: str
    config_path: str
    config_hash: str
    config: dict[str, Any]
    prompt_hashes: dict[str, str]
    gold_set_hashes: dict[str, str]
    setups: list[dict[str, Any]]
    packages: dict[str, str]
    python: str
    platform: str
    git_commit: str | None
    git_dirty: bool | None
    started_at: str
    finished_at: str | None = None
    totals: dict[str, Any] = {}
    # While running: pid, host, start time and boot of the process (harness/run/manifest.py).
    process: dict[str, Any] | None = None
    # sha256 of every call's cache key (and replay file): what `--resume` must find unchanged.
    plan_hash: str | None = None
    resumed_at: list[str] = []  # when `prelabel run --resume` continued this run
    # Why a run ended without a result (e.g. a provider that never answered): the message.
    error: str | None = None
