"""`prelabel label`: pre-label new items with the setup an evaluation chose, through the same
cache, parser and confidence source, route each to `accept` or `review`, and write the
review queue.

Outputs in runs/<id>/ (a label run: no metrics.json, so it is never taken for an
evaluation): labels.jsonl (every sample, as in a run), prelabels.jsonl (one line per item),
review_queue.jsonl (items for humans, most useful first), estimates.json (label prevalence
in the pool by prediction-powered inference) and manifest.json.

The pool streams (issue 18): it is checked in one pass over the file, then read, called and
routed CHUNK_ITEMS items at a time, each chunk's prelabels written before the next is read;
the review queue and the estimates are computed from a few numbers per item
(harness/deploy/pool_outputs.py). The outputs are those the whole pool in memory gave.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import UserError
from harness.core.files import write_json
from harness.core.records import CallSpec, GoldSet
from harness.deploy.jury_label import (
    deployed_jury,
    jury_of,
    jury_predictions,
    member_evaluations,
)
from harness.deploy.pool_estimates import pool_prevalence
from harness.deploy.pool_outputs import JsonlRows, PoolTable, review_order
from harness.deploy.ray_shards import RayCalls
from harness.deploy.routing import Evaluation, choose, latest_evaluation, route
from harness.gate.baseline import model_identity
from harness.inputs.unlabeled import iter_unlabeled, scan_unlabeled
from harness.run.cache import LabelCache
from harness.run.calls import Calls, cache_folder, make_providers, run_settings
from harness.run.juries import with_jury_records
from harness.run.manifest import new_run_id, now_iso
from harness.run.pipeline import prepare
from harness.run.runner import RunSettings, RunTotals
from harness.run.store import RunContext, load_run_context, run_status_block
from harness.score.predictions import ItemPredictions
from harness.tasks import task_type

CHUNK_ITEMS = 4096  # items per chunk: ~10 MB of calls and records; its tail drains quickly


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
    rows: JsonlRows  # prelabels.jsonl, read when iterated
    queue: JsonlRows  # review_queue.jsonl
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
    ray: str | None = None,
    keep_input: bool = False,
) -> LabelResult:
    """`keep_input`: copy the pool into the run folder as input.jsonl (items the Python API
    was given, which exist nowhere else)."""
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
    pool = scan_unlabeled(input_path)
    # The pool is labelled a chunk of items at a time, so memory does not grow with it. Batch
    # models and Ray take the whole pool at once (one batch, one set of Ray tasks).
    batched = any(plan.models[s.model_id].batch for s in members)
    chunk = pool.n if ray is not None or batched else CHUNK_ITEMS

    def parts() -> Iterator[tuple[GoldSet, list[CallSpec]]]:
        for part in iter_unlabeled(pool, chunk):
            yield part, [spec for s in members for spec in plan.builder.specs(s, part)]

    # Every item's calls are built before the folder exists, so a bad item fails with
    # nothing written; a one-chunk pool keeps them, a larger one builds them again below.
    ready: list[tuple[GoldSet, list[CallSpec]]] | None = None
    if pool.n <= chunk:
        ready = list(parts())
    else:
        for _ in parts():
            pass
    run_id = new_run_id(f"{exp.name}-label")
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    if keep_input:
        input_path = _copied(input_path, run_dir / "input.jsonl")
    manifest: dict[str, Any] = {
        "kind": "label",
        "run_id": run_id,
        "status": "running",
        "config_path": str(plan.resolved.path.resolve()),
        "input": {"path": str(input_path), "content_hash": pool.content_hash, "n": pool.n},
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
    labels = list(exp.task.label_names)
    hashes = json.loads((ev.run_dir / "manifest.json").read_text())["prompt_hashes"]
    same = {  # what every row says of where its label came from
        "setup": ev.setup,
        "prompt_hash": hashes.get(the_setup.prompt_id)
        if jury is None
        else {s.id: hashes.get(s.prompt_id) for s in members},
        "model": plan.models[the_setup.model_id].model
        if jury is None
        else [plan.models[s.model_id].model for s in members],
        "threshold": ev.threshold,
        "evaluation_run": ev.run_id,
    }
    manifest["model"] = same["model"]  # written with the final manifest
    cache = LabelCache(cache_folder(cache_dir, exp.run))
    table = PoolTable(run_dir)
    totals = RunTotals()
    # One event loop and one set of providers for every chunk: their connections are reused,
    # and none is left bound to a closed loop.
    loop, providers = asyncio.new_event_loop(), {}
    try:
        for part, specs in ready or parts():
            # A missing API key: raised here, where the manifest records it, as Calls did.
            if ray is None:  # on Ray the workers make them, with their own keys
                providers.update(make_providers(plan, cache, specs=_new_models(specs, providers)))
            calls = Calls(
                plan,
                specs,
                RunSettings(**_settings_left(run_settings(exp.run), totals)),
                cache=cache,
                labels_file=run_dir / "labels.jsonl",
                providers=providers,
            )
            if ray is not None:  # the same calls as Ray tasks (harness/deploy/ray_shards.py)
                calls = RayCalls.like(calls, address=ray)
                _add(totals, calls.run())
            else:
                _add(totals, loop.run_until_complete(calls.arun()))
            if jury is None:
                preds = ItemPredictions(
                    NewItems.of(part, labels), calls.records, source=the_setup.confidence
                )
                pred, raw = preds.pred, preds.confidence
            else:
                pred, raw = jury_predictions(
                    plan, jury, weights, NewItems.of(part, labels), calls.records
                )
            del calls, specs  # this chunk's records and calls: what memory must not keep
            conf, routes = route(raw, pred >= 0, ev)
            table.add(_rows(part, labels, pred, conf, raw, routes, same), part, pred, conf)
        arrays = table.close()
    except BaseException as exc:  # the folder says why it has no prelabels
        table.discard()
        manifest.update(status="interrupted", finished_at=now_iso())
        if isinstance(exc, UserError):  # e.g. a provider that never answered
            manifest["error"] = str(exc)
        write_json(run_dir / "manifest.json", manifest)
        raise
    finally:
        cache.close()
        _close(loop)
    order = review_order(
        arrays["pred"],
        arrays.pop("certainty"),
        arrays["accept"],
        arrays.pop("ids"),
        budget,
        blind_share,
        audit_share,
        seed,
    )
    pred = arrays.pop("pred").astype(np.int64)  # as ItemPredictions gave it
    if jury is None:
        estimates = pool_prevalence(evaluation, ev.setup, the_setup.confidence, pred)
    else:
        estimates = pool_prevalence(with_jury_records(evaluation), ev.setup, "auto", pred)
    write_json(run_dir / "estimates.json", estimates)
    table.finish(run_dir / "review_queue.jsonl", order, arrays.pop("lengths"))
    n_accept = int(arrays["accept"].sum())
    manifest.update(
        status=f"stopped: {totals.stopped}" if totals.stopped else "complete",
        finished_at=now_iso(),
        counts={
            "items": table.n,
            "accept": n_accept,
            "review": table.n - n_accept,
            "no_label": int((pred < 0).sum()),
            "queue": len(order[0]),
            "blind_in_queue": int(order[2].sum()),
        },
        calls=totals.calls,
        cached=totals.cached,
    )
    write_json(run_dir / "manifest.json", manifest)
    return LabelResult(
        run_dir,
        ev,
        JsonlRows(run_dir / "prelabels.jsonl", table.n),
        JsonlRows(run_dir / "review_queue.jsonl", len(order[0])),
        estimates,
        totals.calls,
        totals.cached,
    )


def _rows(
    part: GoldSet,
    labels: list[str],
    pred: np.ndarray,
    conf: np.ndarray,
    raw: np.ndarray,
    routes: list[str],
    same: dict[str, Any],
) -> list[dict[str, Any]]:
    """One chunk's lines of prelabels.jsonl."""
    return [
        {
            "item": item.id,
            "label": labels[pred[k]] if pred[k] >= 0 else None,
            "confidence": None if np.isnan(conf[k]) else float(conf[k]),
            "raw_confidence": None if np.isnan(raw[k]) else float(raw[k]),
            "route": routes[k],
            **same,
        }
        for k, item in enumerate(part.items)
    ]


def _settings_left(settings: dict[str, Any], totals: RunTotals) -> dict[str, Any]:
    """The run's caps less what the chunks before spent: one budget for the whole pool."""
    if settings.get("max_calls") is not None:
        settings["max_calls"] = max(0, settings["max_calls"] - totals.calls)
    if settings.get("budget_usd") is not None:
        settings["budget_usd"] = max(0.0, settings["budget_usd"] - totals.cost_usd)
    return settings


def _new_models(specs: list[CallSpec], providers: dict[str, Any]) -> list[CallSpec]:
    """The calls of models that have no provider yet (made for the first chunk that needs
    one, so a fully cached pool makes none and never imports litellm)."""
    return [s for s in specs if s.model_id not in providers]


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does on the way out: cancel what is left, close generators, close."""
    try:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _copied(src: Path, dst: Path) -> Path:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


def _add(totals: RunTotals, part: RunTotals) -> None:
    totals.calls += part.calls
    totals.labels += part.labels
    totals.cached += part.cached
    totals.cost_usd += part.cost_usd
    totals.stopped = totals.stopped or part.stopped
