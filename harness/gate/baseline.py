"""Baselines: a small, committable snapshot of a run that later runs are compared with.

A snapshot holds, per setup, its final label on every gold item (the mode over samples,
pairwise orders combined, as scored), its failure rate and cost per item, and what it was
made from (prompt hash, few-shot settings, model entry), so that a comparison can tell a
changed prompt (the thing being gated) from a changed gold set or model (which makes the
comparison meaningless and is reported as such). The reference labels are stored too: a
baseline can be compared without the gold-set file, and a changed gold set is detected by
its content hash.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.files import write_text
from harness.core.records import LabelRecord
from harness.run.juries import with_jury_records
from harness.run.store import RunContext
from harness.score.predictions import CodedGoldSet, ItemPredictions
from harness.tasks import task_type

BASELINE_VERSION = 1


# The model entry's fields that change what a model answers; rpm, tpm, prices, the key's
# variable name do not, and must not make a baseline incomparable.
OUTPUT_FIELDS = (
    "model",
    "params",
    "api_base",
    "structured_output",
    "logprobs",
    "top_logprobs",
    "confidence",
    "mask_pii",
)


def model_identity(entry: dict[str, Any] | None) -> str:
    """A digest of what about a model entry decides its labels."""
    entry = entry or {}
    return _digest({k: entry.get(k) for k in OUTPUT_FIELDS})


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def snapshot(ctx: RunContext) -> dict[str, Any]:
    """The comparable content of a run (single-label task types)."""
    exp = ctx.experiment
    if task_type(exp.task.type).structured:
        raise UserError.at(
            f"baselines and the gate support single-label tasks, not {exp.task.type}",
            file=ctx.run_dir / "manifest.json",
            hint="compare structured runs with their metrics.json for now",
        )
    labels = exp.task.label_names
    ctx = with_jury_records(ctx)  # a jury is gated like any setup, from its members' labels
    models = {m["id"]: m for m in ctx.manifest.config.get("models", [])}
    prompts = {p["id"]: p for p in ctx.manifest.config.get("prompts", [])}
    by_key: dict[tuple[str, str], list[LabelRecord]] = defaultdict(list)
    for r in ctx.records:
        by_key[(r.gold_set, r.setup)].append(r)
    gold_out: dict[str, Any] = {}
    setups_out: dict[str, Any] = {s.id: {"gold_sets": {}} for s in ctx.setups}
    for gold in ctx.gold_sets:
        coded = CodedGoldSet(gold, labels, exp.task.type, reference=exp.report.reference)
        gold_out[gold.id] = {
            "content_hash": gold.content_hash,
            "items": coded.item_ids,
            "reference": [labels[c] if c >= 0 else None for c in coded.reference],
        }
        if gold.clusters is not None:  # the gate resamples whole clusters (statistics.md 3)
            gold_out[gold.id].update(cluster_by=gold.cluster_by, clusters=list(gold.clusters))
        for setup in ctx.setups:
            recs = by_key.get((gold.id, setup.id), [])
            preds = ItemPredictions(coded, recs, source=setup.confidence)
            n = len(coded.item_ids)
            costs = [r.cost_usd for r in recs if r.label is not None or r.cost_usd is not None]
            setups_out[setup.id]["gold_sets"][gold.id] = {
                "predictions": [labels[c] if c >= 0 else None for c in preds.pred],
                "n": n,
                "failure_rate": float((preds.pred < 0).sum() / n) if n else None,
                # Unknown when any reply's price was unknown (as in metrics.json).
                "cost_usd_per_item": sum(costs) / n
                if n and all(c is not None for c in costs) and costs
                else None,
            }
    for setup in ctx.setups:
        prompt = prompts.get(setup.prompt_id or "", {})
        setups_out[setup.id].update(
            prompt=setup.prompt_id,
            model=setup.model_id,
            prompt_hash=ctx.manifest.prompt_hashes.get(setup.prompt_id or ""),
            few_shot=_digest(prompt.get("few_shot")) if prompt.get("few_shot") else None,
            model_entry=model_identity(models.get(setup.model_id)),
            model_string=models.get(setup.model_id, {}).get("model"),
        )
    return {
        "prelabel_baseline": BASELINE_VERSION,
        "run_id": ctx.manifest.run_id,
        "experiment": exp.name,
        "task_type": exp.task.type,
        "labels": list(labels),
        "gold_sets": gold_out,
        "setups": setups_out,
    }


def save_baseline(data: dict[str, Any], path: Path) -> None:
    """Written atomically, one item per line is not needed: it is small and diffable as is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError.at(
            "no such baseline file",
            file=path,
            hint="write one with `prelabel baseline save RUN_DIR --output FILE`",
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError.at(
            f"not a baseline file: {exc}",
            file=path,
            hint="baseline files are written by `prelabel baseline save`",
        ) from None
    if not isinstance(data, dict) or data.get("prelabel_baseline") != BASELINE_VERSION:
        raise UserError.at(
            f"not a prelabel baseline (version {BASELINE_VERSION})",
            file=path,
            hint="re-save it with `prelabel baseline save RUN_DIR --output FILE`",
        )
    return data
