"""A provider's reply (or error) -> one `LabelRecord`: parsed, with its confidences.

Also which cached replies fail to parse under a task: `run --retry-failed` re-asks them and
`cache clear --failed` removes them. "Failed" depends on the label space, not on the reply
alone, so it is always decided with a config's task.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from harness.core.records import CallSpec, LabelRecord, ProviderReply, compact_record
from harness.providers import ProviderError
from harness.tasks.confidence import label_probabilities
from harness.tasks.labelspace import LabelSpace
from harness.tasks.parsing import parse_label

SWAP = {"A": "B", "B": "A"}


def to_record(
    spec: CallSpec,
    reply: ProviderReply,
    labels: Sequence[str] | LabelSpace,
    *,
    cached: bool,
    attempts: int,
    started: float,
) -> LabelRecord:
    """Parse a reply into a label record; confidence from log-probs, else verbalized."""
    if isinstance(labels, LabelSpace) and labels.structured:
        parsed = labels.parse(reply.content, spec.candidates)
        labels = []  # no single-label distribution for sets, rankings and rubrics
    else:
        labels = labels.names if isinstance(labels, LabelSpace) else labels
        parsed = parse_label(reply.content, labels)
    probs = None
    if reply.token_logprobs and isinstance(parsed.label, str):
        probs = label_probabilities(reply.token_logprobs, labels, parsed.label)
    label = parsed.label
    if spec.swapped:  # the verdict was about the swapped order: map it back to A/B as stored
        label = SWAP.get(label, label)
        probs = {SWAP.get(k, k): v for k, v in probs.items()} if probs else probs
    confidences: dict[str, float] = {}
    if probs and label in probs:
        confidences["logprobs"] = probs[label]
    if parsed.confidence is not None and parsed.label is not None:
        confidences["verbalized"] = parsed.confidence
    # The auto choice, as before `confidences` existed: log-probs first, else verbalized.
    confidence, source = next(((v, k) for k, v in confidences.items()), (None, None))
    record = LabelRecord(
        setup=spec.setup_id,
        gold_set=spec.gold_set_id,
        item=spec.item_id,
        sample=spec.sample,
        swapped=spec.swapped,
        label=label,
        failure=parsed.failure,
        failure_detail=parsed.detail,
        parse_method=parsed.method,
        confidence=confidence,
        confidence_source=source,
        confidences=confidences or None,
        label_probs=probs,
        raw=reply.content,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cost_usd=reply.cost_usd,  # what the label cost when bought; spend counts uncached only
        latency_s=reply.latency_s,
        cached=cached,
        attempts=attempts,
        started_at=started,
        finished_at=time.time(),
        provider_model=reply.provider_model,
        cache_key=spec.cache_key,
    )
    # Held through scoring: one shared set of field names and a key-sharing dict (2.2 + 0.5
    # kB less per record; harness/core/records.py).
    return compact_record(record)


def failure_record(
    spec: CallSpec, error: ProviderError, attempts: int, started: float
) -> LabelRecord:
    record = LabelRecord(
        setup=spec.setup_id,
        gold_set=spec.gold_set_id,
        item=spec.item_id,
        sample=spec.sample,
        swapped=spec.swapped,
        failure=error.kind,
        failure_detail=error.detail,
        cost_usd=error.cost_usd,  # an empty answer was still paid for
        attempts=attempts,
        started_at=started,
        finished_at=time.time(),
        cache_key=spec.cache_key,
    )
    return compact_record(record)


class _Replies(Protocol):
    def get(self, key: str) -> ProviderReply | None: ...


def cached_failures(
    specs: Iterable[CallSpec], cache: _Replies, labels: Sequence[str] | LabelSpace
) -> dict[str, str]:
    """Cache key -> parse failure of every spec whose cached reply fails to parse (a key
    shared by two specs is one entry: one prompt, one reply, one parse)."""
    failed: dict[str, str] = {}
    for spec in specs:
        if spec.cache_key in failed:
            continue
        reply = cache.get(spec.cache_key)
        if reply is not None:
            record = to_record(spec, reply, labels, cached=True, attempts=0, started=0.0)
            if record.failure is not None:
                failed[spec.cache_key] = record.failure
    return failed
