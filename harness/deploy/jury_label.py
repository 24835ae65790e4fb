"""`prelabel label` with a jury as the chosen setup: its members label the new items (or are
found in the cache) and their votes are combined with the weights the evaluation learned on
its gold set (`juries[].deploy_weights` of metrics.json), by the rule the jury was scored
with (harness/score/juries.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np

from harness.core.errors import UserError
from harness.core.records import LabelRecord, Setup
from harness.deploy.routing import Evaluation
from harness.score.juries import combine, member_votes
from harness.tasks import task_type


def jury_of(plan: Any, setup_id: str) -> Any | None:
    return next((j for j in plan.resolved.experiment.juries if j.id == setup_id), None)


def deployed_jury(plan: Any, ev: Evaluation, jury: Any) -> tuple[list[Setup], np.ndarray]:
    """The jury's member setups and the weights the evaluation learned for them; refused
    when the evaluation scored another jury under this id (or none)."""
    metrics = json.loads((ev.run_dir / "metrics.json").read_text(encoding="utf-8"))
    then = next((j for j in metrics.get("juries") or [] if j.get("id") == jury.id), None)
    if then is None or then.get("members") != list(jury.setups) or then.get("rule") != jury.rule:
        raise UserError.at(
            f"jury '{jury.id}' is not the jury evaluation run {ev.run_id} scored "
            "(its members or rule differ, or it had none)",
            file=plan.resolved.path,
            key="juries",
            hint="its weights and threshold were learned for that jury: run `prelabel run` again",
        )
    by_id = {s.id: s for s in plan.setups}
    members = [by_id[s] for s in jury.setups]
    for s in members:
        if not plan.models[s.model_id].kind.called:
            raise UserError.at(
                f"jury '{jury.id}' has member '{s.id}', which replays stored labels: it "
                "cannot label new items",
                file=plan.resolved.path,
                key="juries",
                hint="deploy a jury whose members all call a model",
            )
    weights = np.array([float(then["deploy_weights"][s]) for s in jury.setups])
    return members, weights


def member_evaluations(ev: Evaluation, members: list[Setup]) -> list[Evaluation]:
    """The evaluation as each member's (for the check that none has changed since)."""
    return [replace(ev, setup=s.id) for s in members]


def jury_predictions(
    plan: Any, jury: Any, weights: np.ndarray, items: Any, records: list[LabelRecord]
) -> tuple[np.ndarray, np.ndarray]:
    """(label code per item, -1 where no member answered; the jury's agreement)."""
    exp = plan.resolved.experiment
    labels = list(exp.task.label_names)
    of: dict[str, list[LabelRecord]] = {}
    for r in records:
        of.setdefault(r.setup, []).append(r)
    votes = member_votes(items, of, list(jury.setups))
    tie = task_type(exp.task.type).tie_label
    tie_code = labels.index(tie) if tie in labels else None
    return combine(votes, len(labels), weights[None, :], jury.rule, tie_code)
