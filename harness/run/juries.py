"""A run's juries, rebuilt from its labels for the readers of a run folder (the gate's
snapshot, `prelabel label`'s pool estimates): jury labels are never written to labels.jsonl,
so each reader combines the members' labels again exactly as scoring did."""

from __future__ import annotations

from dataclasses import replace

from harness.run.store import RunContext
from harness.score.juries import add_juries


def with_jury_records(ctx: RunContext) -> RunContext:
    """The run's context with every jury as one more setup, with its labels on the gold sets."""
    exp = ctx.experiment
    if not exp.juries:
        return ctx
    setups, records, _ = add_juries(
        exp.juries,
        ctx.gold_sets,
        ctx.setups,
        ctx.records,
        exp.task.label_names,
        exp.task.type,
        seed=exp.report.seed,
        reference=exp.report.reference,
    )
    return replace(ctx, setups=setups, records=records)
