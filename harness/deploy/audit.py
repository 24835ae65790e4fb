"""`prelabel audit`: a label run's routed pre-labels joined with the reviews that came back
from Label Studio; acceptance and correction by class, the realised error of auto-accepted
labels (from the blind audit sample), and whether production drifted from the evaluation.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import load_experiment
from harness.core.errors import UserError
from harness.core.files import write_text
from harness.deploy.labelstudio import read_reviews
from harness.metrics.audit import EvaluationEstimate, audit


def _plain(x: Any) -> Any:
    """Dataclasses to JSON: nan and inf become null (JSON has no nan)."""
    if is_dataclass(x):
        return _plain(asdict(x))
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if not math.isfinite(float(x)) else round(float(x), 6)
    if isinstance(x, np.integer | np.bool_):
        return x.item()
    return x


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError.at(
            f"no {path.name} here",
            file=path.parent,
            hint="pass a folder written by `prelabel label`",
        )
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


NO_ESTIMATE = "no evaluation estimate given"  # harness.metrics.audit's note, made specific


def _evaluation(
    label_run: Path, manifest: dict[str, Any], evaluation_run: Path | None
) -> tuple[EvaluationEstimate | None, str | None]:
    """What the evaluation promised for the label run's setup, or why there is nothing."""
    # By default the evaluation run sits beside the label run (both under runs_dir).
    folder = evaluation_run or label_run.parent / manifest["evaluation_run"]
    metrics_path = folder / "metrics.json"
    if not metrics_path.is_file():
        return None, (
            f"{NO_ESTIMATE}: {metrics_path} not found (the evaluation run "
            f"{manifest['evaluation_run']} of this label run); pass its folder with "
            "`prelabel audit ... --evaluation RUN_DIR`: drift not assessed"
        )
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    setup = manifest["setup"]
    block = next((b for b in metrics["gold_sets"][0]["setups"] if b["setup"] == setup), None)
    if block is None:
        return None, (
            f"{NO_ESTIMATE}: {metrics_path} has no setup {setup}; pass the evaluation run "
            f"of this label run ({manifest['evaluation_run']}) with --evaluation RUN_DIR: "
            "drift not assessed"
        )
    sel = block.get("selective") or {}
    if sel.get("threshold") is None:
        return None, (
            f"{NO_ESTIMATE}: {metrics_path} has no auto-accept threshold for {setup} (none "
            "met report.target_error on the gold set), so the evaluation promised no error "
            "rate to compare with: drift not assessed"
        )
    estimate = EvaluationEstimate(
        float(sel["target_error"]), int(sel["errors_among_accepted"]), int(sel["auto_accepted"])
    )
    return estimate, None


def run_audit(
    label_run: Path,
    reviews: Path,
    from_name: str | None = None,
    evaluation_run: Path | None = None,
) -> dict[str, Any]:
    """`evaluation_run`: the evaluation's run folder, when it is not beside the label run."""
    manifest = (
        json.loads((label_run / "manifest.json").read_text(encoding="utf-8"))
        if (label_run / "manifest.json").is_file()
        else {}
    )
    if manifest.get("kind") != "label":
        raise UserError.at(
            "not a label run (no manifest with kind 'label')",
            file=label_run,
            hint="pass a folder written by `prelabel label`",
        )
    exp = load_experiment(manifest["config_path"]).experiment
    labels = list(exp.task.label_names)
    code = {x: i for i, x in enumerate(labels)}
    rows = _jsonl(label_run / "prelabels.jsonl")
    blind = {q["item"]: q["blind"] for q in _jsonl(label_run / "review_queue.jsonl")}
    # Several reviewers of one item: the first review in the export counts (documented).
    human: dict[str, str] = {}
    unknown = 0
    known = {x["item"] for x in rows} | set(blind)
    for r in read_reviews(reviews, exp.task.type, labels, from_name=from_name):
        if r["item"] not in known:
            unknown += 1
            continue
        human.setdefault(r["item"], r["label"])
    if not human:
        raise UserError.at(
            "no review in this export matches an item of the label run",
            file=reviews,
            hint=f"export the reviews of the tasks made from {label_run}",
        )
    evaluation, missing = _evaluation(label_run, manifest, evaluation_run)
    result = audit(
        np.array([code.get(x["label"], -1) if x["label"] is not None else -1 for x in rows]),
        np.array([code.get(human.get(x["item"]), -1) for x in rows]),
        np.array([x["route"] for x in rows]),
        np.array([bool(blind.get(x["item"], False)) for x in rows]),
        len(labels),
        evaluation=evaluation,
    )
    out = _plain(result)
    if missing:  # say where the estimate was looked for and how to give it
        out["notes"] = [missing if n.startswith(NO_ESTIMATE) else n for n in out["notes"]]
    for c in out["per_class"]:
        c["label"] = labels[c["label"]]
    out.update(
        label_run=manifest["run_id"],
        evaluation_run=manifest["evaluation_run"],
        setup=manifest["setup"],
        reviews_file=str(reviews),
        reviewed_items=len(human),
        reviews_not_in_run=unknown,
    )
    write_text(label_run / "audit.json", json.dumps(out, indent=1))
    return out
