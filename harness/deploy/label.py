"""`prelabel label`: pre-label new items with the setup an evaluation chose, through the same
cache, parser and confidence source, route each to `accept` or `review`, and write the
review queue.

Outputs in runs/<id>/ (a label run: no metrics.json, so it is never taken for an
evaluation): labels.jsonl (every sample, as in a run), prelabels.jsonl (one line per item),
review_queue.jsonl (items for humans, most useful first), estimates.json (label prevalence
in the pool by prediction-powered inference) and manifest.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import UserError
from harness.core.files import write_json, write_text
from harness.core.records import GoldSet
from harness.deploy.jury_label import (
    deployed_jury,
    jury_of,
    jury_predictions,
    member_evaluations,
)
from harness.deploy.pool_estimates import pool_prevalence
from harness.deploy.routing import Evaluation, choose, latest_evaluation, review_queue, route
from harness.gate.baseline import model_identity
from harness.inputs.unlabeled import load_unlabeled
from harness.run.cache import LabelCache
from harness.run.calls import Calls, cache_folder, run_settings
from harness.run.juries import with_jury_records
from harness.run.manifest import new_run_id, now_iso
from harness.run.pipeline import prepare
from harness.run.runner import RunSettings
from harness.run.store import RunContext, load_run_context, run_status_block
from harness.score.predictions import ItemPredictions
from harness.tasks import task_type


@dataclass
class NewItems:
    """What ItemPredictions needs of a coded gold set, for items nobody has labelled."""

    labels: list[str]
    item_ids: list[str]
    index: dict[str, int]
    code: dict[str, int]

    @classmethod
    def of(cls, items: GoldSet, labels: list[str]) -> NewItems:
        ids = [it.id for it in items.items]
        return cls(
            labels, ids, {i: k for k, i in enumerate(ids)}, {x: k for k, x in enumerate(labels)}
        )


@dataclass
class LabelResult:
    run_dir: Path
    evaluation: Evaluation
    rows: list[dict[str, Any]]
    queue: list[dict[str, Any]]
    estimates: dict[str, Any]
    calls: int
    cached: int


def _check_unchanged(plan: Any, ev: Evaluation) -> None:
    """The threshold holds only for the prompt and model it was fitted with."""
    manifest = json.loads((ev.run_dir / "manifest.json").read_text(encoding="utf-8"))
    setup = next(s for s in plan.setups if s.id == ev.setup)
    then = manifest.get("prompt_hashes", {}).get(setup.prompt_id)
    template = plan.templates.get(setup.prompt_id)
    now = template.content_hash if template is not None else None
    models_then = {m["id"]: m for m in manifest.get("config", {}).get("models", [])}
    model_now = plan.models[setup.model_id].model_dump(mode="json")
    samples_then = manifest.get("config", {}).get("run", {}).get("samples", 1)
    samples_now = plan.resolved.experiment.run.samples
    if (
        model_identity(models_then.get(setup.model_id)) != model_identity(model_now)
        or then != now
        or samples_then != samples_now  # with samples the confidence is another kind
    ):
        raise UserError.at(
            f"setup '{ev.setup}' changed since evaluation run {ev.run_id}",
            file=plan.resolved.path,
            hint="its threshold no longer applies (prompt, model settings or run.samples "
            "differ): run `prelabel run` again first",
        )


def _check_finished(evaluation: RunContext, on_warning: Callable[[str], None] | None) -> None:
    """An evaluation that did not finish: refused without scores; with scores (a report
    rebuilt on it), a warning: its threshold was fitted with labels missing."""
    status = run_status_block(evaluation)
    if status is None:
        return
    if not (evaluation.run_dir / "metrics.json").is_file():
        raise UserError.at(
            f"evaluation {status['message']}",
            file=evaluation.run_dir,
            hint="finish it first (see above), or pass --run with a complete evaluation run",
        )
    if on_warning:
        on_warning(
            f"evaluation {status['message']} Its recommendation and threshold were fitted "
            "with those labels missing."
        )


def run_label(
    config: Path,
    input_path: Path,
    *,
    setup: str | None = None,
    evaluation_dir: Path | None = None,
    runs_dir: Path | None = None,
    cache_dir: Path | None = None,
    budget: int | None = None,
    blind_share: float = 0.1,
    audit_share: float = 0.05,
    seed: int = 0,
    on_warning: Callable[[str], None] | None = None,
) -> LabelResult:
    plan = prepare(config)
    exp = plan.resolved.experiment
    if task_type(exp.task.type).structured:
        raise UserError.at(
            f"`prelabel label` routes single-label tasks; this task is {exp.task.type}",
            file=plan.resolved.path,
            key="task.type",
        )
    runs = Path(runs_dir or exp.run.runs_dir)
    evaluation = load_run_context(evaluation_dir or latest_evaluation(runs, exp.name))
    _check_finished(evaluation, on_warning)
    ev = choose(evaluation.run_dir, setup)
    jury = jury_of(plan, ev.setup)
    if jury is not None:  # its members label the items; their votes are combined
        members, weights = deployed_jury(plan, ev, jury)
        for member_ev in member_evaluations(ev, members):
            _check_unchanged(plan, member_ev)
    else:
        _check_unchanged(plan, ev)
        members = [next(s for s in plan.setups if s.id == ev.setup)]
    the_setup = members[0]
    if plan.builder is None or not plan.models[the_setup.model_id].kind.called:
        raise UserError.at(
            f"setup '{ev.setup}' replays stored labels: it cannot label new items",
            file=plan.resolved.path,
            hint="deploy a setup with a model that is called",
        )
    items = load_unlabeled(input_path)
    specs = [spec for s in members for spec in plan.builder.specs(s, items)]
    run_id = new_run_id(f"{exp.name}-label")
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "kind": "label",
        "run_id": run_id,
        "status": "running",
        "config_path": str(plan.resolved.path.resolve()),
        "input": {
            "path": str(input_path),
            "content_hash": items.content_hash,
            "n": len(items.items),
        },
        "evaluation_run": ev.run_id,
        "setup": ev.setup,
        "setup_chosen_by": ev.why,
        "threshold": ev.threshold,
        "confidence": ev.confidence_kind,
        "target_error": ev.target_error,
        "delta": ev.delta,
        "started_at": now_iso(),
    }
    if jury is not None:  # what the labels are made of, and the weights they were combined by
        manifest["jury"] = {
            "members": list(jury.setups),
            "rule": jury.rule,
            "weights": dict(zip(jury.setups, weights.tolist(), strict=True)),
        }
    write_json(run_dir / "manifest.json", manifest)
    cache = LabelCache(cache_folder(cache_dir, exp.run))
    calls = Calls(
        plan,
        specs,
        RunSettings(**run_settings(exp.run)),
        cache=cache,
        labels_file=run_dir / "labels.jsonl",
    )
    try:
        totals = calls.run()
    except BaseException as exc:  # the folder says why it has no prelabels
        manifest.update(status="interrupted", finished_at=now_iso())
        if isinstance(exc, UserError):  # e.g. a provider that never answered
            manifest["error"] = str(exc)
        write_json(run_dir / "manifest.json", manifest)
        raise
    finally:
        cache.close()
    records = calls.records
    labels = list(exp.task.label_names)
    if jury is None:
        preds = ItemPredictions(NewItems.of(items, labels), records, source=the_setup.confidence)
        pred, raw = preds.pred, preds.confidence
    else:
        pred, raw = jury_predictions(plan, jury, weights, NewItems.of(items, labels), records)
    conf, routes = route(raw, pred >= 0, ev)
    hashes = json.loads((ev.run_dir / "manifest.json").read_text())["prompt_hashes"]
    prompt_hash = (
        hashes.get(the_setup.prompt_id)
        if jury is None
        else {s.id: hashes.get(s.prompt_id) for s in members}
    )
    rows = []
    for k, item in enumerate(items.items):
        rows.append(
            {
                "item": item.id,
                "label": labels[pred[k]] if pred[k] >= 0 else None,
                "confidence": None if np.isnan(conf[k]) else float(conf[k]),
                "raw_confidence": None if np.isnan(raw[k]) else float(raw[k]),
                "route": routes[k],
                "setup": ev.setup,
                "prompt_hash": prompt_hash,
                "model": plan.models[the_setup.model_id].model
                if jury is None
                else [plan.models[s.model_id].model for s in members],
                "threshold": ev.threshold,
                "evaluation_run": ev.run_id,
            }
        )
    queue = review_queue([dict(r) for r in rows], budget, blind_share, audit_share, seed)
    fields = {it.id: dict(it.fields) for it in items.items}
    if jury is None:
        estimates = pool_prevalence(evaluation, ev.setup, the_setup.confidence, pred)
    else:
        estimates = pool_prevalence(with_jury_records(evaluation), ev.setup, "auto", pred)
    write_json(run_dir / "estimates.json", estimates)
    _write_jsonl(run_dir / "prelabels.jsonl", rows)
    _write_jsonl(
        run_dir / "review_queue.jsonl", [{**q, "fields": fields[q["item"]]} for q in queue]
    )
    manifest.update(
        status=f"stopped: {totals.stopped}" if totals.stopped else "complete",
        finished_at=now_iso(),
        counts={
            "items": len(rows),
            "accept": sum(r["route"] == "accept" for r in rows),
            "review": sum(r["route"] == "review" for r in rows),
            "no_label": sum(r["label"] is None for r in rows),
            "queue": len(queue),
            "blind_in_queue": sum(q["blind"] for q in queue),
        },
        calls=totals.calls,
        cached=totals.cached,
    )
    write_json(run_dir / "manifest.json", manifest)
    return LabelResult(run_dir, ev, rows, queue, estimates, totals.calls, totals.cached)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
