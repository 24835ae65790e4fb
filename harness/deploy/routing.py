"""Deploy the chosen pre-labeler: which setup and threshold the evaluation chose, routing of
new items to `accept` or `review`, and the order humans should review them in.

The threshold is the Learn-then-Test one of the evaluation run, on the same confidence the
evaluation used (recalibrated with the map fitted on all gold items when the config asked
for recalibration), so a route means what the evaluation's guarantee says.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import UserError
from harness.score.recalibration import recalibrated_confidence


@dataclass
class Evaluation:
    run_dir: Path
    run_id: str
    setup: str
    why: str  # "recommended" or "--setup"
    threshold: float | None
    confidence_kind: str  # "raw" or "recalibrated (...)"
    recalibration: dict[str, Any] | None
    target_error: float | None
    delta: float | None
    source: str  # the confidence source the setup uses


def latest_evaluation(runs_dir: Path, experiment: str) -> Path:
    """The newest complete run of this experiment (run ids start with a timestamp)."""
    candidates = []
    for d in sorted(runs_dir.glob(f"*-{experiment}-*"), reverse=True):
        try:
            manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        # The glob also matches "<name>-v2" runs: the manifest says whose run it is.
        same = manifest.get("config", {}).get("name") == experiment
        if same and manifest.get("status") == "complete" and (d / "metrics.json").is_file():
            candidates.append(d)
    if not candidates:
        raise UserError.at(
            f"no complete evaluation run of experiment '{experiment}'",
            file=runs_dir,
            hint="run `prelabel run CONFIG` first, or pass --run RUN_DIR",
        )
    return candidates[0]


def choose(run_dir: Path, setup: str | None) -> Evaluation:
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    gold = metrics["gold_sets"][0]
    blocks = {b["setup"]: b for b in gold["setups"]}
    why = "--setup"
    if setup is None:
        rec = metrics.get("recommendation") or {}
        setup = rec.get("recommended")
        why = "recommended"
        if setup is None:
            raise UserError.at(
                "the evaluation recommends no setup: "
                + (rec.get("reason") or "none meets the constraints"),
                file=run_dir / "metrics.json",
                hint=f"pass --setup with one of {sorted(blocks)} to deploy one anyway",
            )
    if setup not in blocks:
        raise UserError.at(
            f"setup '{setup}' is not in the evaluation run",
            file=run_dir / "metrics.json",
            hint=f"choose one of {sorted(blocks)}",
        )
    b = blocks[setup]
    sel = b.get("selective") or {}
    sources = b.get("confidence_sources") or {}
    return Evaluation(
        run_dir=run_dir,
        run_id=metrics.get("run_id", run_dir.name),
        setup=setup,
        why=why,
        threshold=sel.get("threshold"),
        confidence_kind=sel.get("confidence", "raw"),
        recalibration=b.get("recalibration") if sel.get("confidence", "raw") != "raw" else None,
        target_error=sel.get("target_error"),
        delta=sel.get("delta"),
        source=sources.get("selected") or "auto",
    )


def route(
    confidence: np.ndarray, answered: np.ndarray, ev: Evaluation
) -> tuple[np.ndarray, list[str]]:
    """The confidence routing compares with, and each item's route."""
    conf = recalibrated_confidence(ev.recalibration, confidence) if ev.recalibration else confidence
    routes = [
        "accept"
        if ok and ev.threshold is not None and not np.isnan(c) and c >= ev.threshold
        else "review"
        for c, ok in zip(conf, answered, strict=True)
    ]
    return conf, routes


def review_queue(
    rows: list[dict[str, Any]],
    budget: int | None,
    blind_share: float,
    audit_share: float,
    seed: int,
) -> list[dict[str, Any]]:
    """Items for humans, most useful first.

    Within each predicted class, the least confident first (with several samples the
    confidence is their agreement, so high disagreement comes first). Classes take turns,
    the class whose next item is least confident going first in each round, so a rare
    class is never starved behind a common one. Failed items (no label) lead: a human must
    label them anyway. A seeded `blind_share` of review items goes out without the
    pre-label, so human-vs-LLM agreement stays measurable and reviewers are not anchored;
    an `audit_share` of accepted items is added blind too, to measure the realised error
    of auto-accepted labels.

    `prelabel label` computes this order on arrays (harness/deploy/pool_outputs.py
    `review_order`, so a pool need not be held as rows); this is the reference it is
    tested against.
    """
    rng = random.Random(seed)
    failed = [r for r in rows if r["route"] == "review" and r["label"] is None]
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["route"] == "review" and r["label"] is not None:
            by_class[str(r["label"])].append(r)
    for members in by_class.values():
        members.sort(key=lambda r: (_certainty(r), r["item"]))
    ordered = list(failed)
    while any(by_class.values()):
        heads = sorted(
            (members for members in by_class.values() if members),
            key=lambda m: (_certainty(m[0]), m[0]["item"]),
        )
        ordered += [members.pop(0) for members in heads]
    accepted = [r for r in rows if r["route"] == "accept"]
    audit = rng.sample(accepted, k=round(len(accepted) * audit_share)) if accepted else []
    labelled = [r for r in ordered if r["label"] is not None]
    blind = {id(r) for r in rng.sample(labelled, k=round(len(labelled) * blind_share))}
    for r in ordered:
        r["queue_reason"] = "no label" if r["label"] is None else "below threshold"
        r["blind"] = r["label"] is None or id(r) in blind  # nothing to show, or held back
    for r in audit:
        r["queue_reason"] = "audit of auto-accepted"
        r["blind"] = True  # only a blind look measures the realised error
    # Audit items are spread through the queue, so a partial review still samples them.
    queue = list(ordered)
    for k, r in enumerate(audit):
        queue.insert(min(len(queue), (k + 1) * max(1, len(ordered) // (len(audit) + 1))), r)
    if budget is not None:
        queue = queue[:budget]
    for position, r in enumerate(queue, start=1):
        r["queue_position"] = position
    return queue


def _certainty(r: dict[str, Any]) -> float:
    c = r.get("confidence")
    return -1.0 if c is None or (isinstance(c, float) and np.isnan(c)) else float(c)
